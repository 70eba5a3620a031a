//! The ZooKeeper session: established, watched for its end, closed.
//!
//! Its liveness (how long the servers may still consider it alive) is in [`super::liveness`];
//! the requests the recipes make through it, with their one retry rule, are in
//! [`super::access`].

use std::cell::RefCell;
use std::path::PathBuf;
use std::time::Duration;

use tokio::task::JoinHandle;
use zookeeper_client::{Acl, Client, OneshotWatcher, SessionState, StateWatcher};

use super::clock::now;
use super::heartbeat;
use super::liveness::Liveness;
use super::secure;
use super::watches::Lost;
use crate::error::{Error, Result};
use crate::security::{Auth, Security};

/// A live session with the ensemble.
pub struct Session {
    pub(super) client: Client,
    liveness: Liveness,
    heartbeat: Option<JoinHandle<()>>,
    /// The ACL of every node we create (config keys `acl` and `acl_extra`).
    pub(super) acls: Vec<Acl>,
    /// Who the servers know us as, for messages about refusals; never a secret.
    pub(super) identity: String,
    /// The config file, for messages that point at a key in it.
    pub(super) config_path: PathBuf,
    /// What to say when the servers refuse our authentication, or the lack of it: a session
    /// without credentials learns of an ensemble that enforces authentication only from its
    /// first request's answer.
    pub(super) refused: String,
    /// Watches the run no longer needs, dropped only once the session is closed: dropping one
    /// before would cost a request to remove it from the servers.
    kept: RefCell<Vec<OneshotWatcher>>,
}

/// What a session needs of the config: where the servers are, how long to wait for them, who
/// we are to them, and the file to point at when they refuse.
#[derive(Debug, Clone)]
pub struct Options {
    pub zkhosts: String,
    pub session_timeout: Duration,
    pub connect_timeout: Duration,
    /// The servers' tickTime, as the config states it (see `liveness`).
    pub server_tick_time: Duration,
    pub security: Security,
    /// The config file, named in messages that point at a key in it.
    pub path: PathBuf,
}

/// The servers refused the session's authentication: wrong credentials, or none where the
/// ensemble enforces them (`zookeeper.enforce.auth.enabled`).
fn refusal(options: &Options, identity: &str) -> String {
    match options.security.auth {
        Some(Auth::Password(_)) => format!(
            "ZooKeeper at {} refused to authenticate {identity}; check the user and password, \
             and the servers' auth settings",
            options.zkhosts
        ),
        // Our tickets were good (see `kerberos`): the server's side is what is left.
        Some(Auth::Kerberos(_)) => format!(
            "ZooKeeper at {} refused to authenticate {identity}; check the servers' own \
             principal and keytab (JAAS Server section), and that their clocks agree with the KDC",
            options.zkhosts
        ),
        None => format!(
            "ZooKeeper at {} requires authentication; set \"auth\" in {}",
            options.zkhosts,
            options.path.display()
        ),
    }
}

