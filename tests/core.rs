//! End-to-end tests of the core: the lock, the supervisor and the session's liveness, run as
//! the real binary against a real ZooKeeper started by the harness.

use switchman_test_support as support;

use std::time::Duration;

use serde_json::json;
use support::{
    Ensemble, Job, Proxy, SESSION_TIMEOUT, argv, await_item, cmd_touching, cmd_waiting, finish,
    finish_ok, is_dead, lock_argv, run_command, set_prefix_data, sh, shared_ensemble,
    switchman_bin, wait_for_file, wait_until, zk,
};
use zookeeper_client::EventType;

#[tokio::test]
async fn two_runs_one_lock_one_runs_the_other_skips() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("two-runs", &zk_hosts, json!({}));
    let a_cmd = cmd_waiting("a", 0);
    let a = job.spawn(&lock_argv("nightly", &a_cmd));
    job.wait_for_pid("a.pid").await;

    let b_cmd = cmd_waiting("b", 0);
    let (code, stderr) = job.run(&lock_argv("nightly", &b_cmd)).await;
    assert_eq!(code, 0, "a skipped run exits 0");
    assert_eq!(stderr, "", "a skipped run is silent on stderr");
    assert!(!job.file("b.pid").exists(), "the second CMD must not run");

    // The busy code can be changed on the command line.
    let (code, _) = job
        .run(&argv(
            &["--busy-exit-code", "75", "--lockname", "nightly"],
            &b_cmd,
        ))
        .await;
    assert_eq!(code, 75);
    assert!(!job.file("b.pid").exists());

    job.go("a");
    finish_ok(a).await;
}

#[tokio::test]
async fn busy_exit_code_from_config() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("busy-config", &zk_hosts, json!({"busy_exit_code": 3}));
    let a_cmd = cmd_waiting("a", 0);
    let a = job.spawn(&lock_argv("j", &a_cmd));
    job.wait_for_pid("a.pid").await;
    let (code, _) = job.run(&["--lockname", "j", "true"]).await;
    assert_eq!(code, 3);
    job.go("a");
    finish_ok(a).await;
}

#[tokio::test]
async fn lock_node_holds_owner_and_goes_away_after_exit() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new(
        "lock-node",
        &zk_hosts,
        json!({"fqdn": "host-x.example.com"}),
    );
    let client = zk(&zk_hosts).await;
    let cmd = cmd_waiting("a", 7);
    let a = job.spawn(&lock_argv("backup", &cmd));
    let pid = a.id().unwrap();
    job.wait_for_pid("a.pid").await;

    let path = job.lock_path("backup");
    let (data, stat) = client
        .get_data(&path)
        .await
        .expect("lock node exists while CMD runs");
    assert_eq!(
        String::from_utf8(data).unwrap(),
        format!("host-x.example.com {pid}")
    );
    assert_ne!(stat.ephemeral_owner, 0, "the lock node is ephemeral");
    let env = wait_for_file(&job.file("a.env")).await;
    assert!(env.contains(&format!("SWITCHMAN_LOCK={path}\n")), "{env}");
    assert!(
        env.contains(&format!("SWITCHMAN_FENCING_TOKEN={}\n", stat.czxid)),
        "{env}"
    );

    job.go("a");
    let (code, stderr) = finish(a).await;
    assert_eq!(code, 7, "switchman exits with CMD's code: {stderr}");
    assert_eq!(
        client.check_stat(&path).await.unwrap(),
        None,
        "the lock is gone once switchman has exited"
    );
}

#[tokio::test]
async fn fencing_token_grows_from_holder_to_holder() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("fencing", &zk_hosts, json!({}));
    let cmd = sh(r#"echo $SWITCHMAN_FENCING_TOKEN >> "$JOB_DIR/tokens""#);
    for _ in 0..3 {
        assert_eq!(job.run(&lock_argv("f", &cmd)).await.0, 0);
    }
    let tokens: Vec<i64> = std::fs::read_to_string(job.file("tokens"))
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(tokens.len(), 3);
    assert!(tokens.windows(2).all(|w| w[0] < w[1]), "{tokens:?}");
}

