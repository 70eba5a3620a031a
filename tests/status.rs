//! End-to-end tests of seeing and steering the fleet, against a real ZooKeeper: `switchmanctl
//! status` (people, JSON, filters, `--watch`), `stop`, `get-data --json`, the holder named by a
//! skipped run, and the logfile's line for every run. Nodes in the Perl original's layout are
//! made by a plain client, as the original would leave them.

use switchman_test_support as support;

use serde_json::{Value, json};
use support::{
    Ensemble, Job, PATIENCE, await_children, cmd_waiting, finish, finish_ok, has_item, lock_argv,
    set_prefix_data, shared_ensemble, switchmanctl_bin, tree, wait_for_file, zk,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use zookeeper_client::{Acls, Client, CreateMode};

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn ctl(job: &Job, args: &[&str]) -> Out {
    let out = job.ctl_command(args).output().await.unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn status_json(job: &Job, args: &[&str]) -> Value {
    let out = ctl(job, &[&["status", "--json"][..], args].concat()).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

/// switchman as host `fqdn`, running ARGS.
fn spawn_as(job: &Job, fqdn: &str, args: &[&str]) -> Child {
    let mut cmd = job.command(args);
    cmd.env("SWITCHMAN_FQDN", fqdn);
    cmd.spawn().expect("start switchman")
}

/// A node made as another (Perl) switchman would: ephemeral, with `data`, folders made first.
async fn perl_node(client: &Client, path: &str, data: &[u8], sequential: bool) -> String {
    let folder = CreateMode::Persistent.with_acls(Acls::anyone_all());
    client
        .mkdir(&path[..path.rfind('/').unwrap()], &folder)
        .await
        .unwrap();
    let mode = if sequential {
        CreateMode::EphemeralSequential
    } else {
        CreateMode::Ephemeral
    };
    let (_, seq) = client
        .create(path, data, &mode.with_acls(Acls::anyone_all()))
        .await
        .unwrap();
    if sequential {
        format!("{path}{seq}")
    } else {
        path.to_string()
    }
}

fn is_rfc3339_utc(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

#[tokio::test]
async fn status_shows_holders_waiters_and_leases_of_both_implementations() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("status", &zk_hosts, json!({}));
    let client = zk(&zk_hosts).await;
    set_prefix_data(
        &client,
        &job.prefix,
        r#"{"groups": {"backup-hosts": ["web1.example"], "all": ["backup-hosts", "web2.example"]},
            "resources": ["db"]}"#,
    )
    .await;
    let p = &job.prefix;
    // The Perl original's nodes: a lock and a lease of db, and a lock node with junk data.
    perl_node(
        &client,
        &format!("{p}/locks/perl-job"),
        b"perl.example 999",
        false,
    )
    .await;
    let perl_lease = perl_node(
        &client,
        &format!("{p}/semaphores/db/leases/1_2_"),
        b"perl.example 999",
        true,
    )
    .await;
    perl_node(
        &client,
        &format!("{p}/locks/junk"),
        b"\0not a holder\n",
        false,
    )
    .await;

    // Our holder of "backup", and "big", which waits first in db's queue for room for 2 of 2.
    let a_cmd = cmd_waiting("a", 0);
    let a = spawn_as(&job, "web1.example", &lock_argv("backup", &a_cmd));
    let a_pid = a.id().unwrap();
    let token = job.fencing_token("a").await;
    let big_cmd = cmd_waiting("big", 0);
    let big_args = [&["--lease", "db=2:2"][..], &lock_argv("big", &big_cmd)].concat();
    let big = spawn_as(&job, "web2.example", &big_args);
    let big_pid = big.id().unwrap();
    let queue = format!("{p}/queues/db");
    await_children(&client, &queue, "big queues", |c| has_item(c, "big")).await;
    // A Perl waiter behind it.
    let perl_item = perl_node(
        &client,
        &format!("{queue}/perl-job-"),
        b"perl.example 999",
        true,
    )
    .await;

    let s = status_json(&job, &[]).await;
    assert_eq!(s["prefix"], json!(p));
    assert_eq!(s["warnings"], json!([]));
    let locks = s["locks"].as_array().unwrap();
    let names: Vec<&str> = locks.iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["backup", "junk", "perl-job"]);
    assert_eq!(locks[0]["host"], "web1.example");
    assert_eq!(locks[0]["pid"], json!(a_pid));
    assert_eq!(locks[0]["token"], json!(token), "the token CMD was given");
    assert_eq!(locks[0]["data"], Value::Null);
    assert!(
        is_rfc3339_utc(locks[0]["since"].as_str().unwrap()),
        "{}",
        locks[0]
    );
    assert_eq!(
        (&locks[1]["host"], &locks[1]["pid"], &locks[1]["data"]),
        (&Value::Null, &Value::Null, &json!("\0not a holder\n")),
        "junk is shown raw"
    );
    assert_eq!(
        (&locks[2]["host"], &locks[2]["pid"]),
        (&json!("perl.example"), &json!(999))
    );

    let queues = s["queues"].as_array().unwrap();
    assert_eq!(queues.len(), 1, "{queues:?}");
    assert_eq!(queues[0]["resource"], "db");
    let waiters = queues[0]["waiters"].as_array().unwrap();
    let seq = |path: &str| path[path.len() - 10..].parse::<i64>().unwrap();
    assert_eq!(waiters.len(), 2, "{waiters:?}");
    assert_eq!(
        (&waiters[0]["task"], &waiters[0]["host"], &waiters[0]["pid"]),
        (&json!("big"), &json!("web2.example"), &json!(big_pid))
    );
    assert_eq!(
        (&waiters[1]["task"], &waiters[1]["host"], &waiters[1]["seq"]),
        (
            &json!("perl-job"),
            &json!("perl.example"),
            &json!(seq(&perl_item))
        )
    );
    assert_eq!(
        (&waiters[0]["position"], &waiters[1]["position"]),
        (&json!(1), &json!(2))
    );

    let semaphores = s["semaphores"].as_array().unwrap();
    assert_eq!(semaphores.len(), 1, "{semaphores:?}");
    let db = &semaphores[0];
    assert_eq!(
        (&db["resource"], &db["total"], &db["used"]),
        (&json!("db"), &json!(2), &json!(1))
    );
    let leases = db["leases"].as_array().unwrap();
    assert_eq!(leases.len(), 1);
    assert_eq!(
        (
            &leases[0]["count"],
            &leases[0]["host"],
            &leases[0]["pid"],
            &leases[0]["seq"]
        ),
        (
            &json!(1),
            &json!("perl.example"),
            &json!(999),
            &json!(seq(&perl_lease))
        )
    );
    assert_eq!(
        s["groups"],
        json!({"all": ["web1.example", "web2.example"], "backup-hosts": ["web1.example"]})
    );

    // For people: aligned tables, one row per holder, waiter and lease.
    let out = ctl(&job, &["status"]).await;
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    let text = out.stdout;
    assert!(text.starts_with(&format!("{p} at ")), "{text}");
    let header = text.lines().find(|l| l.starts_with("LOCK ")).unwrap();
    let row = text.lines().find(|l| l.starts_with("backup ")).unwrap();
    assert_eq!(header.find("HOST"), row.find("web1.example"), "{text}");
    assert_eq!(header.find("TOKEN"), row.find(&token.to_string()), "{text}");
    assert!(row.contains(&format!(" {a_pid} ")), "{text}");
    let junk = text.lines().find(|l| l.starts_with("junk ")).unwrap();
    assert!(junk.contains(r#""\0not a holder\n""#), "{text}");
    let header = text.lines().find(|l| l.starts_with("QUEUE ")).unwrap();
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("db ")).collect();
    assert!(
        rows[0].contains(" big ") && rows[1].contains(" perl-job "),
        "{text}"
    );
    assert_eq!(header.find("TASK"), rows[0].find("big"), "{text}");
    assert!(text.contains("\nbackup-hosts  web1.example\n"), "{text}");

    // One job: its lock and its place in every queue; one resource: its queue and semaphore.
    let s = status_json(&job, &["--lock", "perl-job"]).await;
    assert_eq!(s["locks"].as_array().unwrap().len(), 1);
    let waiters = &s["queues"][0]["waiters"];
    assert_eq!(waiters.as_array().unwrap().len(), 1);
    assert_eq!(waiters[0]["position"], 2, "its place in the whole queue");
    assert_eq!((&s["semaphores"], &s["groups"]), (&json!([]), &Value::Null));
    let s = status_json(&job, &["--resource", "db"]).await;
    assert_eq!(s["locks"], json!([]));
    assert_eq!(s["queues"][0]["waiters"].as_array().unwrap().len(), 2);
    assert_eq!(s["semaphores"][0]["used"], 1);
    let s = status_json(&job, &["--resource", "nosuch"]).await;
    assert_eq!((&s["queues"], &s["semaphores"]), (&json!([]), &json!([])));
    let out = ctl(&job, &["status", "--lock", "a/b"]).await;
    assert_eq!(out.code, 64, "{}", out.stderr);

    job.go("a");
    finish_ok(a).await;
    drop(big);
}

/// The Perl original writes `"{fqdn} {pid}"` into a prefix it creates: status and get-data
/// show it for what it is and do not fail.
#[tokio::test]
async fn prefix_data_the_perl_original_wrote_is_shown_not_an_error() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("perl-prefix", &zk_hosts, json!({}));
    let client = zk(&zk_hosts).await;
    set_prefix_data(&client, &job.prefix, "web9.example 4242").await;

    let s = status_json(&job, &[]).await;
    assert_eq!(s["groups"], json!({}));
    let warnings = s["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .contains("\"web9.example 4242\""),
        "{warnings:?}"
    );
    let out = ctl(&job, &["status"]).await;
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("\nwarning: "), "{}", out.stdout);

    let out = ctl(&job, &["get-data", "--json"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        v,
        json!({"version": 1, "data": null, "raw": "web9.example 4242"})
    );
    assert!(out.stderr.contains("not JSON"), "{}", out.stderr);
}

