//! One run of switchman, top to bottom, in the order of docs/guide.md's "How a run goes".
//!
//! [`Plan::resolve`] fixes everything that can be known before connecting (step 1);
//! [`run_in_session`] is the protocol (steps 3 to 11), each step a call to the recipe that does
//! it; [`lock_and_leases`] is steps 4 to 8, which a run with `--wait` goes through again,
//! holding nothing, whenever the lock is taken before it gets there.

mod cmd;
mod leases;
mod plan;
mod record;
pub mod supervisor;
mod wait;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use zookeeper_client::{EventType, OneshotWatcher, Stat};

use crate::cli::Cli;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::metrics;
use crate::outcome::Outcome;
use crate::prefix_data::PrefixData;
use crate::recipes::groups::{Loss, Membership, fetch_prefix};
use crate::recipes::holder::Holder;
use crate::recipes::lock::{self, Acquired, Free, Lock};
use crate::recipes::queue;
use crate::recipes::semaphore::Lease;
use crate::zk::Session;
use crate::zk::{Found, Read, Txn};
use cmd::{outcome_of, record_end, run_cmd};
use leases::{Joined, acquire_leases, join_queues, queues_of_task};
use plan::Plan;
use wait::Waiting;

/// How a run that did not fail ended: CMD's exit, or a skip with the busy code. A skip and a
/// CMD that ran may exit with the same code, and the metrics tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Ran(supervisor::Exit),
    Skipped(i32),
}

/// Runs CMD and returns the exit code; `Err` for switchman's own failures.
pub async fn run(cli: &Cli, config: &Config) -> Result<i32> {
    let began = Instant::now();
    let ended = run_to_end(cli, config).await;
    // Whatever the run came to, this host's textfile for node_exporter says so
    // (docs/monitoring.md); it cannot change the exit code.
    let (how, code) = outcome(&ended);
    metrics::after_run(config, &cli.job_name(), began, how, code);
    ended.map(|_| code)
}

/// The outcome and the exit code of a run that ended with `ended`.
fn outcome(ended: &Result<Ended>) -> (Outcome, i32) {
    match ended {
        Ok(Ended::Ran(exit)) => (outcome_of(exit), exit.code),
        Ok(Ended::Skipped(code)) => (Outcome::Skipped, *code),
        Err(e) => (Outcome::of_error(e), e.exit_code()),
    }
}

async fn run_to_end(cli: &Cli, config: &Config) -> Result<Ended> {
    // 1. Parse the command line and config; expand lease macros.
    let plan = Plan::resolve(cli, config)?;

    // 2. Connect.
    let mut session = Session::connect(&config.zk()).await?;
    // From here on, keep the liveness record fresh: a wait in a queue may outlast the session
    // timeout many times, and CMD's deadlines must start from a recent answer.
    session.start_heartbeat(plan.paths.prefix().to_string());
    let result = run_in_session(&plan, &session).await;
    // The end of 10: closing the session deletes every node of ours that is left (lock, leases,
    // queue items), at once and only ours.
    session.close().await;
    result
}

/// A future that resolves when something the run depends on is lost.
type Watch<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// What steps 4 to 8 came to.
enum Taken {
    /// The lock (none with `--no-lock`) and the leases are ours.
    Held(Option<Lock>, Vec<Lease>),
    /// The run skips, for this reason.
    Skip(String),
}

