//! The command line (docs/guide.md: "Command line").

pub mod getopt;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::builder::{OsStringValueParser, TypedValueParser, ValueHint};
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};

use crate::config;
use crate::duration::{self, Wait};
use crate::error::{Error, Result};
use crate::manual;
use crate::zk::paths::check_component;

/// Run a command on one host at a time, with fair leases on shared resources, coordinated
/// through ZooKeeper.
///
/// flock(1) for a data centre: CMD runs on at most one host at a time (a lock in ZooKeeper; the
/// other hosts skip quietly), leases shared resources fairly, runs only on the hosts its group
/// allows, and is stopped when the lock, the session or the group membership is lost. CMD is
/// executed directly (no shell); everything after the first word that is not an option, or
/// after `--`, belongs to CMD.
///
/// Options may also be spelled as the original switchman (1.16) read them: a unique prefix
/// (--lockn), one dash (-lockname), any case (--LockName), NAME=VALUE after any of these,
/// --nolock, and --lock for the default. -v is --verbose here, not the original's --version.
#[derive(Debug, Parser)]
#[command(
    name = "switchman",
    version,
    override_usage = "switchman [OPTIONS] [--] CMD [ARGS]...",
    after_long_help = manual::long_help(),
)]
pub struct Cli {
    /// Config file [default: /etc/switchman.conf].
    #[arg(short = 'c', long, value_name = "PATH", env = "SWITCHMAN_CONFIG",
          default_value = config::DEFAULT_PATH, hide_default_value = true,
          value_hint = ValueHint::FilePath, value_parser = config_path_parser())]
    pub config: PathBuf,

    /// Lock name [default: the basename of CMD].
    #[arg(long, value_name = "NAME")]
    pub lockname: Option<String>,

    /// Name the lock after the whole command line: CMD's basename and a hash of every word
    /// (`backup.sh-a50e71d0cc90`), so that `backup.sh daily` and `backup.sh weekly` have
    /// locks of their own.
    #[arg(long, conflicts_with = "lockname")]
    pub lockname_from_args: bool,

    /// Take no lock (groups and leases still apply).
    #[arg(
        long,
        alias = "nolock",
        conflicts_with_all = ["lockname", "lockname_from_args"],
        overrides_with = "lock"
    )]
    pub no_lock: bool,

    /// Take the lock: the default, which the original spelled --lock; the last of --lock and
    /// --no-lock counts.
    #[arg(long, hide = true, overrides_with = "no_lock")]
    pub lock: bool,

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

    /// Capture CMD's stdout and stderr: copied on line by line, to the log too, and their tail
    /// into the run history [default: capture_output from the config].
    #[arg(long)]
    pub capture_output: bool,

    /// Cron-quiet: print nothing while CMD runs, and its output on stderr at the end only if
    /// it did not succeed [default: output from the config].
    #[arg(long)]
    pub quiet_unless_failed: bool,

    /// Exit code of a skipped run [default: busy_exit_code from the config, or 0].
    #[arg(long, value_name = "CODE", value_parser = clap::value_parser!(u8))]
    pub busy_exit_code: Option<u8>,

    /// Log debug messages on stderr (so does DEBUG=1 in the environment).
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// The command and its arguments, run directly (no shell).
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD",
          value_hint = ValueHint::CommandWithArguments)]
    pub cmd: Vec<OsString>,

    /// Whether `--` came before CMD. Without it the original took options after CMD too.
    #[arg(skip)]
    pub cmd_after_dashes: bool,
}

/// The value parser of `-c`/`--config` (switchman's and switchmanctl's): lets an empty value
/// through, so that [`config_path`] can tell an empty `SWITCHMAN_CONFIG` from an empty `-c`.
pub fn config_path_parser() -> impl TypedValueParser<Value = PathBuf> {
    OsStringValueParser::new().map(PathBuf::from)
}

