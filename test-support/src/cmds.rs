//! The CMDs the tests run under switchman: small shell scripts that leave what they saw in
//! files in `$JOB_DIR` (the job's temp dir, see `Job::command`), so that a test can await
//! them and check their order. Each builder returns the argv of `sh -c SCRIPT`.
//!
//! The conventions: `NAME.pid` is written (atomically) once CMD runs, and a CMD that waits
//! goes on until `NAME.go` exists (`Job::go`).

use std::path::Path;

/// `sh -c SCRIPT`.
pub fn sh(script: impl Into<String>) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

/// Shell code that writes the shell's pid to `$JOB_DIR/NAME.pid` in one step (`NAME` may be
/// a shell expansion such as `$name`).
pub fn write_pid(name: &str) -> String {
    format!(
        r#"echo $$ > "$JOB_DIR/{name}.pid.tmp" && mv "$JOB_DIR/{name}.pid.tmp" "$JOB_DIR/{name}.pid""#
    )
}

/// Shell code that waits until `$JOB_DIR/NAME.go` exists.
pub fn until_go(name: &str) -> String {
    until_any_go(&[name])
}

/// Shell code that waits until `$JOB_DIR/NAME.go` exists, noting each SIGTERM in
/// `NAME.signals` and carrying on when `stubborn`, or ending on SIGTERM as shells do.
pub fn until_go_maybe_stubborn(name: &str, stubborn: bool) -> String {
    if stubborn {
        format!(
            "trap 'echo TERM >> \"$JOB_DIR/{name}.signals\"' TERM\n{}",
            until_go(name)
        )
    } else {
        until_go(name)
    }
}

/// Shell code that waits until one of `$JOB_DIR/NAME.go` for `names` exists.
pub fn until_any_go(names: &[&str]) -> String {
    let none = names
        .iter()
        .map(|name| format!(r#"[ ! -e "$JOB_DIR/{name}.go" ]"#))
        .collect::<Vec<_>>()
        .join(" && ");
    format!("while {none}; do sleep 0.05; done")
}

/// A CMD that records its pid in `$JOB_DIR/NAME.pid`, notes SIGTERM in `NAME.term`, and
/// then waits until `$JOB_DIR/NAME.go` appears before exiting with `code`.
pub fn cmd_waiting(name: &str, code: i32) -> Vec<String> {
    sh(format!(
        r#"trap 'echo term > "$JOB_DIR/{name}.term"; exit 143' TERM
{}
env | grep ^SWITCHMAN_ > "$JOB_DIR/{name}.env"
{}
exit {code}"#,
        write_pid(name),
        until_go(name)
    ))
}

/// A CMD that records every catchable signal it receives in `$JOB_DIR/NAME.signals` (and
/// carries on), writes its pid to `NAME.pid`, and exits 0 once `NAME.go` exists.
pub fn cmd_noting_signals(name: &str) -> Vec<String> {
    sh(format!(
        r#"for s in TERM INT HUP QUIT USR1 USR2 ALRM PIPE; do trap "echo $s >> \"\$JOB_DIR/{name}.signals\"" $s; done
{}
{}
exit 0"#,
        write_pid(name),
        until_go(name)
    ))
}

/// A CMD that appends `NAME` to `$JOB_DIR/ran` and exits with `code` at once.
pub fn cmd_noting_run(name: &str, code: i32) -> Vec<String> {
    sh(format!(r#"echo {name} >> "$JOB_DIR/ran"; exit {code}"#))
}

/// A CMD that appends `start NAME` to `$JOB_DIR/records`, writes its pid to `NAME.pid`, then
/// waits until `NAME.go` or `all.go` appears, appends `end NAME` and exits 0. The records are
/// written while CMD runs, so they can only under-state how many ran at once.
pub fn cmd_recording_start_end(name: &str) -> Vec<String> {
    sh(format!(
        r#"echo "start {name}" >> "$JOB_DIR/records"
{}
{}
echo "end {name}" >> "$JOB_DIR/records""#,
        write_pid(name),
        until_any_go(&[name, "all"])
    ))
}

/// A CMD that creates the file at `path`: proof that it ran.
pub fn cmd_touching(path: &Path) -> Vec<String> {
    vec!["touch".into(), path.display().to_string()]
}
