//! End-to-end tests of where switchman's messages go (docs/logging.md): stderr as cron mails
//! it, the logfile in text or JSON lines, and the systemd journal.

use switchman_test_support as support;

use std::process::Stdio;

use serde_json::json;
use support::{Job, Out, output, shared_ensemble};
use tokio::process::Command;

/// A config whose ZooKeeper is never reached: every case here fails or is decided before the
/// run connects.
const NOWHERE: &str = "127.0.0.1:1";

/// `switchman ARGS` for `job` with no colour or debug settings inherited from whoever runs the
/// tests.
fn switchman(job: &Job, args: &[&str]) -> Command {
    let mut cmd = job.command(args);
    cmd.env_remove("NO_COLOR");
    cmd
}

/// Bug: a logfile that cannot be opened exited 78 with nothing on stderr, because the error
/// was reported through the logger whose setup had failed.
#[tokio::test]
async fn a_logfile_that_cannot_be_opened_is_reported_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let missing_dir = dir.path().join("no-such-dir/switchman.log");
    let a_directory = dir.path().to_path_buf();
    for logfile in [missing_dir, a_directory] {
        let job = Job::new("bad-logfile", NOWHERE, json!({"logfile": logfile}));
        let ran = job.file("ran");
        let out = output(switchman(&job, &["--", "touch", ran.to_str().unwrap()])).await;
        assert_eq!(out.code, 78, "{logfile:?}: {}", out.stderr);
        assert_eq!(
            out.stderr.lines().count(),
            1,
            "{logfile:?}: one line on stderr: {:?}",
            out.stderr
        );
        assert!(
            out.stderr.starts_with("switchman: config error: ")
                && out.stderr.contains("\"logfile\"")
                && out.stderr.contains(logfile.to_str().unwrap()),
            "{}",
            out.stderr
        );
        assert!(!ran.exists(), "{logfile:?}: CMD must not run");
    }
}

/// Bug: debug output carried ANSI colour codes (`^[[3msession^[[0m`) into cron mail.
#[tokio::test]
async fn debug_output_is_plain_text_when_stderr_is_not_a_terminal() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("no-colour", &zk_hosts, json!({}));
    let out = output(switchman(&job, &["-v", "--lockname", "plain", "true"])).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("session established"),
        "a debug line with fields: {}",
        out.stderr
    );
    assert!(
        !out.stderr.contains('\x1b'),
        "no escape codes: {:?}",
        out.stderr
    );
}

/// On a terminal, colour is welcome, unless NO_COLOR says otherwise; in the logfile, never.
/// `script` gives switchman a pseudo-terminal for stdout and stderr alike, and copies what it
/// writes to its own stdout.
#[tokio::test]
async fn colour_only_on_a_terminal_and_never_with_no_color() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("colour", &zk_hosts, json!({}));
    let run = format!(
        "{} -c {} -v --lockname tty true",
        support::switchman_bin(),
        job.config.display()
    );
    for (no_color, coloured) in [(None, true), (Some("1"), false)] {
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &run, "/dev/null"])
            .stdin(Stdio::null())
            .env_remove("DEBUG")
            .env_remove("NO_COLOR");
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        let out = output(cmd).await;
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        assert!(
            out.stdout.contains("session"),
            "debug lines on the terminal: {}",
            out.stdout
        );
        assert_eq!(
            out.stdout.contains('\x1b'),
            coloured,
            "NO_COLOR={no_color:?}: {:?}",
            out.stdout
        );
        // Stderr's colour stays on stderr: the logfile's span fields (`run{job=tty}`) are
        // formatted apart from stderr's.
        let log = job.read("switchman.log");
        assert!(log.contains("run{job=tty"), "{log}");
        assert!(!log.contains('\x1b'), "no escapes in the logfile: {log:?}");
    }
}