/// The config path of parsed arguments whose `-c`/`--config` is the argument `id`. An empty
/// `SWITCHMAN_CONFIG` counts as unset, as `SWITCHMAN_FQDN` does, rather than as a `--config`
/// nobody gave; an empty `-c` on the command line is a mistake worth a usage error.
pub fn config_path(
    matches: &ArgMatches,
    id: &str,
    given: PathBuf,
    cmd: &mut clap::Command,
) -> std::result::Result<PathBuf, clap::Error> {
    if !given.as_os_str().is_empty() {
        return Ok(given);
    }
    match matches.value_source(id) {
        Some(ValueSource::CommandLine) => Err(cmd.error(
            clap::error::ErrorKind::InvalidValue,
            "--config: the path is empty",
        )),
        _ => Ok(PathBuf::from(config::DEFAULT_PATH)),
    }
}

/// Whether an environment variable's value means "yes": `1` (any whole number above 0),
/// `true`, `yes`, `on` or `y`, in any case. `DEBUG` is shared with other programs (`DEBUG=0`,
/// `DEBUG=false`, Node's `DEBUG=express:*`), so anything else means no.
pub fn means_yes(value: &str) -> bool {
    let value = value.trim().to_ascii_lowercase();
    matches!(value.as_str(), "true" | "yes" | "on" | "y")
        || value.parse::<u64>().is_ok_and(|n| n > 0)
}

impl Cli {
    /// Parses the process's arguments. Help and version exit 0; anything else wrong exits 64,
    /// not clap's 2, because 2 means something else to cron users of the original.
    pub fn parse_or_exit() -> Cli {
        match Cli::try_parse_args(std::env::args_os()) {
            Ok(cli) => cli,
            Err(e) => {
                let code = if e.use_stderr() { 64 } else { 0 };
                let _ = e.print();
                std::process::exit(code);
            }
        }
    }

    /// Parses `args` (the program's name first) as switchman does: the original's spellings
    /// of options rewritten into clap's, clap's parse, and an empty `SWITCHMAN_CONFIG` taken
    /// as unset.
    pub fn try_parse_args<I, T>(args: I) -> std::result::Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let mut cmd = Cli::command();
        // Built, so that clap's own --help and --version are among the options read.
        cmd.build();
        let args = getopt::normalise(&mut cmd, args.into_iter().map(Into::into).collect())?;
        let matches = cmd.try_get_matches_from_mut(&args)?;
        let mut cli = Cli::from_arg_matches(&matches)?;
        // CMD is the tail of the words; a value `--` was rewritten into `--option=--`.
        cli.cmd_after_dashes = args[..args.len() - cli.cmd.len()].last() == Some(&"--".into());
        cli.config = config_path(
            &matches,
            "config",
            std::mem::take(&mut cli.config),
            &mut cmd,
        )?;
        Ok(cli)
    }

    /// The lock name to take, `None` with `--no-lock`. Defaults to CMD's basename.
    pub fn lock_name(&self) -> Result<Option<String>> {
        if self.no_lock {
            return Ok(None);
        }
        let name = match &self.lockname {
            Some(n) => n.clone(),
            None if self.lockname_from_args => lock_name_of_args(&self.cmd),
            None => self.cmd_basename(),
        };
        let what = if self.lockname.is_some() {
            "--lockname"
        } else if self.lockname_from_args {
            "lock name (--lockname-from-args)"
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
            (None, false) if self.lockname_from_args => lock_name_of_args(&self.cmd),
            _ => self.cmd_basename(),
        }
    }

    /// The command line, as the logs and the run history show what a hashed lock name stands
    /// for (only with `--lockname-from-args`: a command line may hold what ZooKeeper's readers
    /// should not see, and other names say what they stand for themselves).
    pub fn shown_command(&self) -> Option<String> {
        self.lockname_from_args.then(|| shown_command(&self.cmd))
    }

    /// CMD's basename: the default lock name, and the job's name with `--no-lock`.
    pub fn cmd_basename(&self) -> String {
        Path::new(&self.cmd[0])
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    pub fn debug(&self) -> bool {
        self.verbose || std::env::var("DEBUG").is_ok_and(|v| means_yes(&v))
    }
}

