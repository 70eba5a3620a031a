//! `switchmanctl`: the operators' companion to `switchman`: what holds and waits under the
//! prefix, stopping a lock's holder, and the groups and resources kept in the prefix znode
//! (docs/layout.md, docs/guide.md: "Groups", and docs/operators.md).
//!
//! A second binary rather than subcommands of `switchman`, so that `switchman -- CMD` (and
//! `switchman CMD` with any CMD, even one called `groups`) stays unambiguous.
//!
//! Exit codes are switchman's where they apply; they are all in [`crate::exit::TABLE`], which
//! `--help` and the man page show.
//!
//! This module holds the command line, the dispatch and what the subcommands share; each
//! subcommand's own logic is in a module of its own.

mod check_config;
mod crontab;
mod data;
mod groups;
mod history;
mod hosts;
mod invocation;
mod listener;
mod metrics;
mod serve;
mod server_settings;
mod status;
mod stop;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{self, Config};
use crate::error::Error;
use crate::exit;
use crate::prefix_data::PrefixData;
use crate::recipes::groups::fetch_prefix;
use crate::zk::Session;

pub use crontab::{Finding, Found, crontab_findings};

/// Companion of switchman for operators: see who holds and waits for what, stop a lock's holder,
/// check crontabs and hosts against the groups in ZooKeeper, show the groups, and read or safely
/// write the prefix data.
#[derive(Debug, Parser)]
#[command(name = "switchmanctl", version,
          after_long_help = crate::manual::exit_help(crate::exit::Binary::Switchmanctl))]
