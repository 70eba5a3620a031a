//! Step 10: CMD under supervision, with the lock, its fencing token and the leases in its
//! environment, its output captured on request, and the lines that say how it started and
//! ended.

use super::Watch;
use super::plan::Plan;
use super::supervisor::{self, Ending, Exit};
use crate::capture::{Capture, Captured};
use crate::error::{Error, Result};
use crate::outcome::Outcome;
use crate::recipes::groups::Loss;
use crate::recipes::lock::Lock;
use crate::recipes::semaphore::Lease;
use crate::timestamp;
use crate::zk::{Session, now};

/// How step 10 went: how CMD ended (`Err`: it was stopped, exit 79, or could not be started),
/// and what was captured of its output.
pub(super) struct CmdEnd {
    pub ended: Result<Exit>,
    pub output: Option<Captured>,
    /// Whether CMD started at all.
    pub started: bool,
}

impl CmdEnd {
    /// The run's outcome, as the history, the logs, the metrics and `status` name it.
    pub fn outcome(&self) -> Outcome {
        match &self.ended {
            Ok(exit) => outcome_of(exit),
            Err(e) => Outcome::of_error(e),
        }
    }
}

/// The outcome of a CMD that ended by itself: a signal switchman passed on to it stopped it;
/// any other signal, or a code other than 0, is a failure.
pub(super) fn outcome_of(exit: &Exit) -> Outcome {
    match (exit.passed_on, exit.code) {
        (true, _) => Outcome::Stopped,
        (false, 0) => Outcome::Succeeded,
        (false, _) => Outcome::Failed,
    }
}

/// Step 10: starts CMD, not before the leader is proven to know our session again if a wait
/// went stale (our server cut off from it, say), and not at all if it may have given up on us:
/// the lock or a lease may be someone else's already. Then supervises it until it ends (its
/// exit code) or something it depends on is lost (exit 79).
pub(super) async fn run_cmd(
    plan: &Plan,
    session: &Session,
    lock: Option<&Lock>,
    held: &[Lease],
    group_left: Watch<'_, Loss>,
) -> CmdEnd {
    let not_started = |e| CmdEnd {
        ended: Err(e),
        output: None,
        started: false,
    };
    let liveness = session.liveness();
    session.warm_up();
    if !liveness.wait_fresh().await {
        return not_started(Error::Unavailable(format!(
            "no proof for {:.1}s that ZooKeeper's leader still knows our session; CMD was not started",
            now().saturating_sub(liveness.acked_at()).as_secs_f64()
        )));
    }
    // Fields of main's "run" span, so that CMD's lines and the exit code in the journal and
    // the JSON log name the lock and the holder's fencing token.
    if let Some(lock) = lock {
        tracing::Span::current()
            .record("lock", lock.path.as_str())
            .record("token", lock.czxid);
    }
    let (capture, ends) = match plan.capture {
        false => (None, None),
        true => match Capture::new(plan.output_tail, plan.quiet) {
            Ok((capture, ends)) => (Some(capture), Some(ends)),
            Err(e) => {
                tracing::warn!(
                    "cannot capture CMD's output ({e}); it goes straight to switchman's stdout \
                     and stderr"
                );
                (None, None)
            }
        },
    };
    let child = match supervisor::spawn(&plan.cmd, &cmd_env(lock, held), ends) {
        Ok(child) => child,
        Err(e) => return not_started(e),
    };
    tracing::info!(
        "started: {}, CMD pid {}",
        describe_hold(lock, plan.command.as_deref(), held),
        child.pid()
    );
    let started = now();
    // The reasons are rendered here, for the supervisor's stop line and exit 79's message.
    let mut losses: Vec<Watch<String>> =
        vec![Box::pin(async { session.ended().await.to_string() })];
    if let Some(lock) = lock {
        losses.push(Box::pin(async { lock.lost(session).await.to_string() }));
    }
    for lease in held {
        losses.push(Box::pin(async { lease.lost(session).await.to_string() }));
    }
    if plan.group.is_some() {
        losses.push(Box::pin(async move { group_left.await.reason() }));
    }
    let mut loss = Box::pin(async { futures::future::select_all(losses).await.0 });
    let ending = child
        .supervise(loss.as_mut(), liveness, plan.termination_timeout)
        .await;
    // The watches inside end with the session, which closes next. Dropping them first would
    // send the servers a RemoveWatches request each (seen with strace: a plain lock run cost 6
    // packets instead of 5), so they are left to the process's exit.
    std::mem::forget(loss);
    // The output's last lines come before the line that says how CMD ended.
    let output = match capture {
        Some(capture) => Some(capture.finish().await),
        None => None,
    };
    let ended = match ending {
        Ending::Exited(exit) => {
            let outcome = outcome_of(&exit);
            record_end(exit.code, outcome);
            let passed = match exit.passed_on {
                true => " (a signal passed on to it)",
                false => "",
            };
            tracing::info!(
                "ended: {} after {}: {outcome}{passed}",
                describe_code(exit.code),
                timestamp::took(now().saturating_sub(started))
            );
            Ok(exit)
        }
        Ending::Stopped(stop) => {
            let how = if stop.killed {
                "SIGKILL was needed"
            } else {
                "after SIGTERM, no SIGKILL needed"
            };
            let lost = Error::Lost(format!("{}; CMD was stopped", stop.reason));
            record_end(lost.exit_code(), Outcome::Stopped);
            tracing::info!(
                "stopped: {}; CMD ended {} after the stop began, {how}",
                stop.reason,
                timestamp::took(stop.took)
            );
            Err(lost)
        }
    };
    CmdEnd {
        ended,
        output,
        started: true,
    }
}