async fn run_in_session(plan: &Plan, session: &Session) -> Result<Ended> {
    let prefix = plan.paths.prefix();
    let skip = |why: String| {
        record_end(plan.busy_code, Outcome::Skipped);
        tracing::info!("skipped: {why}");
        Ok(Ended::Skipped(plan.busy_code))
    };

    // 3. Groups: read the prefix data only if a group or a lease needs it; a lease run that
    //    does not wait in line reads step 4's lock node with it.
    let FirstReads {
        data,
        prefix_watch,
        lock_held,
        queues,
    } = first_reads(plan, session).await?;
    let membership = match (&plan.group, prefix_watch) {
        (Some(group), Some(watch)) => {
            match Membership::check(&data, watch, prefix, group, &plan.fqdn)? {
                Some(m) => Some(m),
                None => return skip(format!("{} is not in group {group}", plan.fqdn)),
            }
        }
        _ => None,
    };
    // Watched from here on: a host taken out of the group while the run waits for leases must
    // skip, not start CMD only to stop it.
    let mut group_left: Watch<Loss> = match membership {
        Some(m) => Box::pin(m.watch(session)),
        None => Box::pin(std::future::pending()),
    };

    // 4. A lease run that does not wait in line skips a held lock before it joins any queue.
    if let (Some(path), Some((data, stat))) = (plan.lock_path(), lock_held) {
        let taken = Some(Holder::new(&data, &stat));
        return skip(format!("lock {path} {}", lock::held_by(&taken)));
    }

    // 4. to 8. The lock and the leases; unless the host leaves the group first, or --wait,
    //    which covers all of it, runs out (exit 75, nothing left queued once the session closes).
    let waiting = Waiting::default();
    let taken = tokio::select! {
        taken = lock_and_leases(plan, session, &data, queues, &waiting) => taken?,
        loss = &mut group_left => return match loss {
            Loss::Left(why) => skip(format!("{why} while we waited")),
            Loss::SessionEnded(why) => Err(Error::Unavailable(why)),
        },
        _ = wait::ran_out(plan.wait) => return Err(wait::timed_out(plan, session, &waiting).await),
    };
    let (lock, held) = match taken {
        Taken::Held(lock, held) => (lock, held),
        Taken::Skip(why) => return skip(why),
    };

    // 9. With --min-interval: skip if the job's last successful run started less than the
    //    interval before our lock node was created, both by the servers' clocks.
    let seen = match (&lock, plan.min_interval) {
        (Some(lock), Some(interval)) => {
            let found = record::read(plan, session).await?;
            if let Some(why) = record::too_soon(plan, lock, &found, interval) {
                return skip(why);
            }
            Some(found)
        }
        _ => None,
    };

    // 10. Start CMD and supervise it until it ends or something it depends on is lost.
    let mut end = run_cmd(plan, session, lock.as_ref(), &held, group_left).await;

    // 11. With --min-interval, record_runs or captured output: record the run and add it to
    //     the history, while the lock is still ours (a stopped run's lost it: its run takes
    //     its place in the history all the same). Not for a CMD that never started for want
    //     of a session.
    let started = end.started || matches!(end.ended, Err(Error::CannotRun(..)));
    if let (Some(lock), true, true) = (&lock, plan.record, started) {
        record::record_run(plan, session, lock, &end, seen).await;
    }
    // Cron-quiet: the output of a run that did not succeed, for cron to mail.
    if let (true, Some(output)) = (plan.quiet && end.outcome().is_failure(), &mut end.output) {
        output.show_on_stderr();
    }
    end.ended.map(Ended::Ran)
}

/// What step 3 reads before the run makes anything.
#[derive(Default)]
struct FirstReads {
    data: PrefixData,
    /// The prefix node's watch, with `--group`.
    prefix_watch: Option<OneshotWatcher>,
    /// For a run with leases and a lock that does not wait in line: the lock's node, if it is
    /// held (step 4), and each resource's queue folder with its items (step 6).
    lock_held: Option<(Vec<u8>, Stat)>,
    queues: Option<Vec<(String, Vec<String>)>>,
}

/// Step 3's reads: the prefix data if a group or a lease needs it, with a watch if a group
/// does; and, for a run with leases and a lock that does not wait in line, the lock's node
/// and the queues it will join, in the same request when no watch is needed.
async fn first_reads(plan: &Plan, session: &Session) -> Result<FirstReads> {
    let prefix = plan.paths.prefix();
    let watch = plan.group.is_some();
    if !watch && plan.leases.is_empty() {
        return Ok(FirstReads::default());
    }
    let lock = plan
        .lock_path()
        .filter(|_| !plan.leases.is_empty() && plan.wait.is_none());
    let folders = match lock {
        Some(_) => plan.queue_folders(&plan.leases),
        None => Vec::new(),
    };
    let mut reads = Vec::new();
    if !watch {
        reads.push(Read::Data(prefix));
    }
    if let Some(lock) = &lock {
        reads.push(Read::Data(lock));
        reads.extend(folders.iter().map(|f| Read::Children(f)));
    }
    let (bytes, prefix_watch) = if watch {
        fetch_prefix(session, prefix, true).await?
    } else {
        (Vec::new(), None)
    };
    let mut found = match reads.is_empty() {
        true => Vec::new(),
        false => session.read_all(&reads).await?,
    }
    .into_iter();
    let bytes = match watch {
        true => bytes,
        false => found
            .next()
            .and_then(Found::data)
            .map(|(d, _)| d)
            .unwrap_or_default(),
    };
    let lock_held = found.next().and_then(Found::data);
    let queues = lock.map(|_| {
        folders
            .into_iter()
            .zip(found.map(Found::children))
            .collect()
    });
    Ok(FirstReads {
        data: PrefixData::parse(prefix, &bytes)?,
        prefix_watch,
        lock_held,
        queues,
    })
}

