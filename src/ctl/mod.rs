//! `switchmanctl`: the operators' companion to `switchman`, for the groups and resources kept in
//! the prefix znode (README: "ZooKeeper layout", "Groups" and "switchmanctl, for operators").
//!
//! A second binary rather than subcommands of `switchman`, so that `switchman -- CMD` (and
//! `switchman CMD` with any CMD, even one called `groups`) stays unambiguous.
//!
//! Exit codes follow switchman's (README: "Exit codes") where they apply: 0 all well; 1 a check
//! found problems, or `set-data` found that someone else changed the data first (nothing
//! written); 64 usage; 66 an input file cannot be read; 69 ZooKeeper unavailable; 70 internal or
//! ZooKeeper error; 74 stdout cannot be written; 77 ZooKeeper refused us (credentials, ACL,
//! TLS); 78 config error, or prefix data that does not parse.
//!
//! This module holds the command line, the dispatch and what the subcommands share; each
//! subcommand's own logic is in a module of its own.

mod crontab;
mod data;
mod groups;
mod hosts;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::config::{self, Config};
use crate::error::Error;
use crate::prefix_data::PrefixData;
use crate::recipes::groups::fetch_prefix;
use crate::zk::Session;

pub use crontab::{Finding, Found, crontab_findings};

/// Companion of switchman for operators: check crontabs and hosts against the groups in
/// ZooKeeper, show the groups, and read or safely write the prefix data.
///
/// Exit codes: 0 all well; 1 a check found problems, or set-data lost a race (nothing written);
/// 64 usage; 66 an input file cannot be read; 69 ZooKeeper unavailable; 70 internal or ZooKeeper
/// error; 74 stdout cannot be written; 77 ZooKeeper refused us (credentials, ACL, TLS); 78 config
/// error or invalid prefix data.
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
    /// Check that every `switchman --group G` in crontab files names a defined group, and that
    /// switchman would accept each of its command lines at all.
    ///
    /// Prints `FILE:LINE: group "G" is not defined`, or `FILE:LINE: switchman would refuse
    /// this (exit 64): REASON`, for each offending line and exits 1 if there is any. Understands
    /// comments, variable lines, @reboot/@daily schedules, system crontabs with a user column,
    /// switchman called by any path, and `%` (stdin) in commands.
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
        Command::CheckCrontab { files, data } => {
            crontab::check_crontab(ctl, files, data.as_deref()).await
        }
        Command::CheckHosts => hosts::check_hosts(ctl).await,
        Command::Groups { names, json } => groups::groups(ctl, names, *json).await,
        Command::GetData => data::get_data(ctl).await,
        Command::SetData { file, if_version } => data::set_data(ctl, file, *if_version).await,
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

/// Writes `text` to stdout; a closed or full stdout is exit 74, not a panic.
fn print(text: impl AsRef<[u8]>) -> std::result::Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_ref())
        .and_then(|_| out.flush())
        .map_err(|e| Failure {
            code: IO_ERROR,
            message: format!("cannot write to stdout: {e}"),
        })
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
