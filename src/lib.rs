//! switchman: run a command on one host at a time, coordinated through ZooKeeper.
//!
//! The flow of a run is in [`run`]; each step's idea has a module of its own.

pub mod cli;
pub mod config;
pub mod ctl;
pub mod error;
pub mod groups;
pub mod host;
pub mod lease_spec;
pub mod lock;
pub mod logging;
pub mod paths;
pub mod prefix_data;
pub mod queue;
pub mod run;
pub mod semaphore;
pub mod session;
pub mod supervisor;
