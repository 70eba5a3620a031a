//! ZooKeeper servers for the tests: one standalone server or a quorum, on 127.0.0.1.
//!
//! [`Ensemble::start`] runs 1 (standalone) or N (quorum) ZooKeeper 3.8 servers from Debian's
//! `zookeeper` package on 127.0.0.1, each with `tickTime=100`, `minSessionTimeout=200`,
//! `maxSessionTimeout=60000` (so a client gets the session timeout it asks for, from 200 ms
//! up), `forceSync=no`.  [`shared_ensemble`] / [`shared_ensemble3`] give one single-node and
//! one three-node ensemble per test binary; they are `&'static` and so read-only: the
//! mutating methods (`stop`, `kill`, `start_member`, `pause`, `resume`) take `&mut self`, so
//! only a test that owns its own `Ensemble` can break it.
//!
//! Each server runs under a wrapper that kills it and removes the ensemble's temp directory
//! however the test process ends (see `server.rs`); its ports are picked as `ports.rs` says.
//!
//! Set `SWITCHMAN_TEST_KEEP_ZK=1` to keep the temp directories (configs, data, `zk.log`).
//! When an owned `Ensemble` is dropped while the thread is panicking, the tail of each
//! member's log is printed to stderr (shown by the test harness for failed tests).

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::ports::{pick_ports, random_u64};
use super::server::ServerProc;
use super::util::{poll_until_blocking, wait_until_blocking};

pub const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";
const SLF4J_SIMPLE_JAR: &str = "/usr/share/java/slf4j-simple.jar";

/// What Debian's ZooKeeper needs on its class path, beyond what `zookeeper.jar`'s manifest
/// pulls in, to serve TLS with the Netty connection factory (from `libnetty-java`).
pub const NETTY_TLS_JARS: &[&str] = &[
    "/usr/share/java/netty-codec.jar",
    "/usr/share/java/netty-resolver.jar",
    "/usr/share/java/netty-transport-native-unix-common.jar",
];

/// What Debian's ZooKeeper needs on its class path, beyond `zookeeper.jar`'s manifest, to run
/// its AdminServer (Jetty, which the manifest brings, wants it; from `libservlet-api-java`).
pub const SERVLET_API_JAR: &str = "/usr/share/java/servlet-api.jar";

/// What a test adds to a standalone server: lines for its zoo.cfg, JVM options (`-D...`) and
/// jars, made by [`Ensemble::start_standalone_with`] once the server's directory and a spare
/// port (for `secureClientPort`, say) are known.
#[derive(Debug, Default, Clone)]
pub struct Extras {
    pub cfg: Vec<String>,
    pub jvm: Vec<String>,
    pub classpath: Vec<String>,
}

/// How long `Ensemble::start` / `start_member` wait for servers to serve.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// `syncLimit` (in ticks of 100 ms) unless a test lays out its own quorum.
const SYNC_LIMIT: u32 = 10;
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

/// Sends a ZooKeeper four-letter word (`ruok`, `srvr`, `mntr`, `stat`, ...) to
/// 127.0.0.1:`port` and returns the reply, or None if the server can't be reached.
pub fn four_letter_word(port: u16, word: &str) -> Option<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
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

/// Parses `mntr` output (`key<TAB>value` lines).
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

