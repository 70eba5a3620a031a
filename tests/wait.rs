//! End-to-end tests of `--wait` and `--min-interval` (docs/guide.md: "Waiting for the lock" and
//! "Run records"), run as the real binary against a real ZooKeeper started by the harness.
//!
//! Synchronisation is by what can be observed, never by sleeping for a while: the items of a
//! lock's line, CMD's record files, the record node, and the runs' own debug lines in the job's
//! logfile, which say when a run waits behind an item of the line (`waiting behind ITEM`) or
//! for the lock to go (`waiting for PATH to go`), each logged once its watch is set.

use switchman_test_support as support;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use support::{
    Ensemble, HoldAt, Job, Proxy, Trigger, argv, assert_left_nothing, await_children, children,
    cmd_noting_run, cmd_recording_start_end, cmd_waiting, finish, finish_ok, leased_job, lock_argv,
    nodes_of, set_prefix_data, sh, shared_ensemble, spawn_command, tree, wait_for, wait_for_file,
    wait_until, zk,
};
use tokio::process::{Child, Command};
use zookeeper_client::{Acls, Client, CreateMode, Stat};

/// Waits until the run with `pid` has logged a line containing `needle`.
async fn await_log(job: &Job, pid: u32, needle: &str) {
    job.wait_for_log(1, &[&format!("[{pid}]"), needle]).await;
}

/// How many lines the run with `pid` has logged containing `needle`.
fn log_count(job: &Job, pid: u32, needle: &str) -> usize {
    let tag = format!("[{pid}]");
    std::fs::read_to_string(job.log())
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&tag) && l.contains(needle))
        .count()
}

/// The names `cmd_noting_run` CMDs of `job` noted, in the order they ran.
fn ran(job: &Job) -> Vec<String> {
    job.read("ran").lines().map(str::to_string).collect()
}

/// Waits until the line of lock `lock` holds `n` items; returns them in sequence order.
async fn await_line(client: &Client, job: &Job, lock: &str, n: usize) -> Vec<String> {
    let what = format!("{n} runs wait in line for {lock}");
    await_children(client, &job.line_path(lock), &what, |k| k.len() == n).await
}

/// The stderr of a run that must have failed with `code`, checked to be one line.
async fn failed_with(run: Child, code: i32) -> String {
    let (got, stderr) = finish(run).await;
    assert_eq!(got, code, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    stderr
}

/// Runs with `--wait` take the lock one after another, in the order they joined the line.
#[tokio::test]
async fn waiters_take_the_lock_in_the_order_they_came() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("fifo", &zk_hosts, json!({}));
    let client = zk(&zk_hosts).await;
    let h_cmd = cmd_waiting("h", 0);
    let h = job.spawn(&lock_argv("j", &h_cmd));
    job.wait_for_pid("h.pid").await;

    let names: Vec<String> = (0..10).map(|i| format!("w{i}")).collect();
    let cmds: Vec<Vec<String>> = names.iter().map(|n| cmd_noting_run(n, 0)).collect();
    let mut runs = Vec::new();
    for (i, cmd) in cmds.iter().enumerate() {
        runs.push(job.spawn(&argv(&["--lockname", "j", "--wait", "1m"], cmd)));
        await_line(&client, &job, "j", i + 1).await;
    }
    assert_eq!(ran(&job), Vec::<String>::new(), "h still holds the lock");

    job.go("h");
    finish_ok(h).await;
    for run in runs {
        finish_ok(run).await;
    }
    assert_eq!(ran(&job), names, "CMDs ran in the order of the line");
    assert_eq!(
        children(&client, &job.line_path("j")).await,
        Vec::<String>::new()
    );
}

/// The servers' total of watches (`mntr`), child watches included, which `wchp` does not list.
fn watch_count(ensemble: &Ensemble) -> i64 {
    ensemble.mntr(0)["zk_watch_count"].parse().unwrap()
}

