//! The one reader of ZooKeeper behind everything `serve` answers: one session, one persistent
//! watch on the prefix while a browser follows the event stream, and at most one pass per
//! [`MIN_INTERVAL`], whose view every page, stream and answer shares.
//!
//! - **Following**: while an event stream is open (and for [`LINGER`] after the last one
//!   closes, so that a reload finds it still set), a persistent recursive watch reports every
//!   change below the prefix; each change that can alter the view (as `status --watch` decides)
//!   calls for a pass, and changes that come during a pass or within [`MIN_INTERVAL`] of its
//!   start are folded into the next one. Between changes the view is current, and a page or an
//!   answer costs no request at all.
//! - **Asked**: a page, `/api/status` or `/metrics` with no current view takes a ticket and
//!   waits for a view whose pass began after it; tickets taken meanwhile share that pass.
//! - **Idle**: with no stream and no ticket there is no watch and no pass; the session costs
//!   its pings. A session that ended is made anew only when someone asks.
//! - **A job's page** asks for two nodes (its history and its record), read between passes.
//!
//! ZooKeeper going away is part of the view: a lost connection is published at once as an
//! outage (the page shows a banner over what was last read), and the first good pass after it
//! clears it.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::{Notify, oneshot, watch};
use tokio::time::Instant;
use zookeeper_client::{
    EventType, PersistentWatcher, SessionState, Stat, StateWatcher, WatchedEvent,
};

use super::page;
use crate::config::Config;
use crate::ctl::status::pass::{self, Filter, Snapshot};
use crate::timestamp;
use crate::zk::{Paths, Session};

/// At most this often a pass: a busy prefix (leases taken and given back every few ms) must not
/// keep the server reading the whole prefix in a loop, however many browsers watch.
pub const MIN_INTERVAL: Duration = Duration::from_millis(250);

/// How long the watch outlives the last event stream.
const LINGER: Duration = Duration::from_secs(10);

/// After a pass or a connect that failed, the next try waits this long.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Why what is shown may no longer be so.
#[derive(Debug, Clone)]
pub struct Outage {
    /// Since when, ms since the epoch on this host's clock.
    pub since: i64,
    pub why: String,
}

/// What every reader is shown, as one pass (or a lost connection) left it.
#[derive(Clone)]
pub struct View {
    /// Counts the views published: the event stream's id, so a page applies only newer ones.
    pub seq: u64,
    /// The tickets it answers: all up to this one.
    covers: u64,
    /// What the last good pass read; `None` before any.
    pub snapshot: Option<Arc<Snapshot>>,
    /// Set while ZooKeeper cannot be read.
    pub outage: Option<Outage>,
    /// The view as an event of the stream, made once for every stream.
    pub event: hyper::body::Bytes,
}

impl View {
    /// This view, marked as no longer vouched for, since now, for the reason `why`.
    pub fn overdue(&self, why: String) -> View {
        let since = timestamp::now_ms();
        View {
            outage: Some(Outage { since, why }),
            ..self.clone()
        }
    }
}

/// What a read of nodes found: each one's data and stat, `None` where there is none; or why
/// nothing could be read.
pub type Nodes = Result<Vec<Option<(Vec<u8>, Stat)>>, String>;

/// What the readers and the hub's task share. Everything runs on switchmanctl's one thread.
pub struct Hub {
    prefix: String,
    views: watch::Sender<Arc<View>>,
    /// Event streams open now.
    streams: Cell<usize>,
    /// Tickets handed out (see [`Hub::fresh`]).
    tickets: Cell<u64>,
    /// The latest view is current: the watch is set and nothing changed since its pass began.
    current: Cell<bool>,
    /// Nodes a page of its own asks for (a job's history), read between passes, and where to
    /// send what was found.
    reads: RefCell<Vec<(Vec<String>, oneshot::Sender<Nodes>)>>,
    wake: Notify,
}

