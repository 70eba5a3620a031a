//! This host's record of each job for node_exporter's textfile collector (docs/monitoring.md):
//! after every run, `{metrics_dir}/switchman_{job}.prom` is replaced with what the run came to
//! and what the runs before it did.
//!
//! The file is its own memory: the counters and times of earlier runs are read back from it, so
//! nothing else has to be kept, and an operator who deletes it starts the counters afresh (which
//! Prometheus takes as a counter reset). Reading, adding and replacing happen under an `flock` of
//! a sidecar file that is never replaced, so two runs of one job that end at once on one host
//! both count; the `.prom` itself is replaced by a rename, so node_exporter never reads half a
//! file.
//!
//! Metrics are a by-product of the run: a directory that cannot be written, or a sidecar lock
//! that stays held, is logged as a warning, and the run exits as it would have without them.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions, Permissions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::config::Config;
use crate::outcome::Outcome;
use crate::timestamp;

/// How long a run waits for another run of the same job to finish its update. The lock is held
/// for a read and two small writes, so only a process stopped in the middle of them holds it
/// this long, and the run must not wait on that.
const LOCK_PATIENCE: Duration = Duration::from_secs(1);

/// One run as the textfile records it.
#[derive(Debug, Clone, Copy)]
pub struct RunEnd {
    pub outcome: Outcome,
    /// switchman's exit code.
    pub code: i32,
    /// From switchman's start to its end, waits included.
    pub took: Duration,
    /// When it ended: seconds since the epoch, this host's clock.
    pub at: f64,
}

/// After a run of `job` that began at `began` and came to `outcome` with exit code `code`:
/// records it in the job's textfile if the config has a `metrics_dir`. Never fails: a failure
/// to write is logged.
pub fn after_run(config: &Config, job: &str, began: Instant, outcome: Outcome, code: i32) {
    let Some(dir) = &config.metrics_dir else {
        return;
    };
    let run = RunEnd {
        outcome,
        code,
        took: began.elapsed(),
        at: timestamp::now_ms() as f64 / 1000.0,
    };
    if let Err(why) = record(dir, job, &run) {
        tracing::warn!(
            "metrics not written ({why}); the run is not affected (metrics_dir in {})",
            config.path.display()
        );
    }
}

/// `{dir}/switchman_{job}.prom`. Bytes that could be awkward in a file name (`/`, spaces,
/// anything beyond ASCII letters, digits, `.`, `_` and `-`) are written `%XX`, so that every
/// job has a file of its own; the `lock` label inside carries the name as it is.
pub fn textfile(dir: &Path, job: &str) -> PathBuf {
    let mut name = String::from("switchman_");
    for b in job.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'_' | b'-' => name.push(b as char),
            _ => {
                let _ = write!(name, "%{b:02X}");
            }
        }
    }
    name.push_str(".prom");
    dir.join(name)
}

/// Whether runs could write their textfiles in `dir`: a file made there and removed again
/// (for `switchmanctl check-config`, run as the user cron runs switchman as).
pub fn check_dir(dir: &Path) -> std::result::Result<(), String> {
    let probe = dir.join(format!(".switchman-check-{}", std::process::id()));
    File::create(&probe)
        .and_then(|_| std::fs::remove_file(&probe))
        .map_err(|e| format!("cannot write in {}: {e}", dir.display()))
}