pub(super) fn make_temp_root(kind: &str) -> PathBuf {
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

pub(super) fn keep_temp_dirs() -> bool {
    std::env::var_os("SWITCHMAN_TEST_KEEP_ZK").is_some_and(|v| !v.is_empty() && v != "0")
}

pub(super) fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
// ---------------------------------------------------------------------------------------
// Ensemble
// ---------------------------------------------------------------------------------------

struct Member {
    id: usize, // myid, 1-based
    client_port: u16,
    cfg: PathBuf,
    log: PathBuf,
    proc: Option<ServerProc>,
}

/// A running ZooKeeper ensemble (1 = standalone, or N members) on 127.0.0.1.
/// Members are indexed from 0; member `i` has myid `i + 1`.
pub struct Ensemble {
    root: PathBuf,
    members: Vec<Member>,
    extras: Extras,
    /// A port picked with the client ports, for [`Extras`] to use.
    spare_port: u16,
}

/// Makes a standalone server's [`Extras`] from its directory and spare port.
type MakeExtras<'a> = &'a mut dyn FnMut(&Path, u16) -> Extras;

impl Ensemble {
    /// Starts `n` servers and waits until all serve (and, for n > 1, one is leader).
    /// Panics (with the servers' log tails) if that doesn't happen within 30 s.
    pub fn start(n: usize) -> Ensemble {
        Ensemble::start_with_extras(n, |_, _| Extras::default())
    }

    /// [`Ensemble::start`] with what `extras` adds to every member (given the ensemble's
    /// directory and a spare port). Its zoo.cfg lines come after the harness's, and the last of
    /// a key wins: `tickTime=2000` gives a real ensemble's tick instead of the tests' 100 ms.
    pub fn start_with_extras(n: usize, mut extras: impl FnMut(&Path, u16) -> Extras) -> Ensemble {
        let peers = |ports: &[(u16, u16)]| {
            let lines: String = ports
                .iter()
                .enumerate()
                .map(|(i, (quorum, election))| {
                    format!("server.{}=127.0.0.1:{quorum}:{election}\n", i + 1)
                })
                .collect();
            (vec![lines; n], ())
        };
        let (ensemble, ()) = Ensemble::start_inner(n, SYNC_LIMIT, peers, &mut extras);
        ensemble
    }

    /// [`Ensemble::start`] with the quorum laid out by the caller: each member's config has
    /// `syncLimit={sync_limit}`, and the `server.N` lines that `peers` returns for it. `peers` is
    /// given every member's real (quorum, election) ports, the ones it binds, and returns one
    /// block of lines per member along with whatever those lines point at (proxies, say),
    /// which is handed back with the ensemble. If a port was taken, both are made anew.
    pub(super) fn start_with<T>(
        n: usize,
        sync_limit: u32,
        peers: impl FnMut(&[(u16, u16)]) -> (Vec<String>, T),
    ) -> (Ensemble, T) {
        Ensemble::start_inner(n, sync_limit, peers, &mut |_, _| Extras::default())
    }

    /// One standalone server with what `extras` adds to it (given the server's directory, for
    /// the files it writes, and a spare port): a secured server, say. Its plain `clientPort`
    /// stays, for the harness's four-letter words.
    pub fn start_standalone_with(mut extras: impl FnMut(&Path, u16) -> Extras) -> Ensemble {
        let (ensemble, ()) =
            Ensemble::start_inner(1, SYNC_LIMIT, |_| (vec![String::new()], ()), &mut extras);
        ensemble
    }

    fn start_inner<T>(
        n: usize,
        sync_limit: u32,
        mut peers: impl FnMut(&[(u16, u16)]) -> (Vec<String>, T),
        extras: MakeExtras,
    ) -> (Ensemble, T) {
        require_zookeeper();
        assert!(n >= 1, "an ensemble needs at least one server");
        let mut last_error = String::new();
        for _attempt in 0..4 {
            let (mut ensemble, laid) = Ensemble::configure(n, sync_limit, &mut peers, extras);
            match ensemble.launch_and_wait() {
                Ok(()) => return (ensemble, laid),
                Err(e) => {
                    let bind_failure = ensemble.members.iter().any(|m| {
                        let log = fs::read_to_string(&m.log).unwrap_or_default();
                        log.contains("Address already in use") || log.contains("BindException")
                    });
                    last_error = format!("{e}\n{}", ensemble.log_tails(40));
                    drop(ensemble);
                    drop(laid);
                    if !bind_failure {
                        break;
                    }
                    eprintln!("zookeeper: a port was taken, retrying on new ports");
                }
            }
        }
        panic!("ZooKeeper ensemble of {n} did not start: {last_error}");
    }

    fn configure<T>(
        n: usize,
        sync_limit: u32,
        peers: &mut impl FnMut(&[(u16, u16)]) -> (Vec<String>, T),
        extras: MakeExtras,
    ) -> (Ensemble, T) {
        let root = make_temp_root("zk");
        let ports = pick_ports(if n == 1 { 2 } else { 3 * n + 1 });
        let spare_port = *ports.last().unwrap();
        let extras = extras(&root, spare_port);
        let server_ports: Vec<(u16, u16)> = if n == 1 {
            Vec::new() // standalone
        } else {
            (0..n)
                .map(|i| (ports[n + 2 * i], ports[n + 2 * i + 1]))
                .collect()
        };
        let (servers, laid) = peers(&server_ports);
        assert_eq!(servers.len(), n, "one block of server lines per member");
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
                    "tickTime=100\ninitLimit=20\nsyncLimit={sync_limit}\ndataDir={}\nclientPort={}\n\
                     clientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=*\n\
                     minSessionTimeout=200\nmaxSessionTimeout=60000\nforceSync=no\npreAllocSize=1024\n{}{}",
                    data.display(),
                    ports[i],
                    servers[i],
                    extras.cfg.iter().map(|l| format!("{l}\n")).collect::<String>()
                );
                fs::write(&cfg, text).expect("write zoo.cfg");
                Member { id, client_port: ports[i], log: dir.join("zk.log"), cfg, proc: None }
            })
            .collect();
        (
            Ensemble {
                root,
                members,
                extras,
                spare_port,
            },
            laid,
        )
    }

    fn java_args(&self, i: usize) -> Vec<String> {
        let mut classpath = ZOOKEEPER_JAR.to_string();
        if Path::new(SLF4J_SIMPLE_JAR).exists() {
            classpath.push(':');
            classpath.push_str(SLF4J_SIMPLE_JAR);
        }
        for jar in &self.extras.classpath {
            classpath.push(':');
            classpath.push_str(jar);
        }
        let jvm = self.extras.jvm.iter().map(String::as_str);
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
        ]
        .into_iter()
        .chain(jvm)
        .chain([
            "-cp",
            &classpath,
            "org.apache.zookeeper.server.quorum.QuorumPeerMain",
        ])
        .map(|s| s.to_string())
        .chain([self.members[i].cfg.display().to_string()])
        .collect()
    }

    fn spawn_member(&mut self, i: usize) -> Result<(), String> {
        let args: Vec<String> = std::iter::once("java".to_string())
            .chain(self.java_args(i))
            .collect();
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
            let ok =
                poll_until_blocking(deadline.saturating_duration_since(Instant::now()), || {
                    self.leader().is_some()
                });
            if !ok {
                return Err("no member reports Mode: leader".into());
            }
        }
        Ok(())
    }

    /// Waits until member i answers `ruok` with `imok` and `srvr` shows it serving
    /// (standalone, or leader/follower/observer in an ensemble).
    fn wait_serving(&self, i: usize, deadline: Instant) -> Result<(), String> {
        let quorum = self.members.len() > 1;
        let port = self.members[i].client_port;
        let mut died = false;
        let ok = poll_until_blocking(deadline.saturating_duration_since(Instant::now()), || {
            if !self.is_running(i) {
                died = true;
                return true;
            }
            four_letter_word(port, "ruok").as_deref() == Some("imok")
                && match four_letter_word(port, "srvr")
                    .as_deref()
                    .and_then(parse_mode)
                {
                    Some(mode) if quorum => ["leader", "follower", "observer"].contains(&&*mode),
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

    /// The log of member `i` so far.
    pub fn log(&self, i: usize) -> String {
        fs::read_to_string(&self.members[i].log).unwrap_or_default()
    }

    /// Number of members.
    pub fn member_count(&self) -> usize {
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

    /// The port picked for [`Extras`] to use (see [`Ensemble::start_standalone_with`]).
    pub fn spare_port(&self) -> u16 {
        self.spare_port
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

    /// Member i's watches by path (`wchp`: exists and data watches; child watches are not
    /// listed, but `mntr`'s `zk_watch_count` counts them), each with the sessions that set it,
    /// leaving out `except` (the test's own client's session).
    pub fn watches_by_path(&self, i: usize, except: i64) -> HashMap<String, Vec<String>> {
        let ours = format!("{except:#x}");
        let text = self.four_letter_word(i, "wchp").unwrap_or_default();
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        let mut current = None;
        for line in text.lines() {
            if line.starts_with('/') {
                current = Some(line.trim().to_string());
            } else if let Some(path) = &current {
                let session = line.trim();
                if !session.is_empty() && session != ours {
                    map.entry(path.clone())
                        .or_default()
                        .push(session.to_string());
                }
            }
        }
        map
    }

    /// Member i's `Mode:` from `srvr`: "standalone", "leader", "follower", "observer"; None if
    /// not serving.
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
        wait_until_blocking("a zookeeper leader is elected", timeout, || {
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
    /// serves (Mode leader, follower or observer in an ensemble, standalone otherwise).
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
