//! `status --watch`: the view drawn again whenever something it shows changes, until ^C.
//!
//! One persistent recursive watch on the prefix (ZooKeeper 3.6 or later) reports every change
//! below it, so an idle prefix costs no request at all beyond the session's own pings, and
//! nothing is polled. The watch belongs to our session: it is removed when we stop, and goes
//! with the session in any case (closed on ^C or SIGTERM, expired if we are killed). We create
//! no node.

use std::io::IsTerminal;
use std::time::Duration;

use futures::FutureExt;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::time::Instant;
use zookeeper_client::{EventType, SessionState, WatchedEvent};

use super::pass::{self, Filter, Snapshot};
use super::render;
use crate::ctl::{Failure, Outcome, print};
use crate::error::Error;
use crate::zk::{Paths, Session};

/// At most this often a pass: a busy prefix (leases taken and given back every few ms) must not
/// turn the watcher into a full read of the prefix in a loop.
const MIN_INTERVAL: Duration = Duration::from_millis(250);

/// SIGINT, SIGTERM and SIGHUP: the ways to stop a watcher, each ending it cleanly.
struct Stop([Signal; 3]);

impl Stop {
    fn new() -> std::result::Result<Stop, Failure> {
        let on = |kind| {
            signal(kind).map_err(|e| Failure {
                code: crate::exit::INTERNAL.value,
                message: format!("cannot handle signals: {e}"),
            })
        };
        Ok(Stop([
            on(SignalKind::interrupt())?,
            on(SignalKind::terminate())?,
            on(SignalKind::hangup())?,
        ]))
    }

    async fn requested(&mut self) {
        let [int, term, hup] = &mut self.0;
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
            _ = hup.recv() => {}
        }
    }
}

pub async fn watch(session: &Session, paths: &Paths, filter: &Filter, json: bool) -> Outcome {
    let mut stop = Stop::new()?;
    let tty = std::io::stdout().is_terminal();
    // Set before the first pass, so that no change between the two can go unseen.
    let mut watcher = session.watch_tree(paths.prefix()).await?;
    loop {
        let began = Instant::now();
        match pass::read(session, paths, filter).await {
            Ok(snapshot) => print(frame(&snapshot, filter, json, tty))?,
            // The reconnect brings a session event, and with it the next pass.
            Err(Error::Unavailable(why)) => eprintln!("switchmanctl: {why}; waiting for ZooKeeper"),
            Err(e) => return Err(e.into()),
        }
        let mut changed = false;
        while !changed {
            tokio::select! {
                event = watcher.changed() => changed = matters(&event, paths, filter)?,
                _ = stop.requested() => return Ok(0),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep_until(began + MIN_INTERVAL) => {}
            _ = stop.requested() => return Ok(0),
        }
        // Whatever else changed meanwhile is in the next pass already.
        while let Some(event) = watcher.changed().now_or_never() {
            matters(&event, paths, filter)?;
        }
    }
}

/// Whether `event` calls for a new pass. A reconnect does: the servers do not replay what
/// changed while we were away (ZOOKEEPER-4698). The end of the session ends the watcher (the
/// library allows no wait after it).
fn matters(
    event: &WatchedEvent,
    paths: &Paths,
    filter: &Filter,
) -> std::result::Result<bool, Failure> {
    match (event.event_type, event.session_state) {
        (EventType::Session, state) if state.is_terminated() => Err(Error::Unavailable(format!(
            "the ZooKeeper session ended ({state}); nothing more to watch"
        ))
        .into()),
        (EventType::Session, SessionState::SyncConnected | SessionState::ConnectedReadOnly) => {
            Ok(true)
        }
        (EventType::Session, _) => Ok(false),
        _ => Ok(filter.shows(paths, &event.path)),
    }
}

/// One redraw: on a terminal, the screen cleared first; in a pipe, frames one after another,
/// each starting with its header line (or one JSON object per line).
fn frame(snapshot: &Snapshot, filter: &Filter, json: bool, tty: bool) -> String {
    if json {
        return format!("{}\n", render::json(snapshot));
    }
    let view = render::people(snapshot, filter);
    if tty {
        format!("\x1b[H\x1b[2J{view}")
    } else {
        format!("{view}\n")
    }
}
