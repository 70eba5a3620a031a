//! `check-crontab`: finds the `--group` of every switchman invocation in crontab files and
//! reports those that name a group the prefix data does not define.

use std::path::{Path, PathBuf};

use super::{
    Ctl, Outcome, PROBLEMS, display_name, load_config, parse_file, print, read_input,
    read_prefix_data,
};
use crate::prefix_data::PrefixData;

pub(super) async fn check_crontab(
    ctl: &Ctl,
    files: &[PathBuf],
    data_file: Option<&Path>,
) -> Outcome {
    let mut references = Vec::new();
    for file in files {
        let text = read_input(file)?;
        let text = String::from_utf8_lossy(&text);
        for reference in crontab_groups(&text) {
            references.push((display_name(file), reference));
        }
    }
    let data = match data_file {
        Some(path) => {
            let bytes = read_input(path)?;
            parse_file(&display_name(path), &bytes)?
        }
        None => {
            let config = load_config(ctl)?;
            if references.is_empty() {
                // No line names a group: nothing to look up.
                PrefixData::default()
            } else {
                read_prefix_data(&config).await?
            }
        }
    };
    let mut report = String::new();
    for (file, reference) in &references {
        match &reference.group {
            Some(group) if data.groups.contains_key(group) => {}
            Some(group) => report.push_str(&format!(
                "{file}:{}: group {group:?} is not defined\n",
                reference.line
            )),
            None => report.push_str(&format!(
                "{file}:{}: --group without a group name\n",
                reference.line
            )),
        }
    }
    print(&report)?;
    Ok(if report.is_empty() { 0 } else { PROBLEMS })
}

/// One `--group` of a switchman command in a crontab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    /// 1-based line number.
    pub line: usize,
    /// `None` when the option has no value (switchman would refuse the line).
    pub group: Option<String>,
}

/// Every `--group` given to switchman in the crontab `text`, in order.
///
/// Comments, blank lines and variable assignments (`NAME=value`) are skipped; the schedule
/// (five fields, or one `@keyword`) is skipped; in the command, switchman is recognised by its
/// basename wherever it appears (after a user column, `cd dir &&`, `env X=1`, `nice`, ...), and
/// its options are read the way switchman reads them, up to CMD or `--`. A word `switchman`
/// directly followed by another switchman word is a system crontab's user column.
pub fn crontab_groups(text: &str) -> Vec<GroupRef> {
    let mut refs = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') || is_assignment(line) {
            continue;
        }
        let Some(command) = command_of(line) else {
            continue;
        };
        for group in invocation_groups(&tokenize(&cron_command(command))) {
            refs.push(GroupRef {
                line: index + 1,
                group,
            });
        }
    }
    refs
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

/// The `--group` values of every switchman invocation among `tokens`.
fn invocation_groups(tokens: &[Token]) -> Vec<Option<String>> {
    let mut groups = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Token::Word(w) if is_switchman(w) => {
                let user_column =
                    matches!(tokens.get(i + 1), Some(Token::Word(next)) if is_switchman(next));
                if user_column {
                    i += 1;
                } else {
                    i = switchman_options(tokens, i + 1, &mut groups);
                }
            }
            Token::Redirect => i += 2,
            _ => i += 1,
        }
    }
    groups
}

/// Reads switchman's options from `tokens[i..]` as clap does, collecting `--group` values;
/// returns the index of the operator that ends the command (or the end).
fn switchman_options(tokens: &[Token], mut i: usize, groups: &mut Vec<Option<String>>) -> usize {
    const LONG_WITH_VALUE: &[&str] = &[
        "--config",
        "--lockname",
        "--group",
        "--lease",
        "--busy-exit-code",
    ];
    const SHORT_WITH_VALUE: &[char] = &['c', 'g'];
    let next_word = |i: usize| match tokens.get(i) {
        Some(Token::Word(w)) => Some(w.clone()),
        _ => None,
    };
    let rest_of_command = |mut i: usize| {
        while i < tokens.len() && tokens[i] != Token::Operator {
            i += 1;
        }
        i
    };
    while i < tokens.len() {
        let word = match &tokens[i] {
            Token::Operator => return i,
            Token::Redirect => {
                i += 2;
                continue;
            }
            Token::Word(w) => w,
        };
        if word == "--" || !word.starts_with('-') || word == "-" {
            // CMD and its arguments: not switchman's.
            return rest_of_command(i);
        }
        if let Some(long) = word.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (format!("--{n}"), Some(v.to_string())),
                None => (word.clone(), None),
            };
            if LONG_WITH_VALUE.contains(&name.as_str()) {
                let value = match inline {
                    Some(v) => Some(v),
                    None => {
                        i += 1;
                        next_word(i)
                    }
                };
                if name == "--group" {
                    groups.push(value);
                }
            }
            i += 1;
            continue;
        }
        // A cluster of short options: `-v`, `-gweb`, `-vg web`.
        let cluster = &word[1..];
        for (at, c) in cluster.char_indices() {
            if SHORT_WITH_VALUE.contains(&c) {
                let attached = &cluster[at + c.len_utf8()..];
                let value = if attached.is_empty() {
                    i += 1;
                    next_word(i)
                } else {
                    Some(attached.to_string())
                };
                if c == 'g' {
                    groups.push(value);
                }
                break;
            }
        }
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups_of(text: &str) -> Vec<(usize, Option<String>)> {
        crontab_groups(text)
            .into_iter()
            .map(|r| (r.line, r.group))
            .collect()
    }

    fn none() -> Vec<Option<String>> {
        Vec::new()
    }

    fn one(line: &str) -> Vec<Option<String>> {
        crontab_groups(line).into_iter().map(|r| r.group).collect()
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
}
