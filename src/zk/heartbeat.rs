//! The heartbeat: what keeps the session alive, and what proves to us that it is.
//!
//! A follower answers reads on its own, so an answered read proves nothing of the leader: a
//! follower cut off from its leader keeps answering until it notices, `syncLimit × tickTime`
//! later, while the leader may already have expired us. A `sync` must be forwarded to the
//! leader; but the leader does not renew a session when a follower forwards its request: it
//! learns of the follower's sessions from the follower's replies to its pings, one every half
//! tick. [`Chain`] turns answered beats into what they prove of those pings. A reconnect proves
//! at once: the server that takes the session over has the leader renew it first.
//!
//! Two paces, chosen by [`Liveness::warm_up`]:
//!
//! - **cold**, for a run that only waits: an `exists` every [`cold_every`] (T/4), which the
//!   server answers itself. It keeps the session alive as the client library's ping would, and
//!   costs the leader nothing; each answer is kept as the first link of a later proof.
//! - **warm**, for a run that holds what CMD needs or is first in line: a `sync` every
//!   [`warm_every`] (about T/10, at most one a second at T = 10 s). A run that turns warm after
//!   waiting cold sends two at once, so that its first proof, resting on the cold beats before,
//!   comes within two round trips.
//!
//! No beat is ever given up on. Beats go out on a fixed cadence whether or not the earlier ones
//! were answered, and each counts, with its own send time, whenever its reply comes. A beat that
//! fails with its connection (reset, lost, timed out) is sent again at once; the client library
//! holds it until it has reconnected.

use std::collections::VecDeque;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::task::JoinHandle;
use zookeeper_client::{Client, SessionState};

use super::clock::{Alarm, Sample, now};
use super::liveness::Liveness;

/// Beats sent and not yet answered, at most (a session timeout's worth).
const MAX_BEATS_IN_FLIGHT: usize = 20;

/// Answered beats remembered for [`Chain`]: several session timeouts' worth.
const BEATS_REMEMBERED: usize = 64;

/// Clock samples remembered to place a reconnect's instant (see [`Sample`]).
const SAMPLES_REMEMBERED: usize = 8;

/// The cold pace: as often as the Java client pings an idle session (a third of the timeout),
/// a little more, so that the client library, which pings after a third of idleness, never
/// has to.
pub fn cold_every(timeout: Duration) -> Duration {
    timeout / 4
}

/// The warm pace: about T/10, at most one beat per T/10. A proof needs the beat before last to
/// have been answered a tick before the last was sent (see [`Chain`]), so the pace is set for
/// whole beats to span a tick and a round trip, which makes a proof trail by that span and two
/// beats at most: 4.1 s at T = 10 s and tick 2 s (beats 1.025 s apart), 1.2 s at T = 4 s and
/// tick 100 ms (0.4 s apart).
pub fn warm_every(timeout: Duration, tick: Duration) -> Duration {
    let fastest = timeout / 10;
    let span = tick + round_trip(timeout);
    let beats = (span.as_secs_f64() / fastest.as_secs_f64())
        .floor()
        .max(1.0);
    span.div_f64(beats).max(fastest)
}

/// A round trip through the leader, at most, for the pace's arithmetic; a slower answer only
/// makes that beat's proof a beat older.
fn round_trip(timeout: Duration) -> Duration {
    timeout / 200
}

