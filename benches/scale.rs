//! Scale: hundreds of switchman processes waiting for one thing, and a thousand plain runs
//! started at once, all on this machine against one private ZooKeeper.
//!
//! ```text
//! cargo bench --bench scale
//! SCALE_WAITERS=50 SCALE_RUNS=100 SWITCHMAN_BEFORE=/old/switchman cargo bench --bench scale
//! SCALE_ONLY=lease|wait|plain cargo bench --bench scale
//! ```
//!
//! The hand-off, at 20 contenders (`SCALE_SMALL_ROUNDS` rounds, default 5) and at
//! `SCALE_WAITERS` (default 500, one round), of a `1:1` lease (each contender runs `--lockname
//! cI --lease r=1:1`) and of one lock waited for in line (`--lockname L --wait forever`). CMD is
//! this executable as `scale stamp RECORDS GATES NAME`: it appends `start NAME T` (T from
//! CLOCK_MONOTONIC), works out from the records that it is the K-th to run (one CMD runs at a
//! time), waits for `GATES/K` or `GATES/open`, and appends `end NAME T`. Once one CMD runs and
//! all the others wait in line, the bench
//!
//! - samples VmRSS (and its anonymous part), PSS (`smaps_rollup`) and the threads of every
//!   waiting switchman;
//! - reads the server's watches (`wchp`, and `mntr`'s `zk_watch_count` for the child watches,
//!   which `wchp` does not list): at most one watcher per queue node is no herd by design;
//! - counts the requests of a quiet window (a cold beat's interval, after waiting one), in
//!   20 ms slices: the heartbeats per process and second, and whether processes started
//!   together beat in step;
//! - lets `SCALE_STEPS` (default 5) hand-offs through one at a time and compares every
//!   session's packet count (`cons`) before and after each: the sessions closed (the holder that
//!   let go), the sessions woken (more than a heartbeat's worth, or a last request other than a
//!   heartbeat) and what they sent, and the sessions that only heartbeated. A herd would wake
//!   every waiter;
//! - opens the gate for the rest: their hand-offs (one CMD's end to the next one's start) give
//!   the median and tails. The round's requests (`zk_packets_received`, the bench's own
//!   four-letter words taken off), less the heartbeats of the time each process was alive (the
//!   quiet window's rate), over the number of runs, are the requests per acquisition.
//!
//! Plain runs: `SCALE_RUNS` (default 1000) of `switchman --lockname pI -- true`, all started at
//! once (each a shell blocked on a FIFO until all are ready, then exec'd): how many succeeded,
//! the batch's wall time, requests per run, failures and their messages. Then the same with a
//! CMD that waits until every run's CMD has started: that many locks and sessions at once.
//!
//! `flock(1)`, when installed, runs alongside: the same CMD under `flock FILE` (the floor this
//! machine sets for a hand-off between processes), and `flock FILE true` per plain run; so does
//! `etcdctl lock` against a private etcd, when installed. etcd keeps its default of an fsync per
//! write, where the harness's ZooKeeper has `forceSync=no`: under load they are not alike.
//!
//! For every phase the bench prints what the machine did: CPU busy (/proc/stat, in cores), ours
//! (ZooKeeper, etcd and the children, from getrusage), ZooKeeper's RSS, and the server's peaks
//! (connections, outstanding requests, file descriptors and their limit, latency), throttled
//! requests and sockets in TIME_WAIT, to tell switchman's limits from the machine's.
//!
//! The server: the harness's standalone ZooKeeper (tickTime 100 ms) with `maxClientCnxns=0` (no
//! limit), as the default of 60 connections from one address would turn all but 60 of the
//! waiters away; `SCALE_MAX_CLIENT_CNXNS=60` shows that. Runs use a real config's defaults
//! (session_timeout 10 s, loglevel info).

use switchman_test_support as support;

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::time::{ClockId, clock_gettime};
use serde_json::json;

use support::peers::{Etcd, etcdctl, installed};
use support::{Ensemble, Extras, Job, process_cpu, switchman_bin, zk};

/// The small size the large one is compared with.
const SMALL: usize = 20;

/// A cold heartbeat's interval at the default session timeout: T/4.
const COLD_BEAT: Duration = Duration::from_millis(2500);

fn monotonic_ns() -> u128 {
    let ts = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC");
    ts.tv_sec() as u128 * 1_000_000_000 + ts.tv_nsec() as u128
}

fn starts(records: &Path) -> usize {
    std::fs::read_to_string(records)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("start "))
        .count()
}

/// CMD: `stamp RECORDS GATES NAME`.
fn stamp(records: &Path, gates: &Path, name: &str) {
    let append = |what: &str| {
        let line = format!("{what} {name} {}\n", monotonic_ns());
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(records)
            .expect("open records");
        // One write of one short line: appends from several processes never interleave.
        f.write_all(line.as_bytes()).expect("write records");
    };
    append("start");
    // Only one CMD runs at a time, so the starts so far say which one we are.
    let k = starts(records).to_string();
    // The job's directory goes when the bench ends, panicking or not: then no gate will open.
    while !gates.join("open").exists() && !gates.join(&k).exists() && gates.exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    append("end");
}

