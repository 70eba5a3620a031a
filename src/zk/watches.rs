//! Watches: reads that also arm a one-shot watch, a persistent watch on a subtree, and the
//! wait for a node we hold to go.

use zookeeper_client::{AddWatchMode, EventType, OneshotWatcher, PersistentWatcher, Stat};

use super::session::Session;
use crate::error::{Error, Result};

/// Why something a run holds is no longer its own: a node of ours, or the session itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lost {
    /// Deleted, by anyone.
    Deleted { what: &'static str, path: String },
    /// Deleted and made again by another session.
    Replaced { what: &'static str, path: String },
    /// The session ended (expired, closed, or refused), and every node of ours with it.
    Session(String),
    /// It could not be watched: an error the retry rule did not cure.
    Unwatched {
        what: &'static str,
        path: String,
        error: String,
    },
}

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lost::Deleted { what, path } => write!(f, "{what} {path} was deleted"),
            Lost::Replaced { what, path } => {
                write!(f, "{what} {path} now belongs to another holder")
            }
            Lost::Session(why) => write!(f, "{why}"),
            Lost::Unwatched { what, path, error } => {
                write!(f, "cannot watch {what} {path}: {error}")
            }
        }
    }
}

impl Session {
    /// The children of `folder` and a watch that fires when they change. `None` if the folder
    /// does not exist.
    pub async fn children_and_watch(
        &self,
        folder: &str,
    ) -> Result<Option<(Vec<String>, OneshotWatcher)>> {
        match self
            .retry(|| self.client.get_and_watch_children(folder))
            .await
        {
            Ok((children, _, watcher)) => Ok(Some((children, watcher))),
            Err(zookeeper_client::Error::NoNode) => Ok(None),
            Err(e) => Err(self.zk_error("watch", folder, e)),
        }
    }

    /// The stat of `path` (`None` if it does not exist) and a watch that fires when it is
    /// created, changed or deleted.
    pub async fn stat_and_watch(&self, path: &str) -> Result<(Option<Stat>, OneshotWatcher)> {
        self.retry(|| self.client.check_and_watch_stat(path))
            .await
            .map_err(|e| self.zk_error("watch", path, e))
    }

    /// A watch on `path` and every node below it, firing on each creation, deletion and data
    /// change (and on session events) until it is dropped, when the library asks the servers to
    /// remove it, or the session ends. Needs ZooKeeper 3.6 or later.
    pub async fn watch_tree(&self, path: &str) -> Result<PersistentWatcher> {
        match self
            .retry(|| self.client.watch(path, AddWatchMode::PersistentRecursive))
            .await
        {
            Ok(watcher) => Ok(watcher),
            Err(zookeeper_client::Error::Unimplemented) => Err(Error::Unavailable(format!(
                "watch {path}: the ZooKeeper servers do not support persistent recursive \
                 watches (they need version 3.6 or later)"
            ))),
            Err(e) => Err(self.zk_error("watch", path, e)),
        }
    }

    /// The data and stat of `path` and a watch that fires when it changes or goes; `None` if it
    /// does not exist (and nothing is watched).
    pub async fn data_watched(
        &self,
        path: &str,
    ) -> Result<Option<(Vec<u8>, Stat, OneshotWatcher)>> {
        match self.retry(|| self.client.get_and_watch_data(path)).await {
            Ok(found) => Ok(Some(found)),
            Err(zookeeper_client::Error::NoNode) => Ok(None),
            Err(e) => Err(self.zk_error("read", path, e)),
        }
    }

    /// The data of `path` (empty if it does not exist) and a watch that fires when it changes,
    /// or when it is created.
    pub async fn data_or_empty_watched(&self, path: &str) -> Result<(Vec<u8>, OneshotWatcher)> {
        loop {
            match self.retry(|| self.client.get_and_watch_data(path)).await {
                Ok((data, _, watcher)) => return Ok((data, watcher)),
                Err(zookeeper_client::Error::NoNode) => {
                    if let (None, watcher) = self.stat_and_watch(path).await? {
                        return Ok((Vec::new(), watcher));
                    }
                    // Created between the two requests: read its data after all.
                }
                Err(e) => return Err(self.zk_error("read", path, e)),
            }
        }
    }

    /// Resolves, with the reason, when our node at `path` is gone: deleted (by anyone), replaced
    /// by a node with another creation zxid than `czxid`, or lost with the session. `what` names
    /// the node in the reason ("lock node"). Driven by the watch event, never by polling.
    pub async fn node_gone(&self, what: &'static str, path: &str, czxid: Option<i64>) -> Lost {
        self.node_gone_with_watch(what, path, czxid, None).await
    }

    /// [`Session::node_gone`], starting from a watch already set on `path` (with the stat it
    /// was set on), as [`Session::create_own_watched`] gives one.
    pub async fn node_gone_with_watch(
        &self,
        what: &'static str,
        path: &str,
        czxid: Option<i64>,
        mut watched: Option<(Stat, OneshotWatcher)>,
    ) -> Lost {
        let path = path.to_string();
        loop {
            let found = match watched.take() {
                Some((stat, watcher)) => Ok((Some(stat), watcher)),
                None => self.stat_and_watch(&path).await,
            };
            match found {
                Ok((Some(stat), _)) if czxid.is_some_and(|c| c != stat.czxid) => {
                    return Lost::Replaced { what, path };
                }
                Ok((Some(_), watcher)) => {
                    let event = watcher.changed().await;
                    match event.event_type {
                        EventType::NodeDeleted => return Lost::Deleted { what, path },
                        EventType::Session if event.session_state.is_terminated() => {
                            let state = event.session_state;
                            return Lost::Session(format!("the ZooKeeper session ended ({state})"));
                        }
                        // A data change, or a reconnect: look again.
                        _ => continue,
                    }
                }
                Ok((None, _)) => return Lost::Deleted { what, path },
                Err(e) => {
                    let error = e.to_string();
                    return Lost::Unwatched { what, path, error };
                }
            }
        }
    }
}
