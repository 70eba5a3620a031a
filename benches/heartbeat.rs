//! What the session's liveness costs: a plain run's requests and wall time, and the requests and
//! wake-ups of an idle supervisor, for this build and, when `SWITCHMAN_BEFORE` names another
//! switchman binary (an older build, say), for that one too, interleaved in one run.
//!
//!     cargo bench --bench heartbeat
//!     SWITCHMAN_BEFORE=/path/to/old/switchman cargo bench --bench heartbeat
//!
//! One private single-server ensemble (tickTime 100 ms). Requests are `zk_packets_received`
//! of the server's `mntr`, before and after, less the bench's own `mntr`. A plain run is
//! `switchman --lockname L -- true` with the defaults of a real config (session_timeout 10 s);
//! the idle figure holds a lock for `HEARTBEAT_HOLD` seconds (default 10) with `sleep` as CMD
//! and reports requests per second and the supervisor's context switches per second (voluntary
//! and involuntary, from /proc, summed over its threads).

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Ensemble, Job, SWITCHMAN};

fn packets(ensemble: &Ensemble) -> u64 {
    ensemble.mntr(0)["zk_packets_received"].parse().unwrap()
}

fn command(exe: &Path, job: &Job, args: &[&str]) -> Command {
    let mut cmd = Command::new(exe);
    cmd.arg("-c")
        .arg(&job.config)
        .args(args)
        .env_remove("DEBUG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Context switches of every thread of `pid` so far.
fn switches(pid: u32) -> u64 {
    let mut total = 0;
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    for task in tasks.flatten() {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        for line in status.lines() {
            if line.starts_with("voluntary_ctxt_switches")
                || line.starts_with("nonvoluntary_ctxt_switches")
            {
                total += line
                    .split_whitespace()
                    .last()
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    total
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// A plain run: requests it cost and its wall time in ms.
fn plain_run(exe: &Path, ensemble: &Ensemble, job: &Job, lock: &str) -> (f64, f64) {
    let before = packets(ensemble);
    let started = Instant::now();
    let status = command(exe, job, &["--lockname", lock, "--", "true"])
        .status()
        .expect("run switchman");
    let ms = started.elapsed().as_secs_f64() * 1e3;
    assert!(status.success(), "{} exited {status}", exe.display());
    // One mntr is the bench's own.
    ((packets(ensemble) - before - 1) as f64, ms)
}

/// Requests and context switches per second of a supervisor holding a lock for `hold` s.
fn idle(exe: &Path, ensemble: &Ensemble, job: &Job, lock: &str, hold: f64) -> (f64, f64) {
    let mut child = command(
        exe,
        job,
        &[
            "--lockname",
            lock,
            "--",
            "sleep",
            &format!("{}", hold + 2.0),
        ],
    )
    .spawn()
    .expect("start switchman");
    // Past the start-up: count only the steady state.
    std::thread::sleep(Duration::from_secs(1));
    let (p0, s0, t0) = (packets(ensemble), switches(child.id()), Instant::now());
    std::thread::sleep(Duration::from_secs_f64(hold));
    let (p1, s1, t1) = (packets(ensemble), switches(child.id()), Instant::now());
    assert!(
        child.try_wait().unwrap().is_none(),
        "{} ended early",
        exe.display()
    );
    // SIGTERM, passed on to CMD: switchman closes its session, so the next round starts clean.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    let secs = (t1 - t0).as_secs_f64();
    ((p1 - p0 - 1) as f64 / secs, (s1 - s0) as f64 / secs)
}

fn main() {
    let runs = support::env_or("HEARTBEAT_RUNS", 20usize).max(3);
    let hold = support::env_or("HEARTBEAT_HOLD", 10.0f64);
    let ensemble = Ensemble::start(1);
    let job = Job::new(
        "heartbeat",
        &ensemble.connect_string(),
        json!({"session_timeout": 10, "termination_timeout": 10, "loglevel": "warning"}),
    );
    let mut builds: Vec<(String, PathBuf)> = vec![("this build".into(), SWITCHMAN.into())];
    if let Ok(before) = std::env::var("SWITCHMAN_BEFORE") {
        builds.insert(0, ("SWITCHMAN_BEFORE".into(), before.into()));
    }
    // Warm the server up, then alternate the builds run by run, so that whatever else the
    // machine does falls on both alike.
    for i in 0..3 {
        plain_run(&builds[0].1, &ensemble, &job, &format!("warm-{i}"));
    }
    let mut figures = vec![(Vec::new(), Vec::new()); builds.len()];
    for i in 0..runs {
        for (b, (_, exe)) in builds.iter().enumerate() {
            let (p, ms) = plain_run(exe, &ensemble, &job, &format!("plain-{b}-{i}"));
            figures[b].0.push(p);
            figures[b].1.push(ms);
        }
    }
    println!(
        "{:<18} {:>14} {:>12} {:>16} {:>18}",
        "build", "requests/run", "median ms", "idle requests/s", "idle switches/s"
    );
    for (b, (name, exe)) in builds.iter().enumerate() {
        let (idle_p, idle_s) = idle(exe, &ensemble, &job, &format!("idle-{b}"), hold);
        println!(
            "{:<18} {:>14.0} {:>12.1} {:>16.2} {:>18.1}",
            name,
            median(&mut figures[b].0),
            median(&mut figures[b].1),
            idle_p,
            idle_s
        );
    }
}
