//! One pass over everything under the prefix: the locks and the runs waiting in line for them,
//! the queues, the semaphores, the run records and the groups (docs/operators.md:
//! "status").
//!
//! ZooKeeper cannot read many nodes as of one instant, so "consistent" means this: the pass
//! begins with a `sync`, so that the server answering is as up to date as the leader was then;
//! the servers answer a session's requests in order, so every answer is at least as recent as
//! the ones before it; every node is read once, and a node listed but gone by the time it is
//! read is left out, not an error. Each node shown existed, with what is shown, at some moment
//! during the pass.
//!
//! The pass is three waves of pipelined requests (folders, their children, the children's data),
//! so thousands of queue items cost three round trips and the time the servers take to answer,
//! not a round trip each.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use zookeeper_client::Stat;

use crate::ctl::groups::expand_all;
use crate::error::Result;
use crate::prefix_data::PrefixData;
use crate::recipes::holder::Holder;
use crate::recipes::queue::task_of;
use crate::recipes::runs::Record;
use crate::timestamp;
use crate::zk::paths::{LeaseName, sequence_of};
use crate::zk::{Paths, Session};

/// What to show: everything, or one job (`--lock`), or one resource (`--resource`), or both.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub lock: Option<String>,
    pub resource: Option<String>,
}

impl Filter {
    /// No filter: the groups are shown too.
    pub fn everything(&self) -> bool {
        self.lock.is_none() && self.resource.is_none()
    }

    pub(super) fn locks(&self) -> bool {
        self.lock.is_some() || self.resource.is_none()
    }

    pub(super) fn semaphores(&self) -> bool {
        self.resource.is_some() || self.lock.is_none()
    }

    fn resource_ok(&self, resource: &str) -> bool {
        self.resource.as_deref().is_none_or(|r| r == resource)
    }

    fn task_ok(&self, task: Option<&str>) -> bool {
        self.lock.is_none() || self.lock.as_deref() == task
    }

    /// Whether a change to the node at `path` (below the prefix) can change what is shown.
    /// The semaphores' guard mutex comes and goes with every lease taken: never shown.
    pub fn shows(&self, paths: &Paths, path: &str) -> bool {
        let Some(rest) = path.strip_prefix(paths.prefix()) else {
            return false;
        };
        let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
        match parts.as_slice() {
            [] => self.everything(),
            ["locks", rest @ ..] => {
                self.locks()
                    && rest
                        .first()
                        .is_none_or(|n| self.lock.as_deref().is_none_or(|l| l == *n))
            }
            ["queues", rest @ ..] => {
                rest.first().is_none_or(|r| self.resource_ok(r))
                    && rest.get(1).is_none_or(|item| self.task_ok(task_of(item)))
            }
            ["waiters" | "runs", rest @ ..] => {
                self.locks()
                    && rest
                        .first()
                        .is_none_or(|n| self.lock.as_deref().is_none_or(|l| l == *n))
            }
            ["semaphores", _, "lock", ..] => false,
            ["semaphores", rest @ ..] => {
                self.semaphores() && rest.first().is_none_or(|r| self.resource_ok(r))
            }
            _ => false,
        }
    }
}

/// A lock node and who holds it.
#[derive(Debug, Clone)]
pub struct LockNode {
    pub name: String,
    pub holder: Holder,
}

/// The runs waiting in line for a lock (`--wait`), first in line first.
#[derive(Debug, Clone)]
pub struct Line {
    pub lock: String,
    pub waiters: Vec<Waiter>,
}

/// A job's run record.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub name: String,
    pub record: Record,
}

/// A queue item: `{task}-{seq10}`, or `wait-{seq10}` in a lock's line.
#[derive(Debug, Clone)]
pub struct Waiter {
    pub node: String,
    /// `None` for a name of another shape (not switchman's).
    pub task: Option<String>,
    pub seq: Option<i64>,
    /// 1 for the first in line: the place in the whole queue, also when a filter shows only
    /// some of its items.
    pub position: usize,
    pub holder: Holder,
}

