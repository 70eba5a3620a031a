//! The fault suite (issue 5): switchman against a real three-node ZooKeeper ensemble on
//! loopback while servers restart, crash and lose quorum, while the network between switchman
//! and the servers is cut (both ways or one way), and while switchman itself is killed;
//! (issue 9, and issue 20 for an observer) while the one server switchman reaches is cut off
//! from its peers; and (issue 8) while switchman's connection is cut in the middle of each
//! step of a run, at the request that does it (a framed `Proxy` holds that request, or its
//! reply, and the test then cuts).
//!
//! Two promises are checked. No overlap: a CMD is dead before the servers can let anyone else
//! take its lock. No needless kill: a fault that heals in time leaves CMD alone. Both are
//! asserted as orders of events (a CMD's own records, a watch event from a client connected
//! straight to the ensemble, the kernel's view of a pid at that moment), never as durations.
//! Sleeps below are only the lengths of faults and of observation windows.
//!
//! Tests that break the ensemble start a private one; those that only cut switchman's own
//! connection (through a `Proxy`) share one per test binary; the issue 9 and 20 tests start a
//! `QuorumEnsemble`, whose servers reach one another only through proxies.

use switchman_test_support as support;

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use support::{
    Ensemble, HoldAt, Job, PATIENCE, Proxy, QuorumEnsemble, Records, SESSION_TIMEOUT, Trigger,
    argv, await_item, cmd_noting_signals, cmd_touching, env_or, finish, finish_ok, guard_cmd,
    is_dead, lock_argv, proc_stat, set_prefix_data, shared_ensemble3, until_go,
    until_go_maybe_stubborn, wait_for, wait_until, write_pid, zk,
};
use tokio::process::Child;
use zookeeper_client::{Acls, Client, CreateMode, EventType, OneshotWatcher};

/// The session timeout every job here asks for.
fn session() -> Duration {
    Duration::from_secs_f64(SESSION_TIMEOUT)
}

/// `--lockname LOCK --lease r=1:1 -- CMD...`
fn lease_args<'a>(lock: &'a str, cmd: &'a [String]) -> Vec<&'a str> {
    argv(&["--lockname", lock, "--lease", "r=1:1"], cmd)
}

/// Lists resource `r` in the job's prefix data, so that `--lease r=...` may be used.
async fn declare_resource_r(client: &Client, job: &Job) {
    set_prefix_data(client, &job.prefix, r#"{"resources": ["r"]}"#).await;
}

/// Starts switchman until its CMD runs (a run that finds the lock still held skips, exit 0):
/// returns the running switchman and CMD's pid, read from `pid_file`.
async fn spawn_until_running(job: &Job, args: &[&str], pid_file: &Path) -> (Child, i32) {
    for _ in 0..500 {
        let mut child = job.spawn(args);
        let running = wait_for("CMD runs or switchman ends", async || {
            if let Ok(text) = std::fs::read_to_string(pid_file)
                && let Ok(pid) = text.trim().parse()
            {
                return Some(Some(pid));
            }
            child.try_wait().unwrap().map(|_| None)
        })
        .await;
        if let Some(pid) = running {
            return (child, pid);
        }
        // Ended: a skip (the lock is still held) exits 0.
        let (code, stderr) = finish(child).await;
        if code != 0 {
            panic!("switchman failed: {:?}", (code, stderr));
        }
    }
    panic!("CMD never got the lock");
}

/// A watch on `path`, which must exist.
async fn watch_existing(client: &Client, path: &str) -> (i64, OneshotWatcher) {
    let (stat, watcher) = client.check_and_watch_stat(path).await.unwrap();
    (stat.expect("the lock node exists").czxid, watcher)
}

/// Waits for the watched node to be deleted by the servers; returns whether `pid` was already
/// dead when the deletion was reported (which is a little after the servers made it: the check
/// can only err towards passing by that much, a millisecond against a margin of 200 ms).
async fn dead_when_deleted(watcher: OneshotWatcher, pid: i32) -> bool {
    let event = watcher.changed().await;
    let dead = is_dead(pid);
    assert_eq!(event.event_type, EventType::NodeDeleted, "{event:?}");
    dead
}

/// What `cmd_noting_signals` (or a trap of a test's own) noted of the signals CMD `name` got.
fn signals(job: &Job, name: &str) -> String {
    job.read(&format!("{name}.signals"))
}

// ---------------------------------------------------------------------------------------
// 1, 2: the ensemble changes under a running CMD
// ---------------------------------------------------------------------------------------

/// The session timeout of the tests that make the ensemble elect a leader: the default.
///
/// The stop must begin after half the session timeout without an answer. In this harness, on a
/// loaded machine, a rolling restart can leave the ensemble without a leader for two seconds
/// and more (an election, then the client library's reconnect back-off of 0.3 s, 0.6 s, 1.2 s
/// ...), which a 2 s or even a 4 s session cannot ride out. What matters is that ratio, so these
/// tests use the session timeout that operators get.
const ELECTION_SESSION_TIMEOUT: f64 = 10.0;

fn election_session() -> Duration {
    Duration::from_secs_f64(ELECTION_SESSION_TIMEOUT)
}

/// Runs a holder on a fresh three-node ensemble, applies `fault` to the ensemble while CMD
/// runs, and asserts that CMD was left alone: alive after an observation window, the same lock
/// node (czxid) throughout, never signalled, and ending with its own code.
async fn assert_cmd_survives(what: &str, fault: impl FnOnce(&mut Ensemble)) {
    let mut ensemble = Ensemble::start(3);
    let job = Job::new(
        "survives",
        &ensemble.connect_string(),
        json!({"session_timeout": ELECTION_SESSION_TIMEOUT}),
    );
    let cmd = cmd_noting_signals("a");
    let a = job.spawn(&lock_argv("survive", &cmd));
    let pid = job.wait_for_pid("a.pid").await;
    let path = job.lock_path("survive");
    let czxid = {
        let client = zk(&ensemble.connect_string()).await;
        client.check_stat(&path).await.unwrap().unwrap().czxid
    };

    tokio::task::block_in_place(|| fault(&mut ensemble));
    ensemble.wait_for_leader(Duration::from_secs(30));
    // Observation window: a stop begins after half a session timeout without an answer, so
    // any stop that the fault had set off would have begun by the end of this.
    tokio::time::sleep(election_session() * 3 / 4).await;

    let client = zk(&ensemble.connect_string()).await;
    let stat = client.check_stat(&path).await.unwrap();
    let dead = is_dead(pid);
    job.go("a");
    let (code, stderr) = finish(a).await;
    assert!(!dead, "CMD died {what}: {stderr}");
    assert_eq!(
        stat.map(|s| s.czxid),
        Some(czxid),
        "the lock node was replaced"
    );
    assert_eq!(code, 0, "CMD ran to its own end: {stderr}");
    assert_eq!(signals(&job, "a"), "", "switchman signalled CMD: {stderr}");
}

/// Fault 1: every server restarted in turn, twice over, while CMD runs. Disconnects are not
/// losses: CMD runs to its own end, is never signalled, and the lock node is the same node
/// (same czxid) throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_leaves_cmd_alone() {
    assert_cmd_survives("during the rolling restart", |ensemble| {
        for _round in 0..2 {
            for i in 0..3 {
                ensemble.stop(i);
                ensemble.start_member(i); // returns once it serves again, in the quorum
            }
        }
    })
    .await;
}