/// (start, end) per CMD, in the order they ran.
fn read_records(path: &Path) -> Vec<(u128, u128)> {
    let text = std::fs::read_to_string(path).expect("records");
    let mut runs: HashMap<&str, (u128, Option<u128>)> = HashMap::new();
    for line in text.lines() {
        let mut parts = line.split(' ');
        let (what, name, t) = (parts.next().unwrap(), parts.next().unwrap(), parts.next());
        let t = t.unwrap().parse::<u128>().unwrap();
        if what == "start" {
            runs.insert(name, (t, None));
        } else if let Some(run) = runs.get_mut(name) {
            run.1 = Some(t);
        }
    }
    let mut runs: Vec<(u128, u128)> = runs
        .into_iter()
        .map(|(name, (s, e))| (s, e.unwrap_or_else(|| panic!("{name} never ended"))))
        .collect();
    runs.sort();
    runs
}

// ---------------------------------------------------------------------------------------
// What the machine and the server did
// ---------------------------------------------------------------------------------------

/// Four-letter words sent so far: the server counts each among its packets, as it counts a
/// request, so a window's requests are its packets less its words times [`word_cost`].
static WORDS: AtomicU64 = AtomicU64::new(0);

fn word(port: u16, word: &str) -> String {
    WORDS.fetch_add(1, Ordering::SeqCst);
    support::four_letter_word(port, word).unwrap_or_default()
}

fn mntr(ensemble: &Ensemble) -> HashMap<String, String> {
    support::parse_mntr(&word(ensemble.client_port(0), "mntr"))
}

fn packets(ensemble: &Ensemble) -> u64 {
    mntr(ensemble)["zk_packets_received"].parse().unwrap()
}

/// Packets and words so far, for [`Mark::since`].
#[derive(Clone, Copy)]
struct Mark(u64, u64);

fn mark(ensemble: &Ensemble) -> Mark {
    let p = packets(ensemble);
    Mark(p, WORDS.load(Ordering::SeqCst))
}

impl Mark {
    /// Requests since `earlier`, the bench's own words taken off.
    fn since(self, earlier: Mark, word_cost: u64) -> u64 {
        (self.0 - earlier.0).saturating_sub((self.1 - earlier.1) * word_cost)
    }
}

/// What one four-letter word adds to `zk_packets_received`: `mntr`'s, printed beside the others'
/// to show that they are all alike.
fn word_cost(ensemble: &Ensemble) -> u64 {
    let port = ensemble.client_port(0);
    let mntr = packets(ensemble).abs_diff(packets(ensemble));
    let costs: Vec<(&str, u64)> = ["cons", "dump", "wchp"]
        .into_iter()
        .map(|w| {
            let a = packets(ensemble);
            word(port, w);
            (w, packets(ensemble) - a - mntr)
        })
        .collect();
    println!("packets per four-letter word: mntr {mntr}, {costs:?}");
    mntr
}

/// Busy and total jiffies of the whole machine, from /proc/stat.
fn machine_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let cpu: Vec<u64> = stat
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = cpu.iter().take(8).sum();
    // idle and iowait
    (total - cpu[3] - cpu[4], total)
}

