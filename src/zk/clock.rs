//! The clock every deadline of a run is reckoned on, and a timer on it.
//!
//! Times are read from CLOCK_BOOTTIME: monotonic like CLOCK_MONOTONIC, but it keeps counting
//! while the machine is suspended. The servers keep counting too, so after a resume a deadline
//! must already look passed, which a clock that stopped would hide.

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

use nix::sys::time::TimeSpec;
use nix::sys::timer::TimerSetTimeFlags;
use nix::sys::timerfd::{self, Expiration, TimerFd, TimerFlags};
use nix::time::{ClockId, clock_gettime};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// Now, on the clock that counts through suspend.
pub fn now() -> Duration {
    let ts = clock_gettime(ClockId::CLOCK_BOOTTIME)
        .expect("CLOCK_BOOTTIME is always available on Linux");
    Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32)
}

/// One moment read on both clocks: `Instant` (CLOCK_MONOTONIC, the client library's) and
/// [`now`]'s. CLOCK_BOOTTIME runs ahead of CLOCK_MONOTONIC by the time spent suspended, a gap
/// that only grows; so an `Instant` at or after `mono` is at least as far after `boot` on
/// [`now`]'s clock, and [`Sample::boot_of`] never places a moment later than it was.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    mono: Instant,
    boot: Duration,
}

impl Sample {
    pub fn take() -> Sample {
        // CLOCK_BOOTTIME first: read a moment before `mono`, it can only place later
        // moments earlier than they were.
        let boot = now();
        Sample {
            mono: Instant::now(),
            boot,
        }
    }

    /// `at` on [`now`]'s clock, at the earliest; `None` if `at` is before this sample.
    pub fn boot_of(&self, at: Instant) -> Option<Duration> {
        at.checked_duration_since(self.mono)
            .map(|since| self.boot + since)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_sample_never_places_a_later_moment_after_it_was() {
        let sample = Sample::take();
        let later = Instant::now();
        let boot = sample.boot_of(later).expect("after the sample");
        assert!(boot <= now(), "{boot:?} is in the future");
        assert!(boot >= sample.boot);
        assert_eq!(sample.boot_of(sample.mono - Duration::from_millis(1)), None);
    }
}
