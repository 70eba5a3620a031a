//! The soak (issue 5): many cycles of random faults from the fault list while several
//! switchman processes contend for one lock and for one `1:2` lease. Not part of the default
//! test run; `scripts/soak` runs it:
//!
//! ```text
//! cargo test --release --test soak -- --ignored --nocapture
//! ```
//!
//! Settings (environment): `SOAK_SECONDS` (default 120) is how long faults are injected;
//! `SOAK_SESSION_TIMEOUT` (seconds, default 4) the workers' session timeout; `SOAK_SEED` makes
//! a run repeatable (the seed is printed).
//!
//! What it prints, and how each figure is measured:
//!
//! - runs: switchman invocations, and how many of them started CMD.
//! - faults injected, by kind.
//! - overlaps found: every CMD checks, from its own side and at its start, how many other CMDs
//!   of the same lock (or lease) are alive, by asking the kernel (see test-support/src/guard.rs).
//!   More than 0 (lock) or 1 (lease, 2 units of 1) is an overlap. Must be 0. Also checked: the
//!   fencing tokens of the lock's CMDs grow in the order the CMDs started.
//! - CMDs stopped while still holding a valid session: a run that switchman ended with exit 79
//!   (CMD stopped because something was lost) counts when the servers never expired its
//!   session, i.e. no server logged "Expiring session 0x<id>" for it. Such a stop was needless
//!   in hindsight: the session, so the lock, would have lasted. Should be 0; a one-way cut may
//!   make one, as switchman then cannot tell whether the servers still hear it.
//! - znodes left behind after all sessions end: ephemeral nodes under the prefix once every
//!   switchman has exited and every session has had time to expire. Must be 0.

use switchman_test_support as support;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{
    Ensemble, Job, Proxy, Records, SERVER_TICK_TIME, argv, env_or, guard_cmd, set_prefix_data,
    tree, zk,
};

const LOCK_WORKERS: usize = 3;
const LEASE_WORKERS: usize = 3;

/// xorshift64*: enough randomness for picking faults, and repeatable from a printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    /// 1: every server restarted in turn.
    RollingRestart,
    /// 2: the leader SIGKILLed (restarted afterwards).
    LeaderKill,
    /// 3: one switchman cut off from every server for longer than the session.
    LongCut,
    /// 4: the same, healed well before the deadline.
    ShortCut,
    /// 5: replies from the servers to one switchman cut, longer than the session.
    RepliesCut,
    /// 5: requests from one switchman to the servers cut, longer than the session.
    RequestsCut,
    /// 6: two of three servers stopped, longer than the session.
    QuorumLoss,
    /// 7: one switchman SIGKILLed, running CMD or waiting in a queue.
    KillSwitchman,
}

const FAULTS: [Fault; 8] = [
    Fault::RollingRestart,
    Fault::LeaderKill,
    Fault::LongCut,
    Fault::ShortCut,
    Fault::RepliesCut,
    Fault::RequestsCut,
    Fault::QuorumLoss,
    Fault::KillSwitchman,
];

struct FaultWindow {
    fault: Fault,
    /// The worker a cut or a kill was aimed at.
    target: Option<usize>,
    start: Instant,
    end: Instant,
}

struct Worker {
    name: String,
    lease: bool,
    /// Its CMD ignores SIGTERM (fault 9), and `termination_timeout` is 30 s.
    stubborn: bool,
    job: Job,
    proxy: Proxy,
    /// The pid of its switchman while one runs, else 0.
    current: AtomicI32,
    /// The name of its current run's CMD, whose pid file appears once CMD runs.
    run_name: Mutex<String>,
}

impl Worker {
    /// Whether its CMD runs now (so a cut of this worker tests the deadline).
    fn holding(&self) -> bool {
        let name = self.run_name.lock().unwrap().clone();
        self.current.load(Ordering::SeqCst) != 0 && self.job.file(&format!("{name}.pid")).exists()
    }
}

struct Run {
    worker: usize,
    name: String,
    start: Instant,
    end: Instant,
    code: Option<i32>,
    stderr: String,
    cmd_started: bool,
}

