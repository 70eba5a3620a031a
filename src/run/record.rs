//! Steps 9 and 11 of a run: `--min-interval`'s check once the lock is ours, and the run record
//! written when CMD has ended (docs/guide.md: "Run records").

use std::time::Duration;

use super::plan::Plan;
use crate::duration;
use crate::recipes::lock::Lock;
use crate::recipes::runs::{self, Found, Run, Written};
use crate::timestamp;
use crate::zk::Session;

/// Why the run must skip, if the job's last successful run started less than `interval` before
/// our lock node was created. Both times are the servers': the record's start is the creation
/// time of that run's lock node. This host's clock is not asked, so its skew cannot matter.
pub(super) fn too_soon(
    plan: &Plan,
    lock: &Lock,
    found: &Found,
    interval: Duration,
) -> Option<String> {
    if let Found::Present {
        record: Err(why), ..
    } = found
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

/// Writes the record of this run, which ended with `code`, over `seen` (the read of step 9, if
/// there was one). A record that cannot be written is reported on stderr, but CMD ran and its
/// exit code is what the run exits with.
pub(super) async fn record_run(
    plan: &Plan,
    session: &Session,
    lock: &Lock,
    code: i32,
    seen: Option<Found>,
) {
    let path = plan.paths.run_record(&plan.task);
    let ours = Run {
        host: plan.fqdn.to_string(),
        pid: std::process::id(),
        start: lock.ctime,
        end: None,
        exit_code: code,
        token: lock.czxid,
    };
    match runs::write(session, &path, &ours, seen).await {
        Ok(Written::Yes) => tracing::debug!("recorded the run in {path}"),
        Ok(Written::Newer(newer)) => tracing::warn!(
            "the run was not recorded: {path} holds a newer holder's run (token {} on {}) than \
             ours (token {}), so our lock was lost as CMD ended",
            newer.token,
            newer.host,
            ours.token
        ),
        Err(e) => tracing::error!("the run was not recorded in {path}: {e}"),
    }
}