/// Steps 4 to 8: the lock and the leases, or why the run skips. With `--wait`, whatever keeps
/// the lock from the run sends it back to step 4, after giving back what it took, instead.
async fn lock_and_leases(
    plan: &Plan,
    session: &Session,
    data: &PrefixData,
    mut queues_seen: Option<Vec<(String, Vec<String>)>>,
    waiting: &Waiting,
) -> Result<Taken> {
    let lock_path = plan.lock_path();
    let held_elsewhere = |path: &str, taken: &lock::Taken| {
        Taken::Skip(format!("lock {path} {}", lock::held_by(taken)))
    };
    // Our place in the lock's line (--wait), kept until the lock is ours.
    let mut line = None;
    let mut first_try = true;
    loop {
        // 4. The lock must be free. Without --wait, a run with leases found it so in step 3,
        //    and watches it once it waits for a lease (step 7); a run without leases has the
        //    create of step 8 as its check, which saves a request. With --wait: our turn in
        //    the lock's line, then the lock free, and watched.
        let lock_watch = match (&lock_path, plan.wait) {
            (Some(path), Some(_)) => {
                wait::turn_at_lock(plan, session, path, &mut line, first_try, waiting).await?
            }
            _ => None,
        };
        first_try = false;

        // 5. Leased resources must be listed in the prefix data; take them in the list's order.
        let leases = plan.order_leases(data)?;

        // 6. Join each resource's queue, unless the same task already waits there: looked for
        //    before joining (in step 3's read, or now with --wait), so that no item is made
        //    only to go again, and after, for a run of the task that joined as we did.
        let seen = match queues_seen.take() {
            Some(seen) => seen,
            None => queues_of_task(plan, session, &leases).await?,
        };
        let waits_there = seen
            .iter()
            .find_map(|(folder, items)| queue::item_of_task(folder, items, &plan.task));
        let joined = match waits_there {
            Some(item) => Joined::Behind(item),
            None => join_queues(plan, session, &leases).await?,
        };
        let queued = match joined {
            Joined::First(queued) => queued,
            Joined::Behind(item) => {
                if plan.wait.is_some() {
                    wait::until_task_leaves(plan, session, &leases, &item, waiting).await?;
                    continue;
                }
                let by = match Holder::read(session, &item).await? {
                    Some(h) => format!(" by {}", h.describe()),
                    None => String::new(),
                };
                let why = format!("task {} is already queued as {item}{by}", plan.task);
                return Ok(Taken::Skip(why));
            }
        };

        // 7. In order: wait for our turn in the queue, then for room in the semaphore, and
        //    take each lease but the last; unless the lock is taken elsewhere first (skip; with
        //    --wait, give everything back and go back to 4), or resources_wait_timeout passes
        //    (which --wait replaces). The lock's watch is kept until the lock is ours: dropped
        //    unfired, it would cost a request to remove it.
        let wait_begins = Notify::new();
        let mut taken_elsewhere = Box::pin(lock_taken(
            session,
            lock_path.as_deref(),
            lock_watch,
            &wait_begins,
        ));
        let (mut held, last) = if leases.is_empty() {
            (Vec::new(), None)
        } else {
            let timeout = plan.resources_wait_timeout.filter(|_| plan.wait.is_none());
            tokio::select! {
                held = acquire_leases(plan, session, &leases, &queued, waiting, &wait_begins) => held?,
                taken = &mut taken_elsewhere => {
                    taken?;
                    let path = lock_path.as_deref().unwrap_or_default();
                    if plan.wait.is_none() {
                        let why = format!("lock {path} was taken elsewhere while we waited");
                        return Ok(Taken::Skip(why));
                    }
                    tracing::debug!("lock {path} was taken elsewhere; giving back the leases");
                    wait::give_back(plan, session, &leases).await?;
                    continue;
                },
                _ = sleep_or_forever(timeout) => return Err(Error::Timeout(format!(
                    "no lease within resources_wait_timeout ({:.1}s) of {}; nothing was left queued",
                    timeout.unwrap_or_default().as_secs_f64(),
                    plan.config_path.display()
                ))),
            }
        };

        // 8. Take the last lease, leave every queue and create the lock node in one
        //    transaction, so that the run holds all of it or none of it; then read the lock
        //    node for its token and a watch (the lock's watch of step 4 or 7 is not listened
        //    to here: our own create fires it). Held elsewhere: skip, or with --wait give the
        //    leases back and go back to 4. Then leave the lock's line.
        if let Some(room) = last {
            let owner = plan.owner.as_bytes();
            let mut txn = Txn::default();
            let lease = room.take_in(&mut txn, owner);
            for (item, _) in &queued {
                item.leave_in(&mut txn);
            }
            if let Some(path) = &lock_path {
                lock::create_in(&mut txn, path, owner);
            }
            let made = session.apply(&txn).await?;
            held.extend(room.taken(session, made.as_ref(), lease).await?);
        }
        let lock = match &lock_path {
            None => None,
            Some(path) => {
                let taken = if leases.is_empty() {
                    lock::acquire(session, path, plan.owner.as_bytes(), plan.wait.is_some()).await?
                } else {
                    lock::made(session, path, plan.wait.is_some()).await?
                };
                match taken {
                    Acquired::Ours(lock) => Some(lock),
                    Acquired::HeldElsewhere(_) if plan.wait.is_some() => {
                        wait::give_back(plan, session, &leases).await?;
                        continue;
                    }
                    Acquired::HeldElsewhere(taken) => return Ok(held_elsewhere(path, &taken)),
                }
            }
        };
        // A watch still set on the lock has fired with our create by now.
        drop(taken_elsewhere);
        if let Some(item) = line.take() {
            item.leave(session).await?;
        }
        return Ok(Taken::Held(lock, held));
    }
}

