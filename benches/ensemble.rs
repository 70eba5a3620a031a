//! What live runs cost a ZooKeeper ensemble (issue 20): the requests that reach the followers
//! and the CPU of the followers and of the leader, per run, for runs that hold a lock, runs
//! that wait in line for a lease, and plain ZooKeeper sessions (the baseline of any client that
//! trusts its session).
//!
//! ```text
//! cargo bench --bench ensemble
//! ENSEMBLE_RUNS=40 ENSEMBLE_SECONDS=5 cargo bench --bench ensemble
//! ```
//!
//! Three ZooKeeper 3.8 servers on loopback, started by the bench with a real ensemble's
//! `tickTime=2000` (`ENSEMBLE_TICK_MS`; the tests' servers tick every 100 ms) and
//! `maxClientCnxns=0` (the default of 60 connections from one address would turn runs away).
//! Every client connects to the two followers only (zkhosts names their client ports), so
//! that what the leader does for them is the quorum's share: proposals, and the sessions the
//! followers report to it on each ping. The bench's own client, for setting up and for seeing
//! that all runs are in place, talks to the leader and is not counted.
//!
//! One kind at a time, `ENSEMBLE_RUNS` (default 200) live at once, measured over a steady
//! window of `ENSEMBLE_SECONDS` (default 10) once all are in place:
//!
//! - *holding*: `switchman --lockname hI -- sleep 1000`, each holding its own lock;
//! - *waiting*: `switchman --lockname wI --lease r=1:1 -- sleep 1000`, one holding the lease
//!   and the others waiting in line for it;
//! - *plain*: sessions of the client library switchman uses (`zookeeper_client`, 10 s
//!   session), each holding one ephemeral node, from this process.
//!
//! Runs use a real config's defaults: `session_timeout` 10 s, `server_tick_time` the servers'
//! tick, loglevel info. Before them an *idle* window with no client shows what the ensemble
//! costs by itself. Requests are the followers' `zk_packets_received` over the window, less
//! the bench's own `mntr` (one per follower and read), per run and second; CPU is the java
//! processes' utime + stime (/proc/PID/stat) over the window, in cores per 100 runs, as
//! measured (the idle ensemble's share included; the idle column gives it). No assertions on
//! timing: figures, printed as one markdown table.

use switchman_test_support as support;

use std::fs::File;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;
use tokio::process::Child;
use zookeeper_client::{Acls, Client, CreateMode};

use support::{Ensemble, Extras, Job, process_cpu, zk};

/// How long the runs of one kind may take to be all in place.
const SETTLE: Duration = Duration::from_secs(300);

fn packets(ensemble: &Ensemble, i: usize) -> u64 {
    ensemble.mntr(i)["zk_packets_received"].parse().unwrap()
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

struct Servers<'a> {
    ensemble: &'a Ensemble,
    leader: usize,
    followers: Vec<usize>,
    /// What one `mntr` adds to a follower's `zk_packets_received`.
    word_cost: u64,
}

/// What one kind cost over its window.
struct Window {
    runs: usize,
    seconds: f64,
    /// Requests that reached the followers, the bench's own words taken off.
    requests: u64,
    followers_cpu: f64,
    leader_cpu: f64,
}

impl Window {
    fn per_run_per_second(&self) -> String {
        if self.runs == 0 {
            format!("— ({:.1}/s in all)", self.requests as f64 / self.seconds)
        } else {
            format!(
                "{:.3}",
                self.requests as f64 / self.runs as f64 / self.seconds
            )
        }
    }

    fn per_100(&self, cpu: f64) -> String {
        if self.runs == 0 {
            format!("— ({:.4} cores in all)", cpu / self.seconds)
        } else {
            format!("{:.4}", cpu / self.seconds / self.runs as f64 * 100.0)
        }
    }
}

