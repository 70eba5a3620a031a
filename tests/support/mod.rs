//! Integration-test harness: real ZooKeeper servers, a fault-injecting TCP proxy, and the
//! helpers the test files share for running switchman against them.
//!
//! Use from any file in `tests/` with `mod support;` and import from here (`use
//! support::{Job, shared_ensemble, ...}`).  The servers and the proxy are synchronous (std
//! threads and blocking calls), so they work from plain `#[test]`s and from `#[tokio::test]`s
//! alike.  In a *current-thread* tokio test remember that the blocking calls
//! (`Ensemble::start`, `wait_until_blocking`, ...) block the runtime while they run: a blocking
//! wait whose condition depends on a task of that same runtime making progress will never see
//! it; use `flavor = "multi_thread"` or `spawn_blocking` for those, or the async waits.
//!
//! - `ensemble`: ZooKeeper servers ([`Ensemble`], [`shared_ensemble`], four-letter words),
//!   with `server` (one server process and its cleanup) and `ports` (where they listen).
//! - `proxy`: [`Proxy`], for cutting the network between a client and the servers, and (framed)
//!   for freezing one connection at a chosen ZooKeeper request ([`Trigger`]).
//! - `quorum`: [`QuorumEnsemble`], three servers whose links to one another run through
//!   proxies, for cutting one server off from its peers.
//! - `secured`: servers with SASL or TLS (and a test PKI made with `openssl`), and clients
//!   with credentials, for tests/secure.rs.
//! - `job`: [`Job`], one task's world, and running the switchman and switchmanctl binaries.
//! - `cmds`: the CMDs the tests run under switchman, which leave records in the job's dir.
//! - `guard`: the CMD that checks, from its own side, that no two holders overlap.
//! - `client`: the test's own ZooKeeper client and what it looks at (children, subtrees).
//! - `txnlog`: a server's transaction log, replayed: who made and removed which node, when.
//! - `util`: waiting for a condition (async or blocking), and other small helpers.
#![allow(dead_code)]

mod client;
mod cmds;
mod ensemble;
mod guard;
mod job;
mod ports;
mod proxy;
mod quorum;
mod secured;
mod server;
mod txnlog;
mod util;

// Each test binary uses its own share of these.
#[allow(unused_imports)]
pub use client::{
    assert_left_nothing, await_children, await_item, children, has_item, leased_job, nodes_of, seq,
    set_prefix_data, tree, zk,
};
#[allow(unused_imports)]
pub use cmds::{
    cmd_noting_run, cmd_noting_signals, cmd_recording_start_end, cmd_touching, cmd_waiting, sh,
    until_any_go, until_go, until_go_maybe_stubborn, write_pid,
};
#[allow(unused_imports)]
pub use ensemble::{
    Ensemble, Extras, NETTY_TLS_JARS, ZOOKEEPER_JAR, four_letter_word, parse_mntr,
    require_zookeeper, shared_ensemble, shared_ensemble3,
};
#[allow(unused_imports)]
pub use guard::{Records, guard_cmd};
#[allow(unused_imports)]
pub use job::{
    Job, Out, SERVER_TICK_TIME, SESSION_TIMEOUT, SWITCHMAN, SWITCHMANCTL, argv, finish, finish_ok,
    lock_argv, output, run_command, spawn_command,
};
#[allow(unused_imports)]
pub use ports::pick_ports;
#[allow(unused_imports)]
pub use proxy::{Frame, HoldAt, Proxy, Trigger};
#[allow(unused_imports)]
pub use quorum::QuorumEnsemble;
#[allow(unused_imports)]
pub use secured::{
    Pki, SASL_PASSWORD, SASL_USER, credentials_file, start_auth_server, start_enforcing_server,
    start_tls_server, tls_connect_string, zk_as, zk_tls,
};
#[allow(unused_imports)]
pub use txnlog::{Txn, TxnOp, transactions};
#[allow(unused_imports)]
pub use util::{
    PATIENCE, env_or, is_dead, poll_until_blocking, proc_stat, wait_for, wait_for_file, wait_until,
    wait_until_blocking,
};
