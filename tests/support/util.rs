//! Small helpers for the harness and the tests: waiting for a condition (blocking, or async in
//! a tokio test), a look at a process in /proc, and a mutex lock that survives poisoning.
//!
//! Every wait checks its condition every 20 ms and panics with `what` when it runs out of
//! time; none of them stands in for an event: each waits for something it can observe.

use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// How often a wait checks its condition.
const INTERVAL: Duration = Duration::from_millis(20);

#[track_caller]
fn timed_out(what: &str, timeout: Duration) -> ! {
    panic!("timed out after {timeout:?} waiting until {what}");
}

/// Blocking: checks `cond` until it returns true; panics mentioning `what` after `timeout`.
#[track_caller]
pub fn wait_until_blocking(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    if !poll_until_blocking(timeout, &mut cond) {
        timed_out(what, timeout);
    }
}

/// Like [`wait_until_blocking`] but returns whether `cond` became true instead of panicking.
pub fn poll_until_blocking(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(INTERVAL);
    }
}

/// (state char, start time) of a process from /proc/PID/stat, None if it doesn't exist.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// Locks `m`, ignoring poisoning (a panicking test thread must not wedge the harness).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
