//! End-to-end tests of what a new operator meets first: `--help`, the environment, and
//! `switchmanctl check-config`.

use switchman_test_support as support;

use serde_json::json;
use support::{Job, output, switchman_bin, switchmanctl_bin};
use switchman::exit::{self, Binary};
use tokio::process::Command;

/// `BINARY ARGS` with `SWITCHMAN_CONFIG` as given (`None`: not set at all).
fn with_config_env(binary: &str, args: &[&str], value: Option<&str>) -> Command {
    let mut cmd = Command::new(binary);
    cmd.args(args)
        .env_remove("DEBUG")
        .stdin(std::process::Stdio::null());
    match value {
        Some(v) => cmd.env("SWITCHMAN_CONFIG", v),
        None => cmd.env_remove("SWITCHMAN_CONFIG"),
    };
    cmd
}

/// Bug: `SWITCHMAN_CONFIG=` (set but empty) said "a value is required for '--config'", blaming
/// an option nobody gave. Empty is treated as unset, for both binaries. (What happens next
/// depends on whether this machine has /etc/switchman.conf, so the two are compared; the lock
/// name makes sure nothing is run or connected to either way.)
#[tokio::test]
async fn an_empty_switchman_config_is_treated_as_unset() {
    for (binary, args) in [
        (switchman_bin(), &["--lockname", "a/b", "true"][..]),
        (switchmanctl_bin(), &["check-config"][..]),
    ] {
        let unset = output(with_config_env(binary, args, None)).await;
        let empty = output(with_config_env(binary, args, Some(""))).await;
        assert!(
            !empty.stderr.contains("--config"),
            "{binary}: nobody gave --config: {}",
            empty.stderr
        );
        assert_eq!(
            (empty.code, &empty.stdout, &empty.stderr),
            (unset.code, &unset.stdout, &unset.stderr),
            "{binary}: empty behaves as unset"
        );
    }
    // Given on the command line, an empty path is a mistake to point out.
    let out = output(with_config_env(switchman_bin(), &["-c", "", "true"], None)).await;
    assert_eq!(out.code, 64, "{}", out.stderr);
    assert!(out.stderr.contains("--config"), "{}", out.stderr);
}

#[tokio::test]
async fn help_shows_the_separator_examples_environment_and_exit_codes() {
    let out = output(with_config_env(switchman_bin(), &["--help"], None)).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let help = out.stdout;
    assert!(
        help.contains("Usage: switchman [OPTIONS] [--] CMD [ARGS]..."),
        "{help}"
    );
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    // The README's examples are the lines starting with `switchman --` in its "Using it".
    let examples: Vec<&str> = readme
        .lines()
        .filter(|l| l.starts_with("switchman --"))
        .collect();
    assert_eq!(examples.len(), 6, "{examples:?}");
    for example in examples {
        assert!(help.contains(example), "example {example:?} in: {help}");
    }
    for needle in [
        "SWITCHMAN_LOCK",
        "SWITCHMAN_FENCING_TOKEN",
        "SWITCHMAN_LEASES",
        "SWITCHMAN_CONFIG",
        "SWITCHMAN_FQDN",
        "DEBUG",
        "NO_COLOR",
    ] {
        assert!(help.contains(needle), "{needle} in: {help}");
    }
    assert_shows_exit_codes(&help, Binary::Switchman);
    // The short help stays short.
    let out = output(with_config_env(switchman_bin(), &["-h"], None)).await;
    assert!(out.stdout.lines().count() < 30, "{}", out.stdout);
}

/// Every code of the table that `binary` uses starts a line of `help`, with its meaning.
fn assert_shows_exit_codes(help: &str, binary: Binary) {
    for e in exit::TABLE.iter().filter(|e| e.used_by(binary)) {
        let code = e.value.to_string();
        let first_words = switchman::manual::plain(e.meaning);
        let first_words: String = first_words.split(' ').take(3).collect::<Vec<_>>().join(" ");
        assert!(
            help.lines().any(|l| l
                .trim_start()
                .strip_prefix(code.as_str())
                .is_some_and(|rest| rest.trim_start().starts_with(&first_words))),
            "exit code {code} ({first_words}...) in: {help}"
        );
    }
}

