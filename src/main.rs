use switchman::cli::Cli;
use switchman::config::Config;
use switchman::{logging, run};
use tracing::field::Empty;

fn main() {
    // A bug of ours is an internal error (70) with one line, not Rust's 101 and a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("switchman: internal error: {info}; please report this");
        std::process::exit(switchman::exit::INTERNAL.value);
    }));
    let cli = Cli::parse_or_exit();
    let config = Config::load(&cli.config);
    let logging = logging::init(cli.debug(), config.as_ref().ok());
    // Every line of the run carries the job's name, errors included, and once known its lock
    // and fencing token (recorded by `run`) and the exit code: structured fields in JSON lines
    // and the journal, so that `journalctl JOB=backup` finds a job's lines (docs/logging.md).
    // Entered for the rest of main: the runtime has one thread, so every task of the run runs
    // inside it.
    let span = tracing::info_span!(
        "run",
        job = %cli.job_name(),
        lock = Empty,
        token = Empty,
        exit_code = Empty,
        outcome = Empty
    );
    let _in_run = span.enter();
    let result = logging.and(config).and_then(|config| {
        for warning in &config.warnings {
            tracing::warn!(target: logging::CONFIG_WARNINGS, "{warning}");
        }
        // One thread: CMD's parent-death signal fires when the thread that spawned it exits,
        // so the spawning thread must live as long as switchman does.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        runtime.block_on(run::run(&cli, &config))
    });
    run::supervisor::reap_dismissed();
    match result {
        // `run` logged how it ended, with the exit code.
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // The error is the run's last line: it carries the exit code, whatever failed.
            span.record("exit_code", e.exit_code());
            span.record("outcome", switchman::outcome::Outcome::of_error(&e).label());
            tracing::error!("{e}");
            std::process::exit(e.exit_code());
        }
    }
}
