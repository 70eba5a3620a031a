//! What capturing CMD's output costs (issue 22), on one private ZooKeeper:
//!
//!     cargo bench --bench capture
//!     CAPTURE_ROUNDS=100 CAPTURE_GB=1 cargo bench --bench capture
//!
//! - **a plain run**: `--lockname x -- true` as it is, with `record_runs` (a record and history,
//!   no capture) and with `capture_output` (which writes them too), in rounds whose order
//!   rotates, so that drift in the machine's load falls on all alike: each one's median wall
//!   time, the paired differences, and the requests each sends (the server's
//!   `zk_packets_received`);
//! - **throughput**: a CMD of `cat` on a file of `CAPTURE_GB` GiB (default 1) of 100-byte lines
//!   in RAM (`/dev/shm`), through capture with switchman's stdout on /dev/null (loglevel
//!   `warning`, so the lines are not logged), against `cat` of the same file to /dev/null and
//!   `cat | cat` (a pipe, no switchman); and switchman's peak RSS meanwhile (VmHWM, read by the
//!   CMD from /proc at its end);
//! - **the history's size**: the node after 20 runs with 4 KiB tails of text, and of binary.

use switchman_test_support as support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::json;

use support::{Ensemble, Job, env_or, switchman_bin, zk};

fn packets(ensemble: &Ensemble) -> u64 {
    ensemble.mntr(0)["zk_packets_received"].parse().unwrap()
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn ms(s: f64) -> String {
    format!("{:.2} ms", s * 1e3)
}

/// Runs switchman with `job`'s config and `args`, its stdout to /dev/null; the wall time.
fn timed(job: &Job, args: &[&str]) -> f64 {
    let began = Instant::now();
    let status = Command::new(switchman_bin())
        .arg("-c")
        .arg(&job.config)
        .args(args)
        .env_remove("DEBUG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let took = began.elapsed().as_secs_f64();
    assert!(status.success());
    took
}

fn plain_runs(ensemble: &Ensemble, rounds: usize) {
    let zk = ensemble.connect_string();
    let base = json!({"session_timeout": 10, "server_tick_time": 2, "loglevel": "warning"});
    let plain = Job::new("capture-bench", &zk, base.clone());
    let mut keys = base.clone();
    keys["record_runs"] = json!(true);
    let recorded = plain.other_host(keys.clone());
    keys["capture_output"] = json!(true);
    let captured = plain.other_host(keys);
    let variants = [
        ("plain", &plain),
        ("record_runs", &recorded),
        ("capture_output", &captured),
    ];
    let args = ["--lockname", "x", "--", "true"];
    for (_, job) in variants {
        timed(job, &args);
    }
    let mut times = vec![Vec::new(); 3];
    let mut requests = vec![Vec::new(); 3];
    for round in 0..rounds {
        for k in 0..3 {
            let i = (round + k) % 3;
            let before = packets(ensemble);
            times[i].push(timed(variants[i].1, &args));
            requests[i].push(packets(ensemble) - before - 1);
        }
    }
    println!("{rounds} rounds of `--lockname x -- true`, order rotating:");
    let medians: Vec<f64> = times
        .iter()
        .map(|t| {
            let mut t = t.clone();
            t.sort_by(f64::total_cmp);
            quantile(&t, 0.5)
        })
        .collect();
    for (i, (name, _)) in variants.iter().enumerate() {
        let mut diffs: Vec<f64> = times[i].iter().zip(&times[0]).map(|(a, b)| a - b).collect();
        diffs.sort_by(f64::total_cmp);
        println!(
            "  {name:15} median {}, requests {}; paired difference to plain: median {} (quartiles {} .. {})",
            ms(medians[i]),
            requests[i].iter().min().unwrap(),
            ms(quantile(&diffs, 0.5)),
            ms(quantile(&diffs, 0.25)),
            ms(quantile(&diffs, 0.75))
        );
    }
    let mut diffs: Vec<f64> = times[2].iter().zip(&times[1]).map(|(a, b)| a - b).collect();
    diffs.sort_by(f64::total_cmp);
    println!(
        "  capture_output against record_runs (the pipes and their copies alone): median {} (quartiles {} .. {})",
        ms(quantile(&diffs, 0.5)),
        ms(quantile(&diffs, 0.25)),
        ms(quantile(&diffs, 0.75))
    );
}

fn shell(script: &str) -> f64 {
    let began = Instant::now();
    let status = Command::new("sh").args(["-c", script]).status().unwrap();
    assert!(status.success(), "{script}");
    began.elapsed().as_secs_f64()
}

fn throughput(ensemble: &Ensemble, gib: u64) {
    let dir = tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap());
    let file = dir.path().join("lines");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        let line = [b"x".repeat(99), b"\n".to_vec()].concat();
        for _ in 0..(gib << 30) / 100 {
            out.write_all(&line).unwrap();
        }
    }
    let bytes = std::fs::metadata(&file).unwrap().len() as f64;
    let job = Job::new(
        "capture-throughput",
        &ensemble.connect_string(),
        json!({"session_timeout": 10, "server_tick_time": 2, "loglevel": "warning",
               "capture_output": true}),
    );
    let f = file.display();
    let hwm = dir.path().join("hwm");
    let h = hwm.display();
    let rate = |s: f64| format!("{:.2} GB/s ({:.2} s)", bytes / s / 1e9, s);
    println!("{:.2} GB of 100-byte lines:", bytes / 1e9);
    for round in 0..3 {
        let cat = shell(&format!("cat '{f}' > /dev/null"));
        let piped = shell(&format!("cat '{f}' | cat > /dev/null"));
        let script = format!("cat '{f}'; grep VmHWM /proc/$PPID/status > '{h}'");
        let through = timed(&job, &["--lockname", "t", "--", "sh", "-c", &script]);
        let peak = std::fs::read_to_string(&hwm).unwrap();
        println!(
            "  round {round}: cat > /dev/null {}; cat | cat {}; switchman --capture-output -- cat {}, its peak RSS {}",
            rate(cat),
            rate(piped),
            rate(through),
            peak.trim().trim_start_matches("VmHWM:").trim()
        );
    }
}

