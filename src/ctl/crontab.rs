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
                 its own --lockname, or --lockname-from-args"
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
    } else if cli.lockname.is_none()
        && !cli.lockname_from_args
        && !cli.no_lock
        && is_generic(&cli.cmd_basename())
    {
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
mod tests;
