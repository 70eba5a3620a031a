//! What a plain lock run (`switchman --lockname x -- true`) costs, set against its floor and
//! its peers, all interleaved round by round on one machine:
//!
//!     cargo bench --bench plain_run
//!     SWITCHMAN_BEFORE=/path/to/old/switchman cargo bench --bench plain_run
//!
//! - **floor**: `examples/floor.rs`, the same ZooKeeper client library doing the least a lock
//!   run must (connect, create an ephemeral node, fork/exec `true`, close); built here with
//!   `cargo build --release --example floor`; and `FLOOR_BEFORE` (the floor built with another
//!   version of the library) when set;
//! - **switchman**: this build, and `SWITCHMAN_BEFORE` (another build) when set;
//! - **etcdctl lock x true**, against a private etcd on free loopback ports, when `etcd` and
//!   `etcdctl` are installed (Debian's `etcd-server` and `etcd-client`; `scripts/bench`
//!   installs them);
//! - **flock x true** and **switchman -V** (a bare process start of the binary): the local
//!   floors below any network.
//!
//! One private single-server ZooKeeper (tickTime 100 ms); switchman's config has the defaults
//! of a real one (session_timeout 10 s, loglevel warning). Each round runs every candidate once,
//! in an order that rotates from round to round, so that whatever else the machine does falls
//! on all alike; `PLAIN_RUNS` rounds (default 60) after a few to warm up. Reported: the median
//! and p90 wall time of each, from spawn to exit; the ZooKeeper requests per run
//! (`zk_packets_received` of the server's `mntr`, before and after, less the bench's own
//! `mntr`); and the ratios switchman ÷ floor and switchman ÷ etcdctl, each the median of the
//! rounds' own ratios (paired: both from the same round).

use switchman_test_support as support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::json;
use zookeeper_client::{Acls, CreateMode};

use support::peers::{Etcd, etcdctl};
use support::{Ensemble, Job, switchman_bin};

fn packets(ensemble: &Ensemble) -> u64 {
    ensemble.mntr(0)["zk_packets_received"].parse().unwrap()
}

/// One thing to time: how to start it, and whether its requests to our ZooKeeper count.
struct Candidate {
    name: String,
    command: Box<dyn Fn() -> Command>,
    talks_to_zookeeper: bool,
}

