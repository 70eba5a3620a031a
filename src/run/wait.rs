//! `--wait`: what a run does differently when it waits in line instead of skipping (docs/guide.md:
//! "Waiting for the lock"), and the one line it prints when the wait runs out.

use std::cell::RefCell;

use zookeeper_client::OneshotWatcher;

use super::plan::Plan;
use crate::duration::Wait;
use crate::error::{Error, Result};
use crate::lease_spec::LeaseSpec;
use crate::recipes::holder::Holder;
use crate::recipes::queue::Item;
use crate::recipes::waiters;
use crate::zk::Session;
use crate::zk::paths::{LeaseName, sequence_of};

/// What a run is waiting for at the moment, so that a timeout can say it.
#[derive(Debug, Clone, Default)]
pub(super) enum For {
    #[default]
    Start,
    /// Our turn in the lock's line, where our item is this one.
    Turn(String),
    /// The lock, first in its line.
    Lock,
    /// The same task's item in a resource queue, put there by a run that did not wait in line.
    Task(String),
    /// A lease.
    Lease(LeaseSpec),
}

/// Where the wait is, updated as it goes.
#[derive(Default)]
pub(super) struct Waiting(RefCell<For>);

impl Waiting {
    pub fn set(&self, now: For) {
        *self.0.borrow_mut() = now;
    }
}

/// Step 4 with `--wait`: our turn in the lock's line, then the lock free, and a watch that fires
/// when it is taken again (by whoever takes it next, maybe us), which a run without leases may
/// not get (see [`waiters::until_gone`]). On its first try, with no leases to take first and
/// nobody in line, a run does not join the line: it tries the lock at once.
/// Our place in `line` is kept until the lock is ours, however often someone else gets it.
pub(super) async fn turn_at_lock(
    plan: &Plan,
    session: &Session,
    path: &str,
    line: &mut Option<Item>,
    first_try: bool,
    waiting: &Waiting,
) -> Result<Option<OneshotWatcher>> {
    if line.is_none() {
        if first_try
            && plan.leases.is_empty()
            && waiters::is_empty(session, &plan.paths, &plan.task).await?
        {
            return Ok(None);
        }
        *line = Some(waiters::join(session, &plan.paths, &plan.task, plan.owner.as_bytes()).await?);
    }
    let item = line.as_ref().expect("in line by now");
    waiting.set(For::Turn(item.path.clone()));
    item.wait_turn(session).await?;
    waiting.set(For::Lock);
    // With leases to take first, the lock must stay watched (see step 7).
    waiters::until_gone(session, path, !plan.leases.is_empty()).await
}

/// Step 6 with `--wait`: the same task waits in a resource queue (a run that does not wait in
/// line, about to take the lock): give back what we queued for and wait until its item is gone.
pub(super) async fn until_task_leaves(
    plan: &Plan,
    session: &Session,
    leases: &[LeaseSpec],
    item: &str,
    waiting: &Waiting,
) -> Result<()> {
    give_back(plan, session, leases).await?;
    waiting.set(For::Task(item.to_string()));
    waiters::until_gone(session, item, false).await?;
    Ok(())
}

/// Gives back every guard node, queue item and lease of ours for `leases`: a run that goes back
/// to waiting for the lock must hold nothing meanwhile, or two runs could each hold what the
/// other waits for. Found by their ephemeral owner, not from what the wait returned, because
/// the wait that was cut short may have had a create in flight. The guard goes before the queue
/// item: the next in line may make its own guard node as soon as ours is not first, and must
/// not find ours there (see [`semaphore::room`](crate::recipes::semaphore::room)).
pub(super) async fn give_back(plan: &Plan, session: &Session, leases: &[LeaseSpec]) -> Result<()> {
    for spec in leases {
        let stems = [
            plan.paths.semaphore_guard_stem(&spec.resource),
            plan.paths.queue_item_stem(&spec.resource, &plan.task),
            plan.paths
                .semaphore_lease_stem(&spec.resource, spec.count, spec.total),
        ];
        for stem in stems {
            let (folder, base) = stem.rsplit_once('/').expect("a stem is an absolute path");
            delete_ours(session, folder, base).await?;
        }
    }
    Ok(())
}

/// Deletes every child of `folder` named `{base}...` that our session owns. A create whose
/// answer we stopped awaiting was still sent, and the servers answer a session's requests in
/// order, so the listing made after it shows its node.
async fn delete_ours(session: &Session, folder: &str, base: &str) -> Result<()> {
    let named: Vec<String> = session
        .children(folder)
        .await?
        .into_iter()
        .filter(|c| c.starts_with(base))
        .map(|c| format!("{folder}/{c}"))
        .collect();
    for (path, read) in named.iter().zip(session.data_pipelined(&named).await?) {
        if read.is_some_and(|(_, stat)| stat.ephemeral_owner == session.id()) {
            session.delete_own(path).await?;
        }
    }
    Ok(())
}

/// Resolves when `--wait` runs out; never without it.
pub(super) async fn ran_out(wait: Option<Wait>) {
    match wait.and_then(Wait::limit) {
        Some(limit) => tokio::time::sleep(limit).await,
        None => std::future::pending().await,
    }
}