#[tokio::test]
async fn stop_deletes_only_the_holder_with_the_token() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("stop", &zk_hosts, json!({}));
    let client = zk(&zk_hosts).await;
    let a_cmd = cmd_waiting("a", 0);
    let a = job.spawn(&lock_argv("hung", &a_cmd));
    let token = job.fencing_token("a").await;
    let path = job.lock_path("hung");

    // Aimed at an older run: refused, the holder runs on.
    let older = (token - 1).to_string();
    let out = ctl(&job, &["stop", "hung", "--if-token", &older]).await;
    assert_eq!((out.code, out.stdout.as_str()), (1, ""), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("token {token}, not {older}")),
        "{}",
        out.stderr
    );
    assert!(client.check_stat(&path).await.unwrap().is_some());

    let out = ctl(&job, &["stop", "hung", "--if-token", &token.to_string()]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with(&format!("stopped: deleted {path}")),
        "{}",
        out.stdout
    );
    let (code, stderr) = finish(a).await;
    assert_eq!(code, 79, "the holder stopped its CMD: {stderr}");
    assert!(job.file("a.term").exists(), "CMD got SIGTERM");

    // Nothing left to stop.
    let out = ctl(&job, &["stop", "hung"]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("nothing to stop"), "{}", out.stderr);

    // A Perl holder's lock node goes the same way (it notices within its one-second check).
    let perl = perl_node(&client, &job.lock_path("perl"), b"perl.example 999", false).await;
    let out = ctl(&job, &["stop", "perl"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("perl.example pid 999"),
        "{}",
        out.stdout
    );
    assert_eq!(client.check_stat(&perl).await.unwrap(), None);

    assert_eq!(ctl(&job, &["stop", ".."]).await.code, 64);
}

