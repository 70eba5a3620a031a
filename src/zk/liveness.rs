//! Our own record of the session's liveness, and the deadlines derived from it.
//!
//! The client library reconnects to another server on its own, keeping the session, so a
//! disconnect is not a loss. What we must know is the latest moment at which the servers may
//! already have expired the session. Only the leader expires sessions, no earlier than the
//! session timeout after it last heard of ours, so we keep our own record, `acked`: a moment
//! before which the leader is proven to have heard of the session. Everything CMD's safety hangs
//! on is derived from that one number; the heartbeat (`heartbeat.rs`) moves it, and
//! docs/safety.md's "Why two hosts never run the job at once" has the argument in full.
//!
//! Proving costs the leader a `sync` a beat, so only a run that may start CMD soon proves:
//! one that holds what CMD needs, or is first in its line ([`Liveness::warm_up`]). A run
//! further back only keeps its session alive, as any client does, and proves when its turn
//! nears.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use super::clock::now;

/// The moment before which the leader has heard of our session, and the deadlines derived
/// from it.
#[derive(Clone, Debug)]
pub struct Liveness {
    acked_at_ns: Arc<AtomicU64>,
    /// The last moment a server answered us: a reply's arrival, or a reconnect's request.
    heard_at_ns: Arc<AtomicU64>,
    /// Woken whenever the deadlines move: `acked` moved, or the session expired.
    moved: Arc<Notify>,
    /// Set once the servers have told us the session expired: nothing is left to wait for.
    expired: Arc<AtomicBool>,
    /// Set once the run may start CMD soon, and the heartbeat proves (see `heartbeat.rs`).
    warm: Arc<AtomicBool>,
    warmed: Arc<Notify>,
    /// The negotiated session timeout.
    pub timeout: Duration,
    /// The ensemble's `tickTime` (config `server_tick_time`).
    pub tick: Duration,
}

impl Liveness {
    pub(super) fn new(timeout: Duration, tick: Duration, acked_at: Duration) -> Liveness {
        let at = acked_at.as_nanos() as u64;
        Liveness {
            acked_at_ns: Arc::new(AtomicU64::new(at)),
            heard_at_ns: Arc::new(AtomicU64::new(at)),
            moved: Arc::new(Notify::new()),
            expired: Arc::new(AtomicBool::new(false)),
            warm: Arc::new(AtomicBool::new(false)),
            warmed: Arc::new(Notify::new()),
            timeout,
            tick,
        }
    }

    /// Records that the leader has heard of the session at or after `at`.
    pub(super) fn acknowledged(&self, at: Duration) {
        self.heard(at);
        self.acked_at_ns
            .fetch_max(at.as_nanos() as u64, Ordering::SeqCst);
        self.moved.notify_waiters();
    }

    /// Records that a server answered us at `at`; it proves nothing of the leader.
    pub(super) fn heard(&self, at: Duration) {
        self.heard_at_ns
            .fetch_max(at.as_nanos() as u64, Ordering::SeqCst);
    }

    /// Asks the heartbeat to prove from now on: the run holds what CMD needs, or is first in
    /// line for it. Once warm, always warm.
    pub fn warm_up(&self) {
        if !self.warm.swap(true, Ordering::SeqCst) {
            self.warmed.notify_one();
        }
    }

    pub fn is_warm(&self) -> bool {
        self.warm.load(Ordering::SeqCst)
    }

    /// Resolves once [`Liveness::warm_up`] has been called (at once if it was before).
    pub(super) async fn warmed(&self) {
        if !self.is_warm() {
            self.warmed.notified().await;
        }
    }

    /// Waits until the record is fresh (short of [`Liveness::stale_at`]); `false` if the
    /// session is known to have expired, or no server has answered us for a session timeout.
    /// A run that waited cold, or through a stall, takes the lock with a stale record, and a
    /// proof comes within two round trips of a `sync` (or of the reconnect): CMD starts then,
    /// rather than not at all.
    pub async fn wait_fresh(&self) -> bool {
        loop {
            // Made before the check, so that a renewal between the two is not missed.
            let moved = self.moved();
            let t = now();
            if t < self.stale_at() {
                return true;
            }
            if self.is_expired() || t >= self.retry_until() {
                return false;
            }
            let _ = tokio::time::timeout(self.retry_until() - t, moved).await;
        }
    }

    /// Records that the servers reported the session expired. The lock may already be someone
    /// else's, so every deadline is now.
    pub fn expired(&self) {
        self.expired.store(true, Ordering::SeqCst);
        self.moved.notify_waiters();
    }

    /// Resolves when the deadlines move (a renewal, or news of expiry). Take it before reading
    /// them, so that a move in between is not missed: a waiter that sleeps until a deadline
    /// must not sleep through one brought forward.
    pub fn moved(&self) -> tokio::sync::futures::Notified<'_> {
        self.moved.notified()
    }

    pub fn is_expired(&self) -> bool {
        self.expired.load(Ordering::SeqCst)
    }

    pub fn acked_at(&self) -> Duration {
        Duration::from_nanos(self.acked_at_ns.load(Ordering::SeqCst))
    }

    fn heard_at(&self) -> Duration {
        Duration::from_nanos(self.heard_at_ns.load(Ordering::SeqCst))
    }

    /// Slack for our own timer and for the kernel to deliver SIGKILL, taken off the deadline.
    pub fn margin(&self) -> Duration {
        (self.timeout / 20).max(Duration::from_millis(100))
    }

    /// The longest grace between SIGTERM and SIGKILL that a stop for staleness gives CMD: the
    /// stop begins that long before the kill deadline, so a longer grace would only stop CMD
    /// sooner after an outage that the session survives. A tenth of the timeout, but not less
    /// than half a second (a fifth of a timeout under 2.5 s), which a shell's trap may need
    /// on a busy machine.
    pub fn most_grace(&self) -> Duration {
        (self.timeout / 10).max(Duration::from_millis(500).min(self.timeout / 5))
    }

    /// The moment at which a stop with a grace of `grace` (at most [`Liveness::most_grace`])
    /// must begin, short of a new proof; at once if the session is known to have expired.
    pub fn stop_at(&self, grace: Duration) -> Duration {
        self.kill_deadline()
            .saturating_sub(grace.min(self.most_grace()))
    }

    /// The moment after which CMD is not started: a stop with the longest grace would be due.
    pub fn stale_at(&self) -> Duration {
        self.stop_at(self.most_grace())
    }

    /// CMD must be dead by this moment: the leader may expire the session no earlier than
    /// `timeout` after it last heard of it, which was no earlier than `acked`. At once if the
    /// session is known to have expired.
    pub fn kill_deadline(&self) -> Duration {
        self.expires_at().saturating_sub(self.margin())
    }

    /// The earliest moment at which the servers may have expired the session.
    pub fn expires_at(&self) -> Duration {
        if self.is_expired() {
            return Duration::ZERO;
        }
        self.acked_at() + self.timeout
    }

    /// Requests that fail with their connection are made again until then (see `access`): a
    /// session timeout after the servers last answered us (or proved more). A run that does
    /// not prove (see [`Liveness::warm_up`]) has no `acked` to go by, and the client library
    /// reconnects within that time if the servers still have the session.
    pub fn retry_until(&self) -> Duration {
        if self.is_expired() {
            return Duration::ZERO;
        }
        self.acked_at().max(self.heard_at()) + self.timeout
    }

    /// A pause between retries: short enough not to matter, long enough that an error that
    /// comes at once cannot make a busy loop.
    pub fn retry_pause(&self) -> Duration {
        self.timeout / 20
    }
}
