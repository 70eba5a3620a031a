//! One run of switchman, top to bottom, in the order of the contract's section 4.

use std::future::Future;
use std::pin::Pin;

use crate::cli::Cli;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::groups::{Loss, Membership, fetch_prefix};
use crate::host;
use crate::lease_spec::{LeaseSpec, Macros};
use crate::lock;
use crate::paths::Paths;
use crate::prefix_data::PrefixData;
use crate::queue;
use crate::semaphore;
use crate::session::Session;
use crate::supervisor::{self, Ending};

/// What a run needs to know, fixed before it connects.
struct Plan<'a> {
    cli: &'a Cli,
    config: &'a Config,
    paths: Paths,
    fqdn: String,
    /// `"{fqdn} {pid}"`, the data of every node we create.
    owner: String,
    lock_name: Option<String>,
    leases: Vec<LeaseSpec>,
    macros: Option<Macros>,
    busy_code: i32,
}

/// Runs CMD and returns the exit code; `Err` for switchman's own failures.
pub async fn run(cli: &Cli, config: &Config) -> Result<i32> {
    // 1. Parse the command line and config; expand lease macros.
    let fqdn = host::fqdn(config.fqdn.as_deref());
    let lock_name = cli.lock_name()?;
    let macros = if cli.leases.is_empty() {
        None
    } else {
        Some(Macros::for_host(&fqdn)?)
    };
    let leases = match &macros {
        None => Vec::new(),
        Some(m) => cli
            .leases
            .iter()
            .map(|l| LeaseSpec::parse(l, m))
            .collect::<Result<_>>()?,
    };
    let plan = Plan {
        cli,
        config,
        paths: Paths::new(&config.prefix),
        owner: format!("{fqdn} {}", std::process::id()),
        fqdn,
        lock_name,
        leases,
        macros,
        busy_code: cli
            .busy_exit_code
            .map(i32::from)
            .unwrap_or(config.busy_exit_code),
    };

    // 2. Connect.
    let mut session = Session::connect(config).await?;
    // From here on, keep the liveness record fresh: a wait in a queue may outlast the session
    // timeout many times, and CMD's deadlines must start from a recent answer.
    session.start_heartbeat(plan.paths.prefix().to_string());
    let result = run_in_session(&plan, &session).await;
    // The end of 9: closing the session deletes every node of ours that is left (lock, leases,
    // queue items), at once and only ours.
    session.close().await;
    result
}

