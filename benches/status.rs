//! `switchmanctl status` on a big prefix: 200 locks and 5,000 queue items (10 resources of 500
//! waiters each), with a lease per resource, on a private ZooKeeper. Prints the wall time of the
//! whole command (connect to exit) and of its pass alone ("read in N ms"), median and worst
//! over a number of runs, for the people view, for `--json` and for `metrics`; then the cost of
//! one scrape of `metrics --listen` (its session already open, as Prometheus finds it); then
//! what `status --watch` costs while nothing changes (packets per idle second, from the
//! server's `mntr`).
//!
//!     cargo bench --bench status
//!     STATUS_ITEMS=20000 cargo bench --bench status

use switchman_test_support as support;

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use support::{Ensemble, Job, env_or, fill_prefix, zk};

const LOCKS: usize = 200;
const RESOURCES: usize = 10;
const RUNS: usize = 7;
const SCRAPES: usize = 20;

fn summary(label: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "{label}: median {:.0} ms, worst {:.0} ms over {} runs",
        times[times.len() / 2].as_secs_f64() * 1e3,
        times.last().unwrap().as_secs_f64() * 1e3,
        times.len()
    );
}

#[tokio::main]
async fn main() {
    let items: usize = env_or("STATUS_ITEMS", 5000);
    let ensemble = Ensemble::start(1);
    let job = Job::new(
        "status-bench",
        &ensemble.connect_string(),
        json!({"session_timeout": 10}),
    );
    let client = zk(&ensemble.connect_string()).await;
    let made = Instant::now();
    fill_prefix(&client, &job, LOCKS, items, RESOURCES).await;
    println!(
        "made {LOCKS} locks, {items} queue items in {RESOURCES} queues and {RESOURCES} leases in {:.1} s",
        made.elapsed().as_secs_f64()
    );

    for (label, args) in [
        ("status", &["status"][..]),
        ("status --json", &["status", "--json"][..]),
        ("metrics", &["metrics"][..]),
    ] {
        let (mut whole, mut pass) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let began = Instant::now();
            let out = job.ctl_command(args).output().await.unwrap();
            whole.push(began.elapsed());
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout);
            if let Some(secs) = read_seconds(&text) {
                pass.push(Duration::from_secs_f64(secs));
            } else if let Some(ms) = text
                .lines()
                .next()
                .and_then(|l| l.split("(read in ").nth(1))
                .and_then(|r| r.split(' ').next())
                .and_then(|ms| ms.parse::<u64>().ok())
            {
                pass.push(Duration::from_millis(ms));
            }
        }
        summary(&format!("{label}, the whole command"), whole);
        if !pass.is_empty() {
            summary(&format!("{label}, its pass alone"), pass);
        }
    }

    scrapes(&job).await;

    // An idle watcher: only the session's pings reach the server, no reads.
    let mut watcher = job.ctl_command(&["status", "--watch"]).spawn().unwrap();
    let mut lines = BufReader::new(watcher.stdout.take().unwrap()).lines();
    while let Some(line) = lines.next_line().await.unwrap() {
        if line.starts_with("GROUP") || line.starts_with("no groups") {
            break;
        }
    }
    drop(client);
    let packets = || -> u64 { ensemble.mntr(0)["zk_packets_received"].parse().unwrap() };
    let idle = Duration::from_secs(10);
    let before = packets();
    tokio::time::sleep(idle).await;
    // The first mntr is counted by the second.
    let after = packets() - 1;
    println!(
        "status --watch, idle: {} packets in {} s (the client library pings every 0.15 x session_timeout, here 1.5 s)",
        after - before,
        idle.as_secs()
    );
    watcher.kill().await.unwrap();
}

/// `switchman_metrics_read_seconds` of a `metrics` output: its pass alone.
fn read_seconds(text: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix("switchman_metrics_read_seconds "))
        .and_then(|v| v.parse().ok())
}

/// What one scrape of `metrics --listen` costs: the wall time of a GET /metrics, connection
/// included, and its pass alone, over [`SCRAPES`] scrapes one after another.
async fn scrapes(job: &Job) {
    let (mut listener, addr) = job.metrics_listener().await;
    let (mut whole, mut pass, mut size) = (Vec::new(), Vec::new(), 0);
    for _ in 0..SCRAPES {
        let began = Instant::now();
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let request = format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).await.unwrap();
        whole.push(began.elapsed());
        let reply = String::from_utf8_lossy(&reply);
        assert!(reply.starts_with("HTTP/1.0 200"), "{reply}");
        size = reply.len();
        pass.extend(read_seconds(&reply).map(Duration::from_secs_f64));
    }
    summary(
        &format!("metrics --listen, one scrape ({size} bytes)"),
        whole,
    );
    summary("metrics --listen, its pass alone", pass);
    listener.kill().await.unwrap();
}
