//! Small helpers for the harness and the tests: waiting for a condition (async in a tokio
//! test, or blocking), a look at a process in /proc, a mutex lock that survives poisoning, and
//! settings from the environment.
//!
//! Every wait checks its condition every 20 ms and panics naming `what` when it runs out of
//! time; none of them stands in for an event: each waits for something it can observe.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// How long the async waits wait: far longer than anything they wait for should take.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// How often a wait checks its condition.
const INTERVAL: Duration = Duration::from_millis(20);

#[track_caller]
fn timed_out(what: &str, timeout: Duration) -> ! {
    panic!("timed out after {timeout:?} waiting until {what}");
}

/// Async: checks `cond` until it returns true; panics mentioning `what` after [`PATIENCE`].
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    wait_for(what, async || cond().then_some(())).await
}

/// Async: awaits `probe` until it returns a value, and returns that; panics mentioning `what`
/// after [`PATIENCE`]. For conditions that need to await (a ZooKeeper read, say).
pub async fn wait_for<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        if tokio::time::Instant::now() >= deadline {
            timed_out(what, PATIENCE);
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

/// Waits until the file at `path` exists and is not empty, and returns its text (CMD's
/// records appear as files).
pub async fn wait_for_file(path: &Path) -> String {
    wait_for(&format!("{} appears", path.display()), async || {
        std::fs::read_to_string(path).ok().filter(|t| !t.is_empty())
    })
    .await
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

/// CPU seconds a process has used so far (utime + stime from /proc/PID/stat); 0 if it is gone.
pub fn process_cpu(pid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(close) = stat.rfind(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / clock_ticks()
}

/// The kernel's clock ticks a second, in which /proc counts CPU time.
fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64
}

/// True once the process is gone or a zombie: it runs no more code either way.
pub fn is_dead(pid: i32) -> bool {
    proc_stat(pid).is_none_or(|(state, _)| state == 'Z' || state == 'X')
}

/// The setting `name` from the environment, `default` if it is not set or does not parse.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Locks `m`, ignoring poisoning (a panicking test thread must not wedge the harness).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
