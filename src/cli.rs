//! The command line (README: "Command line").

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::Parser;

use crate::config;
use crate::duration::{self, Wait};
use crate::error::{Error, Result};
use crate::zk::paths::check_component;

/// Run a command on one host at a time, with fair leases on shared resources, coordinated
/// through ZooKeeper.
///
/// Exit codes: CMD's own when it ran; 0 (or the busy code) when skipped; 64 usage; 69 ZooKeeper
/// unavailable; 70 internal; 75 wait timed out; 78 config; 79 CMD stopped because the lock,
/// session, lease or group membership was lost.
#[derive(Debug, Parser)]
#[command(name = "switchman", version)]
pub struct Cli {
    /// Config file.
    #[arg(short = 'c', long, env = "SWITCHMAN_CONFIG", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,

    /// Lock name [default: the basename of CMD].
    #[arg(long, value_name = "NAME")]
    pub lockname: Option<String>,

    /// Take no lock (groups and leases still apply).
    #[arg(long, conflicts_with = "lockname")]
    pub no_lock: bool,

    /// Run only if this host belongs to group NAME (listed in the prefix znode).
    #[arg(short = 'g', long, value_name = "NAME")]
    pub group: Option<String>,

    /// Lease COUNT units of resource RES out of TOTAL; repeatable. Macros FQDN, CPU, MEMMB.
    #[arg(long = "lease", value_name = "RES=COUNT:TOTAL")]
    pub leases: Vec<String>,

    /// Wait up to DURATION (90, 90s, 5m, 1h30m, or forever) for the lock and the leases, in line
    /// first come, first served, instead of skipping; then exit 75.
    #[arg(short = 'w', long, value_name = "DURATION", value_parser = duration::parse_wait)]
    pub wait: Option<Wait>,

    /// Skip (the busy code) if the job's last successful run, on any host, started less than
    /// DURATION before this one took the lock; records every run.
    #[arg(long, value_name = "DURATION", value_parser = duration::parse_interval, conflicts_with = "no_lock")]
    pub min_interval: Option<std::time::Duration>,

    /// Exit code of a skipped run [default: busy_exit_code from the config, or 0].
    #[arg(long, value_name = "CODE", value_parser = clap::value_parser!(u8))]
    pub busy_exit_code: Option<u8>,

    /// Log debug messages on stderr (so does DEBUG=1 in the environment).
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// The command and its arguments, run directly (no shell).
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub cmd: Vec<OsString>,
}

impl Cli {
    /// Parses the process's arguments. Help and version exit 0; anything else wrong exits 64,
    /// not clap's 2, because 2 means something else to cron users of the original.
    pub fn parse_or_exit() -> Cli {
        match Cli::try_parse() {
            Ok(cli) => cli,
            Err(e) => {
                let code = if e.use_stderr() { 64 } else { 0 };
                let _ = e.print();
                std::process::exit(code);
            }
        }
    }

    /// The lock name to take, `None` with `--no-lock`. Defaults to CMD's basename.
    pub fn lock_name(&self) -> Result<Option<String>> {
        if self.no_lock {
            return Ok(None);
        }
        let name = match &self.lockname {
            Some(n) => n.clone(),
            None => self.cmd_basename(),
        };
        let what = if self.lockname.is_some() {
            "--lockname"
        } else {
            "lock name (CMD's basename)"
        };
        check_component(what, &name).map_err(Error::Usage)?;
        Ok(Some(name))
    }

    /// The job's name, which every log line of the run carries: the lock name, or CMD's
    /// basename with `--no-lock` (as given, even if it is not a valid lock name).
    pub fn job_name(&self) -> String {
        match (&self.lockname, self.no_lock) {
            (Some(name), false) => name.clone(),
            _ => self.cmd_basename(),
        }
    }

    /// CMD's basename: the default lock name, and the job's name with `--no-lock`.
    pub fn cmd_basename(&self) -> String {
        Path::new(&self.cmd[0])
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    pub fn debug(&self) -> bool {
        self.verbose || std::env::var("DEBUG").is_ok_and(|v| !v.is_empty() && v != "0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> std::result::Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("switchman").chain(args.iter().copied()))
    }

    #[test]
    fn everything_after_cmd_belongs_to_cmd() {
        let cli = parse(&["--lockname", "x", "ls", "-l", "--lockname", "y"]).unwrap();
        assert_eq!(cli.lockname.as_deref(), Some("x"));
        assert_eq!(cli.cmd, ["ls", "-l", "--lockname", "y"]);
        let cli = parse(&["-v", "--", "-weird", "arg"]).unwrap();
        assert!(cli.verbose);
        assert_eq!(cli.cmd, ["-weird", "arg"]);
    }

    #[test]
    fn lock_name_defaults_to_the_basename() {
        let cli = parse(&["/usr/bin/backup", "--all"]).unwrap();
        assert_eq!(cli.lock_name().unwrap().as_deref(), Some("backup"));
        let cli = parse(&["--no-lock", "backup"]).unwrap();
        assert_eq!(cli.lock_name().unwrap(), None);
    }

    #[test]
    fn bad_lock_names_are_usage_errors() {
        for bad in ["", "..", "a/b", "a\nb"] {
            let cli = parse(&["--lockname", bad, "true"]).unwrap();
            assert_eq!(cli.lock_name().unwrap_err().exit_code(), 64, "{bad:?}");
        }
    }

    #[test]
    fn cmd_is_required_and_options_conflict() {
        assert!(parse(&["--lockname", "x"]).is_err());
        assert!(parse(&["--no-lock", "--lockname", "x", "true"]).is_err());
        // A record needs the lock: it is written while the lock is held.
        assert!(parse(&["--no-lock", "--min-interval", "1h", "true"]).is_err());
    }

    #[test]
    fn durations_are_checked_naming_the_option_and_the_text() {
        let cli = parse(&["-w", "1h30m", "--min-interval", "90", "true"]).unwrap();
        assert_eq!(
            cli.wait,
            Some(Wait::For(std::time::Duration::from_secs(5400)))
        );
        assert_eq!(cli.min_interval, Some(std::time::Duration::from_secs(90)));
        assert_eq!(
            parse(&["--wait", "forever", "true"]).unwrap().wait,
            Some(Wait::Forever)
        );
        for (option, text) in [("--wait", "5x"), ("--min-interval", "forever"), ("-w", "0")] {
            let e = parse(&[option, text, "true"]).unwrap_err().to_string();
            let long = if option == "-w" { "--wait" } else { option };
            assert!(e.contains(long) && e.contains(text), "{e}");
        }
    }
}
