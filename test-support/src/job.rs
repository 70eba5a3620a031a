//! A job, one switchman task's world (a temp dir, a config file, a znode prefix), and running
//! the real switchman and switchmanctl binaries on it against a test ZooKeeper.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::process::{Child, Command};

use super::util::{wait_for_file, wait_until};

/// The switchman binary under test (see the crate's docs for where it is found).
pub fn switchman_bin() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| binary("switchman"))
}

/// Its companion for operators.
pub fn switchmanctl_bin() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| binary("switchmanctl"))
}

/// The root package's binary `name`: `$CARGO_BIN_EXE_<name>` if set (cargo sets it when it runs
/// a test or bench), else the one cargo built next to the running test or bench
/// (`target/<profile>/deps/..`).
fn binary(name: &str) -> String {
    if let Ok(path) = std::env::var(format!("CARGO_BIN_EXE_{name}")) {
        return path;
    }
    let exe = std::env::current_exe().expect("the test binary's own path");
    let mut dir = exe.parent().expect("the test binary's directory");
    if dir.ends_with("deps") {
        dir = dir.parent().expect("target/<profile>");
    }
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "no {name} binary at {} (next to {}): run the tests and benches through cargo, which \
         builds it, or set CARGO_BIN_EXE_{name}",
        path.display(),
        exe.display()
    );
    path.into_os_string()
        .into_string()
        .expect("a UTF-8 target path")
}

/// Session timeout used by the tests: short, so that fault tests end quickly.
pub const SESSION_TIMEOUT: f64 = 2.0;

/// The harness's servers' `tickTime` (100 ms), which switchman must be told of: its proof that
/// the leader knows the session trails by a tick.
pub const SERVER_TICK_TIME: f64 = 0.1;