#[tokio::test]
async fn cmd_killed_by_a_signal_exits_128_plus_n() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("signal-exit", &zk_hosts, json!({}));
    let (code, _) = job
        .run(&["--lockname", "s", "--", "sh", "-c", "kill -USR1 $$"])
        .await;
    assert_eq!(code, 128 + 10);
}

#[tokio::test]
async fn signals_are_passed_on_to_cmd() {
    let zk_hosts = shared_ensemble().connect_string();
    for (sig, name) in [
        (libc::SIGTERM, "TERM"),
        (libc::SIGINT, "INT"),
        (libc::SIGHUP, "HUP"),
        (libc::SIGQUIT, "QUIT"),
    ] {
        let job = Job::new("signals", &zk_hosts, json!({}));
        let script = format!(
            r#"trap 'echo got > "$JOB_DIR/got"; exit 42' {name}
echo $$ > "$JOB_DIR/pid"
while :; do sleep 0.05; done"#
        );
        let a = job.spawn(&["--lockname", "sig", "--", "sh", "-c", &script]);
        wait_for_file(&job.file("pid")).await;
        unsafe { libc::kill(a.id().unwrap() as i32, sig) };
        let (code, stderr) = finish(a).await;
        assert_eq!(
            code, 42,
            "{name}: CMD's trap ran and its code came back: {stderr}"
        );
        assert_eq!(std::fs::read_to_string(job.file("got")).unwrap(), "got\n");
    }
}

#[tokio::test]
async fn cmd_is_stopped_when_the_lock_node_is_deleted() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("lock-deleted", &zk_hosts, json!({}));
    let client = zk(&zk_hosts).await;
    let cmd = cmd_waiting("a", 0);
    let a = job.spawn(&lock_argv("victim", &cmd));
    job.wait_for_pid("a.pid").await;

    client.delete(&job.lock_path("victim"), None).await.unwrap();
    let (code, stderr) = finish(a).await;
    assert_eq!(code, 79, "{stderr}");
    assert!(stderr.contains("was deleted"), "{stderr}");
    assert_eq!(job.read("a.term"), "term\n", "CMD got SIGTERM first");
}

#[tokio::test]
async fn cmd_that_ignores_sigterm_gets_sigkill() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new(
        "ignores-term",
        &zk_hosts,
        json!({"termination_timeout": 0.5}),
    );
    let client = zk(&zk_hosts).await;
    let script = r#"trap '' TERM; echo $$ > "$JOB_DIR/pid"; while :; do sleep 0.05; done"#;
    let a = job.spawn(&["--lockname", "stubborn", "--", "sh", "-c", script]);
    let pid = job.wait_for_pid("pid").await;
    client
        .delete(&job.lock_path("stubborn"), None)
        .await
        .unwrap();
    let (code, _) = finish(a).await;
    assert_eq!(code, 79);
    assert!(is_dead(pid));
}

#[tokio::test]
async fn cmd_dies_when_switchman_is_sigkilled() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("sigkill", &zk_hosts, json!({}));
    let client = zk(&zk_hosts).await;
    let cmd = cmd_waiting("a", 0);
    let mut a = job.spawn(&lock_argv("orphan", &cmd));
    let pid = job.wait_for_pid("a.pid").await;
    let path = job.lock_path("orphan");
    let (_, watcher) = client.check_and_watch_stat(&path).await.unwrap();

    a.kill().await.unwrap(); // SIGKILL
    wait_until("CMD dies with switchman", || is_dead(pid)).await;
    // And the lock goes when the servers expire the dead session.
    assert_eq!(watcher.changed().await.event_type, EventType::NodeDeleted);
}