async fn run_in_session(plan: &Plan<'_>, session: &Session) -> Result<i32> {
    let prefix = plan.paths.prefix();
    let skip = |why: String| {
        tracing::info!("skipped: {why}");
        Ok(plan.busy_code)
    };

    // 3. Groups: read the prefix data only if a group or a lease needs it.
    let (data, prefix_watch) = if plan.cli.group.is_some() || !plan.leases.is_empty() {
        let (bytes, watch) = fetch_prefix(session, prefix, plan.cli.group.is_some()).await?;
        (PrefixData::parse(prefix, &bytes)?, watch)
    } else {
        (PrefixData::default(), None)
    };
    let membership = match (&plan.cli.group, prefix_watch) {
        (Some(group), Some(watch)) => {
            match Membership::check(&data, watch, prefix, group, &plan.fqdn)? {
                Some(m) => Some(m),
                None => return skip(format!("{} is not in group {group}", plan.fqdn)),
            }
        }
        _ => None,
    };

    // Watched from here on: a host taken out of the group while the run waits for leases must
    // skip, not start CMD only to stop it.
    let mut group_left: Pin<Box<dyn Future<Output = Loss> + '_>> = match membership {
        Some(m) => Box::pin(m.watch(session)),
        None => Box::pin(std::future::pending()),
    };

    // 4. The lock must be free; with leases, watch it while we wait. (Without leases the
    //    create in step 8 is the check, which saves a request.)
    let lock_path = plan.lock_name.as_ref().map(|n| plan.paths.lock(n));
    let mut lock_taken_elsewhere = None;
    if let (Some(path), false) = (&lock_path, plan.leases.is_empty()) {
        match lock::watch_free(session, path).await? {
            Some(watch) => lock_taken_elsewhere = Some(watch),
            None => return skip(format!("lock {path} is held elsewhere")),
        }
    }

    // 5. Leased resources must be listed in the prefix data; take them in the list's order.
    let leases = order_leases(plan, &data)?;

    // 6. Join each resource's queue, unless the same task already waits there.
    let task = plan
        .lock_name
        .clone()
        .unwrap_or_else(|| cmd_basename(plan.cli));
    let mut items = Vec::new();
    for spec in &leases {
        let folder = plan.paths.queue(&spec.resource);
        if plan.lock_name.is_some() && queue::has_item_named(session, &folder, &task).await? {
            return skip(format!("task {task} is already queued in {folder}"));
        }
        items.push(
            queue::join(
                session,
                &plan.paths.queue_item_stem(&spec.resource, &task),
                plan.owner.as_bytes(),
            )
            .await?,
        );
    }

    // 7. In order: wait for our turn in the queue, then for room in the semaphore.
    let acquiring = async {
        let mut held = Vec::new();
        for (spec, item) in leases.iter().zip(&items) {
            item.wait_turn(session).await?;
            held.push(semaphore::acquire(session, &plan.paths, spec, plan.owner.as_bytes()).await?);
        }
        Ok::<_, Error>(held)
    };
    let held = tokio::select! {
        held = acquiring => held?,
        _ = async {
            match lock_taken_elsewhere {
                // Only the node's creation means the lock was taken: the end of the session
                // fires this watch too, and is the acquiring branch's to report.
                Some(watch) => {
                    if watch.changed().await.event_type != zookeeper_client::EventType::NodeCreated {
                        std::future::pending::<()>().await;
                    }
                }
                None => std::future::pending().await,
            }
        } => return skip(format!("lock {} was taken elsewhere while we waited", lock_path.unwrap_or_default())),
        loss = &mut group_left => return match loss {
            Loss::Left(why) => skip(format!("{why} while we waited")),
            Loss::SessionEnded(why) => Err(Error::Unavailable(why)),
        },
        _ = async {
            match plan.config.resources_wait_timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        } => return Err(Error::Timeout(format!(
            "no lease within resources_wait_timeout ({:.1}s) of {}; nothing was left queued",
            plan.config.resources_wait_timeout.unwrap_or_default().as_secs_f64(),
            plan.config.path.display()
        ))),
    };

    // 8. Leave every queue, then take the lock.
    for item in &items {
        item.leave(session).await?;
    }
    let lock = match &lock_path {
        None => None,
        Some(path) => match lock::acquire(session, path, plan.owner.as_bytes()).await? {
            Some(lock) => Some(lock),
            None => return skip(format!("lock {path} is held elsewhere")),
        },
    };

    // 9. Start CMD and supervise it until it ends or something it depends on is lost.
    let mut env = Vec::new();
    if let Some(lock) = &lock {
        env.push(("SWITCHMAN_LOCK".to_string(), lock.path.clone()));
        env.push((
            "SWITCHMAN_FENCING_TOKEN".to_string(),
            lock.czxid.to_string(),
        ));
    }
    if !held.is_empty() {
        let paths: Vec<&str> = held.iter().map(|l| l.path.as_str()).collect();
        env.push(("SWITCHMAN_LEASES".to_string(), paths.join(" ")));
    }
    let child = supervisor::spawn(&plan.cli.cmd, &env)?;

    let mut losses: Vec<Pin<Box<dyn Future<Output = String> + '_>>> =
        vec![Box::pin(session.ended())];
    if let Some(lock) = &lock {
        losses.push(Box::pin(lock.lost(session)));
    }
    for lease in &held {
        losses.push(Box::pin(lease.lost(session)));
    }
    if plan.cli.group.is_some() {
        losses.push(Box::pin(async move { group_left.await.reason() }));
    }
    let mut loss = Box::pin(async { futures::future::select_all(losses).await.0 });
    let ending = child
        .supervise(
            loss.as_mut(),
            session.liveness(),
            plan.config.termination_timeout,
        )
        .await;
    // The watches inside end with the session, which closes next. Dropping them first would
    // send the servers a RemoveWatches request each (seen with strace: a plain lock run cost 6
    // packets instead of 5), so they are left to the process's exit.
    std::mem::forget(loss);
    match ending {
        Ending::Exited(code) => Ok(code),
        Ending::Stopped(reason) => Err(Error::Lost(format!("{reason}; CMD was stopped"))),
    }
}

/// The leases in the order of the prefix data's `resources` list (macros expanded), a global
/// order that keeps two runs from each holding what the other waits for.
fn order_leases(plan: &Plan<'_>, data: &PrefixData) -> Result<Vec<LeaseSpec>> {
    let Some(macros) = &plan.macros else {
        return Ok(Vec::new());
    };
    let known: Vec<String> = data.resources.iter().map(|r| macros.expand(r)).collect();
    let unknown: Vec<&str> = plan
        .leases
        .iter()
        .filter(|l| !known.contains(&l.resource))
        .map(|l| l.resource.as_str())
        .collect();
    if !unknown.is_empty() {
        return Err(Error::Config(format!(
            "resource {} not listed in \"resources\" of {} (listed, after macros: {:?})",
            unknown.join(", "),
            plan.paths.prefix(),
            known
        )));
    }
    let mut leases = plan.leases.clone();
    leases.sort_by_key(|l| known.iter().position(|k| *k == l.resource));
    if let Some(w) = leases.windows(2).find(|w| w[0].resource == w[1].resource) {
        return Err(Error::Usage(format!(
            "--lease names resource {:?} twice",
            w[0].resource
        )));
    }
    Ok(leases)
}

fn cmd_basename(cli: &Cli) -> String {
    std::path::Path::new(&cli.cmd[0])
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
