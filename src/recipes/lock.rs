//! The lock: one ephemeral node, `{prefix}/locks/{lock}`, whose existence means "running".
//!
//! Ephemeral means the servers delete it when our session ends, so a crashed host frees the
//! lock by itself. Its creation zxid only ever grows from one holder to the next, which makes it
//! the fencing token handed to CMD.
//!
//! There is no explicit release: closing the session deletes the node, atomically with the
//! close, and only ever our own node. A separate delete would cost a request and, if someone had
//! already replaced the node, could delete another holder's lock.

use std::cell::RefCell;

use zookeeper_client::{OneshotWatcher, Stat};

use super::holder::Holder;
use crate::error::Result;
use crate::zk::Session;
use crate::zk::{Created, Lost, Txn};

/// A lock we hold.
#[derive(Debug)]
pub struct Lock {
    pub path: String,
    /// The node's creation zxid: the fencing token.
    pub czxid: i64,
    /// The node's creation time on the servers' clock (ms since the epoch): when the run began,
    /// as `--min-interval` measures it.
    pub ctime: i64,
    /// The watch set on the node as it was taken, until [`Lock::lost`] takes it over.
    watched: RefCell<Option<(Stat, OneshotWatcher)>>,
}

/// Why a run could not have the lock: another holder has it. `None` when the holder was gone
/// again by the time we read who it was.
pub type Taken = Option<Holder>;

/// What a try at the lock came to.
#[derive(Debug)]
pub enum Acquired {
    Ours(Lock),
    /// Another holder has it: skip, or with `--wait` wait for it.
    HeldElsewhere(Taken),
}

/// Whether the lock is free, for a run that watches it while it waits for leases.
pub enum Free {
    /// Free, with a watch that fires when someone takes it.
    Watched(OneshotWatcher),
    HeldElsewhere(Taken),
}

/// Tries to take the lock at `path` once; `waits` is `--wait`. The watch that tells when the
/// lock is lost is set in the same round trip (and the holder read in it).
pub async fn acquire(session: &Session, path: &str, data: &[u8], waits: bool) -> Result<Acquired> {
    let (created, watched) = session.create_own_watched(path, data).await?;
    Ok(match created {
        Created::Ours(stat) => Acquired::Ours(Lock::new(path, &stat, watched)),
        Created::Theirs(found) => {
            if let Some((_, watcher)) = watched {
                let_go(session, watcher, waits);
            }
            Acquired::HeldElsewhere(found.map(|(data, stat)| Holder::new(&data, &stat)))
        }
    })
}

/// Lets go of a watch set on another holder's lock node. A run that skips keeps it until its
/// session closes, which removes it for free; dropped, it would cost a request. A run that
/// waits on (`waits`) drops it: kept, it would wake this run, and every run like it, when the
/// holder lets go, where the line lets only the first in line watch the lock.
fn let_go(session: &Session, watcher: OneshotWatcher, waits: bool) {
    if waits {
        drop(watcher);
    } else {
        session.keep_until_close(watcher);
    }
}

/// Adds the lock's making to `txn` (with the run's last lease): nothing of `txn` is made if the
/// lock is held by then. [`made`] reads it back.
pub fn create_in<'a>(txn: &mut Txn<'a>, path: &'a str, data: &'a [u8]) {
    txn.create_own(path, data);
}

/// The lock at `path`, which a transaction of ours has just made (with the run's last lease):
/// its stat, which holds the fencing token, and the watch that tells when it is lost, read in
/// one request. Also after a transaction that found the lock taken, whose holder it names
/// (and `waits` is as for [`acquire`]).
pub async fn made(session: &Session, path: &str, waits: bool) -> Result<Acquired> {
    Ok(match session.data_watched(path).await? {
        Some((_, stat, watcher)) if stat.ephemeral_owner == session.id() => {
            Acquired::Ours(Lock::new(path, &stat, Some((stat, watcher))))
        }
        Some((data, stat, watcher)) => {
            let_go(session, watcher, waits);
            Acquired::HeldElsewhere(Some(Holder::new(&data, &stat)))
        }
        None => Acquired::HeldElsewhere(None),
    })
}

impl Lock {
    fn new(path: &str, stat: &Stat, watched: Option<(Stat, OneshotWatcher)>) -> Lock {
        Lock {
            path: path.to_string(),
            czxid: stat.czxid,
            ctime: stat.ctime,
            watched: RefCell::new(watched),
        }
    }

    /// Resolves when the lock is no longer ours: the node was deleted (by anyone) or replaced by
    /// another holder's.
    pub async fn lost(&self, session: &Session) -> Lost {
        let watched = self.watched.borrow_mut().take();
        session
            .node_gone_with_watch("lock node", &self.path, Some(self.czxid), watched)
            .await
    }
}

/// For a run with leases that has to wait: whether the lock is free, with a watch that fires
/// when someone takes it while we wait in the queues. Its holder is read only if it is held, so
/// the extra request is made only by runs that skip.
pub async fn watch_free(session: &Session, path: &str) -> Result<Free> {
    Ok(match session.stat_and_watch(path).await? {
        (None, watcher) => Free::Watched(watcher),
        (Some(_), _) => Free::HeldElsewhere(Holder::read(session, path).await?),
    })
}

/// The end of a skip message: `is held by web1.example pid 4242 since 03:00:00Z (token 42)`.
pub fn held_by(taken: &Taken) -> String {
    match taken {
        Some(h) => format!("is held by {} (token {})", h.describe(), h.czxid),
        None => "is held elsewhere (its holder left as we looked)".to_string(),
    }
}
