//! The requests the recipes (lock, queue, semaphore, groups) and `switchmanctl` make, and the
//! one rule by which each is retried.
//!
//! **The retry rule.** A request that fails with its connection (lost, reset, or no reply in
//! time) is not a failure of the run: the client library reconnects with the same session, and
//! the session, with every node of ours, lives on until the servers have not heard from us for
//! the session timeout. So such a request is made again, after a short pause, until
//! [`Liveness::expires_at`](super::liveness::Liveness::expires_at); only then does the run give
//! up, as "ZooKeeper unavailable" (exit 69; once CMD runs, the supervisor stops it first, exit
//! 79). A request that cannot simply be repeated is made safe to repeat: a create whose reply
//! was lost may have happened, so we look for the node our session owns before creating again.
//!
//! Everything else the servers say (no node, node exists, bad version) is an answer, returned
//! to the caller as a value; only errors nobody planned for become exit 70.

use std::cell::Cell;
use std::future::Future;

use futures::{StreamExt, TryStreamExt};
use zookeeper_client::{
    Acls, AddWatchMode, CreateMode, CreateSequence, EventType, MultiReadResult, MultiWriteError,
    MultiWriteResult, OneshotWatcher, PersistentWatcher, Stat,
};

use super::liveness::now;
use super::session::Session;
use crate::error::{Error, Result};

type ZkResult<T> = std::result::Result<T, zookeeper_client::Error>;

/// Requests a pipelined read keeps in flight: enough to hide the round trip, and no more than a
/// server queues for all its clients before it stops reading from them (`globalOutstandingLimit`).
const PIPELINE: usize = 1000;

/// What [`Session::create_own`] found.
#[derive(Debug)]
pub enum Created {
    /// Our node: created now, or by an attempt whose reply was lost.
    Ours(Stat),
    /// Another session's node, with its data and stat; `None` if it was gone again by the time
    /// we read it.
    Theirs(Option<(Vec<u8>, Stat)>),
}

/// One operation of a transaction ([`Session::transact`]).
#[derive(Debug, Clone, Copy)]
pub enum Op<'a> {
    /// Create our ephemeral sequential node `{stem}{seq10}`.
    Create { stem: &'a str, data: &'a [u8] },
    /// Create our ephemeral node at `path` (the lock), unless another session has it.
    CreateOwn { path: &'a str, data: &'a [u8] },
    /// Delete a node of ours.
    Delete(&'a str),
}

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

/// Whether `e` is about the connection rather than the request: the library fails requests in
/// flight with `ConnectionLoss`, `Timeout`, or a message of its own ("no response from
/// connection in 800ms", an I/O error) when it drops a connection to reconnect.
fn is_transient(e: &zookeeper_client::Error) -> bool {
    matches!(
        e,
        zookeeper_client::Error::ConnectionLoss
            | zookeeper_client::Error::Timeout
            | zookeeper_client::Error::Custom(_)
    )
}

/// Maps a ZooKeeper error met while reading or writing `path` to our exit codes.
pub fn zk_error(op: &str, path: &str, err: zookeeper_client::Error) -> Error {
    match err {
        e if is_transient(&e) => Error::Unavailable(format!(
            "{op} {path}: {e}; no answer from ZooKeeper within the session timeout"
        )),
        zookeeper_client::Error::SessionExpired | zookeeper_client::Error::ClientClosed => {
            Error::Unavailable(format!(
                "{op} {path}: {err}; ZooKeeper went away during the run"
            ))
        }
        zookeeper_client::Error::NoAuth => {
            Error::NoPerm(format!("{op} {path}: the znode's ACL does not allow it"))
        }
        zookeeper_client::Error::AuthFailed => {
            Error::NoPerm(format!("{op} {path}: ZooKeeper refused our authentication"))
        }
        // Anything else we did not plan for is internal (70), with the operation and znode.
        other => Error::Internal(format!("{op} {path}: {other}")),
    }
}

impl Session {
    /// [`zk_error`], with who we are for a refusal, and the config for an ACL the servers
    /// refuse to set.
    fn zk_error(&self, op: &str, path: &str, err: zookeeper_client::Error) -> Error {
        match err {
            // The session's authentication, not the node's ACL: a session without credentials
            // learns only here that the ensemble enforces authentication.
            zookeeper_client::Error::AuthFailed => {
                Error::NoPerm(format!("{op} {path}: {}", self.refused))
            }
            zookeeper_client::Error::NoAuth => Error::NoPerm(format!(
                "{op} {path}: denied to {} by the ACL of the znode (or, to create or \
                     delete, of its parent); check the user and password, or give that identity \
                     access (docs/security.md)",
                self.identity
            )),
            zookeeper_client::Error::InvalidAcl => Error::Config(format!(
                "{op} {path}: ZooKeeper refuses the ACL made from \"acl\" and \"acl_extra\" in {}",
                self.config_path.display()
            )),
            e => zk_error(op, path, e),
        }
    }