/// Resolves when the lock at `path` (none with `--no-lock`) is taken while the run waits for
/// leases. A run that waited in the lock's line watches it already (`watch`); any other sets
/// the watch only once `wait_begins` says it waits, which an uncontended run never does: its
/// last lease and the lock are made in one transaction, which fails if the lock is taken by
/// then. Only the node's creation means the lock was taken: the end of the session fires the
/// watch too, and is the acquiring side's to report.
async fn lock_taken(
    session: &Session,
    path: Option<&str>,
    watch: Option<OneshotWatcher>,
    wait_begins: &Notify,
) -> Result<()> {
    let watch = match (watch, path) {
        (Some(watch), _) => watch,
        (None, Some(path)) => {
            wait_begins.notified().await;
            match lock::watch_free(session, path).await? {
                Free::Watched(watch) => watch,
                Free::HeldElsewhere(_) => return Ok(()),
            }
        }
        (None, None) => std::future::pending().await,
    };
    if watch.changed().await.event_type == EventType::NodeCreated {
        return Ok(());
    }
    std::future::pending().await
}

async fn sleep_or_forever(timeout: Option<Duration>) {
    match timeout {
        Some(t) => tokio::time::sleep(t).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_follow_the_exit() {
        let exit = |code, signal, passed_on| {
            Ok(Ended::Ran(supervisor::Exit {
                code,
                signal,
                passed_on,
            }))
        };
        assert_eq!(outcome(&exit(0, None, false)), (Outcome::Succeeded, 0));
        assert_eq!(outcome(&exit(3, None, false)), (Outcome::Failed, 3));
        assert_eq!(outcome(&exit(137, Some(9), false)), (Outcome::Failed, 137));
        assert_eq!(outcome(&exit(143, Some(15), true)), (Outcome::Stopped, 143));
        assert_eq!(outcome(&Ok(Ended::Skipped(0))), (Outcome::Skipped, 0));
        let lost = Err(Error::Lost("x".into()));
        assert_eq!(outcome(&lost), (Outcome::Stopped, 79));
        let down = Err(Error::Unavailable("x".into()));
        assert_eq!(outcome(&down), (Outcome::Error, 69));
        let missing = Err(Error::CannotRun("x".into(), 127));
        assert_eq!(outcome(&missing), (Outcome::Error, 127));
    }
}
