//! Hand-off: N contenders for one thing, each running a short CMD; how long from one CMD's end
//! to the next CMD's start, and how many ZooKeeper requests one run costs. Two things:
//!
//! - a `1:1` lease (`--lease r=1:1`, each contender a lock of its own): the original polls the
//!   semaphore once a second, so its hand-off is up to a second; ours is woken by a watch;
//! - one lock waited for in line (`--lockname L --wait forever`): the first in line watches the
//!   lock node and takes it when its holder's session closes.
//!
//! ```text
//! cargo bench --bench handoff
//! HANDOFF_N=20 HANDOFF_ROUNDS=5 HANDOFF_ONLY=wait cargo bench --bench handoff
//! ```
//!
//! The bench profile builds switchman optimised. A first round warms the server up and is not
//! counted. CMD is this same executable run as `handoff stamp RECORDS GATE NAME`: it appends
//! `start NAME T` at once (T is CLOCK_MONOTONIC, one clock for every process), waits for GATE
//! (only the first CMD of a round ever waits: the gate opens once all the others are queued,
//! so every hand-off is to a waiter already in line), then appends `end NAME T` and exits.
//!
//! Requests are `zk_packets_received` of a dedicated server's `mntr`, taken before the round's
//! switchmans start and after they have all exited, over N: everything a run sends, from the
//! connect to the close, including pings and heartbeats while it waits. The bench's own look
//! at the queue (the `dump` four-letter word) and at `mntr` are counted by the server too, and
//! taken off.

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::time::{ClockId, clock_gettime};
use serde_json::json;

use support::{Ensemble, Job, SWITCHMAN, zk};

fn monotonic_ns() -> u128 {
    let ts = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC");
    ts.tv_sec() as u128 * 1_000_000_000 + ts.tv_nsec() as u128
}

/// CMD: `stamp RECORDS GATE NAME`.
fn stamp(records: &Path, gate: &Path, name: &str) {
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
    while !gate.exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    append("end");
}

fn packets(ensemble: &Ensemble) -> u64 {
    ensemble.mntr(0)["zk_packets_received"].parse().unwrap()
}

/// How many ephemeral nodes under `folder` the server holds (from `dump`).
fn ephemerals_under(ensemble: &Ensemble, folder: &str) -> usize {
    let dump = ensemble.four_letter_word(0, "dump").unwrap_or_default();
    let prefix = format!("{folder}/");
    dump.lines()
        .filter(|l| l.trim().starts_with(&prefix))
        .count()
}

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

fn spawn(job: &Job, mode: Mode, exe: &Path, name: &str, records: &Path, gate: &Path) -> Child {
    Command::new(SWITCHMAN)
        .arg("-c")
        .arg(&job.config)
        .args(mode.options(name))
        .arg("--")
        .arg(exe)
        .arg("stamp")
        .arg(records)
        .arg(gate)
        .arg(name)
        .env_remove("DEBUG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start switchman")
}

/// (start, end) per CMD, in the order they ran.
fn read_records(path: &Path) -> Vec<(u128, u128)> {
    let text = std::fs::read_to_string(path).expect("records");
    let mut runs: Vec<(String, u128, Option<u128>)> = Vec::new();
    for line in text.lines() {
        let mut parts = line.split(' ');
        let (what, name, t) = (
            parts.next().unwrap(),
            parts.next().unwrap().to_string(),
            parts.next().unwrap().parse::<u128>().unwrap(),
        );
        match what {
            "start" => runs.push((name, t, None)),
            _ => {
                let run = runs.iter_mut().find(|r| r.0 == name).expect("a start");
                run.2 = Some(t);
            }
        }
    }
    let mut runs: Vec<(u128, u128)> = runs
        .into_iter()
        .map(|(name, s, e)| (s, e.unwrap_or_else(|| panic!("{name} never ended"))))
        .collect();
    runs.sort();
    runs
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("stamp") {
        stamp(Path::new(&args[2]), Path::new(&args[3]), &args[4]);
        return;
    }
    let only = std::env::var("HANDOFF_ONLY").unwrap_or_default();
    for mode in [Mode::Lease, Mode::Wait] {
        if only.is_empty() || only == mode.name() {
            measure(mode).await;
        }
    }
}