/// A resource's queue, oldest first (the order in which they will be served).
#[derive(Debug, Clone)]
pub struct Queue {
    pub resource: String,
    pub waiters: Vec<Waiter>,
}

/// A lease: `{count}_{total}_{seq10}`.
#[derive(Debug, Clone)]
pub struct LeaseNode {
    pub node: String,
    pub count: Option<u64>,
    pub total: Option<u64>,
    pub seq: Option<i64>,
    pub holder: Holder,
}

/// A resource's counting semaphore.
#[derive(Debug, Clone)]
pub struct Semaphore {
    pub resource: String,
    /// The total the leases were taken out of; `None` with no leases (it is in the `--lease`
    /// specs of the runs, not in ZooKeeper).
    pub total: Option<u64>,
    pub used: u64,
    pub leases: Vec<LeaseNode>,
}

/// Everything one pass found.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub prefix: String,
    pub locks: Vec<LockNode>,
    pub lines: Vec<Line>,
    pub queues: Vec<Queue>,
    pub semaphores: Vec<Semaphore>,
    pub runs: Vec<RunRecord>,
    /// Every group, expanded; `None` when a filter leaves them out.
    pub groups: Option<BTreeMap<String, BTreeSet<String>>>,
    /// Things an operator should know that are not errors (prefix data that does not parse,
    /// leases that disagree about a total, a run record that does not parse).
    pub warnings: Vec<String>,
    /// When the pass ended, on this host's clock (ms since the epoch), and how long it took.
    pub read_at: i64,
    pub took: Duration,
}

/// The names in `folder`: all of them, only `only` (read directly, no listing needed), or none.
async fn names(
    session: &Session,
    wanted: bool,
    only: &Option<String>,
    folder: &str,
) -> Result<Vec<String>> {
    match (wanted, only) {
        (false, _) => Ok(Vec::new()),
        (true, Some(name)) => Ok(vec![name.clone()]),
        (true, None) => {
            let mut names = session.children(folder).await?;
            names.sort();
            Ok(names)
        }
    }
}

