//! How fast CMD hears of a lost lock: from the moment the delete of the lock node is sent to
//! CMD's SIGTERM handler running. The original checks once a second; ours reacts to the watch
//! event. Prints median and p99 over a number of runs.
//!
//!     cargo bench --bench stop_latency

use switchman_test_support as support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use support::{Job, finish, wait_for_file, zk};

const RUNS: usize = 30;

fn now_us() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1e6
}

#[tokio::main]
async fn main() {
    let ensemble = support::Ensemble::start(1);
    let client = zk(&ensemble.connect_string()).await;
    let mut latencies = Vec::new();
    for i in 0..RUNS {
        let job = Job::new("stop-latency", &ensemble.connect_string(), json!({}));
        // bash's $EPOCHREALTIME needs no fork; `wait` lets the trap run at once.
        let script = r#"trap 'echo $EPOCHREALTIME > "$JOB_DIR/term"; exit 0' TERM
echo $$ > "$JOB_DIR/pid"; sleep 1000 & wait"#;
        let run = job.spawn(&["--lockname", "l", "--", "bash", "-c", script]);
        wait_for_file(&job.file("pid")).await;
        // Timed from just before the delete is sent: the watch event can reach switchman
        // before the delete's reply reaches us.
        let deleted = now_us();
        client.delete(&job.lock_path("l"), None).await.unwrap();
        let term: f64 = wait_for_file(&job.file("term"))
            .await
            .trim()
            .parse::<f64>()
            .unwrap()
            * 1e6;
        let (code, _) = finish(run).await;
        assert_eq!(code, 79, "run {i}");
        latencies.push(Duration::from_secs_f64(((term - deleted).max(0.0)) / 1e6));
    }
    latencies.sort();
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "lock node deleted -> CMD's SIGTERM handler: median {:.2} ms, p99 {:.2} ms, max {:.2} ms over {RUNS} runs",
        pick(0.5).as_secs_f64() * 1e3,
        pick(0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
    );
}
