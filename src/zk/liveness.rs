//! Our own record of the session's liveness, and the heartbeat that keeps it fresh.
//!
//! The client library reconnects to another server on its own, keeping the session, so a
//! disconnect is not a loss. What we must know is the latest moment at which the servers may
//! already have expired the session. Only the leader expires sessions, no earlier than the
//! session timeout after it last heard of ours, so we keep our own record, `acked`: a moment
//! before which the leader is proven to have heard of the session. Everything CMD's safety hangs
//! on is derived from that one number.
//!
//! A follower answers reads on its own, so an answered read proves nothing: a follower cut off
//! from its leader keeps answering until it notices, `syncLimit × tickTime` later, while the
//! leader may already have expired us. So the heartbeat is a `sync`, which the follower must
//! forward to the leader. Even that is not enough alone: the leader does not refresh a session
//! when a follower forwards its request; it learns of the follower's sessions from the
//! follower's replies to its pings, one every half tick. [`Chain`] turns answered beats into
//! what they prove of those pings; docs/safety.md's "Why two hosts never run the job at once" has
//! the argument in full.
//!
//! Times are read from CLOCK_BOOTTIME: monotonic like CLOCK_MONOTONIC, but it keeps counting
//! while the machine is suspended. The servers keep counting too, so after a resume the
//! deadline must already look passed, which a clock that stopped would hide.

use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use nix::sys::time::TimeSpec;
use nix::sys::timer::TimerSetTimeFlags;
use nix::sys::timerfd::{self, Expiration, TimerFd, TimerFlags};
use nix::time::{ClockId, clock_gettime};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::task::JoinHandle;
use zookeeper_client::Client;

/// Beats sent and not yet answered, at most (a session timeout's worth).
const MAX_BEATS_IN_FLIGHT: usize = 20;

/// Answered beats remembered for [`Chain`]: several session timeouts' worth.
const BEATS_REMEMBERED: usize = 64;

/// Now, on the clock that counts through suspend.
pub fn now() -> Duration {
    let ts = clock_gettime(ClockId::CLOCK_BOOTTIME)
        .expect("CLOCK_BOOTTIME is always available on Linux");
    Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32)
}

/// A timer on CLOCK_BOOTTIME, set for a moment on [`now`]'s clock. tokio's timers count on
/// CLOCK_MONOTONIC, which stops while the machine is suspended and the servers' clocks do not:
/// they would oversleep a deadline by the length of a suspend. This one rings on resume.
pub struct Alarm(AsyncFd<Timer>);

/// tokio's `AsyncFd` wants `AsRawFd`, which nix's `TimerFd` lacks.
struct Timer(TimerFd);

