//! The ZooKeeper session and our own record of its liveness.
//!
//! The client library reconnects to another server on its own, keeping the session, so a
//! disconnect is not a loss. What we must know is the latest moment at which the servers may
//! already have expired the session: no earlier than the negotiated timeout after they last
//! heard from us. The library's idea of "disconnected" says nothing about that, so we keep our
//! own record: the send time of the newest request the servers answered, refreshed by a cheap
//! heartbeat. Everything CMD's safety hangs on is derived from that one number.
//!
//! Times are read from CLOCK_BOOTTIME: monotonic like CLOCK_MONOTONIC, but it keeps counting
//! while the machine is suspended. The servers keep counting too, so after a resume the
//! deadline must already look passed, which a clock that stopped would hide.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::time::{ClockId, clock_gettime};
use tokio::task::JoinHandle;
use zookeeper_client::{Acls, Client, CreateMode, EventType, SessionState};

use crate::config::Config;
use crate::error::{Error, Result};

/// Beats sent and not yet answered, at most (a session timeout's worth).
const MAX_BEATS_IN_FLIGHT: usize = 6;

/// Now, on the clock that counts through suspend.
pub fn now() -> Duration {
    let ts = clock_gettime(ClockId::CLOCK_BOOTTIME)
        .expect("CLOCK_BOOTTIME is always available on Linux");
    Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32)
}

/// A live session with the ensemble.
pub struct Session {
    client: Client,
    liveness: Liveness,
    heartbeat: Option<JoinHandle<()>>,
}

