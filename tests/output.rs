//! End-to-end tests of CMD's captured output (docs/guide.md: "Output and history"): passed on
//! line by line, logged with the run's fields, kept in the history, binary-safe, bounded in
//! memory, and cron-quiet runs.

use switchman_test_support as support;

use std::process::Stdio;

use serde_json::{Value, json};
use support::{Job, finish, lock_argv, output, sh, shared_ensemble, switchman_bin, until_go};

/// A job whose runs capture CMD's output.
fn capturing(name: &str, extra: Value) -> Job {
    let mut keys = json!({"capture_output": true});
    for (k, v) in extra.as_object().into_iter().flatten() {
        keys[k] = v.clone();
    }
    Job::new(name, &shared_ensemble().connect_string(), keys)
}

/// `switchmanctl history JOB ARGS...` as JSON: the runs, oldest first.
async fn history(job: &Job, name: &str) -> Vec<Value> {
    let out = output(job.ctl_command(&["history", name, "--json"])).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap()
}

#[tokio::test]
async fn output_is_passed_on_logged_with_its_stream_and_kept() {
    let job = capturing("passed-on", json!({}));
    let script = "echo one; echo two >&2; printf 'three\\nfour'; echo five >&2; exit 3";
    let out = output(job.command(&lock_argv("j", &sh(script)))).await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(out.stdout, "one\nthree\nfour", "stdout as CMD wrote it");
    assert_eq!(out.stderr, "two\nfive\n", "stderr as CMD wrote it");

    let log = std::fs::read_to_string(job.log()).unwrap();
    let logged = |stream: &str| -> Vec<String> {
        log.lines()
            .filter(|l| l.contains("run{job=j}") && l.ends_with(&format!(" stream={stream}")))
            .map(|l| l.split("run{job=j}: ").nth(1).unwrap().to_string())
            .collect()
    };
    assert_eq!(
        logged("stdout"),
        [
            "one stream=stdout",
            "three stream=stdout",
            "four stream=stdout"
        ],
        "{log}"
    );
    assert_eq!(
        logged("stderr"),
        ["two stream=stderr", "five stream=stderr"]
    );
    // The output's lines come before the line that says how CMD ended.
    let lines: Vec<&str> = log.lines().collect();
    let ended = lines.iter().position(|l| l.contains("ended: ")).unwrap();
    let last_output = lines.iter().rposition(|l| l.contains(" stream=")).unwrap();
    assert!(last_output < ended, "{log}");
    assert!(log.contains("ended: exit code 3 after "), "{log}");

    let runs = history(&job, "j").await;
    assert_eq!(runs.len(), 1);
    let output = runs[0]["output"].as_str().unwrap();
    for line in ["one\n", "two\n", "three\n", "five\n"] {
        assert!(output.contains(line), "{output:?}");
    }
    assert_eq!(runs[0]["output_bytes"], out.stdout.len() + out.stderr.len());
    assert_eq!(runs[0]["output_cut"], false);
    assert_eq!(runs[0]["outcome"], "failed");
}

/// JSON lines carry the stream as a field and the run's job, lock and token in `span`.
#[tokio::test]
async fn json_lines_carry_the_stream_and_the_run() {
    let job = capturing("json-lines", json!({"logfile_format": "json"}));
    let out = output(job.command(&lock_argv("k", &sh("echo 'a \"quoted\" line'")))).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let log = std::fs::read_to_string(job.log()).unwrap();
    let line: Value = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["fields"]["stream"] == "stdout")
        .unwrap_or_else(|| panic!("{log}"));
    assert_eq!(line["fields"]["message"], "a \"quoted\" line");
    assert_eq!(line["span"]["job"], "k");
    assert!(line["span"]["lock"].as_str().unwrap().ends_with("/locks/k"));
    assert!(line["span"]["token"].as_i64().is_some(), "{line}");
    assert_eq!(line["level"], "INFO");
}

