//! Logging (README: "Config file"): warnings and errors on stderr by default, debug with `-v`
//! or `DEBUG=1`; with `logfile`, lines at `loglevel` and above appended there with a timestamp and
//! our pid. Skipped runs log below warning, so cron mails nothing for them.

use std::fs::OpenOptions;
use std::sync::Mutex;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, fmt};

use crate::config::{Config, LogLevel};
use crate::error::{Error, Result};

/// Installs the global subscriber. Fails only if the logfile cannot be opened; stderr is set up
/// even then, so that the error itself is printed.
pub fn init(debug: bool, config: Option<&Config>) -> Result<()> {
    let stderr_level = if debug { Level::DEBUG } else { Level::WARN };
    // The client library logs every reconnect as a warning; cron would mail those during a
    // rolling restart of ZooKeeper. On stderr it speaks only in debug mode; the logfile keeps
    // its warnings for diagnosis.
    let library_level = if debug {
        LevelFilter::WARN
    } else {
        LevelFilter::OFF
    };
    let stderr_filter = Targets::new()
        .with_target("switchman", stderr_level)
        .with_default(library_level);
    // Plain text: what cron mails is read as text. It also keeps escapes out of the logfile,
    // which shares the formatted span fields with this layer.
    let stderr = fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .event_format(StderrFormat)
        .with_filter(stderr_filter);

    let file = match config.and_then(|c| c.logfile.as_ref().map(|f| (c, f))) {
        None => None,
        Some((config, path)) => {
            let opened = OpenOptions::new().create(true).append(true).open(path);
            let handle = match opened {
                Ok(handle) => handle,
                Err(e) => {
                    let _ = tracing::subscriber::set_global_default(
                        tracing_subscriber::registry().with(stderr),
                    );
                    return Err(Error::Config(format!(
                        "{}: key \"logfile\": cannot open {} for appending: {e}",
                        config.path.display(),
                        path.display()
                    )));
                }
            };
            let level = match config.loglevel {
                LogLevel::Debug => Level::DEBUG,
                LogLevel::Info => Level::INFO,
                LogLevel::Warning => Level::WARN,
                LogLevel::Critical => Level::ERROR,
            };
            Some(
                fmt::layer()
                    .with_writer(Mutex::new(handle))
                    .with_ansi(false)
                    .with_target(false)
                    .with_timer(TimeAndPid)
                    .with_filter(
                        Targets::new()
                            .with_target("switchman", level)
                            .with_default(LevelFilter::WARN),
                    ),
            )
        }
    };
    let subscriber = tracing_subscriber::registry().with(stderr).with(file);
    // A second init (only in tests) keeps the first subscriber; that is fine.
    let _ = tracing::subscriber::set_global_default(subscriber);
    Ok(())
}

/// `switchman: message` for errors, `switchman: warning: message` for the rest: one plain line
/// per event, as cron mails it.
struct StderrFormat;

impl<S, N> FormatEvent<S, N> for StderrFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        match *event.metadata().level() {
            Level::ERROR => write!(writer, "switchman: ")?,
            Level::WARN => write!(writer, "switchman: warning: ")?,
            Level::INFO => write!(writer, "switchman: info: ")?,
            _ => write!(writer, "switchman: debug: ")?,
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// The file's timestamp, followed by our pid so that lines of concurrent runs can be told apart.
struct TimeAndPid;

impl FormatTime for TimeAndPid {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        SystemTime.format_time(w)?;
        write!(w, " [{}]", std::process::id())
    }
}
