//! Counting semaphores: `{prefix}/semaphores/{res}/leases/{count}_{total}_{seq10}`, guarded by
//! the mutex `{prefix}/semaphores/{res}/lock/acquire-{seq10}` (the original's layout, so old and
//! new copies share one budget).
//!
//! Under the guard, the counts of the existing leases are summed; if ours fits in the total we
//! add our lease. If not, we let go of the guard and wait for the leases folder to change. The
//! original polls once a second here; a watch wakes us as soon as a lease goes.

use super::queue::{self, Item};
use crate::error::{Error, Result};
use crate::lease_spec::LeaseSpec;
use crate::zk::paths::LeaseName;
use crate::zk::{Lost, Made, Slot, Txn, session_ended};
use crate::zk::{Paths, Session};

/// A lease we hold.
#[derive(Debug, Clone)]
pub struct Lease {
    pub path: String,
    pub resource: String,
}

/// A guard node of ours, with the guard's queue and the leases as listed after it was made, in
/// that order: the servers answer in order, so if the guard's queue shows our node first,
/// every earlier holder had let go (after making its lease) before the leases were read.
struct Guarded {
    guard: Item,
    waiting: Vec<String>,
    held: Vec<String>,
}

/// Room for our lease, under the guard: the guard node is ours and first, and our count fits
/// beside the leases. [`Room::take`] makes the lease.
pub struct Room {
    guard: Item,
    stem: String,
    resource: String,
}

/// Waits, as long as it takes, until there is room for `spec.count` units of `spec.resource`
/// under the semaphore's guard. Only the first in the resource's queue may call this: the guard
/// node is made only then, and held until the lease is made or the run gives up, as the
/// original does. The original's guard mutex watches the guard node ahead of its own without
/// listing again, and loops for ever if that node goes in between; a guard node made by anyone
/// not first in line, and deleted a moment later, is what would send it there.
///
/// `before_waiting` is called each time before the run waits (for an earlier guard node to go,
/// or for a lease to go); a run that gets its room at once never calls it.
pub async fn room(
    session: &Session,
    paths: &Paths,
    spec: &LeaseSpec,
    data: &[u8],
    before_waiting: &dyn Fn(),
) -> Result<Room> {
    let leases = paths.semaphore_leases(&spec.resource);
    // First in line: CMD may start as soon as there is room.
    session.warm_up();
    loop {
        let Guarded {
            guard,
            waiting,
            held,
        } = enter(session, paths, spec, data).await?;
        // Usually nobody else is at the guard (a resource's queue lets one run at a time
        // through), so the listings made with it are enough.
        let fits = if guard.is_oldest(&waiting) {
            fits(&leases, &held, spec)
        } else {
            before_waiting();
            match guard.wait_turn(session).await {
                Ok(()) => fits_now(session, &leases, spec).await,
                Err(e) => Err(e),
            }
        };
        match fits {
            Ok(true) => {
                return Ok(Room {
                    guard,
                    stem: paths.semaphore_lease_stem(&spec.resource, spec.count, spec.total),
                    resource: spec.resource.clone(),
                });
            }
            Ok(false) => guard.leave(session).await?,
            Err(e) => {
                guard.leave(session).await?;
                return Err(e);
            }
        }

        // No room: wait for a lease to go, then try again under the guard. The watch is set
        // with the listing, so a departure between the two cannot be missed.
        before_waiting();
        let Some((children, watcher)) = session.children_and_watch(&leases).await? else {
            continue;
        };
        let leased = sum(&leases, &children, spec)?;
        if leased + spec.count <= spec.total {
            continue;
        }
        tracing::debug!(
            "{leases}: {leased} of {} leased, no room for {}; waiting for a lease to go",
            spec.total,
            spec.count
        );
        if session_ended(&watcher.changed().await) {
            return Err(Error::Unavailable(format!(
                "the ZooKeeper session ended while waiting for {leases}"
            )));
        }
    }
}

impl Room {
    /// Makes the lease and lets go of the guard, in a transaction of their own.
    pub async fn take(self, session: &Session, data: &[u8]) -> Result<Lease> {
        let mut txn = Txn::default();
        let slot = self.take_in(&mut txn, data);
        let made = session.apply(&txn).await?;
        Ok(self
            .taken(session, made.as_ref(), slot)
            .await?
            .expect("a lease alone is always made"))
    }

    /// Adds the lease's making and the guard's letting go to `txn`, which must begin with them
    /// (the run's last lease leaves its queues and creates the lock in the same transaction).
    /// [`Room::taken`] reads back the lease from what `txn` made.
    pub fn take_in<'a>(&'a self, txn: &mut Txn<'a>, data: &'a [u8]) -> Slot {
        let slot = txn.create(&self.stem, data);
        txn.delete(&self.guard.path);
        slot
    }

    /// The lease that [`Room::take_in`]'s `txn` made; `None` if it made nothing (the lock was
    /// taken by then), and then the guard is given back.
    pub async fn taken(
        self,
        session: &Session,
        made: Option<&Made>,
        slot: Slot,
    ) -> Result<Option<Lease>> {
        let Some(made) = made else {
            self.guard.leave(session).await?;
            return Ok(None);
        };
        Ok(Some(Lease {
            path: made.path(slot).to_string(),
            resource: self.resource,
        }))
    }
}

/// Makes a guard node, then lists the guard's queue and the leases in one read.
async fn enter(session: &Session, paths: &Paths, spec: &LeaseSpec, data: &[u8]) -> Result<Guarded> {
    let stem = paths.semaphore_guard_stem(&spec.resource);
    let leases = paths.semaphore_leases(&spec.resource);
    let (mut items, mut listed) = queue::join_all(session, &[stem], data, &[&leases]).await?;
    let held = listed.pop().unwrap_or_default();
    Ok(Guarded {
        guard: items.pop().expect("a guard node"),
        waiting: listed.pop().unwrap_or_default(),
        held,
    })
}

/// Whether our count fits beside the existing leases.
async fn fits_now(session: &Session, leases: &str, spec: &LeaseSpec) -> Result<bool> {
    fits(leases, &session.children(leases).await?, spec)
}

fn fits(leases: &str, children: &[String], spec: &LeaseSpec) -> Result<bool> {
    Ok(sum(leases, children, spec)? + spec.count <= spec.total)
}

/// The sum of the counts of the leases named `{count}_{total}_{seq}`. A lease with another total
/// means two configurations disagree about the budget: an error, naming both.
fn sum(folder: &str, children: &[String], spec: &LeaseSpec) -> Result<u64> {
    let mut sum = 0u64;
    for child in children {
        let Some(LeaseName { count, total }) = LeaseName::parse(child) else {
            continue;
        };
        if total != spec.total {
            return Err(Error::Config(format!(
                "resource {:?}: we lease out of a total of {}, but lease {folder}/{child} has a total of {total}; every --lease of one resource must give the same TOTAL",
                spec.resource, spec.total
            )));
        }
        sum = sum.saturating_add(count);
    }
    Ok(sum)
}

impl Lease {
    /// Resolves when the lease node is gone (deleted from outside, or the session ended).
    pub async fn lost(&self, session: &Session) -> Lost {
        session.node_gone("lease node", &self.path, None).await
    }
}