/// A number in [0, 1), different in every process: std's hasher keys are random per process.
fn random_fraction() -> f64 {
    use std::hash::BuildHasher;
    let bits = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// Starts the heartbeat of `liveness`'s session, reading `path`.
pub(super) fn heartbeat(client: Client, liveness: Liveness, path: String) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut chain = Chain::new(liveness.tick);
        let every = |warm: bool| match warm {
            true => warm_every(liveness.timeout, liveness.tick),
            false => cold_every(liveness.timeout),
        };
        let mut warm = liveness.is_warm();
        let mut samples = VecDeque::from([Sample::take()]);
        let mut states = client.state_watcher();
        // tokio's timer wheel wakes twice for a beat (at its coarse slot, then at the
        // millisecond); this one wakes once.
        let alarm = Alarm::new().expect("a timer on CLOCK_BOOTTIME");
        // The first beat is due half an interval to an interval after the connect (whose send
        // time is `acked` until the chain proves a later one), so a short run makes no beat at
        // all, and runs that cron started in the same second do not beat in step ever after.
        let mut next_beat =
            liveness.acked_at() + every(warm).mul_f64(0.5 + random_fraction() / 2.0);
        alarm.set(Some(next_beat));
        let mut in_flight = FuturesUnordered::new();
        // Set by a beat lost with its connection, or by turning warm: the first answer after
        // it is followed by another beat at once, which completes a proof a beat sooner.
        let mut recovering = false;
        loop {
            let pause = tokio::select! {
                _ = alarm.rings() => {
                    // Late (a stalled machine): on from now, rather than beats to catch up.
                    let (due, t) = (next_beat + every(warm), now());
                    next_beat = if due > t { due } else { t + every(warm) };
                    alarm.set(Some(next_beat));
                    Some(Duration::ZERO)
                }
                _ = liveness.warmed(), if !warm => {
                    warm = true;
                    let t = now();
                    next_beat = t + every(true);
                    alarm.set(Some(next_beat));
                    // A run that connected a moment ago has its connect as proof; one that
                    // waited cold needs a new one before CMD may start.
                    if t.saturating_sub(liveness.acked_at()) > every(true) {
                        recovering = true;
                        Some(Duration::ZERO)
                    } else {
                        None
                    }
                }
                state = states.changed() => {
                    if state == SessionState::SyncConnected
                        && let Some(at) = client.last_connect()
                        && let Some(at) = samples.iter().rev().find_map(|s| s.boot_of(at))
                    {
                        liveness.acknowledged(at);
                    }
                    None
                }
                Some((sent, forwarded, answer)) = in_flight.next() => match answer {
                    Ok(()) => {
                        let t = now();
                        liveness.heard(t);
                        if let Some(heard) = chain.answered(sent, t, forwarded) {
                            liveness.acknowledged(heard);
                        }
                        std::mem::take(&mut recovering).then_some(Duration::ZERO)
                    }
                    Err(zookeeper_client::Error::SessionExpired) => {
                        liveness.expired();
                        None
                    }
                    // The session is over: nothing to refresh; `Session::ended` reports it.
                    Err(
                        zookeeper_client::Error::SessionMoved
                        | zookeeper_client::Error::ClientClosed
                        | zookeeper_client::Error::AuthFailed,
                    ) => None,
                    // Lost with its connection (the library reports a reset, a timeout or a
                    // loss): again, after a pause short enough not to matter and long enough
                    // that an error that came at once cannot make this a busy loop.
                    Err(_) => {
                        recovering = true;
                        Some(every(warm) / 5)
                    }
                },
            };
            if let Some(pause) = pause
                && in_flight.len() < MAX_BEATS_IN_FLIGHT
            {
                // A reconnect's instant is placed by the newest sample taken before it.
                if samples.len() == SAMPLES_REMEMBERED {
                    samples.pop_front();
                }
                samples.push_back(Sample::take());
                let (client, path) = (client.clone(), path.clone());
                in_flight.push(async move {
                    // Not even a zero one: tokio rounds it up to a millisecond, a wake-up more.
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                    let sent = now();
                    let answer = match warm {
                        true => client.sync(&path).await,
                        false => client.check_stat(&path).await.map(|_| ()),
                    };
                    (sent, warm, answer)
                });
            }
        }
    })
}

/// What answered beats prove of the leader's view of our session.
///
/// A `sync` `k`, sent at `S(k)` and answered at `R(k)`, passed through the leader. The leader
/// sends its pings and its answers to a follower down one ordered stream, so before the
/// follower answered `k` it had answered every ping the leader sent before handling `k`, and a
/// ping goes out at least every half tick. The follower's ping replies carry the sessions it
/// has seen since its last reply, and the leader renews a session only from those (or from a
/// reconnect). So three beats make a proof:
///
/// - `i`, any request answered at `R(i)` (a cold `exists` will do): the follower saw our
///   session before `R(i)`;
/// - `j`, a `sync` sent at least a ping gap `h` after `R(i)`: before answering `j`, the
///   follower answered a ping the leader sent after `S(j) - h`, so after it saw `i`; that reply
///   names our session (or an earlier reply already did, after `i`);
/// - `k`, a `sync` sent after `R(j)`: the follower forwards `k` to the leader after that ping
///   reply, down one ordered stream, so when the leader answered `k` it had renewed our session
///   at a moment after `S(i)`, and it cannot expire it before `S(i) + timeout`.
///
/// A reconnect on the way only helps: the new server revalidates the session with the leader,
/// which renews it after every answer the old connection carried. `h` is a whole tick (pings
/// go out every half tick; the other half is slack for the leader's scheduling).
struct Chain {
    /// `(sent, answered, forwarded)` of the newest answered beats, in the order they were
    /// answered; `forwarded` for a `sync`.
    answered: VecDeque<(Duration, Duration, bool)>,
    ping_gap: Duration,
}

impl Chain {
    fn new(tick: Duration) -> Chain {
        Chain {
            answered: VecDeque::new(),
            ping_gap: tick,
        }
    }

    /// Records the answer, at `at`, of the beat sent at `sent` (a `sync` if `forwarded`);
    /// returns a moment the leader is now proven to have heard of the session at or after, if
    /// any.
    fn answered(&mut self, sent: Duration, at: Duration, forwarded: bool) -> Option<Duration> {
        // k is this beat; j the newest sync answered before k was sent; i the newest beat of
        // any kind answered a ping gap before j was sent.
        let newest_sent_before = |chain: &Chain, moment: Duration, syncs_only: bool| {
            chain
                .answered
                .iter()
                .filter(|(_, r, f)| *r <= moment && (*f || !syncs_only))
                .map(|(s, _, _)| *s)
                .max()
        };
        let proven = forwarded
            .then(|| newest_sent_before(self, sent, true))
            .flatten()
            .and_then(|j| {
                j.checked_sub(self.ping_gap)
                    .and_then(|m| newest_sent_before(self, m, false))
            });
        if self.answered.len() == BEATS_REMEMBERED {
            self.answered.pop_front();
        }
        self.answered.push_back((sent, at, forwarded));
        proven
    }
}

#[cfg(test)]
mod tests;
