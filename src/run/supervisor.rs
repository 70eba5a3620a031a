//! Runs CMD as a supervised child (docs/safety.md: "Supervision").
//!
//! CMD gets its own process group, so that stopping it stops everything it started: a shell
//! script's children would otherwise run on without the lock. It also gets the kernel's
//! parent-death signal, so that it dies even if switchman is SIGKILLed; and since that signal
//! reaches CMD alone, a guardian process waits for switchman's death to SIGKILL the whole group
//! (a script's worker would otherwise outlive both, and run on after the lock has gone).
//!
//! The supervisor waits for whichever comes first: CMD exiting, a loss (lock, lease, group or
//! session, as a future from the caller), a signal to pass on, or a clock deadline from the
//! session's liveness record. Losses wake it through their watch events, and the deadline,
//! which no event can announce, through a timer set for it: between them it sleeps.

use std::ffi::OsString;
use std::future::Future;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::pin::Pin;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::signal::unix::{SignalKind, signal};

use crate::capture::ChildEnds;
use crate::error::{Error, Result};
use crate::zk::{Alarm, Liveness, now};

/// How CMD's run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// CMD exited on its own (or of a signal passed on to it).
    Exited(Exit),
    /// CMD was stopped because of this loss.
    Stopped(Stopped),
}

/// How CMD ended by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// The code to exit with: CMD's, or 128+N if it died of signal N.
    pub code: i32,
    /// The signal CMD died of.
    pub signal: Option<i32>,
    /// Whether that signal was one switchman passed on to it (SIGTERM from systemd, say).
    pub passed_on: bool,
}

/// How a stop went, for the log.
#[derive(Debug, PartialEq, Eq)]
pub struct Stopped {
    /// What was lost.
    pub reason: String,
    /// From the start of the stop to CMD's end.
    pub took: Duration,
    /// Whether SIGKILL was needed (CMD outlived its grace, or the session had expired).
    pub killed: bool,
}

/// A running CMD.
pub struct Child {
    child: tokio::process::Child,
    group: Pid,
    guardian: Option<Guardian>,
}

/// Starts CMD with the parent's environment plus `env`; with `output`, its stdout and stderr
/// are those pipes' write ends, and every other descriptor is switchman's as it was.
pub fn spawn(
    cmd: &[OsString],
    env: &[(String, String)],
    output: Option<ChildEnds>,
) -> Result<Child> {
    let parent = nix::unistd::getpid();
    let mut command = std::process::Command::new(&cmd[0]);
    command
        .args(&cmd[1..])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .process_group(0);
    if let Some(ends) = output {
        command
            .stdout(Stdio::from(ends.stdout))
            .stderr(Stdio::from(ends.stderr));
    }
    // SAFETY: only async-signal-safe calls (prctl, getppid) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            // If switchman died before prctl took effect, the signal will never come.
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::other("switchman exited before CMD started"));
            }
            Ok(())
        });
    }
    let name = cmd[0].to_string_lossy();
    let child = tokio::process::Command::from(command)
        .spawn()
        .map_err(|e| {
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                crate::exit::NOT_FOUND.value
            } else {
                crate::exit::CANNOT_EXECUTE.value
            };
            Error::CannotRun(format!("cannot run {name:?}: {e}"), code)
        })?;
    let pid = child.id().expect("a child that was just spawned has a pid");
    tracing::debug!(pid, "CMD started");
    let group = Pid::from_raw(pid as i32);
    let guardian = Guardian::start(group);
    if guardian.is_none() {
        tracing::warn!(
            "cannot start the guardian of CMD's process group; if switchman is killed, CMD's children may outlive it"
        );
    }
    Ok(Child {
        child,
        group,
        guardian,
    })
}

/// A forked copy of switchman that does one thing: when switchman dies, however it dies, it
/// SIGKILLs CMD's process group. It learns of the death from a pipe whose only write end
/// switchman holds: the kernel closes it when switchman exits, and `read` returns 0.
struct Guardian {
    pid: libc::pid_t,
    /// Held, never written; dropping it (switchman's exit) wakes the guardian.
    _alive: std::os::fd::OwnedFd,
}

