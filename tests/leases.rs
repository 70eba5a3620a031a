//! End-to-end tests of leases (docs/layout.md; docs/guide.md: "How a run goes", "Leases"): FIFO
//! queues and counting semaphores, run as the real binary against a real ZooKeeper started by
//! the harness.
//!
//! Every test works under a prefix of its own on the shared single-node ensemble, whose data
//! lists the resources it leases. Synchronisation is by what can be observed, never by sleeping
//! for a while: CMD's record files, the znodes of the queues and semaphores (awaited with
//! watches), the server's list of watches (`wchp`, which shows exists and data watches only),
//! and the runs' own debug lines in the job's logfile, which say when a run waits behind a
//! queue item or for room in a semaphore (after its watch is set).

use switchman_test_support as support;

use std::collections::{BTreeMap, HashMap};
use std::os::unix::process::ExitStatusExt;

use serde_json::json;
use support::{
    Ensemble, Job, Proxy, Trigger, Txn, TxnOp, argv, assert_left_nothing, await_children,
    await_item, children, cmd_recording_start_end, cmd_waiting, finish, finish_ok, has_item,
    leased_job, seq, sh, shared_ensemble, until_go, wait_for_file, wait_until,
};
use tokio::process::Child;
use zookeeper_client::{Acls, Client, CreateMode};

/// The lines of the records `cmd_recording_start_end` CMDs wrote.
fn records(job: &Job) -> Vec<String> {
    job.read("records").lines().map(str::to_string).collect()
}

/// Nobody holds the guard of resource `r`, and its only lease is the holder `a`'s.
async fn assert_only_a_lease_left(client: &Client, job: &Job) {
    assert_eq!(
        children(client, &job.guard_path("r")).await,
        Vec::<String>::new()
    );
    assert_eq!(
        children(client, &job.leases_path("r")).await.len(),
        1,
        "a's"
    );
}

/// Starts `cmd_waiting(name, 0)` as task `name` with `--lease LEASE`, and waits until it runs.
async fn holding(job: &Job, name: &str, lease: &str) -> Child {
    let cmd = cmd_waiting(name, 0);
    let run = job.spawn(&argv(&["--lockname", name, "--lease", lease], &cmd));
    job.wait_for_pid(&format!("{name}.pid")).await;
    run
}

/// The shared server's watches by path, leaving out those of the test's own client.
fn watches(except: &Client) -> HashMap<String, Vec<String>> {
    shared_ensemble().watches_by_path(0, except.session_id().0)
}

/// Waits until the run with `pid` logs a line containing `needle` (the logfile holds every
/// run's lines, each with the run's pid).
async fn await_log(job: &Job, pid: u32, needle: &str) {
    job.wait_for_log(1, &[&format!("[{pid}]"), needle]).await;
}

/// Waits until the run with `pid` has found no room in the semaphore of `res` and waits on a
/// watch of its leases.
async fn await_no_room(job: &Job, pid: u32, res: &str) {
    let needles = [
        &format!("[{pid}]"),
        &format!("{}: ", job.leases_path(res)),
        "waiting for a lease to go",
    ];
    job.wait_for_log(1, &needles).await;
}

/// The largest number of CMDs running at once according to `start`/`end` records.
fn max_overlap(records: &[String]) -> usize {
    let (mut now, mut max) = (0usize, 0usize);
    for r in records {
        if r.starts_with("start ") {
            now += 1;
            max = max.max(now);
        } else if r.starts_with("end ") {
            now -= 1;
        }
    }
    max
}

fn position(records: &[String], line: &str) -> usize {
    records
        .iter()
        .position(|r| r == line)
        .unwrap_or_else(|| panic!("no {line:?} in {records:?}"))
}

/// The same job (prefix, settings, logfile, and CMD's `$JOB_DIR`) seen through other
/// `zkhosts`, e.g. a proxy.
struct Via {
    job: Job,
    job_dir: std::path::PathBuf,
}

impl Via {
    fn new(job: &Job, zkhosts: &str) -> Via {
        Via {
            job: job.other_host(json!({ "zkhosts": zkhosts })),
            job_dir: job.dir.path().to_path_buf(),
        }
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.job
            .command(args)
            .env("JOB_DIR", &self.job_dir)
            .spawn()
            .expect("start switchman")
    }
}

