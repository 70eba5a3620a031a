//! Helpers for running the real switchman binary against a test ZooKeeper.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::process::{Child, Command};
use zookeeper_client::Client;

/// Session timeout used by the tests: short, so that fault tests end quickly.
pub const SESSION_TIMEOUT: f64 = 2.0;

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
            "termination_timeout": 1,
            "connect_timeout": 5,
            "logfile": dir.path().join("switchman.log"),
            "loglevel": "debug",
        });
        for (k, v) in extra.as_object().into_iter().flatten() {
            config[k] = v.clone();
        }
        Job::in_dir(dir, prefix, zkhosts, &config.to_string())
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

    /// `switchman -c CONFIG ARGS...`, stdout/stderr captured, killed if the test drops it.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchman"));
        cmd.arg("-c")
            .arg(&self.config)
            .args(args)
            .env("JOB_DIR", self.dir.path())
            .env_remove("DEBUG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args).spawn().expect("start switchman")
    }

    /// Runs switchman to the end and returns (exit code, stderr).
    pub async fn run(&self, args: &[&str]) -> (i32, String) {
        let out = self.command(args).output().await.unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn lock_path(&self, name: &str) -> String {
        format!("{}/locks/{name}", self.prefix)
    }
}

/// Waits for switchman to end; returns (exit code, stderr).
pub async fn finish(child: Child) -> (i32, String) {
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("switchman did not end within 60 s")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A plain client for the test's own look at ZooKeeper.
pub async fn zk(connect: &str) -> Client {
    Client::connector()
        .with_session_timeout(Duration::from_secs(2))
        .connect(connect)
        .await
        .expect("test client connects")
}

/// Waits until `path` exists and returns its text (CMD's records appear as files).
pub async fn wait_for_file(path: &Path) -> String {
    for _ in 0..1500 {
        if let Ok(text) = std::fs::read_to_string(path)
            && !text.is_empty()
        {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{} did not appear within 30 s", path.display());
}

/// Waits until `cond` holds, checking every 20 ms, for at most 30 s.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..1500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting until {what}");
}

/// True once the process is gone or a zombie: it runs no more code either way.
pub fn is_dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

/// A shell CMD that records its pid in `$JOB_DIR/NAME.pid`, notes SIGTERM in `NAME.term`, and
/// then waits until `$JOB_DIR/NAME.go` appears before exiting with `code`.
pub fn cmd_waiting(name: &str, code: i32) -> Vec<String> {
    let script = format!(
        r#"trap 'echo term > "$JOB_DIR/{name}.term"; exit 143' TERM
echo $$ > "$JOB_DIR/{name}.pid.tmp" && mv "$JOB_DIR/{name}.pid.tmp" "$JOB_DIR/{name}.pid"
env | grep ^SWITCHMAN_ > "$JOB_DIR/{name}.env"
while [ ! -e "$JOB_DIR/{name}.go" ]; do sleep 0.05; done
exit {code}"#
    );
    vec!["sh".into(), "-c".into(), script]
}

/// Creates the prefix node (with parents) if need be and sets its data: the groups and the
/// resources a test's runs read.
pub async fn set_prefix_data(client: &Client, prefix: &str, data: &str) {
    let folder =
        zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all());
    client.mkdir(prefix, &folder).await.unwrap();
    client
        .set_data(prefix, data.as_bytes(), None)
        .await
        .unwrap();
}