/// Cut switchman off from ZooKeeper, without closing anything, for longer than the session
/// timeout: CMD must be dead before the servers expire the session and delete the lock node.
#[tokio::test]
async fn partition_longer_than_the_session_kills_cmd_before_the_lock_goes() {
    let ensemble = shared_ensemble();
    let proxy = Proxy::start(&[ensemble.client_port(0)]);
    // A timeout of 5 s gives a stop for silence its full half second of SIGTERM grace (a
    // tenth of the timeout, at least 0.5 s); at the tests' 2 s it is 0.4 s, short for a
    // shell's trap on a loaded machine.
    let job = Job::new(
        "partition",
        &proxy.connect_string(),
        json!({"termination_timeout": 30, "session_timeout": 5}),
    );
    let client = zk(&ensemble.connect_string()).await;
    let cmd = cmd_waiting("a", 0);
    let a = job.spawn(&lock_argv("cut", &cmd));
    let pid = job.wait_for_pid("a.pid").await;
    let path = job.lock_path("cut");
    let (stat, watcher) = client.check_and_watch_stat(&path).await.unwrap();
    assert!(stat.is_some());

    proxy.blackhole();
    let event = watcher.changed().await;
    assert_eq!(event.event_type, EventType::NodeDeleted);
    // The order of the two events, not their timing: CMD was already dead.
    assert!(
        is_dead(pid),
        "CMD was still running when the servers deleted the lock node"
    );
    let (code, stderr) = finish(a).await;
    assert_eq!(code, 79, "{stderr}");
    assert!(job.file("a.term").exists(), "SIGTERM came before SIGKILL");
    proxy.heal();
}

/// A cut that heals well within the session timeout is not a loss: CMD runs to its end.
#[tokio::test]
async fn short_cut_that_heals_leaves_cmd_alone() {
    let ensemble = shared_ensemble();
    let proxy = Proxy::start(&[ensemble.client_port(0)]);
    let job = Job::new("short-cut", &proxy.connect_string(), json!({}));
    // CMD runs for twice the session timeout, then ends by itself with code 5.
    let script = r#"trap 'echo term > "$JOB_DIR/term"; exit 143' TERM
echo $$ > "$JOB_DIR/pid"; sleep 4 & wait $!; exit 5"#;
    let a = job.spawn(&["--lockname", "blip", "--", "sh", "-c", script]);
    wait_for_file(&job.file("pid")).await;

    proxy.blackhole();
    // The fault's length: a fifth of the session timeout.
    tokio::time::sleep(Duration::from_secs_f64(SESSION_TIMEOUT / 5.0)).await;
    proxy.heal();
    let (code, stderr) = finish(a).await;
    assert_eq!(code, 5, "CMD ran to its own end: {stderr}");
    assert!(!job.file("term").exists(), "CMD was never signalled");
}

#[tokio::test]
async fn config_errors_exit_78_and_write_nothing() {
    let zk_hosts = shared_ensemble().connect_string();
    let client = zk(&zk_hosts).await;
    let prefix = format!("/t/cfg-{}", std::process::id());
    let cases = [
        ("not json", "{".to_string(), "not valid JSON"),
        (
            "no prefix",
            json!({"zkhosts": zk_hosts}).to_string(),
            "\"prefix\" is required",
        ),
        (
            "no zkhosts",
            json!({"prefix": prefix}).to_string(),
            "\"zkhosts\" is required",
        ),
        (
            "relative prefix",
            json!({"prefix": "rel", "zkhosts": zk_hosts}).to_string(),
            "absolute",
        ),
        (
            "bad type",
            json!({"prefix": prefix, "zkhosts": zk_hosts, "termination_timeout": "x"}).to_string(),
            "termination_timeout",
        ),
        (
            "bad level",
            json!({"prefix": prefix, "zkhosts": zk_hosts, "loglevel": "loud"}).to_string(),
            "loglevel",
        ),
        ("not an object", "[1]".to_string(), "JSON object"),
    ];
    for (what, text, expect) in cases {
        let job = Job::with_config(&prefix, &zk_hosts, &text);
        let touch = cmd_touching(&job.file("ran"));
        let (code, stderr) = job.run(&lock_argv("x", &touch)).await;
        assert_eq!(code, 78, "{what}: {stderr}");
        assert!(
            stderr.contains(expect) && stderr.contains(job.config.to_str().unwrap()),
            "{what}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{what}: one line: {stderr}");
        assert!(!job.file("ran").exists(), "{what}");
    }
    // A missing file, too.
    let job = Job::with_config(&prefix, &zk_hosts, "{}");
    std::fs::remove_file(&job.config).unwrap();
    let (code, stderr) = job.run(&["true"]).await;
    assert_eq!(code, 78, "{stderr}");
    assert!(stderr.contains("cannot read config file"), "{stderr}");
    assert_eq!(
        client.check_stat(&prefix).await.unwrap(),
        None,
        "nothing was written to ZooKeeper"
    );
}