/// Fault 2: the leader SIGKILLed while CMD runs; the other two elect a new one. CMD runs on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_crash_leaves_cmd_alone() {
    assert_cmd_survives("when the leader crashed", |ensemble| {
        let leader = ensemble.wait_for_leader(Duration::from_secs(30));
        ensemble.kill(leader);
        let new_leader = ensemble.wait_for_leader(Duration::from_secs(30));
        assert_ne!(new_leader, leader);
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// 3, 4, 9: switchman cut off from every server
// ---------------------------------------------------------------------------------------

/// Fault 3 (and 9 in the odd rounds): A holds the lock and is cut off, silently, from every
/// server; B, on the servers' side, tries the same lock again and again. In the odd rounds A's
/// CMD ignores SIGTERM and `termination_timeout` is far longer than the session, so only the
/// deadline's SIGKILL can stop it. Each B CMD checks from its own side, at its start, that no
/// other CMD of this lock is alive; the records must show no overlap and every hand-over.
#[tokio::test]
async fn cut_off_holder_is_dead_before_the_other_side_runs() {
    const ROUNDS: usize = 6;
    let ensemble = shared_ensemble3();
    let proxy = Proxy::start(&ensemble.client_ports());
    let a_job = Job::new(
        "cut-a",
        &proxy.connect_string(),
        json!({"termination_timeout": 30}),
    );
    let b_job = a_job.other_host(json!({"zkhosts": ensemble.connect_string()}));
    let records = a_job.file("records");
    let client = zk(&ensemble.connect_string()).await;
    let path = a_job.lock_path("contended");

    for round in 0..ROUNDS {
        let stubborn = round % 2 == 1;
        let a_name = format!("a{round}");
        let a_cmd = guard_cmd(
            &records,
            &a_name,
            1,
            &until_go_maybe_stubborn(&a_name, stubborn),
        );
        let (a, a_pid) = spawn_until_running(
            &a_job,
            &lock_argv("contended", &a_cmd),
            &a_job.file(&format!("{a_name}.pid")),
        )
        .await;
        let (_, watcher) = watch_existing(&client, &path).await;

        proxy.blackhole();
        let b_name = format!("b{round}");
        let b_cmd = guard_cmd(&records, &b_name, 1, "");
        let (b, _) = spawn_until_running(
            &b_job,
            &lock_argv("contended", &b_cmd),
            &b_job.file(&format!("{b_name}.pid")),
        )
        .await;
        assert!(
            dead_when_deleted(watcher, a_pid).await,
            "round {round}: A's CMD outlived its lock node"
        );
        finish_ok(b).await;
        proxy.heal();
        let (code, stderr) = finish(a).await;
        assert_eq!(code, 79, "round {round}: {stderr}");
        if stubborn {
            assert_eq!(signals(&a_job, &a_name), "TERM\n", "SIGTERM came first");
            assert!(stderr.contains("SIGKILL"), "{stderr}");
        }
    }

    let r = Records::read(&records);
    assert!(
        r.overlaps.is_empty(),
        "overlaps: {:?}\n{}",
        r.overlaps,
        r.text
    );
    let expected: Vec<String> = (0..ROUNDS)
        .flat_map(|k| [format!("a{k}"), format!("b{k}")])
        .collect();
    assert_eq!(r.started(), expected, "{}", r.text);
    // Every CMD but the stubborn (SIGKILLed) A's wrote its end.
    assert_eq!(r.ends, 2 * ROUNDS - ROUNDS / 2, "{}", r.text);
}

/// Fault 3 for a lease: A holds the only unit of resource `r` and is cut off; B waits in the
/// queue on the servers' side and gets the lease when A's session expires. A's CMD is dead by
/// then, as B's CMD checks from its own side.
#[tokio::test]
async fn cut_off_lease_holder_is_dead_before_the_waiter_gets_the_lease() {
    let ensemble = shared_ensemble3();
    let proxy = Proxy::start(&ensemble.client_ports());
    let a_job = Job::new("cut-lease", &proxy.connect_string(), json!({}));
    let b_job = a_job.other_host(json!({"zkhosts": ensemble.connect_string()}));
    let client = zk(&ensemble.connect_string()).await;
    declare_resource_r(&client, &a_job).await;
    let records = a_job.file("records");

    let a_cmd = guard_cmd(&records, "a", 1, &until_go("a"));
    let a = a_job.spawn(&lease_args("a", &a_cmd));
    let a_pid = a_job.wait_for_pid("a.pid").await;
    let leases = a_job.leases_path("r");
    let a_lease = client.list_children(&leases).await.unwrap();
    assert_eq!(a_lease.len(), 1, "{a_lease:?}");
    let (_, watcher) = watch_existing(&client, &format!("{leases}/{}", a_lease[0])).await;

    let b_cmd = guard_cmd(&records, "b", 1, "");
    let b = b_job.spawn(&lease_args("b", &b_cmd));
    proxy.blackhole();
    assert!(
        dead_when_deleted(watcher, a_pid).await,
        "A's CMD outlived its lease node"
    );
    let (code, stderr) = finish(b).await;
    assert_eq!(code, 0, "B waited for the lease and ran: {stderr}");
    proxy.heal();
    let (code, stderr) = finish(a).await;
    assert_eq!(code, 79, "{stderr}");
    let r = Records::read(&records);
    assert!(r.overlaps.is_empty(), "{}", r.text);
    assert_eq!(r.started(), ["a", "b"], "{}", r.text);
}

/// Fault 4: the same cut, healed well before the deadline, several times: CMD is left alone.
#[tokio::test]
async fn cut_healed_in_time_leaves_cmd_alone() {
    let ensemble = shared_ensemble3();
    let proxy = Proxy::start(&ensemble.client_ports());
    let job = Job::new("cut-heal", &proxy.connect_string(), json!({}));
    let cmd = cmd_noting_signals("a");
    let a = job.spawn(&lock_argv("blips", &cmd));
    let pid = job.wait_for_pid("a.pid").await;

    for _ in 0..3 {
        proxy.blackhole();
        tokio::time::sleep(session() / 5).await; // the fault
        proxy.heal();
        tokio::time::sleep(session() / 2).await; // the gap between faults
    }
    tokio::time::sleep(session()).await; // observation window
    let dead = is_dead(pid);
    job.go("a");
    let (code, stderr) = finish(a).await;
    assert!(!dead, "CMD died: {stderr}");
    assert_eq!(code, 0, "CMD ran to its own end: {stderr}");
    assert_eq!(signals(&job, "a"), "", "switchman signalled CMD: {stderr}");
}

/// Fault 9 alone, without a contender: CMD ignores SIGTERM, `termination_timeout` is 30 s, the
/// session 2 s. The deadline's SIGKILL lands before the servers drop the lock node.
#[tokio::test]
async fn cmd_ignoring_sigterm_is_killed_before_the_lock_node_goes() {
    let ensemble = shared_ensemble3();
    let proxy = Proxy::start(&ensemble.client_ports());
    let job = Job::new(
        "stubborn",
        &proxy.connect_string(),
        json!({"termination_timeout": 30}),
    );
    let client = zk(&ensemble.connect_string()).await;
    let script = format!(
        r#"trap 'echo TERM >> "$JOB_DIR/a.signals"' TERM
{}
while :; do sleep 0.05; done"#,
        write_pid("a")
    );
    let a = job.spawn(&["--lockname", "stubborn", "--", "sh", "-c", &script]);
    let pid = job.wait_for_pid("a.pid").await;
    let (_, watcher) = watch_existing(&client, &job.lock_path("stubborn")).await;

    proxy.blackhole();
    assert!(
        dead_when_deleted(watcher, pid).await,
        "CMD was alive when the servers deleted its lock node"
    );
    proxy.heal();
    let (code, stderr) = finish(a).await;
    assert_eq!(code, 79, "{stderr}");
    assert_eq!(signals(&job, "a"), "TERM\n", "SIGTERM came first");
    assert!(stderr.contains("SIGKILL"), "{stderr}");
}

/// The suspend guarantee, as near as a test can come to a suspend: switchman and CMD's whole
/// group are frozen (SIGSTOP) and cut off until the servers have expired the session and
/// dropped the lock node, then switchman alone is resumed. The deadline passed while it was
/// frozen, and no news of the expiry can reach it through the cut, so only its own timer can
/// act (the client library gives the session up by itself too, but only at 7/5 of the timeout:
/// the reason in the log tells which came first): it must SIGKILL CMD at once, and CMD, which
/// appends to a file while it runs, must not run another moment. (A real suspend also stops
/// CLOCK_MONOTONIC, which a frozen process does not; that part rests on the timer being on
/// CLOCK_BOOTTIME.)
#[tokio::test]
async fn frozen_past_the_deadline_cmd_is_killed_on_resume_without_running_again() {
    use nix::sys::signal::{Signal, kill, killpg};
    use nix::unistd::Pid;

    let ensemble = shared_ensemble3();
    let proxy = Proxy::start(&ensemble.client_ports());
    // Long enough that the library's own verdict comes well after the resume.
    let job = Job::new(
        "frozen",
        &proxy.connect_string(),
        json!({"termination_timeout": 30, "session_timeout": 5}),
    );
    let client = zk(&ensemble.connect_string()).await;
    let script = format!(
        r#"{}
while :; do echo tick >> "$JOB_DIR/a.ticks"; sleep 0.05; done"#,
        write_pid("a")
    );
    let a = job.spawn(&["--lockname", "frozen", "--", "sh", "-c", &script]);
    let pid = job.wait_for_pid("a.pid").await;
    let (_, watcher) = watch_existing(&client, &job.lock_path("frozen")).await;
    let ticks = || job.read("a.ticks").lines().count();
    wait_until("CMD ticks", || ticks() >= 2).await;

    let switchman = Pid::from_raw(a.id().unwrap() as i32);
    let stopped = |pid: i32| proc_stat(pid).is_some_and(|(state, _)| state == 'T');
    kill(switchman, Signal::SIGSTOP).unwrap();
    wait_until("switchman frozen", || stopped(switchman.as_raw())).await;
    killpg(Pid::from_raw(pid), Signal::SIGSTOP).unwrap();
    wait_until("CMD frozen", || stopped(pid)).await;
    let frozen_at = ticks();
    proxy.blackhole();

    let event = watcher.changed().await;
    assert_eq!(event.event_type, EventType::NodeDeleted, "{event:?}");
    assert_eq!(ticks(), frozen_at, "CMD ran while frozen");

    kill(switchman, Signal::SIGCONT).unwrap();
    wait_until("CMD dead", || is_dead(pid)).await;
    assert_eq!(ticks(), frozen_at, "CMD ran again after the resume");
    proxy.heal();
    let (code, stderr) = finish(a).await;
    assert_eq!(code, 79, "{stderr}");
    assert!(stderr.contains("no answer from ZooKeeper"), "{stderr}");
    assert!(stderr.contains("SIGKILL"), "{stderr}");
}

// ---------------------------------------------------------------------------------------
// 5: half cuts
// ---------------------------------------------------------------------------------------

/// Fault 5: one direction cut for longer than the session. With replies cut the servers still
/// hear us (and may keep the session); with requests cut they do not. Either way switchman
/// hears nothing and must treat it as a full cut: CMD dead before the servers drop the node.
#[tokio::test]
async fn half_cuts_stop_cmd_before_the_lock_node_goes() {
    let ensemble = shared_ensemble3();
    let client = zk(&ensemble.connect_string()).await;
    for replies in [true, false] {
        let proxy = Proxy::start(&ensemble.client_ports());
        let job = Job::new("half-cut", &proxy.connect_string(), json!({}));
        let cmd = guard_cmd(&job.file("records"), "a", 1, &until_go("a"));
        let a = job.spawn(&lock_argv("half", &cmd));
        let pid = job.wait_for_pid("a.pid").await;
        let (_, watcher) = watch_existing(&client, &job.lock_path("half")).await;

        if replies {
            proxy.block_replies();
        } else {
            proxy.block_requests();
        }
        assert!(
            dead_when_deleted(watcher, pid).await,
            "replies cut: {replies}: CMD was alive when the servers deleted its lock node"
        );
        let (code, stderr) = finish(a).await;
        assert_eq!(code, 79, "replies cut: {replies}: {stderr}");
        proxy.heal();
        let r = Records::read(&job.file("records"));
        assert_eq!((r.starts, r.ends), (1, 1), "SIGTERM ended CMD: {}", r.text);
    }
}

// ---------------------------------------------------------------------------------------
// 6: quorum lost
// ---------------------------------------------------------------------------------------

/// Fault 6: two of three servers stopped for longer than the session. No server can expire
/// anything without a quorum, but switchman cannot know when it will return: CMD must be
/// stopped (SIGTERM first) before quorum is back. Once it is, the session expires and nothing
/// of the job is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_loss_stops_cmd_and_leaves_nothing_behind() {
    let mut ensemble = Ensemble::start(3);
    let job = Job::new("quorum", &ensemble.connect_string(), json!({}));
    let cmd = guard_cmd(&job.file("records"), "a", 1, &until_go("a"));
    let a = job.spawn(&lock_argv("q", &cmd));
    let pid = job.wait_for_pid("a.pid").await;

    let leader = ensemble.wait_for_leader(Duration::from_secs(30));
    let other = (leader + 1) % 3;
    tokio::task::block_in_place(|| {
        ensemble.stop(leader);
        ensemble.stop(other);
    });
    tokio::time::sleep(session() * 3 / 2).await; // the fault
    assert!(is_dead(pid), "CMD still ran when quorum came back");
    tokio::task::block_in_place(|| {
        ensemble.start_member(leader);
        ensemble.start_member(other);
    });
    let (code, stderr) = finish(a).await;
    assert_eq!(code, 79, "{stderr}");
    assert!(stderr.contains("no answer from ZooKeeper"), "{stderr}");
    let r = Records::read(&job.file("records"));
    assert_eq!((r.starts, r.ends), (1, 1), "SIGTERM ended CMD: {}", r.text);

    let client = zk(&ensemble.connect_string()).await;
    let locks = job.locks_path();
    let lock = job.lock_path("q");
    if let (Some(_), watcher) = client.check_and_watch_stat(&lock).await.unwrap() {
        assert_eq!(watcher.changed().await.event_type, EventType::NodeDeleted);
    }
    assert_eq!(
        client.list_children(&locks).await.unwrap(),
        Vec::<String>::new()
    );
}

// ---------------------------------------------------------------------------------------
// 7: switchman SIGKILLed
// ---------------------------------------------------------------------------------------

/// Fault 7, while CMD runs: CMD, and what CMD started, die with switchman, before the servers
/// let the lock go.
#[tokio::test]
async fn sigkilled_switchman_takes_cmd_and_its_children_along() {
    let ensemble = shared_ensemble3();
    let job = Job::new("sigkill", &ensemble.connect_string(), json!({}));
    let client = zk(&ensemble.connect_string()).await;
    // A script that starts a worker of its own, as cron jobs do.
    let script = format!(
        r#"sleep 600 & echo $! > "$JOB_DIR/worker.pid"
{}
wait"#,
        write_pid("a")
    );
    let mut a = job.spawn(&["--lockname", "k", "--", "sh", "-c", &script]);
    let pid = job.wait_for_pid("a.pid").await;
    let worker = job.wait_for_pid("worker.pid").await;
    let (_, watcher) = watch_existing(&client, &job.lock_path("k")).await;

    a.kill().await.unwrap(); // SIGKILL
    let event = watcher.changed().await;
    let (cmd_dead, worker_dead) = (is_dead(pid), is_dead(worker));
    assert_eq!(event.event_type, EventType::NodeDeleted);
    assert!(cmd_dead, "CMD outlived its lock node");
    assert!(worker_dead, "CMD's child outlived the lock node");
}

/// Fault 7, while waiting in a queue for a lease: no CMD ever starts, and the queue item
/// vanishes when the session ends.
#[tokio::test]
async fn sigkilled_switchman_waiting_in_a_queue_leaves_nothing() {
    let ensemble = shared_ensemble3();
    let job = Job::new("sigkill-queue", &ensemble.connect_string(), json!({}));
    let client = zk(&ensemble.connect_string()).await;
    declare_resource_r(&client, &job).await;

    let holder_cmd = guard_cmd(&job.file("records"), "h", 1, &until_go("h"));
    let holder = job.spawn(&lease_args("h", &holder_cmd));
    job.wait_for_pid("h.pid").await;

    let waiter_cmd = guard_cmd(&job.file("records"), "w", 1, "");
    let mut waiter = job.spawn(&lease_args("w", &waiter_cmd));
    let item = await_item(&client, &job.queue_path("r"), "w").await;
    let (_, watcher) = watch_existing(&client, &item).await;
    waiter.kill().await.unwrap(); // SIGKILL
    assert_eq!(watcher.changed().await.event_type, EventType::NodeDeleted);
    assert!(!job.file("w.pid").exists(), "the waiter's CMD never starts");

    job.go("h");
    finish_ok(holder).await;
    for folder in [
        job.queue_path("r"),
        job.leases_path("r"),
        job.guard_path("r"),
        job.locks_path(),
    ] {
        assert_eq!(
            client.list_children(&folder).await.unwrap(),
            Vec::<String>::new(),
            "{folder}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 8: ZooKeeper not there at start
// ---------------------------------------------------------------------------------------

/// Fault 8, first half: every server unreachable (connections hang, as behind a firewall that
/// drops packets): exit 69 once `connect_timeout` is over, having run nothing and written
/// nothing. That it was switchman's own `connect_timeout` that ended the run, and not the
/// client library giving up, is in the message; a run that never gave up would fail
/// `finish`.
#[tokio::test]
async fn unreachable_zookeeper_exits_69_within_connect_timeout() {
    let ensemble = shared_ensemble3();
    let proxy = Proxy::start(&ensemble.client_ports());
    proxy.blackhole();
    let job = Job::new(
        "unreachable",
        &proxy.connect_string(),
        json!({"connect_timeout": 1.0}),
    );
    let touch = cmd_touching(&job.file("ran"));
    let (code, stderr) = finish(job.spawn(&lock_argv("x", &touch))).await;
    assert_eq!(code, 69, "{stderr}");
    assert!(stderr.contains("connect_timeout"), "{stderr}");
    assert!(!job.file("ran").exists());
    proxy.heal();
    let client = zk(&ensemble.connect_string()).await;
    assert_eq!(client.check_stat(&job.prefix).await.unwrap(), None);
}

/// Fault 8, second half: ZooKeeper comes up only after switchman was started. Here the
/// ensemble has lost two of its three servers, so the one left accepts connections but serves
/// nothing (as while an ensemble is still starting); switchman is started with a
/// `connect_timeout` of 20 s, longer than the outage, which lasts longer than the session
/// timeout too (the client library gives up a connection attempt after about a session
/// timeout, and switchman must keep trying until `connect_timeout`). When the second server is
/// back and a quorum serves again, switchman connects, takes the lock and runs CMD to its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_that_comes_up_late_is_waited_for() {
    let mut ensemble = Ensemble::start(3);
    tokio::task::block_in_place(|| {
        ensemble.stop(1);
        ensemble.stop(2);
    });
    let job = Job::new(
        "late",
        &ensemble.connect_string(),
        json!({"connect_timeout": 20}),
    );
    let cmd = cmd_noting_signals("a");
    let a = job.spawn(&lock_argv("late", &cmd));
    tokio::time::sleep(session() * 3 / 2).await; // the outage
    assert!(!job.file("a.pid").exists(), "CMD ran without ZooKeeper");
    tokio::task::block_in_place(|| ensemble.start_member(1));
    job.wait_for_pid("a.pid").await;
    tokio::time::sleep(session()).await; // observation window: CMD is not stopped
    job.go("a");
    let (code, stderr) = finish(a).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(signals(&job, "a"), "", "switchman signalled CMD: {stderr}");
}

// ---------------------------------------------------------------------------------------
// 10: a follower (issue 9) or an observer (issue 20) cut off from its peers
// ---------------------------------------------------------------------------------------

/// Rounds of each variant of `follower_isolation_never_overlaps`: the value of
/// SWITCHMAN_TEST_FOLLOWER_ROUNDS, 3 by default (a round takes a few seconds); raise it by hand
/// to measure.
fn follower_rounds() -> usize {
    env_or("SWITCHMAN_TEST_FOLLOWER_ROUNDS", 3)
}

/// Runs `job` again and again, 100 ms after each run ends, until its CMD has started (its pid
/// file exists): every run must end with 0, having run CMD or skipped because the lock was held.
async fn retry_until_ran(job: &Job, args: &[&str], pid_file: &Path) {
    for run in 1..=600 {
        let (code, stderr) = job.run(args).await;
        assert_eq!(code, 0, "the contender's run {run} failed: {stderr}");
        if pid_file.exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the contender never ran its CMD");
}

/// Issue 9: A reaches ZooKeeper through one follower, F, only. F is then cut off from both of
/// its peers (quorum and election links, both ways), silently, while A's connection to F stays
/// up. The leader hears no more of A's session and expires it a session timeout later, so the
/// lock node goes; the contender B, connected to the other two servers and retrying every
/// 100 ms, takes the lock and runs its CMD. F meanwhile answers A's reads from its own copy of
/// the data until its sync window (syncLimit × tickTime, here as long as the session timeout)
/// is over and it gives up on its leader: an answer from F alone says nothing about the session.
/// A's CMD must be dead before B's starts, as B's CMD checks from its own side.
///
/// Two variants, taking turns: A's CMD obeys SIGTERM, or ignores it (with a
/// `termination_timeout` far longer than the session, so that only the deadline's SIGKILL can
/// stop it). Every round heals the links and waits for the ensemble to be whole again; F is a
/// different follower from round to round when it can be.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_isolation_never_overlaps() {
    let rounds = follower_rounds();
    let q = tokio::task::block_in_place(|| QuorumEnsemble::start(session()));
    assert_eq!(q.sync_window(), session());
    // The prefix and the records file of every CMD; A and B are other hosts of it, new
    // ones every round.
    let base = Job::new("isolated", &q.connect_string(), json!({}));
    let records = base.file("records");
    let mut overlapped: [Vec<usize>; 2] = [Vec::new(), Vec::new()];

    for round in 0..2 * rounds {
        let stubborn = round % 2 == 1;
        let f =
            tokio::task::block_in_place(|| q.follower_from(round)).expect("a member is a follower");
        let majority: Vec<String> = (0..q.member_count())
            .filter(|&i| i != f)
            .map(|i| format!("127.0.0.1:{}", q.client_port(i)))
            .collect();
        let a_job = base.other_host(json!({
            "zkhosts": format!("127.0.0.1:{}", q.client_port(f)),
            "termination_timeout": if stubborn { 30 } else { 1 },
        }));
        let b_job = base.other_host(json!({"zkhosts": majority.join(",")}));

        let a_name = format!("a{round}");
        let a_cmd = guard_cmd(
            &records,
            &a_name,
            1,
            &until_go_maybe_stubborn(&a_name, stubborn),
        );
        let (a, a_pid) = spawn_until_running(
            &a_job,
            &lock_argv("job", &a_cmd),
            &a_job.file(&format!("{a_name}.pid")),
        )
        .await;

        q.isolate(f);
        finish_isolation_round(
            &q,
            &records,
            (round, stubborn),
            (a, a_pid, &a_job, &a_name),
            &b_job,
            &mut overlapped,
        )
        .await;
    }

    assert_no_isolation_overlap(&records, rounds, &overlapped);
}

/// Rounds of each variant of `observer_isolation_never_overlaps`: the value of
/// SWITCHMAN_TEST_OBSERVER_ROUNDS, 2 by default (a round takes a few seconds, and the
/// follower test above already runs the same fault through the same code in switchman); raise
/// it by hand to measure.
fn observer_rounds() -> usize {
    env_or("SWITCHMAN_TEST_OBSERVER_ROUNDS", 2)
}

/// Issue 20: the fault of `follower_isolation_never_overlaps` with an observer in the
/// follower's place. Observers are how a large fleet spreads its client connections, so A
/// reaches ZooKeeper through an observer O only, on an ensemble of three voters and O. O is
/// then cut off from all three voters (quorum and election links, both ways), silently, while
/// A's connection to O stays up; B, connected to the voters, retries every 100 ms until its
/// CMD runs. The leader touches A's session only from O's replies to its pings, so it expires
/// it a session timeout after the cut, and B takes the lock; A's CMD must be dead before B's
/// starts, as B's CMD checks from its own side.
///
/// That the cut makes the hazard and not some milder fault is checked every round: after the
/// majority has changed a node, O still answers a read of it, with what it held before the
/// cut. An observer, like a follower, serves from its own copy until its sync window is over,
/// so an answer from O says nothing about the leader.
///
/// The same two variants, taking turns: A's CMD obeys SIGTERM, or ignores it. Every round
/// heals the links and waits for the ensemble, O included, to be whole again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observer_isolation_never_overlaps() {
    let (q, synced) = tokio::task::block_in_place(|| {
        let q = QuorumEnsemble::start_with_observers(session(), 1);
        let synced = q.mntr(q.leader().expect("a leader"))["zk_synced_observers"].clone();
        (q, synced)
    });
    assert_eq!(synced, "1", "O follows the leader");
    observer_isolation_rounds(&q, "observer-cut").await;
}

/// `observer_isolation_never_overlaps` with O following a follower F instead of the leader
/// (`observerMasterPort`, ZooKeeper 3.6+): O's ping replies reach F's `ObserverMaster`, and
/// the leader hears of A's session only from F's own ping replies, one relay later; A's
/// syncs go O → F → leader and their answers come back the same way. O is cut off from
/// everyone, F included, as before.
///
/// It passing shows that today's margins cover the extra relay at this harness's timing. It
/// cannot show that the three-beat proof covers two relays, which it does not: F may take in
/// O's touch of A's session just before it forwards a beat, and pass the touch on to the
/// leader only in a ping reply after that beat's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observer_of_a_follower_isolation_never_overlaps() {
    let (q, f_mode, synced) = tokio::task::block_in_place(|| {
        let q = QuorumEnsemble::start_observing_a_follower(session());
        let (leader, f) = (q.leader().expect("a leader"), q.observer_master().unwrap());
        let synced = [f, leader].map(|i| q.mntr(i)["zk_synced_observers"].clone());
        let f_mode = q.mode(f);
        (q, f_mode, synced)
    });
    assert_eq!(f_mode.as_deref(), Some("follower"));
    assert_eq!(synced, ["1", "0"], "O follows F, not the leader");
    observer_isolation_rounds(&q, "observer-of-follower-cut").await;
}

/// The rounds of the two observer tests above, on `q`, whose observer (the only one) A uses.
async fn observer_isolation_rounds(q: &QuorumEnsemble, name: &str) {
    let rounds = observer_rounds();
    assert_eq!(q.sync_window(), session());
    let o = q.observers().next().expect("an observer");
    let on_o = format!("127.0.0.1:{}", q.client_port(o));
    let voters: Vec<String> = q
        .voters()
        .map(|i| format!("127.0.0.1:{}", q.client_port(i)))
        .collect();
    let base = Job::new(name, &q.connect_string(), json!({}));
    let records = base.file("records");
    let on_voters = zk(&voters.join(",")).await;
    // Beside the prefix, not in it: switchman's own folders are all it should hold.
    let marker = format!("{}-marker", base.prefix);
    let folder = CreateMode::Persistent.with_acls(Acls::anyone_all());
    on_voters.mkdir(&marker, &folder).await.unwrap();
    let mut overlapped: [Vec<usize>; 2] = [Vec::new(), Vec::new()];

    for round in 0..2 * rounds {
        let stubborn = round % 2 == 1;
        let a_job = base.other_host(json!({
            "zkhosts": on_o,
            "termination_timeout": if stubborn { 30 } else { 1 },
        }));
        let b_job = base.other_host(json!({"zkhosts": voters.join(",")}));
        // Opened while O has its leader: O cannot make a session once cut off. Written
        // through O, so that O holds the value before the cut.
        let through_o = zk(&on_o).await;
        let before = format!("round {round}, before the cut");
        through_o
            .set_data(&marker, before.as_bytes(), None)
            .await
            .unwrap();

        let a_name = format!("a{round}");
        let a_cmd = guard_cmd(
            &records,
            &a_name,
            1,
            &until_go_maybe_stubborn(&a_name, stubborn),
        );
        let (a, a_pid) = spawn_until_running(
            &a_job,
            &lock_argv("job", &a_cmd),
            &a_job.file(&format!("{a_name}.pid")),
        )
        .await;

        q.isolate(o);
        on_voters
            .set_data(&marker, format!("round {round}, cut").as_bytes(), None)
            .await
            .unwrap();
        let (seen, _) = through_o
            .get_data(&marker)
            .await
            .unwrap_or_else(|e| panic!("round {round}: O answers no read once cut off: {e}"));
        assert_eq!(
            String::from_utf8_lossy(&seen),
            before,
            "round {round}: O, cut off, answered with what the majority wrote after the cut"
        );
        drop(through_o);

        finish_isolation_round(
            q,
            &records,
            (round, stubborn),
            (a, a_pid, &a_job, &a_name),
            &b_job,
            &mut overlapped,
        )
        .await;
    }

    assert_no_isolation_overlap(&records, rounds, &overlapped);
}

/// The rest of an isolation round once A's server is cut off: B, on the majority, tries the
/// lock until its CMD runs; A's CMD must be stopped (exit 79; a stubborn one by SIGKILL after
/// SIGTERM, an obedient one by its SIGTERM); then the links heal and the ensemble is whole
/// again. A round whose B found A's CMD alive is noted in `overlapped`, by variant.
async fn finish_isolation_round(
    q: &QuorumEnsemble,
    records: &Path,
    (round, stubborn): (usize, bool),
    (a, a_pid, a_job, a_name): (Child, i32, &Job, &str),
    b_job: &Job,
    overlapped: &mut [Vec<usize>; 2],
) {
    let b_name = format!("b{round}");
    let b_cmd = guard_cmd(records, &b_name, 1, "");
    retry_until_ran(
        b_job,
        &lock_argv("job", &b_cmd),
        &b_job.file(&format!("{b_name}.pid")),
    )
    .await;
    // Whatever B found, A's CMD must be stopped in the end (not merely left behind).
    wait_until("A's CMD is stopped", || is_dead(a_pid)).await;
    if Records::read(records)
        .overlaps
        .iter()
        .any(|l| l.starts_with(&format!("start {b_name} ")))
    {
        overlapped[usize::from(stubborn)].push(round);
    }

    q.heal_links();
    let (code, stderr) = finish(a).await;
    assert_eq!(code, 79, "round {round}: {stderr}");
    if stubborn {
        assert_eq!(signals(a_job, a_name), "TERM\n", "SIGTERM came first");
        assert!(stderr.contains("SIGKILL"), "round {round}: {stderr}");
    } else {
        let ended = Records::read(records)
            .text
            .lines()
            .any(|l| l.starts_with(&format!("end {a_name} ")));
        assert!(ended, "round {round}: SIGTERM ended A's CMD: {stderr}");
    }
    tokio::task::block_in_place(|| q.wait_whole(Duration::from_secs(30)))
        .unwrap_or_else(|e| panic!("round {round}: {e}"));
    let around = q.connections_around_links();
    assert!(around.is_empty(), "links bypassed: {around:?}");
}

/// The isolation tests' verdict: no B started while A's CMD ran, and every CMD started in
/// turn, A then B, round after round.
fn assert_no_isolation_overlap(records: &Path, rounds: usize, overlapped: &[Vec<usize>; 2]) {
    let r = Records::read(records);
    assert!(
        r.overlaps.is_empty(),
        "A's CMD still ran when B's started in {} of {rounds} rounds where it obeys SIGTERM \
         (rounds {:?}) and in {} of {rounds} where it ignores it (rounds {:?}):\n{}",
        overlapped[0].len(),
        overlapped[0],
        overlapped[1].len(),
        overlapped[1],
        r.text
    );
    let expected: Vec<String> = (0..2 * rounds)
        .flat_map(|k| [format!("a{k}"), format!("b{k}")])
        .collect();
    assert_eq!(r.started(), expected, "{}", r.text);
}

/// Rounds of `isolated_waiter_never_takes_what_the_majority_gave_away`: the value of
/// SWITCHMAN_TEST_ISOLATED_WAITER_ROUNDS, 3 by default (one of each kind of wait; a round
/// takes a few seconds); raise it by hand to measure.
fn isolated_waiter_rounds() -> usize {
    env_or("SWITCHMAN_TEST_ISOLATED_WAITER_ROUNDS", 3)
}

/// Where the waiter W waits when its follower is cut off, by round, in turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    /// First in the queue, for room in the semaphore (A holds the only unit); B is another
    /// task, queued behind W. A ends normally.
    Semaphore,
    /// In the queue, behind Q, who waits for room; B queues behind W. A is SIGKILLed, so the
    /// majority hands the lease to Q when A's session expires, and to B after Q.
    Queue,
    /// For room in the semaphore, as the task `job` whose lock B (the same task) takes: B,
    /// retried, skips while W's item is queued, then takes the lease and the lock.
    Lock,
}

