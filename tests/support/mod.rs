//! Integration-test harness: real ZooKeeper servers and a fault-injecting TCP proxy.
//!
//! Use from any file in `tests/` with `mod support;`.  Everything here is synchronous
//! (std threads and blocking calls), so it works from plain `#[test]`s and from
//! `#[tokio::test]`s alike.  In a *current-thread* tokio test remember that the blocking
//! calls (`Ensemble::start`, `wait_until_blocking`, ...) block the runtime while they run: a
//! blocking wait whose condition depends on a task of that same runtime making progress
//! will never see it; use `flavor = "multi_thread"` or `spawn_blocking` for those.
//!
//! - `ensemble`: ZooKeeper servers ([`Ensemble`], [`shared_ensemble`], four-letter words),
//!   with `server` (one server process and its cleanup) and `ports` (where they listen).
//! - `proxy`: [`Proxy`], for cutting the network between a client and the servers.
//! - `util`: waiting for a condition, and other small helpers.
//! - `sm`: running the switchman binary against them.
#![allow(dead_code)]

mod ensemble;
mod ports;
mod proxy;
mod server;
mod util;

/// Helpers for running the switchman binary (tests/support/sm.rs).
pub mod sm;

// Each test binary uses its own share of these.
#[allow(unused_imports)]
pub use ensemble::{
    Ensemble, ZOOKEEPER_JAR, four_letter_word, parse_mntr, require_zookeeper, shared_ensemble,
    shared_ensemble3,
};
#[allow(unused_imports)]
pub use proxy::Proxy;
#[allow(unused_imports)]
pub use util::{poll_until_blocking, wait_until_blocking};