/// Bug: `DEBUG=false`, `DEBUG=0` or Node's `DEBUG=express:*` turned debug output on.
#[tokio::test]
async fn debug_env_turns_debug_on_only_for_values_that_mean_yes() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("debug-env", &zk_hosts, json!({}));
    for (value, on) in [
        ("false", false),
        ("0", false),
        ("no", false),
        ("off", false),
        ("", false),
        ("express:*", false),
        ("1", true),
        ("true", true),
        ("YES", true),
    ] {
        let mut cmd = switchman(&job, &["--lockname", "debug-env", "true"]);
        cmd.env("DEBUG", value);
        let out = output(cmd).await;
        assert_eq!(out.code, 0, "DEBUG={value}: {}", out.stderr);
        assert_eq!(
            out.stderr.contains("switchman: debug: "),
            on,
            "DEBUG={value:?}: {:?}",
            out.stderr
        );
    }
}

/// Bug: an unknown config key printed a warning on stderr on every run, so cron mailed every
/// host every minute while a config newer than some binaries rolled out. It goes to the logfile,
/// and to stderr only with -v.
#[tokio::test]
async fn an_unknown_config_key_is_not_mailed_by_cron() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new(
        "unknown-key",
        &zk_hosts,
        json!({"loglevel": "warning", "from_the_future": true}),
    );
    let out = output(switchman(&job, &["--lockname", "unknown-key", "true"])).await;
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "silent on stderr");
    let log = std::fs::read_to_string(job.log()).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("unknown key \"from_the_future\"")),
        "in the logfile, as a warning: {log}"
    );

    let out = output(switchman(
        &job,
        &["-v", "--lockname", "unknown-key", "true"],
    ))
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("switchman: warning: ")
            && out.stderr.contains("unknown key \"from_the_future\""),
        "on stderr with -v: {}",
        out.stderr
    );
}

/// `logfile_format: json`: one JSON object per line for log shippers, each with switchman's
/// pid, and the run's fields (job, then lock and fencing token, then on the line that says how
/// the run ended, the exit code) as the span.
#[tokio::test]
async fn the_logfile_can_be_json_lines_with_the_runs_fields() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new(
        "json-log",
        &zk_hosts,
        json!({"loglevel": "info", "logfile_format": "json"}),
    );
    let cmd = support::sh(r#"echo "$SWITCHMAN_FENCING_TOKEN" > "$JOB_DIR/token"; exit 3"#);
    let child = job.spawn(&support::lock_argv("json-job", &cmd));
    let pid = child.id().unwrap();
    let (code, stderr) = support::finish(child).await;
    assert_eq!(code, 3, "{stderr}");
    let token: i64 = job.read("token").trim().parse().unwrap();

    let text = std::fs::read_to_string(job.log()).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(!lines.is_empty());
    for line in &lines {
        assert_eq!(line["pid"], pid, "{line}");
        assert!(line["timestamp"].as_str().is_some(), "{line}");
        assert!(line["fields"]["message"].as_str().is_some(), "{line}");
        assert_eq!(line["span"]["job"], "json-job", "{line}");
    }
    let last = lines.last().unwrap();
    assert_eq!(last["level"], "INFO", "{last}");
    assert!(
        last["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("ended: exit code 3 ")),
        "the line that says how the run ended: {last}"
    );
    assert_eq!(last["span"]["exit_code"], 3, "{last}");
    assert_eq!(last["span"]["lock"], job.lock_path("json-job"), "{last}");
    assert_eq!(last["span"]["token"], token, "{last}");
}

/// Runs `script` with bash in a mount namespace of its own, where /run/systemd, /run/log and
/// (if it exists) /var/log/journal are empty tmpfs: a journal of the test's own (or none),
/// whatever the machine runs. /var/log/journal is never created: its presence makes a host's
/// journald keep its journal on disk. Needs root, as the .deb test does.
async fn with_private_journal_dirs(script: &str) -> Out {
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "bash", "-euc"])
        .arg(format!(
            "mkdir -p /run/systemd /run/log
             for d in /run/systemd /run/log /var/log/journal; do
               if [ -d $d ]; then mount -t tmpfs tmpfs $d; fi
             done
             {script}"
        ))
        .env_remove("NO_COLOR")
        .env_remove("DEBUG")
        .stdin(Stdio::null());
    output(cmd).await
}