/// CPU seconds of every reaped child so far.
fn children_cpu() -> f64 {
    // SAFETY: getrusage writes into the struct we hand it.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// The highest values of a few `mntr` keys while a phase runs, sampled every 100 ms.
struct Peaks {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<HashMap<&'static str, u64>>,
}

const PEAK_KEYS: [&str; 4] = [
    "zk_num_alive_connections",
    "zk_outstanding_requests",
    "zk_open_file_descriptor_count",
    "zk_max_latency",
];

impl Peaks {
    fn start(port: u16) -> Peaks {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peaks = HashMap::new();
            loop {
                let done = stopped.load(Ordering::SeqCst);
                let mntr = support::parse_mntr(&word(port, "mntr"));
                for key in PEAK_KEYS {
                    let v = mntr.get(key).and_then(|v| v.parse().ok()).unwrap_or(0);
                    let peak = peaks.entry(key).or_insert(0);
                    *peak = v.max(*peak);
                }
                if done {
                    return peaks;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Peaks { stop, thread }
    }

    fn finish(self) -> HashMap<&'static str, u64> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}

/// What the machine did over one phase.
struct Load {
    busy: (u64, u64),
    java: f64,
    etcd: f64,
    children: f64,
    at: Instant,
    peaks: Peaks,
}

impl Load {
    fn start(ensemble: &Ensemble) -> Load {
        // Latency peaks of this phase only. It zeroes zk_packets_received too: a phase takes
        // its first Mark after this.
        word(ensemble.client_port(0), "srst");
        Load {
            busy: machine_jiffies(),
            java: process_cpu(ensemble.pid(0).unwrap()),
            etcd: ETCD_PID.get().map_or(0.0, |&pid| process_cpu(pid)),
            children: children_cpu(),
            at: Instant::now(),
            peaks: Peaks::start(ensemble.client_port(0)),
        }
    }

    /// One line: cores busy, ZooKeeper's CPU, the children's CPU per run, the server's peaks.
    fn finish(self, ensemble: &Ensemble, runs: usize) -> String {
        let wall = self.at.elapsed().as_secs_f64();
        let (busy, total) = machine_jiffies();
        let cores = num_cpus();
        let machine = (busy - self.busy.0) as f64 / (total - self.busy.1).max(1) as f64 * cores;
        let java = (process_cpu(ensemble.pid(0).unwrap()) - self.java) / wall;
        let etcd = (ETCD_PID.get().map_or(0.0, |&pid| process_cpu(pid)) - self.etcd) / wall;
        let children = children_cpu() - self.children;
        let ours = java + etcd + children / wall;
        let children = children / runs.max(1) as f64;
        let peaks = self.peaks.finish();
        let end = mntr(ensemble);
        format!(
            "{wall:.1} s: machine {machine:.2} of {cores} cores busy, ours {ours:.2} (ZooKeeper \
             {java:.2}, etcd {etcd:.2}), {:.1} ms CPU per run (the contender and CMD); \
             ZooKeeper's RSS {} MiB; server peaks: {} connections, {} outstanding requests, {} \
             fds (limit {}), max latency {} ms; {} ops throttled; {} sockets in TIME_WAIT",
            children * 1e3,
            memory(ensemble.pid(0).unwrap() as u32).map_or(0, |m| m.0 / 1024),
            peaks["zk_num_alive_connections"],
            peaks["zk_outstanding_requests"],
            peaks["zk_open_file_descriptor_count"],
            end["zk_max_file_descriptor_count"],
            peaks["zk_max_latency"],
            end["zk_throttled_ops"],
            time_wait(),
        )
    }
}

/// TCP sockets of this machine in TIME_WAIT (each holds a local port for a minute).
fn time_wait() -> usize {
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split_whitespace().nth(3) == Some("06"))
        .count()
}

fn num_cpus() -> f64 {
    std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
}

// ---------------------------------------------------------------------------------------
// The server's view of the sessions and their watches
// ---------------------------------------------------------------------------------------

/// Per session (`cons`): packets received and the last operation.
fn connections(ensemble: &Ensemble) -> HashMap<String, (u64, String)> {
    let text = word(ensemble.client_port(0), "cons");
    let field = |line: &str, key: &str| {
        let at = line.find(&format!("{key}="))? + key.len() + 1;
        let rest = &line[at..];
        Some(rest[..rest.find([',', ')']).unwrap_or(rest.len())].to_string())
    };
    text.lines()
        .filter_map(|line| {
            let sid = field(line, "sid")?;
            let recved = field(line, "recved")?.parse().ok()?;
            Some((sid, (recved, field(line, "lop").unwrap_or_default())))
        })
        .collect()
}

/// A heartbeat's request: a warm run's `sync`, a cold run's `exists`, the library's ping.
fn is_heartbeat(op: &str) -> bool {
    let op = op.to_ascii_uppercase();
    op.starts_with("SYNC") || op.starts_with("PING") || op.starts_with("EXIS")
}

/// One hand-off seen from the server, session by session (`cons` before and after).
struct Step {
    /// Sessions that sent more than heartbeats, and what they sent.
    woken: usize,
    requests: u64,
    /// Sessions that sent heartbeats only.
    beating: usize,
    /// Sessions gone: the holder that let go.
    closed: usize,
}

fn step_between(
    before: &HashMap<String, (u64, String)>,
    after: &HashMap<String, (u64, String)>,
) -> Step {
    let mut step = Step {
        woken: 0,
        requests: 0,
        beating: 0,
        closed: before.keys().filter(|s| !after.contains_key(*s)).count(),
    };
    for (sid, (recved, op)) in after {
        let delta = recved - before.get(sid).map_or(0, |b| b.0);
        // A woken waiter sends at least a listing and a watch; in a window this short, a
        // waiter that is not woken sends one heartbeat at most (a cold one every T/4).
        if delta >= 2 || (delta >= 1 && !is_heartbeat(op)) {
            step.woken += 1;
            step.requests += delta;
        } else if delta > 0 {
            step.beating += 1;
        }
    }
    step
}

/// Watches the server holds for the contenders.
#[derive(Default)]
struct Watches {
    /// Queue (or line) nodes watched, and the most sessions watching one of them.
    queue_nodes: usize,
    per_queue_node: usize,
    /// The most sessions watching one lock node.
    per_lock_node: usize,
    /// Data and exists watches in all, and child watches in all.
    data: usize,
    child: usize,
}

fn watches(ensemble: &Ensemble, job: &Job, mode: Mode) -> Watches {
    // The harness sends this `wchp`; no session is -1, so none is left out.
    WORDS.fetch_add(1, Ordering::SeqCst);
    let by_path = ensemble.watches_by_path(0, -1);
    let queue = format!("{}/", mode.queue(job));
    let locks = format!("{}/locks/", job.prefix);
    let most = |prefix: &str| {
        by_path
            .iter()
            .filter(|(p, _)| p.starts_with(prefix))
            .map(|(_, s)| s.len())
            .max()
            .unwrap_or(0)
    };
    let data = by_path.values().map(Vec::len).sum();
    let total: usize = mntr(ensemble)["zk_watch_count"].parse().unwrap();
    Watches {
        queue_nodes: by_path.keys().filter(|p| p.starts_with(&queue)).count(),
        per_queue_node: most(&queue),
        per_lock_node: most(&locks),
        data,
        child: total.saturating_sub(data),
    }
}

/// How many ephemeral nodes under `folder` the server holds (from `dump`).
fn ephemerals_under(ensemble: &Ensemble, folder: &str) -> usize {
    let dump = word(ensemble.client_port(0), "dump");
    let prefix = format!("{folder}/");
    dump.lines()
        .filter(|l| l.trim().starts_with(&prefix))
        .count()
}

// ---------------------------------------------------------------------------------------
// Memory of the waiting processes
// ---------------------------------------------------------------------------------------

/// (VmRSS, RssAnon, Pss, threads) of a process, in KiB (threads a count).
fn memory(pid: u32) -> Option<(u64, u64, u64, u64)> {
    let kib = |text: &str, key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))?
            .split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    Some((
        kib(&status, "VmRSS:")?,
        kib(&status, "RssAnon:")?,
        kib(&rollup, "Pss:").unwrap_or(0),
        kib(&status, "Threads:")?,
    ))
}

fn median_max(mut v: Vec<u64>) -> (u64, u64) {
    v.sort();
    (v[v.len() / 2], *v.last().unwrap_or(&0))
}

// ---------------------------------------------------------------------------------------
// The hand-off
// ---------------------------------------------------------------------------------------

/// What the contenders contend for.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// A `1:1` lease, each contender with a lock of its own.
    Lease,
    /// One lock, waited for in line.
    Wait,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Lease => "lease",
            Mode::Wait => "wait",
        }
    }

    /// switchman's options for the contender `name`.
    fn options(self, name: &str) -> Vec<&str> {
        match self {
            Mode::Lease => vec!["--lockname", name, "--lease", "r=1:1"],
            Mode::Wait => vec!["--lockname", "L", "--wait", "forever"],
        }
    }

    /// The folder the contenders wait in.
    fn queue(self, job: &Job) -> String {
        match self {
            Mode::Lease => job.queue_path("r"),
            Mode::Wait => job.line_path("L"),
        }
    }
}

