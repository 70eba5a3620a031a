//! What `metrics_dir` adds to a run: plain lock runs of `true` with and without it, in pairs on
//! one private ZooKeeper, the order within each pair alternating so that drift in the machine's
//! load falls on both alike. Prints the median wall time of each (spawn to exit) and the median
//! and spread of the paired differences; then the textfile's update alone, timed in this
//! process, which the noise of a whole run's wall time on a busy machine can hide.
//!
//!     cargo bench --bench metrics
//!     METRICS_PAIRS=200 cargo bench --bench metrics

use switchman_test_support as support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use support::{Ensemble, Job, env_or};
use switchman::config::Config;
use switchman::metrics;
use switchman::outcome::Outcome;

const UPDATES: usize = 1000;

async fn timed(job: &Job) -> Duration {
    let began = Instant::now();
    let (code, stderr) = job.run(&["--lockname", "bench", "--", "true"]).await;
    let took = began.elapsed();
    assert_eq!(code, 0, "{stderr}");
    took
}

fn ms(d: f64) -> String {
    format!("{:.2} ms", d * 1e3)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

#[tokio::main]
async fn main() {
    let pairs: usize = env_or("METRICS_PAIRS", 60);
    let ensemble = Ensemble::start(1);
    let zk = ensemble.connect_string();
    let settings = json!({"session_timeout": 10, "server_tick_time": 2, "loglevel": "info"});
    let plain = Job::new("metrics-bench", &zk, settings.clone());
    let metrics_dir = tempfile::tempdir().unwrap();
    let mut with = settings;
    with["metrics_dir"] = json!(metrics_dir.path());
    let with_metrics = plain.other_host(with);
    // The first runs create the folders and the textfile; they are not counted.
    timed(&plain).await;
    timed(&with_metrics).await;

    let (mut a, mut b, mut diff) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..pairs {
        let (p, m) = if i % 2 == 0 {
            let p = timed(&plain).await;
            (p, timed(&with_metrics).await)
        } else {
            let m = timed(&with_metrics).await;
            (timed(&plain).await, m)
        };
        a.push(p.as_secs_f64());
        b.push(m.as_secs_f64());
        diff.push(m.as_secs_f64() - p.as_secs_f64());
    }
    for v in [&mut a, &mut b, &mut diff] {
        v.sort_by(f64::total_cmp);
    }
    println!("{pairs} pairs of plain lock runs of `true`, order alternating:");
    println!("  without metrics_dir: median {}", ms(quantile(&a, 0.5)));
    println!("  with metrics_dir:    median {}", ms(quantile(&b, 0.5)));
    println!(
        "  paired difference (with - without): median {}, quartiles {} .. {}",
        ms(quantile(&diff, 0.5)),
        ms(quantile(&diff, 0.25)),
        ms(quantile(&diff, 0.75))
    );
    let text = std::fs::read_to_string(metrics_dir.path().join("switchman_bench.prom")).unwrap();
    let ran = text
        .lines()
        .find(|l| l.contains("outcome=\"succeeded\""))
        .unwrap_or_default();
    println!("  the textfile after them: {ran}");

    // The update alone: lock, read, write, rename, as a run's end does it.
    let config = Config::parse(
        Path::new("bench.conf"),
        json!({"prefix": "/p", "zkhosts": "z:1", "metrics_dir": metrics_dir.path()})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let mut updates = Vec::new();
    for _ in 0..UPDATES {
        let began = Instant::now();
        metrics::after_run(&config, "bench", began, Outcome::Succeeded, 0);
        updates.push(began.elapsed().as_secs_f64());
    }
    updates.sort_by(f64::total_cmp);
    println!(
        "the textfile's update alone, {UPDATES} times: median {:.0} us, p99 {:.0} us",
        quantile(&updates, 0.5) * 1e6,
        quantile(&updates, 0.99) * 1e6
    );
}
