//! Counting semaphores: `{prefix}/semaphores/{res}/leases/{count}_{total}_{seq10}`, guarded by
//! the mutex `{prefix}/semaphores/{res}/lock/acquire-{seq10}` (the original's layout, so old and
//! new copies share one budget).
//!
//! Under the guard, the counts of the existing leases are summed; if ours fits in the total we
//! add our lease. If not, we let go of the guard and wait for the leases folder to change. The
//! original polls once a second here; a watch wakes us as soon as a lease goes.

use super::queue;
use crate::error::{Error, Result};
use crate::lease_spec::LeaseSpec;
use crate::zk::access::session_ended;
use crate::zk::{Paths, Session};

/// A lease we hold.
#[derive(Debug, Clone)]
pub struct Lease {
    pub path: String,
    pub resource: String,
}

/// Takes `spec.count` units of `spec.resource`, waiting as long as it takes.
pub async fn acquire(
    session: &Session,
    paths: &Paths,
    spec: &LeaseSpec,
    data: &[u8],
) -> Result<Lease> {
    let leases = paths.semaphore_leases(&spec.resource);
    let guard_folder = paths.semaphore_guard(&spec.resource);
    loop {
        let guard = queue::join(session, &paths.semaphore_guard_stem(&spec.resource), data).await?;
        // Usually nobody else is at the guard (a resource's queue lets one waiter at a time
        // through), so look at the guard's queue and the leases in one round trip.
        // The servers answer in order, so if the guard's queue shows our guard node first, every
        // earlier holder had let go (after creating its lease) before the leases are read.
        let room = match session.children_in_order(&guard_folder, &leases).await {
            Ok((waiting, held)) if guard.is_oldest(&waiting) => fits(&leases, &held, spec),
            Ok(_) => match guard.wait_turn(session).await {
                Ok(()) => room(session, &leases, spec).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let taken = match room {
            Ok(true) => Some(
                session
                    .create_sequential(
                        &paths.semaphore_lease_stem(&spec.resource, spec.count, spec.total),
                        data,
                    )
                    .await,
            ),
            Ok(false) => None,
            Err(e) => Some(Err(e)),
        };
        guard.leave(session).await?;
        if let Some(lease) = taken {
            return Ok(Lease {
                path: lease?,
                resource: spec.resource.clone(),
            });
        }

        // No room: wait for a lease to go, then try again under the guard. The watch is set
        // with the listing, so a departure between the two cannot be missed.
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

/// Whether our count fits beside the existing leases.
async fn room(session: &Session, leases: &str, spec: &LeaseSpec) -> Result<bool> {
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
        let mut parts = child.splitn(3, '_');
        let (Some(count), Some(total)) = (parts.next(), parts.next()) else {
            continue;
        };
        let (Ok(count), Ok(total)) = (count.parse::<u64>(), total.parse::<u64>()) else {
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
    pub async fn lost(&self, session: &Session) -> String {
        session.node_gone("lease node", &self.path, None).await
    }
}
