//! End-to-end tests of `--group` (docs/guide.md: "Groups"): membership through nesting and loops,
//! the host override, undefined groups, and the live watch on the prefix data while CMD runs.
//! Each "host" is a switchman run with its own FQDN, given by `SWITCHMAN_FQDN` or the config
//! key `fqdn`.

use switchman_test_support as support;

use serde_json::json;
use support::{
    Job, argv, await_item, cmd_noting_run, cmd_waiting, finish, finish_ok, run_command,
    set_prefix_data, shared_ensemble, spawn_command, zk,
};
use tokio::process::{Child, Command};
use zookeeper_client::Client;

/// `switchman ARGS` on the host `fqdn` (through `SWITCHMAN_FQDN`).
fn as_host(job: &Job, fqdn: &str, args: &[&str]) -> Command {
    let mut cmd = job.command(args);
    cmd.env("SWITCHMAN_FQDN", fqdn);
    cmd
}

/// `switchman ARGS` on the host named by the config's `fqdn` key.
fn as_configured_host(job: &Job, args: &[&str]) -> Command {
    let mut cmd = job.command(args);
    cmd.env_remove("SWITCHMAN_FQDN");
    cmd
}

/// What `cmd_noting_run` CMDs of `job` noted: the names of those that ran, one a line.
fn ran(job: &Job) -> String {
    job.read("ran")
}

/// A host in group `g` (and only there) running CMD `a`, which ends with `code` once let go;
/// returns the job (named `name`), a client, and the running switchman.
async fn member_of_g_running(name: &str, code: i32) -> (Job, Client, Child) {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new(name, &zk_hosts, json!({}));
    let client = zk(&zk_hosts).await;
    set_prefix_data(
        &client,
        &job.prefix,
        r#"{"groups": {"g": ["a.example.com"]}}"#,
    )
    .await;
    let cmd = cmd_waiting("a", code);
    let a = spawn_command(as_host(&job, "a.example.com", &argv(&["-g", "g"], &cmd)));
    job.wait_for_pid("a.pid").await;
    (job, client, a)
}

#[tokio::test]
async fn nested_groups_reach_the_host_and_loops_end() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("nested", &zk_hosts, json!({}));
    let client = zk(&zk_hosts).await;
    set_prefix_data(
        &client,
        &job.prefix,
        r#"{"groups": {
            "all": ["edge", "ring-a"],
            "edge": "mid",
            "mid": ["deep.example.com"],
            "ring-a": ["ring-b", "ra.example.com"],
            "ring-b": ["ring-c"],
            "ring-c": ["ring-a", "rc.example.com"],
            "self": ["self"]
        }}"#,
    )
    .await;

    // Three levels down, through a group given as a single string.
    let cmd = cmd_noting_run("deep-in-all", 5);
    let (code, stderr) = run_command(as_host(
        &job,
        "deep.example.com",
        &argv(&["-g", "all"], &cmd),
    ))
    .await;
    assert_eq!(code, 5, "CMD ran and its code came back: {stderr}");
    // Through a loop: ring-b -> ring-c -> ring-a -> ring-b.
    let cmd = cmd_noting_run("rc-in-ring-b", 6);
    let (code, stderr) = run_command(as_host(
        &job,
        "rc.example.com",
        &argv(&["--group", "ring-b"], &cmd),
    ))
    .await;
    assert_eq!(code, 6, "{stderr}");
    let cmd = cmd_noting_run("ra-in-ring-c", 7);
    let (code, stderr) = run_command(as_host(
        &job,
        "ra.example.com",
        &argv(&["--group=ring-c"], &cmd),
    ))
    .await;
    assert_eq!(code, 7, "{stderr}");
    assert_eq!(ran(&job), "deep-in-all\nrc-in-ring-b\nra-in-ring-c\n");

    // A loop that does not contain the host ends (finish() gives up after 60 s) in a skip.
    for (host, group) in [
        ("deep.example.com", "ring-a"),
        ("deep.example.com", "self"),
        ("mid", "all"),
        ("edge", "all"),
    ] {
        let cmd = cmd_noting_run("wrong", 9);
        let child = spawn_command(as_host(&job, host, &argv(&["-g", group], &cmd)));
        let (code, stderr) = finish(child).await;
        assert_eq!(
            (code, stderr.as_str()),
            (0, ""),
            "{host} is not in {group}: a silent skip"
        );
    }
    assert_eq!(ran(&job), "deep-in-all\nrc-in-ring-b\nra-in-ring-c\n");
}

