//! `switchmanctl`: the operators' companion to `switchman`, for the groups and resources kept in
//! the prefix znode (contract sections 3 and 5).
//!
//! A second binary rather than subcommands of `switchman`, so that `switchman -- CMD` (and
//! `switchman CMD` with any CMD, even one called `groups`) stays unambiguous.
//!
//! Exit codes follow the contract's section 7 where they apply: 0 all well; 1 a check found
//! problems, or `set-data` found that someone else changed the data first (nothing written);
//! 64 usage; 66 an input file cannot be read; 69 ZooKeeper unavailable; 70 internal or ZooKeeper
//! error; 74 stdout cannot be written; 78 config error, or prefix data that does not parse.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use futures::StreamExt;

use crate::config::{self, Config};
use crate::error::Error;
use crate::prefix_data::PrefixData;
use crate::recipes::groups::fetch_prefix;
use crate::zk::Session;

/// Companion of switchman for operators: check crontabs and hosts against the groups in
/// ZooKeeper, show the groups, and read or safely write the prefix data.
///
/// Exit codes: 0 all well; 1 a check found problems, or set-data lost a race (nothing written);
/// 64 usage; 66 an input file cannot be read; 69 ZooKeeper unavailable; 70 internal or ZooKeeper
/// error; 74 stdout cannot be written; 78 config error or invalid prefix data.
#[derive(Debug, Parser)]
#[command(name = "switchmanctl", version)]
pub struct Ctl {
    /// Config file (the same as switchman's).
    #[arg(short = 'c', long, global = true, env = "SWITCHMAN_CONFIG", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check that every `switchman --group G` in crontab files names a defined group.
    ///
    /// Prints `FILE:LINE: group "G" is not defined` for each offending line and exits 1 if
    /// there is any. Understands comments, variable lines, @reboot/@daily schedules, system
    /// crontabs with a user column, switchman called by any path, and `%` (stdin) in commands.
    CheckCrontab {
        /// Crontab files; `-` reads standard input (e.g. `crontab -l | switchmanctl check-crontab -`).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Check against the prefix data in this JSON file instead of ZooKeeper (for CI, or
        /// before `set-data`); no config needed.
        #[arg(long, value_name = "JSON")]
        data: Option<PathBuf>,
    },
    /// Check that every group has at least one host whose name resolves; list those that don't.
    CheckHosts,
    /// Show groups fully expanded, one per line: `GROUP: HOST HOST ...` (sorted).
    Groups {
        /// Only these groups (default: all); an undefined one is named on stderr and makes the
        /// exit code 1.
        names: Vec<String>,
        /// Print a JSON object mapping each group to its hosts instead.
        #[arg(long)]
        json: bool,
    },
    /// Print the prefix data to stdout, exactly as stored, and its version alone on stderr.
    ///
    /// A missing prefix node prints nothing and version -1. Edit, then write back with
    /// `set-data FILE --if-version VERSION`.
    GetData,
    /// Validate a JSON file and write it as the prefix data, refusing to overwrite a change made
    /// by someone else meanwhile (compare-and-set on the znode's version).
    SetData {
        /// The new prefix data; `-` reads standard input.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Write only if the node is still at this version (as printed by get-data); -1 means
        /// "only if the node does not exist yet". Default: the version read just before writing.
        #[arg(long, value_name = "VERSION", allow_negative_numbers = true,
              value_parser = clap::value_parser!(i32).range(-1..))]
        if_version: Option<i32>,
    },
}

/// A failure of switchmanctl itself: the exit code and the one line to print on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure {
            code: e.exit_code(),
            message: e.to_string(),
        }
    }
}

/// Exit code of "a check found problems" and of a lost compare-and-set.
pub const PROBLEMS: i32 = 1;
const NO_INPUT: i32 = 66;
const IO_ERROR: i32 = 74;

type Outcome = std::result::Result<i32, Failure>;

/// The whole program: parses the command line, runs the subcommand, returns the exit code.
pub fn main() -> i32 {
    let ctl = match Ctl::try_parse() {
        Ok(ctl) => ctl,
        Err(e) => {
            let code = if e.use_stderr() { 64 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(&ctl)) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("switchmanctl: {}", f.message);
            f.code
        }
    }
}

/// Runs one subcommand.
pub async fn run(ctl: &Ctl) -> Outcome {
    match &ctl.command {
        Command::CheckCrontab { files, data } => check_crontab(ctl, files, data.as_deref()).await,
        Command::CheckHosts => check_hosts(ctl).await,
        Command::Groups { names, json } => groups(ctl, names, *json).await,
        Command::GetData => get_data(ctl).await,
        Command::SetData { file, if_version } => set_data(ctl, file, *if_version).await,
    }
}

fn load_config(ctl: &Ctl) -> std::result::Result<Config, Failure> {
    let config = Config::load(&ctl.config)?;
    for warning in &config.warnings {
        eprintln!("switchmanctl: warning: {warning}");
    }
    Ok(config)
}

