//! `switchmanctl serve` with a real browser (test-support's headless Chromium over WebDriver), on
//! a small fleet (5 locks, 20 queue items) and on the big prefix of `benches/status.rs` (200
//! locks, 5,000 queue items in 10 queues, 10 leases), one private ZooKeeper. For each:
//!
//! - **first paint**: the page's first contentful paint, from the navigation's start, as the
//!   browser reports it: the first load of a fresh server (its pass included), then reloads
//!   while the watch is set (the view is current: no pass);
//! - **event latency**: a lock node created by a plain client until the page's DOM has its row
//!   (a MutationObserver takes the time; one clock, this machine's), median and p99; each lock
//!   is created after a quiet moment longer than the passes' 250 ms spacing, which a change
//!   right behind another waits for on top;
//! - **passes per second** while a lock is created and deleted every 20 ms, with 1 and with 50
//!   event streams open (each read by a task, as browsers would), from the stream's ids (one
//!   per pass), with the server's CPU and the requests reaching ZooKeeper (`mntr`); then the
//!   same 50 streams on a prefix that does not change, and no stream at all;
//! - **RSS** of the server: after it starts, and its peak (VmHWM) after all of the above.
//!
//! Run it with:
//!
//!     cargo bench --bench serve
//!     SERVE_SAMPLES=100 cargo bench --bench serve

use switchman_test_support as support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use support::{Browser, Ensemble, EventStream, Job, env_or, fill_prefix, process_cpu, zk};
use zookeeper_client::{Acls, Client, CreateMode};

/// How long each window of passes is measured.
const WINDOW: Duration = Duration::from_secs(10);

/// The server drops its watch this long after the last stream closed (src/ctl/serve/hub.rs).
const LINGER: Duration = Duration::from_secs(10);

/// Longer than the passes' spacing (250 ms) and a pass of the big prefix: what came before is
/// shown and done with.
const QUIET: Duration = Duration::from_millis(1000);

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1e3
}

/// (median, p99, worst) of `v`.
fn spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99), at(1.0))
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix(" kB")?
                .parse()
                .ok()
        })
        .unwrap()
}

/// The page's first contentful paint, ms from the navigation's start.
async fn first_paint(browser: &Browser, url: &str) -> f64 {
    browser.goto(url).await.unwrap();
    let paint = browser
        .until(
            "the first contentful paint",
            "const p = performance.getEntriesByName('first-contentful-paint')[0];
             return p ? p.startTime : null;",
        )
        .await;
    paint.as_f64().unwrap()
}

