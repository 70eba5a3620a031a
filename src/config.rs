//! The config file (docs/config.md): JSON, keys of the original plus a few of ours.
//!
//! Parsing is strict about what it understands and lenient about what it does not: a wrong type
//! or a missing required key is an error naming the file and the key, while an unknown key is
//! only a warning, so a config shared with the original tool (or a newer switchman) keeps working.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::security::{self, Security};
use crate::zk::{self, paths::check_component};

/// Where the config lives when neither `-c` nor `SWITCHMAN_CONFIG` says otherwise.
pub const DEFAULT_PATH: &str = "/etc/switchman.conf";

/// Log levels of the original, mapped onto tracing's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Critical,
}

/// How `logfile` lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One line per event: timestamp, `[pid]`, level, message; read by people.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Whether CMD's output reaches switchman's stdout and stderr as it comes (`output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    Always,
    /// Cron-quiet: captured, and shown on stderr at the end only if the run did not succeed.
    OnFailure,
}

/// The most bytes of output one run of the history keeps (`output_tail`).
pub const MAX_OUTPUT_TAIL: u64 = 65536;
/// The most runs a history keeps (`history`).
pub const MAX_HISTORY: u64 = 100;
/// The most output a whole history keeps (`history` × `output_tail`): with JSON's escaping and
/// each run's other fields, a history stays under half of ZooKeeper's 1 MB node limit.
pub const MAX_HISTORY_OUTPUT: u64 = 262144;

/// A parsed and validated config file.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    /// Absolute znode path, no trailing slash (unless it is "/").
    pub prefix: String,
    /// `host:port,...` with an optional `/chroot`, handed to the client as it is.
    pub zkhosts: String,
    pub logfile: Option<PathBuf>,
    pub logfile_format: LogFormat,
    /// Also send lines at `loglevel` and above to the systemd journal, with structured fields.
    pub journald: bool,
    pub loglevel: LogLevel,
    /// `None` waits forever (the original's 0).
    pub resources_wait_timeout: Option<Duration>,
    pub termination_timeout: Duration,
    pub data_read_len: usize,
    /// Asked of the servers; they may negotiate it into their min/max bounds.
    pub session_timeout: Duration,
    /// How long to keep trying to establish a session before giving up with exit 69.
    pub connect_timeout: Duration,
    /// The ensemble's `tickTime`: the leader hears of our session from a follower once every
    /// half tick, which bounds how stale the leader's view of us may be (see `zk::liveness`).
    pub server_tick_time: Duration,
    /// Exit code of a skipped run (default 0, the original's behaviour).
    pub busy_exit_code: i32,
    /// Overrides this host's FQDN (containers, tests).
    pub fqdn: Option<String>,
    /// Write a run record for every run with a lock, not only with `--min-interval`.
    pub record_runs: bool,
    /// Capture CMD's stdout and stderr through pipes (`capture_output`).
    pub capture_output: bool,
    pub output: OutputMode,
    /// Bytes of output kept in each run of the history.
    pub output_tail: usize,
    /// Runs kept in each job's history.
    pub history: usize,
    /// Where each run leaves its job's textfile for node_exporter (see `metrics`).
    pub metrics_dir: Option<PathBuf>,
    /// `auth`, `acl`, `acl_extra` and `tls`, their files read (docs/security.md).
    pub security: Security,
    /// Keys this switchman does not know, sorted.
    pub unknown_keys: Vec<String>,
    /// The unknown keys as messages, and warnings about the security keys, for the logfile
    /// (and stderr only with `-v`, so that a config newer than some binaries does not make cron
    /// mail every run).
    pub warnings: Vec<String>,
}

pub(crate) use crate::keys::value;
pub use crate::keys::{KEYS, Key, Type, key_named};

