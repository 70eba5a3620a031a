//! Step 10: CMD under supervision, with the lock, its fencing token and the leases in its
//! environment, and the lines that say how it started and ended.

use super::Watch;
use super::plan::Plan;
use super::supervisor::{self, Ending};
use crate::error::{Error, Result};
use crate::recipes::groups::Loss;
use crate::recipes::lock::Lock;
use crate::recipes::semaphore::Lease;
use crate::timestamp;
use crate::zk::{Session, now};

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
) -> Result<i32> {
    let liveness = session.liveness();
    session.warm_up();
    if !liveness.wait_fresh().await {
        return Err(Error::Unavailable(format!(
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
    let child = supervisor::spawn(&plan.cmd, &cmd_env(lock, held))?;
    tracing::info!(
        "started: {}, CMD pid {}",
        describe_hold(lock, held),
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
    match ending {
        Ending::Exited(code) => {
            record_exit_code(code);
            tracing::info!(
                "ended: {} after {}",
                describe_code(code),
                timestamp::took(now().saturating_sub(started))
            );
            Ok(code)
        }
        Ending::Stopped(stop) => {
            let how = if stop.killed {
                "SIGKILL was needed"
            } else {
                "after SIGTERM, no SIGKILL needed"
            };
            let lost = Error::Lost(format!("{}; CMD was stopped", stop.reason));
            record_exit_code(lost.exit_code());
            tracing::info!(
                "stopped: {}; CMD ended {} after the stop began, {how}",
                stop.reason,
                timestamp::took(stop.took)
            );
            Err(lost)
        }
    }
}

/// Records the exit code on main's "run" span before the line that says how the run ends, so
/// that the line carries it (`EXIT_CODE` in the journal, `span.exit_code` in JSON lines).
pub(super) fn record_exit_code(code: i32) {
    tracing::Span::current().record("exit_code", code);
}

/// `lock /p/locks/backup (token 42), leases /p/semaphores/db/leases/1_2_0000000003`
fn describe_hold(lock: Option<&Lock>, held: &[Lease]) -> String {
    let lock = match lock {
        Some(l) => format!("lock {} (token {})", l.path, l.czxid),
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
