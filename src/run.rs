//! One run of switchman, top to bottom, in the order of the contract's section 4.

use crate::cli::Cli;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::host;
use crate::lock;
use crate::paths::Paths;
use crate::session::Session;
use crate::supervisor::{self, Ending};

/// Runs CMD under the lock and returns the exit code; `Err` for switchman's own failures.
pub async fn run(cli: &Cli, config: &Config) -> Result<i32> {
    // 1. Parse the command line and config (the config is already loaded).
    let lock_name = cli.lock_name()?;
    if cli.group.is_some() {
        return Err(Error::Usage("--group is not supported yet".into()));
    }
    if !cli.leases.is_empty() {
        return Err(Error::Usage("--lease is not supported yet".into()));
    }
    let busy_code = cli
        .busy_exit_code
        .map(i32::from)
        .unwrap_or(config.busy_exit_code);
    let paths = Paths::new(&config.prefix);
    let fqdn = host::fqdn(config.fqdn.as_deref());
    let owner = format!("{fqdn} {}", std::process::id());

    // 2. Connect.
    let mut session = Session::connect(config).await?;
    let result = run_in_session(
        cli,
        config,
        &mut session,
        &paths,
        lock_name,
        &owner,
        busy_code,
    )
    .await;
    // 9 (end). Closing the session deletes our lock node with it.
    session.close().await;
    result
}

async fn run_in_session(
    cli: &Cli,
    config: &Config,
    session: &mut Session,
    paths: &Paths,
    lock_name: Option<String>,
    owner: &str,
    busy_code: i32,
) -> Result<i32> {
    // 4 and 8. Take the lock: a plain create, which fails if another host holds it.
    let lock = match &lock_name {
        None => None,
        Some(name) => {
            let path = paths.lock(name);
            match lock::acquire(session, &path, owner.as_bytes()).await? {
                Some(lock) => Some(lock),
                None => {
                    tracing::info!("skipped: lock {path} is held elsewhere");
                    return Ok(busy_code);
                }
            }
        }
    };

    // 9. Start CMD and supervise it.
    let heartbeat_path = lock
        .as_ref()
        .map_or_else(|| paths.prefix().to_string(), |l| l.path.clone());
    session.start_heartbeat(heartbeat_path);
    let mut env = Vec::new();
    if let Some(lock) = &lock {
        env.push(("SWITCHMAN_LOCK".to_string(), lock.path.clone()));
        env.push((
            "SWITCHMAN_FENCING_TOKEN".to_string(),
            lock.czxid.to_string(),
        ));
    }
    let child = supervisor::spawn(&cli.cmd, &env)?;
    let session = &*session;
    let loss = async {
        tokio::select! {
            reason = session.ended() => reason,
            reason = async {
                match &lock {
                    Some(lock) => lock.lost(session).await,
                    None => std::future::pending().await,
                }
            } => reason,
        }
    };
    match child
        .supervise(loss, session.liveness(), config.termination_timeout)
        .await
    {
        Ending::Exited(code) => Ok(code),
        Ending::Stopped(reason) => Err(Error::Lost(format!("{reason}; CMD was stopped"))),
    }
}
