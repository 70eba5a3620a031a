//! End-to-end tests of `switchmanctl`, the operators' companion command, against a real
//! ZooKeeper: the crontab and host checks, the group listing, and get-data/set-data with its
//! compare-and-set.

use switchman_test_support as support;

use std::process::Stdio;

use serde_json::json;
use support::{Job, Out, finish, output, shared_ensemble, switchmanctl_bin, zk};
use tokio::process::Command;

const CRONTAB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/crontab");
const PREFIX_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/conf/prefix-data.json");

async fn ctl(job: &Job, args: &[&str]) -> Out {
    output(job.ctl_command(args)).await
}

/// Writes `data` to a file in the job's dir and sets it with `set-data` (no --if-version).
async fn set(job: &Job, data: &str) -> Out {
    let file = job.file("data.json");
    std::fs::write(&file, data).unwrap();
    ctl(job, &["set-data", file.to_str().unwrap()]).await
}

/// The version `get-data` prints: the last line of its stderr.
fn version(out: &Out) -> i32 {
    out.stderr
        .lines()
        .last()
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("no version on stderr: {:?}", out.stderr))
}

#[tokio::test]
async fn check_crontab_lists_lines_naming_undefined_groups() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("crontab", &zk_hosts, json!({}));
    let out = ctl(&job, &["set-data", PREFIX_DATA]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);

    let expected = [
        (21, "group \"nosuch\" is not defined"),
        (22, "group \"Web\" is not defined"),
        (23, "group \"gone group\" is not defined"),
        (24, "group \"backups\" is not defined"),
        (25, "group \"typo\" is not defined"),
        (26, "--group without a group name"),
    ]
    .iter()
    .map(|(line, what)| format!("{CRONTAB}:{line}: {what}\n"))
    .collect::<String>();
    let out = ctl(&job, &["check-crontab", CRONTAB]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.stdout, expected);
    assert_eq!(out.stderr, "");

    // The same against a JSON file, with no config and no ZooKeeper.
    let mut cmd = Command::new(switchmanctl_bin());
    cmd.args(["-c", "/nonexistent/switchman.conf", "check-crontab"])
        .args(["--data", PREFIX_DATA, CRONTAB]);
    let out = output(cmd).await;
    assert_eq!((out.code, out.stdout.as_str()), (1, expected.as_str()));

    // Only the good lines (1-18), from stdin: nothing to report.
    let good: String = std::fs::read_to_string(CRONTAB)
        .unwrap()
        .lines()
        .take(18)
        .map(|l| format!("{l}\n"))
        .collect();
    let mut cmd = job.ctl_command(&["check-crontab", "-"]);
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stdin, good.as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");

    // Once the groups are defined, the same file passes; the report names every file.
    let mut data: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(PREFIX_DATA).unwrap()).unwrap();
    for group in ["nosuch", "Web", "gone group", "backups"] {
        data["groups"][group] = json!(["h.example.com"]);
    }
    assert_eq!(set(&job, &data.to_string()).await.code, 0);
    let out = ctl(&job, &["check-crontab", CRONTAB, CRONTAB]).await;
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stdout,
        format!(
            "{CRONTAB}:25: group \"typo\" is not defined\n\
             {CRONTAB}:26: --group without a group name\n"
        )
        .repeat(2)
    );

    // A file that cannot be read.
    let out = ctl(&job, &["check-crontab", "/nonexistent/crontab"]).await;
    assert_eq!(out.code, 66);
    assert!(
        out.stderr.contains("/nonexistent/crontab"),
        "{}",
        out.stderr
    );
}

/// Lines that switchman itself would refuse are problems too, with clap's reason; no
/// ZooKeeper is needed for that.
#[tokio::test]
async fn check_crontab_reports_lines_switchman_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let crontab = dir.path().join("crontab");
    std::fs::write(
        &crontab,
        "0 1 * * * switchman --grup web job\n\
         0 2 * * * switchman -g web --lockname\n\
         0 3 * * * cd /srv && switchman -g nosuch >/dev/null\n\
         0 4 * * * test -x /usr/bin/switchman && switchman -g web job\n",
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchmanctl"));
    cmd.args(["-c", "/nonexistent/switchman.conf", "check-crontab"])
        .args(["--data", PREFIX_DATA])
        .arg(&crontab);
    let out = output(cmd).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.stderr, "");
    let file = crontab.display();
    let refused = format!("{file}:1: switchman would refuse this (exit 64): ");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", out.stdout);
    assert!(
        lines[0].starts_with(&format!("{refused}unexpected argument '--grup' found")),
        "{}",
        lines[0]
    );
    assert_eq!(
        lines[1..],
        [
            format!(
                "{file}:2: switchman would refuse this (exit 64): a value is required for \
                 '--lockname <NAME>' but none was supplied"
            ),
            // No CMD: refused, and the group is checked as well.
            format!(
                "{file}:3: switchman would refuse this (exit 64): the following required \
                 arguments were not provided: <CMD>..."
            ),
            format!("{file}:3: group \"nosuch\" is not defined"),
        ]
    );
}