impl Guardian {
    fn start(group: Pid) -> Option<Guardian> {
        use std::os::fd::AsRawFd;
        let (wake, alive) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ok()?;
        let wake_fd = wake.as_raw_fd();
        // SAFETY: between fork and _exit the child makes only plain system calls (signal,
        // close_range or close and getrlimit, read, kill, _exit): no allocation, no locks.
        match unsafe { libc::fork() } {
            -1 => None,
            0 => unsafe { guard(wake_fd, group.as_raw()) },
            pid => Some(Guardian { pid, _alive: alive }),
        }
    }

    /// Switchman lives on, so the guardian is not needed: end it. CMD's group is left as the
    /// stop (or CMD's own exit) left it. It is reaped by [`reap_dismissed`], not waited for
    /// here: after a short CMD it may not even have run yet, and its death (scheduling it,
    /// then tearing down its copy of switchman's address space) kept a plain run waiting 2 ms
    /// (perf trace) before it could close its session.
    fn dismiss(self) {
        // SAFETY: a plain syscall on our own child.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
        }
        if let Ok(mut dismissed) = DISMISSED.lock() {
            dismissed.push(self.pid);
        }
    }
}

/// Guardians killed by [`Guardian::dismiss`] and not yet reaped.
static DISMISSED: std::sync::Mutex<Vec<libc::pid_t>> = std::sync::Mutex::new(Vec::new());

/// Reaps the dismissed guardians, dead by now or about to be (they were sent SIGKILL): for
/// switchman's last moment, after its session is closed, so that no zombie of ours outlives
/// it whatever its parent, or the container's first process, does about orphans.
pub fn reap_dismissed() {
    let pids = DISMISSED
        .lock()
        .map(|mut d| std::mem::take(&mut *d))
        .unwrap_or_default();
    for pid in pids {
        // SAFETY: a plain syscall on our own child.
        unsafe {
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    }
}

/// The guardian's life, in the forked child.
unsafe fn guard(wake_fd: libc::c_int, group: libc::pid_t) -> ! {
    unsafe {
        // Signals meant for switchman (a terminal's ^C reaches its whole process group) must
        // not end the guardian.
        for sig in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGPIPE,
        ] {
            libc::signal(sig, libc::SIG_IGN);
        }
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
        // Keep nothing of switchman's open but the pipe: not its ZooKeeper connection, nor the
        // write end of the pipe, nor the stdout and stderr someone may be waiting to see closed.
        close_all_but(wake_fd);
        let mut byte = 0u8;
        loop {
            let n = libc::read(wake_fd, (&raw mut byte).cast(), 1);
            if n == 0 || (n < 0 && *libc::__errno_location() != libc::EINTR) {
                break;
            }
        }
        libc::kill(-group, libc::SIGKILL);
        libc::_exit(0)
    }
}

/// Closes every file descriptor but `keep`.
unsafe fn close_all_but(keep: libc::c_int) {
    unsafe {
        let ranges = [(0, keep - 1), (keep + 1, libc::c_int::MAX)];
        for (first, last) in ranges {
            if first > last {
                continue;
            }
            if libc::syscall(
                libc::SYS_close_range,
                first as libc::c_uint,
                last as libc::c_uint,
                0,
            ) != 0
            {
                // Kernels before 5.9: close them one by one, up to the descriptor limit.
                let mut limit = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
                let top = (limit.rlim_cur.min(65536) as libc::c_int).min(last);
                for fd in first..=top {
                    libc::close(fd);
                }
            }
        }
    }
}