/// No herd: with 20 waiters, each watches only the item just ahead of its own and only the
/// first watches the lock; a release wakes the first waiter, whose leaving the line wakes the
/// next, and nobody else. On a server of its own, so that its total of watches is ours.
#[tokio::test]
async fn one_release_wakes_one_waiter() {
    let ensemble = Ensemble::start(1);
    let zk_hosts = ensemble.connect_string();
    // The default session timeout: at the tests' 2 s, 21 heartbeats would make 210 requests a
    // second on this 2-core machine.
    let job = Job::new("no-herd", &zk_hosts, json!({"session_timeout": 10}));
    let client = zk(&zk_hosts).await;
    let before = watch_count(&ensemble);
    let lock = job.lock_path("j");
    let line = job.line_path("j");

    let h_cmd = cmd_waiting("h", 0);
    let h = job.spawn(&lock_argv("j", &h_cmd));
    job.wait_for_pid("h.pid").await;
    let n = 20;
    let names: Vec<String> = (0..n).map(|i| format!("w{i}")).collect();
    let cmds: Vec<Vec<String>> = names.iter().map(|n| cmd_waiting(n, 0)).collect();
    let mut runs = Vec::new();
    for (i, cmd) in cmds.iter().enumerate() {
        runs.push(job.spawn(&argv(&["--lockname", "j", "--wait", "1m"], cmd)));
        // Listed, not watched: the test's own client must set no watch.
        wait_for(&format!("{} in line", i + 1), async || {
            (children(&client, &line).await.len() == i + 1).then_some(())
        })
        .await;
    }
    let items = children(&client, &line).await;
    let pids: Vec<u32> = runs.iter().map(|r| r.id().unwrap()).collect();
    await_log(&job, pids[0], &format!("waiting for {lock} to go")).await;
    for i in 1..n {
        await_log(
            &job,
            pids[i],
            &format!("waiting behind {line}/{}", items[i - 1]),
        )
        .await;
    }

    let w = ensemble.watches_by_path(0, client.session_id().0);
    assert_eq!(w[&lock].len(), 2, "the holder and the first in line: {w:?}");
    for item in &items[..n - 1] {
        assert_eq!(w[&format!("{line}/{item}")].len(), 1, "{item}: {w:?}");
    }
    assert!(
        !w.contains_key(&format!("{line}/{}", items[n - 1])),
        "{w:?}"
    );
    assert_eq!(
        watch_count(&ensemble) - before,
        n as i64 + 1,
        "no watch on any folder's children: {w:?}"
    );

    job.go("h");
    finish_ok(h).await;
    job.wait_for_pid("w0.pid").await;
    await_log(&job, pids[1], &format!("waiting for {lock} to go")).await;
    for (i, pid) in pids.iter().enumerate().skip(2) {
        assert_eq!(log_count(&job, *pid, "waiting"), 1, "w{i} was woken");
    }
    // w0 watches its own lock, w1 the lock, and w2.. the item ahead.
    assert_eq!(watch_count(&ensemble) - before, n as i64);

    for name in &names {
        job.go(name);
    }
    for run in runs {
        finish_ok(run).await;
    }
    assert_eq!(children(&client, &line).await, Vec::<String>::new());
}