/// Issue 9, item 4: a run W waits for a lease, connected only to follower F, when F is cut off
/// from both peers. The majority goes on without it: the holder A (connected to the other two
/// servers) goes, the leader expires W's session a session timeout after it last heard of it
/// (which deletes W's queue item), and the lease (and in the `Lock` rounds the lock of W's
/// task) goes to B, also on the majority's side. F answers W from its frozen copy of the data
/// until its sync window is over, and cannot forward a write.
///
/// What is correct, from docs/safety.md: W's session has expired on the leader before B gets
/// anything (B waits behind W's queue item, or skips while it is there), and a run whose
/// session ended while it waited exits 69, "ZooKeeper unavailable" (a waiter never starts CMD
/// on a stale proof either, "A run that waited in a queue does not start CMD if acked went
/// stale while it waited ... it exits 69 instead"). So W must exit 69 without ever starting
/// CMD (79 would mean it started one), B must run, and no two CMDs of the lease may overlap,
/// as each CMD checks from its own side when it starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_waiter_never_takes_what_the_majority_gave_away() {
    let rounds = isolated_waiter_rounds();
    let q = tokio::task::block_in_place(|| QuorumEnsemble::start(session()));
    let base = Job::new("isolated-waiter", &q.connect_string(), json!({}));
    declare_resource_r(&zk(&q.connect_string()).await, &base).await;
    let records = base.file("records");
    let queue = base.queue_path("r");
    let mut expected: Vec<String> = Vec::new();

    for round in 0..rounds {
        let wait = [Wait::Semaphore, Wait::Queue, Wait::Lock][round % 3];
        let f =
            tokio::task::block_in_place(|| q.follower_from(round)).expect("a member is a follower");
        let majority: Vec<String> = (0..q.member_count())
            .filter(|&i| i != f)
            .map(|i| format!("127.0.0.1:{}", q.client_port(i)))
            .collect();
        let on_f = base.other_host(json!({"zkhosts": format!("127.0.0.1:{}", q.client_port(f))}));
        let on_majority = base.other_host(json!({"zkhosts": majority.join(",")}));
        // The test's own view, from the majority's side (a session on F would not outlive
        // the cut).
        let client = zk(&majority.join(",")).await;
        let [a_name, q_name, w_name, b_name] = ["a", "q", "w", "b"].map(|n| format!("{n}{round}"));
        let task = |name: &str| match wait {
            Wait::Lock if name.starts_with(['w', 'b']) => "job".to_string(),
            _ => name.to_string(),
        };
        let lease_run = |job: &Job, name: &str, body: &str| {
            let cmd = guard_cmd(&records, name, 1, body);
            job.spawn(&lease_args(&task(name), &cmd))
        };
        let waiting = async |child: &Child, needle: &str| {
            let pid = format!("[{}]", child.id().unwrap());
            base.wait_for_log(1, &[&pid, needle]).await;
        };

        let mut a = lease_run(&on_majority, &a_name, &until_go(&a_name));
        on_majority.wait_for_pid(&format!("{a_name}.pid")).await;
        expected.push(a_name.clone());
        let q_run = if wait == Wait::Queue {
            let q_run = lease_run(&on_majority, &q_name, "");
            waiting(&q_run, "waiting for a lease to go").await;
            expected.push(q_name.clone());
            Some(q_run)
        } else {
            None
        };
        let w = lease_run(&on_f, &w_name, "");
        let w_item = await_item(&client, &queue, &task(&w_name)).await;
        match wait {
            Wait::Queue => waiting(&w, "waiting behind").await,
            _ => waiting(&w, "waiting for a lease to go").await,
        }

        q.isolate(f);
        // Set on the majority's side: fires when the leader expires W's session.
        let (_, w_item_gone) = watch_existing(&client, &w_item).await;
        match wait {
            Wait::Queue => a.kill().await.unwrap(), // SIGKILL: A's session expires
            _ => on_majority.go(&a_name),
        }
        let b_cmd = guard_cmd(&records, &b_name, 1, "");
        if wait == Wait::Lock {
            // Each run before W's item goes skips: the task is already queued.
            let b_pid = on_majority.file(&format!("{b_name}.pid"));
            retry_until_ran(&on_majority, &lease_args("job", &b_cmd), &b_pid).await;
        } else {
            // Queued behind W (and Q).
            finish_ok(on_majority.spawn(&lease_args(&b_name, &b_cmd))).await;
        }
        let event = w_item_gone.changed().await;
        assert_eq!(event.event_type, EventType::NodeDeleted, "round {round}");
        expected.push(b_name.clone());
        if let Some(q_run) = q_run {
            finish_ok(q_run).await;
        }
        let (code, stderr) = finish(a).await;
        match wait {
            Wait::Queue => assert_eq!(code, -1, "round {round}: A was SIGKILLed: {stderr}"),
            _ => assert_eq!(code, 0, "round {round}: {stderr}"),
        }

        q.heal_links();
        let (code, stderr) = finish(w).await;
        assert_eq!(code, 69, "round {round} ({wait:?}): W: {stderr}");
        assert!(
            stderr.contains("ZooKeeper unavailable"),
            "round {round} ({wait:?}): W: {stderr}"
        );
        tokio::task::block_in_place(|| q.wait_whole(Duration::from_secs(30)))
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let around = q.connections_around_links();
        assert!(around.is_empty(), "links bypassed: {around:?}");
    }

    let r = Records::read(&records);
    assert!(
        r.overlaps.is_empty(),
        "overlaps: {:?}\n{}",
        r.overlaps,
        r.text
    );
    // No W ever started, and every A, Q and B did, in that order.
    assert_eq!(r.started(), expected, "{}", r.text);
}

