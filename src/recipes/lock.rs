//! The lock: one ephemeral node, `{prefix}/locks/{lock}`, whose existence means "running".
//!
//! Ephemeral means the servers delete it when our session ends, so a crashed host frees the
//! lock by itself. Its creation zxid only ever grows from one holder to the next, which makes it
//! the fencing token handed to CMD.
//!
//! There is no explicit release: closing the session deletes the node, atomically with the
//! close, and only ever our own node. A separate delete would cost a request and, if someone had
//! already replaced the node, could delete another holder's lock.

use zookeeper_client::OneshotWatcher;

use crate::error::Result;
use crate::zk::Session;

/// A lock we hold.
#[derive(Debug, Clone)]
pub struct Lock {
    pub path: String,
    /// The node's creation zxid: the fencing token.
    pub czxid: i64,
}

/// Tries to take the lock at `path` once. `Ok(None)` means another holder has it: skip.
pub async fn acquire(session: &Session, path: &str, data: &[u8]) -> Result<Option<Lock>> {
    Ok(session.create_own(path, data).await?.map(|stat| Lock {
        path: path.to_string(),
        czxid: stat.czxid,
    }))
}

impl Lock {
    /// Resolves when the lock is no longer ours: the node was deleted (by anyone) or replaced by
    /// another holder's.
    pub async fn lost(&self, session: &Session) -> String {
        session
            .node_gone("lock node", &self.path, Some(self.czxid))
            .await
    }
}

/// Step 4 of a run with leases: `None` if the lock is held (skip); otherwise a watch that fires
/// when someone takes it while we wait in the queues.
pub async fn watch_free(session: &Session, path: &str) -> Result<Option<OneshotWatcher>> {
    Ok(match session.stat_and_watch(path).await? {
        (None, watcher) => Some(watcher),
        (Some(_), _) => None,
    })
}