/// Issue 14, no herd: a run that tried the lock at once, found it held and then joined the
/// line behind another does not go on watching the lock node (the failed create's read set a
/// watch on it); only the first in line does, so a release wakes one waiter. The scale bench
/// saw up to 14 watchers on one lock node before. W1's join of the line is held back by a
/// proxy until W2, who came later, has tried the lock too and joined the line first; then W1's
/// connection is cut, and it joins behind W2 over a new one.
#[tokio::test]
async fn a_waiter_that_tried_the_lock_first_does_not_watch_it_from_behind() {
    let ensemble = shared_ensemble();
    let client = zk(&ensemble.connect_string()).await;
    let job = Job::new("tried-first", &ensemble.connect_string(), json!({}));
    let lock = job.lock_path("j");
    let line = job.line_path("j");
    let h = job.spawn(&lock_argv("j", &cmd_waiting("h", 0)));
    job.wait_for_pid("h.pid").await;

    let proxy = Proxy::start_framed(&ensemble.client_ports());
    let through_proxy = job.other_host(json!({"zkhosts": proxy.connect_string()}));
    // `create2` of W1's item in the line, held before the server sees it.
    proxy.hold_at(
        Trigger::op(15)
            .path_containing(&format!("{line}/"))
            .holding(HoldAt::Request),
    );
    let w1 = through_proxy.spawn(&argv(
        &["--lockname", "j", "--wait", "1m"],
        &cmd_waiting("w1", 0),
    ));
    wait_until("W1 tried the lock and is joining the line", || {
        proxy.held().is_some()
    })
    .await;
    let w2 = job.spawn(&argv(
        &["--lockname", "j", "--wait", "1m"],
        &cmd_waiting("w2", 0),
    ));
    let (w1_pid, w2_pid) = (w1.id().unwrap(), w2.id().unwrap());
    await_log(&job, w2_pid, &format!("waiting for {lock} to go")).await;
    proxy.reset_held();
    let items = await_line(&client, &job, "j", 2).await;
    await_log(&job, w1_pid, &format!("waiting behind {line}/{}", items[0])).await;

    let w = ensemble.watches_by_path(0, client.session_id().0);
    assert_eq!(w[&lock].len(), 2, "the holder and the first in line: {w:?}");

    job.go("h");
    finish_ok(h).await;
    job.wait_for_pid("w2.pid").await;
    job.go("w2");
    finish_ok(w2).await;
    through_proxy.wait_for_pid("w1.pid").await;
    through_proxy.go("w1");
    finish_ok(w1).await;
}

/// A wait for the lock that runs out: exit 75, one line naming the lock and its holder, and
/// nothing of the run left in the line. The run ahead of it in line is not disturbed.
#[tokio::test]
async fn a_wait_for_the_lock_that_runs_out_exits_75_naming_the_holder() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("lock-timeout", &zk_hosts, json!({}));
    let client = zk(&zk_hosts).await;
    let h_cmd = cmd_waiting("h", 0);
    let h = job.spawn(&lock_argv("j", &h_cmd));
    let h_pid = h.id().unwrap();
    job.wait_for_pid("h.pid").await;
    let b_cmd = cmd_noting_run("b", 0);
    let b = job.spawn(&argv(&["--lockname", "j", "--wait", "1m"], &b_cmd));
    await_line(&client, &job, "j", 1).await;

    let c = job.spawn(&["--lockname", "j", "--wait", "0.3s", "true"]);
    let c_pid = c.id().unwrap();
    let stderr = failed_with(c, 75).await;
    let lock = job.lock_path("j");
    for part in [
        "switchman: timed out: --wait 0.3s ran out waiting for lock ",
        &format!("{lock}, held by "),
        &format!(" pid {h_pid} since "),
        "; nothing was left queued",
    ] {
        assert!(stderr.contains(part), "{part:?} in {stderr}");
    }
    assert_left_nothing(&client, &job.prefix, c_pid).await;
    assert_eq!(await_line(&client, &job, "j", 1).await.len(), 1, "b's");

    job.go("h");
    finish_ok(h).await;
    finish_ok(b).await;
    assert_eq!(ran(&job), ["b"]);
}

/// A wait for a lease that runs out behind a run stuck first in the resource's queue, holding
/// the semaphore's guard with nothing leased (an original trapped in its guard mutex, say),
/// names that run, not only "none leased".
#[tokio::test]
async fn a_wait_behind_a_run_stuck_at_the_guard_names_it() {
    let (job, client) = leased_job("stuck", json!({}), &["r"]).await;
    let folder = CreateMode::Persistent.with_acls(Acls::anyone_all());
    let ephemeral = CreateMode::EphemeralSequential.with_acls(Acls::anyone_all());
    for (dir, stem) in [
        (job.queue_path("r"), "orig-"),
        (job.guard_path("r"), "acquire-"),
    ] {
        client.mkdir(&dir, &folder).await.unwrap();
        let base = format!("{dir}/{stem}");
        let data = b"stuck.example.com 4242";
        client.create(&base, data, &ephemeral).await.unwrap();
    }

    let d = job.spawn(&[
        "--lockname",
        "d",
        "--lease",
        "r=1:1",
        "--wait",
        "0.3s",
        "true",
    ]);
    let stderr = failed_with(d, 75).await;
    for part in [
        "units of resource r, none leased as we gave up; first in its queue: stuck.example.com",
        "; its guard held by stuck.example.com",
    ] {
        assert!(stderr.contains(part), "{part:?} in {stderr}");
    }
}