impl AsRawFd for Timer {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

impl Alarm {
    pub fn new() -> std::io::Result<Alarm> {
        let timer = TimerFd::new(
            timerfd::ClockId::CLOCK_BOOTTIME,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        // SAFETY: the descriptor is the TimerFd's own, and lives as long as the AsyncFd.
        let fd = unsafe { AsyncFd::register_with_interest(Timer(timer), Interest::READABLE)? };
        Ok(Alarm(fd))
    }

    /// Sets it for `at`, or for never.
    pub fn set(&self, at: Option<Duration>) {
        let timer = &self.0.get_ref().0;
        let set = match at {
            // Relative, yet reckoned on CLOCK_BOOTTIME all the same, so it still counts through a
            // suspend; an absolute one is shifted by a faked wall clock (libfaketime, in
            // tests/wait.rs) that leaves CLOCK_BOOTTIME alone. A moment already past rings at
            // once; zero alone would disarm the timer.
            Some(at) => timer.set(
                Expiration::OneShot(TimeSpec::from(
                    at.saturating_sub(now()).max(Duration::from_nanos(1)),
                )),
                TimerSetTimeFlags::empty(),
            ),
            None => timer.unset(),
        };
        set.expect("a timerfd that is ours takes any time");
    }

    pub async fn rings(&self) {
        loop {
            let Ok(mut ready) = self.0.readable().await else {
                return;
            };
            // Readiness may be left over from before the timer was set again; only a read
            // that finds an expiry tells.
            let read = ready.try_io(|fd| {
                nix::unistd::read(fd.get_ref().0.as_fd(), &mut [0u8; 8])
                    .map_err(std::io::Error::from)
            });
            if read.is_ok() {
                return;
            }
        }
    }
}

/// The moment before which the leader has heard of our session, and the deadlines derived
/// from it.
#[derive(Clone, Debug)]
pub struct Liveness {
    acked_at_ns: Arc<AtomicU64>,
    /// Woken whenever the deadlines move: `acked` moved, or the session expired.
    moved: Arc<tokio::sync::Notify>,
    /// Set once the servers have told us the session expired: nothing is left to wait for.
    expired: Arc<AtomicBool>,
    /// The negotiated session timeout.
    pub timeout: Duration,
    /// The ensemble's `tickTime` (config `server_tick_time`).
    tick: Duration,
}

impl Liveness {
    pub(super) fn new(timeout: Duration, tick: Duration, acked_at: Duration) -> Liveness {
        Liveness {
            acked_at_ns: Arc::new(AtomicU64::new(acked_at.as_nanos() as u64)),
            moved: Arc::new(tokio::sync::Notify::new()),
            expired: Arc::new(AtomicBool::new(false)),
            timeout,
            tick,
        }
    }

    /// Records that the leader has heard of the session at or after `at`.
    fn acknowledged(&self, at: Duration) {
        self.acked_at_ns
            .fetch_max(at.as_nanos() as u64, Ordering::SeqCst);
        self.moved.notify_waiters();
    }