#[tokio::test]
async fn switchmanctl_help_shows_its_exit_codes() {
    let out = output(with_config_env(switchmanctl_bin(), &["--help"], None)).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_shows_exit_codes(&out.stdout, Binary::Switchmanctl);
}

/// Unknown keys stay out of cron's mail (tests/logging.rs); check-config is where a person
/// looks for them, and it says so loudly.
#[tokio::test]
async fn check_config_reports_unknown_keys_and_refused_configs() {
    let job = Job::new("check-config", "127.0.0.1:1", json!({"from_the_future": 1}));
    let config = job.config.to_str().unwrap();
    let out = output(job.ctl_command(&["check-config"])).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!(
            "{config}: unknown key \"from_the_future\" is ignored: a typo, or a key of a newer \
             switchman\n"
        )
    );

    // Its own --config, after the subcommand.
    let good = Job::new("check-config-good", "127.0.0.1:1", json!({}));
    let mut cmd = Command::new(switchmanctl_bin());
    cmd.args(["check-config", "--config"]).arg(&good.config);
    let out = output(cmd).await;
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{}", out.stderr);

    // What switchman would refuse (exit 78) is a finding, named as such.
    let bad = Job::with_config("/p", "127.0.0.1:1", r#"{"prefix": "/p"}"#);
    let out = output(bad.ctl_command(&["check-config"])).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("switchman would refuse this config (exit 78)")
            && out.stdout.contains("\"zkhosts\" is required"),
        "{}",
        out.stdout
    );
    let unopenable = Job::new(
        "check-config-logfile",
        "127.0.0.1:1",
        json!({"logfile": "/nonexistent/dir/switchman.log"}),
    );
    let out = output(unopenable.ctl_command(&["check-config"])).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stdout.contains("\"logfile\"") && out.stdout.contains("/nonexistent/dir"),
        "{}",
        out.stdout
    );

    // A file that cannot be read is not a finding but an input error, as for check-crontab.
    let mut cmd = Command::new(switchmanctl_bin());
    cmd.args(["-c", "/nonexistent/switchman.conf", "check-config"]);
    let out = output(cmd).await;
    assert_eq!(out.code, 66, "{}", out.stderr);
}

/// The Markdown files a reader follows links through: the README, the manual in docs/, the
/// figures and the history.
fn markdown_files(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = ["README.md", "CHANGELOG.md", "benches/README.md"]
        .iter()
        .map(|f| root.join(f))
        .collect();
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The lines of a Markdown file outside fenced code blocks.
fn prose(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|l| {
            if l.starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

/// The anchors GitHub gives a file's headings: lowercase, punctuation removed, spaces to `-`,
/// and `-1`, `-2`, ... after a repeated one.
fn anchors(text: &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for line in prose(text) {
        let Some(title) = line.trim_start_matches('#').strip_prefix(' ') else {
            continue;
        };
        if !line.starts_with('#') {
            continue;
        }
        let anchor: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let n = seen.iter().filter(|a| **a == anchor).count();
        out.push(if n == 0 {
            anchor.clone()
        } else {
            format!("{anchor}-{n}")
        });
        seen.push(anchor);
    }
    out
}

/// Every relative link in the README, docs/, benches/README.md and CHANGELOG.md leads to a file
/// that exists, and its `#anchor` to a heading there: moving a section must not strand a link.
#[test]
fn every_relative_link_in_the_docs_resolves() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in markdown_files(root) {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.strip_prefix(root).unwrap().display().to_string();
        for line in prose(&text) {
            for (at, _) in line.match_indices("](") {
                let rest = &line[at + 2..];
                let Some(end) = rest.find(')') else {
                    continue;
                };
                let target = &rest[..end];
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
                let linked = if path.is_empty() {
                    file.clone()
                } else {
                    file.parent().unwrap().join(path)
                };
                if !linked.exists() {
                    broken.push(format!("{name}: {target}: no such file"));
                    continue;
                }
                if anchor.is_empty() {
                    continue;
                }
                let found = linked.extension().is_some_and(|e| e == "md")
                    && anchors(&std::fs::read_to_string(&linked).unwrap())
                        .iter()
                        .any(|a| a == anchor);
                if !found {
                    broken.push(format!("{name}: {target}: no such heading"));
                }
            }
        }
    }
    assert!(checked > 20, "only {checked} links found");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}
