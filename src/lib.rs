//! switchman: run a command on one host at a time, coordinated through ZooKeeper.
//!
//! The flow of a run is in [`run`]; each step's idea has a module of its own.

pub mod cli;
pub mod config;
pub mod ctl;
pub mod duration;
pub mod error;
pub mod host;
pub mod lease_spec;
pub mod logging;
pub mod manual;
pub mod metrics;
pub mod prefix_data;
pub mod recipes;
pub mod run;
pub mod security;
pub mod timestamp;
pub mod zk;
