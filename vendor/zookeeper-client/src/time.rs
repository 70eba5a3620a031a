//! switchman: the timers of sessions and connections.
//!
//! async-io's timers are kept by its reactor, which runs on a thread of its own: arming or
//! disarming one wakes that thread, and one that fires wakes it, which then wakes the
//! runtime's. With the `tokio` feature the timers are tokio's, kept by the runtime the session
//! runs on, and async-io's thread is never started. Either way a [`Timer`] is what async-io's
//! is to its users here: a future that resolves with the instant it was due, once (`after`,
//! `at`), never, or again every period after (`interval`, due at the first due time plus whole
//! periods, so it catches up rather than drifts).

#[cfg(not(feature = "tokio"))]
pub use async_io::Timer;

#[cfg(feature = "tokio")]
pub use self::tokio_timer::Timer;

#[cfg(feature = "tokio")]
mod tokio_timer {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{ready, Context, Poll};
    use std::time::{Duration, Instant};

    #[derive(Debug)]
    pub struct Timer {
        /// `None`: never due.
        sleep: Option<Pin<Box<tokio::time::Sleep>>>,
        due: Instant,
        period: Option<Duration>,
    }

    impl Timer {
        pub fn never() -> Timer {
            Timer { sleep: None, due: Instant::now(), period: None }
        }

        pub fn at(due: Instant) -> Timer {
            Timer { sleep: Some(Box::pin(tokio::time::sleep_until(due.into()))), due, period: None }
        }

        pub fn after(delay: Duration) -> Timer {
            match Instant::now().checked_add(delay) {
                Some(due) => Timer::at(due),
                None => Timer::never(),
            }
        }

        pub fn interval(period: Duration) -> Timer {
            Timer { period: Some(period), ..Timer::after(period) }
        }
    }

    impl Future for Timer {
        type Output = Instant;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Instant> {
            let this = self.get_mut();
            let Some(sleep) = this.sleep.as_mut() else {
                return Poll::Pending;
            };
            ready!(sleep.as_mut().poll(cx));
            let due = this.due;
            match this.period.and_then(|period| due.checked_add(period)) {
                Some(next) => {
                    this.due = next;
                    sleep.as_mut().reset(next.into());
                },
                None => this.sleep = None,
            }
            Poll::Ready(due)
        }
    }
}