#[tokio::test]
async fn a_skipped_run_names_the_holder() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("skip-holder", &zk_hosts, json!({"loglevel": "info"}));
    let client = zk(&zk_hosts).await;
    set_prefix_data(&client, &job.prefix, r#"{"resources": ["db"]}"#).await;
    let a_cmd = cmd_waiting("a", 0);
    let a = spawn_as(&job, "web1.example", &lock_argv("backup", &a_cmd));
    let a_pid = a.id().unwrap();
    let token = job.fencing_token("a").await;
    let held = format!(
        "skipped: lock {} is held by web1.example pid {a_pid} since ",
        job.lock_path("backup")
    );
    let tail = format!("Z (token {token})");

    // At the default level: silent on stderr, named in the logfile.
    let (code, stderr) = job.run(&["--lockname", "backup", "true"]).await;
    assert_eq!((code, stderr.as_str()), (0, ""));
    let log = std::fs::read_to_string(job.log()).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("skipped: "))
        .expect("logged");
    assert!(
        line.contains(&format!("run{{job=backup}}: {held}")),
        "{line}"
    );
    assert!(line.ends_with(&tail), "{line}");

    // With -v on stderr; also when a lease run finds the lock held before queueing (step 4).
    for extra in [&[][..], &["--lease", "db=1:1"]] {
        let args = [&["-v", "--lockname", "backup"][..], extra, &["true"]].concat();
        let (code, stderr) = job.run(&args).await;
        assert_eq!(code, 0, "{stderr}");
        let line = stderr
            .lines()
            .find(|l| l.contains("skipped: "))
            .expect(&stderr);
        assert!(line.contains(&held) && line.ends_with(&tail), "{line}");
    }

    job.go("a");
    finish_ok(a).await;
}