fn quiet(mut cmd: Command) -> Command {
    cmd.env_remove("DEBUG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Builds `examples/floor.rs` in release beside this bench's own build and returns its path.
fn build_floor() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(&cargo);
    // Not with the variables cargo set for this bench: they make the build scripts of
    // dependencies (ring's) run again, and the next `cargo bench` build them all again too.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_by_cargo = [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "CARGO_RUSTC_CURRENT_DIR",
            "OUT_DIR",
            "LD_LIBRARY_PATH",
        ];
        if set_by_cargo.iter().any(|prefix| name.starts_with(prefix)) {
            build.env_remove(name.as_ref());
        }
    }
    let status = build
        .args(["build", "--quiet", "--release", "--example", "floor"])
        .arg("--manifest-path")
        .arg(&manifest)
        .status()
        .unwrap_or_else(|e| panic!("run {cargo} to build examples/floor.rs: {e}"));
    assert!(status.success(), "cargo build --example floor: {status}");
    // This bench runs as target/release/deps/plain_run-HASH.
    let exe = std::env::current_exe().unwrap();
    let release = exe.parent().and_then(Path::parent).unwrap();
    let floor = release.join("examples/floor");
    assert!(floor.exists(), "{} was not built", floor.display());
    floor
}

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let rounds = support::env_or("PLAIN_RUNS", 60usize).max(5);
    let floor = build_floor();
    let ensemble = Ensemble::start(1);
    let zkhosts = ensemble.connect_string();
    let job = Job::new(
        "plain-run",
        &zkhosts,
        json!({"session_timeout": 10, "loglevel": "warning"}),
    );
    let flock_file = job.file("flock");

    let mut floors = vec![("floor".to_string(), floor)];
    if let Ok(before) = std::env::var("FLOOR_BEFORE") {
        floors.push(("floor before".into(), before.into()));
    }
    let mut candidates = Vec::new();
    for (name, exe) in floors {
        let zkhosts = zkhosts.clone();
        candidates.push(Candidate {
            name,
            command: Box::new(move || {
                let mut cmd = quiet(Command::new(&exe));
                cmd.args([&zkhosts, "/floor/x", "true"]);
                cmd
            }),
            talks_to_zookeeper: true,
        });
    }
    let mut builds = vec![("switchman".to_string(), PathBuf::from(switchman_bin()))];
    if let Ok(before) = std::env::var("SWITCHMAN_BEFORE") {
        builds.push(("switchman before".into(), before.into()));
    }
    for (name, exe) in &builds {
        let (exe, config) = (exe.clone(), job.config.clone());
        candidates.push(Candidate {
            name: name.clone(),
            command: Box::new(move || {
                let mut cmd = quiet(Command::new(&exe));
                cmd.arg("-c")
                    .arg(&config)
                    .args(["--lockname", "x", "--", "true"]);
                cmd
            }),
            talks_to_zookeeper: true,
        });
    }
    let etcd = Etcd::start_if_installed();
    match &etcd {
        Some(etcd) => {
            let ctl = quiet(etcdctl(&etcd.endpoint));
            let (program, args): (PathBuf, Vec<_>) = (
                ctl.get_program().into(),
                ctl.get_args().map(|a| a.to_owned()).collect(),
            );
            candidates.push(Candidate {
                name: "etcdctl lock x true".into(),
                command: Box::new(move || {
                    let mut cmd = quiet(Command::new(&program));
                    cmd.env("ETCDCTL_API", "3")
                        .args(&args)
                        .args(["lock", "x", "true"]);
                    cmd
                }),
                talks_to_zookeeper: false,
            });
        }
        None => eprintln!("etcd or etcdctl not installed: no etcdctl figures (scripts/bench)"),
    }
    candidates.push(Candidate {
        name: "flock x true".into(),
        command: Box::new(move || {
            let mut cmd = quiet(Command::new("flock"));
            cmd.arg(&flock_file).arg("true");
            cmd
        }),
        talks_to_zookeeper: false,
    });
    candidates.push(Candidate {
        name: "switchman -V".into(),
        command: Box::new(|| {
            let mut cmd = quiet(Command::new(switchman_bin()));
            cmd.arg("-V");
            cmd
        }),
        talks_to_zookeeper: false,
    });
    // The floor's node goes under /floor, which must exist (a first switchman run makes the
    // job's folders: the warm-up).
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let client = support::zk(&zkhosts).await;
            let folder = CreateMode::Persistent.with_acls(Acls::anyone_all());
            client.create("/floor", b"", &folder).await.unwrap();
        });

    let run = |c: &Candidate| -> (f64, Option<f64>) {
        let before = c.talks_to_zookeeper.then(|| packets(&ensemble));
        let started = Instant::now();
        let status = (c.command)().status().expect("start a candidate");
        let ms = started.elapsed().as_secs_f64() * 1e3;
        assert!(status.success(), "{} exited {status}", c.name);
        // One mntr is the bench's own.
        (ms, before.map(|b| (packets(&ensemble) - b - 1) as f64))
    };
    for _ in 0..5 {
        for c in &candidates {
            run(c);
        }
    }
    let n = candidates.len();
    let mut ms = vec![Vec::new(); n];
    let mut requests = vec![Vec::new(); n];
    for round in 0..rounds {
        for k in 0..n {
            let i = (round + k) % n;
            let (t, r) = run(&candidates[i]);
            ms[i].push(t);
            requests[i].extend(r);
        }
    }

    println!("plain lock run, {rounds} rounds, interleaved (wall time from spawn to exit)");
    println!(
        "{:<28} {:>10} {:>10} {:>14}",
        "", "median ms", "p90 ms", "requests/run"
    );
    for (i, c) in candidates.iter().enumerate() {
        let req = if requests[i].is_empty() {
            "-".to_string()
        } else {
            format!("{:.0}", percentile(&requests[i], 0.5))
        };
        println!(
            "{:<28} {:>10.2} {:>10.2} {:>14}",
            c.name,
            percentile(&ms[i], 0.5),
            percentile(&ms[i], 0.9),
            req
        );
    }
    let index = |name: &str| candidates.iter().position(|c| c.name.starts_with(name));
    let paired = |a: usize, b: usize| -> f64 {
        let ratios: Vec<f64> = ms[a].iter().zip(&ms[b]).map(|(x, y)| x / y).collect();
        percentile(&ratios, 0.5)
    };
    println!("ratios, median of each round's own (paired):");
    let floor_before = index("floor before");
    let etcd_at = index("etcdctl");
    for (name, _) in &builds {
        let Some(s) = index(name).filter(|&s| candidates[s].name == *name) else {
            continue;
        };
        let mut line = format!("  {name:<17} ÷ floor {:>5.2}", paired(s, 0));
        if let Some(f) = floor_before {
            line += &format!("   ÷ floor before {:>5.2}", paired(s, f));
        }
        if let Some(e) = etcd_at {
            line += &format!("   ÷ etcdctl lock {:>5.2}", paired(s, e));
        }
        println!("{line}");
    }
    drop(etcd);
}