/// Bytes that are not UTF-8, NULs and a last line without its newline come through as they
/// were, on stdout and in the history.
#[tokio::test]
async fn binary_output_is_carried_byte_for_byte() {
    let job = capturing("binary", json!({"output_tail": 1000}));
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 + i / 3) as u8).collect();
    let file = job.file("data.bin");
    std::fs::write(&file, &data).unwrap();
    let cmd = ["cat".to_string(), file.display().to_string()];
    let mut command = job.command(&lock_argv("bin", &cmd));
    let out = command.output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, data, "stdout byte for byte");

    let runs = history(&job, "bin").await;
    let coded = runs[0]["output_base64"].as_str().unwrap();
    use base64::Engine;
    let tail = base64::engine::general_purpose::STANDARD
        .decode(coded)
        .unwrap();
    assert_eq!(
        tail,
        data[data.len() - 1000..],
        "the last 1000 bytes, exactly"
    );
    assert_eq!(runs[0]["output_bytes"], 5000);
    assert_eq!(runs[0]["output_cut"], true);
    // --output writes them back as they were, under a line about the run.
    let out = job
        .ctl_command(&["history", "bin", "--output"])
        .output()
        .await
        .unwrap();
    let heading = out.stdout.iter().position(|b| *b == b'\n').unwrap();
    let shown = &out.stdout[heading + 1..];
    assert_eq!(&shown[..1000], &data[data.len() - 1000..]);
    let heading = String::from_utf8_lossy(&out.stdout[..heading]);
    assert!(
        heading.contains("succeeded") && heading.contains("the last 1000 of 5000 bytes"),
        "{heading}"
    );
}

/// A CMD writing about 100 MB as fast as it can: every line reaches switchman's stdout in
/// order, and switchman's peak RSS (read by CMD from /proc at its end) stays far below it.
#[tokio::test]
async fn a_fast_writer_loses_no_line_and_memory_stays_bounded() {
    // Logged at info, the lines would go to the logfile too: another test checks that.
    let job = capturing("fast", json!({"loglevel": "warning"}));
    const LINES: u32 = 13_000_000;
    let script =
        format!("seq 1 {LINES}; grep VmHWM /proc/$PPID/status > \"$JOB_DIR/hwm\"; echo done >&2");
    let stdout = std::fs::File::create(job.file("stdout")).unwrap();
    let mut command = job.command(&lock_argv("fast", &sh(script)));
    command.stdout(Stdio::from(stdout));
    // Not `output()`, which would pipe stdout again.
    let out = command.spawn().unwrap().wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stderr, b"done\n");

    let expected = job.file("expected");
    let made = std::process::Command::new("sh")
        .args(["-c", &format!("seq 1 {LINES} > '{}'", expected.display())])
        .status()
        .unwrap();
    assert!(made.success());
    let same = std::process::Command::new("cmp")
        .arg(&expected)
        .arg(job.file("stdout"))
        .output()
        .unwrap();
    assert!(
        same.status.success(),
        "{}",
        String::from_utf8_lossy(&same.stdout)
    );
    let size = std::fs::metadata(job.file("stdout")).unwrap().len();
    assert!(size > 100_000_000, "{size}");

    let hwm = job.read("hwm");
    let kib: u64 = hwm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{hwm:?}"));
    assert!(kib < 48 * 1024, "switchman's peak RSS was {kib} KiB");
    let runs = history(&job, "fast").await;
    assert_eq!(runs[0]["output_bytes"], size + 5);
    assert!(
        runs[0]["output"]
            .as_str()
            .unwrap()
            .ends_with("13000000\ndone\n")
    );
}

/// Every line reaches the logfile too, in order, however many.
#[tokio::test]
async fn every_line_is_logged_in_order() {
    let job = capturing("logged", json!({"loglevel": "info"}));
    let out = output(job.command(&lock_argv("l", &sh("seq 1 20000")))).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let log = std::fs::read_to_string(job.log()).unwrap();
    let logged: Vec<u32> = log
        .lines()
        .filter(|l| l.ends_with(" stream=stdout"))
        .map(|l| {
            let line = l.split("run{job=l}: ").nth(1).unwrap();
            line.trim_end_matches(" stream=stdout").parse().unwrap()
        })
        .collect();
    assert_eq!(logged, (1..=20000).collect::<Vec<u32>>());
}