impl Hub {
    pub fn new(prefix: &str) -> Hub {
        let first = View {
            seq: 0,
            covers: 0,
            snapshot: None,
            outage: None,
            event: page::event(prefix, 0, None, None),
        };
        Hub {
            prefix: prefix.to_string(),
            views: watch::Sender::new(Arc::new(first)),
            streams: Cell::new(0),
            tickets: Cell::new(0),
            current: Cell::new(false),
            reads: RefCell::default(),
            wake: Notify::new(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A view no older than this call: the current one if the watch vouches for it, else the
    /// one the next pass makes (or the outage that stops it).
    pub async fn fresh(&self) -> Arc<View> {
        if self.current.get() {
            return self.views.borrow().clone();
        }
        let ticket = self.tickets.get() + 1;
        self.tickets.set(ticket);
        self.wake.notify_one();
        let mut views = self.views.subscribe();
        loop {
            let view = views.borrow_and_update().clone();
            if view.covers >= ticket {
                return view;
            }
            // The sender lives as long as the hub.
            let _ = views.changed().await;
        }
    }

    /// The latest view, whatever its age.
    pub fn latest(&self) -> Arc<View> {
        self.views.borrow().clone()
    }

    /// The data of the nodes at `paths`, read with the hub's session between passes.
    pub async fn read(&self, paths: Vec<String>) -> Nodes {
        let (answer, answered) = oneshot::channel();
        self.reads.borrow_mut().push((paths, answer));
        self.wake.notify_one();
        answered
            .await
            .unwrap_or_else(|_| Err("the server is stopping".to_string()))
    }

    /// The views from the latest on, for an event stream; the watch is set while any is open.
    pub fn follow(&self) -> watch::Receiver<Arc<View>> {
        self.streams.set(self.streams.get() + 1);
        self.wake.notify_one();
        self.views.subscribe()
    }

    /// An event stream closed.
    pub fn unfollow(&self) {
        self.streams.set(self.streams.get() - 1);
        self.wake.notify_one();
    }

    fn publish(&self, covers: u64, snapshot: Option<Arc<Snapshot>>, outage: Option<Outage>) {
        let seq = self.views.borrow().seq + 1;
        let event = page::event(&self.prefix, seq, snapshot.as_deref(), outage.as_ref());
        self.views.send_replace(Arc::new(View {
            seq,
            covers,
            snapshot,
            outage,
            event,
        }));
    }

    fn asked(&self) -> bool {
        self.tickets.get() > self.views.borrow().covers
    }
}

/// The hub's task: what it keeps between passes.
pub struct Reader {
    config: Config,
    paths: Paths,
    session: Option<(Session, StateWatcher)>,
    watch: Option<PersistentWatcher>,
    /// Something may have changed since the last pass began.
    dirty: bool,
    /// No pass or connect before this.
    next_try: Instant,
    /// When the last stream closed, while the watch lingers.
    unfollowed: Option<Instant>,
    last_good: Option<Arc<Snapshot>>,
    outage: Option<Outage>,
}

impl Reader {
    pub fn new(config: Config, session: Session) -> Reader {
        let states = session.states();
        Reader {
            paths: Paths::new(&config.prefix),
            config,
            session: Some((session, states)),
            watch: None,
            dirty: true,
            next_try: Instant::now(),
            unfollowed: None,
            last_good: None,
            outage: None,
        }
    }

    /// Serves `hub` until dropped.
    pub async fn run(&mut self, hub: &Hub) {
        loop {
            self.step(hub).await;
        }
    }

    /// Closes the session, and its watch with it.
    pub async fn close(self) {
        drop(self.watch);
        if let Some((session, _)) = self.session {
            session.close().await;
        }
    }

    /// One turn: connect, set or drop the watch, make a pass, or wait for a reason to.
    async fn step(&mut self, hub: &Hub) {
        let following = hub.streams.get() > 0;
        if self.session.is_none() {
            if !(following || hub.asked()) {
                return hub.wake.notified().await;
            }
            let options = self.config.zk();
            let next_try = self.next_try;
            let connecting = async move {
                tokio::time::sleep_until(next_try).await;
                Session::connect(&options).await
            };
            tokio::pin!(connecting);
            let connected = loop {
                // Whoever asks meanwhile is told at once, not after connect_timeout.
                if hub.asked() {
                    self.lost(hub, self.why());
                }
                for (_, answer) in hub.reads.take() {
                    let _ = answer.send(Err(self.why()));
                }
                tokio::select! {
                    connected = &mut connecting => break connected,
                    _ = hub.wake.notified() => {}
                }
            };
            match connected {
                Ok(session) => {
                    let states = session.states();
                    self.session = Some((session, states));
                    self.dirty = true;
                }
                Err(e) => self.failed(hub, e.to_string()),
            }
            return;
        }
        match (following, self.unfollowed) {
            (true, _) => self.unfollowed = None,
            (false, None) if self.watch.is_some() => self.unfollowed = Some(Instant::now()),
            (false, Some(at)) if at.elapsed() >= LINGER => {
                // Dropping it asks the servers to remove it.
                self.watch = None;
                self.unfollowed = None;
                hub.current.set(false);
            }
            _ => {}
        }
        let why = self.why();
        let (session, states) = self.session.as_mut().expect("checked above");
        let connected = is_connected(states.peek_state());
        for (paths, answer) in hub.reads.take() {
            let read = match connected {
                true => session
                    .data_pipelined(&paths)
                    .await
                    .map_err(|e| e.to_string()),
                false => Err(why.clone()),
            };
            let _ = answer.send(read);
        }
        if !connected && hub.asked() {
            // Whoever asks meanwhile is told at once.
            return self.lost(hub, why);
        }
        let want_watch = following && self.watch.is_none() && connected;
        if want_watch && Instant::now() >= self.next_try {
            // Set before the pass, so that no change between the two can go unseen.
            let mut reconnected = false;
            let set = tokio::select! {
                set = session.watch_tree(self.paths.prefix()) => Ok(set),
                state = disconnected(states, &mut reconnected) => Err(state),
            };
            self.dirty |= reconnected;
            match set {
                Ok(Ok(watch)) => {
                    self.watch = Some(watch);
                    self.dirty = true;
                }
                Ok(Err(e)) => self.failed(hub, e.to_string()),
                Err(state) => self.state(hub, state),
            }
            return;
        }
        let needed = connected && (hub.asked() || (self.watch.is_some() && self.dirty));
        if needed && Instant::now() >= self.next_try {
            return self.pass(hub).await;
        }
        let linger_ends = self.unfollowed.map(|at| at + LINGER);
        let (_, states) = self.session.as_mut().expect("checked above");
        tokio::select! {
            _ = hub.wake.notified() => {}
            state = states.changed() => self.state(hub, state),
            event = next_event(&mut self.watch) => self.event(hub, &event),
            _ = tokio::time::sleep_until(self.next_try), if needed || want_watch => {}
            _ = tokio::time::sleep_until(linger_ends.unwrap_or(self.next_try)),
                if linger_ends.is_some() => {}
        }
    }

    /// One pass, given up as soon as the connection is lost (the outage is shown at once, not
    /// after the retries of a session timeout).
    async fn pass(&mut self, hub: &Hub) {
        let covering = hub.tickets.get();
        self.dirty = false;
        hub.current.set(false);
        self.next_try = Instant::now() + MIN_INTERVAL;
        let (session, states) = self.session.as_mut().expect("a pass has a session");
        let everything = Filter::default();
        // Either what the pass read, or the state the session fell into before it ended.
        let mut reconnected = false;
        let read = tokio::select! {
            read = pass::read(session, &self.paths, &everything) => Ok(read),
            state = disconnected(states, &mut reconnected) => Err(state),
        };
        self.dirty |= reconnected;
        match read {
            Ok(Ok(snapshot)) => {
                let snapshot = Arc::new(snapshot);
                self.last_good = Some(snapshot.clone());
                self.outage = None;
                hub.publish(covering, Some(snapshot), None);
                // Changes that came during the pass may or may not be in it.
                while let Some(event) = self.watch.as_mut().and_then(|w| w.changed().now_or_never())
                {
                    self.event(hub, &event);
                }
                hub.current.set(self.watch.is_some() && !self.dirty);
            }
            Ok(Err(e)) => self.failed(hub, e.to_string()),
            Err(state) => self.state(hub, state),
        }
    }

    /// A change below the prefix, or the session's news.
    fn event(&mut self, hub: &Hub, event: &WatchedEvent) {
        match event.event_type {
            // The library allows no wait on the watch after the session's end.
            EventType::Session if event.session_state.is_terminated() => self.watch = None,
            // The session's states come through `states` too.
            EventType::Session => {}
            _ if Filter::default().shows(&self.paths, &event.path) => {
                self.dirty = true;
                hub.current.set(false);
            }
            _ => {}
        }
    }

    fn state(&mut self, hub: &Hub, state: SessionState) {
        match state {
            // The servers do not replay what changed while we were away (ZOOKEEPER-4698).
            s if is_connected(s) => self.dirty = true,
            s if s.is_terminated() => {
                self.session = None;
                self.watch = None;
                self.lost(
                    hub,
                    format!("the ZooKeeper session ended ({s}); reconnecting"),
                );
            }
            _ => self.lost(hub, DISCONNECTED.to_string()),
        }
    }

    /// A pass, a watch or a connect that failed: shown, and tried again after a pause.
    fn failed(&mut self, hub: &Hub, why: String) {
        self.next_try = Instant::now() + RETRY_PAUSE;
        self.dirty = true;
        self.lost(hub, why);
    }

    /// Why ZooKeeper cannot be read, as last found.
    fn why(&self) -> String {
        self.outage
            .as_ref()
            .map_or_else(|| DISCONNECTED.to_string(), |o| o.why.clone())
    }

    /// Publishes that what is shown may no longer be so; an outage keeps its first moment.
    fn lost(&mut self, hub: &Hub, why: String) {
        hub.current.set(false);
        let since = self
            .outage
            .as_ref()
            .map_or_else(timestamp::now_ms, |o| o.since);
        self.outage = Some(Outage { since, why });
        hub.publish(
            hub.tickets.get(),
            self.last_good.clone(),
            self.outage.clone(),
        );
    }
}

const DISCONNECTED: &str = "lost the connection to ZooKeeper; reconnecting";

fn is_connected(state: SessionState) -> bool {
    matches!(
        state,
        SessionState::SyncConnected | SessionState::ConnectedReadOnly
    )
}

/// Resolves with the first state that is not connected. A connection lost and made again
/// meanwhile sets `reconnected`: the servers do not replay what changed while we were away.
async fn disconnected(states: &mut StateWatcher, reconnected: &mut bool) -> SessionState {
    let mut state = states.peek_state();
    while is_connected(state) {
        state = states.changed().await;
        *reconnected = true;
    }
    state
}

async fn next_event(watch: &mut Option<PersistentWatcher>) -> WatchedEvent {
    match watch {
        Some(watch) => watch.changed().await,
        None => std::future::pending().await,
    }
}
