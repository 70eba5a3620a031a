//! Outages the session survives cost CMD nothing, at the settings docs/safety.md recommends:
//! the run's only connection blackholed for 0.3 T (3 s at T = 10 s with a stock tick of 2 s,
//! 1 s at T = 4 s with a tick of 100 ms), a rolling restart and a leader crash with the stock
//! tick. Each fault comes several times at a different phase of the heartbeat, and CMD must run
//! to its own end, never signalled, under the same lock node.
//!
//! The waits between faults are the fault schedule, not synchronisation: a fault must find
//! the run in its steady state (warm, with a proof), which it reaches a few beats after CMD
//! starts and again a few beats after an outage.

use switchman_test_support as support;

use std::time::Duration;

use serde_json::json;
use support::{
    Ensemble, Extras, Job, Proxy, SERVER_TICK_TIME, cmd_noting_signals, finish, is_dead, lock_argv,
    shared_ensemble, zk,
};

/// ZooKeeper's default `tickTime`, which the docs' recommended settings are for.
const STOCK_TICK: Duration = Duration::from_secs(2);

fn stock_ensemble(n: usize) -> Ensemble {
    Ensemble::start_with_extras(n, |_, _| Extras {
        cfg: vec![format!("tickTime={}", STOCK_TICK.as_millis())],
        ..Extras::default()
    })
}

/// A holder of lock `name` on `zkhosts` with session timeout `timeout` and tick `tick`, its
/// CMD noting every signal it gets and running until told to end. Runs `fault` while CMD runs,
/// then ends CMD and checks that nothing happened to it.
async fn rides_out(
    zkhosts: &str,
    direct: &str,
    timeout: Duration,
    tick: Duration,
    fault: impl AsyncFnOnce(),
) {
    let job = Job::new(
        "outage",
        zkhosts,
        json!({"session_timeout": timeout.as_secs_f64(), "server_tick_time": tick.as_secs_f64()}),
    );
    let cmd = cmd_noting_signals("a");
    let a = job.spawn(&lock_argv("outage", &cmd));
    let pid = job.wait_for_pid("a.pid").await;
    let path = job.lock_path("outage");
    let czxid = {
        let client = zk(direct).await;
        client.check_stat(&path).await.unwrap().unwrap().czxid
    };

    fault().await;

    let client = zk(direct).await;
    let stat = client.check_stat(&path).await.unwrap();
    let dead = is_dead(pid);
    job.go("a");
    let (code, stderr) = finish(a).await;
    assert!(!dead, "CMD died: {stderr}");
    assert_eq!(
        stat.map(|s| s.czxid),
        Some(czxid),
        "the lock node was replaced: {stderr}"
    );
    assert_eq!(code, 0, "CMD ran to its own end: {stderr}");
    assert_eq!(
        job.read("a.signals"),
        "",
        "switchman signalled CMD: {stderr}"
    );
}

/// Blackholes the proxy for `cut`, `rounds` times, each after the run has settled again (half
/// a session timeout), at a phase that moves by a fraction of a beat from round to round. The
/// blackhole loses what is sent into it (see [`Proxy::blackhole_lossy`]): neither the old
/// connection nor a reconnect attempt made during the cut can bring an answer after it.
async fn blackholes(proxy: &Proxy, timeout: Duration, cut: Duration, rounds: u32) {
    for round in 0..rounds {
        tokio::time::sleep(timeout / 2 + timeout / 10 * round / rounds).await;
        proxy.blackhole_lossy();
        tokio::time::sleep(cut).await;
        proxy.heal();
    }
    // Long enough for a stop that an outage had set off to have begun.
    tokio::time::sleep(timeout / 2).await;
}

/// 3 s of silence at T = 10 s on one server with the stock tick: the outage the docs promise
/// to ride out at the default settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_3s_blackhole_at_t_10s_costs_cmd_nothing() {
    let ensemble = tokio::task::block_in_place(|| stock_ensemble(1));
    let proxy = Proxy::start(&[ensemble.client_port(0)]);
    let timeout = Duration::from_secs(10);
    rides_out(
        &proxy.connect_string(),
        &ensemble.connect_string(),
        timeout,
        STOCK_TICK,
        async || blackholes(&proxy, timeout, Duration::from_secs(3), 3).await,
    )
    .await;
}

/// 1 s at T = 4 s with a 100 ms tick: the same share of a shorter timeout.
#[tokio::test]
async fn a_1s_blackhole_at_t_4s_costs_cmd_nothing() {
    let ensemble = shared_ensemble();
    let proxy = Proxy::start(&[ensemble.client_port(0)]);
    let timeout = Duration::from_secs(4);
    let tick = Duration::from_secs_f64(SERVER_TICK_TIME);
    rides_out(
        &proxy.connect_string(),
        &ensemble.connect_string(),
        timeout,
        tick,
        async || blackholes(&proxy, timeout, Duration::from_secs(1), 4).await,
    )
    .await;
}

/// Every server of three restarted in turn, then the leader killed, with the stock tick and
/// the default T = 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_and_a_leader_crash_with_the_stock_tick_cost_cmd_nothing() {
    let mut ensemble = tokio::task::block_in_place(|| stock_ensemble(3));
    let zkhosts = ensemble.connect_string();
    let timeout = Duration::from_secs(10);
    rides_out(
        &zkhosts,
        &zkhosts.clone(),
        timeout,
        STOCK_TICK,
        async || {
            tokio::time::sleep(timeout / 2).await;
            tokio::task::block_in_place(|| {
                for i in 0..3 {
                    ensemble.stop(i);
                    ensemble.start_member(i); // returns once it serves again, in the quorum
                }
                let leader = ensemble.wait_for_leader(Duration::from_secs(60));
                ensemble.kill(leader);
                let new_leader = ensemble.wait_for_leader(Duration::from_secs(60));
                assert_ne!(new_leader, leader);
            });
            tokio::time::sleep(timeout / 2).await;
        },
    )
    .await;
}
