//! `check-crontab`: reads every switchman invocation in crontab files the way switchman itself
//! would, and reports what a run would refuse before connecting: unknown options, bad lock
//! names, lease specs that do not parse or add up on this host, resources the prefix data does
//! not list, and groups it does not define; default lock names that unrelated jobs share; and
//! what the original switchman would read differently (docs/operators.md).
//!
//! The invocation's words are parsed by switchman's own [`Cli`], not by a copy of its options
//! here, so the check cannot drift from what switchman accepts.

use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, FromArgMatches};

use super::invocation::{is_generic, lease_problems, read_after_cmd};
use super::{
    Ctl, Failure, Outcome, PROBLEMS, display_name, load_config, parse_file, print, read_input,
    read_prefix_data,
};
use crate::cli::{Cli, getopt};
use crate::config::Config;
use crate::host;
use crate::lease_spec::Macros;
use crate::prefix_data::PrefixData;

pub(super) async fn check_crontab(
    ctl: &Ctl,
    files: &[PathBuf],
    data_file: Option<&Path>,
) -> Outcome {
    let mut findings = Vec::new();
    for file in files {
        let text = read_input(file)?;
        let text = String::from_utf8_lossy(&text);
        for finding in crontab_findings(&text) {
            findings.push((display_name(file), finding));
        }
    }
    let needs = |f: fn(&Found) -> bool| findings.iter().any(|(_, finding)| f(&finding.found));
    let leases = needs(|f| matches!(f, Found::Leases(_)));
    let needs_data = leases || needs(|f| matches!(f, Found::Group(_)));
    let (config, data, listed_in) = match data_file {
        Some(path) => {
            let bytes = read_input(path)?;
            let name = display_name(path);
            // No config needed; if there is one, its `fqdn` is this host's name for the macros.
            let config = Config::load(&ctl.config).ok();
            (
                config,
                parse_file(&name, &bytes)?,
                format!("prefix data in {name}"),
            )
        }
        None => {
            let config = load_config(ctl)?;
            // Nothing to look up unless a line names a group or leases.
            let data = match needs_data {
                true => read_prefix_data(&config).await?,
                false => PrefixData::default(),
            };
            let listed_in = format!("prefix znode {}", config.prefix);
            (Some(config), data, listed_in)
        }
    };
    let macros = match leases {
        true => {
            let fqdn = host::fqdn(config.as_ref().and_then(|c| c.fqdn.as_deref()));
            Some(Macros::for_host(&fqdn).map_err(Failure::from)?)
        }
        false => None,
    };
    let mut report = String::new();
    for (file, Finding { line, found }) in &findings {
        let problems = match found {
            Found::Group(group) if data.groups.contains_key(group) => continue,
            Found::Group(group) => vec![format!("group {group:?} is not defined")],
            Found::GroupWithoutName => vec!["--group without a group name".to_string()],
            Found::Refused(reason) => {
                vec![format!("switchman would refuse this (exit 64): {reason}")]
            }
            Found::Leases(specs) => {
                let macros = macros.as_ref().expect("macros are read when a line leases");
                lease_problems(specs, macros, &data, &listed_in)
            }
            Found::OptionsAfterCmd(reading) => vec![reading.clone()],
            Found::GenericLockName(name) => vec![format!(
                "the lock name defaults to CMD's basename {name:?}, which every job run through \
                 {name} shares: while one runs, the others are skipped silently; give this job \
                 its own --lockname"
            )],
        };
        for problem in problems {
            report.push_str(&format!("{file}:{line}: {problem}\n"));
        }
    }
    print(&report)?;
    Ok(if report.is_empty() { 0 } else { PROBLEMS })
}

/// What the check makes of one switchman invocation in a crontab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// 1-based line number.
    pub line: usize,
    pub found: Found,
}

