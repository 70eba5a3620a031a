//! Logging (docs/logging.md): warnings and errors on stderr by default, debug with `-v` or
//! `DEBUG=1`; with `logfile`, lines at `loglevel` and above appended there, as text with a
//! timestamp and our pid or as JSON lines; with `journald`, the same lines in the systemd
//! journal with structured fields. Skipped runs log below warning, so cron mails nothing for
//! them.

use std::fs::OpenOptions;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;

use tracing::{Event, Level, Subscriber};
use tracing_journald::{Priority, PriorityMappings};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::{DefaultFields, Format, Json, JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry, fmt};

use crate::config::{Config, LogFormat, LogLevel};
use crate::error::{Error, Result};

/// The target of warnings that belong in the logfile but not in cron's mail: the config's
/// unknown keys, which a config newer than some binaries has on every run during a rollout.
/// Stderr shows them only in debug mode; `switchmanctl check-config` reports them loudly.
pub const CONFIG_WARNINGS: &str = "switchman::config_warnings";

/// The target of CMD's captured output lines (`capture_output`): in the logfile and the
/// journal at info, with the stream as a field; never on stderr, where the lines themselves go.
pub const OUTPUT: &str = "switchman::output";

/// What `journalctl SYSLOG_IDENTIFIER=switchman` selects, whatever the binary is called.
const SYSLOG_IDENTIFIER: &str = "switchman";

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Installs the global subscriber. Stderr is always set up, so that when a sink of the config
/// (the logfile, the journal) cannot be used, the error that says so is printed there: the
/// subscriber is installed with the sinks that work, and the first failure is returned.
pub fn init(debug: bool, config: Option<&Config>) -> Result<()> {
    let mut layers = vec![stderr_layer(debug)];
    let mut failure = None;
    if let Some(config) = config {
        for sink in [logfile_layer(config), journald_layer(config)] {
            match sink {
                Ok(Some(layer)) => layers.push(layer),
                Ok(None) => {}
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
    }
    // A second init (only in tests) keeps the first subscriber; that is fine.
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layers));
    failure.map_or(Ok(()), Err)
}

/// The problems a run would have setting up the config's sinks, one message each; for
/// `switchmanctl check-config`. Checks what a run's open would, without creating anything: a
/// logfile created by an operator's check would belong to the operator, not to cron's user.
pub fn check_sinks(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(path) = &config.logfile
        && let Err(e) = check_appendable(path)
    {
        problems.push(logfile_error(config, path, &e).to_string());
    }
    if config.journald
        && let Err(e) = journald_layer(config)
    {
        problems.push(e.to_string());
    }
    problems
}

/// `switchman: message` lines; debug and the client library's warnings only in debug mode.
fn stderr_layer(debug: bool) -> BoxedLayer {
    let (ours, library, config_warnings) = if debug {
        (LevelFilter::DEBUG, LevelFilter::WARN, LevelFilter::WARN)
    } else {
        // The client library logs every reconnect as a warning; cron would mail those during a
        // rolling restart of ZooKeeper. The logfile keeps them for diagnosis.
        (LevelFilter::WARN, LevelFilter::OFF, LevelFilter::OFF)
    };
    fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(colour_on_stderr())
        .fmt_fields(StderrFields(DefaultFields::new()))
        .event_format(StderrFormat)
        .with_filter(
            Targets::new()
                .with_target("switchman", ours)
                .with_target(CONFIG_WARNINGS, config_warnings)
                .with_target(OUTPUT, LevelFilter::OFF)
                .with_default(library),
        )
        .boxed()
}

/// Colour codes only for a person at a terminal: cron mail and journald would show them as
/// `^[[3m` noise. `NO_COLOR` (set and not empty) turns them off even there (no-color.org).
fn colour_on_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The level filter of the config's sinks: `loglevel` for our lines, warnings for the rest.
fn sink_filter(config: &Config) -> Targets {
    let level = match config.loglevel {
        LogLevel::Debug => Level::DEBUG,
        LogLevel::Info => Level::INFO,
        LogLevel::Warning => Level::WARN,
        LogLevel::Critical => Level::ERROR,
    };
    Targets::new()
        .with_target("switchman", level)
        .with_default(LevelFilter::WARN)
}

fn logfile_layer(config: &Config) -> Result<Option<BoxedLayer>> {
    let Some(path) = &config.logfile else {
        return Ok(None);
    };
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| logfile_error(config, path, &e))?;
    let writer = Mutex::new(file);
    let layer = match config.logfile_format {
        LogFormat::Text => fmt::layer()
            .with_writer(writer)
            .fmt_fields(TextFileFields(DefaultFields::new()))
            .with_ansi(false)
            .with_target(false)
            .with_timer(TimeAndPid)
            .with_filter(sink_filter(config))
            .boxed(),
        LogFormat::Json => fmt::layer()
            .with_writer(writer)
            .fmt_fields(JsonFields::new())
            .event_format(JsonWithPid(
                Format::default()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false),
            ))
            .with_filter(sink_filter(config))
            .boxed(),
    };
    Ok(Some(layer))
}