// ---------------------------------------------------------------------------------------
// 11: a connection cut in the middle of each step of a run (issue 8)
// ---------------------------------------------------------------------------------------

/// The client library's request opcodes (`zookeeper_client`'s `OpCode`; the frames of a run
/// were logged once with `Proxy::frames` to see which ones it sends).
mod op {
    /// Not an opcode on the wire: the connect request, a connection's first frame, has no
    /// header. (ZooKeeper's servers call it `createSession`, -10.)
    pub const CONNECT: i32 = -10;
    pub const GET_DATA: i32 = 4;
    /// `getChildren`
    pub const LIST: i32 = 8;
    /// A transaction of writes, named by its first operation's path.
    pub const MULTI: i32 = 14;
    /// `create2`
    pub const CREATE: i32 = 15;
    /// A read of several nodes at once, named by its first operation's path.
    pub const MULTI_READ: i32 = 22;
}

/// A step of a run that talks to ZooKeeper, as the request that does it: a name, the opcode,
/// a part of the path after the prefix, and which of the run's requests matching both it is.
type Step = (&'static str, i32, &'static str, usize);

/// The requests of a run with [`STEP_ARGS`] on a prefix whose folders exist, in the order it
/// makes them until CMD starts (leaving out the heartbeat's syncs), as logged once: the
/// connect request, `getData` of the prefix (with a watch), one read of the lock and the
/// queue, one transaction making the queue item, one read listing the queue, one transaction
/// making the guard node (the queue shows us first), one read listing the guard's queue and
/// the leases, one transaction making the lease, deleting the guard node and the queue item
/// and creating the lock, and `getData` of the lock with a watch.
const STEPS: [Step; 9] = [
    ("connect (step 2)", op::CONNECT, "", 1),
    ("prefix data read (--group)", op::GET_DATA, "", 1),
    ("lock and queues read", op::MULTI_READ, "/locks/L", 1),
    ("queue join", op::MULTI, "/queues/r/L-", 1),
    ("queue listing", op::MULTI_READ, "/queues/r", 1),
    ("guard join", op::MULTI, "/semaphores/r/lock/acquire-", 1),
    (
        "guard and leases read",
        op::MULTI_READ,
        "/semaphores/r/lock",
        1,
    ),
    (
        "lease and lock create",
        op::MULTI,
        "/semaphores/r/leases/",
        1,
    ),
    ("lock watch", op::GET_DATA, "/locks/L", 1),
];