/// What a switchman invocation says that the check must look at. An invocation that switchman
/// accepts, with no `--group`, no `--lease`, a lock name of its own and nothing after CMD that
/// the original would take as its option, says nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// `--group NAME`: NAME must be a group of the prefix data.
    Group(String),
    /// `--group` with nothing after it. Switchman refuses this like any other usage error; it
    /// has a message of its own because it is the likely slip of a half-edited line.
    GroupWithoutName,
    /// Switchman would refuse the invocation as a usage error, for this reason (clap's, or the
    /// lock name's).
    Refused(String),
    /// `--lease` specs, to be checked with this host's macros against the prefix data's
    /// resources.
    Leases(Vec<String>),
    /// Words after CMD, with no `--` before it, that the original takes as its options: what
    /// it makes of them.
    OptionsAfterCmd(String),
    /// No `--lockname`, and CMD's basename (the default lock name) is a command that runs
    /// other commands, such as `sh` or `sudo`, which unrelated jobs share.
    GenericLockName(String),
}

/// Every switchman invocation in the crontab `text` that names a group or that switchman
/// would refuse, in order.
///
/// Comments, blank lines and variable assignments (`NAME=value`) are skipped; the schedule
/// (five fields, or one `@keyword`) is skipped; in the command, switchman is recognised by its
/// basename wherever it appears (after a user column, `cd dir &&`, `env X=1`, `nice`, ...).
/// Its arguments are the words after it up to the end of the simple command (a shell operator
/// such as `;`, `&&` or `|`), without redirections, as the shell would pass them; they are
/// parsed by switchman's own [`Cli`], which leaves everything from CMD on to CMD.
///
/// A word `switchman` directly followed by another switchman word is a system crontab's user
/// column. A `switchman` word with nothing after it that does not start its simple command
/// (`test -x /usr/bin/switchman`, `pkill switchman`) names switchman rather than running it.
pub fn crontab_findings(text: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') || is_assignment(line) {
            continue;
        }
        let Some(command) = command_of(line) else {
            continue;
        };
        for words in invocations(&tokenize(&cron_command(command))) {
            for found in read_invocation(&words) {
                findings.push(Finding {
                    line: index + 1,
                    found,
                });
            }
        }
    }
    findings
}

/// `NAME = value`: cron's environment lines. A schedule never has `=` in its first field.
fn is_assignment(line: &str) -> bool {
    line.split_once('=').is_some_and(|(name, _)| {
        !name.trim().is_empty() && !name.trim().contains(char::is_whitespace)
    })
}

/// The command part of a job line: after `@keyword`, or after five time fields.
fn command_of(line: &str) -> Option<&str> {
    let fields = if line.starts_with('@') { 1 } else { 5 };
    let mut rest = line;
    for _ in 0..fields {
        let start = rest.find(|c: char| !c.is_whitespace())?;
        rest = &rest[start..];
        let end = rest.find(char::is_whitespace)?;
        rest = &rest[end..];
    }
    Some(rest.trim())
}

/// cron's own processing of the command: an unescaped `%` ends it (the rest is CMD's stdin),
/// and `\%` stands for `%`.
fn cron_command(command: &str) -> String {
    let mut out = String::new();
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '%' => break,
            '\\' if chars.peek() == Some(&'%') => {
                out.push('%');
                chars.next();
            }
            c => out.push(c),
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    /// `;`, `&&`, `|`, `(`, ...: ends a simple command.
    Operator,
    /// `>`, `2>>`, `<`, `&>`, `>&`...: the next word is its target, not an argument.
    Redirect,
}

