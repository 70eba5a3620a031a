//! Integration-test harness: real ZooKeeper servers, a fault-injecting TCP proxy, and the
//! helpers the test files share for running switchman against them.
//!
//! A dev-dependency of the root package: use it from any file in `tests/` or `benches/` with
//! `use switchman_test_support as support;` and import from here (`use support::{Job,
//! shared_ensemble, ...}`).  The servers and the proxy are synchronous (std
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
//! - `quorum`: [`QuorumEnsemble`], three servers (and any observers) whose links to one
//!   another run through proxies, for cutting one server off from its peers.
//! - `secured`: servers with SASL or TLS (and a test PKI made with `openssl`), and clients
//!   with credentials, for tests/secure.rs.
//! - `browser`: [`Browser`], a headless Chromium driven over WebDriver, for the page of
//!   `switchmanctl serve`.
//! - `events`: [`EventStream`], the event stream of `switchmanctl serve`, read as a browser
//!   reads it.
//! - `kdc`: an MIT Kerberos KDC with a throwaway realm, principals and keytabs ([`Kdc`]), for
//!   the Kerberized servers of `secured`.
//! - `job`: [`Job`], one task's world, and running the switchman and switchmanctl binaries.
//! - `cmds`: the CMDs the tests run under switchman, which leave records in the job's dir.
//! - `guard`: the CMD that checks, from its own side, that no two holders overlap.
//! - `client`: the test's own ZooKeeper client and what it looks at (children, subtrees).
//! - `txnlog`: a server's transaction log, replayed: who made and removed which node, when.
//! - `util`: waiting for a condition (async or blocking), and other small helpers.
//!
//! # Where the binaries are
//!
//! [`switchman_bin`] and [`switchmanctl_bin`] are the switchman and switchmanctl binaries
//! under test. Only the root package's own tests and benches see `CARGO_BIN_EXE_switchman` at
//! compile time, so this crate looks at run time. Cargo builds a package's binaries, in the
//! same profile, before it runs the package's integration tests or benches (`cargo test`,
//! `cargo test --release`, `cargo bench`), and it sets `CARGO_BIN_EXE_switchman` and
//! `CARGO_BIN_EXE_switchmanctl` in their environment too: those win when set (also for
//! pointing a test binary run by hand at other builds). Without them (a test binary run by
//! hand), the binaries are next to the running test or bench: cargo puts those in
//! `target/<profile>/deps/` (also under `target/<triple>/` or `$CARGO_TARGET_DIR`) and the
//! package's binaries one level up, in `target/<profile>/`.

mod browser;
mod client;
mod cmds;
mod ensemble;
mod events;
mod guard;
mod job;
mod kdc;
pub mod peers;
mod ports;
mod proxy;
mod quorum;
mod secured;
mod server;
mod txnlog;
mod util;

pub use browser::{Browser, Locator};
pub use client::{
    assert_left_nothing, await_children, await_item, children, fill_prefix, has_item, leased_job,
    nodes_of, seq, set_prefix_data, tree, zk,
};
pub use cmds::{
    cmd_noting_run, cmd_noting_signals, cmd_recording_start_end, cmd_touching, cmd_waiting, sh,
    until_any_go, until_go, until_go_maybe_stubborn, write_pid,
};
pub use ensemble::{
    Ensemble, Extras, NETTY_TLS_JARS, SERVLET_API_JAR, ZOOKEEPER_JAR, four_letter_word, parse_mntr,
    require_zookeeper, shared_ensemble, shared_ensemble3,
};
pub use events::EventStream;
pub use guard::{Records, guard_cmd};
pub use job::{
    Job, Out, SERVER_TICK_TIME, SESSION_TIMEOUT, argv, finish, finish_ok, lock_argv, output,
    run_command, spawn_command, switchman_bin, switchmanctl_bin,
};
pub use kdc::{Kdc, REALM, ZK_PRINCIPAL, kdc, use_ccache_on_this_thread};
pub use ports::pick_ports;
pub use proxy::{Frame, HoldAt, Proxy, Trigger};
pub use quorum::QuorumEnsemble;
pub use secured::{
    Pki, SASL_PASSWORD, SASL_USER, credentials_file, start_auth_server, start_enforcing_server,
    start_kerberos_server, start_tls_server, tls_connect_string, zk_as, zk_gssapi, zk_tls,
};
pub use txnlog::{Txn, TxnOp, transactions};
pub use util::{
    PATIENCE, env_or, is_dead, poll_until_blocking, proc_stat, process_cpu, wait_for,
    wait_for_file, wait_until, wait_until_blocking,
};
