//! `history`: a job's last runs on any host, from its history node (docs/operators.md:
//! "history"), with the tail of each run's output on request: "which host ran it, what did it
//! print, and how did it end?" without a search through every host's logfile.

use base64::Engine;
use serde_json::{Value, json};

use super::{Ctl, Failure, Outcome, PROBLEMS, load_config, print};
use crate::error::Error;
use crate::recipes::history::History;
use crate::recipes::runs::{Record, Run};
use crate::timestamp;
use crate::zk::paths::check_component;
use crate::zk::{Paths, Read, Session};

/// How to show the runs.
#[derive(Debug, Clone, Copy)]
pub struct Shown {
    /// The last this many runs, or all.
    pub last: Option<usize>,
    pub json: bool,
    /// Each run's output after it.
    pub output: bool,
}

pub(super) async fn history(ctl: &Ctl, job: &str, shown: Shown) -> Outcome {
    let config = load_config(ctl)?;
    check_component("job name", job).map_err(Error::Usage)?;
    let paths = Paths::new(&config.prefix);
    let (path, record_path) = (paths.run_history(job), paths.run_record(job));
    let session = Session::connect(&config.zk()).await?;
    let read = session
        .read_all(&[Read::Data(&path), Read::Data(&record_path)])
        .await;
    session.close().await;
    let mut found = read?.into_iter().map(crate::zk::Found::data);
    let (history, record) = (found.next().flatten(), found.next().flatten());
    let runs = match (history, record) {
        (Some((data, stat)), _) => {
            History::parse(&data, &stat)
                .map_err(|why| Failure {
                    code: PROBLEMS,
                    message: format!("{path} is not a run history: {why}"),
                })?
                .runs
        }
        // A job recorded only by switchman builds that keep no history: its last run.
        (None, Some((data, stat))) => match Record::parse(&data, &stat) {
            Ok(r) => vec![r.last],
            Err(why) => {
                return Err(Failure {
                    code: PROBLEMS,
                    message: format!("{record_path} is not a run record: {why}"),
                });
            }
        },
        (None, None) => {
            eprintln!(
                "switchmanctl: no runs of {job} are recorded in {path} (runs are recorded with \
                 record_runs, --min-interval or captured output)"
            );
            return Ok(PROBLEMS);
        }
    };
    let skip = runs.len().saturating_sub(shown.last.unwrap_or(usize::MAX));
    let runs = &runs[skip..];
    match (shown.json, shown.output) {
        (true, _) => {
            let list: Vec<Value> = runs.iter().map(run_json).collect();
            let mut text = serde_json::to_string_pretty(&list).expect("values serialise");
            text.push('\n');
            print(text)?;
        }
        (false, false) => print(table(runs))?,
        (false, true) => {
            let mut out = Vec::new();
            for run in runs {
                out.extend(heading(run).into_bytes());
                if let Some(o) = &run.output {
                    out.extend(&o.tail);
                    if !o.tail.ends_with(b"\n") && !o.tail.is_empty() {
                        out.push(b'\n');
                    }
                }
            }
            print(out)?;
        }
    }
    Ok(0)
}

/// `exit 1`, `exit 137 (SIGKILL)`.
fn how(run: &Run) -> String {
    match &run.signal {
        Some(sig) => format!("exit {} ({sig})", run.exit_code),
        None => format!("exit {}", run.exit_code),
    }
}

/// The line above a run's output: who ran it, when, how it ended, and how much it wrote.
fn heading(run: &Run) -> String {
    let output = match &run.output {
        None => "no output captured".to_string(),
        Some(o) if o.cut() => format!("the last {} of {} bytes of output", o.tail.len(), o.bytes),
        Some(o) => format!("{} bytes of output", o.bytes),
    };
    let error = run
        .error
        .as_ref()
        .map(|e| format!(": {e}"))
        .unwrap_or_default();
    format!(
        "=== {} on {} pid {} (token {}), {}, {}{error}; {output}\n",
        timestamp::rfc3339(run.start),
        run.host,
        run.pid,
        run.token,
        run.outcome,
        how(run),
    )
}

/// One row per run, oldest first: when it started and how long it took by the servers' clock,
/// who ran it, how it ended, and how much output it left.
fn table(runs: &[Run]) -> String {
    let header = [
        "START", "TOOK", "HOST", "PID", "TOKEN", "OUTCOME", "EXIT", "OUTPUT",
    ];
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                timestamp::rfc3339(r.start),
                r.end.map_or("-".to_string(), |end| {
                    timestamp::took(std::time::Duration::from_millis(
                        (end - r.start).max(0) as u64
                    ))
                }),
                r.host.clone(),
                r.pid.to_string(),
                r.token.to_string(),
                r.outcome.to_string(),
                how(r).trim_start_matches("exit ").to_string(),
                match &r.output {
                    None => "-".to_string(),
                    Some(o) if o.cut() => format!("{} B (last {})", o.bytes, o.tail.len()),
                    Some(o) => format!("{} B", o.bytes),
                },
            ]
        })
        .collect();
    super::status::render::table(&header, rows)
}

/// A run for scripts: every key always there, `null` where it does not apply; the output as
/// text when it is UTF-8, else in `output_base64`.
fn run_json(run: &Run) -> Value {
    let (text, coded) = match &run.output {
        None => (None, None),
        Some(o) => match std::str::from_utf8(&o.tail) {
            Ok(text) => (Some(text.to_string()), None),
            Err(_) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(&o.tail)),
            ),
        },
    };
    json!({
        "host": run.host,
        "pid": run.pid,
        "start": timestamp::rfc3339(run.start),
        "end": run.end.map(timestamp::rfc3339),
        "token": run.token,
        "outcome": run.outcome.label(),
        "exit_code": run.exit_code,
        "signal": run.signal,
        "command": run.command,
        "error": run.error,
        "output": text,
        "output_base64": coded,
        "output_bytes": run.output.as_ref().map(|o| o.bytes),
        "output_cut": run.output.as_ref().map(|o| o.cut()),
    })
}
