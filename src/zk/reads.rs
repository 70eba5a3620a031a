//! Reads: one node or folder, several in one `multiRead`, or many pipelined.

use std::future::Future;

use futures::{StreamExt, TryStreamExt};
use zookeeper_client::{MultiReadResult, Stat};

use super::access::{ZkResult, empty_if_absent};
use super::session::Session;
use crate::error::{Error, Result};

/// Requests a pipelined read keeps in flight: enough to hide the round trip, and no more than a
/// server queues for all its clients before it stops reading from them (`globalOutstandingLimit`).
const PIPELINE: usize = 1000;

/// One read of a [`Session::read_all`].
#[derive(Debug, Clone, Copy)]
pub enum Read<'a> {
    /// The children of a folder.
    Children(&'a str),
    /// A node's data and stat.
    Data(&'a str),
}

impl Read<'_> {
    fn path(&self) -> &str {
        match *self {
            Read::Children(path) | Read::Data(path) => path,
        }
    }
}

/// What one [`Read`] found.
#[derive(Debug)]
pub enum Found {
    Children(Vec<String>),
    Data((Vec<u8>, Stat)),
    /// No node at the path: a folder without children, or a node that does not exist.
    Absent,
}

impl Found {
    /// The children a [`Read::Children`] found; none if the folder does not exist.
    pub fn children(self) -> Vec<String> {
        match self {
            Found::Children(children) => children,
            Found::Data(_) | Found::Absent => Vec::new(),
        }
    }

    /// The data and stat a [`Read::Data`] found, `None` if the node does not exist.
    pub fn data(self) -> Option<(Vec<u8>, Stat)> {
        match self {
            Found::Data(found) => Some(found),
            Found::Children(_) | Found::Absent => None,
        }
    }
}

impl Session {
    /// The children of `folder`; none if it does not exist.
    pub async fn children(&self, folder: &str) -> Result<Vec<String>> {
        let children = self.retry(|| self.client.list_children(folder)).await;
        empty_if_absent(children).map_err(|e| self.zk_error("list", folder, e))
    }

    /// The children of each of `folders`, read in one request (ZooKeeper's `multiRead`, 3.6
    /// or later), one after the other in their order, after every request sent before it.
    /// A folder that does not exist has none.
    pub async fn children_in_one_read(&self, folders: &[&str]) -> Result<Vec<Vec<String>>> {
        let reads: Vec<Read> = folders.iter().map(|f| Read::Children(f)).collect();
        Ok(self
            .read_all(&reads)
            .await?
            .into_iter()
            .map(Found::children)
            .collect())
    }

    /// Each of `reads` in one request (ZooKeeper's `multiRead`, 3.6 or later), answered in
    /// their order after every request sent before it, in the order of `reads`.
    pub async fn read_all(&self, reads: &[Read<'_>]) -> Result<Vec<Found>> {
        let read = self
            .retry(|| async {
                let mut reader = self.client.new_multi_reader();
                for read in reads {
                    match *read {
                        Read::Children(folder) => reader.add_get_children(folder)?,
                        Read::Data(path) => reader.add_get_data(path)?,
                    }
                }
                reader.commit().await
            })
            .await;
        let first = reads.first().map_or("/", Read::path);
        let read = match read {
            Err(zookeeper_client::Error::Unimplemented) => {
                return Err(Error::Unavailable(format!(
                    "read {first}: the ZooKeeper servers do not support multiRead (they need \
                     version 3.6 or later)"
                )));
            }
            other => other.map_err(|e| self.zk_error("read", first, e))?,
        };
        read.into_iter()
            .zip(reads)
            .map(|(result, read)| match result {
                MultiReadResult::Children { children } => Ok(Found::Children(children)),
                MultiReadResult::Data { data, stat } => Ok(Found::Data((data, stat))),
                MultiReadResult::Error {
                    err: zookeeper_client::Error::NoNode,
                } => Ok(Found::Absent),
                MultiReadResult::Error { err } => Err(self.zk_error("read", read.path(), err)),
                other => Err(Error::Internal(format!(
                    "read {}: ZooKeeper answered {other:?}",
                    read.path()
                ))),
            })
            .collect()
    }

    /// The data and stat of `path`, `None` if it does not exist.
    pub async fn data(&self, path: &str) -> Result<Option<(Vec<u8>, Stat)>> {
        match self.retry(|| self.client.get_data(path)).await {
            Ok(found) => Ok(Some(found)),
            Err(zookeeper_client::Error::NoNode) => Ok(None),
            Err(e) => Err(self.zk_error("read", path, e)),
        }
    }

    /// Each node's data and stat, in the order of `paths`; `None` where a node does not exist.
    /// The requests are pipelined, so thousands of nodes cost about one round trip, not one each.
    pub async fn data_pipelined(&self, paths: &[String]) -> Result<Vec<Option<(Vec<u8>, Stat)>>> {
        self.each("read", paths, |p| self.client.get_data(p)).await
    }

    /// Each folder's children, in the order of `folders`; `None` where a folder does not exist.
    /// Pipelined like [`Session::data_pipelined`].
    pub async fn children_pipelined(&self, folders: &[String]) -> Result<Vec<Option<Vec<String>>>> {
        self.each("list", folders, |p| self.client.list_children(p))
            .await
    }

    /// Makes `request` for every path at once (up to [`PIPELINE`] in flight), each under the
    /// retry rule. A request is sent when its future is first polled, and the stream polls
    /// every future it starts before awaiting any answer.
    async fn each<'a, T, Fut>(
        &'a self,
        op: &'a str,
        paths: &'a [String],
        request: impl Fn(&'a str) -> Fut,
    ) -> Result<Vec<Option<T>>>
    where
        Fut: Future<Output = ZkResult<T>>,
    {
        let request = &request;
        futures::stream::iter(paths)
            .map(|path| async move {
                match self.retry(|| request(path)).await {
                    Ok(found) => Ok(Some(found)),
                    Err(zookeeper_client::Error::NoNode) => Ok(None),
                    Err(e) => Err(self.zk_error(op, path, e)),
                }
            })
            .buffered(PIPELINE)
            .try_collect()
            .await
    }

    /// Has the server we talk to catch up with the leader before it answers the requests sent
    /// after this one: the servers answer a session's requests in the order they were sent.
    pub async fn sync(&self, path: &str) -> Result<()> {
        self.retry(|| self.client.sync(path))
            .await
            .map_err(|e| self.zk_error("sync", path, e))
    }
}
