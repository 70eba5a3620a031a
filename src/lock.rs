//! The lock: one ephemeral node, `{prefix}/locks/{lock}`, whose existence means "running".
//!
//! Ephemeral means the servers delete it when our session ends, so a crashed host frees the
//! lock by itself. Its creation zxid only ever grows from one holder to the next, which makes it
//! the fencing token handed to CMD.
//!
//! There is no explicit release: closing the session deletes the node, atomically with the
//! close, and only ever our own node. A separate delete would cost a request and, if someone had
//! already replaced the node, could delete another holder's lock.

use zookeeper_client::{CreateMode, Stat};

use crate::error::{Error, Result};
use crate::session::{Session, zk_error};

/// A lock we hold.
#[derive(Debug, Clone)]
pub struct Lock {
    pub path: String,
    /// The node's creation zxid: the fencing token.
    pub czxid: i64,
}

/// Tries to take the lock at `path` once. `Ok(None)` means another holder has it: skip.
pub async fn acquire(session: &Session, path: &str, data: &[u8]) -> Result<Option<Lock>> {
    loop {
        match session
            .create_with_parents(path, data, CreateMode::Ephemeral)
            .await
        {
            Ok((stat, _)) => {
                return Ok(Some(Lock {
                    path: path.to_string(),
                    czxid: stat.czxid,
                }));
            }
            Err(zookeeper_client::Error::NodeExists) => {
                // The node may be ours if an earlier create's reply was lost.
                return Ok(owned_by(session, path).await?.map(|stat| Lock {
                    path: path.to_string(),
                    czxid: stat.czxid,
                }));
            }
            Err(zookeeper_client::Error::ConnectionLoss) => {
                // The create may or may not have happened; the owner tells which.
                if let Some(stat) = owned_by(session, path).await? {
                    return Ok(Some(Lock {
                        path: path.to_string(),
                        czxid: stat.czxid,
                    }));
                }
            }
            Err(zookeeper_client::Error::NoNode) => {
                return Err(Error::Config(format!(
                    "cannot create {path}: the chroot in zkhosts does not exist in ZooKeeper"
                )));
            }
            Err(e) => return Err(zk_error("create", path, e)),
        }
    }
}

/// The node's stat if it exists and our session owns it.
async fn owned_by(session: &Session, path: &str) -> Result<Option<Stat>> {
    loop {
        match session.client().check_stat(path).await {
            Ok(stat) => return Ok(stat.filter(|s| s.ephemeral_owner == session.id())),
            Err(zookeeper_client::Error::ConnectionLoss) => continue,
            Err(e) => return Err(zk_error("stat", path, e)),
        }
    }
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
pub async fn watch_free(
    session: &Session,
    path: &str,
) -> Result<Option<zookeeper_client::OneshotWatcher>> {
    loop {
        match session.client().check_and_watch_stat(path).await {
            Ok((None, watcher)) => return Ok(Some(watcher)),
            Ok((Some(_), _)) => return Ok(None),
            // A reconnect: the client holds the retry until it is connected again.
            Err(zookeeper_client::Error::ConnectionLoss) => continue,
            Err(e) => return Err(zk_error("watch", path, e)),
        }
    }
}