impl Servers<'_> {
    async fn window(&self, runs: usize, seconds: f64) -> Window {
        let cpu = |i: usize| process_cpu(self.ensemble.pid(i).expect("a running member"));
        let followers_cpu = || self.followers.iter().map(|&i| cpu(i)).sum::<f64>();
        let p0: Vec<u64> = self
            .followers
            .iter()
            .map(|&i| packets(self.ensemble, i))
            .collect();
        let (f0, l0, t0) = (followers_cpu(), cpu(self.leader), Instant::now());
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        let (f1, l1, elapsed) = (followers_cpu(), cpu(self.leader), t0.elapsed());
        let p1: Vec<u64> = self
            .followers
            .iter()
            .map(|&i| packets(self.ensemble, i))
            .collect();
        // The second mntr of each follower is counted in its own figure; the first one was not.
        let requests = p0
            .iter()
            .zip(&p1)
            .map(|(a, b)| (b - a).saturating_sub(self.word_cost))
            .sum();
        if self.ensemble.leader() != Some(self.leader) {
            eprintln!("ensemble: the leader changed during the window");
        }
        Window {
            runs,
            seconds: elapsed.as_secs_f64(),
            requests,
            followers_cpu: f1 - f0,
            leader_cpu: l1 - l0,
        }
    }

    /// Waits until no client is connected to the followers, so that one kind's sessions are
    /// gone before the next one's are measured.
    async fn wait_until_no_clients(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let alive: u64 = self
                .followers
                .iter()
                .map(|&i| {
                    self.ensemble.mntr(i)["zk_num_alive_connections"]
                        .parse::<u64>()
                        .unwrap()
                })
                .sum();
            // Each follower counts the connection that asks it.
            if alive <= self.followers.len() as u64 {
                return;
            }
            if Instant::now() > deadline {
                eprintln!("ensemble: {alive} connections (with ours) still alive after 60 s");
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The bench's runs of one kind: started with their stderr in one file of the job's, ended
/// with SIGTERM (switchman ends CMD and closes its session), then SIGKILL.
struct Runs {
    children: Vec<Child>,
    stderr: File,
}

impl Runs {
    fn new(job: &Job) -> Runs {
        let stderr = File::options()
            .create(true)
            .append(true)
            .open(job.file("stderr"))
            .unwrap();
        Runs {
            children: Vec::new(),
            stderr,
        }
    }

    fn spawn(&mut self, job: &Job, args: &[&str]) {
        let mut cmd = job.command(args);
        cmd.stdout(Stdio::null())
            .stderr(Stdio::from(self.stderr.try_clone().unwrap()));
        self.children.push(cmd.spawn().expect("start switchman"));
    }

    /// Panics, with what they said, if any run has ended.
    fn check_alive(&mut self, job: &Job) {
        let ended = self
            .children
            .iter_mut()
            .filter_map(|c| c.try_wait().unwrap())
            .count();
        assert!(
            ended == 0,
            "{ended} runs ended early: {}",
            job.read("stderr")
        );
    }

    async fn stop(mut self) {
        for child in &self.children {
            if let Some(pid) = child.id() {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
            }
        }
        for child in &mut self.children {
            if tokio::time::timeout(Duration::from_secs(20), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
    }
}

/// How many children `path` has (none if it does not exist).
async fn count(admin: &Client, path: &str) -> usize {
    match admin.list_children(path).await {
        Ok(kids) => kids.len(),
        Err(zookeeper_client::Error::NoNode) => 0,
        Err(e) => panic!("list {path}: {e}"),
    }
}

/// Waits until `path` has `n` children (seen from the bench's own client), the runs alive.
async fn await_count(admin: &Client, path: &str, n: usize, runs: &mut Runs, job: &Job) {
    let deadline = Instant::now() + SETTLE;
    loop {
        runs.check_alive(job);
        let have = count(admin, path).await;
        if have == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path}: {have} children, not {n}, after {SETTLE:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::main]
async fn main() {
    let n = support::env_or("ENSEMBLE_RUNS", 200usize).max(2);
    let seconds = support::env_or("ENSEMBLE_SECONDS", 10.0f64);
    let tick_ms = support::env_or("ENSEMBLE_TICK_MS", 2000u32);
    let cores = std::thread::available_parallelism().map_or(0, |c| c.get());
    let load_before = load();

    let ensemble = Ensemble::start_with_extras(3, |_, _| Extras {
        cfg: vec![format!("tickTime={tick_ms}"), "maxClientCnxns=0".into()],
        ..Extras::default()
    });
    let leader = ensemble.wait_for_leader(Duration::from_secs(60));
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    for &i in &followers {
        assert_eq!(ensemble.mntr(i)["zk_server_state"], "follower");
    }
    let zkhosts = followers
        .iter()
        .map(|&i| format!("127.0.0.1:{}", ensemble.client_port(i)))
        .collect::<Vec<_>>()
        .join(",");
    let word_cost = followers
        .iter()
        .map(|&i| {
            (0..3)
                .map(|_| packets(&ensemble, i).abs_diff(packets(&ensemble, i)))
                .min()
                .unwrap()
        })
        .max()
        .unwrap();
    let servers = Servers {
        ensemble: &ensemble,
        leader,
        followers,
        word_cost,
    };
    let admin = zk(&format!("127.0.0.1:{}", ensemble.client_port(leader))).await;
    println!(
        "ensemble of 3 (tickTime {tick_ms} ms), leader member {leader}, clients on followers \
         {zkhosts}; {n} runs per kind, windows of {seconds} s; packets per mntr {word_cost}"
    );

    let config = json!({
        "session_timeout": 10,
        "server_tick_time": tick_ms as f64 / 1000.0,
        "loglevel": "info",
    });

    // Idle: the ensemble by itself (and the bench's own client on the leader).
    let idle = servers.window(0, seconds).await;
    println!("idle: done");

    // Holding: each run its own lock.
    let job = Job::new("ensemble-holding", &zkhosts, config.clone());
    let mut runs = Runs::new(&job);
    let started = Instant::now();
    for i in 0..n {
        runs.spawn(
            &job,
            &["--lockname", &format!("h{i}"), "--", "sleep", "1000"],
        );
    }
    await_count(&admin, &job.locks_path(), n, &mut runs, &job).await;
    println!("holding: all {n} in place after {:?}", started.elapsed());
    let holding = servers.window(n, seconds).await;
    runs.check_alive(&job);
    runs.stop().await;
    servers.wait_until_no_clients().await;

    // Waiting: one holds the lease, the others wait in line for it.
    let job = Job::new("ensemble-waiting", &zkhosts, config.clone());
    support::set_prefix_data(&admin, &job.prefix, r#"{"resources": ["r"]}"#).await;
    let mut runs = Runs::new(&job);
    let started = Instant::now();
    let lease = |i: usize| {
        let name = format!("w{i}");
        move |runs: &mut Runs, job: &Job| {
            runs.spawn(
                job,
                &[
                    "--lockname",
                    &name,
                    "--lease",
                    "r=1:1",
                    "--",
                    "sleep",
                    "1000",
                ],
            )
        }
    };
    lease(0)(&mut runs, &job);
    await_count(&admin, &job.leases_path("r"), 1, &mut runs, &job).await;
    for i in 1..n {
        lease(i)(&mut runs, &job);
    }
    await_count(&admin, &job.queue_path("r"), n - 1, &mut runs, &job).await;
    println!("waiting: all {n} in place after {:?}", started.elapsed());
    let waiting = servers.window(n, seconds).await;
    runs.check_alive(&job);
    let leases = count(&admin, &job.leases_path("r")).await;
    assert_eq!(leases, 1, "one lease held through the window");
    runs.stop().await;
    servers.wait_until_no_clients().await;

    // Plain: sessions of the same client library, each with one ephemeral node.
    let folder = "/t/ensemble-plain";
    admin
        .mkdir(
            folder,
            &CreateMode::Persistent.with_acls(Acls::anyone_all()),
        )
        .await
        .unwrap();
    let started = Instant::now();
    let mut sessions = Vec::with_capacity(n);
    for i in 0..n {
        let client = Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(&zkhosts)
            .await
            .expect("a plain session connects");
        let ephemeral = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
        client
            .create(&format!("{folder}/p{i}"), b"", &ephemeral)
            .await
            .unwrap();
        sessions.push(client);
    }
    println!("plain: all {n} in place after {:?}", started.elapsed());
    let plain = servers.window(n, seconds).await;
    assert_eq!(count(&admin, folder).await, n);
    drop(sessions);

    let kinds = [("idle (0 runs)", &idle), ("holding", &holding)];
    let kinds = kinds
        .into_iter()
        .chain([("waiting", &waiting), ("plain sessions", &plain)]);
    let kinds: Vec<(&str, &Window)> = kinds.collect();
    println!();
    println!(
        "{cores} cores, load {load_before} before, {} after; ZooKeeper 3.8, 3 servers, \
         tickTime {tick_ms} ms; {n} runs per kind, session_timeout 10 s, {seconds} s windows",
        load()
    );
    println!();
    let header: Vec<&str> = kinds.iter().map(|(name, _)| *name).collect();
    println!("| | {} |", header.join(" | "));
    println!("|---|{}", "---|".repeat(kinds.len()));
    let row = |what: &str, f: &dyn Fn(&Window) -> String| {
        let cells: Vec<String> = kinds.iter().map(|(_, w)| f(w)).collect();
        println!("| {what} | {} |", cells.join(" | "));
    };
    row("requests/s reaching the followers, per run", &|w| {
        w.per_run_per_second()
    });
    row("followers' CPU per 100 runs (cores, both)", &|w| {
        w.per_100(w.followers_cpu)
    });
    row("leader's CPU per 100 runs (cores)", &|w| {
        w.per_100(w.leader_cpu)
    });
    row("window (s)", &|w| format!("{:.1}", w.seconds));
}