#[tokio::test]
async fn only_the_member_runs_and_the_other_host_touches_nothing() {
    let zk_hosts = shared_ensemble().connect_string();
    let member = Job::new("member", &zk_hosts, json!({"fqdn": "in.example.com"}));
    let outsider = member.other_host(json!({"fqdn": "out.example.com"}));
    let client = zk(&zk_hosts).await;
    set_prefix_data(
        &client,
        &member.prefix,
        r#"{"groups": {"g": ["in.example.com"]}, "resources": ["r"]}"#,
    )
    .await;
    let cmd = cmd_noting_run("ran", 0);
    let args = argv(&["-g", "g", "--lockname", "j", "--lease", "r=1:1"], &cmd);

    let (code, stderr) = run_command(as_configured_host(&outsider, &args)).await;
    assert_eq!(
        (code, stderr.as_str()),
        (0, ""),
        "not in the group: skipped, silently"
    );
    assert_eq!(ran(&outsider), "", "CMD did not run on the other host");
    // Skipped before any lock or queue was touched.
    assert_eq!(
        client.list_children(&member.prefix).await.unwrap(),
        Vec::<String>::new(),
        "no locks/, queues/ or semaphores/ under the prefix"
    );
    let (code, _) = run_command(as_configured_host(
        &outsider,
        &[&["--busy-exit-code", "75"][..], &args].concat(),
    ))
    .await;
    assert_eq!(code, 75, "the busy code applies to a group skip");

    let (code, stderr) = run_command(as_configured_host(&member, &args)).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(ran(&member), "ran\n", "the member ran CMD");

    // SWITCHMAN_FQDN wins over the config key.
    let (code, stderr) = run_command(as_host(&outsider, "in.example.com", &args)).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(ran(&outsider), "ran\n");
    let (code, stderr) = run_command(as_host(&member, "out.example.com", &args)).await;
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert_eq!(
        ran(&member),
        "ran\n",
        "overridden out of the group: skipped"
    );
}