impl Child {
    /// Waits for CMD to end, stopping it when `loss` resolves or the session's liveness runs
    /// out, and passing on SIGTERM, SIGINT, SIGHUP and SIGQUIT.
    pub async fn supervise(
        mut self,
        mut loss: Pin<&mut impl Future<Output = String>>,
        liveness: &Liveness,
        termination_timeout: Duration,
    ) -> Ending {
        let mut term = signal(SignalKind::terminate()).expect("signal handler");
        let mut int = signal(SignalKind::interrupt()).expect("signal handler");
        let mut hup = signal(SignalKind::hangup()).expect("signal handler");
        let mut quit = signal(SignalKind::quit()).expect("signal handler");
        let alarm = Alarm::new().expect("a timer on CLOCK_BOOTTIME");
        let mut stop: Option<Stop> = None;
        // Signals passed on: CMD dying of one of them was stopped, not failed.
        let mut passed: Vec<i32> = Vec::new();

        loop {
            let moved = liveness.moved();
            let t = now();
            if stop.is_none() && t >= liveness.stop_at(termination_timeout) {
                let silent = t.saturating_sub(liveness.acked_at());
                stop = Some(self.begin_stop(
                    format!(
                        "no answer from ZooKeeper for {:.1}s that proves its leader still knows the session, so it may expire",
                        silent.as_secs_f64()
                    ),
                    liveness,
                    termination_timeout,
                ));
            }
            if let Some(s) = &mut stop {
                s.enforce(self.group, liveness);
            }
            alarm.set(match &stop {
                None => Some(liveness.stop_at(termination_timeout)),
                Some(s) if !s.killed => Some(s.kill_at(liveness)),
                // Nothing is left to do but wait for CMD's end.
                Some(_) => None,
            });

            tokio::select! {
                status = self.child.wait() => {
                    let exit = match status {
                        Ok(s) => Exit {
                            code: s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)),
                            signal: s.signal(),
                            passed_on: s.signal().is_some_and(|n| passed.contains(&n)),
                        },
                        Err(e) => {
                            tracing::error!("cannot wait for CMD: {e}");
                            Exit { code: 70, signal: None, passed_on: false }
                        }
                    };
                    let ending = match stop {
                        Some(s) => {
                            // Whatever CMD left running in its group must not outlive the lock.
                            let _ = killpg(self.group, Signal::SIGKILL);
                            Ending::Stopped(Stopped {
                                took: now().saturating_sub(s.began),
                                reason: s.reason,
                                killed: s.killed,
                            })
                        }
                        None => Ending::Exited(exit),
                    };
                    if let Some(g) = self.guardian.take() {
                        g.dismiss();
                    }
                    return ending;
                }
                reason = &mut loss, if stop.is_none() => {
                    stop = Some(self.begin_stop(reason, liveness, termination_timeout));
                }
                _ = term.recv() => passed.push(self.pass_on(Signal::SIGTERM)),
                _ = int.recv() => passed.push(self.pass_on(Signal::SIGINT)),
                _ = hup.recv() => passed.push(self.pass_on(Signal::SIGHUP)),
                _ = quit.recv() => passed.push(self.pass_on(Signal::SIGQUIT)),
                _ = alarm.rings() => {}
                _ = moved => {}
            }
        }
    }

    fn begin_stop(
        &self,
        reason: String,
        liveness: &Liveness,
        termination_timeout: Duration,
    ) -> Stop {
        tracing::warn!("stopping CMD: {reason}");
        let mut stop = Stop {
            reason,
            began: now(),
            grace_ends: now() + termination_timeout,
            killed: false,
        };
        if now() < liveness.kill_deadline() {
            self.pass_on(Signal::SIGTERM);
        }
        stop.enforce(self.group, liveness);
        stop
    }

    /// Sends `sig` to CMD's process group; returns its number.
    fn pass_on(&self, sig: Signal) -> i32 {
        tracing::debug!(signal = %sig, "signalling CMD's process group");
        let _ = killpg(self.group, sig);
        sig as i32
    }
}

/// A stop under way: SIGTERM was sent (if there was time), SIGKILL follows at the end of the
/// grace or at the session's kill deadline, whichever is first.
struct Stop {
    reason: String,
    began: Duration,
    grace_ends: Duration,
    killed: bool,
}

impl Stop {
    fn kill_at(&self, liveness: &Liveness) -> Duration {
        self.grace_ends.min(liveness.kill_deadline())
    }

    fn enforce(&mut self, group: Pid, liveness: &Liveness) {
        if !self.killed && now() >= self.kill_at(liveness) {
            tracing::warn!("CMD did not stop in time; sending SIGKILL");
            let _ = killpg(group, Signal::SIGKILL);
            self.killed = true;
        }
    }
}

impl Child {
    /// CMD's pid (also its process group's id), for the log.
    pub fn pid(&self) -> i32 {
        self.group.as_raw()
    }
}