    /// Waits until the record is fresh (short of [`Liveness::stale_at`]); `false` if the
    /// session may expire first. A run that waited through a stall takes the lock with a stale
    /// record, and a proof comes within a few beats of the reconnect: CMD starts then, rather
    /// than not at all.
    pub async fn wait_fresh(&self) -> bool {
        loop {
            // Made before the check, so that a renewal between the two is not missed.
            let moved = self.moved();
            let t = now();
            if t < self.stale_at() {
                return true;
            }
            if t >= self.expires_at() {
                return false;
            }
            let _ = tokio::time::timeout(self.expires_at() - t, moved).await;
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

    /// Slack for our own timer and for the kernel to deliver SIGKILL, taken off the deadline.
    pub fn margin(&self) -> Duration {
        (self.timeout / 10).max(Duration::from_millis(100))
    }

    /// The moment after which we give up on the session and start stopping CMD: half the
    /// timeout, plus the tick by which `acked` trails the newest answered beat, without a new
    /// proof. A failover or rolling restart reconnects well within it.
    pub fn stale_at(&self) -> Duration {
        if self.is_expired() {
            return Duration::ZERO;
        }
        self.acked_at() + self.timeout / 2 + self.tick
    }

    /// CMD must be dead by this moment: the leader may expire the session no earlier than
    /// `timeout` after it last heard of it, which was no earlier than `acked`. At once if the
    /// session is known to have expired.
    pub fn kill_deadline(&self) -> Duration {
        self.expires_at().saturating_sub(self.margin())
    }

    /// The earliest moment at which the servers may have expired the session. Requests that
    /// fail with their connection are retried until then (see `access`).
    pub fn expires_at(&self) -> Duration {
        if self.is_expired() {
            return Duration::ZERO;
        }
        self.acked_at() + self.timeout
    }

    /// A pause between retries: short enough not to matter, long enough that an error that
    /// comes at once cannot make a busy loop.
    pub fn retry_pause(&self) -> Duration {
        self.timeout / 20
    }
}

/// Starts refreshing `liveness` with a `sync` of `path` every twentieth of the session timeout.
///
/// An answered beat proves that the follower we talk to and its leader were connected at some
/// moment after the beat was sent; [`Chain`] turns a run of them into a moment the leader has
/// heard of us. With beats every `T/20` and a tick of `h`, `acked` trails the present by
/// `h + T/10` to `h + T/5` while all is well; a stop begins `T/2 + h` after `acked`, so an
/// outage of the ensemble (an election, a restart) of up to about `T/2 - T/4` goes unnoticed by
/// CMD.
///
/// No beat is ever given up on. Beats go out on a fixed cadence whether or not the earlier ones
/// were answered, and each counts, with its own send time, whenever its reply comes. A beat that
/// fails with its connection (reset, lost, timed out) is sent again at once; the client library
/// holds it until it has reconnected.
/// A number in [0, 1), different in every process: std's hasher keys are random per process.
fn random_fraction() -> f64 {
    use std::hash::BuildHasher;
    let bits = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

pub(super) fn heartbeat(client: Client, liveness: Liveness, path: String) -> JoinHandle<()> {
    let every = liveness.timeout / 20;
    tokio::spawn(async move {
        let mut chain = Chain::new(liveness.tick);
        // tokio's timer wheel wakes twice for a beat (at its coarse slot, then at the
        // millisecond); this one wakes once.
        let alarm = Alarm::new().expect("a timer on CLOCK_BOOTTIME");
        // The first beat is due half an interval to an interval after the connect (whose send
        // time is `acked` until the chain proves a later one), so a short run makes no beat at
        // all, and runs that cron started in the same second do not beat in step ever after.
        let mut next_beat = liveness.acked_at() + every.mul_f64(0.5 + random_fraction() / 2.0);
        alarm.set(Some(next_beat));
        let mut in_flight = futures::stream::FuturesUnordered::new();
        // Set by a beat lost with its connection: the first answer after it is followed by
        // another beat at once, which completes the chain a tick sooner after a reconnect.
        let mut recovering = false;
        loop {
            let pause = tokio::select! {
                _ = alarm.rings() => {
                    // Late (a stalled machine): on from now, rather than beats to catch up.
                    let (due, t) = (next_beat + every, now());
                    next_beat = if due > t { due } else { t + every };
                    alarm.set(Some(next_beat));
                    Some(Duration::ZERO)
                }
                Some((sent, answer)) = futures::StreamExt::next(&mut in_flight) => match answer {
                    Ok(()) => {
                        if let Some(heard) = chain.answered(sent, now()) {
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
                        Some(every / 5)
                    }
                },
            };
            if let Some(pause) = pause
                && in_flight.len() < MAX_BEATS_IN_FLIGHT
            {
                let (client, path) = (client.clone(), path.clone());
                in_flight.push(async move {
                    // Not even a zero one: tokio rounds it up to a millisecond, a wake-up more.
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                    let sent = now();
                    (sent, client.sync(&path).await)
                });
            }
        }
    })
}

/// What answered beats prove of the leader's view of our session.
///
/// A beat `k`, a `sync` sent at `S(k)` and answered at `R(k)`, passed through the leader. The
/// leader sends its pings and its answers to a follower down one ordered stream, so before the
/// follower answered `k` it had answered every ping the leader sent before handling `k`, and a
/// ping goes out at least every half tick. The follower's ping replies carry the sessions it
/// has seen since its last reply, and the leader refreshes a session only from those (or from a
/// reconnect). So three beats make a proof:
///
/// - `i`, answered at `R(i)`: the follower saw our session before `R(i)`;
/// - `j`, sent at least a ping gap `h` after `R(i)`: before answering `j`, the follower answered
///   a ping the leader sent after `S(j) - h`, so after it saw `i`; that reply names our session
///   (or an earlier reply already did, after `i`);
/// - `k`, sent after `R(j)`: the follower forwards `k` to the leader after that ping reply, down
///   one ordered stream, so when the leader answered `k` it had refreshed our session at a
///   moment after `S(i)`, and it cannot expire it before `S(i) + timeout`.
///
/// A reconnect on the way only helps: the new server revalidates the session with the leader,
/// which refreshes it after every answer the old connection carried. `h` is a whole tick (pings
/// go out every half tick; the other half is slack for the leader's scheduling).
struct Chain {
    /// `(sent, answered)` of the newest answered beats, in the order they were answered.
    answered: VecDeque<(Duration, Duration)>,
    ping_gap: Duration,
}

impl Chain {
    fn new(tick: Duration) -> Chain {
        Chain {
            answered: VecDeque::new(),
            ping_gap: tick,
        }
    }

    /// Records the answer, at `at`, of the beat sent at `sent`; returns a moment the leader is
    /// now proven to have heard of the session at or after, if any.
    fn answered(&mut self, sent: Duration, at: Duration) -> Option<Duration> {
        // k is this beat; j the newest answered before k was sent; i the newest answered a ping
        // gap before j was sent.
        let newest_sent_before = |chain: &Chain, moment: Duration| {
            chain
                .answered
                .iter()
                .filter(|(_, r)| *r <= moment)
                .map(|(s, _)| *s)
                .max()
        };
        let proven = newest_sent_before(self, sent).and_then(|j| {
            j.checked_sub(self.ping_gap)
                .and_then(|m| newest_sent_before(self, m))
        });
        if self.answered.len() == BEATS_REMEMBERED {
            self.answered.pop_front();
        }
        self.answered.push_back((sent, at));
        proven
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A deadline already past must ring, including the zero of an expired session, which a
    /// timerfd would take as "disarm"; and the alarm must ring again once set again.
    #[tokio::test]
    async fn an_alarm_for_a_moment_past_rings_at_once_every_time() {
        let alarm = Alarm::new().unwrap();
        for at in [Duration::ZERO, now(), Duration::ZERO] {
            alarm.set(Some(at));
            // Only a guard against a hang, far beyond any wait this could need.
            tokio::time::timeout(Duration::from_secs(60), alarm.rings())
                .await
                .unwrap_or_else(|_| panic!("an alarm set for {at:?} never rang"));
        }
    }

    /// Beats every 100 ms, each answered after 2 ms; returns what each answer proved.
    fn steady(chain: &mut Chain, beats: u64) -> Vec<Option<Duration>> {
        (0..beats)
            .map(|b| chain.answered(ms(1000 + b * 100), ms(1000 + b * 100 + 2)))
            .collect()
    }

    #[test]
    fn one_answer_proves_nothing() {
        let mut chain = Chain::new(ms(250));
        assert_eq!(chain.answered(ms(1000), ms(1002)), None);
        assert_eq!(chain.answered(ms(1100), ms(1102)), None);
    }

    #[test]
    fn a_steady_run_proves_a_moment_a_ping_gap_and_two_beats_back() {
        let mut chain = Chain::new(ms(250));
        let proven = steady(&mut chain, 10);
        // Beat 9 (sent 1900): j = beat 8 (sent 1800); i answered by 1550: beat 5 (sent 1500).
        assert_eq!(proven[9], Some(ms(1500)));
        for (b, p) in proven.iter().enumerate() {
            if let Some(p) = p {
                let sent = ms(1000 + b as u64 * 100);
                assert!(sent - *p >= ms(250) + ms(100), "beat {b} proved too much");
            }
        }
    }

    #[test]
    fn answers_held_up_in_a_cut_prove_nothing_of_the_time_after_it() {
        let mut chain = Chain::new(ms(250));
        steady(&mut chain, 10);
        // A cut from 2000 on: beats sent at 2000..2400 are all answered at 5000, when it heals.
        let proven: Vec<_> = (0..5)
            .map(|b| chain.answered(ms(2000 + b * 100), ms(5000)))
            .collect();
        // None of them was sent after another's answer in the cut, so none proves anything
        // after the last beat the leader had surely heard of before the cut.
        for p in proven.into_iter().flatten() {
            assert!(p <= ms(1900 - 250), "proved {p:?}");
        }
        // The next beat, sent after those answers, proves the beats before the cut at most:
        // the leader may have heard of nothing from the cut.
        let after = chain.answered(ms(5100), ms(5102)).unwrap();
        assert!(after <= ms(1900), "proved {after:?}");
    }
}
