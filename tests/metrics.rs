//! End-to-end tests of the metrics (docs/monitoring.md) with the real components: each
//! host's textfile as switchman leaves it and node_exporter's textfile collector reads it, the
//! fleet's metrics from `switchmanctl metrics`, a real Prometheus scraping `metrics --listen`,
//! and `promtool` checking every output and the alert rules. The Prometheus tools come from
//! Debian's `prometheus` and `prometheus-node-exporter` packages (scripts/install-deps).

use switchman_test_support as support;

use std::collections::HashMap;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{Value, json};
use support::{
    Ensemble, Job, argv, await_children, cmd_waiting, finish, finish_ok, has_item, lock_argv,
    pick_ports, set_prefix_data, sh, shared_ensemble, until_go, wait_for, wait_until, zk,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// The binary `name` on the PATH; `None`, with a message saying how to install it, if missing.
fn tool(name: &str, package: &str) -> Option<PathBuf> {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        eprintln!(
            "SKIPPED: {name} is not installed (apt-get install -y {package}, or scripts/install-deps)"
        );
    }
    found
}

/// `promtool check metrics` on `text`: it must pass without a word of complaint.
async fn promtool_accepts(text: &str) {
    let Some(promtool) = tool("promtool", "prometheus") else {
        return;
    };
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {:?}\n{said}\non:\n{text}",
        out.status
    );
}

/// A GET over HTTP/1.0: (status, body), or `None` while nothing listens there.
async fn http_get(addr: &str, target: &str) -> Option<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {target} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.ok()?;
    let reply = String::from_utf8_lossy(&reply);
    let (head, body) = reply.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// Percent-encodes a query parameter.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The samples of a text exposition: `name{labels}` as written, to its value.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn value(samples: &HashMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in {samples:#?}"))
}

/// A job whose runs leave their textfiles in `metrics_dir`.
fn job_with_metrics(name: &str, metrics_dir: &Path) -> Job {
    let zk_hosts = shared_ensemble().connect_string();
    Job::new(name, &zk_hosts, json!({ "metrics_dir": metrics_dir }))
}

fn textfile(dir: &Path, job: &str) -> String {
    std::fs::read_to_string(dir.join(format!("switchman_{job}.prom"))).unwrap_or_default()
}

/// A server of the test's, killed with the test; `None` if its package is not installed.
fn start(binary: &str, package: &str, args: &[String]) -> Option<Child> {
    let path = tool(binary, package)?;
    let mut cmd = std::process::Command::new(path);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // Dies with the test process even when it is killed, not only when it unwinds.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut cmd = Command::from(cmd);
    cmd.kill_on_drop(true);
    Some(cmd.spawn().expect("start the server"))
}

/// Waits until `addr` answers `target` with 200, and returns the body.
async fn await_ok(addr: &str, target: &str) -> String {
    wait_for(&format!("http://{addr}{target} answers 200"), async || {
        http_get(addr, target)
            .await
            .filter(|(status, _)| *status == 200)
            .map(|(_, body)| body)
    })
    .await
}