/// ms from a lock node's creation to its row in the page's DOM.
async fn latency(browser: &Browser, client: &Client, job: &Job, name: &str) -> f64 {
    let row = format!(r#"tr[data-lock="{name}"]"#);
    let watch = format!(
        "window.seenAt = null;
         const seen = () => document.querySelector('{row}') && (window.seenAt = Date.now());
         new MutationObserver((_, o) => seen() && o.disconnect())
             .observe(document.body, {{childList: true, subtree: true}});"
    );
    browser.execute(&watch, vec![]).await.unwrap();
    tokio::time::sleep(QUIET).await;
    let mode = CreateMode::Persistent.with_acls(Acls::anyone_all());
    let created = now_ms();
    let path = job.lock_path(name);
    client
        .create(&path, b"web9.example 9", &mode)
        .await
        .unwrap();
    let seen = browser
        .until(&format!("{row} appears"), "return window.seenAt")
        .await;
    client.delete(&path, None).await.unwrap();
    browser.until_gone(&row).await;
    seen.as_f64().unwrap() - created
}

/// What a window of `WINDOW` cost: passes (from `counter`'s ids), the server's CPU seconds, and
/// the requests that reached ZooKeeper, per second; with `churn`, a lock is made and removed
/// every 20 ms meanwhile.
async fn window(
    ensemble: &Ensemble,
    server: u32,
    counter: Option<&mut EventStream>,
    client: &Client,
    job: &Job,
    churn: bool,
) -> (f64, f64, f64) {
    let packets = || -> f64 { ensemble.mntr(0)["zk_packets_received"].parse().unwrap() };
    let (cpu, before) = (process_cpu(server as i32), packets());
    let began = Instant::now();
    let mut ids = Vec::new();
    let churner = async {
        let mode = CreateMode::Persistent.with_acls(Acls::anyone_all());
        let path = job.lock_path("churn");
        let mut churned = 0.0;
        while churn && began.elapsed() < WINDOW {
            client
                .create(&path, b"web8.example 8", &mode)
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
            client.delete(&path, None).await.unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
            churned += 2.0;
        }
        // The churn's own requests are not the server's.
        churned
    };
    let count = async {
        if let Some(events) = counter {
            while let Ok((id, _)) =
                tokio::time::timeout(WINDOW.saturating_sub(began.elapsed()), events.next()).await
            {
                ids.push(id);
            }
        }
    };
    let (churned, ()) = futures::join!(churner, count);
    tokio::time::sleep_until((began + WINDOW).into()).await;
    let secs = began.elapsed().as_secs_f64();
    // The first mntr is counted by the second.
    let requests = packets() - before - 1.0 - churned;
    let passes = match (ids.first(), ids.last()) {
        (Some(first), Some(last)) => (last - first) as f64,
        _ => 0.0,
    };
    let cpu = process_cpu(server as i32) - cpu;
    (passes / secs, cpu / secs, requests / secs)
}

async fn fleet(ensemble: &Ensemble, client: &Client, label: &str, locks: usize, items: usize) {
    let samples: usize = env_or("SERVE_SAMPLES", 30);
    let job = Job::new(
        &format!("serve-bench-{label}"),
        &ensemble.connect_string(),
        json!({"session_timeout": 10}),
    );
    fill_prefix(client, &job, locks, items, if items > 100 { 10 } else { 2 }).await;
    let (mut server, addr) = job.serve(&[]).await;
    let pid = server.id().unwrap();
    let rss_started = status_kib(pid, "VmRSS:");
    let url = format!("http://{addr}/");
    println!("\n{label}: {locks} locks, {items} queue items");

    let browser = Browser::open(true).await;
    let cold = first_paint(&browser, &url).await;
    browser.text_of("#live.live").await;
    let mut warm = Vec::new();
    for _ in 0..samples {
        warm.push(first_paint(&browser, &url).await);
        browser.text_of("#live.live").await;
    }
    let (median, p99, worst) = spread(warm);
    println!(
        "first paint: {cold:.0} ms on a fresh server (its pass included); reloads (view current): \
         median {median:.0} ms, p99 {p99:.0} ms, worst {worst:.0} ms over {samples}"
    );

    let mut lags = Vec::new();
    for i in 0..samples {
        lags.push(latency(&browser, client, &job, &format!("probe{i}")).await);
    }
    let (median, p99, worst) = spread(lags);
    println!(
        "lock created -> row in the DOM: median {median:.0} ms, p99 {p99:.0} ms, worst {worst:.0} ms over {samples}"
    );
    browser.close().await;

    let mut counter = EventStream::open(&addr).await;
    let (_, first) = counter.next().await;
    println!("an event: {} KiB", first.len() / 1024);
    let (passes, cpu, requests) =
        window(ensemble, pid, Some(&mut counter), client, &job, true).await;
    println!(
        "churn, 1 stream: {passes:.2} passes/s, server CPU {:.0} %, {requests:.1} requests/s to ZooKeeper",
        cpu * 100.0
    );
    let mut readers = Vec::new();
    for _ in 1..50 {
        let mut events = EventStream::open(&addr).await;
        events.next().await;
        readers.push(tokio::spawn(async move {
            loop {
                events.next().await;
            }
        }));
    }
    let (passes, cpu, requests) =
        window(ensemble, pid, Some(&mut counter), client, &job, true).await;
    println!(
        "churn, 50 streams: {passes:.2} passes/s, server CPU {:.0} %, {requests:.1} requests/s to ZooKeeper",
        cpu * 100.0
    );
    tokio::time::sleep(QUIET).await;
    let (passes, cpu, requests) =
        window(ensemble, pid, Some(&mut counter), client, &job, false).await;
    println!(
        "no change, 50 streams: {passes:.2} passes/s, server CPU {:.1} %, {requests:.2} requests/s to ZooKeeper",
        cpu * 100.0
    );
    let rss_streams = status_kib(pid, "VmRSS:");
    for reader in readers {
        reader.abort();
    }
    drop(counter);
    tokio::time::sleep(LINGER + Duration::from_secs(1)).await;
    let (_, cpu, requests) = window(ensemble, pid, None, client, &job, false).await;
    println!(
        "no stream (the watch dropped): server CPU {:.1} %, {requests:.2} requests/s to ZooKeeper",
        cpu * 100.0
    );
    println!(
        "server RSS: {:.1} MiB started, {:.1} MiB with 50 streams, peak {:.1} MiB",
        rss_started as f64 / 1024.0,
        rss_streams as f64 / 1024.0,
        status_kib(pid, "VmHWM:") as f64 / 1024.0
    );
    server.kill().await.unwrap();
}

#[tokio::main]
async fn main() {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at the start: {}", load.trim());
    let ensemble = Ensemble::start(1);
    let client = zk(&ensemble.connect_string()).await;
    fleet(&ensemble, &client, "small", 5, 20).await;
    let items: usize = env_or("SERVE_ITEMS", 5000);
    fleet(&ensemble, &client, "big", 200, items).await;
}