impl Run {
    /// The session id switchman logged at debug level (`-v`), as ZooKeeper writes it.
    fn session(&self) -> Option<String> {
        let text = strip_ansi(&self.stderr);
        let line = text.lines().find(|l| l.contains("session established"))?;
        let id = line.split("session=").nth(1)?.split_whitespace().next()?;
        Some(id.to_string())
    }

    fn stop_reason(&self) -> String {
        strip_ansi(&self.stderr)
            .lines()
            .find_map(|l| l.strip_prefix("switchman: CMD stopped: "))
            .unwrap_or("?")
            .to_string()
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "the soak runs for minutes: scripts/soak"]
async fn soak() {
    let seconds = env_or("SOAK_SECONDS", 120.0);
    let t = env_or("SOAK_SESSION_TIMEOUT", 4.0);
    let session = Duration::from_secs_f64(t);
    let seed = std::env::var("SOAK_SEED")
        .ok()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!(
        "soak: {seconds} s of faults, session_timeout {t} s, {LOCK_WORKERS} switchman loops on one lock, \
         {LEASE_WORKERS} on one 1:2 lease, SOAK_SEED={seed:#x}"
    );

    let mut ensemble = Ensemble::start(3);
    let base = Job::new("soak", &ensemble.connect_string(), json!({}));
    let client = zk(&ensemble.connect_string()).await;
    set_prefix_data(&client, &base.prefix, r#"{"resources": ["r"]}"#).await;
    drop(client);
    let lock_records = base.file("lock-records");
    let lease_records = base.file("lease-records");

    // Each worker reaches the ensemble through a proxy of its own, so that one can be cut off.
    let workers: Arc<Vec<Worker>> = Arc::new(
        (0..LOCK_WORKERS + LEASE_WORKERS)
            .map(|i| {
                let lease = i >= LOCK_WORKERS;
                let stubborn = i == 0 || i == LOCK_WORKERS;
                let proxy = Proxy::start(&ensemble.client_ports());
                let config = json!({
                    "prefix": base.prefix,
                    "zkhosts": proxy.connect_string(),
                    "session_timeout": t,
                    "server_tick_time": SERVER_TICK_TIME,
                    "termination_timeout": if stubborn { 30 } else { 1 },
                    "connect_timeout": 2.0 * t,
                });
                Worker {
                    name: format!("{}{i}", if lease { "lease" } else { "lock" }),
                    lease,
                    stubborn,
                    job: Job::with_config(
                        &base.prefix,
                        &proxy.connect_string(),
                        &config.to_string(),
                    ),
                    proxy,
                    current: AtomicI32::new(0),
                    run_name: Mutex::new(String::new()),
                }
            })
            .collect(),
    );

    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let runs: Arc<Mutex<Vec<Run>>> = Arc::default();
    let mut tasks = Vec::new();
    for i in 0..workers.len() {
        let (workers, runs) = (workers.clone(), runs.clone());
        let (lock_records, lease_records) = (lock_records.clone(), lease_records.clone());
        let mut rng = Rng(seed ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        tasks.push(tokio::spawn(async move {
            let w = &workers[i];
            let mut n = 0;
            while Instant::now() < deadline {
                n += 1;
                let name = format!("{}-{n}", w.name);
                let hold = rng.between(0.1, 1.5) * t;
                let mut body = format!("sleep {hold:.2} & wait $!");
                if w.stubborn {
                    body = format!("trap '' TERM\n{body}");
                }
                let cmd = if w.lease {
                    guard_cmd(&lease_records, &name, 2, &body)
                } else {
                    guard_cmd(&lock_records, &name, 1, &body)
                };
                let opts = if w.lease {
                    vec!["-v", "--lockname", w.name.as_str(), "--lease", "r=1:2"]
                } else {
                    vec!["-v", "--lockname", "contended"]
                };
                let args = argv(&opts, &cmd);
                let start = Instant::now();
                *w.run_name.lock().unwrap() = name.clone();
                let child = w.job.spawn(&args);
                w.current
                    .store(child.id().map_or(0, |p| p as i32), Ordering::SeqCst);
                let out = child.wait_with_output().await.unwrap();
                w.current.store(0, Ordering::SeqCst);
                let cmd_started = w.job.file(&format!("{name}.pid")).exists();
                runs.lock().unwrap().push(Run {
                    worker: i,
                    name,
                    start,
                    end: Instant::now(),
                    code: out.status.code(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                    cmd_started,
                });
                let pause = Duration::from_secs_f64(rng.between(0.0, 0.3));
                tokio::time::sleep(pause).await;
            }
        }));
    }

    // The faults, one after the other, from a thread of their own (the harness blocks).
    let injector = {
        let workers = workers.clone();
        tokio::task::spawn_blocking(move || {
            let mut rng = Rng(seed);
            let mut windows = Vec::new();
            while Instant::now() + session < deadline {
                let fault = FAULTS[rng.below(FAULTS.len())];
                let long = Duration::from_secs_f64(rng.between(1.5, 2.5) * t);
                let start = Instant::now();
                let mut target = None;
                match fault {
                    Fault::RollingRestart => {
                        for i in 0..3 {
                            ensemble.stop(i);
                            ensemble.start_member(i);
                        }
                    }
                    Fault::LeaderKill => {
                        let leader = ensemble.wait_for_leader(Duration::from_secs(30));
                        ensemble.kill(leader);
                        ensemble.wait_for_leader(Duration::from_secs(30));
                        ensemble.start_member(leader);
                    }
                    Fault::LongCut | Fault::ShortCut | Fault::RepliesCut | Fault::RequestsCut => {
                        // Mostly a worker whose CMD runs: the case the deadline is for.
                        let holders: Vec<usize> = (0..workers.len())
                            .filter(|&i| workers[i].holding())
                            .collect();
                        let chosen = if !holders.is_empty() && rng.below(4) != 0 {
                            holders[rng.below(holders.len())]
                        } else {
                            rng.below(workers.len())
                        };
                        let proxy = &workers[chosen].proxy;
                        target = Some(chosen);
                        match fault {
                            Fault::RepliesCut => proxy.block_replies(),
                            Fault::RequestsCut => proxy.block_requests(),
                            _ => proxy.blackhole(),
                        }
                        if fault == Fault::ShortCut {
                            std::thread::sleep(Duration::from_secs_f64(rng.between(0.05, 0.2) * t));
                        } else {
                            std::thread::sleep(long);
                        }
                        proxy.heal();
                    }
                    Fault::QuorumLoss => {
                        let leader = ensemble.wait_for_leader(Duration::from_secs(30));
                        let other = (leader + 1 + rng.below(2)) % 3;
                        ensemble.stop(leader);
                        ensemble.stop(other);
                        std::thread::sleep(long);
                        ensemble.start_member(leader);
                        ensemble.start_member(other);
                    }
                    Fault::KillSwitchman => {
                        let busy: Vec<(usize, i32)> = workers
                            .iter()
                            .map(|w| w.current.load(Ordering::SeqCst))
                            .enumerate()
                            .filter(|&(_, p)| p != 0)
                            .collect();
                        if let Some(&(i, pid)) = busy.get(rng.below(busy.len().max(1))) {
                            let _ = nix::sys::signal::kill(
                                nix::unistd::Pid::from_raw(pid),
                                nix::sys::signal::Signal::SIGKILL,
                            );
                            target = Some(i);
                        }
                    }
                }
                windows.push(FaultWindow {
                    fault,
                    target,
                    start,
                    end: Instant::now(),
                });
                ensemble.wait_for_leader(Duration::from_secs(30));
                std::thread::sleep(Duration::from_secs_f64(rng.between(0.2, 1.0) * t));
            }
            (ensemble, windows)
        })
    };

    let (ensemble, windows) = injector.await.unwrap();
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(120), task)
            .await
            .expect("a worker did not finish its last run")
            .unwrap();
    }
    let runs = std::mem::take(&mut *runs.lock().unwrap());

    // Every switchman has exited. Wait for the servers to expire what sessions are left, then
    // count the ephemeral nodes under the prefix.
    let client = zk(&ensemble.connect_string()).await;
    let give_up = Instant::now() + session * 3 + Duration::from_secs(10);
    let left = loop {
        let left = ephemerals(&client, &base.prefix).await;
        if left.is_empty() || Instant::now() > give_up {
            break left;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let expired = expired_sessions(&ensemble);

    // The figures.
    let lock = Records::read(&lock_records);
    let lease = Records::read(&lease_records);
    let tokens: Vec<i64> = lock
        .text
        .lines()
        .filter(|l| l.starts_with("start "))
        .filter_map(|l| l.split_whitespace().nth(5)?.parse().ok())
        .collect();
    let tokens_out_of_order = tokens.windows(2).filter(|w| w[0] >= w[1]).count();
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    for r in &runs {
        let key = match r.code {
            Some(0) if r.cmd_started => "0 (ran)".to_string(),
            Some(0) => "0 (skipped)".to_string(),
            Some(c) => c.to_string(),
            None => "SIGKILLed".to_string(),
        };
        *codes.entry(key).or_default() += 1;
    }
    let mut faults: BTreeMap<String, usize> = BTreeMap::new();
    for w in &windows {
        *faults.entry(format!("{:?}", w.fault)).or_default() += 1;
    }
    let stops: Vec<&Run> = runs.iter().filter(|r| r.code == Some(79)).collect();
    let needless: Vec<&Run> = stops
        .iter()
        .copied()
        .filter(|r| r.session().is_none_or(|s| !expired.contains(&s)))
        .collect();
    let overlaps: Vec<&String> = lock.overlaps.iter().chain(&lease.overlaps).collect();

    println!(
        "runs: {} switchman runs, {} CMDs started (lock {}, lease {}); exit codes {codes:?}",
        runs.len(),
        lock.starts + lease.starts,
        lock.starts,
        lease.starts
    );
    println!("faults injected: {} {faults:?}", windows.len());
    println!(
        "overlaps found: {} (fencing tokens out of order: {tokens_out_of_order})",
        overlaps.len()
    );
    println!(
        "CMDs stopped while still holding a valid session: {} (of {} stops)",
        needless.len(),
        stops.len()
    );
    for r in &needless {
        let during: Vec<String> = windows
            .iter()
            .filter(|w| w.start <= r.end && r.start <= w.end)
            .map(|w| match w.target {
                Some(i) if i == r.worker => format!("{:?} of this worker", w.fault),
                Some(i) => format!("{:?} of {}", w.fault, workers[i].name),
                None => format!("{:?}", w.fault),
            })
            .collect();
        println!(
            "  {} ({}): {}; faults during the run: {during:?}",
            r.name,
            workers[r.worker].name,
            r.stop_reason()
        );
    }
    println!("znodes left behind after all sessions end: {}", left.len());
    for node in &left {
        println!("  {node}");
    }

    assert!(overlaps.is_empty(), "overlaps: {overlaps:?}");
    assert_eq!(tokens_out_of_order, 0, "fencing tokens: {tokens:?}");
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(lock.starts > 0 && lease.starts > 0, "nothing ran");
}

/// Every ephemeral node under `root`.
async fn ephemerals(client: &zookeeper_client::Client, root: &str) -> Vec<String> {
    let mut found = Vec::new();
    for path in tree(client, root).await {
        if let Ok(Some(stat)) = client.check_stat(&path).await
            && stat.ephemeral_owner != 0
        {
            found.push(path);
        }
    }
    found
}

/// The ids of the sessions some server expired, from the servers' logs.
fn expired_sessions(ensemble: &Ensemble) -> HashSet<String> {
    let mut ids = HashSet::new();
    for id in 1..=ensemble.member_count() {
        let log = ensemble.root_dir().join(format!("member-{id}/zk.log"));
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for line in text.lines() {
            if let Some(rest) = line.split("Expiring session ").nth(1)
                && let Some(sid) = rest.split(',').next()
            {
                ids.insert(sid.to_string());
            }
        }
    }
    ids
}