/// The requests of a plain run ([`PLAIN_ARGS`]) until CMD starts: the connect request,
/// `create2` of the lock and, in the same write, `getData` of it with a watch.
const PLAIN_STEPS: [Step; 3] = [
    ("connect (step 2)", op::CONNECT, "", 1),
    ("lock create", op::CREATE, "/locks/L", 1),
    ("lock watch", op::GET_DATA, "/locks/L", 1),
];

/// A plain run: the lock only.
const PLAIN_ARGS: [&str; 2] = ["--lockname", "L"];

/// The step of [`STEPS`] called `name`.
fn step(name: &str) -> Step {
    *STEPS.iter().find(|s| s.0 == name).expect("a step of STEPS")
}

/// The options of every run of the issue 8 tests: every step of a run that talks to
/// ZooKeeper.
const STEP_ARGS: [&str; 6] = ["--group", "g", "--lockname", "L", "--lease", "r=1:1"];

/// How a test ends the stall of the connection it froze.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cut {
    /// The proxy closes the connection at once: the client library fails what was in flight
    /// with a connection loss and reconnects.
    Reset,
    /// Nothing more passes on the connection until the client library gives up on it by
    /// itself ("no response from connection in 800ms", with a 2 s session) and reconnects over
    /// a new one; only then is the old one closed.
    Stall,
}

