//! switchman: run a command on one host at a time, coordinated through ZooKeeper.
//!
//! # The map
//!
//! Five layers; each uses only its own and the ones below it, and nothing uses `run` or `ctl`:
//!
//! ```text
//! run/ (switchman)       ctl/ (switchmanctl)       the two binaries' flows
//!        \                  /
//!         recipes/                                 lock, queue, semaphore, waiters, groups,
//!            |                                     runs (records), holder: each owns its protocol
//! config, cli, manual, lease_spec, logging,        the config file, the command line and its
//! metrics, capture                                 help, lease arithmetic, logs, the textfile,
//!            |                                     CMD's output captured
//!           zk/                                    session (its Options come from the config),
//!            |                                     liveness and its heartbeat, clock, paths, and
//!            |                                     the requests (reads, writes, watches) under
//!            |                                     access.rs's retry rule
//! error, exit, keys, security, prefix_data,        failures and their exit codes, the config
//! duration, timestamp, host, outcome               keys' table, credentials, the prefix znode's
//!                                                  JSON, how runs end: what needs neither
//!                                                  ZooKeeper nor config
//! ```
//!
//! - **Where a run starts:** `main.rs` parses the command line ([`cli`]), loads the config
//!   ([`config`]), sets up logging, and calls [`run::run`], whose `run_to_end` and
//!   `run_in_session` read top to bottom as the steps of docs/guide.md: "How a run goes". CMD's
//!   supervision is [`run::supervisor`]; why it never overlaps another holder is
//!   docs/safety.md, and the proof it rests on is made in `zk/heartbeat.rs`.
//! - **Where `switchmanctl` starts:** `bin/switchmanctl.rs` calls [`ctl::main`]; each subcommand
//!   is a module of `ctl/`.
//!
//! # Where to add
//!
//! - **A recipe** (a new kind of node or protocol): a module in `recipes/`, talking to
//!   ZooKeeper only through [`zk::Session`]'s methods in `zk/access.rs`, with its paths in
//!   `zk/paths.rs` (the one place paths are built); the run composes it in `run/mod.rs`.
//! - **A config key:** a row of [`keys::KEYS`], then its parsing in [`config`] (or
//!   [`security`]); unknown-key warnings, `switchmanctl check-config`, docs/config.md and
//!   switchman.conf(5) follow from the table.
//! - **An exit code:** a row of [`exit::TABLE`]; `--help`, the man pages and
//!   docs/exit-codes.md follow from it.
//! - **A `switchmanctl` subcommand:** a variant of the command enum in `ctl/mod.rs` and a
//!   module of its own in `ctl/`; the man pages and completions are generated from the clap
//!   definitions (`examples/gen_docs.rs`).
//! - **A test:** `tests/`, against real ZooKeeper servers that `test-support/` starts; nothing
//!   is mocked (docs/development.md).

pub mod capture;
pub mod cli;
pub mod config;
pub mod ctl;
pub mod duration;
pub mod error;
pub mod exit;
pub mod host;
pub mod keys;
pub mod lease_spec;
pub mod logging;
pub mod manual;
pub mod metrics;
pub mod outcome;
pub mod prefix_data;
pub mod recipes;
pub mod run;
pub mod security;
pub mod timestamp;
pub mod zk;