/// Splits a shell command line into words (quotes and backslashes removed), operators and
/// redirections. Enough of sh to find switchman's options; nothing is expanded.
fn tokenize(command: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    // Whether a word is in progress (it may be empty: `''`), and whether any of it was quoted.
    let (mut in_word, mut quoted) = (false, false);
    let mut chars = command.chars().peekable();
    let end_word = |tokens: &mut Vec<Token>, word: &mut String, in_word: &mut bool| {
        if *in_word {
            tokens.push(Token::Word(std::mem::take(word)));
            *in_word = false;
        }
    };
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                end_word(&mut tokens, &mut word, &mut in_word);
                quoted = false;
            }
            '#' if !in_word => break,
            '\'' => {
                in_word = true;
                quoted = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    word.push(c);
                }
            }
            '"' => {
                in_word = true;
                quoted = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' if matches!(chars.peek(), Some('"' | '\\' | '$' | '`')) => {
                            word.push(chars.next().expect("peeked"));
                        }
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    word.push(c);
                }
            }
            '<' | '>' => {
                // `2>`: the digits before a redirection are a file descriptor, not a word.
                if in_word && !quoted && word.bytes().all(|b| b.is_ascii_digit()) {
                    word.clear();
                    in_word = false;
                }
                end_word(&mut tokens, &mut word, &mut in_word);
                quoted = false;
                while matches!(chars.peek(), Some('<' | '>' | '&' | '|')) {
                    chars.next();
                }
                tokens.push(Token::Redirect);
            }
            '&' if chars.peek() == Some(&'>') => {
                end_word(&mut tokens, &mut word, &mut in_word);
                quoted = false;
                while matches!(chars.peek(), Some('>' | '&')) {
                    chars.next();
                }
                tokens.push(Token::Redirect);
            }
            ';' | '&' | '|' | '(' | ')' | '`' => {
                end_word(&mut tokens, &mut word, &mut in_word);
                quoted = false;
                if tokens.last() != Some(&Token::Operator) {
                    tokens.push(Token::Operator);
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    end_word(&mut tokens, &mut word, &mut in_word);
    tokens
}

fn is_switchman(word: &str) -> bool {
    Path::new(word)
        .file_name()
        .is_some_and(|n| n == "switchman")
}

/// The arguments of every switchman invocation among `tokens`.
fn invocations(tokens: &[Token]) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    // Whether tokens[i] starts a simple command: only leading `NAME=value` words came before.
    let mut command_start = true;
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Token::Operator => {
                command_start = true;
                i += 1;
            }
            Token::Redirect => i += 2,
            Token::Word(w) if is_switchman(w) => {
                let user_column =
                    matches!(tokens.get(i + 1), Some(Token::Word(next)) if is_switchman(next));
                if user_column {
                    i += 1;
                    continue;
                }
                let (words, end) = arguments(tokens, i + 1);
                if command_start || !words.is_empty() {
                    found.push(words);
                }
                command_start = false;
                i = end;
            }
            Token::Word(w) => {
                command_start &= is_assignment_word(w);
                i += 1;
            }
        }
    }
    found
}

/// The words of `tokens[i..]` up to the operator that ends the simple command, redirections
/// and their targets left out; and the index of that operator (or the end).
fn arguments(tokens: &[Token], mut i: usize) -> (Vec<String>, usize) {
    let mut words = Vec::new();
    while i < tokens.len() {
        match &tokens[i] {
            Token::Operator => break,
            Token::Redirect => i += 2,
            Token::Word(w) => {
                words.push(w.clone());
                i += 1;
            }
        }
    }
    (words, i.min(tokens.len()))
}

