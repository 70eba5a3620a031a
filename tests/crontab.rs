//! End-to-end tests of `switchmanctl check-crontab` checking everything a run would refuse
//! before connecting, not only groups: the crontab, where every line passed and every
//! line failed at run time.

use switchman_test_support as support;

use serde_json::json;
use support::{Job, shared_ensemble, switchmanctl_bin};
use tokio::process::Command;

const PREFIX_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/conf/prefix-data.json");

/// Each line fails at run time; the second column is what check-crontab must say of it.
const BAD: &[(&str, &str)] = &[
    (
        "0 1 * * * switchman --lease nosuch=1:2 -- job1",
        "switchman would refuse this (exit 78): resource nosuch not listed in \"resources\" of",
    ),
    (
        "0 2 * * * switchman --lease rolling-restart=5:2 -- job2",
        "the original would wait for rolling-restart for ever (or until resources_wait_timeout) \
         at the head of its queue, for a lease that cannot be granted, holding up every run \
         queued behind it; switchman would refuse this (exit 64): --lease \
         \"rolling-restart=5:2\": COUNT 5 is more than TOTAL 2",
    ),
    (
        "0 3 * * * switchman --lockname a/b -- job3",
        "switchman would refuse this (exit 64): --lockname \"a/b\" may not contain /",
    ),
    (
        "0 4 * * * switchman --bogus -- job4",
        "switchman would refuse this (exit 64): unexpected argument '--bogus' found",
    ),
    (
        "0 5 * * * switchman -w 5x -- job5",
        "switchman would refuse this (exit 64): invalid value '5x' for '--wait <DURATION>'",
    ),
    (
        "0 6 * * * switchman -- sh -c 'backup --all'",
        "the lock name defaults to CMD's basename \"sh\", which every job run through sh \
         shares",
    ),
    (
        "0 7 * * * switchman --lease FQDN_cpu=CPU+1:CPU -- job7",
        "switchman would refuse this (exit 64): --lease \"FQDN_cpu=CPU+1:CPU\": COUNT",
    ),
    (
        "0 8 * * * switchman --lease rolling-restart=0:1 -- job8",
        "the original would take a lease of no units of rolling-restart, which guards nothing; \
         switchman would refuse this (exit 64)",
    ),
    (
        "0 9 * * * switchman --lease rolling-restart=1:1 --lease rolling-restart=1:1 -- job9",
        "the original would lease each resource once, as one of its --lease options says (the \
         last one, if they spell the resource alike); switchman would refuse this (exit 64): \
         --lease names resource \"rolling-restart\" twice",
    ),
    (
        "0 10 * * * switchman backup.sh --lockname nightly",
        "the original takes options after CMD too, up to a '--': it would read '--lockname \
         nightly' (its --lockname), where switchman passes them to CMD",
    ),
];

/// Lines that must pass: leases that add up, with macros, and lock names of their own.
const GOOD: &str = "\
*/5 * * * * switchman --lease FQDN_cpu=1:CPU --lease rolling-restart=1:1 -- make report
0 8 * * * switchman --lockname nightly -- sh -c 'backup --all'
0 9 * * * switchman --lease 'FQDN_mem=int(MEMMB/4):MEMMB' -g web -- job9
0 10 * * * switchman -LOCKN nightly-report -lea rolling-restart=1:1 -- report --lockname x
";

async fn check(mut cmd: Command) -> (i32, String, String) {
    let out = cmd.output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Asserts that `stdout` has exactly one line per bad line, in order, each `FILE:LINE: ...`
/// with what [`BAD`] expects.
fn assert_report(stdout: &str, file: &str) {
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), BAD.len(), "{stdout}");
    for (i, ((_, expected), line)) in BAD.iter().zip(&lines).enumerate() {
        let prefix = format!("{file}:{}: ", i + 1);
        assert!(
            line.starts_with(&prefix) && line.contains(expected),
            "line {}: expected {prefix}...{expected}..., got {line}",
            i + 1
        );
    }
}

/// A crontab of the bad lines, then the good ones.
fn crontab(dir: &std::path::Path) -> String {
    let text: String = BAD
        .iter()
        .map(|(l, _)| format!("{l}\n"))
        .collect::<String>()
        + GOOD;
    let path = dir.join("crontab");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[tokio::test]
async fn check_crontab_finds_every_line_a_run_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let file = crontab(dir.path());
    let mut cmd = Command::new(switchmanctl_bin());
    cmd.args(["-c", "/nonexistent/switchman.conf", "check-crontab"])
        .args(["--data", PREFIX_DATA, &file]);
    let (code, stdout, stderr) = check(cmd).await;
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stderr, "");
    assert_report(&stdout, &file);
    assert!(
        stdout.contains(&format!("prefix data in {PREFIX_DATA}")),
        "names where the resources are listed: {stdout}"
    );
    assert!(
        stdout
            .lines()
            .find(|l| l.contains("FQDN_cpu=CPU+1:CPU"))
            .is_some_and(|l| l.contains("(on this host: "))
            && stdout.contains(", CPU=")
            && stdout.contains("other hosts may differ"),
        "says which values are this host's: {stdout}"
    );
}

/// The same against the prefix data in ZooKeeper, and what the check says is what switchman
/// does: each bad line, run for real, exits with the code the check named.
#[tokio::test]
async fn check_crontab_against_zookeeper_agrees_with_switchman() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("crontab-all", &zk_hosts, json!({"fqdn": "h1.example.com"}));
    let (code, _, stderr) = check(job.ctl_command(&["set-data", PREFIX_DATA])).await;
    assert_eq!(code, 0, "{stderr}");
    let file = crontab(job.dir.path());
    let (code, stdout, stderr) = check(job.ctl_command(&["check-crontab", &file])).await;
    assert_eq!(code, 1, "{stderr}");
    assert_report(&stdout, &file);
    assert!(
        stdout.contains(&format!("prefix znode {}", job.prefix)),
        "{stdout}"
    );

    let reports: Vec<&str> = stdout.lines().collect();
    for ((line, _), report) in BAD.iter().zip(reports) {
        if !report.contains("switchman would refuse") {
            // A shared lock name, or a line the original reads otherwise, is no refusal: the
            // run goes ahead, which is the trouble.
            continue;
        }
        let args: Vec<&str> = line.split_whitespace().skip(6).collect();
        let (code, stderr) = job.run(&args).await;
        assert!(
            report.contains(&format!("(exit {code})")),
            "{line}: switchman exited {code} ({stderr}), the check said {report}"
        );
    }
}
