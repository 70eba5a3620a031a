//! Integration-test harness: real ZooKeeper servers and a fault-injecting TCP proxy.
//!
//! Use from any file in `tests/` with `mod support;`.  Everything here is synchronous
//! (std threads and blocking calls), so it works from plain `#[test]`s and from
//! `#[tokio::test]`s alike.  In a *current-thread* tokio test remember that the blocking
//! calls (`Ensemble::start`, `wait_until`, ...) block the runtime while they run: a
//! `wait_until` whose condition depends on a task of that same runtime making progress
//! will never see it; use `flavor = "multi_thread"` or `spawn_blocking` for those.
//!
//! # ZooKeeper servers
//!
//! [`Ensemble::start`] runs 1 (standalone) or N (quorum) ZooKeeper 3.8 servers from Debian's
//! `zookeeper` package on 127.0.0.1, each with `tickTime=100`, `minSessionTimeout=200`,
//! `maxSessionTimeout=60000` (so a client gets the session timeout it asks for, from 200 ms
//! up), `forceSync=no`.  [`shared_ensemble`] / [`shared_ensemble3`] give one single-node and
//! one three-node ensemble per test binary; they are `&'static` and so read-only: the
//! mutating methods (`stop`, `kill`, `start_member`, `pause`, `resume`) take `&mut self`, so
//! only a test that owns its own `Ensemble` can break it.
//!
//! ## Cleanup
//!
//! Each java process is started by a tiny `/bin/sh` wrapper in its own process group whose
//! stdin is a pipe; the write end is held (close-on-exec) by this process, not by any
//! thread.  The wrapper waits on that pipe; when it reads EOF — because the `Ensemble` was
//! dropped, or the test process exited, panicked, or was SIGKILLed — it SIGKILLs java, reaps
//! it and `rm -rf`s the ensemble's temp directory.  Java is additionally started through
//! `setpriv --pdeathsig KILL` (when available) so that it also dies if the wrapper itself
//! is killed.  The wrapper ignores SIGINT/SIGTERM/SIGHUP/SIGQUIT and is in its own process
//! group, so Ctrl-C or a process-group kill of the test run reaches it only through the pipe.
//! `stop`/`kill`/`pause`/`is_running` act on the real java pid (checked against its
//! /proc start time, so a recycled pid is never signalled).
//!
//! Set `SWITCHMAN_TEST_KEEP_ZK=1` to keep the temp directories (configs, data, `zk.log`).
//! When an owned `Ensemble` is dropped while the thread is panicking, the tail of each
//! member's log is printed to stderr (shown by the test harness for failed tests).
//!
//! ## Ports
//!
//! Server ports are picked at random *below* the kernel's ephemeral range
//! (/proc/sys/net/ipv4/ip_local_port_range), checked free by binding, and never handed out
//! twice in one process.  Unlike "bind port 0", such a port can't be taken by some outgoing
//! connection's local port while a member is stopped, so `start_member` can rebind it.  If a
//! server still fails to bind at startup, the whole ensemble is retried on new ports.
//!
//! # Proxy
//!
//! [`Proxy`] forwards one local port per upstream server port; see its docs for the
//! semantics of `blackhole`, `block_requests`, `block_replies`, `heal` and `reset_all`.
#![allow(dead_code)]

/// Helpers for running the switchman binary (tests/support/sm.rs).
pub mod sm;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill as send_signal};
use nix::unistd::Pid;

pub const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";
const SLF4J_SIMPLE_JAR: &str = "/usr/share/java/slf4j-simple.jar";
const SETPRIV: &str = "/usr/bin/setpriv";
const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// How long `Ensemble::start` / `start_member` wait for servers to serve.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `stop`/`kill` wait for java to exit (after which `stop` escalates to SIGKILL).
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Panics with install instructions if ZooKeeper is not installed.
pub fn require_zookeeper() {
    if !Path::new(ZOOKEEPER_JAR).exists() {
        panic!(
            "ZooKeeper is not installed: run `apt-get install -y zookeeper` (or scripts/install-deps)"
        );
    }
}