#[tokio::test]
async fn usage_errors_exit_64_and_write_nothing() {
    let zk_hosts = shared_ensemble().connect_string();
    let client = zk(&zk_hosts).await;
    let job = Job::new("usage", &zk_hosts, json!({}));
    for bad in [
        &["--lockname", "a/b", "true"][..],
        &["--lockname", "..", "true"],
        &["--lockname", "x"],
        &["--bogus", "true"],
    ] {
        let (code, stderr) = job.run(bad).await;
        assert_eq!(code, 64, "{bad:?}: {stderr}");
        assert!(!stderr.is_empty());
    }
    assert_eq!(client.check_stat(&job.prefix).await.unwrap(), None);
}

#[tokio::test]
async fn zookeeper_down_exits_69() {
    // A port nobody listens on: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let job = Job::new(
        "down",
        &format!("127.0.0.1:{port}"),
        json!({"connect_timeout": 1}),
    );
    let touch = cmd_touching(&job.file("ran"));
    let (code, stderr) = job.run(&lock_argv("x", &touch)).await;
    assert_eq!(code, 69, "{stderr}");
    assert!(stderr.contains("connect_timeout"), "{stderr}");
    assert!(!job.file("ran").exists());
}

#[tokio::test]
async fn chroot_in_zkhosts_is_honoured() {
    let ensemble = shared_ensemble();
    let client = zk(&ensemble.connect_string()).await;
    let chroot = format!("/chroot-{}", std::process::id());
    client
        .create(
            &chroot,
            b"",
            &zookeeper_client::CreateMode::Persistent
                .with_acls(zookeeper_client::Acls::anyone_all()),
        )
        .await
        .unwrap();
    let job = Job::new(
        "chroot",
        &format!("{}{chroot}", ensemble.connect_string()),
        json!({}),
    );
    let cmd = cmd_waiting("a", 0);
    let a = job.spawn(&lock_argv("c", &cmd));
    job.wait_for_pid("a.pid").await;
    let full = format!("{chroot}{}", job.lock_path("c"));
    assert!(client.check_stat(&full).await.unwrap().is_some(), "{full}");
    job.go("a");
    finish_ok(a).await;
}

#[tokio::test]
async fn cmd_not_found_exits_127() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("not-found", &zk_hosts, json!({}));
    let (code, stderr) = job.run(&["/nonexistent/cmd"]).await;
    assert_eq!(code, 127, "{stderr}");
    assert!(stderr.contains("/nonexistent/cmd"), "{stderr}");
}

/// The request count of a plain lock run on a prepared prefix, from the server's own counter.
#[tokio::test]
async fn a_plain_lock_run_costs_few_requests() {
    let ensemble = Ensemble::start(1);
    // The default session timeout: with the tests' 2 s a heartbeat (every T/20) can fall inside
    // a run slowed by a busy machine, and this counts a short run's requests, not heartbeats.
    let job = Job::new(
        "requests",
        &ensemble.connect_string(),
        json!({"session_timeout": 10}),
    );
    // Prepare the prefix (a first run creates the folders).
    assert_eq!(job.run(&["--lockname", "r", "true"]).await.0, 0);
    // Connect, the create and the read that sets the lock's watch (one write, one round trip),
    // close; no ping after connecting without credentials. Exactly: one more is waste, one
    // fewer would leave the lock unwatched while CMD runs.
    let least = job
        .least_packets(&ensemble, &["--lockname", "r", "true"])
        .await;
    assert_eq!(least, 4, "a plain lock run sent {least} packets");
}

#[tokio::test]
async fn logfile_gets_lines_at_loglevel_with_timestamp_and_pid() {
    let zk_hosts = shared_ensemble().connect_string();
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("switchman.log");
    let job = Job::new(
        "logfile",
        &zk_hosts,
        json!({"logfile": log, "loglevel": "info"}),
    );
    let a_cmd = cmd_waiting("a", 0);
    let a = job.spawn(&lock_argv("logged", &a_cmd));
    job.wait_for_pid("a.pid").await;
    let b = job.spawn(&["--lockname", "logged", "true"]);
    let b_pid = b.id().unwrap();
    let (code, stderr) = finish(b).await;
    assert_eq!(
        (code, stderr.as_str()),
        (0, ""),
        "a skip is silent on stderr"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("skipped"))
        .expect("the skip is logged at info");
    assert!(line.contains(&format!("[{b_pid}]")), "{line}");
    assert!(line.starts_with("20"), "starts with a timestamp: {line}");
    job.go("a");
    finish_ok(a).await;
}