    /// The retry rule: `attempt` again while it fails with its connection and the session may
    /// still be alive. Its last error is returned as is (the caller maps it with [`zk_error`]).
    async fn retry<T, Fut>(&self, mut attempt: impl FnMut() -> Fut) -> ZkResult<T>
    where
        Fut: Future<Output = ZkResult<T>>,
    {
        loop {
            match attempt().await {
                Err(e) if is_transient(&e) && now() < self.liveness().expires_at() => {
                    tracing::debug!("{e}; trying again on the same session");
                    tokio::time::sleep(self.liveness().retry_pause()).await;
                }
                other => return other,
            }
        }
    }

    /// Creates `path` once, making the folders above it (persistent, empty) when its parent is
    /// missing. Folders are made only on demand because they almost always exist, and checking
    /// first would cost a request on every run. Concurrent runs may create the same folder at
    /// once; "node exists" for a folder is success.
    async fn create_once(
        &self,
        path: &str,
        data: &[u8],
        mode: CreateMode,
    ) -> ZkResult<(Stat, CreateSequence)> {
        let options = mode.with_acls(Acls::new(&self.acls));
        match self.client.create(path, data, &options).await {
            Err(zookeeper_client::Error::NoNode) => {
                let parent = &path[..path.rfind('/').unwrap_or(0)];
                if !parent.is_empty() {
                    let folder = CreateMode::Persistent.with_acls(Acls::new(&self.acls));
                    self.client.mkdir(parent, &folder).await?;
                }
                self.client.create(path, data, &options).await
            }
            other => other,
        }
    }

    /// Creates our ephemeral node at `path`. A create whose reply was lost is repeated; "node
    /// exists" then may mean it was ours all along, which its ephemeral owner tells. Reading the
    /// existing node's data rather than only its stat costs the same one request, and names
    /// the holder of a lock we could not take.
    pub async fn create_own(&self, path: &str, data: &[u8]) -> Result<Created> {
        match self
            .retry(|| self.create_once(path, data, CreateMode::Ephemeral))
            .await
        {
            Ok((stat, _)) => Ok(Created::Ours(stat)),
            Err(zookeeper_client::Error::NodeExists) => Ok(match self.data(path).await? {
                Some((_, stat)) if stat.ephemeral_owner == self.id() => Created::Ours(stat),
                found => Created::Theirs(found),
            }),
            Err(e) => Err(self.create_error(path, e)),
        }
    }

    /// [`Session::create_own`], with the node's data read and watched in the same write: the
    /// servers answer a session's requests in order, so the read sees what the create left.
    /// So one round trip both takes the node and sets the watch that tells when it is gone
    /// (ours) or names who has it (theirs), where one after the other would cost two. The
    /// watch comes back with the stat it was set on, on their node too (for the caller to
    /// keep or drop); `None` when nothing was watched (the node gone again by the read, or the
    /// folders made first). Either failing with its connection
    /// repeats both, and a create whose reply was lost is found ours by its ephemeral owner.
    pub async fn create_own_watched(
        &self,
        path: &str,
        data: &[u8],
    ) -> Result<(Created, Option<(Stat, OneshotWatcher)>)> {
        let options = CreateMode::Ephemeral.with_acls(Acls::new(&self.acls));
        let answers = self
            .retry(|| async {
                // Each request is sent when it is made, not when awaited.
                let create = self.client.create(path, data, &options);
                let read = self.client.get_and_watch_data(path);
                let (created, read) = futures::join!(create, read);
                match (&created, &read) {
                    (Err(e), _) | (_, Err(e)) if is_transient(e) => Err(e.clone()),
                    _ => Ok((created, read)),
                }
            })
            .await;
        let (created, read) = answers.map_err(|e| self.create_error(path, e))?;
        let read = match read {
            Ok((found, stat, watcher)) => Some((found, stat, watcher)),
            Err(zookeeper_client::Error::NoNode) => None,
            Err(e) => return Err(self.zk_error("read", path, e)),
        };
        match (created, read) {
            (Ok((stat, _)), read) => Ok((
                Created::Ours(stat),
                read.map(|(_, stat, watcher)| (stat, watcher)),
            )),
            (Err(zookeeper_client::Error::NodeExists), Some((found, stat, watcher))) => {
                if stat.ephemeral_owner == self.id() {
                    Ok((Created::Ours(stat), Some((stat, watcher))))
                } else {
                    Ok((Created::Theirs(Some((found, stat))), Some((stat, watcher))))
                }
            }
            (Err(zookeeper_client::Error::NodeExists), None) => Ok((Created::Theirs(None), None)),
            // The folders are missing (a first run on this prefix): made the usual way.
            (Err(zookeeper_client::Error::NoNode), _) => {
                Ok((self.create_own(path, data).await?, None))
            }
            (Err(e), _) => Err(self.create_error(path, e)),
        }
    }