/// Reads, updates and replaces the job's textfile under its sidecar lock.
fn record(dir: &Path, job: &str, run: &RunEnd) -> std::result::Result<(), String> {
    let path = textfile(dir, job);
    let sidecar = with_suffix(&path, ".lock");
    let lock_file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o644)
        .open(&sidecar)
        .map_err(|e| format!("cannot open {}: {e}", sidecar.display()))?;
    let _locked = lock(lock_file).map_err(|e| format!("{}: {e}", sidecar.display()))?;
    let before = match std::fs::read_to_string(&path) {
        Ok(text) => Kept::parse(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Kept::default(),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let text = before.after(run).render(job);
    let temp = with_suffix(&path, ".tmp");
    replace(&temp, &path, text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Takes the exclusive lock of `file`, waiting at most [`LOCK_PATIENCE`].
fn lock(file: File) -> std::result::Result<Flock<File>, String> {
    let give_up = Instant::now() + LOCK_PATIENCE;
    let mut file = file;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => return Ok(locked),
            Err((f, nix::errno::Errno::EWOULDBLOCK)) if Instant::now() < give_up => {
                file = f;
                std::thread::sleep(Duration::from_millis(2));
            }
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                return Err(format!(
                    "still locked by another run of the job after {LOCK_PATIENCE:?}"
                ));
            }
            Err((_, e)) => return Err(format!("cannot lock: {e}")),
        }
    }
}

/// Writes `data` to `temp` and renames it over `path`. Readable by all: node_exporter usually
/// runs as a user of its own, and cron's umask may be strict. Not synced to disk: a crash may
/// cost the last update, and a sync would cost every run more than the whole write.
fn replace(temp: &Path, path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut file = File::create(temp)?;
    file.set_permissions(Permissions::from_mode(0o644))?;
    file.write_all(data)?;
    drop(file);
    std::fs::rename(temp, path)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

const RUNS: &str = "switchman_job_runs_total";
const LAST_RUN: &str = "switchman_job_last_run_timestamp_seconds";
const LAST_SUCCESS: &str = "switchman_job_last_success_timestamp_seconds";
const LAST_FAILURE: &str = "switchman_job_last_failure_timestamp_seconds";
const LAST_EXIT_CODE: &str = "switchman_job_last_exit_code";
const LAST_DURATION: &str = "switchman_job_last_duration_seconds";

/// What a job's textfile says, and what the next run carries on from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Kept {
    /// Runs by outcome, in the order of [`Outcome::ALL`].
    pub runs: [u64; 5],
    /// The last run that was not skipped: when it ended, its exit code, how long it took.
    pub last_run: Option<f64>,
    pub last_exit_code: Option<i64>,
    pub last_duration: Option<f64>,
    /// When the last run whose CMD exited 0 ended.
    pub last_success: Option<f64>,
    /// When the last run whose CMD failed ended.
    pub last_failure: Option<f64>,
}

impl Kept {
    /// These numbers after `run`. Skipped runs only count: on most hosts of a fleet nearly every
    /// run skips, and the last real run's code and times must not be hidden by them.
    pub fn after(mut self, run: &RunEnd) -> Kept {
        self.runs[run.outcome.index()] += 1;
        if run.outcome != Outcome::Skipped {
            self.last_run = Some(run.at);
            self.last_exit_code = Some(i64::from(run.code));
            self.last_duration = Some(run.took.as_secs_f64());
        }
        match run.outcome {
            Outcome::Succeeded => self.last_success = Some(run.at),
            Outcome::Failed => self.last_failure = Some(run.at),
            _ => {}
        }
        self
    }

    /// The samples of our own families in a textfile we wrote. Anything else (comments, other
    /// families, lines that do not parse) is passed over, so a damaged file costs at worst the
    /// counts it lost.
    ///
    /// A textfile of a switchman before outcomes were named as operators read them counted
    /// `ran` (CMD ran, whatever its code) and `failed` (switchman's own failure): its `failed`
    /// count goes on as `error`, and its `ran` count, which cannot be split into `succeeded`
    /// and `failed`, is not carried over.
    pub fn parse(text: &str) -> Kept {
        let samples: Vec<_> = text.lines().filter_map(sample).collect();
        let old = samples.iter().any(|(name, labels, _)| {
            *name == RUNS && labels.iter().any(|(k, v)| k == "outcome" && v == "ran")
        });
        let mut kept = Kept::default();
        for (name, labels, value) in samples {
            match name {
                RUNS => {
                    let outcome = labels
                        .iter()
                        .find(|(k, _)| k == "outcome")
                        .and_then(|(_, v)| match (old, v.as_str()) {
                            (true, "failed") => Some(Outcome::Error),
                            (true, "ran") => None,
                            (_, label) => Outcome::parse(label),
                        });
                    if let Some(o) = outcome
                        && value >= 0.0
                    {
                        kept.runs[o.index()] = value as u64;
                    }
                }
                LAST_RUN => kept.last_run = Some(value),
                LAST_SUCCESS => kept.last_success = Some(value),
                LAST_FAILURE => kept.last_failure = Some(value),
                LAST_EXIT_CODE => kept.last_exit_code = Some(value as i64),
                LAST_DURATION => kept.last_duration = Some(value),
                _ => {}
            }
        }
        kept
    }