/// Naming the holder of a lock we could not take costs no request more, nor a round trip: the
/// read sent right behind the create, which checks whether an existing node is ours (after a
/// lost reply) and watches ours, reads the holder's data too.
#[tokio::test]
async fn a_skipped_plain_run_costs_few_requests() {
    let ensemble = Ensemble::start(1);
    let job = Job::new(
        "skip-requests",
        &ensemble.connect_string(),
        json!({"session_timeout": 10}),
    );
    let a_cmd = cmd_waiting("a", 0);
    let a = job.spawn(&lock_argv("r", &a_cmd));
    wait_for_file(&job.file("a.pid")).await;
    // Connect, the create that fails, the read of the holder, close; the read's watch on the
    // holder's node is not removed (that would be one more).
    let mut counts = Vec::new();
    for _ in 0..3 {
        let before: u64 = ensemble.mntr(0)["zk_packets_received"].parse().unwrap();
        assert_eq!(
            job.run(&["--lockname", "r", "true"]).await,
            (0, String::new())
        );
        let after: u64 = ensemble.mntr(0)["zk_packets_received"].parse().unwrap();
        counts.push(after - before - 1);
    }
    assert!(
        counts.iter().min() <= Some(&4),
        "a skipped run sent {counts:?} packets"
    );
    job.go("a");
    finish_ok(a).await;
}

#[tokio::test]
async fn the_logfile_has_a_line_for_every_run_naming_its_job() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new(
        "runlog",
        &zk_hosts,
        json!({"loglevel": "info", "termination_timeout": 0.5}),
    );
    let client = zk(&zk_hosts).await;

    assert_eq!(
        job.run(&["--lockname", "ok", "true"]).await,
        (0, String::new())
    );
    let (code, _) = job.run(&["--no-lock", "--", "sh", "-c", "exit 3"]).await;
    assert_eq!(code, 3);
    // Stopped twice: once ending on SIGTERM, once needing SIGKILL.
    let soft_cmd = cmd_waiting("soft", 0);
    let soft = job.spawn(&lock_argv("soft", &soft_cmd));
    wait_for_file(&job.file("soft.pid")).await;
    client.delete(&job.lock_path("soft"), None).await.unwrap();
    assert_eq!(finish(soft).await.0, 79);
    let script = r#"trap '' TERM; echo $$ > "$JOB_DIR/hard.pid"; while :; do sleep 0.05; done"#;
    let hard = job.spawn(&["--lockname", "hard", "--", "sh", "-c", script]);
    wait_for_file(&job.file("hard.pid")).await;
    client.delete(&job.lock_path("hard"), None).await.unwrap();
    assert_eq!(finish(hard).await.0, 79);
    // switchman's own failure names the job too.
    let (code, stderr) = job
        .run(&["--group", "nosuch", "--lockname", "grouped", "true"])
        .await;
    assert_eq!(code, 78, "{stderr}");

    let log = std::fs::read_to_string(job.log()).unwrap();
    for line in log.lines() {
        assert!(line.contains(" run{job="), "an anonymous line: {line}");
    }
    let find = |job: &str, what: &str| {
        log.lines()
            .find(|l| l.contains(&format!("run{{job={job}}}: {what}")))
            .unwrap_or_else(|| panic!("no {what:?} line of job {job}:\n{log}"))
    };
    let started = find("ok", "started: ");
    assert!(
        started.contains(&format!("lock {} (token ", job.lock_path("ok"))),
        "{started}"
    );
    assert!(started.contains(", no leases, CMD pid "), "{started}");
    assert!(find("ok", "ended: ").contains("ended: exit code 0 after "));
    assert!(find("sh", "started: ").contains("started: no lock, no leases"));
    assert!(find("sh", "ended: ").contains("exit code 3 after"));
    let soft = find("soft", "stopped: ");
    assert!(
        soft.contains("was deleted; CMD ended ") && soft.contains("no SIGKILL needed"),
        "{soft}"
    );
    assert!(find("hard", "stopped: ").contains("SIGKILL was needed"));
    assert!(find("grouped", "config error: ").contains("nosuch"));
}