/// Records the exit code and the outcome on main's "run" span before the line that says how
/// the run ends, so that the line carries them (`EXIT_CODE` and `OUTCOME` in the journal,
/// `span.exit_code` and `span.outcome` in JSON lines).
pub(super) fn record_end(code: i32, outcome: Outcome) {
    tracing::Span::current()
        .record("exit_code", code)
        .record("outcome", outcome.label());
}

/// `lock /p/locks/backup (token 42), leases /p/semaphores/db/leases/1_2_0000000003`; a hashed
/// lock name (`--lockname-from-args`) with the command it stands for.
fn describe_hold(lock: Option<&Lock>, command: Option<&str>, held: &[Lease]) -> String {
    let command = command.map(|c| format!(" for `{c}`")).unwrap_or_default();
    let lock = match lock {
        Some(l) => format!("lock {} (token {}){command}", l.path, l.czxid),
        None => "no lock".to_string(),
    };
    if held.is_empty() {
        return format!("{lock}, no leases");
    }
    let leases: Vec<&str> = held.iter().map(|l| l.path.as_str()).collect();
    format!("{lock}, leases {}", leases.join(" "))
}

/// `exit code 0`, or `exit code 143 (128+SIGTERM)`: a code above 128 usually, though not
/// surely, means CMD died of a signal, and the supervisor reports both the same way.
fn describe_code(code: i32) -> String {
    match nix::sys::signal::Signal::try_from(code - 128) {
        Ok(sig) if code > 128 => format!("exit code {code} (128+{sig})"),
        _ => format!("exit code {code}"),
    }
}

/// What CMD finds in its environment besides the parent's: the lock node, its fencing token and
/// the leases held.
fn cmd_env(lock: Option<&Lock>, held: &[Lease]) -> Vec<(String, String)> {
    let mut env = Vec::new();
    if let Some(lock) = lock {
        env.push(("SWITCHMAN_LOCK".to_string(), lock.path.clone()));
        env.push((
            "SWITCHMAN_FENCING_TOKEN".to_string(),
            lock.czxid.to_string(),
        ));
    }
    if !held.is_empty() {
        let paths: Vec<&str> = held.iter().map(|l| l.path.as_str()).collect();
        env.push(("SWITCHMAN_LEASES".to_string(), paths.join(" ")));
    }
    env
}