    /// The textfile for job `lock`, in Prometheus's classic text format.
    pub fn render(&self, lock: &str) -> String {
        let registry = Registry::new();
        let runs = IntCounterVec::new(
            Opts::new(RUNS, "Runs of the job on this host by outcome: succeeded (CMD exited 0), failed (CMD exited otherwise, or died of a signal switchman did not send), skipped, stopped (switchman stopped CMD: lock, lease, session or group lost, or a signal passed on), error (switchman itself failed)"),
            &["lock", "outcome"],
        )
        .expect("a valid family");
        for o in Outcome::ALL {
            runs.with_label_values(&[lock, o.label()])
                .inc_by(self.runs[o.index()]);
        }
        registry.register(Box::new(runs)).expect("registered once");
        let gauges = [
            (
                LAST_RUN,
                "When the last run on this host that was not skipped ended, seconds since the epoch",
                self.last_run,
            ),
            (
                LAST_SUCCESS,
                "When the last run on this host whose CMD exited 0 ended, seconds since the epoch",
                self.last_success,
            ),
            (
                LAST_FAILURE,
                "When the last run on this host whose CMD failed ended, seconds since the epoch",
                self.last_failure,
            ),
            (
                LAST_DURATION,
                "How long the last run on this host that was not skipped took, from switchman's start to its end",
                self.last_duration,
            ),
        ];
        for (name, help, value) in gauges {
            let family = prometheus::GaugeVec::new(Opts::new(name, help), &["lock"])
                .expect("a valid family");
            if let Some(v) = value {
                family.with_label_values(&[lock]).set(v);
            }
            registry
                .register(Box::new(family))
                .expect("registered once");
        }
        let code = IntGaugeVec::new(
            Opts::new(LAST_EXIT_CODE, "switchman's exit code of the last run on this host that was not skipped (CMD's own when it ran; 79 stopped; 64, 69, 70, 75, 77, 78, 126 or 127 when switchman failed)"),
            &["lock"],
        )
        .expect("a valid family");
        if let Some(c) = self.last_exit_code {
            code.with_label_values(&[lock]).set(c);
        }
        registry.register(Box::new(code)).expect("registered once");
        TextEncoder::new()
            .encode_to_string(&registry.gather())
            .expect("families with help and samples")
    }
}

/// A sample's labels, as (name, value) pairs.
type Labels = Vec<(String, String)>;

/// A sample line, `name{label="value",...} value`: its name, labels and value.
fn sample(line: &str) -> Option<(&str, Labels, f64)> {
    let line = line.trim();
    if line.starts_with('#') || line.is_empty() {
        return None;
    }
    let end = line.find(['{', ' '])?;
    let (name, mut rest) = line.split_at(end);
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        rest = inner;
        loop {
            rest = rest.trim_start_matches([',', ' ']);
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, after) = rest.split_once("=\"")?;
            let (value, after) = label_value(after)?;
            labels.push((key.trim().to_string(), value));
            rest = after;
        }
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some((name, labels, value))
}

/// A label value up to its closing quote, unescaped, and the text after that quote.
fn label_value(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &text[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                other => value.push(other),
            },
            c => value.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests;