impl Config {
    /// Reads and validates the config at `path`. Touches nothing else, so a config error can
    /// never leave anything behind in ZooKeeper.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read(path).map_err(|e| {
            Error::Config(format!("cannot read config file {}: {e}", path.display()))
        })?;
        Config::parse(path, &text)
    }

    /// Parses config text; `path` is used for messages only.
    pub fn parse(path: &Path, text: &[u8]) -> Result<Config> {
        let file = path.display().to_string();
        let value: Value = serde_json::from_slice(text)
            .map_err(|e| Error::Config(format!("{file} is not valid JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(Error::Config(format!("{file} must hold a JSON object")));
        };
        let keys = Keys {
            file: &file,
            map: &map,
        };

        let prefix = keys
            .string("prefix")?
            .ok_or_else(|| Error::Config(format!("{file}: key \"prefix\" is required")))?;
        check_prefix(&prefix).map_err(|e| Error::Config(format!("{file}: key \"prefix\": {e}")))?;
        let zkhosts = keys
            .string("zkhosts")?
            .ok_or_else(|| Error::Config(format!("{file}: key \"zkhosts\" is required")))?;
        check_zkhosts(&zkhosts)
            .map_err(|e| Error::Config(format!("{file}: key \"zkhosts\": {e}")))?;

        let loglevel = match keys.string("loglevel")?.as_deref() {
            None | Some("info") => LogLevel::Info,
            Some("debug") => LogLevel::Debug,
            Some("warning") | Some("warn") => LogLevel::Warning,
            Some("critical") | Some("error") => LogLevel::Critical,
            Some(other) => {
                return Err(Error::Config(format!(
                    "{file}: key \"loglevel\": {other:?} is not one of debug, info, warning, critical"
                )));
            }
        };
        let fqdn = keys.string("fqdn")?;
        if let Some(f) = &fqdn {
            check_component("fqdn", f)
                .map_err(|e| Error::Config(format!("{file}: key \"fqdn\": {e}")))?;
        }
        let resources_wait_timeout = keys
            .seconds("resources_wait_timeout")?
            .filter(|d| !d.is_zero());
        let session_timeout = keys
            .seconds("session_timeout")?
            .unwrap_or(Duration::from_secs(10));
        if session_timeout.is_zero() {
            return Err(Error::Config(format!(
                "{file}: key \"session_timeout\" must be more than 0"
            )));
        }
        let server_tick_time = keys
            .seconds("server_tick_time")?
            .unwrap_or(Duration::from_secs(2));
        // The heartbeat's proof trails the present by about a tick (see `zk::liveness`); with a
        // tick over a quarter of the session, CMD would be stopped at every hiccup.
        if server_tick_time.is_zero() || server_tick_time > session_timeout / 4 {
            return Err(Error::Config(format!(
                "{file}: key \"server_tick_time\" ({:.3}s) must be more than 0 and at most a quarter \
                 of session_timeout ({:.3}s); set it to the ensemble's tickTime, or raise session_timeout",
                server_tick_time.as_secs_f64(),
                session_timeout.as_secs_f64()
            )));
        }
        let busy_exit_code = match keys.integer("busy_exit_code")? {
            None => 0,
            Some(c @ 0..=255) => c as i32,
            Some(c) => {
                return Err(Error::Config(format!(
                    "{file}: key \"busy_exit_code\": {c} is not an exit code (0 to 255)"
                )));
            }
        };
        let metrics_dir = keys.string("metrics_dir")?.map(PathBuf::from);
        // A relative directory would be relative to wherever cron starts the run.
        if let Some(dir) = metrics_dir.as_ref().filter(|d| !d.is_absolute()) {
            return Err(Error::Config(format!(
                "{file}: key \"metrics_dir\": {:?} must be an absolute path",
                dir.display().to_string()
            )));
        }
        let logfile_format = match keys.string("logfile_format")?.as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(Error::Config(format!(
                    "{file}: key \"logfile_format\": {other:?} is not one of text, json"
                )));
            }
        };
        let output = match keys.string("output")?.as_deref() {
            None | Some("always") => OutputMode::Always,
            Some("on-failure") => OutputMode::OnFailure,
            Some(other) => {
                return Err(Error::Config(format!(
                    "{file}: key \"output\": {other:?} is not one of always, on-failure"
                )));
            }
        };
        let output_tail = keys.integer("output_tail")?.unwrap_or(4096);
        if output_tail > MAX_OUTPUT_TAIL {
            return Err(Error::Config(format!(
                "{file}: key \"output_tail\": {output_tail} is more than {MAX_OUTPUT_TAIL} bytes"
            )));
        }
        let history = keys.integer("history")?.unwrap_or(20);
        if !(1..=MAX_HISTORY).contains(&history) {
            return Err(Error::Config(format!(
                "{file}: key \"history\": {history} is not a number of runs from 1 to {MAX_HISTORY}"
            )));
        }
        if history * output_tail > MAX_HISTORY_OUTPUT {
            return Err(Error::Config(format!(
                "{file}: keys \"history\" ({history}) and \"output_tail\" ({output_tail}) keep \
                 {} bytes of output per job, more than {MAX_HISTORY_OUTPUT}: the history must \
                 stay well inside ZooKeeper's 1 MB node limit; lower either",
                history * output_tail
            )));
        }
        let unknown_keys: Vec<String> = map
            .keys()
            .filter(|k| key_named(k).is_none())
            .cloned()
            .collect();
        let mut warnings: Vec<String> = unknown_keys
            .iter()
            .map(|k| format!("{file}: unknown key {k:?} ignored"))
            .collect();
        let security = security::parse(&file, &map, &mut warnings)?;

        Ok(Config {
            path: path.to_path_buf(),
            prefix: normalise_prefix(&prefix),
            zkhosts,
            logfile: keys.string("logfile")?.map(PathBuf::from),
            logfile_format,
            journald: keys.boolean("journald")?.unwrap_or(false),
            loglevel,
            resources_wait_timeout,
            termination_timeout: keys
                .seconds("termination_timeout")?
                .unwrap_or(Duration::from_secs(10)),
            data_read_len: keys
                .integer("data_read_len")?
                .map(|n| n as usize)
                .unwrap_or(65535),
            session_timeout,
            connect_timeout: keys
                .seconds("connect_timeout")?
                .unwrap_or(Duration::from_secs(10)),
            server_tick_time,
            busy_exit_code,
            fqdn,
            record_runs: keys.boolean("record_runs")?.unwrap_or(false),
            capture_output: keys.boolean("capture_output")?.unwrap_or(false),
            output,
            output_tail: output_tail as usize,
            history: history as usize,
            security,
            unknown_keys,
            metrics_dir,
            warnings,
        })
    }
}

