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
//! the idle figure holds a lock for `HEARTBEAT_HOLD` seconds (default 10) with `sleep` as CMD,
//! `HEARTBEAT_IDLE_RUNS` times (default 3) per build, interleaved, and reports requests per
//! second and switchman's context switches per minute (from /proc/PID/task/*/status): voluntary
//! (its wake-ups) and involuntary (preemptions, which depend on what else the machine does),
//! and the voluntary ones by thread name. Medians of the holds.

use switchman_test_support as support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Ensemble, Job, switchman_bin};

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

/// Voluntary and involuntary context switches of `pid` so far, by thread name.
fn switches(pid: u32) -> BTreeMap<String, (u64, u64)> {
    let mut by_name = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return by_name;
    };
    for task in tasks.flatten() {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        let count = |name: &str| field(name).parse::<u64>().unwrap_or(0);
        let entry = by_name.entry(field("Name:")).or_insert((0, 0));
        entry.0 += count("voluntary_ctxt_switches:");
        entry.1 += count("nonvoluntary_ctxt_switches:");
    }
    by_name
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

/// What a supervisor holding a lock for `hold` s costs.
struct Idle {
    requests_per_s: f64,
    /// Voluntary context switches per minute, by thread name.
    voluntary: BTreeMap<String, f64>,
    involuntary_per_min: f64,
}

fn idle(exe: &Path, ensemble: &Ensemble, job: &Job, lock: &str, hold: f64) -> Idle {
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
    let per_min = |n: u64| n as f64 * 60.0 / secs;
    let mut voluntary = BTreeMap::new();
    let mut involuntary = 0;
    for (name, (v1, i1)) in &s1 {
        let (v0, i0) = s0.get(name).copied().unwrap_or((0, 0));
        voluntary.insert(name.clone(), per_min(v1 - v0));
        involuntary += i1 - i0;
    }
    Idle {
        requests_per_s: (p1 - p0 - 1) as f64 / secs,
        voluntary,
        involuntary_per_min: per_min(involuntary),
    }
}

fn main() {
    let runs = support::env_or("HEARTBEAT_RUNS", 20usize).max(3);
    let idle_runs = support::env_or("HEARTBEAT_IDLE_RUNS", 3usize).max(1);
    let hold = support::env_or("HEARTBEAT_HOLD", 10.0f64);
    let ensemble = Ensemble::start(1);
    let job = Job::new(
        "heartbeat",
        &ensemble.connect_string(),
        json!({"session_timeout": 10, "termination_timeout": 10, "loglevel": "warning"}),
    );
    let mut builds: Vec<(String, PathBuf)> = vec![("this build".into(), switchman_bin().into())];
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
    let mut idles: Vec<Vec<Idle>> = builds.iter().map(|_| Vec::new()).collect();
    for i in 0..idle_runs {
        for (b, (_, exe)) in builds.iter().enumerate() {
            idles[b].push(idle(exe, &ensemble, &job, &format!("idle-{b}-{i}"), hold));
        }
    }
    println!(
        "{:<18} {:>14} {:>12} {:>16} {:>20} {:>22}",
        "build",
        "requests/run",
        "median ms",
        "idle requests/s",
        "idle voluntary/min",
        "idle involuntary/min"
    );
    for (b, (name, _)) in builds.iter().enumerate() {
        let runs = &idles[b];
        let med = |f: &dyn Fn(&Idle) -> f64| median(&mut runs.iter().map(f).collect::<Vec<_>>());
        println!(
            "{:<18} {:>14.0} {:>12.1} {:>16.2} {:>20.0} {:>22.0}",
            name,
            median(&mut figures[b].0),
            median(&mut figures[b].1),
            med(&|r| r.requests_per_s),
            med(&|r| r.voluntary.values().sum()),
            med(&|r| r.involuntary_per_min),
        );
    }
    println!(
        "\nidle voluntary context switches per minute, by thread (median of {idle_runs} holds of {hold} s):"
    );
    for (b, (name, _)) in builds.iter().enumerate() {
        let runs = &idles[b];
        let threads: std::collections::BTreeSet<&String> =
            runs.iter().flat_map(|r| r.voluntary.keys()).collect();
        let parts: Vec<String> = threads
            .into_iter()
            .map(|t| {
                let mut v: Vec<f64> = runs
                    .iter()
                    .map(|r| r.voluntary.get(t).copied().unwrap_or(0.0))
                    .collect();
                format!("{t} {:.0}", median(&mut v))
            })
            .collect();
        println!("  {name:<18} {}", parts.join(", "));
    }
}
