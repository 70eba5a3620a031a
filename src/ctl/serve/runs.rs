//! Each job's runs, as the pages list them, newest first: on the page, what the run records
//! hold (the last run, and the last success when that is another), read in every pass; on a
//! job's own page (`jobs/NAME`), its history, read when asked for, with each run's output.

use crate::ctl::status::pass::Snapshot;
use crate::outcome::Outcome;
use crate::recipes::history::History;
use crate::recipes::runs::{Record, Run};

/// One job's runs, newest first.
pub struct JobRuns<'a> {
    pub name: &'a str,
    pub runs: Vec<&'a Run>,
}

/// Every job with a record, by name.
pub fn from_records(s: &Snapshot) -> Vec<JobRuns<'_>> {
    s.runs
        .iter()
        .map(|r| {
            let mut runs = vec![&r.record.last];
            runs.extend(
                r.record
                    .last_success
                    .as_ref()
                    .filter(|ok| **ok != r.record.last),
            );
            JobRuns {
                name: &r.name,
                runs,
            }
        })
        .collect()
}

/// A job's runs from its history node and its record node (either may be missing), newest
/// first; a job recorded only by builds that keep no history has its last run alone. `None`
/// if neither says anything.
pub fn from_nodes(
    history: Option<(Vec<u8>, zookeeper_client::Stat)>,
    record: Option<(Vec<u8>, zookeeper_client::Stat)>,
) -> Option<Result<Vec<Run>, String>> {
    let runs = match (history, record) {
        (Some((data, stat)), _) => History::parse(&data, &stat).map(|h| h.runs),
        (None, Some((data, stat))) => Record::parse(&data, &stat).map(|r| vec![r.last]),
        (None, None) => return None,
    };
    Some(runs.map(|mut runs| {
        runs.reverse();
        runs
    }))
}

/// `succeeded`, `failed (exit 3)`, `stopped (exit 143, SIGTERM)`.
pub fn label(run: &Run) -> String {
    match (run.outcome, &run.signal) {
        (Outcome::Succeeded, _) => run.outcome.to_string(),
        (outcome, Some(signal)) => format!("{outcome} (exit {}, {signal})", run.exit_code),
        (outcome, None) => format!("{outcome} (exit {})", run.exit_code),
    }
}

/// The class the style sheet colours an outcome by.
pub fn class(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Succeeded | Outcome::Skipped => "ok",
        Outcome::Failed | Outcome::Stopped | Outcome::Error => "bad",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::status::pass::RunRecord;

    fn run(outcome: Outcome, exit_code: i32, start: i64) -> Run {
        Run {
            host: "web1.example".into(),
            pid: 7,
            start,
            end: Some(start + 1000),
            exit_code,
            token: start,
            outcome,
            signal: None,
            command: None,
            error: None,
            output: None,
        }
    }

    #[test]
    fn a_failed_run_comes_with_the_last_success_behind_it() {
        let ok = |start| run(Outcome::Succeeded, 0, start);
        let records = [
            (ok(10), Some(ok(10))),
            (run(Outcome::Failed, 3, 20), Some(ok(5))),
            (run(Outcome::Stopped, 79, 30), None),
        ];
        let s = Snapshot {
            prefix: "/p".into(),
            locks: vec![],
            lines: vec![],
            queues: vec![],
            semaphores: vec![],
            runs: records
                .into_iter()
                .enumerate()
                .map(|(i, (last, last_success))| RunRecord {
                    name: format!("job{i}"),
                    record: Record { last, last_success },
                })
                .collect(),
            groups: None,
            warnings: vec![],
            read_at: 0,
            took: std::time::Duration::ZERO,
        };
        let shown: Vec<Vec<String>> = from_records(&s)
            .iter()
            .map(|j| j.runs.iter().map(|r| label(r)).collect())
            .collect();
        assert_eq!(
            shown,
            [
                vec!["succeeded"],
                vec!["failed (exit 3)", "succeeded"],
                vec!["stopped (exit 79)"],
            ]
        );
    }
}
