//! Each job's last runs, as the page lists them: newest first, each with its outcome, host,
//! start, duration and output tail.
//!
//! The run record keeps two runs at most, the last and the last success; a history that keeps
//! more (and their output) becomes more rows of the same shape, made here.

use crate::ctl::status::pass::Snapshot;
use crate::recipes::runs::Run;

/// One job's runs, newest first.
pub struct JobRuns<'a> {
    pub name: &'a str,
    pub runs: Vec<RunRow<'a>>,
}

/// One run.
pub struct RunRow<'a> {
    pub run: &'a Run,
    pub outcome: Outcome,
    /// The tail of what CMD wrote, where it was kept.
    pub output: Option<&'a str>,
}

/// How a run ended, as an operator reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// switchman stopped CMD: its lock, session, lease or group membership was lost (exit 79).
    Stopped,
    Failed(i32),
}

impl Outcome {
    /// Records keep the exit code alone.
    pub fn of(run: &Run) -> Outcome {
        match run.exit_code {
            0 => Outcome::Succeeded,
            code if code == crate::exit::LOST.value => Outcome::Stopped,
            code => Outcome::Failed(code),
        }
    }

    pub fn label(self) -> String {
        match self {
            Outcome::Succeeded => "succeeded".into(),
            Outcome::Stopped => "stopped".into(),
            Outcome::Failed(code) => format!("failed (exit {code})"),
        }
    }

    /// The class the style sheet colours it by.
    pub fn class(self) -> &'static str {
        match self {
            Outcome::Succeeded => "ok",
            Outcome::Stopped | Outcome::Failed(_) => "bad",
        }
    }
}

/// Every job with a record, by name.
pub fn job_runs(s: &Snapshot) -> Vec<JobRuns<'_>> {
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
                runs: runs
                    .into_iter()
                    .map(|run| RunRow {
                        run,
                        outcome: Outcome::of(run),
                        output: None,
                    })
                    .collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(exit_code: i32, start: i64) -> Run {
        Run {
            host: "web1.example".into(),
            pid: 7,
            start,
            end: Some(start + 1000),
            exit_code,
            token: start,
        }
    }

    #[test]
    fn a_failed_run_comes_with_the_last_success_behind_it() {
        use crate::ctl::status::pass::RunRecord;
        use crate::recipes::runs::Record;
        let records = [
            (run(0, 10), Some(run(0, 10))),
            (run(3, 20), Some(run(0, 5))),
            (run(79, 30), None),
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
        let jobs = job_runs(&s);
        let outcomes: Vec<Vec<Outcome>> = jobs
            .iter()
            .map(|j| j.runs.iter().map(|r| r.outcome).collect())
            .collect();
        assert_eq!(
            outcomes,
            [
                vec![Outcome::Succeeded],
                vec![Outcome::Failed(3), Outcome::Succeeded],
                vec![Outcome::Stopped],
            ]
        );
        assert_eq!(
            jobs[1].runs[1].run.start, 5,
            "the success, behind the failure"
        );
    }
}