/// A wait for a lease that runs out names the resource and who leases it, and leaves nothing
/// queued; `--wait` replaces `resources_wait_timeout`, which would have given up long before.
#[tokio::test]
async fn a_wait_for_a_lease_that_runs_out_exits_75_naming_the_lessees() {
    let extra = json!({"resources_wait_timeout": 0.1});
    let (job, client) = leased_job("lease-timeout", extra, &["r"]).await;
    let a_cmd = cmd_waiting("a", 0);
    let a = job.spawn(&argv(&["--lockname", "a", "--lease", "r=1:1"], &a_cmd));
    let a_pid = a.id().unwrap();
    job.wait_for_pid("a.pid").await;

    let d = job.spawn(&[
        "--lockname",
        "d",
        "--lease",
        "r=1:1",
        "--wait",
        "0.3s",
        "true",
    ]);
    let d_pid = d.id().unwrap();
    let stderr = failed_with(d, 75).await;
    for part in [
        "--wait 0.3s ran out waiting for 1 of 1 units of resource r, leased by ",
        &format!(" pid {a_pid} since "),
    ] {
        assert!(stderr.contains(part), "{part:?} in {stderr}");
    }
    assert_left_nothing(&client, &job.prefix, d_pid).await;
    assert_eq!(
        children(&client, &job.queue_path("r")).await,
        Vec::<String>::new()
    );

    let e_cmd = cmd_noting_run("e", 0);
    let mut e = job.spawn(&argv(
        &["--lockname", "e", "--lease", "r=1:1", "--wait", "1m"],
        &e_cmd,
    ));
    let e_pid = e.id().unwrap();
    await_log(&job, e_pid, "waiting for a lease to go").await;
    // The fault: five times resources_wait_timeout passes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(e.try_wait().unwrap().is_none(), "e still waits");
    job.go("a");
    finish_ok(a).await;
    finish_ok(e).await;
    assert_eq!(ran(&job), ["e"]);
}

/// Two runs that each want the lock and the same `1:1` lease: the second waits in the lock's
/// line holding nothing, so neither can hold what the other waits for. A run that did not wait
/// in line takes the lock meanwhile: the first gives its place in the lease's queue back and
/// waits for the lock again instead of skipping. All of them end.
#[tokio::test]
async fn runs_wanting_the_lock_and_the_same_lease_do_not_deadlock() {
    let (job, client) = leased_job("no-deadlock", json!({}), &["r"]).await;
    let a_cmd = cmd_waiting("a", 0);
    let a = job.spawn(&argv(&["--lockname", "a", "--lease", "r=1:1"], &a_cmd));
    job.wait_for_pid("a.pid").await;

    let opts = ["--lockname", "j", "--lease", "r=1:1", "--wait", "1m"];
    let [x_cmd, y_cmd] = ["x", "y"].map(cmd_recording_start_end);
    let x = job.spawn(&argv(&opts, &x_cmd));
    let x_pid = x.id().unwrap();
    await_log(&job, x_pid, "waiting for a lease to go").await;
    let y = job.spawn(&argv(&opts, &y_cmd));
    let y_pid = y.id().unwrap();
    await_log(&job, y_pid, "waiting behind").await;
    let line = await_line(&client, &job, "j", 2).await;
    assert_eq!(
        nodes_of(&client, &job.prefix, y_pid).await,
        [format!("{}/{}", job.line_path("j"), line[1])],
        "y holds nothing but its place in line"
    );
    let queue = children(&client, &job.queue_path("r")).await;
    assert_eq!(queue.len(), 1, "only x queues for r: {queue:?}");

    // z takes the lock without waiting in line (as the Perl original would).
    let z_cmd = cmd_waiting("z", 0);
    let z = job.spawn(&lock_argv("j", &z_cmd));
    job.wait_for_pid("z.pid").await;
    await_log(&job, x_pid, "was taken elsewhere; giving back the leases").await;
    await_children(&client, &job.queue_path("r"), "x left r's queue", |k| {
        k.is_empty()
    })
    .await;
    assert_eq!(
        nodes_of(&client, &job.prefix, x_pid).await.len(),
        1,
        "its place in line"
    );

    job.go("z");
    finish_ok(z).await;
    job.go("a");
    finish_ok(a).await;
    job.go("all");
    finish_ok(x).await;
    finish_ok(y).await;
    let records = job.read("records");
    assert_eq!(
        records.lines().collect::<Vec<_>>(),
        ["start x", "end x", "start y", "end y"]
    );
    assert_eq!(
        tree(&client, &job.line_path("j")).await.len(),
        1,
        "the line is empty"
    );
}

