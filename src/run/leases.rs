//! Steps 6 and 7: the resources' queues, joined, and each semaphore's room, waited for in
//! turn.

use tokio::sync::Notify;

use super::plan::Plan;
use super::wait::{For, Waiting};
use crate::error::Result;
use crate::lease_spec::LeaseSpec;
use crate::recipes::queue::{self, Item};
use crate::recipes::semaphore::{self, Lease, Room};
use crate::zk::Session;

/// What step 6 came to.
pub(super) enum Joined {
    /// In every queue, with each queue as listed after we joined.
    First(Vec<(Item, Vec<String>)>),
    /// An item of the same task was there first, in this queue.
    Behind(String),
}

/// Step 6's look at the queues before joining them, for a run with a lock: each queue folder
/// with its items, in one read.
pub(super) async fn queues_of_task(
    plan: &Plan,
    session: &Session,
    leases: &[LeaseSpec],
) -> Result<Vec<(String, Vec<String>)>> {
    if !plan.lock || leases.is_empty() {
        return Ok(Vec::new());
    }
    let folders = plan.queue_folders(leases);
    let names: Vec<&str> = folders.iter().map(String::as_str).collect();
    let listed = session.children_in_one_read(&names).await?;
    Ok(folders.into_iter().zip(listed).collect())
}

/// Step 6: joins every resource's queue in one transaction, then lists them all in one read.
/// If an item of the same task is older than ours in a queue (only a run with a lock cares),
/// that run got there first.
pub(super) async fn join_queues(
    plan: &Plan,
    session: &Session,
    leases: &[LeaseSpec],
) -> Result<Joined> {
    if leases.is_empty() {
        return Ok(Joined::First(Vec::new()));
    }
    let stems: Vec<String> = leases
        .iter()
        .map(|spec| plan.paths.queue_item_stem(&spec.resource, &plan.task))
        .collect();
    let (items, listed) = queue::join_all(session, &stems, plan.owner.as_bytes(), &[]).await?;
    let queued: Vec<(Item, Vec<String>)> = items.into_iter().zip(listed).collect();
    if plan.lock
        && let Some(older) = queued
            .iter()
            .find_map(|(item, listed)| item.older_of_task(listed, &plan.task))
    {
        return Ok(Joined::Behind(older));
    }
    Ok(Joined::First(queued))
}

/// Step 7's wait: for each resource in order, our turn in its queue, then room in its
/// semaphore; every lease but the last is taken, and the room for the last is returned, for
/// step 8 to take. `wait_begins` is told before the run first waits.
pub(super) async fn acquire_leases(
    plan: &Plan,
    session: &Session,
    leases: &[LeaseSpec],
    queued: &[(Item, Vec<String>)],
    waiting: &Waiting,
    wait_begins: &Notify,
) -> Result<(Vec<Lease>, Option<Room>)> {
    let owner = plan.owner.as_bytes();
    let before_waiting = || wait_begins.notify_one();
    let mut held = Vec::new();
    let mut last = None;
    for (k, (spec, (item, listed))) in leases.iter().zip(queued).enumerate() {
        waiting.set(For::Lease(spec.clone()));
        // Once first in a queue, always first: a newer item cannot go ahead of ours.
        if !item.is_oldest(listed) {
            before_waiting();
            item.wait_turn(session).await?;
        }
        let room = semaphore::room(session, &plan.paths, spec, owner, &before_waiting).await?;
        if k + 1 == leases.len() {
            last = Some(room);
        } else {
            held.push(room.take(session, owner).await?);
        }
    }
    Ok((held, last))
}