/// Whom the contenders are: a switchman build, or flock(1) or etcdctl for comparison.
#[derive(Clone)]
enum Contender {
    Switchman(String, PathBuf),
    Flock,
    /// `etcdctl lock`, against the private etcd at this endpoint.
    Etcd(String),
}

impl Contender {
    fn name(&self) -> &str {
        match self {
            Contender::Switchman(name, _) => name,
            Contender::Flock => "flock(1)",
            Contender::Etcd(_) => "etcdctl lock",
        }
    }
}

/// The figures of one contender at one size, over its rounds.
#[derive(Default)]
struct Figures {
    handoffs: Vec<Duration>,
    /// Per round: requests per acquisition less heartbeats, and raw.
    requests: Vec<(f64, f64)>,
    /// Heartbeats per waiting process and second.
    heartbeat_rate: Vec<f64>,
    /// Requests in each 20 ms of the quiet window.
    slices: Vec<u64>,
    steps: Vec<Step>,
    rss: Vec<u64>,
    anon: Vec<u64>,
    pss: Vec<u64>,
    threads: Vec<u64>,
    watches: Vec<Watches>,
    queue_up: Vec<Duration>,
    load: Vec<String>,
}

struct Bench {
    /// This executable, the CMD.
    exe: PathBuf,
    ensemble: Ensemble,
    /// Hand-offs let through one at a time in each round.
    steps: usize,
    word_cost: u64,
}