#[tokio::test]
async fn undefined_group_is_a_config_error_and_writes_nothing() {
    let zk_hosts = shared_ensemble().connect_string();
    let client = zk(&zk_hosts).await;
    let cmd = cmd_noting_run("ran", 0);
    let args = argv(&["-g", "nosuch", "--lockname", "j"], &cmd);

    // Defined groups, but not this one.
    let job = Job::new("undefined", &zk_hosts, json!({}));
    set_prefix_data(
        &client,
        &job.prefix,
        r#"{"groups": {"g": ["h.example.com"]}}"#,
    )
    .await;
    let (code, stderr) = run_command(as_host(&job, "h.example.com", &args)).await;
    assert_eq!(code, 78, "{stderr}");
    assert!(stderr.contains("\"nosuch\""), "names the group: {stderr}");
    assert!(stderr.contains(&job.prefix), "names the znode: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert_eq!(ran(&job), "");
    assert_eq!(
        client.list_children(&job.prefix).await.unwrap(),
        Vec::<String>::new(),
        "nothing was written under the prefix"
    );

    // No prefix node at all: no groups.
    let job = Job::new("no-prefix", &zk_hosts, json!({}));
    let (code, stderr) = run_command(as_host(&job, "h.example.com", &args)).await;
    assert_eq!(code, 78, "{stderr}");
    assert!(stderr.contains("\"nosuch\""), "{stderr}");
    assert_eq!(
        client.check_stat(&job.prefix).await.unwrap(),
        None,
        "the prefix was not created"
    );

    // Prefix data that does not parse: a config error too, before anything is written.
    let job = Job::new("bad-prefix", &zk_hosts, json!({}));
    set_prefix_data(&client, &job.prefix, r#"{"groups": {"g": [1]}}"#).await;
    let (code, stderr) = run_command(as_host(&job, "h.example.com", &args)).await;
    assert_eq!(code, 78, "{stderr}");
    assert!(stderr.contains("group \"g\""), "{stderr}");
    assert_eq!(
        client.list_children(&job.prefix).await.unwrap(),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn cmd_is_stopped_when_the_host_leaves_the_group() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("leaves", &zk_hosts, json!({}));
    let client = zk(&zk_hosts).await;

    // Removed from a nested group: g -> inner -> a.
    set_prefix_data(
        &client,
        &job.prefix,
        r#"{"groups": {"g": ["inner", "b.example.com"], "inner": ["a.example.com"]}}"#,
    )
    .await;
    let cmd = cmd_waiting("a", 0);
    let a = spawn_command(as_host(
        &job,
        "a.example.com",
        &argv(&["-g", "g", "--lockname", "j"], &cmd),
    ));
    job.wait_for_pid("a.pid").await;
    client
        .set_data(
            &job.prefix,
            br#"{"groups": {"g": ["inner", "b.example.com"], "inner": ["c.example.com"]}}"#,
            None,
        )
        .await
        .unwrap();
    let (code, stderr) = finish(a).await;
    assert_eq!(code, 79, "{stderr}");
    assert!(
        stderr.contains("a.example.com was removed from group g"),
        "{stderr}"
    );
    assert_eq!(job.read("a.term"), "term\n", "CMD got SIGTERM");
    assert_eq!(
        client.check_stat(&job.lock_path("j")).await.unwrap(),
        None,
        "the lock is released"
    );

    // The group itself deleted.
    let cmd = cmd_waiting("b", 0);
    let b = spawn_command(as_host(&job, "b.example.com", &argv(&["-g", "g"], &cmd)));
    job.wait_for_pid("b.pid").await;
    client
        .set_data(&job.prefix, br#"{"groups": {}}"#, None)
        .await
        .unwrap();
    let (code, stderr) = finish(b).await;
    assert_eq!(code, 79, "{stderr}");
    assert!(stderr.contains("group g was removed"), "{stderr}");
    assert!(job.file("b.term").exists(), "CMD got SIGTERM");
}

#[tokio::test]
async fn a_change_that_keeps_the_host_leaves_cmd_alone() {
    let (job, client, a) = member_of_g_running("keeps", 3).await;

    // The host stays, now through a nested group; other groups and resources change.
    client
        .set_data(
            &job.prefix,
            br#"{"groups": {"g": ["sub", "b.example.com"], "sub": "a.example.com",
                 "new": ["c.example.com"]}, "resources": ["r"]}"#,
            None,
        )
        .await
        .unwrap();
    job.wait_for_log(1, &["a.example.com is still in group g"])
        .await;
    // And another change, back to fewer groups.
    client
        .set_data(
            &job.prefix,
            br#"{"groups": {"g": ["sub"], "sub": "a.example.com"}}"#,
            None,
        )
        .await
        .unwrap();
    job.wait_for_log(2, &["a.example.com is still in group g"])
        .await;

    job.go("a");
    let (code, stderr) = finish(a).await;
    assert_eq!(code, 3, "CMD ran to its own end: {stderr}");
    assert!(!job.file("a.term").exists(), "CMD was never signalled");
    assert_eq!(stderr, "", "nothing to say on stderr");
}

#[tokio::test]
async fn bad_prefix_data_written_mid_run_leaves_cmd_alone() {
    let (job, client, a) = member_of_g_running("bad-mid-run", 4).await;

    // Broken JSON, then JSON of the wrong shape, then a group member of the wrong type: each
    // is logged and ignored, the last good groups stand.
    let bad: [&[u8]; 3] = [
        br#"{"groups": {"g": ["#,
        b"[]",
        br#"{"groups": {"g": [1]}}"#,
    ];
    for (n, data) in bad.iter().enumerate() {
        client.set_data(&job.prefix, data, None).await.unwrap();
        job.wait_for_log(n + 1, &["ignoring the new data"]).await;
    }
    // The watch is still armed after the bad data: a good change is seen.
    client
        .set_data(
            &job.prefix,
            br#"{"groups": {"g": ["a.example.com"]}}"#,
            None,
        )
        .await
        .unwrap();
    job.wait_for_log(1, &["a.example.com is still in group g"])
        .await;

    job.go("a");
    let (code, stderr) = finish(a).await;
    assert_eq!(code, 4, "CMD ran to its own end: {stderr}");
    assert!(!job.file("a.term").exists(), "CMD was never signalled");
    assert_eq!(
        stderr.matches("ignoring the new data").count(),
        3,
        "each bad write is reported loudly on stderr: {stderr}"
    );
}

/// A run that waits for a lease while its host is taken out of the group must not start CMD
/// once the lease comes: it skips.
#[tokio::test]
async fn leaving_the_group_while_waiting_for_a_lease_skips() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("leaves-waiting", &zk_hosts, json!({}));
    let client = zk(&zk_hosts).await;
    set_prefix_data(
        &client,
        &job.prefix,
        r#"{"groups": {"g": ["a.example.com", "b.example.com"]}, "resources": ["r"]}"#,
    )
    .await;
    let holder_cmd = cmd_waiting("a", 0);
    let holder = spawn_command(as_host(
        &job,
        "a.example.com",
        &argv(&["--lease", "r=1:1", "--lockname", "first"], &holder_cmd),
    ));
    job.wait_for_pid("a.pid").await;
    let cmd = cmd_noting_run("b", 0);
    let waiter = spawn_command(as_host(
        &job,
        "b.example.com",
        &argv(
            &["-g", "g", "--lease", "r=1:1", "--lockname", "second"],
            &cmd,
        ),
    ));
    await_item(&client, &job.queue_path("r"), "second").await;
    client
        .set_data(
            &job.prefix,
            br#"{"groups": {"g": ["a.example.com"]}, "resources": ["r"]}"#,
            None,
        )
        .await
        .unwrap();
    // The waiter gives up while the lease is still held elsewhere.
    let (code, stderr) = finish(waiter).await;
    assert_eq!((code, stderr.as_str()), (0, ""), "a silent skip");
    assert_eq!(
        client.list_children(&job.queue_path("r")).await.unwrap(),
        Vec::<String>::new(),
        "nothing left queued"
    );
    job.go("a");
    finish_ok(holder).await;
    assert_eq!(
        ran(&job),
        "",
        "CMD never ran on the host that left the group"
    );
}