/// Hex digits of the hash in a lock name of `--lockname-from-args`: 48 bits, so that two
/// command lines of one basename share a lock by chance about once in 10^14 pairs.
const HASH_DIGITS: usize = 12;

/// The lock name of `--lockname-from-args` (docs/guide.md: "Command line"): CMD's basename, `-`,
/// and the first 12 hex digits of the SHA-256 of every word of the command line as given, CMD
/// first, each followed by a NUL byte. The same command line gives the same name on every
/// host; the basename, cut to keep the name within 512 bytes, tells people what it is.
pub fn lock_name_of_args(cmd: &[OsString]) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    for word in cmd {
        hash.update(word.as_bytes());
        hash.update(&[0]);
    }
    let digest = hash.finish();
    let hex: String = digest.as_ref()[..HASH_DIGITS / 2]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let base = cmd
        .first()
        .and_then(|c| Path::new(c).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut end = base.len().min(512 - HASH_DIGITS - 1);
    while !base.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}-{hex}", &base[..end])
}

/// A command line as a shell would take it back: words quoted where they need it, cut at
/// 1,000 characters.
pub fn shown_command(cmd: &[OsString]) -> String {
    let words: Vec<String> = cmd
        .iter()
        .map(|w| {
            let w = w.to_string_lossy();
            let plain = !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
            match plain {
                true => w.into_owned(),
                false => format!("'{}'", w.replace('\'', "'\\''")),
            }
        })
        .collect();
    let mut shown = words.join(" ");
    if shown.chars().count() > 1000 {
        shown = shown.chars().take(1000).collect::<String>() + "...";
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> std::result::Result<Cli, clap::Error> {
        Cli::try_parse_args(std::iter::once("switchman").chain(args.iter().copied()))
    }

    #[test]
    fn debug_means_yes_only_for_yes() {
        for yes in ["1", "2", "true", "TRUE", "yes", "on", "y", " 1 "] {
            assert!(means_yes(yes), "{yes:?}");
        }
        for no in [
            "",
            "0",
            "00",
            "false",
            "no",
            "off",
            "n",
            "express:*",
            "*",
            "-1",
            "yes please",
        ] {
            assert!(!means_yes(no), "{no:?}");
        }
    }

    #[test]
    fn an_empty_config_path_on_the_command_line_is_refused() {
        let e = parse(&["-c", "", "true"]).unwrap_err();
        assert!(e.use_stderr());
        assert!(e.to_string().contains("--config: the path is empty"), "{e}");
        assert_eq!(
            parse(&["-c", "/x", "true"]).unwrap().config,
            Path::new("/x")
        );
    }

    #[test]
    fn usage_shows_the_separator() {
        let usage = Cli::command().render_usage().to_string();
        assert_eq!(usage, "Usage: switchman [OPTIONS] [--] CMD [ARGS]...");
    }

    #[test]
    fn everything_after_cmd_belongs_to_cmd() {
        let cli = parse(&["--lockname", "x", "ls", "-l", "--lockname", "y"]).unwrap();
        assert_eq!(cli.lockname.as_deref(), Some("x"));
        assert_eq!(cli.cmd, ["ls", "-l", "--lockname", "y"]);
        assert!(!cli.cmd_after_dashes);
        let cli = parse(&["-v", "--", "-weird", "arg"]).unwrap();
        assert!(cli.verbose);
        assert_eq!(cli.cmd, ["-weird", "arg"]);
        assert!(cli.cmd_after_dashes);
        let cli = parse(&["--lockname", "--", "job", "--"]).unwrap();
        assert_eq!(cli.lockname.as_deref(), Some("--"));
        assert_eq!(cli.cmd, ["job", "--"]);
        assert!(!cli.cmd_after_dashes);
    }

    #[test]
    fn lock_name_defaults_to_the_basename() {
        let cli = parse(&["/usr/bin/backup", "--all"]).unwrap();
        assert_eq!(cli.lock_name().unwrap().as_deref(), Some("backup"));
        let cli = parse(&["--no-lock", "backup"]).unwrap();
        assert_eq!(cli.lock_name().unwrap(), None);
    }

    #[test]
    fn a_lock_name_from_the_args_tells_command_lines_apart() {
        let name = |args: &[&str]| parse(args).unwrap().lock_name().unwrap().unwrap();
        let daily = name(&["--lockname-from-args", "backup.sh", "daily"]);
        let weekly = name(&["--lockname-from-args", "backup.sh", "weekly"]);
        assert_ne!(daily, weekly);
        assert_eq!(
            daily,
            name(&["--lockname-from-args", "--", "backup.sh", "daily"])
        );
        // The documented recipe, fixed here so that no build changes it: every host must agree.
        // printf 'backup.sh\0daily\0' | sha256sum | cut -c1-12
        assert_eq!(daily, "backup.sh-a50e71d0cc90");
        assert_ne!(
            daily,
            name(&["--lockname-from-args", "/opt/backup.sh", "daily"])
        );
        // Word boundaries count: "a b" is not "a" "b".
        assert_ne!(
            name(&["--lockname-from-args", "x", "a b"]),
            name(&["--lockname-from-args", "x", "a", "b"])
        );
        let long = "x".repeat(600);
        let cut = name(&["--lockname-from-args", &long]);
        assert_eq!(cut.len(), 512, "{cut}");
        let cli = parse(&["--lockname-from-args", "sh", "-c", "it's"]).unwrap();
        assert_eq!(cli.job_name(), cli.lock_name().unwrap().unwrap());
        assert_eq!(cli.shown_command().unwrap(), r#"sh -c 'it'\''s'"#);
        assert!(parse(&["--lockname-from-args", "--lockname", "x", "true"]).is_err());
        assert!(parse(&["--lockname-from-args", "--no-lock", "true"]).is_err());
        // The original's abbreviation keeps its meaning: --lockn is --lockname.
        let cli = parse(&["--lockn", "x", "true"]).unwrap();
        assert_eq!(cli.lockname.as_deref(), Some("x"));
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

    #[test]
    fn the_originals_spellings_mean_what_they_meant_there() {
        let cli = parse(&[
            "-lockn", "nightly", "--GR=web", "+lea", "r=1:2", "-C", "/c", "job",
        ])
        .unwrap();
        assert_eq!(cli.lockname.as_deref(), Some("nightly"));
        assert_eq!(cli.group.as_deref(), Some("web"));
        assert_eq!(cli.leases, ["r=1:2"]);
        assert_eq!(cli.config, Path::new("/c"));
        assert_eq!(cli.cmd, ["job"]);
        assert_eq!(
            parse(&["--lockname", "-weird", "job"])
                .unwrap()
                .lockname
                .as_deref(),
            Some("-weird")
        );
        assert_eq!(
            parse(&["--lock", "job"])
                .unwrap()
                .lock_name()
                .unwrap()
                .as_deref(),
            Some("job")
        );
        // As in the original, the last of --lock and --nolock counts.
        for (args, lock) in [
            (&["--nolock", "job"][..], None),
            (&["--NoLock", "--lock", "job"], Some("job")),
            (&["--lock", "--no", "job"], None),
            (&["--nolock", "--lock", "--lockname", "x", "job"], Some("x")),
        ] {
            let cli = parse(args).unwrap();
            assert_eq!(cli.lock_name().unwrap().as_deref(), lock, "{args:?}");
        }
        let e = parse(&["--lo", "x", "job"]).unwrap_err();
        assert!(e.use_stderr(), "{e}");
        assert!(
            parse(&["--nolock=1", "job"])
                .unwrap_err()
                .to_string()
                .contains("--no-lock")
        );
        assert!(parse(&["-H"]).is_err_and(|e| !e.use_stderr()));
    }
}
