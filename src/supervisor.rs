//! Runs CMD as a supervised child (contract section 6).
//!
//! CMD gets its own process group, so that stopping it stops everything it started: a shell
//! script's children would otherwise run on without the lock. It also gets the kernel's
//! parent-death signal, so that it dies even if switchman is SIGKILLed.
//!
//! The supervisor waits for whichever comes first: CMD exiting, a loss (lock, lease, group or
//! session, as a future from the caller), a signal to pass on, or a clock deadline from the
//! session's liveness record. Losses wake it through their watch events; the clock is read
//! only to enforce the no-overlap deadline, which no event can announce.

use std::ffi::OsString;
use std::future::Future;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::pin::Pin;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::signal::unix::{SignalKind, signal};

use crate::error::{Error, Result};
use crate::session::{Liveness, now};

/// How often the clock is read at the least. A suspended machine stops tokio's timers but not
/// the servers' clocks, so a timer alone could oversleep a deadline after resume.
const CLOCK_CHECK: Duration = Duration::from_millis(100);

/// How CMD's run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// CMD exited on its own (or of a signal passed on to it); the code to exit with.
    Exited(i32),
    /// CMD was stopped because of this loss.
    Stopped(String),
}

/// A running CMD.
pub struct Child {
    child: tokio::process::Child,
    group: Pid,
}

/// Starts CMD with the parent's environment plus `env`.
pub fn spawn(cmd: &[OsString], env: &[(String, String)]) -> Result<Child> {
    let parent = nix::unistd::getpid();
    let mut command = std::process::Command::new(&cmd[0]);
    command
        .args(&cmd[1..])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .process_group(0);
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
                127
            } else {
                126
            };
            Error::CannotRun(format!("cannot run {name:?}: {e}"), code)
        })?;
    let pid = child.id().expect("a child that was just spawned has a pid");
    tracing::debug!(pid, "CMD started");
    Ok(Child {
        child,
        group: Pid::from_raw(pid as i32),
    })
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
        let mut stop: Option<Stop> = None;

        loop {
            let t = now();
            if stop.is_none() && t >= liveness.stale_at() {
                let silent = t.saturating_sub(liveness.acked_at());
                stop = Some(self.begin_stop(
                    format!(
                        "no answer from ZooKeeper for {:.1}s, so the session may expire",
                        silent.as_secs_f64()
                    ),
                    liveness,
                    termination_timeout,
                ));
            }
            if let Some(s) = &mut stop {
                s.enforce(self.group, liveness);
            }
            let next = match &stop {
                None => liveness.stale_at(),
                Some(s) => s.kill_at(liveness),
            };
            let nap = next.saturating_sub(t).min(CLOCK_CHECK);

            tokio::select! {
                status = self.child.wait() => {
                    let code = match status {
                        Ok(s) => s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)),
                        Err(e) => {
                            tracing::error!("cannot wait for CMD: {e}");
                            70
                        }
                    };
                    return match stop {
                        Some(s) => {
                            // Whatever CMD left running in its group must not outlive the lock.
                            let _ = killpg(self.group, Signal::SIGKILL);
                            Ending::Stopped(s.reason)
                        }
                        None => Ending::Exited(code),
                    };
                }
                reason = &mut loss, if stop.is_none() => {
                    stop = Some(self.begin_stop(reason, liveness, termination_timeout));
                }
                _ = term.recv() => self.pass_on(Signal::SIGTERM),
                _ = int.recv() => self.pass_on(Signal::SIGINT),
                _ = hup.recv() => self.pass_on(Signal::SIGHUP),
                _ = quit.recv() => self.pass_on(Signal::SIGQUIT),
                _ = tokio::time::sleep(nap) => {}
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
            grace_ends: now() + termination_timeout,
            killed: false,
        };
        if now() < liveness.kill_deadline() {
            self.pass_on(Signal::SIGTERM);
        }
        stop.enforce(self.group, liveness);
        stop
    }

    fn pass_on(&self, sig: Signal) {
        tracing::debug!(signal = %sig, "signalling CMD's process group");
        let _ = killpg(self.group, sig);
    }
}

/// A stop under way: SIGTERM was sent (if there was time), SIGKILL follows at the end of the
/// grace or at the session's kill deadline, whichever is first.
struct Stop {
    reason: String,
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