/// One job's private world: a temp dir for CMD's records, a config file, and a znode prefix
/// no other test uses.
pub struct Job {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub prefix: String,
    pub zkhosts: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Job {
    /// What a run with `args` costs in requests, from the server's own counter: the least of
    /// three runs (a connect the client library has to retry, which is rare, adds a packet), on
    /// a prepared prefix, on a server of its own (`ensemble`, member 0) that nothing else uses.
    pub async fn least_packets(&self, ensemble: &super::Ensemble, args: &[&str]) -> u64 {
        let mut counts = Vec::new();
        for _ in 0..3 {
            let before: u64 = ensemble.mntr(0)["zk_packets_received"].parse().unwrap();
            assert_eq!(self.run(args).await.0, 0, "switchman {args:?}");
            let after: u64 = ensemble.mntr(0)["zk_packets_received"].parse().unwrap();
            // mntr itself is one packet.
            counts.push(after - before - 1);
        }
        eprintln!("switchman {args:?} sent {counts:?} packets");
        counts.into_iter().min().unwrap()
    }

    /// A job on a prefix of its own, with the default test settings plus `extra` config keys
    /// (a JSON object).
    pub fn new(name: &str, zkhosts: &str, extra: serde_json::Value) -> Job {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        Job::on_prefix(
            &format!("/t/{name}-{}-{n}", std::process::id()),
            zkhosts,
            extra,
        )
    }

    /// A job on `prefix`: another "host" when the prefix is another job's. Every run logs at
    /// debug level to [`Job::log`], so that a test can await what switchman saw.
    pub fn on_prefix(prefix: &str, zkhosts: &str, extra: serde_json::Value) -> Job {
        let dir = tempfile::tempdir().unwrap();
        let mut config = serde_json::json!({
            "prefix": prefix,
            "zkhosts": zkhosts,
            "session_timeout": SESSION_TIMEOUT,
            "server_tick_time": SERVER_TICK_TIME,
            "termination_timeout": 1,
            "connect_timeout": 5,
            "logfile": dir.path().join("switchman.log"),
            "loglevel": "debug",
        });
        merge(&mut config, &extra);
        Job::in_dir(dir, prefix, zkhosts, &config.to_string())
    }

    /// The same job on another host: the same prefix and config (logfile included) with
    /// `changes` (a JSON object: another `fqdn`, other `zkhosts`, ...) applied, and a temp dir
    /// of its own for CMD's records.
    pub fn other_host(&self, changes: serde_json::Value) -> Job {
        let mut config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&self.config).unwrap()).unwrap();
        merge(&mut config, &changes);
        let zkhosts = config["zkhosts"]
            .as_str()
            .unwrap_or(&self.zkhosts)
            .to_string();
        Job::with_config(&self.prefix, &zkhosts, &config.to_string())
    }

    /// A job whose config file holds exactly `text`.
    pub fn with_config(prefix: &str, zkhosts: &str, text: &str) -> Job {
        Job::in_dir(tempfile::tempdir().unwrap(), prefix, zkhosts, text)
    }

    fn in_dir(dir: tempfile::TempDir, prefix: &str, zkhosts: &str, text: &str) -> Job {
        let config = dir.path().join("switchman.conf");
        std::fs::write(&config, text).unwrap();
        Job {
            dir,
            config,
            prefix: prefix.to_string(),
            zkhosts: zkhosts.to_string(),
        }
    }

    /// The debug log of the job's runs (see [`Job::on_prefix`]).
    pub fn log(&self) -> PathBuf {
        self.file("switchman.log")
    }

    /// A path inside the job's temp dir.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The text of a file in the job's temp dir; empty if there is none (yet).
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.file(name)).unwrap_or_default()
    }

    /// Lets the CMD called `name` end (see `cmds::until_go`).
    pub fn go(&self, name: &str) {
        std::fs::write(self.file(&format!("{name}.go")), "").unwrap();
    }

    /// Waits until CMD has written its pid to the file `name` in the job's temp dir.
    pub async fn wait_for_pid(&self, name: &str) -> i32 {
        wait_for_file(&self.file(name))
            .await
            .trim()
            .parse()
            .unwrap()
    }

    /// Waits until CMD `name` of [`cmd_waiting`](crate::cmd_waiting) has written its
    /// environment, and returns the fencing token it was given.
    pub async fn fencing_token(&self, name: &str) -> i64 {
        let file = self.file(&format!("{name}.env"));
        let mut token = None;
        crate::wait_until("CMD has written its environment", || {
            token = std::fs::read_to_string(&file).ok().and_then(|env| {
                env.lines()
                    .find_map(|l| l.strip_prefix("SWITCHMAN_FENCING_TOKEN="))
                    .and_then(|t| t.parse().ok())
            });
            token.is_some()
        })
        .await;
        token.expect("a token")
    }

    /// Waits until the job's log (see [`Job::on_prefix`]: every run's lines, each with the
    /// run's `[PID]`) has `n` lines that contain every one of `needles`: the sign that
    /// switchman has handled an event, without guessing how long that takes.
    pub async fn wait_for_log(&self, n: usize, needles: &[&str]) {
        let log = self.log();
        wait_until(&format!("{n} log lines with {needles:?}"), || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .filter(|l| needles.iter().all(|needle| l.contains(needle)))
                .count()
                >= n
        })
        .await;
    }

    /// `switchman -c CONFIG ARGS...`, stdout/stderr captured, killed if the test drops it.
    /// CMD finds the job's temp dir in `$JOB_DIR`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = captured(switchman_bin(), &self.config, args);
        cmd.env("JOB_DIR", self.dir.path()).env_remove("DEBUG");
        cmd
    }

    /// `switchmanctl -c CONFIG ARGS...`, stdout/stderr captured, killed if the test drops it.
    pub fn ctl_command(&self, args: &[&str]) -> Command {
        let mut cmd = captured(switchmanctl_bin(), &self.config, args);
        cmd.env_remove("SWITCHMAN_CONFIG");
        cmd
    }

    /// Starts `switchmanctl metrics --listen` on a free port; returns it and its `host:port`,
    /// read from the line it prints once it listens.
    pub async fn metrics_listener(&self) -> (Child, String) {
        use tokio::io::AsyncBufReadExt;
        let mut listener = self
            .ctl_command(&["metrics", "--listen", "127.0.0.1:0"])
            .spawn()
            .unwrap();
        let mut said = tokio::io::BufReader::new(listener.stderr.take().unwrap()).lines();
        let line = said.next_line().await.unwrap().unwrap_or_default();
        let addr = line
            .strip_prefix("switchmanctl: serving metrics on http://")
            .and_then(|rest| rest.strip_suffix("/metrics"))
            .unwrap_or_else(|| panic!("{line}"))
            .to_string();
        (listener, addr)
    }

    /// Starts `switchmanctl serve` with `args` (`--listen 127.0.0.1:0` unless they say);
    /// returns it and its `host:port`, read from the line it prints once it listens.
    pub async fn serve(&self, args: &[&str]) -> (Child, String) {
        use tokio::io::AsyncBufReadExt;
        let mut argv = vec!["serve"];
        if !args.contains(&"--listen") {
            argv.extend(["--listen", "127.0.0.1:0"]);
        }
        argv.extend(args);
        let mut server = self.ctl_command(&argv).spawn().unwrap();
        let mut said = tokio::io::BufReader::new(server.stderr.take().unwrap()).lines();
        let line = said.next_line().await.unwrap().unwrap_or_default();
        let addr = line
            .strip_prefix("switchmanctl: serving the status page on http://")
            .and_then(|rest| rest.strip_suffix('/'))
            .unwrap_or_else(|| panic!("{line}"))
            .to_string();
        // Later lines (none is expected) must never block it.
        tokio::spawn(async move { while let Ok(Some(_)) = said.next_line().await {} });
        (server, addr)
    }

    /// Starts switchman (see [`Job::command`]).
    pub fn spawn(&self, args: &[&str]) -> Child {
        spawn_command(self.command(args))
    }

    /// Runs switchman to the end and returns (exit code, stderr).
    pub async fn run(&self, args: &[&str]) -> (i32, String) {
        run_command(self.command(args)).await
    }

    /// The folder of the lock nodes.
    pub fn locks_path(&self) -> String {
        format!("{}/locks", self.prefix)
    }

    /// The lock node of task `name`.
    pub fn lock_path(&self, name: &str) -> String {
        format!("{}/locks/{name}", self.prefix)
    }

    /// The line of `--wait` runs for lock `name`.
    pub fn line_path(&self, name: &str) -> String {
        format!("{}/waiters/{name}", self.prefix)
    }

    /// The run record of lock `name`.
    pub fn record_path(&self, name: &str) -> String {
        format!("{}/runs/{name}", self.prefix)
    }

    /// The FIFO queue of resource `res`.
    pub fn queue_path(&self, res: &str) -> String {
        format!("{}/queues/{res}", self.prefix)
    }

    /// The leases of resource `res`.
    pub fn leases_path(&self, res: &str) -> String {
        format!("{}/semaphores/{res}/leases", self.prefix)
    }

    /// The guard mutex of resource `res`'s semaphore.
    pub fn guard_path(&self, res: &str) -> String {
        format!("{}/semaphores/{res}/lock", self.prefix)
    }
}