/// Runs the rounds of one mode on a server of its own and prints its figures.
async fn measure(mode: Mode) {
    let n = support::env_or("HANDOFF_N", 20).max(2);
    let rounds = support::env_or("HANDOFF_ROUNDS", 5).max(1);
    let exe = std::env::current_exe().expect("own path");

    let ensemble = Ensemble::start(1);
    // The defaults of a real config (session_timeout 10 s), not the tests' short sessions.
    let job = Job::new(
        "handoff",
        &ensemble.connect_string(),
        json!({"session_timeout": 10, "termination_timeout": 10}),
    );
    {
        let client = zk(&ensemble.connect_string()).await;
        let folder = zookeeper_client::CreateMode::Persistent
            .with_acls(zookeeper_client::Acls::anyone_all());
        client.mkdir(&job.prefix, &folder).await.unwrap();
        client
            .set_data(&job.prefix, br#"{"resources": ["r"]}"#, None)
            .await
            .unwrap();
        // The client is closed here, so its requests are not counted below.
    }
    let queue = mode.queue(&job);
    let spawn =
        |name: &str, records: &Path, gate: &Path| spawn(&job, mode, &exe, name, records, gate);

    // A first run creates the folders (as the first run on a new prefix does); in line, a
    // second one waits, so that the line's folder exists too.
    let warm = job.file("warm");
    let warm_gate = job.file("warm-gate");
    let mut first = spawn("warm", &warm, &warm_gate);
    support::wait_until_blocking("the warm-up CMD runs", Duration::from_secs(60), || {
        std::fs::read_to_string(&warm).is_ok_and(|t| !t.is_empty())
    });
    let mut second = spawn("warm2", &warm, &warm_gate);
    support::wait_until_blocking(
        "the second warm-up run queues",
        Duration::from_secs(60),
        || ephemerals_under(&ensemble, &queue) == 1,
    );
    std::fs::write(&warm_gate, "").unwrap();
    assert!(first.wait().unwrap().success());
    assert!(second.wait().unwrap().success());
    std::fs::write(job.file("open"), "").unwrap();

    // What reading `mntr` itself adds to the counter, if anything.
    let mntr_cost = {
        let a = packets(&ensemble);
        let b = packets(&ensemble);
        b - a
    };
    // And `dump`, which the bench reads while the contenders queue.
    let dump_cost = {
        let a = packets(&ensemble);
        ephemerals_under(&ensemble, &queue);
        packets(&ensemble) - a - mntr_cost
    };

    let mut handoffs = Vec::new();
    let mut requests = 0u64;
    // Round 0 warms up the server's JIT and is not counted.
    for round in 0..=rounds {
        let records = job.file(&format!("records-{round}"));
        let gate = job.file(&format!("gate-{round}"));
        let before = packets(&ensemble);
        let mut runs: Vec<Child> = (0..n)
            .map(|i| spawn(&format!("c{round}-{i}"), &records, &gate))
            .collect();
        // One CMD runs; everyone else is in the queue.
        let mut dumps = 0;
        support::wait_until_blocking(
            "every contender has queued",
            Duration::from_secs(60),
            || {
                std::fs::read_to_string(&records).is_ok_and(|t| t.lines().count() == 1) && {
                    dumps += 1;
                    ephemerals_under(&ensemble, &queue) == n - 1
                }
            },
        );
        std::fs::write(&gate, "").unwrap();
        for run in &mut runs {
            assert!(run.wait().unwrap().success());
        }
        let after = packets(&ensemble);
        if round == 0 {
            continue;
        }
        requests += after - before - mntr_cost - dumps * dump_cost;

        let ran = read_records(&records);
        assert_eq!(ran.len(), n);
        for pair in ran.windows(2) {
            assert!(pair[1].0 >= pair[0].1, "CMDs overlapped: {pair:?}");
            handoffs.push(Duration::from_nanos((pair[1].0 - pair[0].1) as u64));
        }
    }

    // For comparison, one run alone (no wait in the queue or at the semaphore).
    let alone = {
        let before = packets(&ensemble);
        let records = job.file("alone");
        let status = spawn("alone", &records, &job.file("open")).wait().unwrap();
        assert!(status.success());
        packets(&ensemble) - before - mntr_cost
    };

    handoffs.sort();
    let pick = |q: f64| handoffs[((handoffs.len() - 1) as f64 * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let what = match mode {
        Mode::Lease => "lease hand-off (CMD end -> next CMD start), {n} contenders on r=1:1",
        Mode::Wait => "lock hand-off in line (CMD end -> next CMD start), {n} runs with --wait",
    }
    .replace("{n}", &n.to_string());
    println!(
        "{what}, {rounds} rounds: median {:.2} ms, p99 {:.2} ms, min {:.2} ms, max {:.2} ms over {} hand-offs",
        ms(pick(0.5)),
        ms(pick(0.99)),
        ms(handoffs[0]),
        ms(*handoffs.last().unwrap()),
        handoffs.len()
    );
    println!(
        "ZooKeeper requests per run (connect to close, mntr zk_packets_received): \
         {:.1} in line with {} others, {alone} alone",
        requests as f64 / (n * rounds) as f64,
        n - 1
    );
}
