//! Fair FIFO queues of ephemeral sequential nodes: `{prefix}/queues/{res}/{lock}-{seq10}`, and
//! the semaphore's guard mutex, `.../lock/acquire-{seq10}`, which is the same recipe.
//!
//! A waiter watches only the node just ahead of its own, so one departure wakes one waiter
//! (no herd), and the order is the order of arrival.

use zookeeper_client::EventType;

use crate::error::Result;
use crate::session::{Session, sequence_of, zk_error};

/// Our place in a queue.
#[derive(Debug, Clone)]
pub struct Item {
    pub path: String,
    folder: String,
    seq: i64,
}

/// Appends an item `{stem}{seq10}` with `data` to the queue folder the stem lies in.
pub async fn join(session: &Session, stem: &str, data: &[u8]) -> Result<Item> {
    let path = session.create_sequential(stem, data).await?;
    let (folder, name) = path.rsplit_once('/').expect("an absolute path");
    let seq = sequence_of(name).expect("ZooKeeper appends a sequence number");
    Ok(Item {
        folder: folder.to_string(),
        seq,
        path,
    })
}

/// True if the queue folder already holds an item `{name}-{digits}` (another host is waiting
/// to run the same task).
pub async fn has_item_named(session: &Session, folder: &str, name: &str) -> Result<bool> {
    Ok(list(session, folder).await?.iter().any(|c| {
        c.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    }))
}

/// The children of `folder`; none if it does not exist. A connection lost in flight is not a
/// failure: the client library reconnects with the same session, and a read can be repeated.
/// (Requests made while it reconnects wait for the new connection; if the session is lost
/// instead, they fail with that.)
pub async fn list(session: &Session, folder: &str) -> Result<Vec<String>> {
    loop {
        match session.client().list_children(folder).await {
            Ok(children) => return Ok(children),
            Err(zookeeper_client::Error::NoNode) => return Ok(Vec::new()),
            Err(zookeeper_client::Error::ConnectionLoss) => continue,
            Err(e) => return Err(zk_error("list", folder, e)),
        }
    }
}

impl Item {
    /// Whether no item in `children` (a listing of the queue that holds ours) is older.
    pub fn is_oldest(&self, children: &[String]) -> bool {
        !children
            .iter()
            .filter_map(|c| sequence_of(c))
            .any(|s| s < self.seq)
    }

    /// Waits until this item is the oldest in its queue.
    pub async fn wait_turn(&self, session: &Session) -> Result<()> {
        let client = session.client();
        loop {
            let children = list(session, &self.folder).await?;
            // The item just ahead of ours: the largest sequence below ours.
            let ahead = children
                .iter()
                .filter_map(|c| sequence_of(c).map(|s| (s, c)))
                .filter(|(s, _)| *s < self.seq)
                .max_by_key(|(s, _)| *s);
            let Some((_, ahead)) = ahead else {
                return Ok(());
            };
            let ahead = format!("{}/{ahead}", self.folder);
            match client.check_and_watch_stat(&ahead).await {
                Ok((None, _)) => continue,
                Ok((Some(_), watcher)) => {
                    tracing::debug!("{}: waiting behind {ahead}", self.path);
                    let event = watcher.changed().await;
                    if event.event_type == EventType::Session && event.session_state.is_terminated()
                    {
                        return Err(crate::error::Error::Unavailable(format!(
                            "the ZooKeeper session ended while waiting in {}",
                            self.folder
                        )));
                    }
                }
                Err(zookeeper_client::Error::ConnectionLoss) => continue,
                Err(e) => return Err(zk_error("watch", &ahead, e)),
            }
        }
    }

    /// Leaves the queue. A delete whose reply was lost is repeated: if it had been done, the
    /// node is gone, which is what we want.
    pub async fn leave(&self, session: &Session) -> Result<()> {
        session.delete_own(&self.path).await
    }
}