#[tokio::test]
async fn the_textfile_counts_every_outcome_and_node_exporter_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let job = job_with_metrics("textfile", dir.path());
    assert_eq!(job.run(&["--lockname", "backup", "--", "true"]).await.0, 0);
    let first = samples(&textfile(dir.path(), "backup"));
    let success = value(
        &first,
        r#"switchman_job_last_success_timestamp_seconds{lock="backup"}"#,
    );
    let exit3 = sh("exit 3");
    assert_eq!(job.run(&lock_argv("backup", &exit3)).await.0, 3);

    // Held by a run that is then stopped; a run meanwhile skips.
    let held = cmd_waiting("a", 0);
    let a = job.spawn(&lock_argv("backup", &held));
    job.wait_for_pid("a.pid").await;
    assert_eq!(
        job.run(&["--lockname", "backup", "--", "true"]).await,
        (0, String::new()),
        "a skip says nothing"
    );
    let stop = job.ctl_command(&["stop", "backup"]).output().await.unwrap();
    assert!(stop.status.success(), "{stop:?}");
    assert_eq!(finish(a).await.0, 79);
    // switchman's own failure: a resource the prefix data does not list.
    let args = [
        "--lockname",
        "backup",
        "--lease",
        "nosuch=1:1",
        "--",
        "true",
    ];
    assert_eq!(job.run(&args).await.0, 78);

    let text = textfile(dir.path(), "backup");
    let s = samples(&text);
    let runs = |outcome: &str| {
        value(
            &s,
            &format!(r#"switchman_job_runs_total{{lock="backup",outcome="{outcome}"}}"#),
        )
    };
    // One run of each outcome, named as operators read them.
    assert_eq!(
        [
            runs("succeeded"),
            runs("failed"),
            runs("skipped"),
            runs("stopped"),
            runs("error")
        ],
        [1.0, 1.0, 1.0, 1.0, 1.0],
        "{text}"
    );
    let failure = value(
        &s,
        r#"switchman_job_last_failure_timestamp_seconds{lock="backup"}"#,
    );
    assert!(
        failure >= success,
        "the exit 3 came after the success: {text}"
    );
    assert_eq!(
        value(&s, r#"switchman_job_last_exit_code{lock="backup"}"#),
        78.0
    );
    assert_eq!(
        value(
            &s,
            r#"switchman_job_last_success_timestamp_seconds{lock="backup"}"#
        ),
        success,
        "only the run that exited 0 succeeded"
    );
    let last_run = value(
        &s,
        r#"switchman_job_last_run_timestamp_seconds{lock="backup"}"#,
    );
    assert!(last_run >= success, "{text}");
    assert!(value(&s, r#"switchman_job_last_duration_seconds{lock="backup"}"#) > 0.0);
    promtool_accepts(&text).await;

    // node_exporter's textfile collector takes it as it is.
    let port = pick_ports(1)[0];
    let addr = format!("127.0.0.1:{port}");
    let args = [
        "--collector.disable-defaults".to_string(),
        "--collector.textfile".to_string(),
        format!("--collector.textfile.directory={}", dir.path().display()),
        format!("--web.listen-address={addr}"),
    ];
    let Some(_exporter) = start(
        "prometheus-node-exporter",
        "prometheus-node-exporter",
        &args,
    ) else {
        return;
    };
    let scraped = samples(&await_ok(&addr, "/metrics").await);
    assert_eq!(value(&scraped, "node_textfile_scrape_error"), 0.0);
    assert_eq!(
        value(
            &scraped,
            r#"switchman_job_runs_total{lock="backup",outcome="failed"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn concurrent_runs_of_one_job_lose_no_increment() {
    const RUNS: usize = 10;
    let dir = tempfile::tempdir().unwrap();
    let job = job_with_metrics("concurrent", dir.path());
    // Every CMD waits for the same go, so that the runs end, and count, together.
    let cmd = sh(format!(
        r#"echo $$ >> "$JOB_DIR/started"; {}"#,
        until_go("all")
    ));
    let runs: Vec<Child> = (0..RUNS)
        .map(|_| job.spawn(&argv(&["--no-lock"], &cmd)))
        .collect();
    wait_until("every CMD runs", || {
        job.read("started").lines().count() == RUNS
    })
    .await;
    job.go("all");
    for run in runs {
        finish_ok(run).await;
    }
    // With --no-lock, the job is named after CMD's basename.
    let s = samples(&textfile(dir.path(), "sh"));
    assert_eq!(
        value(
            &s,
            r#"switchman_job_runs_total{lock="sh",outcome="succeeded"}"#
        ),
        RUNS as f64
    );
}

#[tokio::test]
async fn a_metrics_dir_that_cannot_be_written_changes_no_exit_code() {
    let scratch = tempfile::tempdir().unwrap();
    let not_a_dir = scratch.path().join("file");
    std::fs::write(&not_a_dir, "").unwrap();
    let job = job_with_metrics("unwritable", &not_a_dir.join("prom"));
    let exit3 = sh("exit 3");
    let (code, stderr) = job.run(&lock_argv("unwritable", &exit3)).await;
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("switchman: warning: metrics not written (cannot open"),
        "{stderr}"
    );
    let args = ["--lockname", "x", "--lease", "nosuch=1:1", "--", "true"];
    let (code, stderr) = job.run(&args).await;
    assert_eq!(code, 78, "{stderr}");
    assert!(stderr.contains("metrics not written"), "{stderr}");
    job.wait_for_log(2, &["metrics not written"]).await;

    // A run that finds the job's textfile locked (another run stopped while it wrote, say)
    // gives up on it after a moment rather than wait: this run is not counted.
    let dir = tempfile::tempdir().unwrap();
    let job = job_with_metrics("locked", dir.path());
    let sidecar = std::fs::File::create(dir.path().join("switchman_locked.prom.lock")).unwrap();
    let held = nix::fcntl::Flock::lock(sidecar, nix::fcntl::FlockArg::LockExclusive).unwrap();
    let (code, stderr) = job.run(&lock_argv("locked", &exit3)).await;
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("still locked by another run"), "{stderr}");
    assert_eq!(textfile(dir.path(), "locked"), "");
    drop(held);
    assert_eq!(job.run(&lock_argv("locked", &exit3)).await.0, 3);
    let s = samples(&textfile(dir.path(), "locked"));
    assert_eq!(
        value(
            &s,
            r#"switchman_job_runs_total{lock="locked",outcome="failed"}"#
        ),
        1.0
    );
}

/// switchman as host `fqdn`, running ARGS.
fn spawn_as(job: &Job, fqdn: &str, args: &[&str]) -> Child {
    let mut cmd = job.command(args);
    cmd.env("SWITCHMAN_FQDN", fqdn);
    cmd.spawn().expect("start switchman")
}

#[tokio::test]
async fn fleet_metrics_show_what_status_knows() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("fleet", &zk_hosts, json!({}));
    let client = zk(&zk_hosts).await;
    set_prefix_data(
        &client,
        &job.prefix,
        r#"{"groups": {"g": ["a.example", "b.example"], "all": ["g", "c.example"]},
            "resources": ["db"]}"#,
    )
    .await;
    let a_cmd = cmd_waiting("a", 0);
    let a = spawn_as(&job, "web1.example", &lock_argv("backup", &a_cmd));
    let l_cmd = cmd_waiting("l", 0);
    let l_args = [&["--lease", "db=1:1"][..], &lock_argv("leaser", &l_cmd)].concat();
    let l = spawn_as(&job, "web2.example", &l_args);
    job.wait_for_pid("a.pid").await;
    job.wait_for_pid("l.pid").await;
    // Waits in db's queue for the unit the leaser holds.
    let w_cmd = cmd_waiting("w", 0);
    let w_args = [&["--lease", "db=1:1"][..], &lock_argv("waiter", &w_cmd)].concat();
    let w = spawn_as(&job, "web3.example", &w_args);
    await_children(&client, &job.queue_path("db"), "waiter queues", |c| {
        has_item(c, "waiter")
    })
    .await;
    // And in line for the lock backup (--wait).
    let b_cmd = cmd_waiting("b", 0);
    let b_args = [&["--wait", "forever"][..], &lock_argv("backup", &b_cmd)].concat();
    let b = spawn_as(&job, "web4.example", &b_args);
    await_children(&client, &job.line_path("backup"), "b waits in line", |c| {
        !c.is_empty()
    })
    .await;

    let out = job.ctl_command(&["metrics"]).output().await.unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let s = samples(&text);
    for (series, expected) in [
        (
            r#"switchman_lock_held{host="web1.example",lock="backup"}"#,
            1.0,
        ),
        (
            r#"switchman_lock_held{host="web2.example",lock="leaser"}"#,
            1.0,
        ),
        (r#"switchman_lock_waiting{lock="backup"}"#, 1.0),
        (r#"switchman_queue_length{resource="db"}"#, 1.0),
        (r#"switchman_semaphore_used{resource="db"}"#, 1.0),
        (r#"switchman_semaphore_capacity{resource="db"}"#, 1.0),
        (r#"switchman_group_size{group="g"}"#, 2.0),
        (r#"switchman_group_size{group="all"}"#, 3.0),
        ("switchman_metrics_warnings", 0.0),
    ] {
        assert_eq!(value(&s, series), expected, "{series} in\n{text}");
    }
    for series in [
        r#"switchman_lock_held_seconds{host="web1.example",lock="backup"}"#,
        r#"switchman_queue_oldest_wait_seconds{resource="db"}"#,
    ] {
        assert!(value(&s, series) >= 0.0, "{series} in\n{text}");
    }
    assert!(
        !text.contains(r#"lock="waiter""#),
        "a waiter holds no lock:\n{text}"
    );
    promtool_accepts(&text).await;

    for name in ["a", "l", "w", "b"] {
        job.go(name);
    }
    for run in [a, l, w, b] {
        finish_ok(run).await;
    }
}

/// "Has it succeeded anywhere?": the run records (`record_runs`) give each job's last success
/// on any host, kept through a later failure elsewhere, and that failure.
#[tokio::test]
async fn the_fleet_knows_each_jobs_last_success_from_the_run_records() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("records", &zk_hosts, json!({"record_runs": true}));
    let run_as = async |fqdn: &str, cmd: &[String]| {
        let mut run = job.command(&lock_argv("nightly", cmd));
        run.env("SWITCHMAN_FQDN", fqdn);
        run.output().await.unwrap().status.code()
    };
    assert_eq!(run_as("web1.example", &sh("exit 0")).await, Some(0));
    let out = job.ctl_command(&["metrics"]).output().await.unwrap();
    let first = samples(&String::from_utf8(out.stdout).unwrap());
    let series = r#"switchman_last_success_timestamp_seconds{host="web1.example",lock="nightly"}"#;
    let success = value(&first, series);
    assert!(success > 0.0);

    assert_eq!(run_as("web2.example", &sh("exit 1")).await, Some(1));
    let out = job.ctl_command(&["metrics"]).output().await.unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let s = samples(&text);
    assert_eq!(
        value(&s, series),
        success,
        "the failure on web2 keeps it:\n{text}"
    );
    // ... and says that the last run failed, there, since: what SwitchmanJobFailing compares.
    let failure = value(
        &s,
        r#"switchman_last_failure_timestamp_seconds{host="web2.example",lock="nightly"}"#,
    );
    assert!(failure >= success, "{text}");
    promtool_accepts(&text).await;
}

/// A scrape while ZooKeeper is away is a 503, not a page of zeros, so that Prometheus marks the
/// target down; once ZooKeeper is back, scrapes answer again with a new session.
#[tokio::test(flavor = "multi_thread")]
async fn a_listener_answers_503_while_zookeeper_is_away_and_recovers() {
    let mut ensemble = Ensemble::start(1);
    let job = Job::new("outage", &ensemble.connect_string(), json!({}));
    let (mut listener, addr) = job.metrics_listener().await;
    let body = await_ok(&addr, "/metrics").await;
    promtool_accepts(&body).await;
    assert_eq!(http_get(&addr, "/nosuch").await.unwrap().0, 404);

    ensemble.stop(0);
    wait_for("a scrape is refused with 503", async || {
        let (status, body) = http_get(&addr, "/metrics").await?;
        (status == 503).then_some(body)
    })
    .await;
    ensemble.start_member(0);
    let body = await_ok(&addr, "/metrics").await;
    assert!(body.contains("switchman_metrics_warnings "), "{body}");
    listener.kill().await.unwrap();
}

/// The series of `query` that Prometheus at `addr` has now.
async fn query(addr: &str, query: &str) -> Vec<Value> {
    let body = await_ok(addr, &format!("/api/v1/query?query={}", encode(query))).await;
    let reply: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reply["status"], "success", "{body}");
    reply["data"]["result"].as_array().unwrap().clone()
}

#[tokio::test]
async fn prometheus_sees_a_held_lock_while_it_is_held_and_not_after() {
    if tool("prometheus", "prometheus").is_none() {
        return;
    }
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("scraped", &zk_hosts, json!({}));
    let (mut listener, target) = job.metrics_listener().await;

    let port = pick_ports(1)[0];
    let addr = format!("127.0.0.1:{port}");
    let config = job.file("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "scrape_configs:\n  - job_name: switchman\n    scrape_interval: 200ms\n    \
             scrape_timeout: 200ms\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let args = [
        format!("--config.file={}", config.display()),
        format!("--storage.tsdb.path={}", job.file("tsdb").display()),
        format!("--web.listen-address={addr}"),
        "--log.level=warn".to_string(),
    ];
    let _prometheus = start("prometheus", "prometheus", &args).unwrap();
    await_ok(&addr, "/-/ready").await;

    let cmd = cmd_waiting("a", 0);
    let holder = spawn_as(&job, "web1.example", &lock_argv("watched", &cmd));
    job.wait_for_pid("a.pid").await;
    let held = r#"switchman_lock_held{lock="watched"}"#;
    let series = wait_for("Prometheus has scraped the held lock", async || {
        Some(query(&addr, held).await).filter(|r| !r.is_empty())
    })
    .await;
    let labels = &series[0]["metric"];
    assert_eq!(
        (&labels["host"], &labels["job"], &labels["instance"]),
        (&json!("web1.example"), &json!("switchman"), &json!(target)),
        "{series:?}"
    );
    assert_eq!(series[0]["value"][1], "1");

    job.go("a");
    finish_ok(holder).await;
    wait_for("the released lock's series is gone", async || {
        query(&addr, held).await.is_empty().then_some(())
    })
    .await;
    let up = query(&addr, r#"up{job="switchman"}"#).await;
    assert_eq!(up[0]["value"][1], "1", "{up:?}");
    listener.kill().await.unwrap();
}

#[tokio::test]
async fn the_alert_rules_pass_promtool_and_their_own_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The manual shows the rules as they are.
    let rules = std::fs::read_to_string(root.join("conf/alerts.yml")).unwrap();
    let manual = std::fs::read_to_string(root.join("docs/monitoring.md")).unwrap();
    assert!(
        manual.contains(&format!("```yaml\n{rules}```\n")),
        "docs/monitoring.md must show conf/alerts.yml as it is"
    );
    let Some(promtool) = tool("promtool", "prometheus") else {
        return;
    };
    for args in [
        ["check", "rules", "conf/alerts.yml"],
        ["test", "rules", "tests/data/alerts_test.yml"],
    ] {
        let out = Command::new(&promtool)
            .args(args)
            .current_dir(root)
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
