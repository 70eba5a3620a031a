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

/// What a config key's value must be. [`Type::want`] is the phrase of the error a value of
/// another type gets, and [`Type::doc`] its name in the docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    String,
    Boolean,
    /// A whole number ≥ 0.
    Integer,
    /// Seconds, fractions allowed; a string of a number too, as the original wrote some.
    Seconds,
    Object,
    /// A list of strings.
    Strings,
}

impl Type {
    /// What the value "must be", in an error about a value of another type.
    pub fn want(self) -> &'static str {
        match self {
            Type::String => "a string",
            Type::Boolean => "true or false",
            Type::Integer => "a whole number ≥ 0",
            Type::Seconds => "a number of seconds ≥ 0",
            Type::Object => "an object",
            Type::Strings => "a list of strings",
        }
    }

    /// The type's name in the docs.
    pub fn doc(self) -> &'static str {
        match self {
            Type::String => "string",
            Type::Boolean => "boolean",
            Type::Integer => "integer",
            Type::Seconds => "seconds",
            Type::Object => "object",
            Type::Strings => "list of strings",
        }
    }
}

/// One config key: its name, its type, its default (as the docs say it) and one line of meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub name: &'static str,
    pub kind: Type,
    pub default: &'static str,
    pub meaning: &'static str,
    /// Ours, not the original's.
    pub new: bool,
}

const fn key(
    name: &'static str,
    kind: Type,
    default: &'static str,
    new: bool,
    meaning: &'static str,
) -> Key {
    Key {
        name,
        kind,
        default,
        meaning,
        new,
    }
}

/// Every key switchman reads, in the docs' order. Any other key is unknown: a warning, never an
/// error. `docs/config.md`, switchman.conf(5) and the unknown-key warnings of switchman and
/// `switchmanctl check-config` all come from this table; [`Keys`] refuses to read a key that is
/// not in it (in debug builds, so every test would catch it), and with another type.
pub const KEYS: &[Key] = &[
    key(
        "prefix",
        Type::String,
        "required",
        false,
        "absolute znode path, e.g. `/myproject/switchman`",
    ),
    key(
        "zkhosts",
        Type::String,
        "required",
        false,
        "`host:port,host:port,...`, optionally with a `/chroot` suffix",
    ),
    key(
        "logfile",
        Type::String,
        "none",
        false,
        "append log lines here, with a timestamp and switchman's pid; it must be writable by the \
         user the jobs run as (otherwise every run exits 78)",
    ),
    key(
        "logfile_format",
        Type::String,
        "`text`",
        true,
        "`text`, or `json` for one JSON object per line, for log shippers (see [Logging](logging.md))",
    ),
    key(
        "journald",
        Type::Boolean,
        "`false`",
        true,
        "also send the log lines to the systemd journal, with the run's fields (see [Logging](logging.md))",
    ),
    key(
        "loglevel",
        Type::String,
        "`info`",
        false,
        "`debug`, `info`, `warning` or `critical`, for `logfile` and `journald`",
    ),
    key(
        "resources_wait_timeout",
        Type::Seconds,
        "`0`",
        false,
        "seconds to wait for leases; 0 waits forever; then exit 75",
    ),
    key(
        "termination_timeout",
        Type::Seconds,
        "`10`",
        false,
        "seconds between SIGTERM and SIGKILL when switchman stops CMD (cut short to keep the \
         no-overlap deadline)",
    ),
    key(
        "data_read_len",
        Type::Integer,
        "`65535`",
        false,
        "accepted for compatibility",
    ),
    key(
        "session_timeout",
        Type::Seconds,
        "`10`",
        true,
        "seconds; the servers may negotiate it into their bounds",
    ),
    key(
        "connect_timeout",
        Type::Seconds,
        "`10`",
        true,
        "seconds to keep trying to establish a session before exiting 69",
    ),
    key(
        "server_tick_time",
        Type::Seconds,
        "`2`",
        true,
        "seconds; the ensemble's `tickTime`, at most `session_timeout`/4. The heartbeat's proof \
         that the leader knows our session trails by about a tick (see [Why two hosts never run \
         the job at once](safety.md#why-two-hosts-never-run-the-job-at-once))",
    ),
    key(
        "busy_exit_code",
        Type::Integer,
        "`0`",
        true,
        "exit code of a skipped run (0 to 255)",
    ),
    key(
        "fqdn",
        Type::String,
        "resolved",
        true,
        "this host's FQDN, for containers; `$SWITCHMAN_FQDN` overrides both",
    ),
    key(
        "record_runs",
        Type::Boolean,
        "`false`",
        true,
        "write a run record (see [Run records](guide.md#run-records)) for every run with a lock, not only with \
         `--min-interval`",
    ),
    key(
        "metrics_dir",
        Type::String,
        "none",
        true,
        "absolute path of node_exporter's textfile directory; every run leaves its job's metrics \
         there (see [Monitoring](monitoring.md))",
    ),
    key(
        "auth",
        Type::Object,
        "none",
        true,
        "`{\"scheme\": \"digest\" or \"sasl-digest\", \"credentials_file\": PATH}`; the file \
         holds `user:password` and must be its owner's alone (see [Securing it](security.md))",
    ),
    key(
        "acl",
        Type::String,
        "`creator` with `auth`, else `open`",
        true,
        "the ACL of every node switchman creates: `creator` (the creating identity may do \
         anything, everyone else may read) or `open` (anyone may do anything, as the original)",
    ),
    key(
        "acl_extra",
        Type::Strings,
        "`[]`",
        true,
        "more identities (`\"scheme:id\"`, e.g. `\"digest:ops:HASH\"`) given all permissions on \
         every node, with `acl` `creator`",
    ),
    key(
        "tls",
        Type::Object,
        "none",
        true,
        "`{\"ca_file\": PATH, \"cert_file\": PATH, \"key_file\": PATH}` (certificate and key only \
         for mutual TLS): TLS to every server in `zkhosts`",
    ),
];

