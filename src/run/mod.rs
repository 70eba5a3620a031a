//! One run of switchman, top to bottom, in the order of the README's "How a run goes".
//!
//! [`Plan::resolve`] fixes everything that can be known before connecting (step 1);
//! [`run_in_session`] is the protocol (steps 3 to 9), each step a call to the recipe that does it.

pub mod supervisor;

use std::ffi::OsString;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use zookeeper_client::{EventType, OneshotWatcher};

use crate::cli::Cli;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::host;
use crate::lease_spec::{LeaseSpec, Macros, in_resource_order};
use crate::prefix_data::PrefixData;
use crate::recipes::groups::{Loss, Membership, fetch_prefix};
use crate::recipes::holder::Holder;
use crate::recipes::lock::{self, Lock};
use crate::recipes::queue::{self, Item};
use crate::recipes::semaphore::{self, Lease};
use crate::timestamp;
use crate::zk::{Paths, Session, now};
use supervisor::Ending;

/// What a run needs to know, fixed before it connects.
struct Plan {
    paths: Paths,
    fqdn: String,
    /// `"{fqdn} {pid}"`, the data of every node we create.
    owner: String,
    /// The job's name: the lock name, or CMD's basename with `--no-lock`. Queue items are named
    /// after it.
    task: String,
    /// Whether to take the lock `{prefix}/locks/{task}` (not with `--no-lock`).
    lock: bool,
    group: Option<String>,
    /// The leases asked for, macros expanded, in the order given (step 5 orders them).
    leases: Vec<LeaseSpec>,
    /// This host's macros, needed to expand the prefix data's `resources` when leasing.
    macros: Option<Macros>,
    cmd: Vec<OsString>,
    busy_code: i32,
    resources_wait_timeout: Option<Duration>,
    termination_timeout: Duration,
    /// The config file, for messages that point at a key in it.
    config_path: PathBuf,
}

impl Plan {
    /// Step 1: the command line and config, with lease macros expanded.
    fn resolve(cli: &Cli, config: &Config) -> Result<Plan> {
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
        Ok(Plan {
            paths: Paths::new(&config.prefix),
            owner: format!("{fqdn} {}", std::process::id()),
            fqdn,
            lock: lock_name.is_some(),
            task: lock_name.unwrap_or_else(|| cli.cmd_basename()),
            group: cli.group.clone(),
            leases,
            macros,
            cmd: cli.cmd.clone(),
            busy_code: cli
                .busy_exit_code
                .map(i32::from)
                .unwrap_or(config.busy_exit_code),
            resources_wait_timeout: config.resources_wait_timeout,
            termination_timeout: config.termination_timeout,
            config_path: config.path.clone(),
        })
    }

    fn lock_path(&self) -> Option<String> {
        self.lock.then(|| self.paths.lock(&self.task))
    }
}