async fn history_size(ensemble: &Ensemble) {
    let zk_hosts = ensemble.connect_string();
    let job = Job::new(
        "capture-history",
        &zk_hosts,
        json!({"session_timeout": 10, "server_tick_time": 2, "loglevel": "warning",
               "capture_output": true}),
    );
    let client = zk(&zk_hosts).await;
    let text = "tar: /srv/db/table-0042.dat: file changed as we read it (retrying)\n";
    let cases = [
        ("text", format!("yes '{}' | head -c 10000", text.trim_end())),
        ("binary", "head -c 10000 /dev/urandom".to_string()),
    ];
    for (what, script) in cases {
        let lock = format!("h-{what}");
        for _ in 0..20 {
            timed(&job, &["--lockname", &lock, "--", "sh", "-c", &script]);
        }
        let path = format!("{}/history/{lock}", job.prefix);
        let (_, stat) = client.get_data(&path).await.unwrap();
        let (_, record) = client
            .get_data(&format!("{}/runs/{lock}", job.prefix))
            .await
            .unwrap();
        println!(
            "history of 20 runs with 4 KiB tails of {what}: {} bytes ({:.1}% of ZooKeeper's 1 MiB limit); the record beside it {} bytes",
            stat.data_length,
            stat.data_length as f64 / 1048576.0 * 100.0,
            record.data_length
        );
    }
}

#[tokio::main]
async fn main() {
    let rounds: usize = env_or("CAPTURE_ROUNDS", 60);
    let gib: u64 = env_or("CAPTURE_GB", 1);
    let ensemble = Ensemble::start(1);
    plain_runs(&ensemble, rounds);
    throughput(&ensemble, gib);
    history_size(&ensemble).await;
}