#[tokio::test]
async fn check_hosts_lists_groups_without_a_resolvable_host() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("hosts", &zk_hosts, json!({}));
    // `.invalid` never resolves (RFC 2606); localhost always does.
    let out = set(
        &job,
        r#"{"groups": {
            "ok": ["localhost", "gone.invalid"],
            "via": ["ok"],
            "bad": ["a.invalid", "b.invalid"],
            "nested-bad": ["bad"],
            "drained": []
        }}"#,
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = ctl(&job, &["check-hosts"]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "group \"bad\": none of its 2 hosts resolves: a.invalid, b.invalid\n\
         group \"drained\" has no hosts\n\
         group \"nested-bad\": none of its 2 hosts resolves: a.invalid, b.invalid\n"
    );
    assert!(
        out.stderr
            .contains("host \"gone.invalid\" does not resolve (in \"ok\", \"via\")"),
        "{}",
        out.stderr
    );

    assert_eq!(
        set(&job, r#"{"groups": {"ok": ["localhost"]}}"#).await.code,
        0
    );
    let out = ctl(&job, &["check-hosts"]).await;
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{}", out.stderr);
}

#[tokio::test]
async fn groups_shows_every_group_expanded() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("show", &zk_hosts, json!({}));
    let out = ctl(&job, &["groups"]).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, ""),
        "no prefix node: no groups"
    );

    let data = r#"{"groups": {
        "web": ["w2.example.com", "w1.example.com"],
        "db": "db1.example.com",
        "all": ["web", "db", "loop"],
        "loop": ["all", "x.example.com"],
        "empty": []
    }}"#;
    assert_eq!(set(&job, data).await.code, 0);
    let out = ctl(&job, &["groups"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "all: db1.example.com w1.example.com w2.example.com x.example.com\n\
         db: db1.example.com\n\
         empty:\n\
         loop: db1.example.com w1.example.com w2.example.com x.example.com\n\
         web: w1.example.com w2.example.com\n"
    );

    let out = ctl(&job, &["groups", "web", "db"]).await;
    assert_eq!(
        out.stdout,
        "db: db1.example.com\nweb: w1.example.com w2.example.com\n"
    );

    let out = ctl(&job, &["groups", "--json", "db", "nosuch"]).await;
    assert_eq!(out.code, 1, "an undefined group is a problem");
    assert!(
        out.stderr.contains("\"nosuch\" is not defined"),
        "{}",
        out.stderr
    );
    let shown: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(shown, json!({"db": ["db1.example.com"]}));

    // Prefix data that does not parse is a config error.
    let client = zk(&zk_hosts).await;
    client.set_data(&job.prefix, b"[]", None).await.unwrap();
    let out = ctl(&job, &["groups"]).await;
    assert_eq!(out.code, 78);
    assert!(out.stderr.contains(&job.prefix), "{}", out.stderr);
}