impl Session {
    /// Establishes a session, retrying servers until `connect_timeout` (exit 69 after that).
    ///
    /// The client library gives up on a new session after about a session timeout, so it is
    /// asked again until `connect_timeout` is over: an ensemble that is still starting (or
    /// electing a leader) when cron starts us is waited for, as the config says.
    pub async fn connect(config: &Config) -> Result<Session> {
        let give_up = tokio::time::Instant::now() + config.connect_timeout;
        let mut last_error = None;
        let (client, sent) = loop {
            let sent = now();
            let connecting = Client::connector()
                .with_session_timeout(config.session_timeout)
                .connect(&config.zkhosts);
            match tokio::time::timeout_at(give_up, connecting).await {
                Ok(Ok(client)) => break (client, sent),
                Ok(Err(
                    e @ (zookeeper_client::Error::Timeout
                    | zookeeper_client::Error::ConnectionLoss
                    | zookeeper_client::Error::NoHosts),
                )) => {
                    tracing::debug!("no session yet ({e}); trying again");
                    last_error = Some(e);
                    // Only a failure that came at once could make this a busy loop.
                    tokio::time::sleep_until(
                        give_up.min(tokio::time::Instant::now() + Duration::from_millis(100)),
                    )
                    .await;
                }
                Ok(Err(e)) => {
                    return Err(Error::Unavailable(format!(
                        "no session with {} ({e}); check that ZooKeeper is running and that zkhosts in {} is right",
                        config.zkhosts,
                        config.path.display()
                    )));
                }
                Err(_) => {
                    let last = last_error
                        .map(|e| format!(", last error: {e}"))
                        .unwrap_or_default();
                    return Err(Error::Unavailable(format!(
                        "no session with {} within connect_timeout ({:.1}s{last}); check that ZooKeeper is running and reachable",
                        config.zkhosts,
                        config.connect_timeout.as_secs_f64()
                    )));
                }
            }
        };
        let timeout = client.session_timeout();
        tracing::debug!(session = %client.session_id(), timeout_ms = timeout.as_millis() as u64, "session established");
        // All we know of a slow connect is that it began at `sent`; the heartbeat's first beat
        // then goes out at once and tells how fresh the session really is.
        Ok(Session {
            client,
            liveness: Liveness::new(timeout, sent),
            heartbeat: None,
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Our session id, which the servers record as the ephemeral owner of our nodes.
    pub fn id(&self) -> i64 {
        self.client.session_id().0
    }

    pub fn liveness(&self) -> &Liveness {
        &self.liveness
    }

    /// Starts refreshing the liveness record with a cheap read of `path` every sixth of the
    /// session timeout. A stop begins after half the timeout without an answer, so an outage of
    /// the ensemble (an election, a restart) of up to a third of the timeout goes unnoticed by
    /// CMD: the silence it causes is at most the outage plus one interval.
    ///
    /// That holds because no beat is ever given up on. Beats go out on a fixed cadence whether
    /// or not the earlier ones were answered, and each counts, with its own send time, whenever
    /// its reply comes: a beat caught in a short cut is answered once the cut heals, which proves
    /// the servers heard us after it was sent. And a beat that fails with its connection (reset,
    /// lost, timed out) is sent again at once; the client library holds it until it has
    /// reconnected, so the first answer after a server restart refreshes the record, rather than
    /// one an interval later (a rolling restart costs a beat per server).
    pub fn start_heartbeat(&mut self, path: String) {
        let client = self.client.clone();
        let liveness = self.liveness.clone();
        let every = liveness.timeout / 6;
        self.heartbeat = Some(tokio::spawn(async move {
            // The first beat is due an interval after the newest acknowledged request, the
            // connect: at once if establishing the session took that long.
            let first = (liveness.acked_at() + every).saturating_sub(now());
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + first, every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut in_flight = futures::stream::FuturesUnordered::new();
            loop {
                let pause = tokio::select! {
                    _ = ticks.tick() => Some(Duration::ZERO),
                    Some((sent, answer)) = futures::StreamExt::next(&mut in_flight) => match answer {
                        Ok(_) => {
                            liveness.acknowledged(sent);
                            None
                        }
                        // The session is over: nothing to refresh; `ended` reports it.
                        Err(
                            zookeeper_client::Error::SessionExpired
                            | zookeeper_client::Error::SessionMoved
                            | zookeeper_client::Error::ClientClosed
                            | zookeeper_client::Error::AuthFailed,
                        ) => None,
                        // Lost with its connection (the library reports a reset, a timeout or a
                        // loss): again, after a pause short enough not to matter and long enough
                        // that an error that came at once cannot make this a busy loop.
                        Err(_) => Some(every / 20),
                    },
                };
                if let Some(pause) = pause
                    && in_flight.len() < MAX_BEATS_IN_FLIGHT
                {
                    let (client, path) = (client.clone(), path.clone());
                    in_flight.push(async move {
                        tokio::time::sleep(pause).await;
                        let sent = now();
                        (sent, client.check_stat(&path).await)
                    });
                }
            }
        }));
    }

    /// Resolves when the session is over for good: expired, closed or refused authentication.
    /// Disconnections are logged and waited out, as the library reconnects by itself.
    pub async fn ended(&self) -> String {
        let mut states = self.client.state_watcher();
        let mut state = states.peek_state();
        loop {
            match state {
                SessionState::Expired => return "the ZooKeeper session expired".into(),
                SessionState::Closed => return "the ZooKeeper session was closed".into(),
                SessionState::AuthFailed => return "ZooKeeper refused authentication".into(),
                SessionState::Disconnected => {
                    tracing::info!("disconnected from ZooKeeper; reconnecting")
                }
                other => tracing::debug!(state = %other, "session state"),
            }
            state = states.changed().await;
        }
    }

    /// Creates `path`, and when its parent is missing creates the folders above it (persistent,
    /// empty) and tries once more. Folders are made only on demand because they almost always
    /// exist, and checking first would cost a request on every run. Concurrent runs may create
    /// the same folder at once; "node exists" for a folder is success.
    pub async fn create_with_parents(
        &self,
        path: &str,
        data: &[u8],
        mode: CreateMode,
    ) -> std::result::Result<
        (zookeeper_client::Stat, zookeeper_client::CreateSequence),
        zookeeper_client::Error,
    > {
        let options = mode.with_acls(Acls::anyone_all());
        match self.client.create(path, data, &options).await {
            Err(zookeeper_client::Error::NoNode) => {
                let parent = &path[..path.rfind('/').unwrap_or(0)];
                if !parent.is_empty() {
                    let folder = CreateMode::Persistent.with_acls(Acls::anyone_all());
                    self.client.mkdir(parent, &folder).await?;
                }
                self.client.create(path, data, &options).await
            }
            other => other,
        }
    }

    /// Stops the heartbeat, closes the session (deleting whatever ephemerals are left) and
    /// waits briefly for the servers to confirm.
    pub async fn close(mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
            let _ = h.await;
        }
        let mut states = self.client.state_watcher();
        // The library sends CloseSession once the last handle is dropped.
        drop(self.client);
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

/// The send time of the newest acknowledged request, and the deadlines derived from it.
#[derive(Clone, Debug)]
pub struct Liveness {
    acked_at_ns: Arc<AtomicU64>,
    /// The negotiated session timeout.
    pub timeout: Duration,
}

impl Liveness {
    fn new(timeout: Duration, acked_at: Duration) -> Liveness {
        Liveness {
            acked_at_ns: Arc::new(AtomicU64::new(acked_at.as_nanos() as u64)),
            timeout,
        }
    }

    /// Records that a request sent at `sent` was answered.
    pub fn acknowledged(&self, sent: Duration) {
        self.acked_at_ns
            .fetch_max(sent.as_nanos() as u64, Ordering::SeqCst);
    }

    pub fn acked_at(&self) -> Duration {
        Duration::from_nanos(self.acked_at_ns.load(Ordering::SeqCst))
    }

    /// Slack for our own timer and for the kernel to deliver SIGKILL, taken off the deadline.
    pub fn margin(&self) -> Duration {
        (self.timeout / 10).max(Duration::from_millis(100))
    }

    /// The moment after which we give up on the session and start stopping CMD: half the
    /// timeout without an answer. A failover or rolling restart reconnects well within it.
    pub fn stale_at(&self) -> Duration {
        self.acked_at() + self.timeout / 2
    }

    /// CMD must be dead by this moment: the servers may expire the session no earlier than
    /// `timeout` after they last heard from us, and they heard our last acknowledged request.
    pub fn kill_deadline(&self) -> Duration {
        self.acked_at() + self.timeout - self.margin()
    }
}

/// Maps a ZooKeeper error met while reading or writing `path` to our exit codes.
pub fn zk_error(op: &str, path: &str, err: zookeeper_client::Error) -> Error {
    match err {
        zookeeper_client::Error::SessionExpired
        | zookeeper_client::Error::ConnectionLoss
        | zookeeper_client::Error::ClientClosed => Error::Unavailable(format!(
            "{op} {path}: {err}; ZooKeeper went away during the run"
        )),
        zookeeper_client::Error::NoAuth => {
            Error::Config(format!("{op} {path}: not authorized by the znode's ACL"))
        }
        // Anything else we did not plan for is internal (70), with the operation and znode.
        other => Error::Internal(format!("{op} {path}: {other}")),
    }
}

impl Session {
    /// Creates an ephemeral sequential node `{stem}{seq10}` and returns its full path. If the
    /// reply is lost, the create may or may not have happened; rather than leave an orphan (or
    /// create twice), we look for a node under the stem that our session owns.
    pub async fn create_sequential(&self, stem: &str, data: &[u8]) -> Result<String> {
        let (folder, base) = stem.rsplit_once('/').expect("a stem is an absolute path");
        loop {
            match self
                .create_with_parents(stem, data, CreateMode::EphemeralSequential)
                .await
            {
                Ok((_, seq)) => return Ok(format!("{stem}{seq}")),
                Err(zookeeper_client::Error::ConnectionLoss) => {
                    if let Some(path) = self.find_own_child(folder, base).await? {
                        return Ok(path);
                    }
                }
                Err(zookeeper_client::Error::NoNode) => {
                    return Err(Error::Config(format!(
                        "cannot create {stem}...: the chroot in zkhosts does not exist in ZooKeeper"
                    )));
                }
                Err(e) => return Err(zk_error("create", stem, e)),
            }
        }
    }

    /// The child of `folder` named `{base}...` whose ephemeral owner is our session, if any.
    async fn find_own_child(&self, folder: &str, base: &str) -> Result<Option<String>> {
        loop {
            let children = match self.client.list_children(folder).await {
                Ok(c) => c,
                Err(zookeeper_client::Error::ConnectionLoss) => continue,
                Err(zookeeper_client::Error::NoNode) => return Ok(None),
                Err(e) => return Err(zk_error("list", folder, e)),
            };
            for child in children.iter().filter(|c| c.starts_with(base)) {
                let path = format!("{folder}/{child}");
                if let Ok(Some(stat)) = self.client.check_stat(&path).await
                    && stat.ephemeral_owner == self.id()
                {
                    return Ok(Some(path));
                }
            }
            return Ok(None);
        }
    }

    /// Deletes a node of ours; one that is already gone is fine, and a delete cut short by a
    /// reconnect is sent again (the client holds it until it is connected).
    pub async fn delete_own(&self, path: &str) -> Result<()> {
        loop {
            match self.client.delete(path, None).await {
                Ok(()) | Err(zookeeper_client::Error::NoNode) => return Ok(()),
                Err(zookeeper_client::Error::ConnectionLoss) => continue,
                Err(e) => return Err(zk_error("delete", path, e)),
            }
        }
    }
}

/// The sequence number ZooKeeper appended to a sequential node's name: the digits after the
/// last `-` or `_`.
pub fn sequence_of(name: &str) -> Option<i64> {
    let digits = &name[name.rfind(['-', '_'])? + 1..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl Session {
    /// Resolves, with the reason, when our node at `path` is gone: deleted (by anyone), replaced
    /// by a node with another creation zxid than `czxid`, or lost with the session. `what` names
    /// the node in the reason ("lock node"). Driven by the watch event, never by polling.
    pub async fn node_gone(&self, what: &str, path: &str, czxid: Option<i64>) -> String {
        loop {
            match self.client.check_and_watch_stat(path).await {
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
                // Transient: the library reconnects; liveness decides if it takes too long.
                Err(zookeeper_client::Error::ConnectionLoss) => {
                    tokio::time::sleep(self.liveness.timeout / 20).await;
                }
                Err(e) => return format!("cannot watch {what} {path}: {e}"),
            }
        }
    }
}