/// Without a journal, `journald: true` is a config error with one line that says what to do,
/// like a logfile that cannot be opened; nothing runs.
#[tokio::test]
async fn journald_without_a_journal_is_one_clear_line() {
    let job = Job::new("no-journal", NOWHERE, json!({"journald": true}));
    let ran = job.file("ran");
    let out = with_private_journal_dirs(&format!(
        "{} -c {} touch {}",
        support::switchman_bin(),
        job.config.display(),
        ran.display()
    ))
    .await;
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{:?}", out.stderr);
    assert!(
        out.stderr.starts_with("switchman: config error: ")
            && out.stderr.contains("\"journald\"")
            && out.stderr.contains("/run/systemd/journal/socket")
            && out.stderr.contains("systemd-journald running"),
        "{}",
        out.stderr
    );
    assert!(!ran.exists());
}

/// With a real systemd-journald (started privately, see [`with_private_journal_dirs`]), a
/// run's lines are in the journal under switchman's identifier, and `journalctl
/// SYSLOG_IDENTIFIER=switchman JOB=NAME` finds them with the lock, the token, the exit code and
/// the outcome as fields of their own; CMD's captured output lines too, with their `STREAM`.
#[tokio::test]
async fn journald_gets_the_runs_lines_with_structured_fields() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new(
        "journal",
        &zk_hosts,
        json!({"journald": true, "loglevel": "info", "capture_output": true}),
    );
    let journald = "/lib/systemd/systemd-journald";
    assert!(
        std::path::Path::new(journald).exists(),
        "{journald} is missing: scripts/install-deps installs systemd"
    );
    let out = with_private_journal_dirs(&format!(
        r#"{journald} >/dev/null 2>&1 &
           journald=$!
           trap 'kill $journald' EXIT
           for _ in $(seq 300); do [ -S /run/systemd/journal/socket ] && break; sleep 0.1; done
           code=0
           JOB_DIR={dir} {switchman} -c {config} --lockname backup -- \
             sh -c 'echo "$SWITCHMAN_FENCING_TOKEN" > "$JOB_DIR/token"; echo no space left >&2; exit 3' || code=$?
           echo "exit $code" >&2
           journalctl --sync
           journalctl --no-pager -o json SYSLOG_IDENTIFIER=switchman JOB=backup"#,
        dir = job.dir.path().display(),
        switchman = support::switchman_bin(),
        config = job.config.display(),
    ))
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("exit 3"), "{}", out.stderr);
    let token = job.read("token").trim().to_string();
    let entries: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let last = entries.last().expect("the run's lines are in the journal");
    for entry in &entries {
        assert_eq!(entry["JOB"], "backup", "{entry}");
    }
    assert!(
        last["MESSAGE"]
            .as_str()
            .is_some_and(|m| m.starts_with("ended: exit code 3 ")),
        "the line that says how the run ended: {last}"
    );
    assert_eq!(last["EXIT_CODE"], "3", "{last}");
    assert_eq!(last["LOCK"], job.lock_path("backup"), "{last}");
    assert_eq!(last["TOKEN"], token, "{last}");
    assert_eq!(last["PRIORITY"], "6", "info is syslog's 6: {last}");
    assert_eq!(last["OUTCOME"], "failed", "{last}");
    let said = entries
        .iter()
        .find(|e| e["MESSAGE"] == "no space left")
        .unwrap_or_else(|| panic!("CMD's line is in the journal: {entries:?}"));
    assert_eq!(said["STREAM"], "stderr", "{said}");
    assert_eq!(said["LOCK"], job.lock_path("backup"), "{said}");
    assert_eq!(said["TOKEN"], token, "{said}");
}
