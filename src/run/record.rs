//! Steps 9 and 11 of a run: `--min-interval`'s check once the lock is ours, and the run record
//! and history written when CMD has ended (docs/guide.md: "Run records").

use std::time::Duration;

use super::cmd::CmdEnd;
use super::plan::Plan;
use crate::duration;
use crate::outcome::Outcome;
use crate::recipes::lock::Lock;
use crate::recipes::runs::{self, Found, Node, Output, Run, Written};
use crate::timestamp;
use crate::zk::Session;

/// The job's record and history nodes.
pub(super) fn paths(plan: &Plan) -> (String, String) {
    (
        plan.paths.run_record(&plan.task),
        plan.paths.run_history(&plan.task),
    )
}

/// Reads the job's record and history (one request).
pub(super) async fn read(plan: &Plan, session: &Session) -> crate::error::Result<Found> {
    let (record, history) = paths(plan);
    runs::read(
        session,
        runs::Paths {
            record: &record,
            history: &history,
        },
    )
    .await
}

/// Why the run must skip, if the job's last successful run started less than `interval` before
/// our lock node was created. Both times are the servers': the record's start is the creation
/// time of that run's lock node. This host's clock is not asked, so its skew cannot matter.
pub(super) fn too_soon(
    plan: &Plan,
    lock: &Lock,
    found: &Found,
    interval: Duration,
) -> Option<String> {
    if let Node::Present {
        value: Err(why), ..
    } = &found.record
    {
        // A record nobody can read must not keep the job from running for ever.
        tracing::warn!(
            "ignoring {}: {why}; the job runs and its record replaces it",
            plan.paths.run_record(&plan.task)
        );
        return None;
    }
    let (ago, run) = found.record()?.since_success(lock.ctime)?;
    if ago < 0 {
        // That run ended before we took the lock, so it began before, whatever the stamps say:
        // two leaders' clocks disagree. Counting it as just now is the side that cannot run the
        // job twice.
        tracing::warn!(
            "the last successful run of {} started {} after this run took the lock, by the \
             ZooKeeper servers' clocks, which must disagree (a leader change?); counting it as \
             just now",
            plan.task,
            timestamp::took(Duration::from_millis(ago.unsigned_abs()))
        );
    }
    (ago < interval.as_millis() as i64).then(|| {
        format!(
            "{} ran on {} {} ago (exit {}); --min-interval {}",
            plan.task,
            run.host,
            timestamp::age(run.start, lock.ctime),
            run.exit_code,
            duration::human(interval)
        )
    })
}

/// Writes the record and history of this run, which came to `end`, over `seen` (the read of
/// step 9, if there was one). A record that cannot be written is reported on stderr, but CMD
/// ran and its exit code is what the run exits with.
pub(super) async fn record_run(
    plan: &Plan,
    session: &Session,
    lock: &Lock,
    end: &CmdEnd,
    seen: Option<Found>,
) {
    let (path, history) = paths(plan);
    let ours = run_of(plan, lock, end);
    let paths = runs::Paths {
        record: &path,
        history: &history,
    };
    // A stopped run lost its lock, or its session: a newer holder's run, or a write that
    // fails, is what it expects.
    let stopped = ours.outcome == Outcome::Stopped;
    match runs::write(session, paths, &ours, plan.history, seen).await {
        Ok(Written::Yes) => tracing::debug!("recorded the run in {path} and {history}"),
        Ok(Written::HistoryOnly(newer)) if stopped => tracing::debug!(
            "recorded the run in {history}; {path} holds the newer run of token {}",
            newer.token
        ),
        Ok(Written::HistoryOnly(newer)) => tracing::warn!(
            "the run was not recorded in {path}: it holds a newer holder's run (token {} on {}) \
             than ours (token {}), so our lock was lost as CMD ended; the run is in {history}",
            newer.token,
            newer.host,
            ours.token
        ),
        Ok(Written::No(newer)) => tracing::warn!(
            "the run was not recorded: {path} holds a newer holder's run (token {} on {}) than \
             ours (token {}), and {history} only runs newer than ours",
            newer.token,
            newer.host,
            ours.token
        ),
        Err(e) if stopped => tracing::warn!("the run was not recorded in {path}: {e}"),
        Err(e) => tracing::error!("the run was not recorded in {path}: {e}"),
    }
}

/// This run, as the record and the history keep it.
fn run_of(plan: &Plan, lock: &Lock, end: &CmdEnd) -> Run {
    let (exit_code, signal, error) = match &end.ended {
        Ok(exit) => {
            let signal = exit
                .signal
                .map(|n| match nix::sys::signal::Signal::try_from(n) {
                    Ok(sig) => sig.as_str().to_string(),
                    Err(_) => format!("signal {n}"),
                });
            (exit.code, signal, None)
        }
        Err(e) => (e.exit_code(), None, Some(e.to_string())),
    };
    Run {
        host: plan.fqdn.to_string(),
        pid: std::process::id(),
        start: lock.ctime,
        end: None,
        exit_code,
        token: lock.czxid,
        outcome: end.outcome(),
        signal,
        command: plan.command.clone(),
        error,
        output: end.output.as_ref().map(|o| Output {
            tail: o.tail.bytes.clone(),
            bytes: o.tail.total,
        }),
    }
}