#[tokio::test]
async fn get_data_and_set_data_round_trip_with_versions() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("roundtrip", &zk_hosts, json!({"data_read_len": 200}));

    // No prefix node yet: no data, version -1.
    let out = ctl(&job, &["get-data"]).await;
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{}", out.stderr);
    assert_eq!(version(&out), -1);

    // Created with its parents; the bytes are stored exactly as given.
    let first = "{\"groups\": {\"g\": [\"h1\"]},\n \"resources\": [\"r\"]}\n";
    let out = set(&job, first).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = ctl(&job, &["get-data"]).await;
    assert_eq!((out.stdout.as_str(), version(&out)), (first, 0));

    // With the version read: written.
    let file = job.file("second.json");
    std::fs::write(&file, r#"{"groups": {"g": ["h2"]}}"#).unwrap();
    let file = file.to_str().unwrap();
    let out = ctl(&job, &["set-data", file, "--if-version", "0"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("version 1"), "{}", out.stderr);
    assert!(
        out.stderr.contains("resource \"r\" is removed"),
        "a dropped resource is pointed out: {}",
        out.stderr
    );

    // A stale version, or "must not exist" for a node that does: refused, nothing written.
    for stale in ["0", "-1", "7"] {
        let out = ctl(&job, &["set-data", file, "--if-version", stale]).await;
        assert_eq!(out.code, 1, "--if-version {stale}: {}", out.stderr);
        assert!(
            out.stderr.contains("someone else changed") && out.stderr.contains("version 1 now"),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("nothing was written"), "{}", out.stderr);
    }
    let out = ctl(&job, &["get-data"]).await;
    assert_eq!(
        (out.stdout.as_str(), version(&out)),
        (r#"{"groups": {"g": ["h2"]}}"#, 1)
    );

    // Data that would break runs is refused before anything is written.
    for (bad, why) in [
        ("{\"groups\": ", "not valid JSON"),
        ("[\"g\"]", "JSON object"),
        (r#"{"resources": "r"}"#, "must be an array"),
        (r#"{"groups": ["g"]}"#, "must be an object"),
        (r#"{"groups": {"g": ["h1", 2]}}"#, "member 1 is a number"),
        (r#"{"groups": {"g": {"h1": true}}}"#, "group \"g\""),
        (
            &format!(r#"{{"groups": {{"g": ["{}"]}}}}"#, "h".repeat(200)),
            "data_read_len",
        ),
    ] {
        let out = set(&job, bad).await;
        assert_eq!(out.code, 78, "{bad}: {}", out.stderr);
        assert!(out.stderr.contains(why), "{bad}: {}", out.stderr);
        assert!(out.stderr.contains("nothing was written"), "{}", out.stderr);
    }
    let out = ctl(&job, &["get-data"]).await;
    assert_eq!(version(&out), 1, "still at version 1");

    // Empty data is valid (no groups, no resources), and --if-version reads stdin too.
    let mut cmd = job.ctl_command(&["set-data", "-", "--if-version=1"]);
    cmd.stdin(Stdio::null());
    let out = output(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("group \"g\" is removed"),
        "{}",
        out.stderr
    );
    let out = ctl(&job, &["get-data"]).await;
    assert_eq!((out.stdout.as_str(), version(&out)), ("", 2));
}

#[tokio::test]
async fn two_writers_with_the_same_version_exactly_one_wins() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("race", &zk_hosts, json!({}));
    assert_eq!(set(&job, r#"{"groups": {}}"#).await.code, 0);
    for round in 0..3 {
        let files: Vec<String> = ["alice", "bob"]
            .iter()
            .map(|who| {
                let path = job.file(&format!("{who}-{round}.json"));
                std::fs::write(&path, format!(r#"{{"groups": {{"{who}": ["h{round}"]}}}}"#))
                    .unwrap();
                path.to_str().unwrap().to_string()
            })
            .collect();
        let expected = round.to_string();
        let children: Vec<_> = files
            .iter()
            .map(|f| {
                job.ctl_command(&["set-data", f, "--if-version", &expected])
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut outs = Vec::new();
        for child in children {
            outs.push(finish(child).await);
        }
        let codes: Vec<i32> = outs.iter().map(|(c, _)| *c).collect();
        assert!(
            codes == [0, 1] || codes == [1, 0],
            "round {round}: exactly one wins: {outs:?}"
        );
        let winner = codes.iter().position(|c| *c == 0).unwrap();
        let loser = &outs[1 - winner].1;
        assert!(
            loser.contains("someone else changed")
                && loser.contains(&format!("version {} now", round + 1)),
            "{loser}"
        );
        let out = ctl(&job, &["get-data"]).await;
        assert_eq!(
            out.stdout,
            std::fs::read_to_string(&files[winner]).unwrap(),
            "the winner's data is stored"
        );
        assert_eq!(version(&out), round + 1);
    }
}

#[tokio::test]
async fn exit_codes_for_usage_config_and_an_unreachable_zookeeper() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("codes", &zk_hosts, json!({}));
    for args in [
        &[][..],
        &["no-such-command"],
        &["set-data"],
        &["set-data", "f", "--if-version", "-2"],
        &["check-crontab"],
    ] {
        assert_eq!(ctl(&job, args).await.code, 64, "{args:?}");
    }
    assert_eq!(ctl(&job, &["--help"]).await.code, 0);

    // The config comes from -c or SWITCHMAN_CONFIG, as for switchman.
    let mut cmd = Command::new(switchmanctl_bin());
    cmd.arg("groups")
        .env("SWITCHMAN_CONFIG", "/nonexistent/switchman.conf");
    let out = output(cmd).await;
    assert_eq!(out.code, 78);
    assert!(
        out.stderr.contains("/nonexistent/switchman.conf"),
        "{}",
        out.stderr
    );
    let mut cmd = Command::new(switchmanctl_bin());
    cmd.arg("get-data").env("SWITCHMAN_CONFIG", &job.config);
    assert_eq!(output(cmd).await.code, 0);

    // A chroot that does not exist: set-data does not create it.
    let chrooted = Job::new(
        "chroot",
        &format!("{zk_hosts}/no-such-chroot-{}", std::process::id()),
        json!({}),
    );
    std::fs::write(chrooted.file("d.json"), "{}").unwrap();
    let out = ctl(
        &chrooted,
        &["set-data", chrooted.file("d.json").to_str().unwrap()],
    )
    .await;
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(out.stderr.contains("chroot"), "{}", out.stderr);

    // Nothing listens on port 1.
    let down = Job::new(
        "down",
        "127.0.0.1:1",
        json!({"connect_timeout": 0.5, "session_timeout": 1}),
    );
    for args in [&["groups"][..], &["get-data"], &["check-hosts"]] {
        let out = ctl(&down, args).await;
        assert_eq!(out.code, 69, "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "one line: {}", out.stderr);
    }
    std::fs::write(down.file("d.json"), "{}").unwrap();
    let out = ctl(&down, &["set-data", down.file("d.json").to_str().unwrap()]).await;
    assert_eq!(out.code, 69, "{}", out.stderr);
}

/// check-config holds the config's numbers to the servers' own settings: through `conf` where it
/// is allowed (the shared server: tickTime 100 ms, sessions of 0.2 s to 60 s, 60 connections
/// from one address), the AdminServer elsewhere, and says so when it could ask neither.
#[tokio::test]
async fn check_config_holds_the_tick_and_the_bounds_to_the_servers() {
    let zkhosts = shared_ensemble().connect_string();
    let slow_tick = Job::new(
        "cc-tick",
        &zkhosts,
        json!({"server_tick_time": 0.05, "session_timeout": 120}),
    );
    let out = ctl(&slow_tick, &["check-config", "--concurrent-runs", "61"]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    let server = format!("ZooKeeper at {zkhosts}");
    assert!(
        lines[0].contains("key \"server_tick_time\" is 0.05s")
            && lines[0].contains(&format!("{server} runs with tickTime=100")),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains("\"session_timeout\" is 120s") && lines[1].contains("get 60s"));
    assert!(lines[2].contains("maxClientCnxns=60"), "{}", lines[2]);
    let good = Job::new("cc-good", &zkhosts, json!({}));
    let out = ctl(&good, &["check-config", "--concurrent-runs", "60"]).await;
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "", "")
    );

    // A server as a real ensemble's might be: tickTime=3000, `conf` not allowed, the
    // AdminServer on. The default server_tick_time (2 s) is caught.
    let mut admin_port = 0;
    let real = support::Ensemble::start_standalone_with(|_, spare| {
        admin_port = spare;
        support::Extras {
            cfg: vec![
                "tickTime=3000".into(),
                "4lw.commands.whitelist=srvr,ruok".into(),
                "admin.enableServer=true".into(),
                "admin.serverAddress=127.0.0.1".into(),
                format!("admin.serverPort={spare}"),
            ],
            // Over the harness's own -D too, which turns it off.
            jvm: vec![
                "-Dzookeeper.admin.enableServer=true".into(),
                "-Dzookeeper.admin.serverAddress=127.0.0.1".into(),
                format!("-Dzookeeper.admin.serverPort={spare}"),
            ],
            // Debian's zookeeper.jar does not bring the servlet API its Jetty needs.
            classpath: vec![support::SERVLET_API_JAR.into()],
        }
    });
    let job = Job::new(
        "cc-real",
        &real.connect_string(),
        json!({"server_tick_time": null, "session_timeout": 10}),
    );
    let port = admin_port.to_string();
    let out = ctl(&job, &["check-config", "--admin-port", &port]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stdout.contains("key \"server_tick_time\" is 2s")
            && out.stdout.contains("tickTime=3000"),
        "{}",
        out.stdout
    );
    // Neither `conf` nor an AdminServer: it says it could not check, and finds nothing.
    let nowhere = support::pick_ports(1)[0].to_string();
    let out = ctl(&job, &["check-config", "--admin-port", &nowhere]).await;
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{}", out.stderr);
    assert!(
        out.stderr.contains("could not check server_tick_time")
            && out.stderr.contains(&real.connect_string())
            && out.stderr.contains("whitelist"),
        "{}",
        out.stderr
    );
}