impl Bench {
    /// A job whose prefix lists the resource `r`, its folders made by one run alone.
    async fn job(&self, contender: &Contender, mode: Mode) -> Job {
        let job = Job::new(
            "scale",
            &self.ensemble.connect_string(),
            json!({"session_timeout": 10, "termination_timeout": 10, "loglevel": "info"}),
        );
        let client = zk(&self.ensemble.connect_string()).await;
        support::set_prefix_data(&client, &job.prefix, r#"{"resources": ["r"]}"#).await;
        // Closed before any count starts.
        drop(client);
        std::fs::create_dir(job.file("gates")).unwrap();
        std::fs::write(job.file("gates/open"), "").unwrap();
        if let Contender::Switchman(..) = contender {
            let status = self
                .spawn(&job, contender, mode, "warm", "warm", "gates")
                .wait()
                .unwrap();
            assert!(status.success(), "the warm-up run failed: {status}");
        }
        job
    }

    fn spawn(
        &self,
        job: &Job,
        contender: &Contender,
        mode: Mode,
        name: &str,
        round: &str,
        gates: &str,
    ) -> Child {
        let mut cmd = match contender {
            Contender::Switchman(_, exe) => {
                let mut cmd = Command::new(exe);
                cmd.arg("-c")
                    .arg(&job.config)
                    .args(mode.options(name))
                    .arg("--");
                cmd
            }
            Contender::Flock => {
                let mut cmd = Command::new("flock");
                cmd.arg(job.file("flock"));
                cmd
            }
            Contender::Etcd(endpoint) => {
                let mut cmd = etcdctl(endpoint);
                cmd.args(["lock", &etcd_lock(job, "L")]);
                cmd
            }
        };
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(job.file(&format!("stderr-{round}")))
            .unwrap();
        cmd.arg(&self.exe)
            .arg("stamp")
            .arg(job.file(&format!("records-{round}")))
            .arg(job.file(gates))
            .arg(name)
            .env_remove("DEBUG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start a contender")
    }

    /// One round of `n` contenders; adds to `figures`.
    fn round(
        &self,
        job: &Job,
        contender: &Contender,
        mode: Mode,
        n: usize,
        round: usize,
        figures: &mut Figures,
    ) {
        let ensemble = &self.ensemble;
        let is_switchman = matches!(contender, Contender::Switchman(..));
        let tag = format!("{round}");
        let gates = format!("gates-{round}");
        std::fs::create_dir(job.file(&gates)).unwrap();
        let records = job.file(&format!("records-{round}"));
        let queue = mode.queue(job);

        let load = Load::start(ensemble);
        let before = mark(ensemble);
        let spawned = monotonic_ns();
        let at = Instant::now();
        let mut runs = Contenders(
            (0..n)
                .map(|i| self.spawn(job, contender, mode, &format!("c{round}-{i}"), &tag, &gates))
                .collect(),
        );
        // One CMD runs; everyone else waits.
        support::wait_until_blocking("every contender waits", Duration::from_secs(300), || {
            std::thread::sleep(Duration::from_millis(200));
            if let Some(status) = runs.0.iter_mut().find_map(|r| r.try_wait().unwrap()) {
                panic!(
                    "a contender exited {status} before its turn: {}",
                    job.read(&format!("stderr-{tag}"))
                );
            }
            starts(&records) == 1
                && match contender {
                    Contender::Switchman(..) => ephemerals_under(ensemble, &queue) == n - 1,
                    Contender::Flock => blocked_flocks(&job.file("flock")) == n - 1,
                    // The holder's key and one per waiter.
                    Contender::Etcd(endpoint) => etcd_keys(endpoint, &etcd_lock(job, "L")) == n,
                }
        });
        figures.queue_up.push(at.elapsed());

        let running = read_first_name(&records);
        for (i, run) in runs.0.iter().enumerate() {
            if format!("c{round}-{i}") == running {
                continue;
            }
            if let Some((rss, anon, pss, threads)) = memory(run.id()) {
                figures.rss.push(rss);
                figures.anon.push(anon);
                figures.pss.push(pss);
                figures.threads.push(threads);
            }
        }

        let mut waited_steps = 0;
        if is_switchman {
            figures.watches.push(watches(ensemble, job, mode));
            // A quiet window, in slices of 20 ms: everyone alive heartbeats, the holder and the
            // n - 1 waiters, and the slices show whether they beat in step. A waiting run's
            // first (cold) beat comes half an interval to an interval (T/4, 2.5 s at the
            // default T) after it connects: the window waits for one, and spans one.
            std::thread::sleep(COLD_BEAT);
            let (m0, t0) = (mark(ensemble), Instant::now());
            let mut last = m0;
            while t0.elapsed() < COLD_BEAT {
                std::thread::sleep(Duration::from_millis(20));
                let m = mark(ensemble);
                figures.slices.push(m.since(last, self.word_cost));
                last = m;
            }
            let quiet = last.since(m0, self.word_cost) as f64;
            figures
                .heartbeat_rate
                .push(quiet / t0.elapsed().as_secs_f64() / n as f64);
            for k in 1..=self.steps.min(n - 1) {
                let c0 = connections(ensemble);
                std::fs::write(job.file(&format!("{gates}/{k}")), "").unwrap();
                support::wait_until_blocking(
                    "the next CMD starts",
                    Duration::from_secs(60),
                    || starts(&records) == k + 1,
                );
                // The waiter behind the new holder wakes as the holder leaves the queue.
                std::thread::sleep(Duration::from_millis(200));
                let c1 = connections(ensemble);
                figures.steps.push(step_between(&c0, &c1));
                waited_steps = k;
            }
        }
        std::fs::write(job.file(&format!("{gates}/open")), "").unwrap();
        for run in &mut runs.0 {
            let status = run.wait().unwrap();
            assert!(
                status.success(),
                "a contender exited {status}: {}",
                job.read(&format!("stderr-{tag}"))
            );
        }
        let requests = mark(ensemble).since(before, self.word_cost);
        figures.load.push(load.finish(ensemble, n));

        let ran = read_records(&records);
        assert_eq!(ran.len(), n);
        for (j, pair) in ran.windows(2).enumerate() {
            assert!(pair[1].0 >= pair[0].1, "CMDs overlapped: {pair:?}");
            if j >= waited_steps {
                figures
                    .handoffs
                    .push(Duration::from_nanos((pair[1].0 - pair[0].1) as u64));
            }
        }
        if is_switchman {
            // Every process heartbeats from its start to its CMD's end.
            let alive: f64 = ran.iter().map(|r| (r.1 - spawned) as f64 / 1e9).sum();
            let rate = *figures.heartbeat_rate.last().unwrap();
            let raw = requests as f64 / n as f64;
            figures
                .requests
                .push(((requests as f64 - rate * alive) / n as f64, raw));
        }
    }
}

/// A round's processes. Should the bench fail, they are killed rather than left to find out
/// for themselves, a session timeout later, that ZooKeeper is gone: hundreds of them, on a
/// machine that others share.
struct Contenders(Vec<Child>);

impl Drop for Contenders {
    fn drop(&mut self) {
        for run in &mut self.0 {
            if let Ok(None) = run.try_wait() {
                let _ = run.kill();
                let _ = run.wait();
            }
        }
    }
}

fn read_first_name(records: &Path) -> String {
    let text = std::fs::read_to_string(records).unwrap_or_default();
    text.split(' ').nth(1).unwrap_or_default().to_string()
}

/// etcd's pid, for [`Load`] to read its CPU.
static ETCD_PID: std::sync::OnceLock<i32> = std::sync::OnceLock::new();

/// A lock name of the job's own in etcd's one key space.
fn etcd_lock(job: &Job, name: &str) -> String {
    format!("{}/{name}", job.prefix)
}

/// Keys under the lock `name`: its holder's and one per waiter.
fn etcd_keys(endpoint: &str, name: &str) -> usize {
    etcdctl(endpoint)
        .args(["get", "--prefix", "--keys-only", &format!("{name}/")])
        .stderr(Stdio::null())
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| !l.is_empty())
                .count()
        })
        .unwrap_or(0)
}

/// flock(1)s blocked on the lock of `file`, from /proc/locks (cargo, for one, flocks too).
fn blocked_flocks(file: &Path) -> usize {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(file) else {
        return 0;
    };
    let inode = format!(":{} ", meta.ino());
    std::fs::read_to_string("/proc/locks")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("-> FLOCK") && l.contains(&inode))
        .count()
}

fn pick(sorted: &[Duration], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3
}