/// Contenders for a `1:1` resource run one at a time, in the order they joined the queue, and
/// each waiter watches only the item just ahead of its own.
#[tokio::test]
async fn contenders_run_in_queue_order() {
    let (job, client) = leased_job("fifo", json!({}), &["r"]).await;
    let q = job.queue_path("r");
    let names: Vec<String> = (0..6).map(|i| format!("l{i}")).collect();
    let cmds: Vec<Vec<String>> = names
        .iter()
        .map(|n| {
            sh(format!(
                "echo {n} >> \"$JOB_DIR/order\"\n{}",
                until_go("all")
            ))
        })
        .collect();

    let mut runs = Vec::new();
    for (i, name) in names.iter().enumerate() {
        runs.push(job.spawn(&argv(&["--lockname", name, "--lease", "r=1:1"], &cmds[i])));
        if i == 0 {
            wait_for_file(&job.file("order")).await;
        } else {
            await_children(&client, &q, &format!("{name} has queued"), |kids| {
                has_item(kids, name)
            })
            .await;
        }
    }
    let queued = children(&client, &q).await;
    let queue_order: Vec<String> = queued
        .iter()
        .map(|k| k[..k.rfind('-').unwrap()].to_string())
        .collect();
    assert_eq!(
        queue_order,
        &names[1..],
        "each joined the queue after the last"
    );

    // No herd: each waiter watches only the item ahead of its own, never the folder, so the
    // first four items have one watcher each and the last has none.
    let items: Vec<String> = queued.iter().map(|k| format!("{q}/{k}")).collect();
    wait_until("every waiter watches the item ahead", || {
        let w = watches(&client);
        items[..items.len() - 1].iter().all(|i| w.contains_key(i))
    })
    .await;
    let w = watches(&client);
    for item in &items[..items.len() - 1] {
        assert_eq!(w[item].len(), 1, "{item} has one watcher: {w:?}");
    }
    assert!(!w.contains_key(items.last().unwrap()), "{w:?}");
    assert!(
        !w.contains_key(&q),
        "nobody watches the queue folder: {w:?}"
    );
    assert_eq!(
        std::fs::read_to_string(job.file("order")).unwrap(),
        "l0\n",
        "the others wait"
    );

    job.go("all");
    for run in runs {
        finish_ok(run).await;
    }
    let order: Vec<String> = std::fs::read_to_string(job.file("order"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(order[0], "l0");
    assert_eq!(&order[1..], &queue_order[..], "CMDs started in queue order");
    assert!(children(&client, &q).await.is_empty());
    assert!(children(&client, &job.leases_path("r")).await.is_empty());
}

/// A `1:3` semaphore with eight contenders: three run at once, never more.
#[tokio::test]
async fn semaphore_admits_at_most_total() {
    let (job, client) = leased_job("sem3", json!({}), &["r"]).await;
    let names: Vec<String> = (0..8).map(|i| format!("s{i}")).collect();
    let cmds: Vec<Vec<String>> = names.iter().map(|n| cmd_recording_start_end(n)).collect();
    let runs: Vec<Child> = names
        .iter()
        .zip(&cmds)
        .map(|(n, c)| job.spawn(&argv(&["--lockname", n, "--lease", "r=1:3"], c)))
        .collect();

    // Three run; the other five wait in the queue, the first of them at the semaphore.
    // (Three running first: until then the queue's head may still be about to get a lease.)
    let q = job.queue_path("r");
    wait_until("three CMDs run", || records(&job).len() == 3).await;
    let waiting = await_children(&client, &q, "five wait", |k| k.len() == 5).await;
    let head = &waiting[0][..waiting[0].rfind('-').unwrap()];
    let head_pid = runs[names.iter().position(|n| n == head).unwrap()]
        .id()
        .unwrap();
    await_no_room(&job, head_pid, "r").await;
    assert_eq!(records(&job).len(), 3, "{:?}", records(&job));
    let held = children(&client, &job.leases_path("r")).await;
    assert_eq!(held.len(), 3, "{held:?}");
    assert!(held.iter().all(|l| l.starts_with("1_3_")), "{held:?}");

    job.go("all");
    for run in runs {
        finish_ok(run).await;
    }
    let recs = records(&job);
    assert_eq!(recs.len(), 16, "{recs:?}");
    assert_eq!(max_overlap(&recs), 3, "{recs:?}");
    assert!(children(&client, &job.leases_path("r")).await.is_empty());
}

/// The `COUNT_TOTAL_` of each lease of resource `r`, in sequence order (single digits).
async fn counts_held(client: &Client, job: &Job) -> Vec<String> {
    children(client, &job.leases_path("r"))
        .await
        .iter()
        .map(|l| l[..4].to_string())
        .collect()
}

/// Counts are weighed: `2:5` and `3:5` fit together; a `1:5` waits until one of them ends.
#[tokio::test]
async fn weighted_counts_share_the_total() {
    let (job, client) = leased_job("weighted", json!({}), &["r"]).await;
    let [a_cmd, b_cmd, c_cmd] = ["a", "b", "c"].map(cmd_recording_start_end);
    let a = job.spawn(&argv(&["--lockname", "a", "--lease", "r=2:5"], &a_cmd));
    job.wait_for_pid("a.pid").await;
    let b = job.spawn(&argv(&["--lockname", "b", "--lease", "r=3:5"], &b_cmd));
    job.wait_for_pid("b.pid").await;
    let held = counts_held(&client, &job).await;
    assert_eq!(held, ["2_5_", "3_5_"]);

    // The third is at the semaphore, waiting on a watch of the leases, and does not run.
    let c = job.spawn(&argv(&["--lockname", "c", "--lease", "r=1:5"], &c_cmd));
    await_no_room(&job, c.id().unwrap(), "r").await;
    assert!(!job.file("c.pid").exists(), "{:?}", records(&job));

    job.go("a");
    finish_ok(a).await;
    job.wait_for_pid("c.pid").await;
    let recs = records(&job);
    assert!(
        position(&recs, "start c") > position(&recs, "end a"),
        "{recs:?}"
    );
    assert!(
        !recs.contains(&"end b".to_string()),
        "b still runs: {recs:?}"
    );
    let held = counts_held(&client, &job).await;
    assert_eq!(held, ["3_5_", "1_5_"]);

    job.go("all");
    finish_ok(b).await;
    finish_ok(c).await;
}

/// A lease of the same resource out of another total is a config error naming both totals,
/// and leaves nothing behind.
#[tokio::test]
async fn total_mismatch_is_a_config_error() {
    let (job, client) = leased_job("mismatch", json!({}), &["r"]).await;
    let a = holding(&job, "a", "r=1:2").await;

    let b = job.spawn(&["--lockname", "b", "--lease", "r=1:3", "true"]);
    let b_pid = b.id().unwrap();
    let (code, stderr) = finish(b).await;
    assert_eq!(code, 78, "{stderr}");
    assert!(
        stderr.contains("total of 3") && stderr.contains("total of 2"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert_left_nothing(&client, &job.prefix, b_pid).await;
    assert_eq!(children(&client, &job.leases_path("r")).await.len(), 1);

    job.go("a");
    finish_ok(a).await;
}

/// A resource the prefix data does not list is a config error naming it; nothing is written.
#[tokio::test]
async fn unknown_resource_is_a_config_error() {
    let (job, client) = leased_job("unknown", json!({}), &["r", "s"]).await;
    let (code, stderr) = job
        .run(&["--lease", "r=1:1", "--lease", "nosuch=1:1", "true"])
        .await;
    assert_eq!(code, 78, "{stderr}");
    assert!(stderr.contains("nosuch"), "{stderr}");
    assert_eq!(children(&client, &job.prefix).await, Vec::<String>::new());
}

/// A task already waiting in a queue (on another host) is skipped: exit 0, silent, no trace.
#[tokio::test]
async fn task_already_queued_is_skipped() {
    let (job, client) = leased_job("queued", json!({}), &["r"]).await;
    let a = holding(&job, "a", "r=1:1").await;
    let b_cmd = cmd_waiting("b", 0);
    let b = job.spawn(&argv(&["--lockname", "b", "--lease", "r=1:1"], &b_cmd));
    let q = job.queue_path("r");
    await_item(&client, &q, "b").await;

    let c_cmd = cmd_waiting("c", 0);
    let c = job.spawn(&argv(&["--lockname", "b", "--lease", "r=1:1"], &c_cmd));
    let c_pid = c.id().unwrap();
    let (code, stderr) = finish(c).await;
    assert_eq!((code, stderr.as_str()), (0, ""), "a skip is silent");
    assert!(!job.file("c.pid").exists());
    assert_left_nothing(&client, &job.prefix, c_pid).await;
    let kids = children(&client, &q).await;
    assert_eq!(kids.len(), 1, "only b's item: {kids:?}");

    job.go("a");
    finish_ok(a).await;
    job.wait_for_pid("b.pid").await;
    job.go("b");
    finish_ok(b).await;
}

/// The lock being taken elsewhere while we wait for a lease: skip, and leave the queue.
#[tokio::test]
async fn lock_taken_while_waiting_skips() {
    let (job, client) = leased_job("lock-appears", json!({}), &["r"]).await;
    let a = holding(&job, "a", "r=1:1").await;
    let b_cmd = cmd_waiting("b", 0);
    let b = job.spawn(&argv(&["--lockname", "x", "--lease", "r=1:1"], &b_cmd));
    let b_pid = b.id().unwrap();
    let q = job.queue_path("r");
    await_item(&client, &q, "x").await;

    // Another host runs task x without leases.
    let x_cmd = cmd_waiting("x", 0);
    let x = job.spawn(&argv(&["--lockname", "x"], &x_cmd));
    job.wait_for_pid("x.pid").await;

    let (code, stderr) = finish(b).await;
    assert_eq!((code, stderr.as_str()), (0, ""), "a skip is silent");
    assert!(!job.file("b.pid").exists());
    assert_eq!(children(&client, &q).await, Vec::<String>::new());
    assert_left_nothing(&client, &job.prefix, b_pid).await;

    job.go("x");
    job.go("a");
    finish_ok(x).await;
    finish_ok(a).await;
}

/// `resources_wait_timeout` runs out: exit 75, and neither the waiter at the semaphore nor
/// the one behind it in the queue leaves a node behind.
#[tokio::test]
async fn wait_timeout_exits_75_and_leaves_nothing() {
    let (job, client) = leased_job("timeout", json!({"resources_wait_timeout": 0.5}), &["r"]).await;
    let a = holding(&job, "a", "r=1:1").await;

    let b = job.spawn(&["--lockname", "b", "--lease", "r=1:1", "true"]);
    let c = job.spawn(&["--lockname", "c", "--lease", "r=1:1", "true"]);
    let pids = [b.id().unwrap(), c.id().unwrap()];
    for run in [b, c] {
        let (code, stderr) = finish(run).await;
        assert_eq!(code, 75, "{stderr}");
        assert!(stderr.contains("resources_wait_timeout"), "{stderr}");
    }
    for pid in pids {
        assert_left_nothing(&client, &job.prefix, pid).await;
    }
    assert_eq!(
        children(&client, &job.queue_path("r")).await,
        Vec::<String>::new()
    );
    assert_only_a_lease_left(&client, &job).await;

    job.go("a");
    finish_ok(a).await;
}

/// A lease deleted from outside while CMD runs stops CMD (SIGTERM first): exit 79.
#[tokio::test]
async fn deleted_lease_stops_cmd() {
    let (job, client) = leased_job("lease-deleted", json!({}), &["r"]).await;
    let a_cmd = cmd_waiting("a", 0);
    let a = job.spawn(&argv(&["--lockname", "a", "--lease", "r=1:1"], &a_cmd));
    let env = wait_for_file(&job.file("a.env")).await;
    let lease = env
        .lines()
        .find_map(|l| l.strip_prefix("SWITCHMAN_LEASES="))
        .unwrap_or_else(|| panic!("no SWITCHMAN_LEASES in {env}"));
    client.delete(lease, None).await.unwrap();

    let (code, stderr) = finish(a).await;
    assert_eq!(code, 79, "{stderr}");
    assert!(
        stderr.contains(lease) && stderr.contains("deleted"),
        "{stderr}"
    );
    assert_eq!(job.read("a.term"), "term\n", "CMD got SIGTERM first");
}

/// Macros in `--lease` and in the prefix's `resources`; `SWITCHMAN_LEASES` lists the lease
/// nodes in the global order of `resources`, whatever the order on the command line.
#[tokio::test]
async fn macros_and_switchman_leases() {
    let fqdn = "node1.example.com";
    let (job, client) = leased_job("macros", json!({ "fqdn": fqdn }), &["r", "FQDN_cpu"]).await;
    let out = std::process::Command::new("getconf")
        .arg("_NPROCESSORS_ONLN")
        .output()
        .unwrap();
    let cpus: u64 = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    let a_cmd = cmd_waiting("a", 0);
    let a = job.spawn(&argv(
        &[
            "--lockname",
            "a",
            "--lease",
            "FQDN_cpu=int(CPU/CPU):CPU",
            "--lease",
            "r=1:1",
        ],
        &a_cmd,
    ));
    let pid = a.id().unwrap();
    let env = wait_for_file(&job.file("a.env")).await;
    let held = env
        .lines()
        .find_map(|l| l.strip_prefix("SWITCHMAN_LEASES="))
        .unwrap_or_else(|| panic!("no SWITCHMAN_LEASES in {env}"));
    let held: Vec<&str> = held.split(' ').collect();
    assert_eq!(held.len(), 2, "{held:?}");
    assert_eq!(
        held[0],
        format!("{}/1_1_0000000000", job.leases_path("r")),
        "{held:?}"
    );
    assert_eq!(
        held[1],
        format!(
            "{}/1_{cpus}_0000000000",
            job.leases_path(&format!("{fqdn}_cpu"))
        ),
        "{held:?}"
    );
    for lease in &held {
        let (data, stat) = client.get_data(lease).await.unwrap();
        assert_eq!(String::from_utf8(data).unwrap(), format!("{fqdn} {pid}"));
        assert_ne!(stat.ephemeral_owner, 0, "{lease} is ephemeral");
    }
    assert!(env.contains(&format!("SWITCHMAN_LOCK={}\n", job.lock_path("a"))));

    job.go("a");
    finish_ok(a).await;
    for lease in &held {
        assert_eq!(client.check_stat(lease).await.unwrap(), None);
    }
}

/// With `--no-lock`, two runs of the same command share a resource: a semaphore without the
/// mutual exclusion, and no lock node.
#[tokio::test]
async fn no_lock_runs_share_the_resource() {
    let (job, client) = leased_job("no-lock", json!({}), &["r"]).await;
    let script = format!("echo $$ >> \"$JOB_DIR/running\"\n{}", until_go("all"));
    let args = ["--no-lock", "--lease", "r=1:2", "--", "sh", "-c", &script];
    let a = job.spawn(&args);
    let b = job.spawn(&args);
    wait_until("both CMDs run at once", || {
        std::fs::read_to_string(job.file("running")).is_ok_and(|t| t.lines().count() == 2)
    })
    .await;
    assert_eq!(children(&client, &job.leases_path("r")).await.len(), 2);
    assert_eq!(
        children(&client, &format!("{}/locks", job.prefix)).await,
        Vec::<String>::new()
    );
    // A third does not fit.
    let c = job.spawn(&args);
    await_no_room(&job, c.id().unwrap(), "r").await;
    assert_eq!(
        std::fs::read_to_string(job.file("running"))
            .unwrap()
            .lines()
            .count(),
        2
    );
    job.go("all");
    for run in [a, b, c] {
        finish_ok(run).await;
    }
    assert_eq!(
        std::fs::read_to_string(job.file("running"))
            .unwrap()
            .lines()
            .count(),
        3
    );
}

/// Bad `--lease` specs are usage errors (64) that quote the spec, before anything is written.
#[tokio::test]
async fn bad_specs_exit_64_quoting_the_text() {
    let (job, client) = leased_job("bad-specs", json!({}), &["r"]).await;
    for spec in [
        "r",
        "r=1",
        "r=x:1",
        "r=1:system(1)",
        "r=1:`id`",
        "r=0:1",
        "r=2:1",
        "r=1:-1",
        "r=-1:2",
        "r=1:2/0",
        "=1:1",
        "a/b=1:1",
        "r=1:(((1)",
    ] {
        let (code, stderr) = job.run(&["--lease", spec, "true"]).await;
        assert_eq!(code, 64, "{spec}: {stderr}");
        assert!(stderr.contains(&format!("{spec:?}")), "{spec}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{spec}: {stderr}");
    }
    assert_eq!(children(&client, &job.prefix).await, Vec::<String>::new());
}

/// Two runs SIGKILLed while they wait (one at the semaphore, one behind it in the queue) leave
/// nothing once their sessions expire, and the next run goes through.
#[tokio::test]
async fn killed_waiters_leave_no_orphans() {
    let (job, client) = leased_job("killed", json!({}), &["r"]).await;
    let a = holding(&job, "a", "r=1:1").await;

    let q = job.queue_path("r");
    let mut b = job.spawn(&["--lockname", "b", "--lease", "r=1:1", "true"]);
    await_item(&client, &q, "b").await;
    let mut c = job.spawn(&["--lockname", "c", "--lease", "r=1:1", "true"]);
    let kids = await_children(&client, &q, "c has queued", |k| has_item(k, "c")).await;
    // b waits at the semaphore, c on b's item.
    await_no_room(&job, b.id().unwrap(), "r").await;
    await_log(
        &job,
        c.id().unwrap(),
        &format!("waiting behind {q}/{}", kids[0]),
    )
    .await;

    for run in [&mut b, &mut c] {
        run.start_kill().unwrap();
        // Reaped, so dead by now whatever happened; that it was our SIGKILL that ended it, and
        // not an exit of its own (which would clean up), is what the test is about.
        let status = run.wait().await.unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    }
    await_children(&client, &q, "the killed runs' items expire", |k| {
        k.is_empty()
    })
    .await;
    assert_only_a_lease_left(&client, &job).await;

    job.go("a");
    finish_ok(a).await;
    let (code, stderr) = job
        .run(&["--lockname", "d", "--lease", "r=1:1", "true"])
        .await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        children(&client, &job.leases_path("r")).await,
        Vec::<String>::new()
    );
}

/// A waiter whose connection is cut and re-made keeps its place: a disconnect is not a loss,
/// while waiting no more than while CMD runs.
#[tokio::test]
async fn waiters_survive_a_reconnect() {
    let (job, client) = leased_job("reconnect", json!({}), &["r"]).await;
    let proxy = Proxy::start(&shared_ensemble().client_ports());
    let via = Via::new(&job, &proxy.connect_string());
    let q = job.queue_path("r");
    let [a_cmd, b_cmd, c_cmd] = ["a", "b", "c"].map(cmd_recording_start_end);
    let a = job.spawn(&argv(&["--lockname", "a", "--lease", "r=1:1"], &a_cmd));
    job.wait_for_pid("a.pid").await;
    // b waits at the semaphore and c behind it, both through the proxy.
    let b = via.spawn(&argv(&["--lockname", "b", "--lease", "r=1:1"], &b_cmd));
    await_no_room(&job, b.id().unwrap(), "r").await;
    let c = via.spawn(&argv(&["--lockname", "c", "--lease", "r=1:1"], &c_cmd));
    await_log(&job, c.id().unwrap(), "waiting behind").await;

    proxy.reset_all();
    // While requests are held, a's end wakes b, whose next request is cut off by a reset.
    proxy.block_requests();
    job.go("a");
    finish_ok(a).await;
    proxy.reset_all();
    proxy.heal();

    for name in ["b", "c"] {
        job.go(name);
    }
    finish_ok(b).await;
    finish_ok(c).await;
    let recs = records(&job);
    assert_eq!(max_overlap(&recs), 1, "{recs:?}");
    assert_eq!(recs.len(), 6, "{recs:?}");
    assert!(
        position(&recs, "start b") < position(&recs, "start c"),
        "{recs:?}"
    );
    assert!(children(&client, &q).await.is_empty());
}

/// A waiter whose session expires has lost its place: that is ZooKeeper going away (69), not
/// a skip (0), and its nodes are gone.
#[tokio::test]
async fn session_lost_while_waiting_is_not_a_skip() {
    let (job, client) = leased_job("expired-wait", json!({}), &["r"]).await;
    let proxy = Proxy::start(&shared_ensemble().client_ports());
    let via = Via::new(&job, &proxy.connect_string());
    let a = holding(&job, "a", "r=1:1").await;
    let b = via.spawn(&["--lockname", "b", "--lease", "r=1:1", "true"]);
    await_no_room(&job, b.id().unwrap(), "r").await;

    proxy.blackhole();
    await_children(&client, &job.queue_path("r"), "b's session expires", |k| {
        k.is_empty()
    })
    .await;
    let (code, stderr) = finish(b).await;
    assert_eq!(code, 69, "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("switchman: ZooKeeper unavailable:") && l.contains("session")),
        "{stderr}"
    );

    job.go("a");
    finish_ok(a).await;
}

/// Creates the ephemeral sequential node `BASE<sequence>` as another copy of the program on
/// another host would (its data naming that host and a pid); returns its path.
async fn create_as_other(client: &Client, base: &str) -> String {
    let ephemeral = CreateMode::EphemeralSequential.with_acls(Acls::anyone_all());
    let (_, seq) = client
        .create(base, b"other.example.com 1", &ephemeral)
        .await
        .unwrap();
    format!("{base}{seq}")
}

/// Another copy (the original, say) holding the semaphore's guard mutex is waited for, and the
/// lease it takes under the guard is counted.
#[tokio::test]
async fn guard_held_elsewhere_is_honoured() {
    let (job, client) = leased_job("guard", json!({}), &["r"]).await;
    let folder = CreateMode::Persistent.with_acls(Acls::anyone_all());
    client.mkdir(&job.guard_path("r"), &folder).await.unwrap();
    client.mkdir(&job.leases_path("r"), &folder).await.unwrap();
    let other_guard = create_as_other(&client, &format!("{}/acquire-", job.guard_path("r"))).await;

    let a_cmd = cmd_recording_start_end("a");
    let a = job.spawn(&argv(&["--lockname", "a", "--lease", "r=1:1"], &a_cmd));
    let pid = a.id().unwrap();
    await_log(&job, pid, &format!("waiting behind {other_guard}")).await;
    assert!(!job.file("a.pid").exists());

    // The other copy takes the only unit under its guard, then lets go of the guard.
    let other_lease = create_as_other(&client, &format!("{}/1_1_", job.leases_path("r"))).await;
    client.delete(&other_guard, None).await.unwrap();
    await_no_room(&job, pid, "r").await;
    assert!(!job.file("a.pid").exists());

    client.delete(&other_lease, None).await.unwrap();
    job.wait_for_pid("a.pid").await;
    job.go("a");
    finish_ok(a).await;
    assert_eq!(
        children(&client, &job.guard_path("r")).await,
        Vec::<String>::new()
    );
}

/// An uncontended run with a lock and one lease costs at most ten requests (benches/README.md:
/// "What a lease run asks of ZooKeeper", where each is named): connect; the prefix data, the lock's
/// node and the queue in one read; one transaction joining the queue; one read of the queue; the
/// semaphore's guard node, made only once the queue shows us first; one read of the guard's queue
/// and the leases; one transaction making the lease, letting go of the guard, leaving the queue and
/// creating the lock; a read of the lock with a watch; the lease's watch; close.
#[tokio::test]
async fn an_uncontended_lease_costs_few_requests() {
    let ensemble = Ensemble::start(1);
    let job = Job::new(
        "requests",
        &ensemble.connect_string(),
        json!({"session_timeout": 10}),
    );
    let client = support::zk(&ensemble.connect_string()).await;
    support::set_prefix_data(&client, &job.prefix, r#"{"resources": ["r"]}"#).await;
    let args = ["--lockname", "L", "--lease", "r=1:1", "true"];
    // A first run makes the folders.
    assert_eq!(job.run(&args).await.0, 0);
    let cost = job.least_packets(&ensemble, &args).await;
    assert!(cost <= 10, "an uncontended lease run sent {cost} packets");
}

/// Replays a server's transactions under `prefix`: for every guard node made there, whether the
/// session that made it had the oldest item in the resource's queue at that moment (the original's
/// rule, docs/guide.md: "Leases"). Returns how many guard nodes were made, and a line for each made
/// by a session that was not first in line.
fn guards_made_off_the_head(txns: &[Txn], prefix: &str) -> (usize, Vec<String>) {
    let queues = format!("{prefix}/queues/");
    let semaphores = format!("{prefix}/semaphores/");
    // (queue folder, sequence) -> the session whose item it is.
    let mut items: BTreeMap<(String, u64), i64> = BTreeMap::new();
    let (mut made, mut off) = (0, Vec::new());
    for txn in txns {
        for op in &txn.ops {
            match op {
                TxnOp::Create(path) | TxnOp::Delete(path)
                    if path.strip_prefix(&queues).is_some_and(|p| p.contains('/')) =>
                {
                    let (folder, name) = path.rsplit_once('/').unwrap();
                    let key = (folder.to_string(), seq(name));
                    match op {
                        TxnOp::Create(_) => items.insert(key, txn.session),
                        TxnOp::Delete(_) => items.remove(&key),
                    };
                }
                TxnOp::Create(path) if path.starts_with(&semaphores) && path.contains("/lock/") => {
                    made += 1;
                    let res = path[semaphores.len()..].split('/').next().unwrap();
                    let queue = format!("{queues}{res}");
                    let head = items
                        .range((queue.clone(), 0)..)
                        .next()
                        .filter(|((folder, _), _)| *folder == queue);
                    if head.map(|(_, session)| *session) != Some(txn.session) {
                        off.push(format!(
                            "zxid {:#x}: session {:#x} made {path}; first in {queue}: {head:?}",
                            txn.zxid, txn.session
                        ));
                    }
                }
                _ => {}
            }
        }
    }
    (made, off)
}

/// Fifteen runs of `joiner` (whose `resources_wait_timeout` is a second) join the line for `r`
/// at once, each with a lock of its own, and give up at its end (exit 75).
async fn join_in_a_burst(joiner: &Job, burst: usize) {
    let runs: Vec<Child> = (0..15)
        .map(|i| {
            let lock = format!("b{burst}-{i}");
            joiner.spawn(&["--lockname", &lock, "--lease", "r=1:2", "true"])
        })
        .collect();
    for run in runs {
        let (code, stderr) = finish(run).await;
        assert_eq!(code, 75, "{stderr}");
    }
}

/// Issue 19: a guard node is made only by a run first in its resource's queue, under bursts of
/// runs joining behind one that waits there for room; checked against every transaction the
/// server wrote, so no short-lived node escapes. The original's guard mutex can loop for ever
/// on a guard node that goes between its listing and its `exists`; a run first in line is the
/// only one whose guard node it never looks at.
#[tokio::test]
async fn guard_nodes_are_made_only_at_the_head_of_the_line() {
    let ensemble = Ensemble::start(1);
    let job = Job::new("head", &ensemble.connect_string(), json!({}));
    let client = support::zk(&ensemble.connect_string()).await;
    support::set_prefix_data(&client, &job.prefix, r#"{"resources": ["r"]}"#).await;
    let h1 = holding(&job, "h1", "r=1:2").await;
    let h2 = holding(&job, "h2", "r=1:2").await;
    let w_cmd = cmd_waiting("w", 0);
    let w = job.spawn(&argv(&["--lockname", "w", "--lease", "r=1:2"], &w_cmd));
    await_no_room(&job, w.id().unwrap(), "r").await;

    // Bursts of runs queue behind w and give up after a second (exit 75).
    let joiner = job.other_host(json!({"resources_wait_timeout": 1}));
    for burst in 0..4 {
        join_in_a_burst(&joiner, burst).await;
    }

    job.go("h1");
    finish_ok(h1).await;
    job.wait_for_pid("w.pid").await;
    job.go("w");
    finish_ok(w).await;
    job.go("h2");
    finish_ok(h2).await;

    let txns = support::transactions(&ensemble.root_dir().join("member-1/data"), &job.prefix);
    let (made, off) = guards_made_off_the_head(&txns, &job.prefix);
    assert!(
        made >= 3,
        "the holders' and w's guard nodes, at least: {made}"
    );
    assert!(
        off.is_empty(),
        "guard nodes made off the head of the line:\n{}",
        off.join("\n")
    );
}

/// How the original takes a lease (Net::ZooKeeper::Semaphore 0.02 under App::Switchman 1.16):
/// it joins the resource's queue and waits until first, then, polling, makes a guard node
/// (Net::ZooKeeper::Lock 0.03), lists the guard's folder, and calls `exists` on the node just
/// ahead of its own, without listing again: if that node is gone by then, the original calls
/// `exists` for ever. That is reported here as `Err`, instead of looping. Under the guard it
/// sums the leases and makes its own if it fits, then deletes its guard node.
async fn lease_as_the_original(client: &Client, job: &Job, res: &str) -> Result<String, String> {
    let data = b"other.example.com 1";
    let ephemeral = CreateMode::EphemeralSequential.with_acls(Acls::anyone_all());
    let folder = CreateMode::Persistent.with_acls(Acls::anyone_all());
    let queue = job.queue_path(res);
    client.mkdir(&queue, &folder).await.unwrap();
    let (_, ours) = client
        .create(&format!("{queue}/orig-"), data, &ephemeral)
        .await
        .unwrap();
    loop {
        let items = children(client, &queue).await;
        let Some(ahead) = items.iter().rfind(|i| seq(i) < ours.into_i64() as u64) else {
            break;
        };
        if let (Some(_), watch) = client
            .check_and_watch_stat(&format!("{queue}/{ahead}"))
            .await
            .unwrap()
        {
            watch.changed().await;
        }
    }
    let guards = job.guard_path(res);
    let leases = job.leases_path(res);
    client.mkdir(&guards, &folder).await.unwrap();
    client.mkdir(&leases, &folder).await.unwrap();
    loop {
        let (_, n) = client
            .create(&format!("{guards}/acquire-"), data, &ephemeral)
            .await
            .unwrap();
        let guard = format!("{guards}/acquire-{n}");
        loop {
            let mut less: Vec<String> = children(client, &guards)
                .await
                .into_iter()
                .map(|c| format!("{guards}/{c}"))
                .filter(|c| *c < guard)
                .collect();
            less.sort();
            let Some(ahead) = less.pop() else { break };
            match client.check_and_watch_stat(&ahead).await.unwrap() {
                (None, _) => {
                    return Err(format!(
                        "{ahead}, ahead of {guard}, went between the listing and the exists"
                    ));
                }
                (Some(_), watch) => {
                    watch.changed().await;
                }
            }
        }
        let used: u64 = children(client, &leases)
            .await
            .iter()
            .map(|l| l.split('_').next().unwrap().parse::<u64>().unwrap())
            .sum();
        let made = if used < 2 {
            let (_, n) = client
                .create(&format!("{leases}/1_2_"), data, &ephemeral)
                .await
                .unwrap();
            Some(format!("{leases}/1_2_{n}"))
        } else {
            None
        };
        client.delete(&guard, None).await.unwrap();
        if let Some(lease) = made {
            return Ok(lease);
        }
        // The original polls once a second; faster here, for more chances to meet a guard node.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

/// Issue 19: the original, first in line for a full `1:2` resource, never finds a guard node
/// ahead of its own go between its listing and its `exists` (where it would loop for ever)
/// while bursts of switchman runs join the line behind it, even with each of its `exists` held
/// back by the proxy to widen that window; and once a holder leaves it gets its lease, and a
/// fresh run after it gets one too.
#[tokio::test(flavor = "multi_thread")]
async fn the_original_never_spins_while_runs_join_behind_it() {
    let (job, _client) = leased_job("spin", json!({}), &["r"]).await;
    let h1 = holding(&job, "h1", "r=1:2").await;
    let h2 = holding(&job, "h2", "r=1:2").await;
    let proxy = Proxy::start_framed(&shared_ensemble().client_ports());
    proxy.pause_each(
        Trigger::op(3).path_containing("/lock/acquire-"),
        std::time::Duration::from_millis(50),
    );
    let original_client = support::zk(&proxy.connect_string()).await;
    let original = {
        let job = job.other_host(json!({}));
        tokio::spawn(async move {
            let leased = lease_as_the_original(&original_client, &job, "r").await;
            (leased, original_client)
        })
    };
    await_item(&_client, &job.queue_path("r"), "orig").await;

    let joiner = job.other_host(json!({"resources_wait_timeout": 1}));
    for burst in 0..6 {
        join_in_a_burst(&joiner, burst).await;
        // Ended while the resource is full: it found a guard node gone (below).
        if original.is_finished() {
            break;
        }
    }

    job.go("h1");
    finish_ok(h1).await;
    let (leased, original_client) = original.await.unwrap();
    let lease = leased.expect("the original gets its lease, never looping");
    original_client.delete(&lease, None).await.unwrap();
    drop(original_client);
    let fresh = job.run(&["--wait", "5s", "--lease", "r=1:2", "true"]).await;
    assert_eq!(fresh.0, 0, "{}", fresh.1);
    job.go("h2");
    finish_ok(h2).await;
}

/// Issue 19: a run whose task already waits in a resource's queue sees so before it joins, and
/// makes no item there only to delete it a moment later: without `--wait` it skips, with it it
/// waits until the task's item is gone. Checked against every transaction the server wrote:
/// no item of a task is made while another of the same task is in the queue.
#[tokio::test]
async fn a_queued_task_is_seen_before_joining() {
    let ensemble = Ensemble::start(1);
    let job = Job::new("seen", &ensemble.connect_string(), json!({}));
    let client = support::zk(&ensemble.connect_string()).await;
    support::set_prefix_data(&client, &job.prefix, r#"{"resources": ["r"]}"#).await;
    let a = holding(&job, "a", "r=1:1").await;
    let b_cmd = cmd_waiting("b", 0);
    let b = job.spawn(&argv(&["--lockname", "t", "--lease", "r=1:1"], &b_cmd));
    let q = job.queue_path("r");
    await_item(&client, &q, "t").await;

    let (code, stderr) = job
        .run(&["--lockname", "t", "--lease", "r=1:1", "true"])
        .await;
    assert_eq!((code, stderr.as_str()), (0, ""), "a skip is silent");
    let c_cmd = cmd_waiting("c", 0);
    let c = job.spawn(&argv(
        &["--lockname", "t", "--lease", "r=1:1", "--wait", "30s"],
        &c_cmd,
    ));
    await_log(&job, c.id().unwrap(), "waiting for").await;

    job.go("a");
    finish_ok(a).await;
    job.wait_for_pid("b.pid").await;
    job.go("b");
    finish_ok(b).await;
    job.wait_for_pid("c.pid").await;
    job.go("c");
    finish_ok(c).await;

    let txns = support::transactions(&ensemble.root_dir().join("member-1/data"), &job.prefix);
    let mut waiting: Vec<&str> = Vec::new();
    let mut made = 0;
    for op in txns.iter().flat_map(|t| &t.ops) {
        match op {
            TxnOp::Create(path) if path.starts_with(&format!("{q}/t-")) => {
                assert!(waiting.is_empty(), "{path} made while {waiting:?} waited");
                waiting.push(path);
                made += 1;
            }
            TxnOp::Delete(path) => waiting.retain(|w| w != path),
            _ => {}
        }
    }
    assert_eq!(made, 2, "b's item and then c's");
}
