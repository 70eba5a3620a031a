//! The parts of switchman's manual that are not options: examples, the environment and the
//! exit codes. One copy, shown by `switchman --help` and rendered into the man page
//! (`examples/gen_docs.rs`), so the two cannot disagree; the README has the same (a test in
//! `tests/ship.rs` holds the examples to it).

/// The README's examples: what each does, then the command line.
pub const EXAMPLES: &[(&str, &str)] = &[
    (
        "At most one host runs the nightly backup; the others skip (exit 0, nothing on stderr).",
        "switchman --lockname nightly-backup -- /usr/local/bin/backup --all",
    ),
    (
        "One CPU core and 4 GiB out of this host's budget, shared by every job on the host.",
        "switchman --lease FQDN_cpu=1:CPU --lease FQDN_mem=4096:MEMMB -- make -j1 report",
    ),
    (
        "A rolling restart, one host at a time across the fleet.",
        "switchman --lockname \"$(hostname)-rr\" --lease rolling-restart=1:1 -- systemctl restart app",
    ),
    (
        "Only on hosts of group backup-hosts (listed in the prefix znode).",
        "switchman --group backup-hosts -- /usr/local/bin/backup",
    ),
    (
        "Wait up to 5 minutes for the lock, first come first served, instead of skipping.",
        "switchman --lockname deploy --wait 5m -- /usr/local/bin/deploy",
    ),
    (
        "Cron on every host at 03:00: one runs it; the others skip if it succeeded within 20 hours.",
        "switchman --lockname nightly-report --min-interval 20h -- /usr/local/bin/report",
    ),
];

/// What CMD finds in its environment besides switchman's own.
pub const CMD_ENVIRONMENT: &[(&str, &str)] = &[
    (
        "SWITCHMAN_LOCK",
        "the lock node's full path (not with --no-lock)",
    ),
    (
        "SWITCHMAN_FENCING_TOKEN",
        "the lock node's creation zxid: it grows from one holder to the next, so a resource \
         can refuse a stale holder",
    ),
    (
        "SWITCHMAN_LEASES",
        "the lease nodes held, separated by spaces (with --lease)",
    ),
];

/// What switchman itself reads from the environment. An empty value counts as unset.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "SWITCHMAN_CONFIG",
        "the config file when -c is not given (default /etc/switchman.conf)",
    ),
    (
        "SWITCHMAN_FQDN",
        "this host's FQDN, over the config key fqdn and the resolver",
    ),
    (
        "DEBUG",
        "debug messages on stderr as with -v, if 1 (or more), true, yes or on; other values \
         (0, false, express:*) leave them off",
    ),
    ("NO_COLOR", "no colour codes on stderr, even on a terminal"),
];

/// switchman's exit codes (docs/guide.md: "Exit codes").
pub const EXIT_CODES: &[(&str, &str)] = &[
    ("CMD's code", "CMD ran (128+N if it died of signal N)"),
    (
        "0",
        "skipped: the lock is held elsewhere, the task is already queued elsewhere, this host \
         is not in the group, or (--min-interval) the job succeeded too recently \
         (--busy-exit-code or busy_exit_code change it)",
    ),
    (
        "64",
        "usage error: bad option, lease spec or lock name; no CMD",
    ),
    (
        "69",
        "ZooKeeper unavailable: no session within connect_timeout, or the session was lost \
         before CMD started (also while waiting in line)",
    ),
    ("70", "internal or unexpected ZooKeeper error"),
    (
        "75",
        "--wait ran out, or (without --wait) resources_wait_timeout passed",
    ),
    (
        "78",
        "config error: file, logfile, journald, prefix data, unknown group or resource",
    ),
    (
        "79",
        "CMD was stopped because the lock, session, lease or group membership was lost",
    ),
    ("126, 127", "CMD could not be executed (127: not found)"),
];

/// The text after the options in `switchman --help`.
pub fn long_help() -> String {
    let mut text = String::from("Examples:\n");
    for (what, command) in EXAMPLES {
        text.push_str(&format!("  # {what}\n  {command}\n"));
    }
    text.push_str("\nEnvironment of CMD, besides switchman's own:\n");
    text.push_str(&table(CMD_ENVIRONMENT));
    text.push_str("\nEnvironment read by switchman (empty counts as unset):\n");
    text.push_str(&table(ENVIRONMENT));
    text.push_str("\nExit codes:\n");
    text.push_str(&table(EXIT_CODES));
    text.push_str(
        "\nEvery non-zero exit of switchman's own prints one line on stderr; skipped runs print \
         nothing, so cron mails nothing for them.",
    );
    text
}

/// Two columns, the second aligned and wrapped at 100 characters.
fn table(rows: &[(&str, &str)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut text = String::new();
    for (key, meaning) in rows {
        let mut line = format!("  {key:width$}  ");
        let indent = line.len();
        for word in meaning.split(' ') {
            if line.len() + word.len() > 100 && line.len() > indent {
                text.push_str(line.trim_end());
                text.push('\n');
                line = " ".repeat(indent);
            }
            line.push_str(word);
            line.push(' ');
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_are_the_readmes() {
        let readme = include_str!("../README.md");
        for (what, command) in EXAMPLES {
            assert!(
                readme.contains(&format!("# {what}\n{command}\n")),
                "{command}"
            );
        }
    }

    #[test]
    fn tables_wrap_under_the_second_column() {
        let text = table(&[("A", &"word ".repeat(30)), ("LONGER", "short")]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.iter().all(|l| l.len() <= 100), "{text}");
        assert!(lines[0].starts_with("  A       word"), "{text}");
        assert!(lines[1].starts_with("          word"), "{text}");
        assert_eq!(*lines.last().unwrap(), "  LONGER  short");
    }
}