/// `--min-interval`: a failed last run does not count, so the next run runs; after a success,
/// runs within the interval skip (the busy code), naming the run that counted.
#[tokio::test]
async fn min_interval_skips_after_a_success_and_runs_after_a_failure() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("interval", &zk_hosts, json!({}));
    let client = zk(&zk_hosts).await;
    let opts = [
        "--lockname",
        "j",
        "--min-interval",
        "1h",
        "--busy-exit-code",
        "9",
    ];
    let record_path = job.record_path("j");

    let a = job.spawn(&argv(&opts, &cmd_noting_run("a", 3)));
    let a_pid = a.id().unwrap();
    assert_eq!(finish(a).await.0, 3);
    let (data, stat) = client.get_data(&record_path).await.unwrap();
    let record: Value = serde_json::from_slice(&data).unwrap();
    assert_eq!(record["exit_code"], 3, "{record}");
    assert_eq!(record["pid"], a_pid, "{record}");
    assert!(
        record["start"].as_i64().unwrap() <= stat.mtime,
        "{record} {stat:?}"
    );
    assert!(record["token"].as_i64().unwrap() > 0, "{record}");
    assert_eq!(record.get("last_success"), None, "{record}");

    let b = job.spawn(&argv(&opts, &cmd_noting_run("b", 0)));
    let b_pid = b.id().unwrap();
    finish_ok(b).await;
    let (data, after_b) = client.get_data(&record_path).await.unwrap();
    let record: Value = serde_json::from_slice(&data).unwrap();
    assert_eq!(
        (record["exit_code"].as_i64(), record["pid"].as_u64()),
        (Some(0), Some(b_pid.into()))
    );

    let c = job.spawn(&argv(&opts, &cmd_noting_run("c", 0)));
    let c_pid = c.id().unwrap();
    let (code, stderr) = finish(c).await;
    assert_eq!((code, stderr.as_str()), (9, ""), "a skip, silent");
    assert_eq!(ran(&job), ["a", "b"]);
    let host = record["host"].as_str().unwrap();
    await_log(&job, c_pid, &format!("skipped: j ran on {host} ")).await;
    await_log(&job, c_pid, " ago (exit 0); --min-interval 1h").await;
    let unchanged = client.get_data(&record_path).await.unwrap().1;
    assert_eq!(
        unchanged.mzxid, after_b.mzxid,
        "a skipped run writes no record"
    );
}

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// `cmd` with its wall clock (`CLOCK_REALTIME`, what `SystemTime` reads) set `offset` off,
/// e.g. `+1d`, by libfaketime; its monotonic clocks, which time the session, are left alone.
fn with_clock_off(mut cmd: Command, offset: &str) -> Command {
    assert!(
        Path::new(LIBFAKETIME).exists(),
        "libfaketime is not installed: run scripts/install-deps"
    );
    cmd.env("LD_PRELOAD", LIBFAKETIME)
        .env("FAKETIME", offset)
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    cmd
}

/// Writes a record of a successful run that started `ago_ms` before now on the servers' clock
/// (learnt from the mtime of a first write); returns that now.
async fn record_success_ago(client: &Client, path: &str, ago_ms: i64) -> i64 {
    let folder = CreateMode::Persistent.with_acls(Acls::anyone_all());
    client.mkdir(path, &folder).await.unwrap();
    let now = client.set_data(path, b"{}", None).await.unwrap().mtime;
    let record = json!({"host": "web1.example", "pid": 1, "start": now - ago_ms,
                        "exit_code": 0, "token": 1});
    client
        .set_data(path, record.to_string().as_bytes(), None)
        .await
        .unwrap();
    now
}

