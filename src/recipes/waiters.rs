//! Waiting in line for a lock (`--wait`): `{prefix}/waiters/{lock}/wait-{seq10}`, a FIFO queue
//! (the queue recipe) in front of the lock node (docs/guide.md: "Waiting for the lock").
//!
//! Each waiter watches only the item just ahead of its own, and only the first in line watches
//! the lock node, so a release wakes one waiter however many wait. The line is ours alone: the
//! Perl original does not know it, and can take the lock between two of our waiters.

use zookeeper_client::{EventType, OneshotWatcher};

use super::queue::{self, Item};
use crate::error::{Error, Result};
use crate::zk::session_ended;
use crate::zk::{Paths, Session};

/// Whether nobody waits in line for `lock`. Then a run may try the lock at once: it jumps no
/// one, and if it finds the lock held it joins the line.
pub async fn is_empty(session: &Session, paths: &Paths, lock: &str) -> Result<bool> {
    Ok(session.children(&paths.lock_line(lock)).await?.is_empty())
}

/// Joins the line for `lock`.
pub async fn join(session: &Session, paths: &Paths, lock: &str, data: &[u8]) -> Result<Item> {
    queue::join(session, &paths.lock_line_stem(lock), data).await
}

/// Waits until the node at `path` (the lock, for the first in line) does not exist. Returns a
/// watch that fires when it is created again, except when `rewatch` is false and it was seen
/// to go: then nothing, which saves the request that would set a new watch, the only one
/// between a release and the next run's create of the lock.
pub async fn until_gone(
    session: &Session,
    path: &str,
    rewatch: bool,
) -> Result<Option<OneshotWatcher>> {
    loop {
        let (stat, watcher) = session.stat_and_watch(path).await?;
        if stat.is_none() {
            return Ok(Some(watcher));
        }
        tracing::debug!("waiting for {path} to go");
        let event = watcher.changed().await;
        if session_ended(&event) {
            return Err(Error::Unavailable(format!(
                "the ZooKeeper session ended while waiting for {path} to go"
            )));
        }
        if event.event_type == EventType::NodeDeleted && !rewatch {
            return Ok(None);
        }
    }
}
