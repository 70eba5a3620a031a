use switchman::cli::Cli;
use switchman::config::Config;
use switchman::{logging, run};

fn main() {
    // A bug of ours is an internal error (70) with one line, not Rust's 101 and a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("switchman: internal error: {info}; please report this");
        std::process::exit(70);
    }));
    let cli = Cli::parse_or_exit();
    let config = Config::load(&cli.config);
    let logging = logging::init(cli.debug(), config.as_ref().ok());
    // Every line of the run names its job, errors included (README: "The logfile"). Entered for the
    // rest of main: the runtime has one thread, so every task of the run runs inside it.
    let job = tracing::info_span!("run", job = %cli.job_name());
    let _in_job = job.enter();
    let result = logging.and(config).and_then(|config| {
        for warning in &config.warnings {
            tracing::warn!("{warning}");
        }
        // One thread: CMD's parent-death signal fires when the thread that spawned it exits,
        // so the spawning thread must live as long as switchman does.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        runtime.block_on(run::run(&cli, &config))
    });
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            tracing::error!("{e}");
            std::process::exit(e.exit_code());
        }
    }
}
