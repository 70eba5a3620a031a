//! switchman: a one-shot timer that is set again without waking another thread. async-io's
//! `Timer` hands each new deadline to its reactor thread, a wake-up each time; a timerfd is set
//! by a plain system call, and the reactor (tokio's with the `tokio` feature, so that no thread
//! of the library's is started) only watches it.

use std::io;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

#[cfg(not(feature = "tokio"))]
use async_io::Async;
use rustix::time::{
    timerfd_create,
    timerfd_settime,
    Itimerspec,
    TimerfdClockId,
    TimerfdFlags,
    TimerfdTimerFlags,
    Timespec,
};
#[cfg(feature = "tokio")]
use tokio::io::unix::AsyncFd;

#[cfg(not(feature = "tokio"))]
pub struct Alarm(Async<OwnedFd>);

#[cfg(feature = "tokio")]
pub struct Alarm(AsyncFd<OwnedFd>);

impl Alarm {
    pub fn new() -> io::Result<Alarm> {
        // CLOCK_MONOTONIC: the clock of `Instant`, which the deadlines are reckoned on.
        let fd = timerfd_create(TimerfdClockId::Monotonic, TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC)?;
        #[cfg(not(feature = "tokio"))]
        return Ok(Alarm(Async::new(fd)?));
        // SAFETY: the descriptor is the timerfd's own, and lives as long as the AsyncFd.
        #[cfg(feature = "tokio")]
        return Ok(Alarm(unsafe {
            AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)?
        }));
    }

    /// Sets it for `at`, in place of any earlier setting.
    pub fn set_at(&self, at: Instant) -> io::Result<()> {
        // Relative, as an `Instant` does not tell its timespec; zero would disarm it.
        let after = at.saturating_duration_since(Instant::now()).max(Duration::from_nanos(1));
        let zero = Timespec { tv_sec: 0, tv_nsec: 0 };
        let value = Timespec { tv_sec: after.as_secs() as _, tv_nsec: after.subsec_nanos() as _ };
        timerfd_settime(self.0.get_ref(), TimerfdTimerFlags::empty(), &Itimerspec {
            it_interval: zero,
            it_value: value,
        })?;
        Ok(())
    }

    #[cfg(not(feature = "tokio"))]
    pub async fn rings(&self) -> io::Result<()> {
        loop {
            self.0.readable().await?;
            // Readiness may be left from before it was set again; only a read that finds an
            // expiry tells.
            match rustix::io::read(self.0.get_ref(), &mut [0u8; 8]) {
                Ok(_) => return Ok(()),
                Err(rustix::io::Errno::AGAIN) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    #[cfg(feature = "tokio")]
    pub async fn rings(&self) -> io::Result<()> {
        loop {
            let mut ready = self.0.readable().await?;
            // Readiness may be left from before it was set again; only a read that finds an
            // expiry tells.
            match rustix::io::read(self.0.get_ref(), &mut [0u8; 8]) {
                Ok(_) => return Ok(()),
                Err(rustix::io::Errno::AGAIN) => ready.clear_ready(),
                Err(e) => return Err(e.into()),
            }
        }
    }
}
