//! The table of config keys ([`KEYS`]): name, type, default and meaning of every key switchman
//! reads. The parser reads keys through [`value`], which holds it to the table; the docs and
//! switchman.conf(5) are rendered from it (`crate::manual`, `examples/gen_docs.rs`).

use serde_json::{Map, Value};

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
        "seconds between SIGTERM and SIGKILL when switchman stops CMD; a stop because ZooKeeper \
         went silent gives at most `session_timeout`/10 (at least 0.5 s), and a shorter one \
         starts it later (see [the arithmetic](safety.md#why-two-hosts-never-run-the-job-at-once))",
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
         that the leader knows our session trails by about two ticks, which the outages a run \
         rides out pay for (see [Why two hosts never run the job at once](safety.md#why-two-hosts-never-run-the-job-at-once))",
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
        "write a run record and history (see [Run records](guide.md#run-records)) for every run \
         with a lock, not only with `--min-interval` or captured output",
    ),
    key(
        "capture_output",
        Type::Boolean,
        "`false`",
        true,
        "capture CMD's stdout and stderr through pipes: copied on to switchman's, line by line, \
         to the log destinations, and their tail into the run history (see [Output and \
         history](guide.md#output-and-history)); `--capture-output` sets it for one run",
    ),
    key(
        "output",
        Type::String,
        "`always`",
        true,
        "`always`, or `on-failure` for cron-quiet runs: CMD's output is captured and shown on \
         stderr only if it did not succeed (`--quiet-unless-failed` for one run)",
    ),
    key(
        "output_tail",
        Type::Integer,
        "`4096`",
        true,
        "bytes of captured output kept in each run of the history (0 to 65536; with `history`, \
         at most 262144 in all)",
    ),
    key(
        "history",
        Type::Integer,
        "`20`",
        true,
        "runs of each job kept in its history, the oldest dropped first (1 to 100); a history is \
         written whenever a run record is",
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