/// Reads what `filter` asks for under the prefix, in one pass (see the module's comment).
pub async fn read(session: &Session, paths: &Paths, filter: &Filter) -> Result<Snapshot> {
    let began = Instant::now();
    let prefix = paths.prefix();
    let (locks, queues, semaphores) = (paths.locks(), paths.queues(), paths.semaphores());
    let (waiters, runs) = (paths.waiters(), paths.runs());
    // Wave 1: the prefix data and the five folders. `join!` polls its futures in order, so
    // the sync goes out first and everything after it is answered after it.
    let (synced, data, lock_names, queue_names, semaphore_names, line_names, run_names) = futures::join!(
        session.sync(prefix),
        async {
            match filter.everything() {
                true => session.data(prefix).await.map(Some),
                false => Ok(None),
            }
        },
        names(session, filter.locks(), &filter.lock, &locks),
        names(session, true, &filter.resource, &queues),
        names(session, filter.semaphores(), &filter.resource, &semaphores),
        names(session, filter.locks(), &filter.lock, &waiters),
        names(session, filter.locks(), &filter.lock, &runs),
    );
    synced?;
    let (data, lock_names, queue_names, semaphore_names) =
        (data?, lock_names?, queue_names?, semaphore_names?);
    let (line_names, run_names) = (line_names?, run_names?);

    // Wave 2: the lock nodes' and run records' data, and the lines', queues' and semaphores'
    // children.
    let lock_paths: Vec<String> = lock_names.iter().map(|n| paths.lock(n)).collect();
    let run_paths: Vec<String> = run_names.iter().map(|n| paths.run_record(n)).collect();
    let line_folders: Vec<String> = line_names.iter().map(|n| paths.lock_line(n)).collect();
    let queue_folders: Vec<String> = queue_names.iter().map(|r| paths.queue(r)).collect();
    let lease_folders: Vec<String> = semaphore_names
        .iter()
        .map(|r| paths.semaphore_leases(r))
        .collect();
    let (lock_nodes, run_nodes, in_line, items, leases) = futures::join!(
        session.data_pipelined(&lock_paths),
        session.data_pipelined(&run_paths),
        session.children_pipelined(&line_folders),
        session.children_pipelined(&queue_folders),
        session.children_pipelined(&lease_folders),
    );
    let (lock_nodes, run_nodes, in_line) = (lock_nodes?, run_nodes?, in_line?);
    let (items, leases) = (items?, leases?);

    // A queue that vanished, or one asked for by --resource that does not exist, is left out;
    // a semaphore whose leases folder is not made yet has no leases.
    let mut positions = Vec::new();
    let queues: Vec<(String, String, Vec<String>)> = queue_names
        .into_iter()
        .zip(queue_folders)
        .zip(items)
        .filter_map(|((resource, folder), items)| {
            let mut items = items?;
            items.sort_by_key(|i| (sequence_of(i).unwrap_or(i64::MAX), i.clone()));
            let (places, items): (Vec<usize>, Vec<String>) = (1..)
                .zip(items)
                .filter(|(_, i)| filter.task_ok(task_of(i)))
                .unzip();
            positions.extend(places);
            Some((resource, folder, items))
        })
        .collect();
    let semaphores: Vec<(String, String, Vec<String>)> = semaphore_names
        .into_iter()
        .zip(lease_folders)
        .zip(leases)
        .filter_map(|((resource, folder), leases)| {
            let leases = match leases {
                None if filter.resource.is_some() => return None,
                leases => leases.unwrap_or_default(),
            };
            Some((resource, folder, leases))
        })
        .collect();

    // A line that vanished is left out; its items are in the order they will be served.
    let lines: Vec<(String, String, Vec<String>)> = line_names
        .into_iter()
        .zip(line_folders)
        .zip(in_line)
        .filter_map(|((lock, folder), items)| {
            let mut items = items?;
            items.sort_by_key(|i| (sequence_of(i).unwrap_or(i64::MAX), i.clone()));
            Some((lock, folder, items))
        })
        .collect();

    // Wave 3: every item's (in lines and queues) and every lease's data.
    let line_paths = children_paths(&lines);
    let item_paths = children_paths(&queues);
    let lease_paths = children_paths(&semaphores);
    let (line_data, item_data, lease_data) = futures::join!(
        session.data_pipelined(&line_paths),
        session.data_pipelined(&item_paths),
        session.data_pipelined(&lease_paths),
    );
    let mut line_data = line_data?.into_iter();
    let (item_data, mut lease_data) = (item_data?.into_iter(), lease_data?.into_iter());
    let mut item_data = item_data
        .zip(positions)
        .map(|(read, position)| read.map(|(data, stat)| (data, stat, position)));

    let mut warnings = Vec::new();
    let locks = lock_names
        .into_iter()
        .zip(lock_nodes)
        .filter_map(|(name, node)| {
            let (data, stat) = node?;
            Some(LockNode {
                name,
                holder: Holder::new(&data, &stat),
            })
        })
        .collect();
    let lines = lines
        .into_iter()
        .map(|(lock, _, names)| Line {
            waiters: found(names, &mut line_data)
                .enumerate()
                .map(|(i, (node, (data, stat)))| Waiter {
                    task: Some(lock.clone()),
                    seq: sequence_of(&node),
                    position: i + 1,
                    holder: Holder::new(&data, &stat),
                    node,
                })
                .collect(),
            lock,
        })
        .filter(|line| !line.waiters.is_empty())
        .collect();
    let runs = run_names
        .into_iter()
        .zip(run_paths)
        .zip(run_nodes)
        .filter_map(|((name, path), node)| {
            let (data, stat) = node?;
            match Record::parse(&data, &stat) {
                Ok(record) => Some(RunRecord { name, record }),
                Err(why) => {
                    warnings.push(format!("run record {path} is left out: {why}"));
                    None
                }
            }
        })
        .collect();
    let queues = queues
        .into_iter()
        .map(|(resource, _, names)| Queue {
            waiters: found(names, &mut item_data)
                .map(|(node, (data, stat, position))| Waiter {
                    task: task_of(&node).map(str::to_string),
                    seq: sequence_of(&node),
                    position,
                    holder: Holder::new(&data, &stat),
                    node,
                })
                .collect(),
            resource,
        })
        .collect();
    let semaphores = semaphores
        .into_iter()
        .map(|(resource, folder, names)| {
            let leases = found(names, &mut lease_data)
                .map(|(node, (data, stat))| lease((node, data, stat)))
                .collect();
            semaphore(resource, &folder, leases, &mut warnings)
        })
        .collect();
    let groups = data.map(|data| groups(prefix, data, &mut warnings));
    Ok(Snapshot {
        prefix: prefix.to_string(),
        locks,
        lines,
        queues,
        semaphores,
        runs,
        groups,
        warnings,
        read_at: timestamp::now_ms(),
        took: began.elapsed(),
    })
}