/// A prefix prepared for [`STEP_ARGS`] (groups, resources, and the folders a first run makes,
/// as on any prefix in use), the shared single-server ensemble, and a client of the test's.
async fn step_prefix(name: &str) -> (Job, Client) {
    let ensemble = support::shared_ensemble();
    let client = zk(&ensemble.connect_string()).await;
    let base = Job::new(
        name,
        &ensemble.connect_string(),
        json!({"fqdn": "w.example.com"}),
    );
    set_prefix_data(
        &client,
        &base.prefix,
        r#"{"groups": {"g": ["w.example.com"]}, "resources": ["r"]}"#,
    )
    .await;
    let touch = cmd_touching(&base.file("warm"));
    let (code, stderr) = base.run(&argv(&STEP_ARGS, &touch)).await;
    assert_eq!(code, 0, "{stderr}");
    (base, client)
}

/// The nodes under the job's lock, queue, semaphore guard and leases folders, with the
/// session owning each.
async fn run_nodes(client: &Client, job: &Job) -> Vec<(String, i64)> {
    let mut found = Vec::new();
    for folder in [
        job.locks_path(),
        job.queue_path("r"),
        job.guard_path("r"),
        job.leases_path("r"),
    ] {
        for child in support::children(client, &folder).await {
            let path = format!("{folder}/{child}");
            if let Some(stat) = client.check_stat(&path).await.unwrap() {
                found.push((path, stat.ephemeral_owner));
            }
        }
    }
    found
}

