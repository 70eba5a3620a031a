//! End-to-end tests of the run history (docs/guide.md: "Output and history"): runs of several
//! hosts in one history in the order of their tokens, the oldest dropped, a failed run's output
//! read from another host, stopped runs kept with their output, and concurrent writers that
//! lose no run.

use switchman_test_support as support;

use serde_json::{Value, json};
use support::{Job, finish, output, sh, shared_ensemble, until_go, zk};
use switchman::config::Config;
use switchman::outcome::Outcome;
use switchman::recipes::runs::{self, Output, Run};
use switchman::zk::Session;

/// Host `fqdn` of the job: the same prefix and config, another FQDN.
fn host(job: &Job, fqdn: &str) -> Job {
    job.other_host(json!({ "fqdn": fqdn }))
}

/// `switchmanctl history NAME --json` (with `more` arguments): the runs, oldest first.
async fn history(job: &Job, name: &str, more: &[&str]) -> Vec<Value> {
    let mut args = vec!["history", name, "--json"];
    args.extend(more);
    let out = output(job.ctl_command(&args)).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap()
}

fn args<'a>(lock: &'a str, cmd: &'a [String]) -> Vec<&'a str> {
    let mut v = vec!["--lockname", lock, "--"];
    v.extend(cmd.iter().map(String::as_str));
    v
}

#[tokio::test]
async fn two_hosts_runs_share_one_history_in_order_and_the_oldest_drops() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new(
        "two-hosts",
        &zk_hosts,
        json!({"capture_output": true, "history": 3}),
    );
    let (web1, web2) = (host(&job, "web1.example"), host(&job, "web2.example"));
    let runs = [
        (&web1, "echo first", 0),
        (&web2, "echo second; exit 2", 2),
        (&web1, "echo third", 0),
        (&web2, "echo fourth", 0),
    ];
    for (host, script, code) in runs {
        let (got, stderr) = host.run(&args("j", &sh(script))).await;
        assert_eq!(got, code, "{stderr}");
    }
    let runs = history(&job, "j", &[]).await;
    let seen: Vec<(&str, &str, &str)> = runs
        .iter()
        .map(|r| {
            (
                r["host"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
                r["output"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("web2.example", "failed", "second\n"),
            ("web1.example", "succeeded", "third\n"),
            ("web2.example", "succeeded", "fourth\n"),
        ],
        "the first run dropped at 3"
    );
    let tokens: Vec<i64> = runs.iter().map(|r| r["token"].as_i64().unwrap()).collect();
    assert!(tokens.windows(2).all(|w| w[0] < w[1]), "{tokens:?}");
    for r in &runs {
        let (start, end) = (r["start"].as_str().unwrap(), r["end"].as_str().unwrap());
        assert!(start <= end, "{r}");
    }
    assert_eq!(runs[0]["exit_code"], 2);
    assert_eq!(history(&job, "j", &["-n", "1"]).await, runs[2..]);

    // The table, for people.
    let out = output(job.ctl_command(&["history", "j"])).await;
    let rows: Vec<&str> = out.stdout.lines().collect();
    assert!(rows[0].starts_with("START "), "{}", out.stdout);
    assert!(rows[1].contains(" web2.example ") && rows[1].contains(" failed "));
    assert_eq!(rows.len(), 4, "{}", out.stdout);
}

/// The question of issue 22: which host ran last night's job, what did it print, and how did
/// it end? Asked from another host.
#[tokio::test]
async fn another_host_reads_the_output_of_a_run_that_failed() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new(
        "failed-elsewhere",
        &zk_hosts,
        json!({"capture_output": true}),
    );
    let web1 = host(&job, "web1.example");
    let script =
        "echo 'backing up /srv'; echo 'tar: /srv/db: file changed as we read it' >&2; exit 1";
    assert_eq!(web1.run(&args("nightly", &sh(script))).await.0, 1);

    let ops = host(&job, "ops.example");
    let out = output(ops.ctl_command(&["history", "nightly", "-n", "1", "--output"])).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (heading, shown) = out.stdout.split_once('\n').unwrap();
    assert!(
        heading.contains("on web1.example") && heading.contains("failed, exit 1"),
        "{heading}"
    );
    assert!(shown.contains("backing up /srv\n"), "{shown}");
    assert!(
        shown.contains("tar: /srv/db: file changed as we read it\n"),
        "{shown}"
    );
    let runs = history(&ops, "nightly", &[]).await;
    assert_eq!(runs[0]["host"], "web1.example");
    assert!(runs[0]["output"].as_str().unwrap().contains("file changed"));

    // A job with nothing recorded is one line and exit 1.
    let out = output(ops.ctl_command(&["history", "nothing"])).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("no runs of nothing are recorded"),
        "{}",
        out.stderr
    );
    let out = output(ops.ctl_command(&["history", "a/b"])).await;
    assert_eq!(out.code, 64, "{}", out.stderr);
}