    /// Creates a persistent node (data written by `switchmanctl`). `None`: it already exists
    /// (someone else created it first). When a first attempt's reply was lost, a node holding
    /// our data at version 0 counts as ours.
    pub async fn create_persistent(&self, path: &str, data: &[u8]) -> Result<Option<Stat>> {
        let attempts = Cell::new(0);
        match self
            .retry(|| {
                attempts.set(attempts.get() + 1);
                self.create_once(path, data, CreateMode::Persistent)
            })
            .await
        {
            Ok((stat, _)) => Ok(Some(stat)),
            Err(zookeeper_client::Error::NodeExists) if attempts.get() == 1 => Ok(None),
            Err(zookeeper_client::Error::NodeExists) => Ok(self
                .data(path)
                .await?
                .filter(|(d, s)| d == data && s.version == 0)
                .map(|(_, s)| s)),
            Err(e) => Err(self.create_error(path, e)),
        }
    }

    /// Creates an ephemeral sequential node `{stem}{seq10}` and returns its full path. If the
    /// reply is lost, the create may or may not have happened; rather than leave an orphan (or
    /// create twice), we look for a node under the stem that our session owns.
    pub async fn create_sequential(&self, stem: &str, data: &[u8]) -> Result<String> {
        let (folder, base) = stem.rsplit_once('/').expect("a stem is an absolute path");
        // Once a create has failed with its connection, it may have happened: every attempt
        // after that looks first, however many times the looking itself is cut short.
        let maybe_created = Cell::new(false);
        let created = self
            .retry(|| async {
                if maybe_created.get()
                    && let Some(path) = self.find_own_child(folder, base).await?
                {
                    return Ok(path);
                }
                match self
                    .create_once(stem, data, CreateMode::EphemeralSequential)
                    .await
                {
                    Ok((_, seq)) => Ok(format!("{stem}{seq}")),
                    Err(e) => {
                        maybe_created.set(maybe_created.get() || is_transient(&e));
                        Err(e)
                    }
                }
            })
            .await;
        created.map_err(|e| self.create_error(stem, e))
    }