/// This host's wall clock as the run with `pid` saw it, in seconds since the epoch: the
/// timestamp of its first log line, read back with date(1).
fn logged_clock(job: &Job, pid: u32) -> i64 {
    let log = std::fs::read_to_string(job.log()).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains(&format!("[{pid}]")))
        .unwrap_or_else(|| panic!("no line of {pid} in {log}"));
    let stamp = line.split(' ').next().unwrap();
    let out = std::process::Command::new("date")
        .args(["-d", stamp, "+%s"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Skew cannot change the decision: a run whose host clock is a day behind runs after a
/// success two hours ago by the servers' clocks (a record in its future), and one whose clock
/// is a day ahead skips after a success ten minutes ago (a record far in its past). Compared
/// with the host's clock, each decision would have been the opposite.
#[tokio::test]
async fn min_interval_asks_only_the_servers_clocks() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("skew", &zk_hosts, json!({}));
    let client = zk(&zk_hosts).await;
    let record_path = job.record_path("k");
    let opts = [
        "--lockname",
        "k",
        "--min-interval",
        "1h",
        "--busy-exit-code",
        "9",
    ];
    let day = 86_400;

    let now = record_success_ago(&client, &record_path, 2 * 3600 * 1000).await;
    let behind = job.command(&argv(&opts, &cmd_noting_run("behind", 0)));
    let behind = spawn_command(with_clock_off(behind, "-1d"));
    let pid = behind.id().unwrap();
    finish_ok(behind).await;
    assert_eq!(
        ran(&job),
        ["behind"],
        "a success 2h ago by the servers: it runs"
    );
    let clock = logged_clock(&job, pid);
    assert!(
        (clock - (now / 1000 - day)).abs() < 600,
        "its clock was a day behind: {clock}"
    );

    let now = record_success_ago(&client, &record_path, 10 * 60 * 1000).await;
    let ahead = job.command(&argv(&opts, &cmd_noting_run("ahead", 0)));
    let ahead = spawn_command(with_clock_off(ahead, "+1d"));
    let pid = ahead.id().unwrap();
    assert_eq!(
        finish(ahead).await.0,
        9,
        "a success 10m ago by the servers: it skips"
    );
    assert_eq!(ran(&job), ["behind"]);
    await_log(&job, pid, "skipped: k ran on web1.example 10m").await;
    let clock = logged_clock(&job, pid);
    assert!(
        (clock - (now / 1000 + day)).abs() < 600,
        "its clock was a day ahead: {clock}"
    );
}

/// The fencing token of the CMD `name` (a `cmd_waiting` CMD), from the environment it wrote.
async fn token_of(job: &Job, name: &str) -> i64 {
    let env = wait_for_file(&job.file(&format!("{name}.env"))).await;
    env.lines()
        .find_map(|l| l.strip_prefix("SWITCHMAN_FENCING_TOKEN="))
        .unwrap()
        .parse()
        .unwrap()
}

/// Writes, as another holder would, a successful run with fencing token `token`; returns the
/// node's stat.
async fn record_as_other(client: &Client, path: &str, token: i64) -> Stat {
    let folder = CreateMode::Persistent.with_acls(Acls::anyone_all());
    client.mkdir(path, &folder).await.unwrap();
    let record = json!({"host": "other.example", "pid": 1, "start": 0, "exit_code": 0,
                        "token": token});
    client
        .set_data(path, record.to_string().as_bytes(), None)
        .await
        .unwrap()
}

/// A holder whose record changed while its CMD ran (it read the record when it took the lock)
/// writes over a record of an older holder, and never over a newer holder's.
#[tokio::test]
async fn a_record_is_never_overwritten_by_an_older_holder() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("cas", &zk_hosts, json!({}));
    let client = zk(&zk_hosts).await;

    let a_cmd = cmd_waiting("a", 0);
    let a = job.spawn(&argv(&["--lockname", "a", "--min-interval", "1h"], &a_cmd));
    let newer = token_of(&job, "a").await + 1;
    let stat = record_as_other(&client, &job.record_path("a"), newer).await;
    job.go("a");
    let (code, stderr) = finish(a).await;
    assert_eq!(code, 0, "CMD's code: {stderr}");
    assert!(
        stderr.contains("the run was not recorded") && stderr.contains(&format!("token {newer}")),
        "{stderr}"
    );
    let (data, after) = client.get_data(&job.record_path("a")).await.unwrap();
    assert_eq!(
        after.mzxid,
        stat.mzxid,
        "untouched: {}",
        String::from_utf8_lossy(&data)
    );

    let b_cmd = cmd_waiting("b", 0);
    let b = job.spawn(&argv(&["--lockname", "b", "--min-interval", "1h"], &b_cmd));
    let b_pid = b.id().unwrap();
    let token = token_of(&job, "b").await;
    record_as_other(&client, &job.record_path("b"), token - 1).await;
    job.go("b");
    finish_ok(b).await;
    let (data, _) = client.get_data(&job.record_path("b")).await.unwrap();
    let record: Value = serde_json::from_slice(&data).unwrap();
    assert_eq!(
        (record["pid"].as_u64(), record["token"].as_i64()),
        (Some(b_pid.into()), Some(token))
    );
}

