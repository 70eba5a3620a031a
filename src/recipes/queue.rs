//! Fair FIFO queues of ephemeral sequential nodes: `{prefix}/queues/{res}/{lock}-{seq10}`, and
//! the semaphore's guard mutex, `.../lock/acquire-{seq10}`, which is the same recipe.
//!
//! A waiter watches only the node just ahead of its own, so one departure wakes one waiter
//! (no herd), and the order is the order of arrival.

use crate::error::{Error, Result};
use crate::zk::Session;
use crate::zk::paths::sequence_of;
use crate::zk::session_ended;
use crate::zk::{Slot, Txn};

/// Our place in a queue.
#[derive(Debug, Clone)]
pub struct Item {
    pub path: String,
    folder: String,
    seq: i64,
}

/// Appends an item `{stem}{seq10}` with `data` to the queue folder the stem lies in.
pub async fn join(session: &Session, stem: &str, data: &[u8]) -> Result<Item> {
    Ok(Item::at(session.create_sequential(stem, data).await?))
}

/// Joins the queue of each stem at once (one transaction), then lists each of those queues
/// and then each of `also` in one read, answered after the joins. A run that finds itself
/// first everywhere goes on without another request; the lists show whom else to wait for.
///
/// The read is sent right behind the transaction, without awaiting its answer: the servers
/// answer a session's requests in order. A listing that does not show our item was read
/// before the join (the transaction had to be made again) and is read again.
pub async fn join_all(
    session: &Session,
    stems: &[String],
    data: &[u8],
    also: &[&str],
) -> Result<(Vec<Item>, Vec<Vec<String>>)> {
    let mut txn = Txn::default();
    let slots: Vec<Slot> = stems.iter().map(|stem| txn.create(stem, data)).collect();
    let folders: Vec<&str> = stems
        .iter()
        .map(|stem| stem.rsplit_once('/').expect("a stem is an absolute path").0)
        .chain(also.iter().copied())
        .collect();
    let (made, listed) =
        futures::join!(session.apply(&txn), session.children_in_one_read(&folders));
    let made = made?.expect("only a create_own finds its node taken");
    let items: Vec<Item> = slots
        .into_iter()
        .map(|slot| Item::at(made.path(slot).to_string()))
        .collect();
    let after_join = |listed: &[Vec<String>]| {
        items.iter().zip(listed).all(|(item, children)| {
            children
                .iter()
                .any(|c| item.path == format!("{}/{c}", item.folder))
        })
    };
    let listed = match listed {
        Ok(listed) if after_join(&listed) => listed,
        _ => session.children_in_one_read(&folders).await?,
    };
    Ok((items, listed))
}

/// The task an item `{task}-{digits}` is queued for; `None` for a name of another shape.
pub fn task_of(item: &str) -> Option<&str> {
    let (task, digits) = item.rsplit_once('-')?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(task)
}

/// The path of an item of `task` among `items`, the children of the queue `folder`: a run of
/// the task waits there already.
pub fn item_of_task(folder: &str, items: &[String], task: &str) -> Option<String> {
    items
        .iter()
        .find(|c| task_of(c) == Some(task))
        .map(|c| format!("{folder}/{c}"))
}

impl Item {
    /// The item at `path`, which ZooKeeper named `{stem}{seq10}`.
    pub fn at(path: String) -> Item {
        let (folder, name) = path.rsplit_once('/').expect("an absolute path");
        let seq = sequence_of(name).expect("ZooKeeper appends a sequence number");
        Item {
            folder: folder.to_string(),
            seq,
            path,
        }
    }

    /// An item of the same `task` that is older than ours in `children` (a listing of the queue
    /// that holds ours): another run of the task got there first.
    pub fn older_of_task(&self, children: &[String], task: &str) -> Option<String> {
        children
            .iter()
            .filter(|c| task_of(c) == Some(task))
            .find(|c| sequence_of(c).is_some_and(|s| s < self.seq))
            .map(|c| format!("{}/{c}", self.folder))
    }

    /// Whether no item in `children` (a listing of the queue that holds ours) is older.
    pub fn is_oldest(&self, children: &[String]) -> bool {
        !children
            .iter()
            .filter_map(|c| sequence_of(c))
            .any(|s| s < self.seq)
    }

    /// Waits until this item is the oldest in its queue, and warms the session up then (see
    /// `Liveness::warm_up`).
    pub async fn wait_turn(&self, session: &Session) -> Result<()> {
        loop {
            let children = session.children(&self.folder).await?;
            // The item just ahead of ours: the largest sequence below ours.
            let ahead = children
                .iter()
                .filter_map(|c| sequence_of(c).map(|s| (s, c)))
                .filter(|(s, _)| *s < self.seq)
                .max_by_key(|(s, _)| *s);
            let Some((_, ahead)) = ahead else {
                // First in line: from here on, the run proves its session, so that CMD can
                // start the moment its turn comes.
                session.warm_up();
                return Ok(());
            };
            let ahead = format!("{}/{ahead}", self.folder);
            if let (Some(_), watcher) = session.stat_and_watch(&ahead).await? {
                tracing::debug!("{}: waiting behind {ahead}", self.path);
                if session_ended(&watcher.changed().await) {
                    return Err(Error::Unavailable(format!(
                        "the ZooKeeper session ended while waiting in {}",
                        self.folder
                    )));
                }
            }
        }
    }

    /// Leaves the queue in `txn`, with whatever else it makes.
    pub fn leave_in<'a>(&'a self, txn: &mut Txn<'a>) {
        txn.delete(&self.path);
    }

    /// Leaves the queue.
    pub async fn leave(&self, session: &Session) -> Result<()> {
        session.delete_own(&self.path).await
    }
}