/// The error (exit 75) when `--wait` ran out: what the run waited for and who holds it. The
/// session is closed right after, which leaves nothing of ours in any queue.
pub(super) async fn timed_out(plan: &Plan, session: &Session, waiting: &Waiting) -> Error {
    let now = waiting.0.borrow().clone();
    let what = match describe(plan, session, &now).await {
        Ok(what) => what,
        Err(e) => format!("{} (and then: {e})", plain(plan, &now)),
    };
    let wait = plan.wait.map(|w| w.to_string()).unwrap_or_default();
    Error::Timeout(format!(
        "--wait {wait} ran out waiting for {what}; nothing was left queued"
    ))
}

/// What we waited for, without asking ZooKeeper who holds it.
fn plain(plan: &Plan, now: &For) -> String {
    match (now, plan.lock_path()) {
        (For::Start, None) => "the leases".to_string(),
        (For::Start | For::Turn(_) | For::Lock, path) => {
            format!("lock {}", path.unwrap_or_default())
        }
        (For::Task(item), _) => format!("task {}, queued as {item}", plan.task),
        (For::Lease(spec), _) => format!(
            "{} of {} units of resource {}",
            spec.count, spec.total, spec.resource
        ),
    }
}

/// What we waited for and who holds it: one or two reads.
async fn describe(plan: &Plan, session: &Session, now: &For) -> Result<String> {
    let what = plain(plan, now);
    Ok(match now {
        For::Start if !plan.lock => what,
        For::Start | For::Turn(_) | For::Lock => {
            let path = plan.lock_path().unwrap_or_default();
            let ahead = match now {
                For::Turn(ours) => runs_ahead(plan, session, ours).await?,
                _ => 0,
            };
            let in_line = match ahead {
                0 => String::new(),
                1 => ", 1 run ahead of us in line".to_string(),
                n => format!(", {n} runs ahead of us in line"),
            };
            match Holder::read(session, &path).await? {
                Some(h) => format!(
                    "{what}, held by {} (token {}){in_line}",
                    h.describe(),
                    h.czxid
                ),
                None => format!("{what}, free as we gave up{in_line}"),
            }
        }
        For::Task(item) => match Holder::read(session, item).await? {
            Some(h) => format!("{what} by {}", h.describe()),
            None => what,
        },
        For::Lease(spec) => {
            let folder = plan.paths.semaphore_leases(&spec.resource);
            let mut names = session.children(&folder).await?;
            names.sort_by_key(|n| sequence_of(n));
            let paths: Vec<String> = names.iter().map(|n| format!("{folder}/{n}")).collect();
            let holders: Vec<String> = session
                .data_pipelined(&paths)
                .await?
                .into_iter()
                .zip(&names)
                .filter_map(|(read, name)| {
                    let (data, stat) = read?;
                    let count = LeaseName::parse(name).map_or("?".into(), |n| n.count.to_string());
                    Some(format!(
                        "{} ({count})",
                        Holder::new(&data, &stat).describe()
                    ))
                })
                .collect();
            let leased = match holders.len() {
                0 => "none leased as we gave up".to_string(),
                n if n <= 3 => format!("leased by {}", holders.join(", ")),
                n => format!("leased by {} and {} more", holders[..3].join(", "), n - 3),
            };
            // Who is in the way besides the holders: another run first in the resource's
            // queue, and its hold on the semaphore's guard (a run stuck there, an original
            // trapped in its guard mutex, say, keeps every run behind it waiting).
            let mut ahead = String::new();
            let queue = plan.paths.queue(&spec.resource);
            if let Some(first) = first_not_ours(session, &queue).await? {
                ahead.push_str(&format!("; first in its queue: {}", first.describe()));
            }
            let guard = plan.paths.semaphore_guard(&spec.resource);
            if let Some(held) = first_not_ours(session, &guard).await? {
                ahead.push_str(&format!("; its guard held by {}", held.describe()));
            }
            format!("{what}, {leased}{ahead}")
        }
    })
}

/// Who holds the oldest node in `folder`, unless it is our own session's.
async fn first_not_ours(session: &Session, folder: &str) -> Result<Option<Holder>> {
    let mut names = session.children(folder).await?;
    names.sort_by_key(|n| sequence_of(n));
    let Some(first) = names.first() else {
        return Ok(None);
    };
    Ok(match session.data(&format!("{folder}/{first}")).await? {
        Some((data, stat)) if stat.ephemeral_owner != session.id() => {
            Some(Holder::new(&data, &stat))
        }
        _ => None,
    })
}

/// How many items are ahead of ours in the lock's line.
async fn runs_ahead(plan: &Plan, session: &Session, ours: &str) -> Result<usize> {
    let seq = ours.rsplit('/').next().and_then(sequence_of);
    let line = session.children(&plan.paths.lock_line(&plan.task)).await?;
    Ok(line
        .iter()
        .filter(|c| sequence_of(c) < seq && sequence_of(c).is_some())
        .count())
}
