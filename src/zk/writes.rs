//! Writes: creates made safe to repeat under the retry rule (see [`super::access`]), the
//! transactions of the recipes, deletes and compare-and-set.

use std::cell::Cell;

use zookeeper_client::{
    Acls, CreateMode, CreateSequence, MultiWriteError, MultiWriteResult, OneshotWatcher, Stat,
};

use super::access::{ZkResult, is_transient};
use super::session::Session;
use crate::error::{Error, Result};

/// What [`Session::create_own`] found.
#[derive(Debug)]
pub enum Created {
    /// Our node: created now, or by an attempt whose reply was lost.
    Ours(Stat),
    /// Another session's node, with its data and stat; `None` if it was gone again by the time
    /// we read it.
    Theirs(Option<(Vec<u8>, Stat)>),
}

/// One persistent node of [`Session::put_all`]: created when `version` is `None`, else
/// replaced if it is still at `version`.
#[derive(Debug, Clone, Copy)]
pub struct Put<'a> {
    pub path: &'a str,
    pub data: &'a [u8],
    pub version: Option<i32>,
}

/// One operation of a transaction ([`Txn`]).
#[derive(Debug, Clone, Copy)]
enum Op<'a> {
    /// Create our ephemeral sequential node `{stem}{seq10}`.
    Create { stem: &'a str, data: &'a [u8] },
    /// Create our ephemeral node at `path` (the lock), unless another session has it.
    CreateOwn { path: &'a str, data: &'a [u8] },
    /// Delete a node of ours.
    Delete(&'a str),
}

/// One transaction (ZooKeeper's `multi`) that several recipes fill, each with its own
/// operations, so that a run holds all of what it takes at once or none of it while each recipe
/// keeps its protocol to itself. Each create returns the [`Slot`] where its node is found in what
/// [`Session::apply`] made. The first operation must be a sequential create (see
/// [`Session::transact`]).
#[derive(Debug, Default)]
pub struct Txn<'a> {
    ops: Vec<Op<'a>>,
    creates: usize,
}

/// Where a create's node is among what a [`Txn`] made.
#[derive(Debug, Clone, Copy)]
pub struct Slot(usize);

/// The nodes a [`Txn`] made.
#[derive(Debug)]
pub struct Made(Vec<String>);

impl<'a> Txn<'a> {
    /// Our ephemeral sequential node `{stem}{seq10}`.
    pub fn create(&mut self, stem: &'a str, data: &'a [u8]) -> Slot {
        self.push(Op::Create { stem, data })
    }

    /// Our ephemeral node at `path`, unless another session has it: then nothing is made.
    pub fn create_own(&mut self, path: &'a str, data: &'a [u8]) -> Slot {
        self.push(Op::CreateOwn { path, data })
    }

    /// A node of ours, deleted.
    pub fn delete(&mut self, path: &'a str) {
        self.ops.push(Op::Delete(path));
    }

    fn push(&mut self, op: Op<'a>) -> Slot {
        self.ops.push(op);
        self.creates += 1;
        Slot(self.creates - 1)
    }
}

impl Made {
    pub fn path(&self, slot: Slot) -> &str {
        &self.0[slot.0]
    }
}

impl Session {
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

    /// Makes `txn`: what [`Session::transact`] does, with the nodes made found by the slots
    /// their creates returned. `None` if the node of a [`Txn::create_own`] exists already.
    pub async fn apply(&self, txn: &Txn<'_>) -> Result<Option<Made>> {
        Ok(self.transact(&txn.ops).await?.map(Made))
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
    async fn transact(&self, ops: &[Op<'_>]) -> Result<Option<Vec<String>>> {
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

    /// Writes every node of `puts` in one transaction, or none: a compare-and-set of several
    /// nodes. `false`: one of them changed since it was read (a node to create exists, a node
    /// to replace is at another version or gone), and the caller reads them again. A write
    /// whose reply was lost is repeated and then finds the nodes changed, by itself: the caller
    /// tells its own data by what it reads. Missing folders are made first.
    pub async fn put_all(&self, puts: &[Put<'_>]) -> Result<bool> {
        let Some(first) = puts.first() else {
            return Ok(true);
        };
        loop {
            let attempt = self
                .retry(|| async {
                    let mut txn = self.client.new_multi_writer();
                    let create = CreateMode::Persistent.with_acls(Acls::new(&self.acls));
                    for put in puts {
                        match put.version {
                            None => txn.add_create(put.path, put.data, &create)?,
                            Some(v) => txn.add_set_data(put.path, put.data, Some(v))?,
                        }
                    }
                    match txn.commit().await {
                        Ok(_) => Ok(Ok(())),
                        Err(MultiWriteError::RequestFailed { source }) => Err(source),
                        Err(MultiWriteError::OperationFailed { index, source }) => {
                            Ok(Err((index, source)))
                        }
                    }
                })
                .await;
            let (index, e) = match attempt {
                Ok(Ok(())) => return Ok(true),
                Ok(Err(failed)) => failed,
                Err(e) => return Err(self.zk_error("write", first.path, e)),
            };
            let put = &puts[index];
            match e {
                zookeeper_client::Error::NoNode if put.version.is_none() => {
                    let parent = &put.path[..put.path.rfind('/').unwrap_or(0)];
                    let folder = CreateMode::Persistent.with_acls(Acls::new(&self.acls));
                    if let Err(e) = self.retry(|| self.client.mkdir(parent, &folder)).await {
                        return Err(self.create_error(parent, e));
                    }
                }
                zookeeper_client::Error::NodeExists
                | zookeeper_client::Error::BadVersion
                | zookeeper_client::Error::NoNode => return Ok(false),
                e => return Err(self.zk_error("write", put.path, e)),
            }
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
}