/// Reads `stdout` line by line until a line satisfies `want`.
async fn read_until(
    lines: &mut tokio::io::Lines<BufReader<ChildStdout>>,
    want: impl Fn(&str) -> bool,
) {
    let wait = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if want(&line) {
                return;
            }
        }
        panic!("the watcher's output ended");
    };
    tokio::time::timeout(PATIENCE, wait)
        .await
        .expect("the watcher did not show it within 30 s");
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn status_watch_redraws_on_each_change_and_leaves_nothing_behind() {
    let ensemble = shared_ensemble();
    let job = Job::new("watch", &ensemble.connect_string(), json!({}));
    let client = zk(&ensemble.connect_string()).await;
    set_prefix_data(&client, &job.prefix, r#"{"groups": {"g": ["h"]}}"#).await;
    let folder = CreateMode::Persistent.with_acls(Acls::anyone_all());
    client.mkdir(&job.locks_path(), &folder).await.unwrap();
    let before = sorted(tree(&client, &job.prefix).await);
    let watches = || ensemble.four_letter_word(0, "wchp").unwrap_or_default();
    let watched = |text: &str| text.lines().any(|l| l.starts_with(&job.prefix));

    let mut watcher = job.ctl_command(&["status", "--watch"]).spawn().unwrap();
    let mut lines = BufReader::new(watcher.stdout.take().unwrap()).lines();
    read_until(&mut lines, |l| l == "no locks held").await;
    assert!(watched(&watches()), "the watcher's watch is on the prefix");

    // A lock taken and given back, and an edit of the groups: each shown as it happens.
    let lock = job.lock_path("watched");
    perl_node(&client, &lock, b"web1.example 42", false).await;
    read_until(&mut lines, |l| {
        l.starts_with("watched ") && l.contains("web1.example")
    })
    .await;
    client.delete(&lock, None).await.unwrap();
    read_until(&mut lines, |l| l == "no locks held").await;
    client
        .set_data(&job.prefix, br#"{"groups": {"g": ["h", "h2"]}}"#, None)
        .await
        .unwrap();
    read_until(&mut lines, |l| l == "g      h h2").await;

    let pid = nix::unistd::Pid::from_raw(watcher.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = tokio::time::timeout(PATIENCE, watcher.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0), "^C ends the watcher cleanly");
    // It closed its session before exiting, so its watch is gone with it.
    let left = watches();
    assert!(!watched(&left), "a watch left behind:\n{left}");
    assert_eq!(
        sorted(tree(&client, &job.prefix).await),
        before,
        "nodes left behind"
    );
}

/// The manual's recipe for editing the prefix data (docs/operators.md: "Editing the prefix data"),
/// run as written, with a warning on stderr (an unknown config key) that used to break it.
#[tokio::test]
async fn the_readme_recipe_edits_prefix_data_with_a_warning_on_stderr() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("recipe", &zk_hosts, json!({"colour": "blue"}));
    let client = zk(&zk_hosts).await;
    set_prefix_data(&client, &job.prefix, "{\"groups\": {\"g\": [\"h1\"]}}\n").await;
    let bin = std::path::Path::new(switchmanctl_bin()).parent().unwrap();

    let out = ctl(&job, &["get-data", "--json"]).await;
    assert!(out.stderr.contains("colour"), "the warning: {}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v, json!({"version": 1, "data": {"groups": {"g": ["h1"]}}}));

    let recipe = r#"set -e
switchmanctl get-data --json > current.json
jq .data current.json > groups.json
# the edit
jq '.groups.g += ["h2"]' groups.json > edited.json && mv edited.json groups.json
switchmanctl set-data groups.json --if-version "$(jq .version current.json)"
"#;
    // As written: the manual's lines are the recipe's, but for the edit.
    let manual =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operators.md")).unwrap();
    for line in recipe
        .lines()
        .filter(|l| l.starts_with("switchmanctl") || l.starts_with("jq ."))
    {
        assert!(manual.contains(line), "docs/operators.md: {line}");
    }
    let out = Command::new("sh")
        .args(["-c", recipe])
        .current_dir(job.dir.path())
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .env("SWITCHMAN_CONFIG", &job.config)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v: Value = serde_json::from_str(&ctl(&job, &["get-data", "--json"]).await.stdout).unwrap();
    assert_eq!(v["version"], 2);
    assert_eq!(v["data"], json!({"groups": {"g": ["h1", "h2"]}}));

    // No prefix node yet: version -1 and empty data, as switchman reads it.
    let fresh = Job::new("recipe-fresh", &zk_hosts, json!({}));
    let out = ctl(&fresh, &["get-data", "--json"]).await;
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v, json!({"version": -1, "data": {}}));
}
