//! Ports for the ZooKeeper servers.
//!
//! Server ports are picked at random *below* the kernel's ephemeral range
//! (/proc/sys/net/ipv4/ip_local_port_range), checked free by binding, and never handed out
//! twice in one process.  Unlike "bind port 0", such a port can't be taken by some outgoing
//! connection's local port while a member is stopped, so `start_member` can rebind it.  If a
//! server still fails to bind at startup, the whole ensemble is retried on new ports
//! (see `Ensemble::start`).

use std::collections::HashSet;
use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::util::lock;

/// A random number, different on every call (for ports and temp dir names).
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    RandomState::new().hash_one((n, t, std::process::id()))
}

/// Port range below the kernel's ephemeral range (outgoing connections never use these).
fn server_port_range() -> Option<(u16, u16)> {
    let text = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok();
    let low: u32 = text
        .as_deref()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    (low >= 12000).then(|| (10000, (low - 1).min(65535) as u16))
}

/// Picks `n` distinct free ports on 127.0.0.1 not handed out before in this process.
pub fn pick_ports(n: usize) -> Vec<u16> {
    static USED: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut used = lock(&USED);
    let used = used.get_or_insert_with(HashSet::new);
    let range = server_port_range();
    let mut held = Vec::new(); // keep them bound until all are picked, so they are distinct
    let mut ports = Vec::new();
    let mut tries = 0;
    while ports.len() < n {
        tries += 1;
        assert!(tries < 10_000, "could not find {n} free ports");
        let candidate = match range {
            Some((lo, hi)) => lo + (random_u64() % u64::from(hi - lo + 1)) as u16,
            None => 0,
        };
        if candidate != 0 && used.contains(&candidate) {
            continue;
        }
        let Ok(listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, candidate)) else {
            continue;
        };
        let Ok(port) = listener.local_addr().map(|a| a.port()) else {
            continue;
        };
        if used.insert(port) {
            ports.push(port);
            held.push(listener);
        }
    }
    ports
}