impl Session {
    /// Establishes a session, retrying servers until `connect_timeout` (exit 69 after that),
    /// with the config's credentials and TLS settings; refused credentials or TLS are exit 77.
    ///
    /// The client library gives up on a new session after about a session timeout, so it is
    /// asked again until `connect_timeout` is over: an ensemble that is still starting (or
    /// electing a leader) when cron starts us is waited for, as the config says.
    pub async fn connect(options: &Options) -> Result<Session> {
        let give_up = tokio::time::Instant::now() + options.connect_timeout;
        let connector = secure::connector(options)?;
        secure::login(options).await?;
        let identity = options.security.identity();
        let mut last_error = None;
        // A TLS refusal seen on the way, reported (77) if no session comes of the wait.
        let mut refused = None;
        let (client, sent) = loop {
            let sent = now();
            let connecting = secure::connect(connector.clone(), options);
            match tokio::time::timeout_at(give_up, connecting).await {
                Ok(Ok(client)) => break (client, sent),
                Ok(Err(zookeeper_client::Error::AuthFailed)) => {
                    return Err(Error::NoPerm(refusal(options, &identity)));
                }
                Ok(Err(
                    e @ (zookeeper_client::Error::Timeout
                    | zookeeper_client::Error::ConnectionLoss
                    | zookeeper_client::Error::NoHosts),
                )) => {
                    tracing::debug!("no session yet ({e}); trying again");
                    last_error = Some(e);
                    // Servers that all refuse the TLS handshake will go on refusing it; one
                    // that is down or was refused beside one that is up may yet come good.
                    let left = give_up.saturating_duration_since(tokio::time::Instant::now());
                    let patience = options
                        .session_timeout
                        .min(left)
                        .max(Duration::from_millis(100));
                    if let Some((why, all)) = secure::diagnose(options, patience).await {
                        if all {
                            return Err(Error::NoPerm(why));
                        }
                        refused = Some(why);
                    }
                    // Only a failure that came at once could make this a busy loop.
                    tokio::time::sleep_until(
                        give_up.min(tokio::time::Instant::now() + Duration::from_millis(100)),
                    )
                    .await;
                }
                Ok(Err(e)) => {
                    return Err(Error::Unavailable(format!(
                        "no session with {} ({e}); check that ZooKeeper is running and that zkhosts in {} is right",
                        options.zkhosts,
                        options.path.display()
                    )));
                }
                Err(_) => {
                    if let Some(why) = refused {
                        return Err(Error::NoPerm(why));
                    }
                    let last = last_error
                        .map(|e| format!(", last error: {e}"))
                        .unwrap_or_default();
                    return Err(Error::Unavailable(format!(
                        "no session with {} within connect_timeout ({:.1}s{last}); check that ZooKeeper is running and reachable",
                        options.zkhosts,
                        options.connect_timeout.as_secs_f64()
                    )));
                }
            }
        };
        secure::check_authenticated(&client, options).await?;
        let timeout = client.session_timeout();
        tracing::debug!(session = %client.session_id(), timeout_ms = timeout.as_millis() as u64, "session established");
        // The leader made (or revalidated) the session after `sent`: the first `acked`, until
        // the heartbeat's chain proves a later one.
        Ok(Session {
            client,
            liveness: Liveness::new(timeout, options.server_tick_time, sent),
            heartbeat: None,
            acls: secure::acls(&options.security.acl),
            refused: refusal(options, &identity),
            kept: RefCell::default(),
            identity,
            config_path: options.path.clone(),
        })
    }

    /// Our session id, which the servers record as the ephemeral owner of our nodes.
    pub fn id(&self) -> i64 {
        self.client.session_id().0
    }

    pub fn liveness(&self) -> &Liveness {
        &self.liveness
    }

    /// Starts the heartbeat (see `heartbeat.rs`), reading `path`: cold, until
    /// [`Session::warm_up`].
    pub fn start_heartbeat(&mut self, path: String) {
        self.heartbeat = Some(heartbeat::heartbeat(
            self.client.clone(),
            self.liveness.clone(),
            path,
        ));
    }

    /// From now on, prove that the leader knows the session (see [`Liveness::warm_up`]): the
    /// run holds what CMD needs, or is first in line for it.
    pub fn warm_up(&self) {
        self.liveness.warm_up();
    }

    /// Resolves when the session is over for good: expired, closed or refused authentication.
    /// Disconnections are logged and waited out, as the library reconnects by itself.
    pub async fn ended(&self) -> Lost {
        let mut states = self.client.state_watcher();
        let mut state = states.peek_state();
        loop {
            match state {
                SessionState::Expired => {
                    self.liveness.expired();
                    return Lost::Session("the ZooKeeper session expired".into());
                }
                SessionState::Closed => {
                    return Lost::Session("the ZooKeeper session was closed".into());
                }
                SessionState::AuthFailed => return Lost::Session(self.refused.clone()),
                SessionState::Disconnected => {
                    tracing::info!("disconnected from ZooKeeper; reconnecting")
                }
                other => tracing::debug!(state = %other, "session state"),
            }
            state = states.changed().await;
        }
    }

    /// The session's states as the client library goes through them (connected, disconnected,
    /// expired, ...), for a reader that shows whether what it read is still current.
    pub fn states(&self) -> StateWatcher {
        self.client.state_watcher()
    }

    /// Keeps `watcher` until the session is closed (see `kept`).
    pub fn keep_until_close(&self, watcher: OneshotWatcher) {
        self.kept.borrow_mut().push(watcher);
    }

    /// Stops the heartbeat, closes the session (deleting whatever ephemerals are left) and
    /// waits briefly for the servers to confirm.
    pub async fn close(mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
            let _ = h.await;
        }
        let mut states = self.client.state_watcher();
        // The library sends CloseSession once the last handle is dropped; the kept watches go
        // after it, when they can no longer ask the servers for anything.
        drop(self.client);
        drop(self.kept);
        // An expired session has nothing left to close or delete.
        if self.liveness.is_expired() {
            return;
        }
        let wait = self.liveness.timeout.min(Duration::from_secs(2));
        let _ = tokio::time::timeout(wait, async {
            while !matches!(
                states.changed().await,
                SessionState::Closed | SessionState::Expired | SessionState::AuthFailed
            ) {}
        })
        .await;
    }
}