fn median_f(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// What the summary at the end takes from one contender at one size.
struct Brief {
    median: f64,
    p99: f64,
    requests: Option<f64>,
    woken: Option<usize>,
    /// RSS and PSS in MiB, medians.
    memory: Option<(f64, f64)>,
}

fn report(name: &str, n: usize, f: &mut Figures) -> Brief {
    f.handoffs.sort();
    let median = pick(&f.handoffs, 0.5);
    println!(
        "  {name} at {n}: hand-off median {median:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms \
         over {} hand-offs; {} to line up",
        pick(&f.handoffs, 0.9),
        pick(&f.handoffs, 0.99),
        pick(&f.handoffs, 1.0),
        f.handoffs.len(),
        f.queue_up
            .iter()
            .map(|d| format!("{:.1} s", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !f.requests.is_empty() {
        let net = median_f(f.requests.iter().map(|r| r.0).collect());
        let raw = median_f(f.requests.iter().map(|r| r.1).collect());
        println!(
            "    requests per acquisition {net:.1} less heartbeats ({raw:.1} with them, in this \
             bench's rounds); heartbeats {:.2} per process and second, per 20 ms median {} and \
             max {}",
            median_f(f.heartbeat_rate.clone()),
            median_max(f.slices.clone()).0,
            median_max(f.slices.clone()).1,
        );
    }
    if !f.steps.is_empty() {
        let woken: Vec<usize> = f.steps.iter().map(|s| s.woken).collect();
        let requests: Vec<u64> = f.steps.iter().map(|s| s.requests).collect();
        let closed: Vec<usize> = f.steps.iter().map(|s| s.closed).collect();
        let beating: Vec<usize> = f.steps.iter().map(|s| s.beating).collect();
        println!(
            "    one hand-off at a time ({} of them): sessions closed {closed:?}, woken {woken:?} \
             sending {requests:?} requests; sessions that only heartbeated meanwhile {beating:?}",
            f.steps.len()
        );
    }
    for w in &f.watches {
        println!(
            "    watches: {} queue nodes watched, at most {} watcher(s) on one; at most {} on one \
             lock node; {} data watches, {} child watch(es) in all",
            w.queue_nodes, w.per_queue_node, w.per_lock_node, w.data, w.child
        );
    }
    if !f.rss.is_empty() {
        let (rss, rss_max) = median_max(f.rss.clone());
        let (pss, pss_max) = median_max(f.pss.clone());
        let (anon, anon_max) = median_max(f.anon.clone());
        let (threads, threads_max) = median_max(f.threads.clone());
        println!(
            "    each waiting process: RSS median {:.2} MiB (max {:.2}; anonymous {:.2}, max {:.2}), \
             PSS median {:.2} MiB (max {:.2}), threads {threads} (max {threads_max}); {} sampled",
            rss as f64 / 1024.0,
            rss_max as f64 / 1024.0,
            anon as f64 / 1024.0,
            anon_max as f64 / 1024.0,
            pss as f64 / 1024.0,
            pss_max as f64 / 1024.0,
            f.rss.len()
        );
    }
    for load in &f.load {
        println!("    {load}");
    }
    Brief {
        median,
        p99: pick(&f.handoffs, 0.99),
        requests: (!f.requests.is_empty())
            .then(|| median_f(f.requests.iter().map(|r| r.0).collect())),
        woken: f.steps.iter().map(|s| s.woken).max(),
        memory: (!f.rss.is_empty()).then(|| {
            let mib = |v: &[u64]| median_max(v.to_vec()).0 as f64 / 1024.0;
            (mib(&f.rss), mib(&f.pss))
        }),
    }
}

/// The figures again, as two Markdown tables, one row per contender, for benches/README.md.
#[derive(Default)]
struct Summary {
    handoff: Vec<String>,
    plain: Vec<(String, [String; 2])>,
}

impl Summary {
    fn handoff(&mut self, name: &str, mode: Mode, small: &Brief, large: &Brief) {
        let pair = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => format!("{a:.1} / {b:.1}"),
            _ => "-".to_string(),
        };
        self.handoff.push(format!(
            "| {name} | {} | {:.1} / {:.1} ms | {:.2} | {:.0} / {:.0} ms | {} | {} | {} |",
            mode.name(),
            small.median,
            large.median,
            large.median / small.median,
            small.p99,
            large.p99,
            pair(small.requests, large.requests),
            large
                .woken
                .max(small.woken)
                .map_or("-".to_string(), |w| w.to_string()),
            large.memory.map_or("-".to_string(), |(rss, pss)| format!(
                "{rss:.1} / {pss:.2} MiB"
            )),
        ));
    }

    fn print(&self, waiters: usize, runs: usize) {
        if !self.handoff.is_empty() {
            println!(
                "\n| | waiting | hand-off median at {SMALL} / {waiters} | ratio | p99 | requests per \
                 acquisition | sessions woken per hand-off | RSS / PSS per waiter |\n\
                 |---|---|---|---|---|---|---|---|"
            );
            for row in &self.handoff {
                println!("{row}");
            }
        }
        if !self.plain.is_empty() {
            println!(
                "\n| | {runs} plain runs at once (CMD true) | {runs} holding their locks at once |\n\
                 |---|---|---|"
            );
            for (name, [plain, held]) in &self.plain {
                println!("| {name} | {plain} | {held} |");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Plain runs at once
// ---------------------------------------------------------------------------------------

/// A FIFO in the job's dir, held open by the bench for reading and writing, so that no open of
/// it blocks: a shell reading a line from it waits until the bench writes one.
fn fifo(job: &Job, name: &str) -> (PathBuf, File) {
    let path = job.file(name);
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    (path, file)
}

/// `n` plain runs on distinct locks, all started at once. With `hold`, each CMD notes that it
/// runs and waits until all of them run: n locks held at the same time.
/// Returns the summary's cell: how many succeeded, how soon.
async fn plain_runs(bench: &Bench, contender: &Contender, n: usize, hold: bool) -> String {
    let ensemble = &bench.ensemble;
    let job = Job::new(
        "plain",
        &ensemble.connect_string(),
        json!({"session_timeout": 10, "termination_timeout": 10, "loglevel": "info"}),
    );
    let (held, (release, mut release_file)) = (job.file("held"), fifo(&job, "release"));
    let cmd: Vec<&std::ffi::OsStr> = if hold {
        vec![
            "/bin/sh".as_ref(),
            "-c".as_ref(),
            r#"echo >>"$0"; read -r _ <"$1""#.as_ref(),
            held.as_os_str(),
            release.as_os_str(),
        ]
    } else {
        vec!["true".as_ref()]
    };
    let command = |i: usize| match contender {
        Contender::Switchman(_, exe) => {
            let mut run = Command::new(exe);
            run.arg("-c")
                .arg(&job.config)
                .args(["--lockname", &format!("p{i}"), "--"])
                .args(&cmd);
            run
        }
        Contender::Flock => {
            let mut run = Command::new("flock");
            run.arg(job.file(&format!("p{i}"))).args(&cmd);
            run
        }
        Contender::Etcd(endpoint) => {
            let mut run = etcdctl(endpoint);
            run.args(["lock", &etcd_lock(&job, &format!("p{i}")), "--"])
                .args(&cmd);
            run
        }
    };
    let out = |i: usize| job.file(&format!("stderr-{i}"));
    // The first run makes the prefix's folders, as on a new prefix.
    release_file.write_all(b"\n").unwrap();
    let warm = command(n).stderr(Stdio::null()).status().unwrap();
    assert!(warm.success());
    std::fs::remove_file(&held).ok();

    // All at once: each run is a shell blocked on reading a line from one FIFO, which the
    // bench holds open (so no open blocks), and execs the run when it gets its line; the lines
    // come in one write once every shell waits. Spawning them one by one would let the first
    // end before the last began.
    let (fifo, mut start) = fifo(&job, "start");
    let mut runs: Vec<Result<Child, String>> = (0..n)
        .map(|i| {
            let run = command(i);
            Command::new("/bin/sh")
                .args(["-c", r#"read -r _ <"$0" && exec "$@""#])
                .arg(&fifo)
                .arg(run.get_program())
                .args(run.get_args())
                .env_remove("DEBUG")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(File::create(out(i)).unwrap())
                .spawn()
                .map_err(|e| format!("spawn: {e}"))
        })
        .collect();
    support::wait_until_blocking("every run waits to start", Duration::from_secs(120), || {
        runs.iter().flatten().all(|r| {
            std::fs::read_to_string(format!("/proc/{}/wchan", r.id()))
                .is_ok_and(|w| w.contains("pipe"))
        })
    });
    let load = Load::start(ensemble);
    let before = mark(ensemble);
    let at = Instant::now();
    start.write_all("\n".repeat(n).as_bytes()).unwrap();
    let mut all_held = None;
    if hold {
        let lines = || {
            std::fs::read_to_string(&held)
                .unwrap_or_default()
                .lines()
                .count()
        };
        let ended = |runs: &mut Vec<Result<Child, String>>| {
            runs.iter_mut()
                .map(|r| r.as_mut().map_or(true, |c| c.try_wait().unwrap().is_some()))
                .filter(|ended| *ended)
                .count()
        };
        support::wait_until_blocking("every run holds its lock", Duration::from_secs(300), || {
            lines() + ended(&mut runs) >= n
        });
        all_held = Some((lines(), at.elapsed()));
        release_file.write_all("\n".repeat(n).as_bytes()).unwrap();
    }
    let mut codes: HashMap<String, usize> = HashMap::new();
    let mut messages: HashMap<String, usize> = HashMap::new();
    for (i, run) in runs.iter_mut().enumerate() {
        let code = match run {
            Ok(child) => child.wait().unwrap().to_string(),
            Err(e) => e.clone(),
        };
        *codes.entry(code).or_default() += 1;
        for line in std::fs::read_to_string(out(i)).unwrap_or_default().lines() {
            // Paths and numbers differ from run to run; the message does not.
            let line: String = line
                .split_whitespace()
                .map(|w| {
                    if w.chars().any(|c| c.is_ascii_digit()) {
                        "#"
                    } else {
                        w
                    }
                })
                .collect::<Vec<_>>()
                .join(" ");
            *messages.entry(line).or_default() += 1;
        }
    }
    let wall = at.elapsed();
    let requests = mark(ensemble).since(before, bench.word_cost);
    let ok = codes.get("exit status: 0").copied().unwrap_or(0);
    let is_switchman = matches!(contender, Contender::Switchman(..));
    let held_at = all_held.map_or(String::new(), |(held, at)| {
        format!(
            ", {held} held their locks at once {:.2} s after the start",
            at.as_secs_f64()
        )
    });
    println!(
        "  {}: {ok} of {n} succeeded in {:.2} s{held_at}{}",
        contender.name(),
        wall.as_secs_f64(),
        if is_switchman {
            format!("; {:.1} requests per run", requests as f64 / n as f64)
        } else {
            String::new()
        }
    );
    if ok < n {
        let mut codes: Vec<_> = codes.into_iter().collect();
        codes.sort();
        println!("    exits: {codes:?}");
    }
    let mut messages: Vec<_> = messages.into_iter().collect();
    messages.sort_by_key(|m| std::cmp::Reverse(m.1));
    for (message, count) in messages.iter().take(8) {
        println!("    {count} x {message}");
    }
    println!("    {}", load.finish(ensemble, n));
    let requests = if is_switchman {
        format!(", {:.1} requests per run", requests as f64 / n as f64)
    } else {
        String::new()
    };
    match all_held {
        Some((held, at)) => format!(
            "{ok} ok, {held} held at once after {:.1} s, all done in {:.1} s{requests}",
            at.as_secs_f64(),
            wall.as_secs_f64()
        ),
        None => format!("{ok} ok in {:.1} s{requests}", wall.as_secs_f64()),
    }
}

// ---------------------------------------------------------------------------------------

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("stamp") {
        stamp(Path::new(&args[2]), Path::new(&args[3]), &args[4]);
        return;
    }
    let waiters = support::env_or("SCALE_WAITERS", 500usize).max(2);
    let runs = support::env_or("SCALE_RUNS", 1000usize).max(1);
    let small_rounds = support::env_or("SCALE_SMALL_ROUNDS", 5usize).max(1);
    let steps = support::env_or("SCALE_STEPS", 5usize);
    let only = std::env::var("SCALE_ONLY").unwrap_or_default();

    let mut contenders = vec![Contender::Switchman(
        "this build".into(),
        switchman_bin().into(),
    )];
    if let Ok(before) = std::env::var("SWITCHMAN_BEFORE") {
        contenders.insert(
            0,
            Contender::Switchman("SWITCHMAN_BEFORE".into(), before.into()),
        );
    }
    if installed("flock") {
        contenders.push(Contender::Flock);
    }
    let etcd = Etcd::start_if_installed();
    if let Some(etcd) = &etcd {
        let _ = ETCD_PID.set(etcd.pid());
        contenders.push(Contender::Etcd(etcd.endpoint.clone()));
    }

    // The default maxClientCnxns (60 from one address) would refuse most of the waiters; 0 is
    // no limit. SCALE_MAX_CLIENT_CNXNS=60 shows what the default does.
    let max_cnxns = support::env_or("SCALE_MAX_CLIENT_CNXNS", 0u32);
    let ensemble = Ensemble::start_standalone_with(|_, _| Extras {
        cfg: vec![format!("maxClientCnxns={max_cnxns}")],
        ..Extras::default()
    });
    let word_cost = word_cost(&ensemble);
    let bench = Bench {
        exe: std::env::current_exe().expect("own path"),
        ensemble,
        steps,
        word_cost,
    };
    let java = bench.ensemble.pid(0).unwrap();
    println!(
        "scale: {} cores, load {}, ulimit -n {} (ZooKeeper's: {}), ZooKeeper -Xmx192m, \
         maxClientCnxns={max_cnxns}",
        num_cpus(),
        std::fs::read_to_string("/proc/loadavg").unwrap().trim(),
        nofile(std::process::id() as i32),
        nofile(java),
    );

    let mut summary = Summary::default();
    for mode in [Mode::Lease, Mode::Wait] {
        if !(only.is_empty() || only == mode.name()) {
            continue;
        }
        match mode {
            Mode::Lease => println!("Hand-off on one r=1:1 resource (--lease r=1:1):"),
            Mode::Wait => println!("Hand-off of one lock waited for in line (--wait forever):"),
        }
        // flock(1) and etcdctl lock have one way to wait: measured with the first.
        let contenders: Vec<Contender> = contenders
            .iter()
            .filter(|c| mode == Mode::Lease || matches!(c, Contender::Switchman(..)))
            .cloned()
            .collect();
        let mut briefs: HashMap<(String, usize), Brief> = HashMap::new();
        for n in [SMALL, waiters] {
            let rounds = if n == SMALL { small_rounds } else { 1 };
            let mut jobs = Vec::new();
            for contender in &contenders {
                jobs.push(bench.job(contender, mode).await);
            }
            let mut figures: Vec<Figures> = contenders.iter().map(|_| Figures::default()).collect();
            // Round 0 warms the server up; then the contenders take turns, round by round.
            for round in 0..=rounds {
                for (c, contender) in contenders.iter().enumerate() {
                    let mut scratch = Figures::default();
                    let into = if round == 0 {
                        &mut scratch
                    } else {
                        &mut figures[c]
                    };
                    let n = if round == 0 { SMALL.min(n) } else { n };
                    bench.round(&jobs[c], contender, mode, n, round, into);
                }
            }
            for (c, contender) in contenders.iter().enumerate() {
                let brief = report(contender.name(), n, &mut figures[c]);
                briefs.insert((contender.name().to_string(), n), brief);
            }
        }
        for contender in &contenders {
            let name = contender.name().to_string();
            let (small, large) = (
                &briefs[&(name.clone(), SMALL)],
                &briefs[&(name.clone(), waiters)],
            );
            let ratio = large.median / small.median;
            println!("  {name}: median at {waiters} / median at {SMALL} = {ratio:.2}");
            summary.handoff(&name, mode, small, large);
        }
    }
    if only.is_empty() || only == "plain" {
        println!("{runs} plain runs on distinct locks (CMD true), started at once:");
        for contender in &contenders {
            let cell = plain_runs(&bench, contender, runs, false).await;
            summary
                .plain
                .push((contender.name().to_string(), [cell, String::new()]));
        }
        println!(
            "{runs} plain runs on distinct locks, started at once, each CMD waiting until all run:"
        );
        for contender in &contenders {
            let cell = plain_runs(&bench, contender, runs, true).await;
            let row = summary.plain.iter_mut().find(|r| r.0 == contender.name());
            row.expect("a row from the first pass").1[1] = cell;
        }
    }
    summary.print(waiters, runs);
}

/// The soft limit on open files of a process.
fn nofile(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3).map(str::to_string))
        .unwrap_or_default()
}