/// Reads the prefix data once, with a session of its own.
async fn read_prefix_data(config: &Config) -> std::result::Result<PrefixData, Failure> {
    let session = Session::connect(config).await?;
    let read = fetch_prefix(&session, &config.prefix, false).await;
    session.close().await;
    let (bytes, _) = read?;
    Ok(PrefixData::parse(&config.prefix, &bytes)?)
}

fn read_input(path: &Path) -> std::result::Result<Vec<u8>, Failure> {
    let mut bytes = Vec::new();
    let read = if path == Path::new("-") {
        std::io::stdin().read_to_end(&mut bytes).map(|_| ())
    } else {
        std::fs::read(path).map(|b| bytes = b)
    };
    read.map_err(|e| Failure {
        code: NO_INPUT,
        message: format!("cannot read {}: {e}", display_name(path)),
    })?;
    Ok(bytes)
}

fn display_name(path: &Path) -> String {
    if path == Path::new("-") {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    }
}

fn print(text: &str) -> std::result::Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Failure {
            code: IO_ERROR,
            message: format!("cannot write to stdout: {e}"),
        })
}

// ---------------------------------------------------------------------------------------------
// check-crontab
// ---------------------------------------------------------------------------------------------

async fn check_crontab(ctl: &Ctl, files: &[PathBuf], data_file: Option<&Path>) -> Outcome {
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

// ---------------------------------------------------------------------------------------------
// check-hosts
// ---------------------------------------------------------------------------------------------

async fn check_hosts(ctl: &Ctl) -> Outcome {
    let config = load_config(ctl)?;
    let data = read_prefix_data(&config).await?;
    let expanded = expand_all(&data)?;
    let all: BTreeSet<&String> = expanded.values().flatten().collect();
    let resolved: BTreeMap<&String, bool> = futures::stream::iter(all)
        .map(|host| async move { (host, resolves(host).await) })
        .buffer_unordered(16)
        .collect()
        .await;

    let mut report = String::new();
    let mut unresolved_in: BTreeMap<&String, Vec<&String>> = BTreeMap::new();
    for (group, hosts) in &expanded {
        let bad: Vec<&String> = hosts.iter().filter(|h| !resolved[h]).collect();
        if hosts.is_empty() {
            report.push_str(&format!("group {group:?} has no hosts\n"));
        } else if bad.len() == hosts.len() {
            report.push_str(&format!(
                "group {group:?}: none of its {} hosts resolves: {}\n",
                hosts.len(),
                shorten(&bad)
            ));
        } else {
            for host in bad {
                unresolved_in.entry(host).or_default().push(group);
            }
        }
    }
    for (host, groups) in unresolved_in {
        let groups: Vec<String> = groups.iter().map(|g| format!("{g:?}")).collect();
        eprintln!(
            "switchmanctl: warning: host {host:?} does not resolve (in {})",
            groups.join(", ")
        );
    }
    print(&report)?;
    Ok(if report.is_empty() { 0 } else { PROBLEMS })
}

/// Whether the resolver knows `host` (getaddrinfo, as `hostname --fqdn` and ssh would ask).
async fn resolves(host: &str) -> bool {
    tokio::net::lookup_host((host, 0))
        .await
        .is_ok_and(|mut addrs| addrs.next().is_some())
}

fn shorten(hosts: &[&String]) -> String {
    const SHOWN: usize = 10;
    let mut text: Vec<&str> = hosts.iter().take(SHOWN).map(|h| h.as_str()).collect();
    let more = hosts.len().saturating_sub(SHOWN);
    let more = format!("... and {more} more");
    if hosts.len() > SHOWN {
        text.push(&more);
    }
    text.join(", ")
}

fn expand_all(
    data: &PrefixData,
) -> std::result::Result<BTreeMap<String, BTreeSet<String>>, Failure> {
    data.groups
        .keys()
        .map(|g| Ok((g.clone(), data.hosts_of(g)?)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// groups
// ---------------------------------------------------------------------------------------------

async fn groups(ctl: &Ctl, names: &[String], json: bool) -> Outcome {
    let config = load_config(ctl)?;
    let data = read_prefix_data(&config).await?;
    let mut shown = BTreeMap::new();
    let mut code = 0;
    if names.is_empty() {
        shown = expand_all(&data)?;
    }
    for name in names {
        match data.hosts_of(name) {
            Ok(hosts) => {
                shown.insert(name.clone(), hosts);
            }
            Err(_) => {
                eprintln!(
                    "switchmanctl: group {name:?} is not defined in {}",
                    config.prefix
                );
                code = PROBLEMS;
            }
        }
    }
    let text = if json {
        let mut text = serde_json::to_string_pretty(&shown).expect("strings serialise");
        text.push('\n');
        text
    } else {
        shown
            .iter()
            .map(|(group, hosts)| {
                let mut line = format!("{group}:");
                for host in hosts {
                    line.push(' ');
                    line.push_str(host);
                }
                line.push('\n');
                line
            })
            .collect()
    };
    print(&text)?;
    Ok(code)
}

// ---------------------------------------------------------------------------------------------
// get-data, set-data
// ---------------------------------------------------------------------------------------------

/// The prefix node's data and version; `None` if the node does not exist.
async fn read_versioned(
    session: &Session,
    prefix: &str,
) -> std::result::Result<Option<(Vec<u8>, i32)>, Failure> {
    Ok(session
        .data(prefix)
        .await?
        .map(|(data, stat)| (data, stat.version)))
}

async fn get_data(ctl: &Ctl) -> Outcome {
    let config = load_config(ctl)?;
    let session = Session::connect(&config).await?;
    let read = read_versioned(&session, &config.prefix).await;
    session.close().await;
    let (data, version) = read?.unwrap_or((Vec::new(), -1));
    let mut out = std::io::stdout().lock();
    out.write_all(&data)
        .and_then(|_| out.flush())
        .map_err(|e| Failure {
            code: IO_ERROR,
            message: format!("cannot write to stdout: {e}"),
        })?;
    eprintln!("{version}");
    Ok(0)
}

async fn set_data(ctl: &Ctl, file: &Path, if_version: Option<i32>) -> Outcome {
    let config = load_config(ctl)?;
    let bytes = read_input(file)?;
    let new = validate(&config, &display_name(file), &bytes)?;
    let session = Session::connect(&config).await?;
    let result = write_prefix(&session, &config, &bytes, &new, if_version).await;
    session.close().await;
    result
}

/// Parses prefix data read from the file `name`, with messages that name the file rather than
/// a znode.
fn parse_file(name: &str, bytes: &[u8]) -> std::result::Result<PrefixData, Failure> {
    PrefixData::parse(name, bytes).map_err(|e| {
        let mut f = Failure::from(e);
        f.message = f.message.replacen(
            &format!("prefix znode {name}"),
            &format!("prefix data in {name}"),
            1,
        );
        f
    })
}

/// Refuses data that would make runs fail: what switchman cannot parse, and what the original
/// Perl switchman, still running on some hosts, would read cut short at its `data_read_len`.
fn validate(config: &Config, name: &str, bytes: &[u8]) -> std::result::Result<PrefixData, Failure> {
    let data = parse_file(name, bytes).map_err(|f| Failure {
        message: format!("{}; nothing was written", f.message),
        ..f
    })?;
    if bytes.len() > config.data_read_len {
        return Err(Failure {
            code: 78,
            message: format!(
                "{name} is {} bytes, more than data_read_len ({}) in {}: the original switchman \
                 would read it cut short and fail; shorten it or raise data_read_len on every \
                 host; nothing was written",
                bytes.len(),
                config.data_read_len,
                config.path.display()
            ),
        });
    }
    Ok(data)
}

async fn write_prefix(
    session: &Session,
    config: &Config,
    bytes: &[u8],
    new: &PrefixData,
    if_version: Option<i32>,
) -> Outcome {
    let prefix = config.prefix.as_str();
    let current = read_versioned(session, prefix).await?;
    let expected = match if_version {
        Some(v) => v,
        None => current.as_ref().map_or(-1, |(_, v)| *v),
    };
    let written = if expected == -1 {
        session.create_persistent(prefix, bytes).await
    } else {
        session.set_data(prefix, bytes, expected).await
    };
    match written? {
        Some(stat) => {
            // The write replaced exactly the data read (same version), so compare with it.
            if let Some((old, old_version)) = &current
                && *old_version == expected
            {
                warn_about_removals(prefix, old, new);
            }
            eprintln!(
                "switchmanctl: wrote {prefix}, now at version {}",
                stat.version
            );
            Ok(0)
        }
        None => {
            let now = match read_versioned(session, prefix).await? {
                Some((_, v)) => format!("it is at version {v} now"),
                None => "it does not exist now (version -1)".to_string(),
            };
            let expected = if expected == -1 {
                "expected it not to exist".to_string()
            } else {
                format!("expected version {expected}")
            };
            eprintln!(
                "switchmanctl: someone else changed {prefix} ({expected}; {now}); nothing was \
                 written: run get-data again, redo the edit and retry with that --if-version"
            );
            Ok(PROBLEMS)
        }
    }
}

/// Groups or resources that the new data drops: runs naming them will fail (and a running
/// CMD whose group goes is stopped), so say so, though it may well be intended.
fn warn_about_removals(prefix: &str, old: &[u8], new: &PrefixData) {
    let Ok(old) = PrefixData::parse(prefix, old) else {
        return;
    };
    for group in old.groups.keys().filter(|g| !new.groups.contains_key(*g)) {
        eprintln!(
            "switchmanctl: warning: group {group:?} is removed: runs with --group {group} will \
             fail (78), and running ones are stopped"
        );
    }
    for resource in old.resources.iter().filter(|r| !new.resources.contains(r)) {
        eprintln!(
            "switchmanctl: warning: resource {resource:?} is removed: runs leasing it will fail (78)"
        );
    }
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
