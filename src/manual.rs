//! The parts of switchman's manual that are not options: examples, the environment, the exit
//! codes (from [`crate::exit`]) and the config keys (from [`crate::config::KEYS`]). One copy,
//! shown by `--help`, rendered into the man pages (`examples/gen_docs.rs`) and into the
//! generated files under `docs/` ([`generated_docs`]), so none can disagree with another; the
//! README has the examples too (a test below holds them to it).

use crate::config::{self, KEYS};
use crate::exit::{self, Binary};

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
    text.push('\n');
    text.push_str(&exit_help(Binary::Switchman));
    text
}

/// The exit codes of `binary` as `--help` shows them, with the footnote.
pub fn exit_help(binary: Binary) -> String {
    let rows: Vec<(String, String)> = exit::rows(binary)
        .into_iter()
        .map(|(code, meaning)| (code, plain(meaning)))
        .collect();
    let rows: Vec<(&str, &str)> = rows.iter().map(|(c, m)| (c.as_str(), m.as_str())).collect();
    format!(
        "Exit codes:\n{}\n{}",
        table(&rows),
        plain(exit::footnote(binary))
    )
}

/// Markdown without its code marks and with its links' text only (`[text](target)`), for the
/// terminal and the man pages.
pub fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let Some((label, after)) = rest[open + 1..].split_once("](") else {
            break;
        };
        let Some(close) = after.find(')') else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push_str(label);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out.replace('`', "")
}

/// What is said of the config file before its keys, in `docs/config.md` and
/// switchman.conf(5).
pub const CONFIG_INTRO: &[&str] = &[
    "switchman and switchmanctl read /etc/switchman.conf, or the file `-c PATH` names, or \
     `$SWITCHMAN_CONFIG` when `-c` is not given (an empty `SWITCHMAN_CONFIG` counts as unset).",
    "It is JSON: one object, whose keys are below. The original switchman's keys are all \
     honoured; the ones marked *new* are ours. An unknown key is not an error, and its warning \
     goes to the logfile (and to stderr only with `-v`), so that while a config newer than some \
     binaries rolls out, cron does not mail every host every minute; `switchmanctl check-config` \
     reports unknown keys loudly. Every config error names the file and the key, exits 78, and \
     happens before anything is written to ZooKeeper.",
];

/// What is said of the config file after its keys.
pub const CONFIG_OUTRO: &[&str] = &[
    "Times (type seconds) may have fractions (`\"session_timeout\": 2.5`), and may be strings of a \
     number (`\"10\"`), as the original wrote some. See \
     [conf/switchman.conf](../conf/switchman.conf) for an example.",
    "This host's FQDN is found as `hostname --fqdn` finds it (the kernel's host name, then the \
     resolver's canonical name for it), unless `SWITCHMAN_FQDN` or the config key `fqdn` says \
     otherwise. It is written into every node switchman creates and compared with group \
     members.",
];

/// Where the generated files come from, said at the top of each.
const GENERATED: &str = "<!-- Generated by `cargo run --example gen_docs -- --docs` from the \
                         code; do not edit. -->";

/// `docs/config.md`: the config keys of [`config::KEYS`].
pub fn config_markdown() -> String {
    let mut text = format!("# Config file\n\n{GENERATED}\n\n");
    for para in CONFIG_INTRO {
        text.push_str(&format!("{para}\n\n"));
    }
    text.push_str("| key | type | default | meaning |\n|---|---|---|---|\n");
    for key in KEYS {
        let new = if key.new { "*new*: " } else { "" };
        text.push_str(&format!(
            "| `{}` | {} | {} | {new}{} |\n",
            key.name,
            key.kind.doc(),
            key.default,
            key.meaning
        ));
    }
    for para in CONFIG_OUTRO {
        text.push_str(&format!("\n{para}\n"));
    }
    text.push_str(&format!(
        "\nThe same, as a man page: `man 5 switchman.conf` where the package is installed. The \
         default path is `{}`.\n",
        config::DEFAULT_PATH
    ));
    text
}

/// `docs/exit-codes.md`: the exit codes of [`exit::TABLE`], switchman's and switchmanctl's.
pub fn exit_codes_markdown() -> String {
    let mut text = format!("# Exit codes\n\n{GENERATED}\n");
    for (binary, title) in [
        (Binary::Switchman, "switchman"),
        (Binary::Switchmanctl, "switchmanctl"),
    ] {
        text.push_str(&format!(
            "\n## {title}\n\n| code | name | meaning |\n|---|---|---|\n"
        ));
        if binary == Binary::Switchman {
            text.push_str(&format!(
                "| {} | | {} |\n",
                exit::CMD_RAN.0,
                exit::CMD_RAN.1
            ));
        }
        for e in exit::TABLE.iter().filter(|e| e.used_by(binary)) {
            text.push_str(&format!("| {} | `{}` | {} |\n", e.value, e.name, e.meaning));
        }
        text.push_str(&format!("\n{}\n", exit::footnote(binary)));
    }
    text
}

/// The files under `docs/` generated from the code: (path in the repository, contents).
/// `tests` below holds the committed files equal to them.
pub fn generated_docs() -> Vec<(&'static str, String)> {
    vec![
        ("docs/config.md", config_markdown()),
        ("docs/exit-codes.md", exit_codes_markdown()),
    ]
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
    fn generated_docs_are_up_to_date() {
        for (path, want) in generated_docs() {
            let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
            let have = std::fs::read_to_string(&file).unwrap_or_default();
            assert!(
                have == want,
                "{path} differs from what the code generates; regenerate it with \
                 `cargo run --example gen_docs -- --docs` and commit it"
            );
        }
    }

    #[test]
    fn help_shows_every_exit_code() {
        let help = long_help();
        for e in exit::TABLE.iter().filter(|e| e.switchman) {
            assert!(
                help.contains(&format!("\n  {} ", e.value)),
                "{} in {help}",
                e.value
            );
        }
        let ctl = exit_help(Binary::Switchmanctl);
        for e in exit::TABLE.iter().filter(|e| e.switchmanctl) {
            assert!(
                ctl.contains(&format!("\n  {} ", e.value)),
                "{} in {ctl}",
                e.value
            );
        }
    }

    /// The README keeps a short table of switchman's codes; it must list the same codes.
    #[test]
    fn the_readmes_brief_exit_codes_are_the_tables() {
        let readme = include_str!("../README.md");
        let section = readme
            .split_once("### Exit codes, in brief\n")
            .and_then(|(_, rest)| rest.trim_start().split("\n\n").next())
            .expect("README has \"Exit codes, in brief\"");
        let listed: Vec<String> = section
            .lines()
            .skip(2)
            .filter_map(|l| l.split('|').nth(1))
            .flat_map(|codes| codes.split(',').map(|c| c.trim().to_string()))
            .collect();
        let table: Vec<String> = exit::rows(Binary::Switchman)
            .into_iter()
            .map(|(code, _)| code)
            .collect();
        assert_eq!(
            listed, table,
            "README's \"Exit codes, in brief\" against src/exit.rs"
        );
    }

    #[test]
    fn plain_drops_code_marks_and_link_targets() {
        assert_eq!(
            plain("`a` (see [Run records](guide.md#run-records)) and [x] (y)"),
            "a (see Run records) and [x] (y)"
        );
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