/// Polls `cond` every 20 ms until it returns true; panics mentioning `what` after `timeout`.
#[track_caller]
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    if !poll_until(timeout, &mut cond) {
        panic!("timed out after {timeout:?} waiting until {what}");
    }
}

/// Like [`wait_until`] but returns whether `cond` became true instead of panicking.
pub fn poll_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Sends a ZooKeeper four-letter word (`ruok`, `srvr`, `mntr`, `stat`, ...) to
/// 127.0.0.1:`port` and returns the reply, or None if the server can't be reached.
pub fn four_letter_word(port: u16, word: &str) -> Option<String> {
    let addr = SocketAddr::from((LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .ok()?;
    stream.write_all(word.as_bytes()).ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    Some(reply)
}

/// Parses `mntr` output ("key<TAB>value" lines).
pub fn parse_mntr(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let (k, v) = line.split_once('\t')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// The `Mode:` of a `srvr` reply ("standalone", "leader", "follower", ...), None if the
/// server isn't serving.
fn parse_mode(srvr: &str) -> Option<String> {
    srvr.lines()
        .find_map(|l| l.strip_prefix("Mode: ").map(|m| m.trim().to_string()))
}

// ---------------------------------------------------------------------------------------
// Ports and temp dirs
// ---------------------------------------------------------------------------------------

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    RandomState::new().hash_one((n, t, std::process::id()))
}

/// Port range below the kernel's ephemeral range (outgoing connections never use these).
fn server_port_range() -> Option<(u16, u16)> {
    let text = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok();
    let low: u32 = text
        .as_deref()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    (low >= 12000).then(|| (10000, (low - 1).min(65535) as u16))
}

/// Picks `n` distinct free ports on 127.0.0.1 not handed out before in this process.
fn pick_ports(n: usize) -> Vec<u16> {
    static USED: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut used = lock(&USED);
    let used = used.get_or_insert_with(HashSet::new);
    let range = server_port_range();
    let mut held = Vec::new(); // keep them bound until all are picked, so they are distinct
    let mut ports = Vec::new();
    let mut tries = 0;
    while ports.len() < n {
        tries += 1;
        assert!(tries < 10_000, "could not find {n} free ports");
        let candidate = match range {
            Some((lo, hi)) => lo + (random_u64() % u64::from(hi - lo + 1)) as u16,
            None => 0,
        };
        if candidate != 0 && used.contains(&candidate) {
            continue;
        }
        let Ok(listener) = TcpListener::bind((LOCALHOST, candidate)) else {
            continue;
        };
        let Ok(port) = listener.local_addr().map(|a| a.port()) else {
            continue;
        };
        if used.insert(port) {
            ports.push(port);
            held.push(listener);
        }
    }
    ports
}

fn make_temp_root(kind: &str) -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "switchman-{kind}-{}-{}-{:06x}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
        random_u64() & 0xff_ffff
    ));
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