/// Runs CMD and returns the exit code; `Err` for switchman's own failures.
pub async fn run(cli: &Cli, config: &Config) -> Result<i32> {
    // 1. Parse the command line and config; expand lease macros.
    let plan = Plan::resolve(cli, config)?;

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

/// A future that resolves when something the run depends on is lost.
type Watch<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

async fn run_in_session(plan: &Plan, session: &Session) -> Result<i32> {
    let prefix = plan.paths.prefix();
    let skip = |why: String| {
        record_exit_code(plan.busy_code);
        tracing::info!("skipped: {why}");
        Ok(plan.busy_code)
    };

    // 3. Groups: read the prefix data only if a group or a lease needs it.
    let (data, prefix_watch) = if plan.group.is_some() || !plan.leases.is_empty() {
        let (bytes, watch) = fetch_prefix(session, prefix, plan.group.is_some()).await?;
        (PrefixData::parse(prefix, &bytes)?, watch)
    } else {
        (PrefixData::default(), None)
    };
    let membership = match (&plan.group, prefix_watch) {
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
    let mut group_left: Watch<Loss> = match membership {
        Some(m) => Box::pin(m.watch(session)),
        None => Box::pin(std::future::pending()),
    };

    // 4. The lock must be free; with leases, watch it while we wait. (Without leases the
    //    create in step 8 is the check, which saves a request.)
    let lock_path = plan.lock_path();
    let mut lock_taken_elsewhere = None;
    if let (Some(path), false) = (&lock_path, plan.leases.is_empty()) {
        match lock::watch_free(session, path).await? {
            Ok(watch) => lock_taken_elsewhere = Some(watch),
            Err(taken) => return skip(format!("lock {path} {}", lock::held_by(&taken))),
        }
    }

    // 5. Leased resources must be listed in the prefix data; take them in the list's order.
    let leases = order_leases(plan, &data)?;

    // 6. Join each resource's queue, unless the same task already waits there.
    let mut items = Vec::new();
    for spec in &leases {
        let folder = plan.paths.queue(&spec.resource);
        if plan.lock
            && let Some(item) = queue::item_named(session, &folder, &plan.task).await?
        {
            let by = match Holder::read(session, &item).await? {
                Some(h) => format!(" by {}", h.describe()),
                None => String::new(),
            };
            return skip(format!(
                "task {} is already queued as {item}{by}",
                plan.task
            ));
        }
        let stem = plan.paths.queue_item_stem(&spec.resource, &plan.task);
        items.push(queue::join(session, &stem, plan.owner.as_bytes()).await?);
    }

    // 7. In order: wait for our turn in the queue, then for room in the semaphore; unless the
    //    lock is taken elsewhere, the host leaves the group, or the wait times out first.
    let held = tokio::select! {
        held = acquire_leases(plan, session, &leases, &items) => held?,
        _ = lock_created(lock_taken_elsewhere) => return skip(format!(
            "lock {} was taken elsewhere while we waited",
            lock_path.unwrap_or_default()
        )),
        loss = &mut group_left => return match loss {
            Loss::Left(why) => skip(format!("{why} while we waited")),
            Loss::SessionEnded(why) => Err(Error::Unavailable(why)),
        },
        _ = sleep_or_forever(plan.resources_wait_timeout) => return Err(Error::Timeout(format!(
            "no lease within resources_wait_timeout ({:.1}s) of {}; nothing was left queued",
            plan.resources_wait_timeout.unwrap_or_default().as_secs_f64(),
            plan.config_path.display()
        ))),
    };

    // 8. Leave every queue, then take the lock.
    for item in &items {
        item.leave(session).await?;
    }
    let lock = match &lock_path {
        None => None,
        Some(path) => match lock::acquire(session, path, plan.owner.as_bytes()).await? {
            Ok(lock) => Some(lock),
            Err(taken) => return skip(format!("lock {path} {}", lock::held_by(&taken))),
        },
    };

    // 9. Start CMD and supervise it until it ends or something it depends on is lost. Not
    //    before the leader is proven to know our session again, if a wait went stale (our
    //    server cut off from it, say), and not at all if it may have given up on us: the lock
    //    or a lease may be someone else's already.
    let liveness = session.liveness();
    if !liveness.wait_fresh().await {
        return Err(Error::Unavailable(format!(
            "no proof for {:.1}s that ZooKeeper's leader still knows our session; CMD was not started",
            now().saturating_sub(liveness.acked_at()).as_secs_f64()
        )));
    }
    // Fields of main's "run" span, so that CMD's lines and the exit code in the journal and
    // the JSON log name the lock and the holder's fencing token.
    if let Some(lock) = &lock {
        tracing::Span::current()
            .record("lock", lock.path.as_str())
            .record("token", lock.czxid);
    }
    let child = supervisor::spawn(&plan.cmd, &cmd_env(lock.as_ref(), &held))?;
    tracing::info!(
        "started: {}, CMD pid {}",
        describe_hold(lock.as_ref(), &held),
        child.pid()
    );
    let started = now();
    let mut losses: Vec<Watch<String>> = vec![Box::pin(session.ended())];
    if let Some(lock) = &lock {
        losses.push(Box::pin(lock.lost(session)));
    }
    for lease in &held {
        losses.push(Box::pin(lease.lost(session)));
    }
    if plan.group.is_some() {
        losses.push(Box::pin(async move { group_left.await.reason() }));
    }
    let mut loss = Box::pin(async { futures::future::select_all(losses).await.0 });
    let ending = child
        .supervise(loss.as_mut(), liveness, plan.termination_timeout)
        .await;
    // The watches inside end with the session, which closes next. Dropping them first would
    // send the servers a RemoveWatches request each (seen with strace: a plain lock run cost 6
    // packets instead of 5), so they are left to the process's exit.
    std::mem::forget(loss);
    match ending {
        Ending::Exited(code) => {
            record_exit_code(code);
            tracing::info!(
                "ended: {} after {}",
                describe_code(code),
                timestamp::took(now().saturating_sub(started))
            );
            Ok(code)
        }
        Ending::Stopped(stop) => {
            let how = if stop.killed {
                "SIGKILL was needed"
            } else {
                "after SIGTERM, no SIGKILL needed"
            };
            let lost = Error::Lost(format!("{}; CMD was stopped", stop.reason));
            record_exit_code(lost.exit_code());
            tracing::info!(
                "stopped: {}; CMD ended {} after the stop began, {how}",
                stop.reason,
                timestamp::took(stop.took)
            );
            Err(lost)
        }
    }
}

/// Records the exit code on main's "run" span before the line that says how the run ends, so
/// that the line carries it (`EXIT_CODE` in the journal, `span.exit_code` in JSON lines).
fn record_exit_code(code: i32) {
    tracing::Span::current().record("exit_code", code);
}

/// `lock /p/locks/backup (token 42), leases /p/semaphores/db/leases/1_2_0000000003`
fn describe_hold(lock: Option<&Lock>, held: &[Lease]) -> String {
    let lock = match lock {
        Some(l) => format!("lock {} (token {})", l.path, l.czxid),
        None => "no lock".to_string(),
    };
    if held.is_empty() {
        return format!("{lock}, no leases");
    }
    let leases: Vec<&str> = held.iter().map(|l| l.path.as_str()).collect();
    format!("{lock}, leases {}", leases.join(" "))
}

/// `exit code 0`, or `exit code 143 (128+SIGTERM)`: a code above 128 usually, though not
/// surely, means CMD died of a signal, and the supervisor reports both the same way.
fn describe_code(code: i32) -> String {
    match nix::sys::signal::Signal::try_from(code - 128) {
        Ok(sig) if code > 128 => format!("exit code {code} (128+{sig})"),
        _ => format!("exit code {code}"),
    }
}

/// Step 7's wait: for each resource in order, our turn in its queue, then room in its semaphore.
async fn acquire_leases(
    plan: &Plan,
    session: &Session,
    leases: &[LeaseSpec],
    items: &[Item],
) -> Result<Vec<Lease>> {
    let mut held = Vec::new();
    for (spec, item) in leases.iter().zip(items) {
        item.wait_turn(session).await?;
        held.push(semaphore::acquire(session, &plan.paths, spec, plan.owner.as_bytes()).await?);
    }
    Ok(held)
}

/// Resolves when the watched lock node is created. Only its creation means the lock was taken:
/// the end of the session fires the watch too, and is the acquiring side's to report.
async fn lock_created(watch: Option<OneshotWatcher>) {
    if let Some(watch) = watch
        && watch.changed().await.event_type == EventType::NodeCreated
    {
        return;
    }
    std::future::pending().await
}

async fn sleep_or_forever(timeout: Option<Duration>) {
    match timeout {
        Some(t) => tokio::time::sleep(t).await,
        None => std::future::pending().await,
    }
}

/// What CMD finds in its environment besides the parent's: the lock node, its fencing token and
/// the leases held.
fn cmd_env(lock: Option<&Lock>, held: &[Lease]) -> Vec<(String, String)> {
    let mut env = Vec::new();
    if let Some(lock) = lock {
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
    env
}

/// The leases in the order of the prefix data's `resources` list (macros expanded), a global
/// order that keeps two runs from each holding what the other waits for.
fn order_leases(plan: &Plan, data: &PrefixData) -> Result<Vec<LeaseSpec>> {
    match &plan.macros {
        None => Ok(Vec::new()),
        Some(macros) => {
            in_resource_order(&plan.leases, &data.resources, macros, plan.paths.prefix())
        }
    }
}