/// A run that waits in a lease queue for longer than the session timeout must start CMD with a
/// fresh liveness record, not stop it at once.
#[tokio::test]
async fn a_long_wait_for_a_lease_does_not_doom_cmd() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("long-wait", &zk_hosts, json!({}));
    let client = zk(&zk_hosts).await;
    set_prefix_data(&client, &job.prefix, r#"{"resources": ["r"]}"#).await;

    let a_cmd = cmd_waiting("a", 0);
    let a = job.spawn(&argv(&["--lease", "r=1:1", "--lockname", "a"], &a_cmd));
    job.wait_for_pid("a.pid").await;
    let b_cmd = cmd_waiting("b", 4);
    let b = job.spawn(&argv(&["--lease", "r=1:1", "--lockname", "b"], &b_cmd));
    await_item(&client, &job.queue_path("r"), "b").await;
    // The fault: B waits for longer than the session timeout.
    tokio::time::sleep(Duration::from_secs_f64(SESSION_TIMEOUT * 1.5)).await;
    job.go("a");
    finish_ok(a).await;
    job.wait_for_pid("b.pid").await;
    job.go("b");
    let (code, stderr) = finish(b).await;
    assert_eq!(code, 4, "B's CMD ran to its own end: {stderr}");
    assert!(!job.file("b.term").exists());
}

/// Crontab lines written for the original spell options as its Getopt::Long read them (issue
/// 19): each runs CMD under the lock it names, with the group and config it names, and CMD
/// gets every word after it.
#[tokio::test]
async fn the_originals_spellings_run_cmd_under_the_lock_they_name() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("spellings", &zk_hosts, json!({"fqdn": "h1.example.com"}));
    let client = zk(&zk_hosts).await;
    set_prefix_data(
        &client,
        &job.prefix,
        r#"{"groups": {"here": ["h1.example.com"], "elsewhere": ["h2.example.com"]}}"#,
    )
    .await;
    let config = job.config.to_str().unwrap();
    // CMD notes the lock it runs under (nothing without one) and its arguments.
    let note = r#"echo "${SWITCHMAN_LOCK:-none} $*" >> "$JOB_DIR/ran""#;
    let mut expected = String::new();
    for (options, lock) in [
        (&["--lockn", "a"][..], Some("a")),
        (&["-lockname", "b"], Some("b")),
        (&["--LockName=c"], Some("c")),
        (&["+lockname=d", "--GR", "here"], Some("d")),
        (&["-LOCKN", "-e", "-g=here"], Some("-e")),
        (&["--nolock", "--lock", "--lockn", "f"], Some("f")),
        (&["--nolock"], None),
        (&["-No-Lock"], None),
        (&["--gr", "elsewhere", "--lockn", "skipped"], None),
    ] {
        let mut cmd = tokio::process::Command::new(switchman_bin());
        cmd.args(["--CONF", config])
            .args(options)
            .args(["sh", "-c", note, "sh", "--lockname", "x", "-v"])
            .env("JOB_DIR", job.dir.path())
            .env_remove("DEBUG");
        let (code, stderr) = run_command(cmd).await;
        assert_eq!(code, 0, "{options:?}: {stderr}");
        if options.contains(&"elsewhere") {
            continue;
        }
        let lock = lock.map_or("none".to_string(), |l| job.lock_path(l));
        expected.push_str(&format!("{lock} --lockname x -v\n"));
    }
    assert_eq!(job.read("ran"), expected);

    // An ambiguous prefix is a usage error naming what it could be, and runs nothing.
    let (code, stderr) = job.run(&["--lo", "x", "sh", "-c", note]).await;
    assert_eq!(code, 64, "{stderr}");
    assert!(
        stderr.contains("could be --lock, --lockname or --lockname-from-args"),
        "{stderr}"
    );
    assert_eq!(job.read("ran"), expected);
}