fn keep_temp_dirs() -> bool {
    std::env::var_os("SWITCHMAN_TEST_KEEP_ZK").is_some_and(|v| !v.is_empty() && v != "0")
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ---------------------------------------------------------------------------------------
// One server process (java under the sh wrapper)
// ---------------------------------------------------------------------------------------

/// The wrapper: starts java, prints its pid, then blocks reading stdin.  On EOF (or any
/// line) it SIGKILLs and reaps java; unless the line was "keep" it removes $2.
const WRAPPER: &str = r#"log=$1; rmdir=$2; shift 2
"$@" </dev/null >>"$log" 2>&1 &
p=$!
trap '' INT TERM HUP QUIT PIPE
echo "$p"
read -r cmd || cmd=
kill -9 "$p" 2>/dev/null
wait "$p" 2>/dev/null
if [ "$cmd" != keep ] && [ -n "$rmdir" ]; then rm -rf "$rmdir"; fi
"#;

struct ServerProc {
    wrapper: Child,
    stdin: Option<ChildStdin>,
    pid: i32,
    /// /proc/<pid>/stat field 22, to recognise the pid after it might have been recycled.
    start_time: u64,
}

/// (state char, start time) of a process, None if it doesn't exist.
fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

impl ServerProc {
    fn spawn(log: &Path, rm_on_exit: &Path, java_args: &[String]) -> std::io::Result<ServerProc> {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(WRAPPER)
            .arg("switchman-zk-wrapper")
            .arg(log)
            .arg(rm_on_exit);
        if Path::new(SETPRIV).exists() {
            cmd.args([SETPRIV, "--pdeathsig", "KILL"]);
        }
        cmd.arg("java").args(java_args);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0);
        let mut wrapper = cmd.spawn()?;
        let stdin = wrapper.stdin.take();
        let mut line = String::new();
        let read =
            BufReader::new(wrapper.stdout.take().expect("piped stdout")).read_line(&mut line);
        let pid = match read.ok().and_then(|_| line.trim().parse::<i32>().ok()) {
            Some(pid) => pid,
            None => {
                drop(stdin);
                let _ = wrapper.wait();
                return Err(std::io::Error::other(format!(
                    "zk wrapper printed no pid: {line:?}"
                )));
            }
        };
        // The wrapper doesn't reap java until told to, so the pid is valid (maybe a zombie).
        let start_time = proc_stat(pid).map(|(_, t)| t).unwrap_or(0);
        Ok(ServerProc {
            wrapper,
            stdin,
            pid,
            start_time,
        })
    }

    fn is_alive(&self) -> bool {
        matches!(proc_stat(self.pid), Some((state, t)) if t == self.start_time && state != 'Z' && state != 'X')
    }

    fn signal(&self, sig: Signal) {
        if self.is_alive() {
            let _ = send_signal(Pid::from_raw(self.pid), sig);
        }
    }

    fn wait_exit(&self, timeout: Duration) -> bool {
        poll_until(timeout, || !self.is_alive())
    }

    /// Makes the wrapper kill+reap java and exit; waits for it.
    fn finish(mut self, keep_dir: bool) {
        if let Some(mut stdin) = self.stdin.take()
            && keep_dir
        {
            let _ = stdin.write_all(b"keep\n");
        }
        let _ = self.wrapper.wait();
    }
}

// ---------------------------------------------------------------------------------------
// Ensemble
// ---------------------------------------------------------------------------------------

struct Member {
    id: usize, // myid, 1-based
    client_port: u16,
    dir: PathBuf,
    cfg: PathBuf,
    log: PathBuf,
    proc: Option<ServerProc>,
}

/// A running ZooKeeper ensemble (1 = standalone, or N members) on 127.0.0.1.
/// Members are indexed from 0; member `i` has myid `i + 1`.
pub struct Ensemble {
    root: PathBuf,
    members: Vec<Member>,
}

impl Ensemble {
    /// Starts `n` servers and waits until all serve (and, for n > 1, one is leader).
    /// Panics (with the servers' log tails) if that doesn't happen within 30 s.
    pub fn start(n: usize) -> Ensemble {
        require_zookeeper();
        assert!(n >= 1, "an ensemble needs at least one server");
        let mut last_error = String::new();
        for _attempt in 0..4 {
            let mut ensemble = Ensemble::configure(n);
            match ensemble.launch_and_wait() {
                Ok(()) => return ensemble,
                Err(e) => {
                    let bind_failure = ensemble.members.iter().any(|m| {
                        let log = fs::read_to_string(&m.log).unwrap_or_default();
                        log.contains("Address already in use") || log.contains("BindException")
                    });
                    last_error = format!("{e}\n{}", ensemble.log_tails(40));
                    drop(ensemble);
                    if !bind_failure {
                        break;
                    }
                    eprintln!("zookeeper: a port was taken, retrying on new ports");
                }
            }
        }
        panic!("ZooKeeper ensemble of {n} did not start: {last_error}");
    }

