//! The overlap detector shared by tests/faults.rs and tests/soak.rs: a CMD that checks, from
//! its own side and at the moment it starts, that no more than `capacity - 1` other CMDs of the
//! same records file are still alive, and appends what it saw to that file.
//!
//! Every CMD appends `start NAME PID NS VERDICT TOKEN` when it starts and, from an EXIT trap,
//! `end NAME PID NS` when it ends (SIGTERM ends it through the trap). SIGKILL leaves no `end`,
//! so the records alone cannot tell when a killed CMD stopped running; that is why the check is
//! made by the next CMD, under `flock`, against the kernel: a holder counts as alive while
//! /proc/PID/stat shows it in a state other than zombie, with the start time it had when it
//! registered (so a recycled pid is not mistaken for it). VERDICT is `ok`, or `OVERLAP` if
//! `capacity` holders were already alive.

use std::path::Path;

use super::cmds::{sh, write_pid};

/// The records of one file, read back.
#[derive(Debug, Default)]
pub struct Records {
    pub starts: usize,
    pub ends: usize,
    /// Lines whose CMD found `capacity` others already running.
    pub overlaps: Vec<String>,
    /// All lines, for messages.
    pub text: String,
}

impl Records {
    pub fn read(path: &Path) -> Records {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut r = Records::default();
        for line in text.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.first() {
                Some(&"start") => {
                    r.starts += 1;
                    if fields.get(4) != Some(&"ok") {
                        r.overlaps.push(line.to_string());
                    }
                }
                Some(&"end") => r.ends += 1,
                _ => {}
            }
        }
        r.text = text;
        r
    }

    /// The names of the CMDs that started, in the order they started.
    pub fn started(&self) -> Vec<String> {
        self.text
            .lines()
            .filter_map(|l| l.strip_prefix("start "))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect()
    }
}

/// `sh -c SCRIPT` for a CMD named `name` that registers in `records` (at most `capacity` alive
/// at once), writes its pid to `$JOB_DIR/NAME.pid`, then runs `body` (shell code).
pub fn guard_cmd(records: &Path, name: &str, capacity: usize, body: &str) -> Vec<String> {
    let rec = records.display();
    let script = format!(
        r#"rec='{rec}'; name='{name}'; cap={capacity}; started=
trap '[ -n "$started" ] && echo "end $name $$ $(date +%s%N)" >> "$rec"' EXIT
trap 'exit 143' TERM
# Prints the start time of live process $1, nothing for a zombie or a missing one.
since() {{ s=$(cat /proc/$1/stat 2>/dev/null) || return 1; set -- ${{s##*") "}}; [ "$1" != Z ] && [ "$1" != X ] && echo "${{20}}"; }}
me="$$:$(since $$)"
exec 9>>"$rec.lock"
flock 9
n=0; keep=
for h in $(cat "$rec.holders" 2>/dev/null); do
  if [ "$(since ${{h%%:*}})" = "${{h#*:}}" ]; then n=$((n+1)); keep="$keep $h"; fi
done
if [ $n -lt $cap ]; then v=ok; else v="OVERLAP(alive:$keep)"; fi
echo "$keep $me" > "$rec.holders"
echo "start $name $$ $(date +%s%N) $v ${{SWITCHMAN_FENCING_TOKEN:-}}" >> "$rec"
started=1
exec 9>&-
{pid}
{body}"#,
        pid = write_pid("$name")
    );
    sh(script)
}
