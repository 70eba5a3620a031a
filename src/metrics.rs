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
use crate::timestamp;

/// How long a run waits for another run of the same job to finish its update. The lock is held
/// for a read and two small writes, so only a process stopped in the middle of them holds it
/// this long, and the run must not wait on that.
const LOCK_PATIENCE: Duration = Duration::from_secs(1);

/// How a run ended, as the counter `switchman_job_runs_total` tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// CMD ran and ended by itself, with whatever exit code.
    Ran,
    /// The lock was held elsewhere, the task already queued, or the host not in the group.
    Skipped,
    /// CMD was stopped because the lock, a lease, the session or the membership was lost (79).
    Stopped,
    /// switchman itself failed (usage, ZooKeeper unavailable, timeout, config, CMD not found).
    Failed,
}

impl Outcome {
    const ALL: [Outcome; 4] = [
        Outcome::Ran,
        Outcome::Skipped,
        Outcome::Stopped,
        Outcome::Failed,
    ];

    fn label(self) -> &'static str {
        match self {
            Outcome::Ran => "ran",
            Outcome::Skipped => "skipped",
            Outcome::Stopped => "stopped",
            Outcome::Failed => "failed",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

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
const LAST_EXIT_CODE: &str = "switchman_job_last_exit_code";
const LAST_DURATION: &str = "switchman_job_last_duration_seconds";

/// What a job's textfile says, and what the next run carries on from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Kept {
    /// Runs by outcome, in the order of [`Outcome::ALL`].
    pub runs: [u64; 4],
    /// The last run that was not skipped: when it ended, its exit code, how long it took.
    pub last_run: Option<f64>,
    pub last_exit_code: Option<i64>,
    pub last_duration: Option<f64>,
    /// When the last run whose CMD exited 0 ended.
    pub last_success: Option<f64>,
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
        if run.outcome == Outcome::Ran && run.code == 0 {
            self.last_success = Some(run.at);
        }
        self
    }

    /// The samples of our own families in a textfile we wrote. Anything else (comments, other
    /// families, lines that do not parse) is passed over, so a damaged file costs at worst the
    /// counts it lost.
    pub fn parse(text: &str) -> Kept {
        let mut kept = Kept::default();
        for (name, labels, value) in text.lines().filter_map(sample) {
            match name {
                RUNS => {
                    let outcome = labels.iter().find(|(k, _)| k == "outcome");
                    if let Some(o) = Outcome::ALL
                        .iter()
                        .find(|o| outcome.is_some_and(|(_, v)| v == o.label()))
                        && value >= 0.0
                    {
                        kept.runs[o.index()] = value as u64;
                    }
                }
                LAST_RUN => kept.last_run = Some(value),
                LAST_SUCCESS => kept.last_success = Some(value),
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
            Opts::new(RUNS, "Runs of the job on this host by outcome: ran (CMD ran and ended by itself, whatever its exit code), skipped, stopped (lock, lease, session or group lost), failed (switchman itself failed)"),
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
mod tests {
    use super::*;

    fn run(outcome: Outcome, code: i32, at: f64) -> RunEnd {
        RunEnd {
            outcome,
            code,
            took: Duration::from_millis(1500),
            at,
        }
    }

    #[test]
    fn every_outcome_counts_and_skips_hide_nothing() {
        let kept = Kept::default()
            .after(&run(Outcome::Ran, 0, 100.5))
            .after(&run(Outcome::Ran, 3, 200.0))
            .after(&run(Outcome::Skipped, 0, 300.0))
            .after(&run(Outcome::Stopped, 79, 400.0))
            .after(&run(Outcome::Failed, 69, 500.0))
            .after(&run(Outcome::Skipped, 0, 600.0));
        assert_eq!(kept.runs, [2, 2, 1, 1]);
        assert_eq!(kept.last_success, Some(100.5));
        assert_eq!(kept.last_run, Some(500.0), "skips do not count as runs");
        assert_eq!(kept.last_exit_code, Some(69));
        assert_eq!(kept.last_duration, Some(1.5));
    }

    #[test]
    fn a_textfile_is_read_back_as_written_whatever_the_name() {
        let kept = Kept::default()
            .after(&run(Outcome::Ran, 0, 1_764_136_471.077))
            .after(&run(Outcome::Failed, 78, 1_764_136_480.5))
            .after(&run(Outcome::Skipped, 0, 1_764_136_490.0));
        for name in [
            "backup",
            "we\"ird} name=\"x\",outcome=\"ran\"",
            "new\nline\\",
            "",
        ] {
            let text = kept.render(name);
            assert_eq!(Kept::parse(&text), kept, "{name:?}:\n{text}");
            let (_, labels, _) = text.lines().find_map(sample).unwrap();
            assert!(labels.contains(&("lock".into(), name.into())), "{labels:?}");
        }
    }

    #[test]
    fn a_first_run_writes_no_times_it_does_not_know() {
        let text = Kept::default()
            .after(&run(Outcome::Skipped, 0, 1.0))
            .render("j");
        assert!(text.contains("switchman_job_runs_total{lock=\"j\",outcome=\"skipped\"} 1\n"));
        assert!(text.contains("switchman_job_runs_total{lock=\"j\",outcome=\"ran\"} 0\n"));
        assert!(!text.contains("switchman_job_last_success_timestamp_seconds{"));
        assert!(!text.contains("switchman_job_last_exit_code{"));
    }

    #[test]
    fn damage_costs_only_what_it_hides() {
        let text = "garbage\nswitchman_job_runs_total{lock=\"j\",outcome=\"ran\"} 7\n\
                    switchman_job_runs_total{lock=\"j\",outcome=\"ran\" 9\n# a comment\n\
                    switchman_job_last_exit_code{lock=\"j\"} x\n";
        let kept = Kept::parse(text);
        assert_eq!(kept.runs, [7, 0, 0, 0]);
        assert_eq!(kept.last_exit_code, None);
    }

    #[test]
    fn file_names_are_one_per_job() {
        let dir = Path::new("/m");
        assert_eq!(
            textfile(dir, "db-dump_1.x"),
            Path::new("/m/switchman_db-dump_1.x.prom")
        );
        assert_eq!(
            textfile(dir, "a b/é"),
            Path::new("/m/switchman_a%20b%2F%C3%A9.prom")
        );
        assert_ne!(textfile(dir, "a b"), textfile(dir, "a_b"));
    }

    #[test]
    fn concurrent_updates_all_count() {
        let dir = tempfile::tempdir().unwrap();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let dir = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        record(&dir, "j", &run(Outcome::Ran, 0, 1.0)).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let text = std::fs::read_to_string(textfile(dir.path(), "j")).unwrap();
        assert_eq!(Kept::parse(&text).runs[0], 200);
    }
}