/// A waiter whose session expires has lost its place: exit 69, not a skip.
#[tokio::test]
async fn a_session_lost_while_waiting_in_line_is_not_a_skip() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("lost-in-line", &zk_hosts, json!({}));
    let client = zk(&zk_hosts).await;
    let proxy = Proxy::start(&shared_ensemble().client_ports());
    let via = job.other_host(json!({ "zkhosts": proxy.connect_string() }));
    let h_cmd = cmd_waiting("h", 0);
    let h = job.spawn(&lock_argv("j", &h_cmd));
    job.wait_for_pid("h.pid").await;
    let b = via.spawn(&["--lockname", "j", "--wait", "forever", "true"]);
    let lock = job.lock_path("j");
    await_log(&job, b.id().unwrap(), &format!("waiting for {lock} to go")).await;

    proxy.blackhole();
    await_line(&client, &job, "j", 0).await;
    let stderr = failed_with(b, 69).await;
    assert!(
        stderr.starts_with("switchman: ZooKeeper unavailable:") && stderr.contains("session"),
        "{stderr}"
    );
    job.go("h");
    finish_ok(h).await;
}

/// The order of the contract holds with `--wait`: a host not in the group skips before it
/// touches anything, the line included.
#[tokio::test]
async fn a_host_not_in_the_group_skips_before_waiting() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("group-first", &zk_hosts, json!({"fqdn": "me.example"}));
    let client = zk(&zk_hosts).await;
    set_prefix_data(
        &client,
        &job.prefix,
        r#"{"groups": {"g": ["other.example"]}}"#,
    )
    .await;
    let h_cmd = cmd_waiting("h", 0);
    let h = job.spawn(&lock_argv("j", &h_cmd));
    job.wait_for_pid("h.pid").await;
    let before = tree(&client, &job.prefix).await;

    let args = ["-g", "g", "--lockname", "j", "--wait", "1m", "--", "true"];
    let (code, stderr) = job.run(&args).await;
    assert_eq!((code, stderr.as_str()), (0, ""), "a silent skip");
    assert_eq!(tree(&client, &job.prefix).await, before);
    job.go("h");
    finish_ok(h).await;
}

/// `--wait` and `--min-interval` together, the recipe "wait, then skip": runs that came while
/// the first ran wait for it, then skip without running the job again.
#[tokio::test]
async fn wait_then_skip() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("wait-then-skip", &zk_hosts, json!({}));
    let client = zk(&zk_hosts).await;
    let opts = ["--lockname", "j", "--wait", "1m", "--min-interval", "1h"];
    let first = sh(format!(
        "echo first >> \"$JOB_DIR/ran\"\n{}",
        support::until_go("first")
    ));
    let a = job.spawn(&argv(&opts, &first));
    wait_until("the first runs", || ran(&job) == ["first"]).await;
    let others: Vec<Vec<String>> = (0..3)
        .map(|i| cmd_noting_run(&format!("o{i}"), 0))
        .collect();
    let runs: Vec<Child> = others.iter().map(|c| job.spawn(&argv(&opts, c))).collect();
    await_line(&client, &job, "j", 3).await;
    job.go("first");
    finish_ok(a).await;
    for run in runs {
        let (code, stderr) = finish(run).await;
        assert_eq!((code, stderr.as_str()), (0, ""), "skipped, silently");
    }
    assert_eq!(ran(&job), ["first"]);
}

