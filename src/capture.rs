//! CMD's output, captured (docs/guide.md: "Output and history"): CMD's stdout and stderr are
//! pipes, never a pty, and a thread per pipe copies what comes out of it, line by line, to
//! switchman's own stdout or stderr (or, for a cron-quiet run, to a spool file for the end), to
//! the log destinations with the run's fields, and into a bounded tail for the run history.
//!
//! The copying runs on threads of its own, never on the runtime that supervises CMD: a slow
//! reader of switchman's stdout may block a copy, and must not block the stop that keeps two
//! hosts from running the job at once. Memory stays bounded whatever CMD writes: a read buffer
//! and a held-back line per pipe, and the tail. CMD is slowed only as the pipe slows it: the
//! copy reads as fast as switchman's own stdout takes the bytes.

mod tail;

use std::fs::File;
use std::io::{Seek, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use tokio::sync::oneshot;

use crate::logging;
pub use tail::Kept;
use tail::Tail;

/// Bytes read from a pipe at once.
const CHUNK: usize = 64 * 1024;
/// The longest line held back for want of its newline: a longer one is passed on in pieces.
const LONGEST_LINE: usize = 64 * 1024;
/// How long the beginning of a line is held back when no more comes (a prompt, a progress dot):
/// then it is passed on without its newline. The logs and the tail wait for the whole line.
const HOLD_BACK_MS: u16 = 100;
/// What a pipe may still yield once CMD has ended: what it wrote before is in the pipe already;
/// a process it left behind that writes on is not waited for.
const DRAIN_AFTER_END: usize = 4 * 1024 * 1024;

/// CMD's two output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn label(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// The write ends of the pipes, for CMD's stdout and stderr.
pub struct ChildEnds {
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// What the copies share: the tail of both streams and, for a cron-quiet run, the spool. One
/// lock over both, so that they hold the streams' lines in one order.
struct Shared {
    tail: Tail,
    spool: Option<File>,
    /// Set once writing the spool failed; the tail is what is left to show.
    spool_failed: bool,
}

/// A capture under way, from before CMD starts until its copies have ended.
pub struct Capture {
    shared: Arc<Mutex<Shared>>,
    /// Closed when CMD has ended: the copies then take what the pipes still hold, and end.
    ended: Option<OwnedFd>,
    done: Vec<oneshot::Receiver<()>>,
}

/// What was captured of CMD's output.
pub struct Captured {
    pub tail: Kept,
    spool: Option<File>,
}

impl Capture {
    /// Makes the pipes and starts a copy of each, before CMD starts: a copy that could not be
    /// started is then no capture at all, rather than a pipe nobody reads. `tail` bytes are
    /// kept for the history. `quiet`: nothing reaches switchman's stdout and stderr while CMD
    /// runs, and everything is spooled for the end. The pipes are close-on-exec on our side, so
    /// CMD gets only its stdout and stderr; if CMD does not start, dropping its ends ends the
    /// copies. Their log lines belong to the current span (the run's), as every other line of
    /// the run.
    pub fn new(tail: usize, quiet: bool) -> std::io::Result<(Capture, ChildEnds)> {
        let cloexec = nix::fcntl::OFlag::O_CLOEXEC;
        let (out_r, out_w) = nix::unistd::pipe2(cloexec)?;
        let (err_r, err_w) = nix::unistd::pipe2(cloexec)?;
        let (seen, ended) = nix::unistd::pipe2(cloexec)?;
        let (spool, spool_failed) = match quiet {
            false => (None, false),
            true => match tempfile::tempfile() {
                Ok(f) => (Some(f), false),
                Err(e) => {
                    tracing::warn!(
                        "cannot make a spool file for CMD's output in {} ({e}); only its last \
                         {tail} bytes can be shown if it fails",
                        std::env::temp_dir().display()
                    );
                    (None, true)
                }
            },
        };
        let mut capture = Capture {
            shared: Arc::new(Mutex::new(Shared {
                tail: Tail::new(tail),
                spool,
                spool_failed,
            })),
            ended: Some(ended),
            done: Vec::new(),
        };
        let seen = Arc::new(seen);
        let span = tracing::Span::current();
        for (stream, pipe) in [(Stream::Stdout, out_r), (Stream::Stderr, err_r)] {
            let (tx, rx) = oneshot::channel();
            let copier = Copier {
                stream,
                pipe,
                ended: seen.clone(),
                shared: capture.shared.clone(),
                pass_on: !quiet,
                broken: false,
            };
            let span = span.clone();
            std::thread::Builder::new()
                .name(format!("cmd-{}", stream.label()))
                .spawn(move || {
                    let _in_run = span.enter();
                    copier.run();
                    let _ = tx.send(());
                })?;
            capture.done.push(rx);
        }
        Ok((
            capture,
            ChildEnds {
                stdout: out_w,
                stderr: err_w,
            },
        ))
    }

    /// Once CMD has ended: lets the copies take what the pipes still hold, waits for them, and
    /// returns what was captured.
    pub async fn finish(mut self) -> Captured {
        drop(self.ended.take());
        for done in std::mem::take(&mut self.done) {
            let _ = done.await;
        }
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        Captured {
            tail: shared.tail.kept(),
            spool: shared.spool.take().filter(|_| !shared.spool_failed),
        }
    }
}

impl Captured {
    /// Writes everything CMD wrote, both streams in the order their lines came, to stderr: a
    /// cron-quiet run that did not succeed shows its output at the end, for cron to mail.
    pub fn show_on_stderr(&mut self) {
        let stderr = std::io::stderr();
        let mut out = stderr.lock();
        let shown = match &mut self.spool {
            Some(spool) => spool
                .rewind()
                .and_then(|_| std::io::copy(spool, &mut out).map(|_| ())),
            None => {
                if self.tail.cut() {
                    let _ = writeln!(
                        out,
                        "switchman: CMD's output could not be spooled; its last {} of {} bytes:",
                        self.tail.bytes.len(),
                        self.tail.total
                    );
                }
                out.write_all(&self.tail.bytes)
            }
        };
        if let Err(e) = shown.and_then(|_| out.flush()) {
            tracing::warn!("cannot show CMD's output on stderr: {e}");
        }
    }
}

/// One pipe's copy, on a thread of its own.
struct Copier {
    stream: Stream,
    pipe: OwnedFd,
    ended: Arc<OwnedFd>,
    shared: Arc<Mutex<Shared>>,
    /// Whether to pass the output on to switchman's own stdout or stderr.
    pass_on: bool,
    /// Set once that failed (a reader of switchman's stdout that went away): the copy goes on,
    /// for the logs and the history, without it.
    broken: bool,
}

impl Copier {
    fn run(mut self) {
        let mut buf = vec![0u8; CHUNK];
        // The beginning of a line not ended yet, and how much of it was passed on already.
        let mut line: Vec<u8> = Vec::new();
        let mut shown = 0;
        let mut drained: Option<usize> = None;
        loop {
            let timeout = match drained {
                Some(_) => PollTimeout::ZERO,
                None if self.pass_on && line.len() > shown => PollTimeout::from(HOLD_BACK_MS),
                None => PollTimeout::NONE,
            };
            let mut fds = [
                PollFd::new(self.pipe.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.ended.as_fd(), PollFlags::POLLIN),
            ];
            let watched = if drained.is_some() { 1 } else { 2 };
            match poll(&mut fds[..watched], timeout) {
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    tracing::error!("cannot wait for CMD's {}: {e}", self.stream.label());
                    break;
                }
                Ok(0) if drained.is_some() => break,
                Ok(0) => {
                    self.pass(&line[shown..]);
                    shown = line.len();
                    continue;
                }
                Ok(_) => {}
            }
            if drained.is_none() && fds.get(1).is_some_and(|f| f.any().unwrap_or(false)) {
                drained = Some(0);
            }
            if !fds[0].any().unwrap_or(false) {
                continue;
            }
            let n = match nix::unistd::read(&self.pipe, &mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(Errno::EINTR | Errno::EAGAIN) => continue,
                Err(e) => {
                    tracing::error!("cannot read CMD's {}: {e}", self.stream.label());
                    break;
                }
            };
            if line.is_empty() {
                // The usual case, without a copy: whole lines straight from the read.
                let read = &buf[..n];
                let rest = match memchr::memrchr(b'\n', read) {
                    Some(last) => {
                        self.emit(&read[..=last], 0);
                        &read[last + 1..]
                    }
                    None => read,
                };
                line.extend_from_slice(rest);
            } else {
                line.extend_from_slice(&buf[..n]);
                if let Some(last) = memchr::memrchr(b'\n', &line) {
                    self.emit(&line[..=last], shown);
                    line.drain(..=last);
                    shown = 0;
                }
            }
            if line.len() >= LONGEST_LINE {
                self.emit(&line, shown);
                line.clear();
                shown = 0;
            }
            if let Some(d) = &mut drained {
                *d += n;
                if *d >= DRAIN_AFTER_END {
                    break;
                }
            }
        }
        if !line.is_empty() {
            self.emit(&line, shown);
        }
    }

    /// Whole lines (or a piece of a line too long to hold back, or the last one): passed on
    /// from byte `shown` on, and into the tail, the spool and the logs.
    fn emit(&mut self, lines: &[u8], shown: usize) {
        self.pass(&lines[shown..]);
        {
            let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
            shared.tail.push(lines);
            if let Some(spool) = &mut shared.spool
                && let Err(e) = spool.write_all(lines)
                && !shared.spool_failed
            {
                shared.spool_failed = true;
                tracing::warn!(
                    "cannot spool CMD's output ({e}); only its tail can be shown if it fails"
                );
            }
        }
        if tracing::enabled!(target: logging::OUTPUT, tracing::Level::INFO) {
            let lines = lines.strip_suffix(b"\n").unwrap_or(lines);
            for line in lines.split(|b| *b == b'\n') {
                tracing::info!(
                    target: logging::OUTPUT,
                    stream = %self.stream.label(),
                    "{}",
                    logging::printable(line)
                );
            }
        }
    }

    /// Writes `bytes` to switchman's own stdout or stderr, unless cron-quiet.
    fn pass(&mut self, bytes: &[u8]) {
        if !self.pass_on || self.broken || bytes.is_empty() {
            return;
        }
        let written = match self.stream {
            Stream::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes).and_then(|_| out.flush())
            }
            Stream::Stderr => std::io::stderr().lock().write_all(bytes),
        };
        if let Err(e) = written {
            self.broken = true;
            tracing::warn!(
                "cannot pass CMD's {} on to switchman's ({e}); it is still logged and kept in \
                 the history",
                self.stream.label()
            );
        }
    }
}
