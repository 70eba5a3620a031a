//! Step 1 of a run: everything that can be known before connecting, from the command line and
//! the config, with lease macros expanded; and step 5's global order of the leases.

use std::cell::OnceCell;
use std::ffi::OsString;
use std::ops::Deref;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use crate::cli::Cli;
use crate::config::{Config, OutputMode};
use crate::duration::Wait;
use crate::error::Result;
use crate::host::Fqdn;
use crate::lease_spec::{LeaseSpec, Macros, in_resource_order};
use crate::prefix_data::PrefixData;
use crate::zk::Paths;

/// What a run needs to know, fixed before it connects.
pub(super) struct Plan {
    pub paths: Paths,
    /// Looked up while the run connects, unless lease macros need it before (see [`Fqdn`]).
    pub fqdn: Rc<Fqdn>,
    /// `"{fqdn} {pid}"`, the data of every node we create.
    pub owner: Owner,
    /// The job's name: the lock name, or CMD's basename with `--no-lock`. Queue items are named
    /// after it.
    pub task: String,
    /// Whether to take the lock `{prefix}/locks/{task}` (not with `--no-lock`).
    pub lock: bool,
    pub group: Option<String>,
    /// The leases asked for, macros expanded, in the order given (step 5 orders them).
    pub leases: Vec<LeaseSpec>,
    /// This host's macros, needed to expand the prefix data's `resources` when leasing.
    macros: Option<Macros>,
    pub cmd: Vec<OsString>,
    pub busy_code: i32,
    /// `--wait`: wait in line for the lock and the leases instead of skipping.
    pub wait: Option<Wait>,
    /// Applies only without `--wait`, which replaces it.
    pub resources_wait_timeout: Option<Duration>,
    pub min_interval: Option<Duration>,
    /// Whether to write a run record and history when CMD ends: with `--min-interval`,
    /// `record_runs` or captured output, and only with a lock, while which it is written.
    pub record: bool,
    /// Runs kept in the job's history.
    pub history: usize,
    /// Whether to capture CMD's output (`capture_output`, `--capture-output`, or cron-quiet).
    pub capture: bool,
    /// Cron-quiet (`output` `on-failure`, `--quiet-unless-failed`): nothing on switchman's
    /// stdout and stderr while CMD runs, its output on stderr at the end if it did not succeed.
    pub quiet: bool,
    /// Bytes of captured output kept in the history.
    pub output_tail: usize,
    /// The command line a hashed lock name stands for (`--lockname-from-args`).
    pub command: Option<String>,
    pub termination_timeout: Duration,
    /// The config file, for messages that point at a key in it.
    pub config_path: PathBuf,
}

/// `"{fqdn} {pid}"`, made when first needed, by when the FQDN's lookup has had the connect's
/// time to finish.
pub(super) struct Owner {
    fqdn: Rc<Fqdn>,
    text: OnceCell<String>,
}

impl Deref for Owner {
    type Target = str;

    fn deref(&self) -> &str {
        self.text
            .get_or_init(|| format!("{} {}", self.fqdn, std::process::id()))
    }
}

impl Plan {
    /// Step 1: the command line and config, with lease macros expanded.
    pub fn resolve(cli: &Cli, config: &Config) -> Result<Plan> {
        let fqdn = Rc::new(Fqdn::look_up(config.fqdn.as_deref()));
        let lock_name = cli.lock_name()?;
        let macros = if cli.leases.is_empty() {
            None
        } else {
            Some(Macros::for_host(&fqdn)?)
        };
        let leases = match &macros {
            None => Vec::new(),
            Some(m) => cli
                .leases
                .iter()
                .map(|l| LeaseSpec::parse(l, m))
                .collect::<Result<_>>()?,
        };
        let quiet = cli.quiet_unless_failed || config.output == OutputMode::OnFailure;
        let capture = quiet || cli.capture_output || config.capture_output;
        Ok(Plan {
            paths: Paths::new(&config.prefix),
            owner: Owner {
                fqdn: fqdn.clone(),
                text: OnceCell::new(),
            },
            fqdn,
            lock: lock_name.is_some(),
            record: lock_name.is_some()
                && (cli.min_interval.is_some() || config.record_runs || capture),
            history: config.history,
            capture,
            quiet,
            output_tail: config.output_tail,
            command: cli.shown_command(),
            task: lock_name.unwrap_or_else(|| cli.cmd_basename()),
            group: cli.group.clone(),
            leases,
            macros,
            cmd: cli.cmd.clone(),
            busy_code: cli
                .busy_exit_code
                .map(i32::from)
                .unwrap_or(config.busy_exit_code),
            wait: cli.wait,
            resources_wait_timeout: config.resources_wait_timeout,
            min_interval: cli.min_interval,
            termination_timeout: config.termination_timeout,
            config_path: config.path.clone(),
        })
    }

    pub fn lock_path(&self) -> Option<String> {
        self.lock.then(|| self.paths.lock(&self.task))
    }

    /// The queue folder of each of `leases`' resources, in their order.
    pub fn queue_folders(&self, leases: &[LeaseSpec]) -> Vec<String> {
        leases
            .iter()
            .map(|spec| self.paths.queue(&spec.resource))
            .collect()
    }

    /// The leases in the order of the prefix data's `resources` list (macros expanded), a
    /// global order that keeps two runs from each holding what the other waits for.
    pub fn order_leases(&self, data: &PrefixData) -> Result<Vec<LeaseSpec>> {
        match &self.macros {
            None => Ok(Vec::new()),
            Some(macros) => {
                in_resource_order(&self.leases, &data.resources, macros, self.paths.prefix())
            }
        }
    }
}