pub struct Ctl {
    /// Config file (the same as switchman's) [default: /etc/switchman.conf].
    #[arg(short = 'c', long, value_name = "PATH", global = true, env = "SWITCHMAN_CONFIG",
          default_value = config::DEFAULT_PATH, hide_default_value = true,
          value_hint = clap::ValueHint::FilePath, value_parser = crate::cli::config_path_parser())]
    pub config: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show who holds each lock, who waits in each queue (in queue order), how much of each
    /// semaphore is leased, and the groups, all read in one pass.
    ///
    /// Ages are measured against this host's clock; `--json` gives creation times as the servers
    /// recorded them (RFC 3339, UTC) and each lock's fencing token.
    Status {
        /// Print one JSON object for scripts instead of tables.
        #[arg(long)]
        json: bool,
        /// Only this job: its lock, and its items in every queue.
        #[arg(long, value_name = "NAME")]
        lock: Option<String>,
        /// Only this resource: its queue and its semaphore.
        #[arg(long, value_name = "RES")]
        resource: Option<String>,
        /// Show it again whenever something shown changes (ZooKeeper watches, no polling),
        /// until interrupted. With --json, one object per line.
        #[arg(long)]
        watch: bool,
    },
    /// Print what `status` knows as Prometheus metrics (classic text format): locks held and
    /// for how long, queue lengths, semaphores used and total, group sizes.
    ///
    /// With --listen, serve them at /metrics over HTTP instead, read afresh in one pass for each
    /// scrape, until interrupted (SIGINT or SIGTERM).
    Metrics {
        /// Listen on this address, e.g. `127.0.0.1:9828` or `:9828` (every address).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Show a job's last runs on any host, oldest first: when each started and how long it
    /// took, host and pid, fencing token, outcome (succeeded, failed, stopped, error) and exit
    /// code, and how much output it left.
    ///
    /// Runs are kept with record_runs, --min-interval or captured output (capture_output);
    /// their output only when it was captured. Exits 1 if the job has no runs recorded.
    History {
        /// The job: its lock name.
        #[arg(value_name = "JOB")]
        job: String,
        /// Only the last N runs.
        #[arg(short = 'n', value_name = "N")]
        last: Option<usize>,
        /// Print a JSON list for scripts instead (the output as text when it is UTF-8, else in
        /// `output_base64`).
        #[arg(long)]
        json: bool,
        /// Print each run's captured output, as it was written, under a line about the run.
        #[arg(long)]
        output: bool,
    },
    /// Serve a live, read-only page of what `status` shows, for browsers, until interrupted
    /// (SIGINT or SIGTERM).
    ///
    /// One listener: GET / is the page (rendered here, useful without JavaScript, and kept up to
    /// date with JavaScript by the server-sent events of /api/events), /api/status is
    /// `status --json`, /metrics is what `metrics --listen` serves. The prefix is read at most
    /// once per 250 ms however many browsers watch, on each change while one does, and not at
    /// all while none does. The page has no authentication of its own: put a reverse proxy
    /// with authentication in front of it to show it to others.
    Serve {
        /// Listen on this address: IP:PORT, or a port alone (`9829`, `:9829`) for 127.0.0.1;
        /// every address only when written out (`0.0.0.0:9829`, `[::]:9829`).
        #[arg(long, value_name = "ADDR", default_value = serve::DEFAULT_LISTEN,
              value_parser = serve::listen_address)]
        listen: std::net::SocketAddr,
    },
    /// Delete a lock node, so that the switchman holding it stops its CMD (exit 79 there).
    ///
    /// Exits 0 if it deleted a holder, 1 if there was none (or, with --if-token, another).
    Stop {
        /// The lock name, as given to `switchman --lockname`.
        #[arg(value_name = "LOCK")]
        lock: String,
        /// Only the holder with this fencing token (its SWITCHMAN_FENCING_TOKEN, the `token` of
        /// `status`), so that a stop aimed at a hung run never hits the run that replaced it.
        #[arg(long, value_name = "TOKEN")]
        if_token: Option<i64>,
    },
    /// Check every switchman line of crontab files as a run would check it before connecting.
    ///
    /// Each line is parsed with switchman's own command line: unknown options, bad lock names,
    /// lease specs that do not parse or whose COUNT exceeds TOTAL with this host's macros (the
    /// message names the values that are this host's), resources the prefix data does not
    /// list, groups it does not define, a TOTAL that divides outside int(...) (which the
    /// original switchman refuses), and a default lock name that unrelated jobs share (`sh`,
    /// `sudo`, `python3`, ...). Prints `FILE:LINE: problem` for each and exits 1 if there is
    /// any. Understands comments, variable lines, @reboot/@daily schedules, system crontabs
    /// with a user column, switchman called by any path, and `%` (stdin) in commands.
    CheckCrontab {
        /// Crontab files; `-` reads standard input
        /// (e.g. `crontab -l | switchmanctl check-crontab -`).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Check against the prefix data in this JSON file instead of ZooKeeper (for CI, or
        /// before `set-data`); no config needed.
        #[arg(long, value_name = "JSON")]
        data: Option<PathBuf>,
    },
    /// Check the config file as switchman would read it, and report loudly what a run keeps out
    /// of cron's mail.
    ///
    /// Prints `FILE: problem` for each: unknown keys (ignored by switchman: a typo, or a key of
    /// a newer switchman), what switchman would refuse (exit 78), a logfile that cannot be
    /// appended to (as the user running the check), a journal that cannot be reached, and
    /// numbers that do not match the servers' own settings: `server_tick_time` below their real
    /// `tickTime` (which weakens the no-overlap guarantee), a `session_timeout` they would
    /// negotiate into other bounds, and more runs at once than their `maxClientCnxns` takes.
    /// The servers are asked with the `conf` four-letter word, or their AdminServer where that
    /// is not allowed; a server that cannot be asked is said on stderr. Run it once per
    /// ensemble change. Exits 1 if anything is found, 66 if the file cannot be read. The file
    /// is the one of `-c`/`--config`, which may also follow the subcommand.
    CheckConfig {
        /// How many switchman runs one host may have at once (one connection each), to check
        /// against the servers' `maxClientCnxns`.
        #[arg(long, value_name = "N")]
        concurrent_runs: Option<u64>,
        /// The servers' AdminServer port, asked where `conf` is not allowed.
        #[arg(long, value_name = "PORT", default_value_t = 8080)]
        admin_port: u16,
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
    GetData {
        /// Print `{"version": N, "data": {...}}` on stdout instead, so that scripts need not
        /// read stderr.
        #[arg(long)]
        json: bool,
    },
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
pub const PROBLEMS: i32 = exit::PROBLEMS.value;
const NO_INPUT: i32 = exit::NO_INPUT.value;
pub(super) const IO_ERROR: i32 = exit::IO_ERROR.value;

type Outcome = std::result::Result<i32, Failure>;

/// The whole program: parses the command line, runs the subcommand, returns the exit code.
pub fn main() -> i32 {
    let ctl = match Ctl::try_parse_args(std::env::args_os()) {
        Ok(ctl) => ctl,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE.value
            } else {
                exit::OK.value
            };
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

impl Ctl {
    /// Parses `args` (the program's name first): clap's parse, with an empty `SWITCHMAN_CONFIG`
    /// taken as unset, as switchman takes it.
    pub fn try_parse_args<I, T>(args: I) -> std::result::Result<Ctl, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let mut cmd = Ctl::command();
        let matches = cmd.try_get_matches_from_mut(args)?;
        let mut ctl = Ctl::from_arg_matches(&matches)?;
        let given = std::mem::take(&mut ctl.config);
        // `--config` is global: after a subcommand, its source is in the subcommand's matches.
        let matches = matches.subcommand().map_or(&matches, |(_, sub)| sub);
        ctl.config = crate::cli::config_path(matches, "config", given, &mut cmd)?;
        Ok(ctl)
    }
}

/// Runs one subcommand.
pub async fn run(ctl: &Ctl) -> Outcome {
    match &ctl.command {
        Command::CheckCrontab { files, data } => {
            crontab::check_crontab(ctl, files, data.as_deref()).await
        }
        Command::CheckConfig {
            concurrent_runs,
            admin_port,
        } => {
            let against = check_config::Against {
                admin_port: *admin_port,
                concurrent_runs: *concurrent_runs,
            };
            check_config::check_config(ctl, &against).await
        }
        Command::CheckHosts => hosts::check_hosts(ctl).await,
        Command::Groups { names, json } => groups::groups(ctl, names, *json).await,
        Command::Status {
            json,
            lock,
            resource,
            watch,
        } => {
            let filter = status::Filter {
                lock: lock.clone(),
                resource: resource.clone(),
            };
            status::status(ctl, &filter, *json, *watch).await
        }
        Command::Metrics { listen } => metrics::metrics(ctl, listen.as_deref()).await,
        Command::Serve { listen } => serve::serve(ctl, *listen).await,
        Command::Stop { lock, if_token } => stop::stop(ctl, lock, *if_token).await,
        Command::History {
            job,
            last,
            json,
            output,
        } => {
            let shown = history::Shown {
                last: *last,
                json: *json,
                output: *output,
            };
            history::history(ctl, job, shown).await
        }
        Command::GetData { json } => data::get_data(ctl, *json).await,
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
    let session = Session::connect(&config.zk()).await?;
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