/// The value of `key` in the config object `map`. [`KEYS`] must list `key` with type `kind`: a
/// key read and missing from the table would be read and yet warned about as unknown.
pub(crate) fn value<'a>(map: &'a Map<String, Value>, key: &str, kind: Type) -> Option<&'a Value> {
    debug_assert_eq!(
        key_named(key).map(|k| k.kind),
        Some(kind),
        "config key {key:?} is not in config::KEYS with type {kind:?}"
    );
    map.get(key)
}

/// The key of [`KEYS`] called `name`.
pub fn key_named(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

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
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(Path::new("/etc/sm.conf"), text.as_bytes())
    }

    fn config_err(text: &str) -> String {
        match parse(text) {
            Err(Error::Config(m)) => m,
            other => panic!("expected a config error for {text}, got {other:?}"),
        }
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse(r#"{"prefix": "/a/b/", "zkhosts": "z1:2181,z2:2181/chroot"}"#).unwrap();
        assert_eq!(c.prefix, "/a/b");
        assert_eq!(c.session_timeout, Duration::from_secs(10));
        assert_eq!(c.termination_timeout, Duration::from_secs(10));
        assert_eq!(c.resources_wait_timeout, None);
        assert_eq!(c.busy_exit_code, 0);
        assert_eq!(c.loglevel, LogLevel::Info);
        assert_eq!(c.server_tick_time, Duration::from_secs(2));
        assert!(!c.record_runs);
        assert_eq!(c.logfile_format, LogFormat::Text);
        assert!(!c.journald);
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn record_runs_is_a_boolean() {
        let c = parse(r#"{"prefix": "/p", "zkhosts": "z:1", "record_runs": true}"#).unwrap();
        assert!(c.record_runs);
        let e = config_err(r#"{"prefix": "/p", "zkhosts": "z:1", "record_runs": "yes"}"#);
        assert!(
            e.contains("record_runs") && e.contains("/etc/sm.conf"),
            "{e}"
        );
    }

    #[test]
    fn log_sinks_are_chosen_in_the_config() {
        let c = parse(
            r#"{"prefix": "/p", "zkhosts": "z:1", "logfile": "/l", "logfile_format": "json",
                "journald": true}"#,
        )
        .unwrap();
        assert_eq!(c.logfile_format, LogFormat::Json);
        assert!(c.journald);
        let e = config_err(r#"{"prefix": "/p", "zkhosts": "z:1", "logfile_format": "xml"}"#);
        assert!(
            e.contains("logfile_format") && e.contains("text, json"),
            "{e}"
        );
        let e = config_err(r#"{"prefix": "/p", "zkhosts": "z:1", "journald": "yes"}"#);
        assert!(e.contains("\"journald\" must be true or false"), "{e}");
    }

    #[test]
    fn a_tick_over_a_quarter_of_the_session_is_refused() {
        let e = parse(r#"{"prefix": "/p", "zkhosts": "z:1", "session_timeout": 4}"#).unwrap_err();
        assert_eq!(e.exit_code(), 78);
        assert!(e.to_string().contains("server_tick_time"), "{e}");
        let c = parse(
            r#"{"prefix": "/p", "zkhosts": "z:1", "session_timeout": 4, "server_tick_time": 1}"#,
        );
        assert_eq!(c.unwrap().server_tick_time, Duration::from_secs(1));
    }

    #[test]
    fn all_keys_of_the_original_are_honoured() {
        let c = parse(
            r#"{"prefix": "/p", "zkhosts": "z:1", "logfile": "/tmp/l", "loglevel": "debug",
                "resources_wait_timeout": 5, "termination_timeout": "3", "data_read_len": 100,
                "session_timeout": 1.5, "server_tick_time": 0.1, "busy_exit_code": 75,
                "whatever": 1}"#,
        )
        .unwrap();
        assert_eq!(c.logfile.as_deref(), Some(Path::new("/tmp/l")));
        assert_eq!(c.loglevel, LogLevel::Debug);
        assert_eq!(c.resources_wait_timeout, Some(Duration::from_secs(5)));
        assert_eq!(c.termination_timeout, Duration::from_secs(3));
        assert_eq!(c.data_read_len, 100);
        assert_eq!(c.session_timeout, Duration::from_millis(1500));
        assert_eq!(c.busy_exit_code, 75);
        assert_eq!(c.unknown_keys, ["whatever"]);
        assert_eq!(c.warnings.len(), 1);
        assert!(c.warnings[0].contains("whatever"));
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        assert!(config_err("{").contains("/etc/sm.conf is not valid JSON"));
        assert!(config_err("[]").contains("JSON object"));
        assert!(config_err(r#"{"zkhosts": "z:1"}"#).contains("\"prefix\" is required"));
        assert!(config_err(r#"{"prefix": "/p"}"#).contains("\"zkhosts\" is required"));
        assert!(config_err(r#"{"prefix": "p", "zkhosts": "z:1"}"#).contains("absolute"));
        assert!(config_err(r#"{"prefix": "/a//b", "zkhosts": "z:1"}"#).contains("\"prefix\""));
        assert!(config_err(r#"{"prefix": 3, "zkhosts": "z:1"}"#).contains("must be a string"));
        assert!(config_err(r#"{"prefix": "/p", "zkhosts": ""}"#).contains("\"zkhosts\""));
        assert!(config_err(r#"{"prefix": "/p", "zkhosts": "z:x"}"#).contains("\"zkhosts\""));
        let e = config_err(r#"{"prefix": "/p", "zkhosts": "z:1", "session_timeout": "soon"}"#);
        assert!(
            e.contains("/etc/sm.conf") && e.contains("session_timeout"),
            "{e}"
        );
        let e = config_err(r#"{"prefix": "/p", "zkhosts": "z:1", "loglevel": "loud"}"#);
        assert!(e.contains("loglevel"), "{e}");
        let e = config_err(r#"{"prefix": "/p", "zkhosts": "z:1", "busy_exit_code": 300}"#);
        assert!(e.contains("busy_exit_code"), "{e}");
        let e = config_err(r#"{"prefix": "/p", "zkhosts": "z:1", "metrics_dir": "prom"}"#);
        assert!(e.contains("/etc/sm.conf: key \"metrics_dir\""), "{e}");
        let e = config_err(r#"{"prefix": "/p", "zkhosts": "z:1", "metrics_dir": 1}"#);
        assert!(e.contains("\"metrics_dir\" must be a string"), "{e}");
        let c = parse(r#"{"prefix": "/p", "zkhosts": "z:1", "metrics_dir": "/var/lib/prom"}"#);
        assert_eq!(
            c.unwrap().metrics_dir.as_deref(),
            Some(Path::new("/var/lib/prom"))
        );
    }

    #[test]
    fn every_key_of_the_table_is_known_and_no_other() {
        let mut text = String::from(r#"{"prefix": "/p", "zkhosts": "z:1""#);
        for key in KEYS.iter().filter(|k| k.default != "required") {
            text.push_str(&format!(", {:?}: null", key.name));
        }
        text.push_str(r#", "prefixx": 1}"#);
        let c = parse(&text).unwrap();
        assert_eq!(c.unknown_keys, ["prefixx"]);
        assert_eq!(
            c.warnings,
            ["/etc/sm.conf: unknown key \"prefixx\" ignored"]
        );
        let mut names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), KEYS.len(), "a key twice in KEYS");
    }

    #[test]
    fn the_tables_defaults_are_the_parsers() {
        let c = parse(r#"{"prefix": "/p", "zkhosts": "z:1"}"#).unwrap();
        let default = |name: &str| key_named(name).unwrap().default.trim_matches('`');
        let secs = |name: &str| default(name).parse::<f64>().unwrap();
        assert_eq!(
            c.termination_timeout.as_secs_f64(),
            secs("termination_timeout")
        );
        assert_eq!(c.session_timeout.as_secs_f64(), secs("session_timeout"));
        assert_eq!(c.connect_timeout.as_secs_f64(), secs("connect_timeout"));
        assert_eq!(c.server_tick_time.as_secs_f64(), secs("server_tick_time"));
        assert_eq!(secs("resources_wait_timeout"), 0.0);
        assert_eq!(c.resources_wait_timeout, None);
        assert_eq!(c.data_read_len.to_string(), default("data_read_len"));
        assert_eq!(c.busy_exit_code.to_string(), default("busy_exit_code"));
        assert_eq!(c.journald.to_string(), default("journald"));
        assert_eq!(c.record_runs.to_string(), default("record_runs"));
        assert_eq!(default("loglevel"), "info");
        assert_eq!(c.loglevel, LogLevel::Info);
        assert_eq!(default("logfile_format"), "text");
        assert_eq!(c.logfile_format, LogFormat::Text);
    }

    #[test]
    fn a_value_of_another_type_is_refused_with_the_tables_type() {
        for key in KEYS
            .iter()
            .filter(|k| k.kind != Type::Object && k.kind != Type::Strings)
        {
            let wrong = if key.kind == Type::Boolean { "1" } else { "[]" };
            // For prefix and zkhosts, the later of two values counts, as serde_json reads them.
            let text = format!(
                r#"{{"prefix": "/p", "zkhosts": "z:1", {:?}: {wrong}}}"#,
                key.name
            );
            let e = config_err(&text);
            if key.name == "acl" {
                assert!(e.contains("must be \"creator\" or \"open\""), "{e}");
            } else {
                assert!(
                    e.contains(&format!("key {:?} must be {}", key.name, key.kind.want())),
                    "{e}"
                );
            }
        }
    }

    #[test]
    fn missing_file_is_a_config_error() {
        let e = Config::load(Path::new("/nonexistent/switchman.conf")).unwrap_err();
        assert_eq!(e.exit_code(), 78);
        assert!(e.to_string().contains("/nonexistent/switchman.conf"));
    }

    #[test]
    fn the_example_config_parses() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/switchman.conf"));
        let c = Config::load(path).unwrap();
        assert_eq!(c.prefix, "/myproject/switchman");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }
}