/// Two nodes in one folder owned by one session: a create made twice. (No run of these tests
/// ever needs two.)
fn duplicate(nodes: &[(String, i64)]) -> Option<(&str, &str)> {
    let folder = |p: &str| p.rsplit_once('/').map(|(f, _)| f.to_string());
    nodes.iter().enumerate().find_map(|(k, (a, owner))| {
        nodes[k + 1..]
            .iter()
            .find(|(b, o)| o == owner && folder(a) == folder(b))
            .map(|(b, _)| (a.as_str(), b.as_str()))
    })
}

/// How far a run got.
enum Progress {
    Running,
    Ended,
    /// It made a create twice (see [`duplicate`]) and has not run CMD (yet).
    Duplicated(String),
}

/// One run with `args` ([`STEP_ARGS`] or [`PLAIN_ARGS`]) on `base`'s prefix through a framed proxy:
/// each trigger of `cuts` in turn is armed, and once the proxy holds what it fired on, that
/// connection is cut as `cut` says. Returns what went wrong, if anything: the run must run CMD,
/// exit 0, hold exactly its lock (and with `--lease`, one lease) while CMD runs (a create whose
/// reply was lost must not be made twice; queue item and guard node are gone by then), leave no
/// node behind, and must have gone on over a new connection.
async fn run_with_cuts(
    base: &Job,
    client: &Client,
    args: &[&str],
    cuts: &[Trigger],
    cut: Cut,
) -> Option<String> {
    let proxy = Proxy::start_framed(&support::shared_ensemble().client_ports());
    let job = base.other_host(json!({"zkhosts": proxy.connect_string()}));
    let cmd = cmd_noting_signals("a");
    // The first trigger is armed before the run starts: a plain run connects and makes its
    // first requests sooner than a test thread gets to arm it.
    if let Some(first) = cuts.first() {
        proxy.hold_at(first.clone());
    }
    let mut a = job.spawn(&argv(args, &cmd));
    let pid = format!("[{}]", a.id().unwrap());
    let mut held = Vec::new();
    // The proxy's number for the connection last cut.
    let mut cut_conn = 0;
    for (k, trigger) in cuts.iter().enumerate() {
        if k > 0 {
            proxy.hold_at(trigger.clone());
        }
        // Not the wait's own timeout: a run that never makes the request is a failure to
        // report with what the proxy saw.
        let give_up = tokio::time::Instant::now() + PATIENCE / 2;
        let frame = wait_for("the proxy holds, or switchman ends", async || {
            // Held; or, on a loaded machine, the server was slow to answer the request
            // whose reply is to be held and the client library gave up on the connection
            // first, which is a cut too (a stall).
            if let Some(frame) = proxy.held().or_else(|| proxy.abandoned()) {
                return Some(Some(frame));
            }
            let ended = a.try_wait().unwrap().is_some();
            if ended || job.file("a.pid").exists() || tokio::time::Instant::now() > give_up {
                return Some(None);
            }
            None
        })
        .await;
        let Some(frame) = frame else {
            break; // the run ended, ran CMD or hangs without making the request: reported below
        };
        if cut == Cut::Stall {
            // A connection the proxy has not closed is given up only by the client
            // library's own timeout.
            wait_until("the client library connects again", || {
                proxy.abandoned().is_some()
            })
            .await;
        }
        proxy.reset_held();
        cut_conn = frame.conn;
        held.push(frame.to_string());
    }
    let progress = if held.len() < cuts.len() {
        Progress::Ended
    } else {
        wait_for("CMD runs or switchman ends", async || {
            if job.file("a.pid").exists() {
                return Some(Progress::Running);
            }
            if a.try_wait().unwrap().is_some() {
                return Some(Progress::Ended);
            }
            duplicate(&run_nodes(client, &job).await)
                .map(|(x, y)| Progress::Duplicated(format!("{x} and {y}")))
        })
        .await
    };
    let during = match progress {
        Progress::Running => run_nodes(client, &job).await,
        _ => Vec::new(),
    };
    job.go("a");
    let (code, stderr) = match progress {
        _ if held.len() < cuts.len() && a.try_wait().unwrap().is_none() => {
            a.kill().await.unwrap();
            (-1, "(killed: it never made the request)".to_string())
        }
        Progress::Duplicated(_) => {
            a.kill().await.unwrap();
            (-1, String::new())
        }
        _ => finish(a).await,
    };
    let after = run_nodes(client, &job).await;

    let lease = format!("{}/", job.leases_path("r"));
    let leased = args.contains(&"--lease");
    let lock = job.lock_path("L");
    let owner = during.iter().find(|(p, _)| *p == lock).map(|(_, o)| *o);
    let problem = match progress {
        Progress::Duplicated(nodes) => Some(format!(
            "one session made a create twice and is stuck: {nodes}"
        )),
        _ if held.len() < cuts.len() => Some(format!(
            "the run never made the request (exit {code}: {stderr}); the proxy saw:\n  {}",
            proxy
                .frames()
                .iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .join("\n  ")
        )),
        Progress::Ended => Some(format!("exit {code} without running CMD: {stderr}")),
        Progress::Running if code != 0 => Some(format!("exit {code}: {stderr}")),
        Progress::Running
            if !(during.len() == 1 + usize::from(leased)
                && during.iter().all(|(_, o)| Some(*o) == owner)
                && (!leased || during.iter().any(|(p, _)| p.starts_with(&lease)))) =>
        {
            Some(format!("nodes while CMD ran: {during:?}"))
        }
        _ if !after.is_empty() => Some(format!("left behind: {after:?}")),
        _ if !signals(&job, "a").is_empty() => {
            Some(format!("CMD was signalled: {:?}", signals(&job, "a")))
        }
        _ if !proxy
            .frames()
            .iter()
            .any(|f| f.index == 1 && f.conn > cut_conn) =>
        {
            Some("it never connected again after the cut".to_string())
        }
        _ => None,
    };
    if !after.is_empty() {
        // What a killed run left goes when its session expires; the next run needs it gone.
        wait_for("the nodes left behind go", async || {
            run_nodes(client, &job).await.is_empty().then_some(())
        })
        .await;
    }
    problem.map(|p| {
        // The run's lines of the log every job of `base` shares.
        let log: String = base
            .read("switchman.log")
            .lines()
            .filter(|l| l.contains(&pid))
            .map(|l| format!("  {l}\n"))
            .collect();
        format!("{p}\n  held: {held:?}\n{log}")
    })
}