/// Typed access to the keys of one config object, with errors that name file and key.
struct Keys<'a> {
    file: &'a str,
    map: &'a Map<String, Value>,
}

impl Keys<'_> {
    fn wrong(&self, key: &str, want: Type, got: &Value) -> Error {
        Error::Config(format!(
            "{}: key {key:?} must be {}, not {got}",
            self.file,
            want.want()
        ))
    }

    fn get(&self, key: &str, kind: Type) -> Option<&Value> {
        value(self.map, key, kind)
    }

    fn string(&self, key: &str) -> Result<Option<String>> {
        match self.get(key, Type::String) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.wrong(key, Type::String, v)),
        }
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key, Type::Boolean) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.wrong(key, Type::Boolean, v)),
        }
    }

    fn integer(&self, key: &str) -> Result<Option<u64>> {
        match self.get(key, Type::Integer) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.wrong(key, Type::Integer, v)),
        }
    }

    /// Seconds as a non-negative number; fractions are allowed (tests use sub-second values).
    /// The original wrote some numbers as strings, so "10" is accepted too.
    fn seconds(&self, key: &str) -> Result<Option<Duration>> {
        let v = match self.get(key, Type::Seconds) {
            None | Some(Value::Null) => return Ok(None),
            Some(v) => v,
        };
        let secs = match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match secs {
            Some(s) if s.is_finite() && (0.0..=1e9).contains(&s) => {
                Ok(Some(Duration::from_secs_f64(s)))
            }
            _ => Err(self.wrong(key, Type::Seconds, v)),
        }
    }
}

fn check_prefix(prefix: &str) -> std::result::Result<(), String> {
    if !prefix.starts_with('/') {
        return Err(format!(
            "{prefix:?} must be an absolute znode path (start with /)"
        ));
    }
    if prefix == "/" {
        return Ok(());
    }
    for part in prefix.trim_end_matches('/')[1..].split('/') {
        check_component("path component", part).map_err(|e| format!("{prefix:?}: {e}"))?;
    }
    // "zookeeper" is the server's own subtree; writing there fails in confusing ways.
    if prefix == "/zookeeper" || prefix.starts_with("/zookeeper/") {
        return Err(format!(
            "{prefix:?} is inside /zookeeper, which the server reserves"
        ));
    }
    Ok(())
}

fn normalise_prefix(prefix: &str) -> String {
    match prefix.trim_end_matches('/') {
        "" => "/".to_string(),
        p => p.to_string(),
    }
}

fn check_zkhosts(zkhosts: &str) -> std::result::Result<(), String> {
    let (hosts, chroot) = match zkhosts.find('/') {
        Some(i) => (&zkhosts[..i], Some(&zkhosts[i..])),
        None => (zkhosts, None),
    };
    if hosts.trim().is_empty() {
        return Err("no ZooKeeper hosts given (expected host:port,host:port[/chroot])".into());
    }
    for host in hosts.split(',') {
        let host = host.trim();
        let port = host.rsplit_once(':').map(|(_, p)| p);
        if host.is_empty() || port.is_some_and(|p| p.parse::<u16>().is_err()) {
            return Err(format!("{host:?} is not host or host:port"));
        }
    }
    if let Some(chroot) = chroot {
        check_prefix(chroot).map_err(|e| format!("chroot {e}"))?;
    }
    Ok(())
}

/// The session's part of the config.
impl Config {
    pub fn zk(&self) -> zk::Options {
        zk::Options {
            zkhosts: self.zkhosts.clone(),
            session_timeout: self.session_timeout,
            connect_timeout: self.connect_timeout,
            server_tick_time: self.server_tick_time,
            security: self.security.clone(),
            path: self.path.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