/// `switchmanctl status` shows each job's last run and last success, for people and as JSON
/// (with `record_runs`, every run with a lock leaves a record), and who waits in line.
#[tokio::test]
async fn status_shows_run_records_and_lines() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("status-runs", &zk_hosts, json!({"record_runs": true}));
    let client = zk(&zk_hosts).await;
    let (ok, _) = job.run(&["--lockname", "j", "true"]).await;
    assert_eq!(ok, 0);
    let (failed, _) = job.run(&["--lockname", "j", "false"]).await;
    assert_eq!(failed, 1);
    let h_cmd = cmd_waiting("h", 0);
    let h = job.spawn(&lock_argv("k", &h_cmd));
    job.wait_for_pid("h.pid").await;
    let w = job.spawn(&["--lockname", "k", "--wait", "1m", "true"]);
    let w_pid = w.id().unwrap();
    await_line(&client, &job, "k", 1).await;

    let out = job
        .ctl_command(&["status", "--json"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = status["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{status}");
    let run = &runs[0];
    assert_eq!(run["name"], "j");
    assert_eq!(run["last_run"]["exit_code"], 1, "{run}");
    assert_eq!(run["last_success"]["exit_code"], 0, "{run}");
    let times = |r: &Value| {
        (
            r["start"].as_str().unwrap().to_string(),
            r["end"].as_str().unwrap().to_string(),
        )
    };
    let (start, end) = times(&run["last_run"]);
    assert!(start.ends_with('Z') && start <= end, "{run}");
    assert!(times(&run["last_success"]).1 <= start, "{run}");
    let lines = status["lock_waiters"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "{status}");
    assert_eq!(lines[0]["lock"], "k");
    assert_eq!(lines[0]["waiters"][0]["pid"], w_pid, "{status}");

    let out = job.ctl_command(&["status"]).output().await.unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let row = text
        .lines()
        .find(|l| l.starts_with("j "))
        .unwrap_or_else(|| panic!("{text}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[1], "failed", "OUTCOME: {text}");
    assert_eq!(cells[2], "1", "EXIT: {text}");
    assert!(text.contains(&format!(" {w_pid} ")), "the waiter: {text}");

    job.go("h");
    finish_ok(h).await;
    finish_ok(w).await;
}

/// `--min-interval` adds the read of the record and its write to a plain run's 4 packets (the
/// history is read and written with it); `--wait` with nobody in line adds the look at the
/// line.
#[tokio::test]
async fn what_waiting_and_recording_cost_in_requests() {
    let ensemble = Ensemble::start(1);
    let job = Job::new(
        "requests",
        &ensemble.connect_string(),
        json!({"session_timeout": 10}),
    );
    // Runs a millisecond apart at least, so none skips: each one's cost is a whole run's.
    let noted = cmd_noting_run("m", 0);
    let interval = argv(&["--lockname", "r", "--min-interval", "1ms"], &noted);
    // A first run creates the folders and the record.
    assert_eq!(job.run(&interval).await.0, 0);
    let mut costs = HashMap::new();
    costs.insert(
        "min-interval",
        job.least_packets(&ensemble, &interval).await,
    );
    assert_eq!(ran(&job).len(), 4, "none skipped");
    let wait = ["--lockname", "r", "--wait", "1m", "true"];
    costs.insert("wait", job.least_packets(&ensemble, &wait).await);
    // Captured output writes the record and the history: one read, one write, as a record.
    let capture = ["--lockname", "c", "--capture-output", "--", "echo", "out"];
    assert_eq!(
        job.run(&capture).await.0,
        0,
        "the first creates the history's folder"
    );
    costs.insert("capture", job.least_packets(&ensemble, &capture).await);
    assert!(costs["min-interval"] <= 6, "{costs:?}");
    assert!(costs["wait"] <= 5, "{costs:?}");
    assert!(costs["capture"] <= 6, "{costs:?}");
}
