//! End-to-end tests of where switchman's messages go (README: "Logging"): stderr as cron mails
//! it, the logfile in text or JSON lines, and the systemd journal.

mod support;

use std::process::Stdio;

use serde_json::json;
use support::{Job, shared_ensemble};
use tokio::process::Command;

/// A config whose ZooKeeper is never reached: every case here fails or is decided before the
/// run connects.
const NOWHERE: &str = "127.0.0.1:1";

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn output(mut cmd: Command) -> Out {
    let out = cmd.output().await.unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

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

/// On a terminal, colour is welcome, unless NO_COLOR says otherwise. `script` gives switchman
/// a pseudo-terminal for stdout and stderr alike, and copies what it writes to its own stdout.
#[tokio::test]
async fn colour_only_on_a_terminal_and_never_with_no_color() {
    let zk_hosts = shared_ensemble().connect_string();
    let job = Job::new("colour", &zk_hosts, json!({}));
    let run = format!(
        "{} -c {} -v --lockname tty true",
        support::SWITCHMAN,
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