/// `NAME=value` in front of a command: the shell's environment assignment.
fn is_assignment_word(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// Parses one invocation's arguments exactly as switchman parses its command line.
fn read_invocation(words: &[String]) -> Vec<Found> {
    let argv = || std::iter::once("switchman").chain(words.iter().map(String::as_str));
    let e = match Cli::try_parse_args(argv()) {
        Ok(cli) => return read_accepted(&cli),
        // `--help` and `--version`: switchman prints and exits 0, running nothing.
        Err(e) if !e.use_stderr() => return Vec::new(),
        Err(e) => e,
    };
    if is_group_without_name(&e) {
        return vec![Found::GroupWithoutName];
    }
    let mut found = vec![Found::Refused(reason(&e))];
    // A missing CMD is noticed only once every option has been read, so the `--group` read is
    // sound, and worth checking too: the line is likely cut short by a `%`, or half-edited.
    // Any other refusal stops clap midway, and what follows cannot be trusted.
    let mut cmd = Cli::command().ignore_errors(true);
    cmd.build();
    if e.kind() == ErrorKind::MissingRequiredArgument
        && let Ok(args) = getopt::normalise(&mut cmd, argv().map(Into::into).collect())
        && let Ok(matches) = cmd.try_get_matches_from(args)
        && let Ok(cli) = Cli::from_arg_matches(&matches)
    {
        found.extend(cli.group.map(Found::Group));
    }
    found
}

/// What the check must look at in an invocation that parses.
fn read_accepted(cli: &Cli) -> Vec<Found> {
    let mut found = Vec::new();
    if let Err(e) = cli.lock_name() {
        found.push(Found::Refused(match e {
            crate::error::Error::Usage(m) => m,
            other => other.to_string(),
        }));
    } else if cli.lockname.is_none() && !cli.no_lock && is_generic(&cli.cmd_basename()) {
        found.push(Found::GenericLockName(cli.cmd_basename()));
    }
    found.extend(cli.group.clone().map(Found::Group));
    if !cli.leases.is_empty() {
        found.push(Found::Leases(cli.leases.clone()));
    }
    if !cli.cmd_after_dashes {
        let after: Vec<String> = cli.cmd[1..]
            .iter()
            .map(|w| w.to_string_lossy().into_owned())
            .collect();
        found.extend(read_after_cmd(&after).map(Found::OptionsAfterCmd));
    }
    found
}

/// Whether clap refused the invocation because `--group` had no value after it.
fn is_group_without_name(e: &clap::Error) -> bool {
    // clap names the option in its error the way the built `Arg` displays itself.
    let mut cli = Cli::command();
    cli.build();
    let Some(group) = cli.get_arguments().find(|a| a.get_id() == "group") else {
        return false;
    };
    e.kind() == ErrorKind::InvalidValue
        && e.get(ContextKind::InvalidArg) == Some(&ContextValue::String(group.to_string()))
        && e.get(ContextKind::InvalidValue) == Some(&ContextValue::String(String::new()))
}

/// clap's message and tips on one line, without the usage and the pointer to `--help`: they
/// are about the command line of a crontab, not of switchmanctl.
fn reason(e: &clap::Error) -> String {
    let text = e.to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    let mut reason = String::new();
    let paragraphs = text
        .split("\n\n")
        .filter(|p| !p.starts_with("Usage:") && !p.starts_with("For more information"));
    for (p, paragraph) in paragraphs.enumerate() {
        for (l, line) in paragraph
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .enumerate()
        {
            if p > 0 || l > 0 {
                // A tip is a sentence of its own; other lines continue the message.
                reason.push_str(if p > 0 || line.starts_with("tip:") {
                    "; "
                } else {
                    " "
                });
            }
            reason.push_str(line);
        }
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `--group` values found, `None` for a `--group` without one; the rest left out.
    fn groups_of(text: &str) -> Vec<(usize, Option<String>)> {
        crontab_findings(text)
            .into_iter()
            .filter_map(|f| match f.found {
                Found::Group(g) => Some((f.line, Some(g))),
                Found::GroupWithoutName => Some((f.line, None)),
                _ => None,
            })
            .collect()
    }

    fn none() -> Vec<Option<String>> {
        Vec::new()
    }

    fn one(line: &str) -> Vec<Option<String>> {
        groups_of(line).into_iter().map(|(_, g)| g).collect()
    }

    fn some(g: &str) -> Vec<Option<String>> {
        vec![Some(g.to_string())]
    }

    #[test]
    fn every_spelling_of_the_option() {
        assert_eq!(one("0 * * * * switchman --group web job"), some("web"));
        assert_eq!(one("0 * * * * switchman --group=web job"), some("web"));
        assert_eq!(one("0 * * * * switchman -g web job"), some("web"));
        assert_eq!(one("0 * * * * switchman -gweb job"), some("web"));
        assert_eq!(one("0 * * * * switchman -vg web job"), some("web"));
        assert_eq!(one("0 * * * * switchman -vgweb job"), some("web"));
        assert_eq!(one("0 * * * * switchman --group= job"), some(""));
        assert_eq!(one("0 * * * * switchman job -g web"), none());
    }

    #[test]
    fn options_with_values_are_skipped_over() {
        assert_eq!(
            one("0 * * * * switchman -c /etc/s.conf --lockname x --lease r=1:2 -g web job"),
            some("web")
        );
        assert_eq!(one("0 * * * * switchman -c-g -g web job"), some("web"));
        assert_eq!(one("0 * * * * switchman --lockname -g job"), none());
        assert_eq!(
            one("0 * * * * switchman --busy-exit-code=3 --no-lock -g w job"),
            some("w")
        );
    }

    #[test]
    fn cmd_and_its_arguments_are_not_switchmans() {
        assert_eq!(one("0 * * * * switchman -- -g web"), none());
        assert_eq!(one("0 * * * * switchman -g a -- job -g b"), some("a"));
        assert_eq!(one("0 * * * * switchman job --group b"), none());
        assert_eq!(one("0 * * * * other -g web"), none());
        assert_eq!(one("0 * * * * switchmanctl groups -g web"), none());
    }

    #[test]
    fn schedules_users_and_paths() {
        assert_eq!(one("@reboot switchman -g a job"), some("a"));
        assert_eq!(one("@daily\t/usr/local/bin/switchman -g a job"), some("a"));
        assert_eq!(
            one("*/5 1-3 * jan mon-fri root switchman -g a job"),
            some("a")
        );
        assert_eq!(one("0 * * * * switchman switchman -g a job"), some("a"));
        assert_eq!(one("0 * * * * $HOME/bin/switchman -g a job"), some("a"));
        assert_eq!(one("0 * * * *"), none());
        assert_eq!(one("@reboot"), none());
    }

    #[test]
    fn comments_and_variables_are_skipped() {
        let text = "# 0 * * * * switchman -g a job\n\
                    \x20  # indented comment switchman -g b\n\
                    GROUP=switchman -g c\n\
                    MAILTO = ops@example.com\n\
                    \n\
                    0 * * * * switchman -g d job # switchman -g e\n\
                    0 * * * * FOO=1 switchman -g f job\n";
        assert_eq!(
            groups_of(text),
            vec![(6, Some("d".to_string())), (7, Some("f".to_string()))]
        );
    }

    #[test]
    fn shell_syntax() {
        assert_eq!(one("0 * * * * cd /x && switchman -g a job"), some("a"));
        assert_eq!(one("0 * * * * cd /x&&switchman -g a job"), some("a"));
        assert_eq!(
            one("0 * * * * switchman -g 'two words' job"),
            some("two words")
        );
        assert_eq!(one(r#"0 * * * * switchman -g "a\"b" job"#), some("a\"b"));
        assert_eq!(one(r"0 * * * * switchman -g a\ b job"), some("a b"));
        assert_eq!(
            one("0 * * * * switchman >/dev/null 2>&1 -g a job"),
            some("a")
        );
        assert_eq!(
            one("0 * * * * switchman -g a job; switchman -g b job2 | x"),
            {
                let mut v = some("a");
                v.extend(some("b"));
                v
            }
        );
        assert_eq!(
            one("0 * * * * switchman -g a sh -c 'switchman -g b'"),
            some("a")
        );
        assert_eq!(one("0 * * * * switchman -g"), vec![None]);
        assert_eq!(one("0 * * * * switchman -g ; x"), vec![None]);
    }

    #[test]
    fn percent_ends_the_command() {
        assert_eq!(one("0 * * * * switchman job % -g a"), none());
        assert_eq!(one("0 * * * * switchman -g a%b job"), some("a"));
        assert_eq!(one(r"0 * * * * switchman -g a\%b job"), some("a%b"));
    }

    /// Everything found in a one-line crontab.
    fn found(line: &str) -> Vec<Found> {
        crontab_findings(line)
            .into_iter()
            .map(|f| f.found)
            .collect()
    }

    fn refused(line: &str) -> String {
        match found(line).as_slice() {
            [Found::Refused(reason)] => reason.clone(),
            other => panic!("{line:?}: expected one refusal, found {other:?}"),
        }
    }

    #[test]
    fn lines_switchman_would_refuse_are_found_with_claps_reason() {
        assert_eq!(
            refused("0 * * * * switchman --grup web job"),
            "unexpected argument '--grup' found; tip: a similar argument exists: '--group'; \
             tip: to pass '--grup' as a value, use '-- --grup'"
        );
        assert_eq!(
            refused("0 * * * * switchman --lockname"),
            "a value is required for '--lockname <NAME>' but none was supplied"
        );
        assert_eq!(
            refused("0 * * * * switchman --lo x job"),
            "'--lo' is ambiguous: it could be --lock or --lockname"
        );
        assert!(refused("0 * * * * switchman -g a -g b job").contains("multiple times"));
        assert!(refused("0 * * * * switchman --no-lock --lockname x job").contains("--no-lock"));
        assert!(refused("0 * * * * switchman --busy-exit-code 300 job").contains("'300'"));
        // No CMD: refused, and the group is checked as well, since every option was read.
        let no_cmd = "the following required arguments were not provided: <CMD>...";
        assert_eq!(refused("0 * * * * switchman"), no_cmd);
        assert_eq!(refused("0 * * * * cd /x && switchman >/dev/null"), no_cmd);
        assert_eq!(refused("0 * * * * FOO=1 switchman -v"), no_cmd);
        for line in [
            "0 * * * * switchman -g a%b job",
            "0 * * * * switchman --GR=a",
        ] {
            assert_eq!(
                found(line),
                [
                    Found::Refused(no_cmd.to_string()),
                    Found::Group("a".to_string())
                ],
                "{line}"
            );
        }
    }

    #[test]
    fn lock_names_and_leases_are_read_as_a_run_reads_them() {
        assert_eq!(
            found("0 * * * * switchman --lockname a/b job"),
            [Found::Refused(
                "--lockname \"a/b\" may not contain / (it must be a single ZooKeeper path \
                 component)"
                    .to_string()
            )]
        );
        assert_eq!(
            found("0 * * * * switchman -- sh -c 'backup --all'"),
            [Found::GenericLockName("sh".to_string())]
        );
        assert_eq!(found("0 * * * * switchman --lockname b -- sh -c x"), []);
        assert_eq!(found("0 * * * * switchman --no-lock /usr/bin/sudo x"), []);
        assert_eq!(
            found("0 * * * * switchman -g a --lease r=1:2 --lease s=1:CPU job"),
            [
                Found::Group("a".to_string()),
                Found::Leases(vec!["r=1:2".to_string(), "s=1:CPU".to_string()])
            ]
        );
    }

    #[test]
    fn lines_naming_switchman_without_running_it_are_not_refused() {
        assert_eq!(found("0 * * * * pkill switchman"), []);
        assert_eq!(found("0 * * * * ls /usr/bin/switchman >/dev/null"), []);
        assert_eq!(
            found("0 * * * * test -x /usr/bin/switchman && switchman -g a job"),
            [Found::Group("a".to_string())]
        );
        // Help and version: switchman prints and exits 0 without running anything.
        assert_eq!(found("0 * * * * switchman --help -g a job"), []);
        assert_eq!(found("0 * * * * switchman -V"), []);
    }

    /// A new option of switchman's is understood here without a change, since the words are
    /// read by switchman's own `Cli`; this pins it, for every spelling of every option.
    #[test]
    fn every_option_of_switchmans_is_understood() {
        let mut cli = Cli::command();
        // Built, so that clap's own --help and --version are among the arguments too.
        cli.build();
        let mut group_seen = false;
        for arg in cli.get_arguments().filter(|a| !a.is_positional()) {
            let takes_value = arg.get_action().takes_values();
            let is_group = arg.get_id() == "group";
            group_seen |= is_group;
            // "1" suits every value parser of switchman's so far; a list of values is heeded.
            let value = match arg.get_possible_values().first() {
                Some(v) => v.get_name().to_string(),
                None if is_group => "web".to_string(),
                None => "1".to_string(),
            };
            let rest = if is_group { "job" } else { "-g web job" };
            // switchman's arguments, each using this option once, in one of its spellings.
            let mut uses = Vec::new();
            let longs = arg.get_all_aliases().unwrap_or_default();
            for long in longs.into_iter().chain(arg.get_long()) {
                if takes_value {
                    uses.push(format!("--{long} {value} {rest}"));
                    uses.push(format!("--{long}={value} {rest}"));
                } else {
                    uses.push(format!("--{long} {rest}"));
                }
            }
            let shorts = arg.get_all_short_aliases().unwrap_or_default();
            for short in shorts.into_iter().chain(arg.get_short()) {
                if takes_value {
                    uses.push(format!("-{short} {value} {rest}"));
                    uses.push(format!("-{short}{value} {rest}"));
                } else {
                    uses.push(format!("-{short} {rest}"));
                    uses.push(format!("-{short}g web job"));
                    uses.push(format!("-{short}gweb job"));
                }
            }
            assert!(
                !uses.is_empty(),
                "{:?}: no long or short form",
                arg.get_id()
            );
            let expected = match arg.get_action() {
                // switchman prints and exits 0 without running anything, so no group is used.
                clap::ArgAction::Help
                | clap::ArgAction::HelpShort
                | clap::ArgAction::HelpLong
                | clap::ArgAction::Version => Vec::new(),
                _ => vec![Found::Group("web".to_string())],
            };
            for args in uses {
                let line = format!("0 * * * * switchman {args}");
                // What an option's own value leads to (`--lease 1`) is another test's business.
                let read: Vec<Found> = found(&line)
                    .into_iter()
                    .filter(|f| !matches!(f, Found::Leases(_)))
                    .collect();
                assert_eq!(read, expected, "{line}");
            }
        }
        assert!(group_seen, "switchman has no --group any more?");
    }

    #[test]
    fn options_after_cmd_are_read_as_the_original_reads_them() {
        let after = |line: &str| -> Vec<String> {
            found(line)
                .into_iter()
                .filter_map(|f| match f {
                    Found::OptionsAfterCmd(reading) => Some(reading),
                    _ => None,
                })
                .collect()
        };
        let [reading] = &after("0 * * * * switchman backup.sh --lockname nightly")[..] else {
            panic!("one finding expected");
        };
        assert_eq!(
            reading,
            "the original takes options after CMD too, up to a '--': it would read '--lockname \
             nightly' (its --lockname), where switchman passes them to CMD; write -- before CMD \
             for both to pass them to CMD"
        );
        assert!(
            after("0 * * * * switchman --lockname b sh -c x")[0].contains("'-c x' (its --config)")
        );
        assert!(
            after("0 * * * * switchman grep -v x f")[0].contains(
                "'-v' (its --version: it prints its version and exits 1, running nothing)"
            )
        );
        // Everything after a `--` is CMD's for both; a `--` after CMD is the original's end of
        // options, which it drops.
        assert_eq!(
            after("0 * * * * switchman -- backup.sh --lockname nightly"),
            none_s()
        );
        // A `--` right after an option that takes a value is that value, for both.
        assert!(after("0 * * * * switchman --lockname -- backup.sh -v")[0].contains("'-v'"));
        assert!(
            after("0 * * * * switchman backup.sh -- -v")[0]
                .contains("read '--' (the end of its options, which it drops), where")
        );
        // Words that are not options, for Getopt::Long as for switchman.
        assert_eq!(after("0 * * * * switchman cp a - b"), none_s());
        assert_eq!(after("0 * * * * switchman job % --lockname x"), none_s());
        // Lines switchman refuses or does not run are another finding's business.
        assert_eq!(after("0 * * * * switchman --bogus job -v"), none_s());
        assert_eq!(after("0 * * * * switchman --help job -v"), none_s());
    }

    fn none_s() -> Vec<String> {
        Vec::new()
    }
}