/// The full paths of the children in `folders`, in order.
fn children_paths(folders: &[(String, String, Vec<String>)]) -> Vec<String> {
    folders
        .iter()
        .flat_map(|(_, folder, names)| names.iter().map(move |n| format!("{folder}/{n}")))
        .collect()
}

/// The nodes of `names` that still existed when read, with what was read, taking their reads
/// from `reads` (which holds one read per name, in order).
fn found<T>(
    names: Vec<String>,
    reads: &mut impl Iterator<Item = Option<T>>,
) -> impl Iterator<Item = (String, T)> {
    let read: Vec<_> = names
        .into_iter()
        .zip(reads.by_ref())
        .filter_map(|(name, read)| read.map(|r| (name, r)))
        .collect();
    read.into_iter()
}

fn lease((node, data, stat): (String, Vec<u8>, Stat)) -> LeaseNode {
    let name = LeaseName::parse(&node);
    LeaseNode {
        seq: sequence_of(&node),
        count: name.map(|n| n.count),
        total: name.map(|n| n.total),
        holder: Holder::new(&data, &stat),
        node,
    }
}

fn semaphore(
    resource: String,
    folder: &str,
    leases: Vec<LeaseNode>,
    warnings: &mut Vec<String>,
) -> Semaphore {
    let mut leases = leases;
    leases.sort_by_key(|l| (l.seq.unwrap_or(i64::MAX), l.node.clone()));
    let totals: BTreeSet<u64> = leases.iter().filter_map(|l| l.total).collect();
    if totals.len() > 1 {
        warnings.push(format!(
            "the leases in {folder} disagree about the total ({totals:?}): runs of resource \
             {resource:?} fail until every --lease of it gives the same TOTAL"
        ));
    }
    Semaphore {
        // The oldest lease's total: the one a newcomer with another total is refused against.
        total: leases.iter().find_map(|l| l.total),
        used: leases.iter().filter_map(|l| l.count).sum(),
        leases,
        resource,
    }
}

/// The groups, expanded, from the prefix data; none (and a warning) if it does not parse, as
/// when the Perl original created the prefix and wrote `"{fqdn} {pid}"` into it.
fn groups(
    prefix: &str,
    data: Option<(Vec<u8>, Stat)>,
    warnings: &mut Vec<String>,
) -> BTreeMap<String, BTreeSet<String>> {
    let Some((bytes, _)) = data else {
        warnings.push(format!(
            "{prefix} does not exist: nothing has run on this prefix yet, or the config names \
             another"
        ));
        return BTreeMap::new();
    };
    let expanded = PrefixData::parse(prefix, &bytes)
        .map_err(|e| e.to_string())
        .and_then(|data| expand_all(&data).map_err(|f| f.message));
    expanded.unwrap_or_else(|e| {
        let mut raw = String::from_utf8_lossy(&bytes).into_owned();
        if raw.len() > 200 {
            raw = format!("{}...", raw.chars().take(200).collect::<String>());
        }
        warnings.push(format!("{e}; it holds {raw:?}"));
        BTreeMap::new()
    })
}

#[cfg(test)]
mod tests;