fn logfile_error(config: &Config, path: &Path, e: &std::io::Error) -> Error {
    Error::Config(format!(
        "{}: key \"logfile\": cannot open {} for appending: {e}",
        config.path.display(),
        path.display()
    ))
}

/// Whether a run could open `path` for appending (creating it if need be), without opening it.
fn check_appendable(path: &Path) -> std::io::Result<()> {
    use nix::unistd::{AccessFlags, access};
    if path.is_dir() {
        return Err(std::io::Error::from(std::io::ErrorKind::IsADirectory));
    }
    let (target, flags) = match path.try_exists()? {
        true => (path, AccessFlags::W_OK),
        false => {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            (dir, AccessFlags::W_OK | AccessFlags::X_OK)
        }
    };
    access(target, flags).map_err(std::io::Error::from)
}

/// The systemd journal, with every field of the run as a journal field of its own (`JOB`,
/// `LOCK`, `TOKEN`, `EXIT_CODE`: see `main`), unprefixed, so that `journalctl
/// SYSLOG_IDENTIFIER=switchman JOB=backup` finds a job's lines.
fn journald_layer(config: &Config) -> Result<Option<BoxedLayer>> {
    if !config.journald {
        return Ok(None);
    }
    let layer = tracing_journald::layer().map_err(|e| {
        Error::Config(format!(
            "{}: key \"journald\": cannot reach the systemd journal at \
             /run/systemd/journal/socket: {e}; is systemd-journald running? Set \"journald\" \
             to false on hosts without it",
            config.path.display()
        ))
    })?;
    // Syslog's names for the levels `loglevel` uses, so that `journalctl -p info` means what
    // `"loglevel": "info"` does (the crate's default makes info a notice, debug info).
    let priorities = PriorityMappings {
        info: Priority::Informational,
        debug: Priority::Debug,
        ..PriorityMappings::new()
    };
    Ok(Some(
        layer
            .with_priority_mappings(priorities)
            .with_field_prefix(None)
            .with_syslog_identifier(SYSLOG_IDENTIFIER.to_string())
            .with_filter(sink_filter(config))
            .boxed(),
    ))
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

/// Stderr's field formatter: tracing-subscriber's default under a type of its own. Layers whose
/// field formatters share a type share each span's formatted fields, formatted by whichever
/// layer saw the span first and appended to by both when a field is recorded later: with colour
/// on a terminal, the text logfile got stderr's escapes in `run{job=...}`, and `lock` and
/// `token` twice.
struct StderrFields(DefaultFields);

impl<'writer> FormatFields<'writer> for StderrFields {
    fn format_fields<R: RecordFields>(
        &self,
        writer: Writer<'writer>,
        fields: R,
    ) -> std::fmt::Result {
        self.0.format_fields(writer, fields)
    }
}

/// The text logfile's field formatter: the default, except that fields recorded on a span after
/// it was created (the lock, the token, the exit code: see `main`) are left out of its
/// `run{job=...}`, since the line's own words say them already (`started: lock ... (token N)`,
/// `ended: exit code N`). JSON lines and the journal carry them as fields.
struct TextFileFields(DefaultFields);

impl<'writer> FormatFields<'writer> for TextFileFields {
    fn format_fields<R: RecordFields>(
        &self,
        writer: Writer<'writer>,
        fields: R,
    ) -> std::fmt::Result {
        self.0.format_fields(writer, fields)
    }

    fn add_fields(
        &self,
        _current: &'writer mut FormattedFields<Self>,
        _fields: &tracing::span::Record<'_>,
    ) -> std::fmt::Result {
        Ok(())
    }
}

/// The text file's timestamp, followed by our pid so that lines of concurrent runs can be told
/// apart.
struct TimeAndPid;

impl FormatTime for TimeAndPid {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        SystemTime.format_time(w)?;
        write!(w, " [{}]", std::process::id())
    }
}

/// tracing-subscriber's JSON lines with `"pid"` added first, for the same reason as the text
/// file's `[pid]`: its formatter has no place for a field of the process.
struct JsonWithPid(Format<Json>);

impl<S, N> FormatEvent<S, N> for JsonWithPid
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
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => write!(writer, "{{\"pid\":{},{rest}", std::process::id()),
            None => write!(writer, "{line}"),
        }
    }
}

/// A line of CMD's output as a log line: UTF-8 as it is, with control characters (but tab)
/// written `\u{1b}` and bytes that are not UTF-8 written `\xff`, so that no line can break the
/// logfile's lines or a terminal that shows them. The journal and JSON lines get the same text.
pub fn printable(line: &[u8]) -> String {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut text = String::with_capacity(line.len());
    for chunk in line.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() && c != '\t' {
                text.extend(c.escape_default());
            } else {
                text.push(c);
            }
        }
        for b in chunk.invalid() {
            text.push_str(&format!("\\x{b:02x}"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_lines_are_logged_printably() {
        assert_eq!(
            printable(b"plain \xc3\xa9t\xc3\xa9\r"),
            "plain \u{e9}t\u{e9}"
        );
        assert_eq!(
            printable(b"a\tb\x1b[31mred\x00"),
            "a\tb\\u{1b}[31mred\\u{0}"
        );
        assert_eq!(printable(b"\xff\xfeok"), "\\xff\\xfeok");
    }
}