/// The trigger for `step` on `job`'s prefix, holding at `at`.
fn step_trigger(job: &Job, (_, op, path, occurrence): Step, at: HoldAt) -> Trigger {
    let trigger = match op {
        op::CONNECT => Trigger::nth_frame(1),
        op => Trigger::op(op).path_containing(&format!("{}{path}", job.prefix)),
    };
    trigger.occurrence(occurrence).holding(at)
}

/// Issue 8: for each step of a run that talks to ZooKeeper, and for both places a cut can
/// fall (before the server sees the request, or after it has handled it and before its answer
/// is back), the step's request is held by the proxy and its connection cut as `cut` says,
/// well within the session. The run must carry on on the same session as if nothing had
/// happened (see [`run_with_cuts`]).
async fn cut_during_each_step(cut: Cut) {
    let (base, client) = step_prefix("step-cut").await;
    let mut failures = Vec::new();
    let runs: [(&[&str], &[Step]); 2] = [(&STEP_ARGS, &STEPS), (&PLAIN_ARGS, &PLAIN_STEPS)];
    for (args, steps) in runs {
        for at in [HoldAt::Request, HoldAt::Reply] {
            for &step in steps {
                let trigger = step_trigger(&base, step, at);
                if let Some(problem) = run_with_cuts(&base, &client, args, &[trigger], cut).await {
                    failures.push(format!(
                        "{cut:?} at the {at:?} of the {} ({args:?}): {problem}",
                        step.0
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cuts failed:\n{}",
        failures.len(),
        2 * (STEPS.len() + PLAIN_STEPS.len()),
        failures.join("\n")
    );
}

/// Issue 8, cut by a reset: each step's request held, then its connection closed at once.
#[tokio::test]
async fn reset_during_each_step_is_retried_and_the_run_goes_on() {
    cut_during_each_step(Cut::Reset).await;
}

/// Issue 8, cut by a stall: each step's request held, and nothing more passes on its
/// connection until the client library's own timeout gives up on it and reconnects (a fifth
/// of the session timeout after its last answer), well within the session.
///
/// A race once: the library gave up on a stalled connection at 0.4 T, switchman began its stop
/// (or refused to start CMD) at about the same moment, and the heartbeat's new proof came a
/// few beats after the reconnect. Now the library gives up at T/5, the first answer after a
/// lost beat is followed by another at once, and step 9 waits for a fresh proof.
#[tokio::test]
async fn stall_during_each_step_is_retried_and_the_run_goes_on() {
    cut_during_each_step(Cut::Stall).await;
}

/// Issue 8, the transactions that make sequential nodes (queue item, guard node, lease): the
/// reply of the transaction is lost (its nodes exist), and the connection is cut again while
/// the run looks for the nodes its session owns. The run must find its node in the end, not
/// make a second one:
/// a second node would leave the run waiting behind its own queue item or guard node (the
/// guard blocking every other run of the resource too), or holding two leases.
#[tokio::test]
async fn lost_create_reply_and_a_cut_search_make_no_second_node() {
    let (base, client) = step_prefix("search-cut").await;
    let mut failures = Vec::new();
    for (step, folder) in [
        (step("queue join"), "/queues/r"),
        (step("guard join"), "/semaphores/r/lock"),
        (step("lease and lock create"), "/semaphores/r/leases"),
    ] {
        let cuts = [
            step_trigger(&base, step, HoldAt::Reply),
            // The next listing of the folder: the search for the node the create made.
            Trigger::op(op::LIST).path_containing(&format!("{}{folder}", base.prefix)),
        ];
        if let Some(problem) = run_with_cuts(&base, &client, &STEP_ARGS, &cuts, Cut::Reset).await {
            failures.push(format!("{}: {problem}", step.0));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