/// `--quiet-unless-failed` (and `"output": "on-failure"`): nothing while CMD runs; on
/// failure, everything it wrote, on stderr, in the order it came.
#[tokio::test]
async fn cron_quiet_runs_show_the_output_only_when_they_fail() {
    let job = Job::new("quiet", &shared_ensemble().connect_string(), json!({}));
    let ok = sh("echo fine; echo also fine >&2");
    let out = output(job.command(&[
        "--quiet-unless-failed",
        "--lockname",
        "q",
        "--",
        &ok[0],
        &ok[1],
        &ok[2],
    ]))
    .await;
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "", "")
    );

    let failing = sh("echo step one; echo trouble >&2; echo step two; exit 5");
    let args = ["--quiet-unless-failed", "--lockname", "q", "--"];
    let args: Vec<&str> = args
        .iter()
        .copied()
        .chain(failing.iter().map(String::as_str))
        .collect();
    let out = output(job.command(&args)).await;
    assert_eq!(out.code, 5);
    assert_eq!(out.stdout, "");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stderr);
    let at = |l: &str| lines.iter().position(|x| *x == l).unwrap();
    assert!(at("step one") < at("step two"), "{}", out.stderr);
    assert!(lines.contains(&"trouble"));

    // The config's "output": "on-failure" does the same; a CMD killed by a signal failed.
    let config = job.other_host(json!({"output": "on-failure"}));
    let killed = sh("echo before the kill; kill -9 $$");
    let out = output(config.command(&lock_argv("q", &killed))).await;
    assert_eq!(out.code, 137);
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("", "before the kill\n")
    );
    let fine = sh("echo nothing to see");
    let out = output(config.command(&lock_argv("q", &fine))).await;
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "", "")
    );
}

/// A cron-quiet CMD that switchman stops shows its output, then the line that says why.
#[tokio::test]
async fn a_stopped_quiet_run_shows_its_output() {
    let job = Job::new("quiet-stop", &shared_ensemble().connect_string(), json!({}));
    let script = format!("echo working; {}", until_go("never"));
    let mut args = vec!["--quiet-unless-failed", "--lockname", "s", "--"];
    let cmd = sh(script);
    args.extend(cmd.iter().map(String::as_str));
    let run = job.spawn(&args);
    job.wait_for_log(1, &["started: "]).await;
    let stop = job.ctl_command(&["stop", "s"]).output().await.unwrap();
    assert!(stop.status.success());
    let (code, stderr) = finish(run).await;
    assert_eq!(code, 79);
    assert!(
        stderr.starts_with("switchman: warning: stopping CMD")
            && stderr.contains("working\nswitchman: CMD stopped:"),
        "{stderr}"
    );
}

/// CMD's other descriptors are left as switchman got them: an fd inherited from switchman's
/// parent reaches CMD with capture as without, and nothing of switchman's own leaks to it.
#[tokio::test]
async fn cmd_keeps_its_other_descriptors() {
    let job = capturing("fds", json!({}));
    let plain = job.other_host(json!({"capture_output": false}));
    // No pipeline in the probe: a shell holds both ends of a pipe it makes for a moment.
    let probe = "readlink /proc/$$/fd/5; exec ls /proc/self/fd";
    let mut seen = Vec::new();
    for j in [&plain, &job] {
        let mut command = tokio::process::Command::new(switchman_bin());
        command
            .arg("-c")
            .arg(&j.config)
            .args(["--lockname", "fds", "--", "sh", "-c", probe])
            .stdin(Stdio::null())
            .stderr(Stdio::piped());
        // Only 0, 1, 2 and 5 open, whatever other tests of this binary have open meanwhile.
        // SAFETY: plain system calls between fork and exec.
        unsafe {
            command.pre_exec(|| {
                libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
                let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
                if fd != 5 {
                    libc::dup2(fd, 5);
                    libc::close(fd);
                }
                Ok(())
            });
        }
        let out = command.output().await.unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        seen.push(String::from_utf8(out.stdout).unwrap());
    }
    assert_eq!(
        seen[0], seen[1],
        "the same descriptors with capture as without"
    );
    assert!(
        seen[1].starts_with("/dev/null\n0\n1\n2\n") && seen[1].contains("\n5\n"),
        "{}",
        seen[1]
    );
}