/// Sets the keys of `changes` (a JSON object) in `config`.
fn merge(config: &mut serde_json::Value, changes: &serde_json::Value) {
    for (k, v) in changes.as_object().into_iter().flatten() {
        config[k] = v.clone();
    }
}

/// `BINARY -c CONFIG ARGS...`, stdin empty, stdout/stderr captured, killed if dropped.
fn captured(binary: &str, config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(binary);
    cmd.arg("-c")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// `OPTS... -- CMD...`, as the `&str`s `Job::spawn` and `Job::run` take.
pub fn argv<'a>(opts: &[&'a str], cmd: &'a [String]) -> Vec<&'a str> {
    let mut v = opts.to_vec();
    v.push("--");
    v.extend(cmd.iter().map(String::as_str));
    v
}

/// `--lockname LOCK -- CMD...`
pub fn lock_argv<'a>(lock: &'a str, cmd: &'a [String]) -> Vec<&'a str> {
    argv(&["--lockname", lock], cmd)
}

/// Starts `cmd` (a switchman command of [`Job::command`]'s making, with changes).
pub fn spawn_command(mut cmd: Command) -> Child {
    cmd.spawn().expect("start switchman")
}

/// Runs `cmd` to the end and returns (exit code, stderr).
pub async fn run_command(mut cmd: Command) -> (i32, String) {
    code_and_stderr(cmd.output().await.unwrap())
}

/// Waits for switchman to end; returns (exit code, stderr).
pub async fn finish(child: Child) -> (i32, String) {
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("switchman did not end within 60 s")
        .unwrap();
    code_and_stderr(out)
}

/// Waits for switchman to end, which it must do with exit code 0.
pub async fn finish_ok(child: Child) {
    let (code, stderr) = finish(child).await;
    assert_eq!(code, 0, "{stderr}");
}

fn code_and_stderr(out: Output) -> (i32, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What a finished command left: its exit code (-1 if a signal ended it) and its output.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to its end and keeps what it printed.
pub async fn output(mut cmd: Command) -> Out {
    let out = cmd.output().await.unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