/// A CMD that switchman stops still has its output, and its outcome, in the history; so does
/// a CMD that could not be started.
#[tokio::test]
async fn stopped_and_unstartable_runs_are_kept() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("stopped", &zk_hosts, json!({"capture_output": true}));
    let script = format!("echo 'half done'; {}", until_go("never"));
    let run = job.spawn(&args("s", &sh(script)));
    job.wait_for_log(1, &["half done"]).await;
    let stop = job.ctl_command(&["stop", "s"]).output().await.unwrap();
    assert!(stop.status.success());
    assert_eq!(finish(run).await.0, 79);
    let (code, _) = job
        .run(&["--lockname", "s", "--", "/nonexistent/cmd"])
        .await;
    assert_eq!(code, 127);

    let runs = history(&job, "s", &[]).await;
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[0]["outcome"], "stopped");
    assert_eq!(runs[0]["exit_code"], 79);
    assert_eq!(runs[0]["output"], "half done\n");
    assert!(
        runs[0]["error"].as_str().unwrap().contains("was deleted"),
        "{runs:?}"
    );
    assert_eq!(runs[1]["outcome"], "error");
    assert_eq!(runs[1]["exit_code"], 127);
    assert!(
        runs[1]["error"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/cmd")
    );

    // status names the last run's outcome as the history does.
    let out = output(job.ctl_command(&["status", "--json"])).await;
    let status: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        status["runs"][0]["last_run"]["outcome"], "error",
        "{status}"
    );
}

/// Runs that write the history at once (here: sessions of the test, as holders whose lock was
/// lost while the next one ran would) all get in, each in the order of its token.
#[tokio::test]
async fn concurrent_writers_lose_no_run() {
    const WRITERS: i64 = 8;
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("concurrent", &zk_hosts, json!({}));
    let config = Config::load(&job.config).unwrap();
    let record = format!("{}/runs/c", job.prefix);
    let history_path = format!("{}/history/c", job.prefix);
    let mut sessions = Vec::new();
    for _ in 0..WRITERS {
        sessions.push(Session::connect(&config.zk()).await.unwrap());
    }
    let writes = sessions.iter().zip(1..).map(|(session, token)| {
        let (record, history_path) = (&record, &history_path);
        async move {
            let ours = Run {
                host: format!("web{token}.example"),
                pid: token as u32,
                start: token,
                end: None,
                exit_code: 0,
                token,
                outcome: Outcome::Succeeded,
                signal: None,
                command: None,
                error: None,
                output: Some(Output {
                    tail: format!("run {token}\n").into_bytes(),
                    bytes: 6,
                }),
            };
            let paths = runs::Paths {
                record,
                history: history_path,
            };
            runs::write(session, paths, &ours, 20, None).await.unwrap()
        }
    });
    let written = futures::future::join_all(writes).await;
    assert!(
        written.iter().all(|w| !matches!(w, runs::Written::No(_))),
        "{written:?}"
    );
    for session in sessions {
        session.close().await;
    }
    let runs = history(&job, "c", &[]).await;
    let tokens: Vec<i64> = runs.iter().map(|r| r["token"].as_i64().unwrap()).collect();
    assert_eq!(tokens, (1..=WRITERS).collect::<Vec<_>>());
    let client = zk(&zk_hosts).await;
    let (data, _) = client.get_data(&record).await.unwrap();
    let last: Value = serde_json::from_slice(&data).unwrap();
    assert_eq!(last["token"], WRITERS, "the record holds the newest run");
}

/// `--lockname-from-args`: `x.sh a` and `x.sh b` have locks of their own, and two runs of
/// `x.sh a` on two hosts share one.
#[tokio::test]
async fn a_lock_named_from_the_args_separates_and_joins_command_lines() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("from-args", &zk_hosts, json!({"record_runs": true}));
    let (web1, web2) = (host(&job, "web1.example"), host(&job, "web2.example"));
    let script = format!("echo \"$1\" >> \"$JOB_DIR/ran\"; {}", until_go("$1"));
    let cmd = |arg: &str| {
        sh(script.clone())
            .into_iter()
            .chain(["x.sh".into(), arg.into()])
            .collect::<Vec<String>>()
    };
    let a_cmd = cmd("a");
    let mut a_args = vec!["--lockname-from-args", "--"];
    a_args.extend(a_cmd.iter().map(String::as_str));
    let a = web1.spawn(&a_args);
    let ran = |j: &Job| {
        j.read("ran")
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    support::wait_until("x.sh a runs on web1", || ran(&web1) == ["a"]).await;

    // The same command line on another host: the same lock, held, so it skips.
    assert_eq!(web2.run(&a_args).await, (0, String::new()));
    assert!(ran(&web2).is_empty(), "x.sh a must not run twice at once");
    // Another argument: another lock.
    let b_cmd = cmd("b");
    let mut b_args = vec!["--lockname-from-args", "--"];
    b_args.extend(b_cmd.iter().map(String::as_str));
    let b = web2.spawn(&b_args);
    support::wait_until("x.sh b runs on web2", || ran(&web2) == ["b"]).await;
    let client = zk(&zk_hosts).await;
    let mut locks = client.list_children(&job.locks_path()).await.unwrap();
    locks.sort();
    assert_eq!(locks.len(), 2, "{locks:?}");
    assert!(
        locks.iter().all(|l| l.starts_with("sh-") && l.len() == 15),
        "{locks:?}"
    );
    web1.go("a");
    web2.go("b");
    assert_eq!(finish(a).await.0, 0);
    assert_eq!(finish(b).await.0, 0);

    // The log and status say what the hashed name stands for.
    let log = std::fs::read_to_string(job.log()).unwrap();
    assert!(
        log.contains(&format!("{}/locks/{}", job.prefix, locks[0])),
        "{log}"
    );
    assert!(log.contains("x.sh a`"), "{log}");
    let out = output(job.ctl_command(&["status"])).await;
    assert!(
        out.stdout.contains("COMMAND") && out.stdout.contains(" x.sh b"),
        "{}",
        out.stdout
    );
}