    /// Makes `ops` as one transaction (ZooKeeper's `multi`): all of them at once, or none; one
    /// request where each would cost one. Returns the path of each node created, in the order
    /// of `ops`; `None` if the node of a [`Op::CreateOwn`] exists already (another session's),
    /// and then nothing was made. The first op must be a sequential create.
    ///
    /// Made safe to repeat like a single create: once an attempt has failed with its
    /// connection, the next first looks for the node the first create would have made, and our
    /// session owning one means the whole transaction happened. A delete of a node that is
    /// already gone is left out and the rest made again, as [`Session::delete_own`] would find
    /// it gone; a create whose folder is missing makes the folders first.
    pub async fn transact(&self, ops: &[Op<'_>]) -> Result<Option<Vec<String>>> {
        let mut ops = ops.to_vec();
        let Some(&Op::Create { stem: first, .. }) = ops.first() else {
            panic!("a transaction of ours begins with a create");
        };
        let maybe_done = Cell::new(false);
        loop {
            let attempt = self
                .retry(|| async {
                    if maybe_done.get()
                        && let Some(paths) = self.find_own_creates(&ops).await?
                    {
                        return Ok(Ok(paths));
                    }
                    match self.commit(&ops).await {
                        Err(MultiWriteError::RequestFailed { source }) => {
                            maybe_done.set(maybe_done.get() || is_transient(&source));
                            Err(source)
                        }
                        Err(MultiWriteError::OperationFailed { index, source }) => {
                            Ok(Err((index, source)))
                        }
                        Ok(paths) => Ok(Ok(paths)),
                    }
                })
                .await;
            match attempt {
                Ok(Ok(paths)) => return Ok(Some(paths)),
                Ok(Err((index, zookeeper_client::Error::NodeExists)))
                    if matches!(ops[index], Op::CreateOwn { .. }) =>
                {
                    return Ok(None);
                }
                Ok(Err((index, zookeeper_client::Error::NoNode))) => match ops[index] {
                    Op::Delete(_) => {
                        ops.remove(index);
                    }
                    Op::Create { stem, .. } | Op::CreateOwn { path: stem, .. } => {
                        let parent = &stem[..stem.rfind('/').unwrap_or(0)];
                        let folder = CreateMode::Persistent.with_acls(Acls::new(&self.acls));
                        match self.retry(|| self.client.mkdir(parent, &folder)).await {
                            Ok(()) => {}
                            Err(e) => return Err(self.create_error(parent, e)),
                        }
                    }
                },
                Ok(Err((index, e))) => {
                    return Err(match ops[index] {
                        Op::Create { stem, .. } => self.create_error(stem, e),
                        Op::CreateOwn { path, .. } => self.create_error(path, e),
                        Op::Delete(path) => self.zk_error("delete", path, e),
                    });
                }
                Err(e) => return Err(self.create_error(first, e)),
            }
        }
    }

    /// One attempt of [`Session::transact`].
    async fn commit(&self, ops: &[Op<'_>]) -> std::result::Result<Vec<String>, MultiWriteError> {
        let mut txn = self.client.new_multi_writer();
        let sequential = CreateMode::EphemeralSequential.with_acls(Acls::new(&self.acls));
        let own = CreateMode::Ephemeral.with_acls(Acls::new(&self.acls));
        for op in ops {
            match *op {
                Op::Create { stem, data } => txn.add_create(stem, data, &sequential)?,
                Op::CreateOwn { path, data } => txn.add_create(path, data, &own)?,
                Op::Delete(path) => txn.add_delete(path, None)?,
            }
        }
        Ok(txn
            .commit()
            .await?
            .into_iter()
            .filter_map(|result| match result {
                MultiWriteResult::Create { path, .. } => Some(path),
                _ => None,
            })
            .collect())
    }

    /// The nodes the creates of `ops` made, if the transaction happened: found by their stem
    /// and our session owning them.
    async fn find_own_creates(&self, ops: &[Op<'_>]) -> ZkResult<Option<Vec<String>>> {
        let mut found = Vec::new();
        for op in ops {
            match *op {
                Op::Create { stem, .. } => {
                    let (folder, base) = stem.rsplit_once('/').expect("a stem is an absolute path");
                    match self.find_own_child(folder, base).await? {
                        Some(path) => found.push(path),
                        // The first create is not there: the transaction did not happen.
                        None if found.is_empty() => return Ok(None),
                        // Made with the first, and deleted since by someone else.
                        None => return Err(zookeeper_client::Error::RuntimeInconsistent),
                    }
                }
                // Made with the first; whoever holds it now is for its reader to see.
                Op::CreateOwn { path, .. } => found.push(path.to_string()),
                Op::Delete(_) => {}
            }
        }
        Ok(Some(found))
    }

    /// A create's errors: a missing parent after the folders were made means the chroot is
    /// missing.
    fn create_error(&self, path: &str, e: zookeeper_client::Error) -> Error {
        match e {
            zookeeper_client::Error::NoNode => Error::Config(format!(
                "cannot create {path}: the chroot in zkhosts does not exist in ZooKeeper"
            )),
            e => self.zk_error("create", path, e),
        }
    }

    /// The child of `folder` named `{base}...` whose ephemeral owner is our session, if any.
    async fn find_own_child(&self, folder: &str, base: &str) -> ZkResult<Option<String>> {
        let children = match self.client.list_children(folder).await {
            Err(zookeeper_client::Error::NoNode) => return Ok(None),
            other => other?,
        };
        for child in children.iter().filter(|c| c.starts_with(base)) {
            let path = format!("{folder}/{child}");
            if let Some(stat) = self.client.check_stat(&path).await?
                && stat.ephemeral_owner == self.id()
            {
                return Ok(Some(path));
            }
        }
        Ok(None)
    }

    /// Deletes a node of ours; one that is already gone is fine (a delete whose reply was lost
    /// is repeated, and finds it gone).
    pub async fn delete_own(&self, path: &str) -> Result<()> {
        match self.retry(|| self.client.delete(path, None)).await {
            Ok(()) | Err(zookeeper_client::Error::NoNode) => Ok(()),
            Err(e) => Err(self.zk_error("delete", path, e)),
        }
    }

    /// Deletes `path` if it is still at `version`. `false`: it is not, or it is gone. When a
    /// first attempt's reply was lost, finding the node gone on the next counts as deleted.
    pub async fn delete_at_version(&self, path: &str, version: i32) -> Result<bool> {
        let attempts = Cell::new(0);
        match self
            .retry(|| {
                attempts.set(attempts.get() + 1);
                self.client.delete(path, Some(version))
            })
            .await
        {
            Ok(()) => Ok(true),
            Err(zookeeper_client::Error::NoNode) => Ok(attempts.get() > 1),
            Err(zookeeper_client::Error::BadVersion) => Ok(false),
            Err(e) => Err(self.zk_error("delete", path, e)),
        }
    }

    /// Replaces the data of `path` if it is at `version`. `None`: it is not (or is gone). When a
    /// first attempt's reply was lost, our data at the next version counts as ours.
    pub async fn set_data(&self, path: &str, data: &[u8], version: i32) -> Result<Option<Stat>> {
        let attempts = Cell::new(0);
        match self
            .retry(|| {
                attempts.set(attempts.get() + 1);
                self.client.set_data(path, data, Some(version))
            })
            .await
        {
            Ok(stat) => Ok(Some(stat)),
            Err(zookeeper_client::Error::BadVersion) if attempts.get() == 1 => Ok(None),
            Err(zookeeper_client::Error::BadVersion) => Ok(self
                .data(path)
                .await?
                .filter(|(d, s)| d == data && s.version == version + 1)
                .map(|(_, s)| s)),
            Err(zookeeper_client::Error::NoNode) => Ok(None),
            Err(e) => Err(self.zk_error("write", path, e)),
        }
    }

    /// The children of `folder`; none if it does not exist.
    pub async fn children(&self, folder: &str) -> Result<Vec<String>> {
        let children = self.retry(|| self.client.list_children(folder)).await;
        empty_if_absent(children).map_err(|e| self.zk_error("list", folder, e))
    }

    /// The children of each of `folders`, read in one request (ZooKeeper's `multiRead`, 3.6
    /// or later), one after the other in their order, after every request sent before it.
    /// A folder that does not exist has none.
    pub async fn children_of_all(&self, folders: &[&str]) -> Result<Vec<Vec<String>>> {
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
    pub async fn data_of_each(&self, paths: &[String]) -> Result<Vec<Option<(Vec<u8>, Stat)>>> {
        self.each("read", paths, |p| self.client.get_data(p)).await
    }

    /// Each folder's children, in the order of `folders`; `None` where a folder does not exist.
    /// Pipelined like [`Session::data_of_each`].
    pub async fn children_of_each(&self, folders: &[String]) -> Result<Vec<Option<Vec<String>>>> {
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
    pub async fn data_and_watch(&self, path: &str) -> Result<(Vec<u8>, OneshotWatcher)> {
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
    pub async fn node_gone(&self, what: &str, path: &str, czxid: Option<i64>) -> String {
        self.node_gone_watched(what, path, czxid, None).await
    }

    /// [`Session::node_gone`], starting from a watch already set on `path` (with the stat it
    /// was set on), as [`Session::create_own_watched`] gives one.
    pub async fn node_gone_watched(
        &self,
        what: &str,
        path: &str,
        czxid: Option<i64>,
        mut watched: Option<(Stat, OneshotWatcher)>,
    ) -> String {
        loop {
            let found = match watched.take() {
                Some((stat, watcher)) => Ok((Some(stat), watcher)),
                None => self.stat_and_watch(path).await,
            };
            match found {
                Ok((Some(stat), _)) if czxid.is_some_and(|c| c != stat.czxid) => {
                    return format!("{what} {path} now belongs to another holder");
                }
                Ok((Some(_), watcher)) => {
                    let event = watcher.changed().await;
                    match event.event_type {
                        EventType::NodeDeleted => return format!("{what} {path} was deleted"),
                        EventType::Session if event.session_state.is_terminated() => {
                            return format!(
                                "the ZooKeeper session ended ({})",
                                event.session_state
                            );
                        }
                        // A data change, or a reconnect: look again.
                        _ => continue,
                    }
                }
                Ok((None, _)) => return format!("{what} {path} was deleted"),
                Err(e) => return format!("cannot watch {what} {path}: {e}"),
            }
        }
    }
}

/// A folder that does not exist has no children.
fn empty_if_absent(listed: ZkResult<Vec<String>>) -> ZkResult<Vec<String>> {
    match listed {
        Err(zookeeper_client::Error::NoNode) => Ok(Vec::new()),
        other => other,
    }
}

/// Whether a watch event says the session is over (the node's fate no longer matters).
pub fn session_ended(event: &zookeeper_client::WatchedEvent) -> bool {
    event.event_type == EventType::Session && event.session_state.is_terminated()
}