    fn configure(n: usize) -> Ensemble {
        let root = make_temp_root("zk");
        let ports = pick_ports(if n == 1 { 1 } else { 3 * n });
        let mut servers = String::new();
        if n > 1 {
            for id in 1..=n {
                let (peer, election) = (ports[n + 2 * (id - 1)], ports[n + 2 * (id - 1) + 1]);
                servers.push_str(&format!("server.{id}=127.0.0.1:{peer}:{election}\n"));
            }
        }
        let members = (0..n)
            .map(|i| {
                let id = i + 1;
                let dir = root.join(format!("member-{id}"));
                let data = dir.join("data");
                fs::create_dir_all(&data).expect("create zk data dir");
                if n > 1 {
                    fs::write(data.join("myid"), format!("{id}\n")).expect("write myid");
                }
                let cfg = dir.join("zoo.cfg");
                let text = format!(
                    "tickTime=100\ninitLimit=20\nsyncLimit=10\ndataDir={}\nclientPort={}\n\
                     clientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=*\n\
                     minSessionTimeout=200\nmaxSessionTimeout=60000\nforceSync=no\npreAllocSize=1024\n{servers}",
                    data.display(),
                    ports[i]
                );
                fs::write(&cfg, text).expect("write zoo.cfg");
                Member { id, client_port: ports[i], log: dir.join("zk.log"), dir, cfg, proc: None }
            })
            .collect();
        Ensemble { root, members }
    }

