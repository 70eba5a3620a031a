//! Our own record of the session's liveness, and the heartbeat that keeps it fresh.
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
use zookeeper_client::Client;

/// Beats sent and not yet answered, at most (a session timeout's worth).
const MAX_BEATS_IN_FLIGHT: usize = 6;

/// Now, on the clock that counts through suspend.
pub fn now() -> Duration {
    let ts = clock_gettime(ClockId::CLOCK_BOOTTIME)
        .expect("CLOCK_BOOTTIME is always available on Linux");
    Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32)
}

/// The send time of the newest acknowledged request, and the deadlines derived from it.
#[derive(Clone, Debug)]
pub struct Liveness {
    acked_at_ns: Arc<AtomicU64>,
    /// The negotiated session timeout.
    pub timeout: Duration,
}

impl Liveness {
    pub(super) fn new(timeout: Duration, acked_at: Duration) -> Liveness {
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

    /// The earliest moment at which the servers may have expired the session. Requests that
    /// fail with their connection are retried until then (see `access`).
    pub fn expires_at(&self) -> Duration {
        self.acked_at() + self.timeout
    }

    /// A pause between retries: short enough not to matter, long enough that an error that
    /// comes at once cannot make a busy loop.
    pub fn retry_pause(&self) -> Duration {
        self.timeout / 20
    }
}

/// Starts refreshing `liveness` with a cheap read of `path` every sixth of the session timeout.
/// A stop begins after half the timeout without an answer, so an outage of the ensemble (an
/// election, a restart) of up to a third of the timeout goes unnoticed by CMD: the silence it
/// causes is at most the outage plus one interval.
///
/// That holds because no beat is ever given up on. Beats go out on a fixed cadence whether or
/// not the earlier ones were answered, and each counts, with its own send time, whenever its
/// reply comes: a beat caught in a short cut is answered once the cut heals, which proves the
/// servers heard us after it was sent. And a beat that fails with its connection (reset, lost,
/// timed out) is sent again at once; the client library holds it until it has reconnected, so
/// the first answer after a server restart refreshes the record, rather than one an interval
/// later (a rolling restart costs a beat per server).
pub(super) fn heartbeat(client: Client, liveness: Liveness, path: String) -> JoinHandle<()> {
    let every = liveness.timeout / 6;
    tokio::spawn(async move {
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
                    // The session is over: nothing to refresh; `Session::ended` reports it.
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
    })
}
