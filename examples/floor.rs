//! The floor of a plain lock run: what any program using the same ZooKeeper client library
//! pays at the least to run a command under an ephemeral node. It connects, creates one
//! ephemeral node, runs the command (fork/exec and wait), and closes the session, which
//! deletes the node; nothing else: no config, no logging, no heartbeat, no watch, no
//! supervision. `cargo bench --bench plain_run` sets switchman's plain run against it.
//!
//!     cargo run --release --example floor -- ZKHOSTS PATH [CMD ARGS...]
//!
//! PATH's parent must exist. Exits with CMD's code (1 if it did not exit).

use std::process::{Command, ExitCode};

use zookeeper_client::{Acls, Client, CreateMode, SessionState};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [zkhosts, path, cmd @ ..] = args.as_slice() else {
        eprintln!("usage: floor ZKHOSTS PATH [CMD ARGS...]");
        return ExitCode::from(64);
    };
    // The same kind of runtime as switchman's: one thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let client = Client::connector()
            .connect(zkhosts)
            .await
            .unwrap_or_else(|e| panic!("connect to {zkhosts}: {e}"));
        let mode = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
        client
            .create(path, b"floor", &mode)
            .await
            .unwrap_or_else(|e| panic!("create {path}: {e}"));
        let code = match cmd.split_first() {
            Some((program, args)) => Command::new(program)
                .args(args)
                .status()
                .unwrap_or_else(|e| panic!("run {program}: {e}"))
                .code()
                .unwrap_or(1),
            None => 0,
        };
        // The library sends CloseSession once the last handle is gone; wait for its answer,
        // as switchman does, so that the node is gone when we exit.
        let mut states = client.state_watcher();
        drop(client);
        while !matches!(
            states.changed().await,
            SessionState::Closed | SessionState::Expired | SessionState::AuthFailed
        ) {}
        ExitCode::from(code as u8)
    })
}