    fn java_args(&self, i: usize) -> Vec<String> {
        let mut classpath = ZOOKEEPER_JAR.to_string();
        if Path::new(SLF4J_SIMPLE_JAR).exists() {
            classpath.push(':');
            classpath.push_str(SLF4J_SIMPLE_JAR);
        }
        [
            "-Xmx192m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-XX:-UsePerfData",
            "-Djava.net.preferIPv4Stack=true",
            "-Dzookeeper.4lw.commands.whitelist=*",
            "-Dzookeeper.admin.enableServer=false",
            "-Dzookeeper.forceSync=no",
            "-Dzookeeper.electionPortBindRetry=1",
            "-Dorg.slf4j.simpleLogger.showDateTime=true",
            "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
            "-cp",
            &classpath,
            "org.apache.zookeeper.server.quorum.QuorumPeerMain",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([self.members[i].cfg.display().to_string()])
        .collect()
    }

    fn spawn_member(&mut self, i: usize) -> Result<(), String> {
        let args = self.java_args(i);
        let rm = if keep_temp_dirs() {
            PathBuf::new()
        } else {
            self.root.clone()
        };
        let m = &mut self.members[i];
        let proc = ServerProc::spawn(&m.log, &rm, &args)
            .map_err(|e| format!("spawning zk member {i}: {e}"))?;
        m.proc = Some(proc);
        Ok(())
    }

    fn launch_and_wait(&mut self) -> Result<(), String> {
        for i in 0..self.members.len() {
            self.spawn_member(i)?;
        }
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        for i in 0..self.members.len() {
            self.wait_serving(i, deadline)?;
        }
        if self.members.len() > 1 {
            let ok = poll_until(deadline.saturating_duration_since(Instant::now()), || {
                self.leader().is_some()
            });
            if !ok {
                return Err("no member reports Mode: leader".into());
            }
        }
        Ok(())
    }

    /// Waits until member i answers `ruok` with `imok` and `srvr` shows it serving
    /// (standalone, or leader/follower in an ensemble).
    fn wait_serving(&self, i: usize, deadline: Instant) -> Result<(), String> {
        let quorum = self.members.len() > 1;
        let port = self.members[i].client_port;
        let mut died = false;
        let ok = poll_until(deadline.saturating_duration_since(Instant::now()), || {
            if !self.is_running(i) {
                died = true;
                return true;
            }
            four_letter_word(port, "ruok").as_deref() == Some("imok")
                && match four_letter_word(port, "srvr")
                    .as_deref()
                    .and_then(parse_mode)
                {
                    Some(mode) if quorum => mode == "leader" || mode == "follower",
                    Some(mode) => mode == "standalone",
                    None => false,
                }
        });
        if died {
            Err(format!("zk member {i} (port {port}) exited during startup"))
        } else if !ok {
            Err(format!(
                "zk member {i} (port {port}) not serving after {STARTUP_TIMEOUT:?}"
            ))
        } else {
            Ok(())
        }
    }

    fn log_tails(&self, lines: usize) -> String {
        self.members
            .iter()
            .map(|m| {
                format!(
                    "--- zk member {} ({}) log tail:\n{}",
                    m.id - 1,
                    m.log.display(),
                    tail(&m.log, lines)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// "127.0.0.1:p1,127.0.0.1:p2,..." (all members, running or not).
    pub fn connect_string(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Client ports of all members, in member order (e.g. for `Proxy::start`).
    pub fn client_ports(&self) -> Vec<u16> {
        self.members.iter().map(|m| m.client_port).collect()
    }

    pub fn client_port(&self, i: usize) -> u16 {
        self.members[i].client_port
    }

    /// The temp directory holding every member's `member-N/{zoo.cfg,zk.log,data}`.
    pub fn root_dir(&self) -> &Path {
        &self.root
    }

    /// The java pid of member i, if it was started and hasn't been stopped via this API.
    pub fn pid(&self, i: usize) -> Option<i32> {
        self.members[i].proc.as_ref().map(|p| p.pid)
    }

    /// Whether member i's java process is alive (a paused one counts as running).
    pub fn is_running(&self, i: usize) -> bool {
        self.members[i].proc.as_ref().is_some_and(|p| p.is_alive())
    }

    /// Sends `word` to member i's client port; None if unreachable.
    pub fn four_letter_word(&self, i: usize, word: &str) -> Option<String> {
        four_letter_word(self.members[i].client_port, word)
    }

    /// `mntr` of member i as a map (`zk_server_state`, `zk_packets_received`, ...);
    /// empty if the member is down or not serving.
    pub fn mntr(&self, i: usize) -> HashMap<String, String> {
        self.four_letter_word(i, "mntr")
            .map(|t| parse_mntr(&t))
            .unwrap_or_default()
    }

    /// Member i's `Mode:` from `srvr`: "standalone", "leader", "follower"; None if not serving.
    pub fn mode(&self, i: usize) -> Option<String> {
        self.four_letter_word(i, "srvr")
            .as_deref()
            .and_then(parse_mode)
    }

    /// The member currently reporting `Mode: leader` (None for a standalone server).
    pub fn leader(&self) -> Option<usize> {
        (0..self.members.len())
            .find(|&i| self.is_running(i) && self.mode(i).as_deref() == Some("leader"))
    }

    /// Waits until some member is leader and returns it; panics after `timeout`.
    #[track_caller]
    pub fn wait_for_leader(&self, timeout: Duration) -> usize {
        let mut leader = None;
        wait_until("a zookeeper leader is elected", timeout, || {
            leader = self.leader();
            leader.is_some()
        });
        leader.unwrap()
    }

    /// Graceful stop of member i: SIGTERM java and wait for it to exit (SIGKILL after 10 s).
    /// No-op if it isn't running.  Its config and data are kept for `start_member`.
    pub fn stop(&mut self, i: usize) {
        self.terminate(i, Signal::SIGTERM);
    }

    /// Crash member i: SIGKILL java and wait for it to exit.  No-op if it isn't running.
    pub fn kill(&mut self, i: usize) {
        self.terminate(i, Signal::SIGKILL);
    }

    fn terminate(&mut self, i: usize, sig: Signal) {
        let Some(proc) = self.members[i].proc.take() else {
            return;
        };
        proc.signal(sig);
        proc.signal(Signal::SIGCONT); // in case it was paused
        if !proc.wait_exit(EXIT_TIMEOUT) {
            proc.signal(Signal::SIGKILL);
            if !proc.wait_exit(EXIT_TIMEOUT) {
                panic!("zk member {i} (pid {}) did not exit", proc.pid);
            }
        }
        proc.finish(true);
    }

    /// Freezes member i (SIGSTOP): its sockets stay open but it answers nothing.
    pub fn pause(&mut self, i: usize) {
        if let Some(p) = &self.members[i].proc {
            p.signal(Signal::SIGSTOP);
        }
    }

    /// Undoes `pause` (SIGCONT).
    pub fn resume(&mut self, i: usize) {
        if let Some(p) = &self.members[i].proc {
            p.signal(Signal::SIGCONT);
        }
    }

    /// Restarts a stopped/killed member with the same config and data, and waits until it
    /// serves (Mode leader or follower in an ensemble, standalone otherwise).
    /// Panics if it is still running or doesn't come up within 30 s.
    pub fn start_member(&mut self, i: usize) {
        if let Some(proc) = self.members[i].proc.take() {
            if proc.is_alive() {
                self.members[i].proc = Some(proc);
                panic!("zk member {i} is already running");
            }
            proc.finish(true); // it died by itself: reap the old wrapper first
        }
        let result = self
            .spawn_member(i)
            .and_then(|()| self.wait_serving(i, Instant::now() + STARTUP_TIMEOUT));
        if let Err(e) = result {
            panic!("restarting {e}\n{}", self.log_tails(40));
        }
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "zookeeper logs ({}):\n{}",
                self.root.display(),
                self.log_tails(30)
            );
        }
        let procs: Vec<ServerProc> = self
            .members
            .iter_mut()
            .filter_map(|m| m.proc.take())
            .collect();
        let keep = keep_temp_dirs();
        // Closing every wrapper's stdin first lets them all kill their java in parallel.
        let wrappers: Vec<Child> = procs
            .into_iter()
            .map(|mut p| {
                drop(p.stdin.take());
                p.wrapper
            })
            .collect();
        for mut w in wrappers {
            let _ = w.wait();
        }
        if keep {
            eprintln!("keeping zookeeper dir {}", self.root.display());
        } else {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

/// A single-node ensemble shared by all tests of this test binary (started on first use).
/// Never dropped: its server is killed and its directory removed when the process exits.
/// Tests sharing it should use their own unique znode paths.
pub fn shared_ensemble() -> &'static Ensemble {
    static SHARED: OnceLock<Ensemble> = OnceLock::new();
    SHARED.get_or_init(|| Ensemble::start(1))
}

/// A three-node ensemble shared by all tests of this test binary (started on first use).
pub fn shared_ensemble3() -> &'static Ensemble {
    static SHARED: OnceLock<Ensemble> = OnceLock::new();
    SHARED.get_or_init(|| Ensemble::start(3))
}

// ---------------------------------------------------------------------------------------
// Proxy
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Dir {
    /// client -> server
    Requests = 0,
    /// server -> client
    Replies = 1,
}

struct ProxyState {
    /// Whether each direction (indexed by `Dir`) is forwarded.
    open: [bool; 2],
    /// Chunks currently being written, per direction.
    in_flight: [usize; 2],
    conns: HashMap<u64, Conn>,
    next_id: u64,
    shutdown: bool,
}

struct Conn {
    client: TcpStream,
    upstream: Option<TcpStream>,
    dead: Arc<AtomicBool>,
}

impl Conn {
    fn close(&self) {
        self.dead.store(true, Ordering::SeqCst);
        let _ = self.client.shutdown(Shutdown::Both);
        if let Some(u) = &self.upstream {
            let _ = u.shutdown(Shutdown::Both);
        }
    }
}

struct ProxyShared {
    state: Mutex<ProxyState>,
    cond: Condvar,
}

impl ProxyShared {
    /// Blocks until `dir` is open; false if the connection died or the proxy shut down.
    fn wait_open(&self, dir: Dir, dead: &AtomicBool) -> bool {
        let mut st = lock(&self.state);
        loop {
            if st.shutdown || dead.load(Ordering::SeqCst) {
                return false;
            }
            if st.open[dir as usize] {
                return true;
            }
            st = self.cond.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Like `wait_open`, and registers an in-flight write.
    fn begin_write(&self, dir: Dir, dead: &AtomicBool) -> bool {
        let mut st = lock(&self.state);
        loop {
            if st.shutdown || dead.load(Ordering::SeqCst) {
                return false;
            }
            if st.open[dir as usize] {
                st.in_flight[dir as usize] += 1;
                return true;
            }
            st = self.cond.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn end_write(&self, dir: Dir) {
        lock(&self.state).in_flight[dir as usize] -= 1;
        self.cond.notify_all();
    }

    fn set_open(&self, requests: bool, replies: bool) {
        let mut st = lock(&self.state);
        st.open = [requests, replies];
        self.cond.notify_all();
        // Let writes that were already under way in a now-cut direction finish, so that
        // once this returns nothing more is delivered that way.  (Bounded: a write to a
        // peer that isn't reading could block.)
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            let busy = (!requests && st.in_flight[0] > 0) || (!replies && st.in_flight[1] > 0);
            let now = Instant::now();
            if !busy || now >= deadline {
                break;
            }
            st = self
                .cond
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn remove(&self, id: u64) {
        if let Some(conn) = lock(&self.state).conns.remove(&id) {
            conn.close();
        }
        self.cond.notify_all();
    }
}

/// A TCP proxy on 127.0.0.1 with one listening port per upstream port, for injecting
/// network faults between a client and ZooKeeper.  Runs on std threads.
///
/// Cut semantics (`blackhole`, `block_requests`, `block_replies`): the proxy stops
/// *reading* the cut direction, on every existing and new connection, so bytes back up in
/// the kernel socket buffers (at most one already-read chunk is held by the proxy) and no
/// socket is closed: the peers see a silent partition, exactly as with dropped packets,
/// including an EOF/close from the far side, which is also not passed on while cut.
/// Nothing is dropped, so on `heal` everything held is delivered in order and the
/// ZooKeeper framing stays intact; by then the client has usually given up on that
/// connection anyway (ping timeout) and reconnected.  A new connection accepted while
/// requests are cut isn't connected upstream until they flow again.  When a cut call
/// returns, nothing more is delivered in the cut direction.
///
/// `reset_all` closes every current connection (both sides see EOF); new connections are
/// accepted as usual, subject to the current cut mode.
pub struct Proxy {
    ports: Vec<u16>,
    upstreams: Vec<u16>,
    shared: Arc<ProxyShared>,
    acceptors: Vec<thread::JoinHandle<()>>,
}

impl Proxy {
    /// Starts forwarding 127.0.0.1:<new port i> to 127.0.0.1:`upstreams[i]`.
    pub fn start(upstreams: &[u16]) -> Proxy {
        let shared = Arc::new(ProxyShared {
            state: Mutex::new(ProxyState {
                open: [true, true],
                in_flight: [0, 0],
                conns: HashMap::new(),
                next_id: 0,
                shutdown: false,
            }),
            cond: Condvar::new(),
        });
        let mut ports = Vec::new();
        let mut acceptors = Vec::new();
        for &upstream in upstreams {
            let listener = TcpListener::bind((LOCALHOST, 0)).expect("proxy: bind 127.0.0.1:0");
            ports.push(listener.local_addr().expect("proxy: local_addr").port());
            let shared = shared.clone();
            let handle = thread::Builder::new()
                .name(format!("proxy-accept-{upstream}"))
                .spawn(move || accept_loop(listener, upstream, shared))
                .expect("spawn proxy thread");
            acceptors.push(handle);
        }
        Proxy {
            ports,
            upstreams: upstreams.to_vec(),
            shared,
            acceptors,
        }
    }

    /// "127.0.0.1:p1,127.0.0.1:p2,..." of the proxy's listening ports.
    pub fn connect_string(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The listening port forwarding to `upstreams[i]`.
    pub fn port(&self, i: usize) -> u16 {
        self.ports[i]
    }

    pub fn upstreams(&self) -> &[u16] {
        &self.upstreams
    }

    /// Full partition: nothing is forwarded either way; connections stay open.
    pub fn blackhole(&self) {
        self.shared.set_open(false, false);
    }

    /// Client->server still forwarded; server->client held.
    pub fn block_replies(&self) {
        self.shared.set_open(true, false);
    }

    /// Server->client still forwarded; client->server held.
    pub fn block_requests(&self) {
        self.shared.set_open(false, true);
    }

    /// Forward both ways again; held bytes are delivered (nothing was dropped).
    pub fn heal(&self) {
        self.shared.set_open(true, true);
    }

    /// Closes every current connection (client and upstream side).
    pub fn reset_all(&self) {
        let conns: Vec<Conn> = lock(&self.shared.state)
            .conns
            .drain()
            .map(|(_, c)| c)
            .collect();
        for c in &conns {
            c.close();
        }
        self.shared.cond.notify_all();
    }

    /// Number of currently open proxied connections.
    pub fn connection_count(&self) -> usize {
        lock(&self.shared.state).conns.len()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        lock(&self.shared.state).shutdown = true;
        self.reset_all();
        for &port in &self.ports {
            // wake the blocking accept()
            let _ = TcpStream::connect_timeout(
                &SocketAddr::from((LOCALHOST, port)),
                Duration::from_millis(200),
            );
        }
        for handle in self.acceptors.drain(..) {
            let _ = handle.join();
        }
    }
}

fn accept_loop(listener: TcpListener, upstream: u16, shared: Arc<ProxyShared>) {
    for stream in listener.incoming() {
        if lock(&shared.state).shutdown {
            return;
        }
        let Ok(client) = stream else {
            thread::sleep(Duration::from_millis(10)); // e.g. out of fds: don't spin
            continue;
        };
        let _ = client.set_nodelay(true);
        let shared = shared.clone();
        let _ = thread::Builder::new()
            .name(format!("proxy-conn-{upstream}"))
            .spawn(move || handle_connection(client, upstream, shared));
    }
}

fn handle_connection(client: TcpStream, upstream_port: u16, shared: Arc<ProxyShared>) {
    let dead = Arc::new(AtomicBool::new(false));
    let Ok(client_clone) = client.try_clone() else {
        return;
    };
    let id = {
        let mut st = lock(&shared.state);
        if st.shutdown {
            return;
        }
        st.next_id += 1;
        let id = st.next_id;
        st.conns.insert(
            id,
            Conn {
                client: client_clone,
                upstream: None,
                dead: dead.clone(),
            },
        );
        id
    };
    // Don't even connect upstream while requests are cut (a partitioned client's SYN
    // wouldn't get through either).
    if !shared.wait_open(Dir::Requests, &dead) {
        shared.remove(id);
        return;
    }
    let addr = SocketAddr::from((LOCALHOST, upstream_port));
    let upstream = match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        Ok(s) => s,
        Err(_) => {
            shared.remove(id); // upstream down: close the client side
            return;
        }
    };
    let _ = upstream.set_nodelay(true);
    {
        let mut st = lock(&shared.state);
        match (st.conns.get_mut(&id), upstream.try_clone()) {
            (Some(conn), Ok(clone)) if !dead.load(Ordering::SeqCst) => conn.upstream = Some(clone),
            _ => {
                drop(st);
                let _ = upstream.shutdown(Shutdown::Both);
                shared.remove(id);
                return;
            }
        }
    }
    let replies = {
        let (from, to, shared, dead) = (
            upstream.try_clone(),
            client.try_clone(),
            shared.clone(),
            dead.clone(),
        );
        match (from, to) {
            (Ok(from), Ok(to)) => thread::Builder::new()
                .name(format!("proxy-replies-{upstream_port}"))
                .spawn(move || pump(from, to, Dir::Replies, &shared, &dead))
                .ok(),
            _ => None,
        }
    };
    if replies.is_some() {
        pump(client, upstream, Dir::Requests, &shared, &dead);
    }
    if let Some(handle) = replies {
        let _ = handle.join();
    }
    shared.remove(id);
}

/// Copies `from` -> `to` while `dir` is open.  Ends (closing both sockets) on EOF or error
/// from either side; an EOF read while `dir` is cut is held back like data.
fn pump(mut from: TcpStream, mut to: TcpStream, dir: Dir, shared: &ProxyShared, dead: &AtomicBool) {
    let mut buf = vec![0u8; 64 * 1024];
    while shared.wait_open(dir, dead) {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => {
                // Deliver the EOF only when this direction flows.
                shared.wait_open(dir, dead);
                break;
            }
            Ok(n) => n,
        };
        if !shared.begin_write(dir, dead) {
            break;
        }
        let result = to.write_all(&buf[..n]);
        shared.end_write(dir);
        if result.is_err() {
            break;
        }
    }
    dead.store(true, Ordering::SeqCst);
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
    shared.cond.notify_all();
}
