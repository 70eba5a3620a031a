//! One server process (ZooKeeper's java, or the KDC) under a tiny `/bin/sh` wrapper that
//! cleans up after it.
//!
//! Each server process is started by the wrapper in its own process group whose stdin is a
//! pipe; the write end is held (close-on-exec) by this process, not by any thread.  The
//! wrapper waits on that pipe; when it reads EOF — because its owner was dropped, or the
//! test process exited, panicked, or was SIGKILLed — it SIGKILLs the server, reaps it and `rm -rf`s
//! its temp directory.  The server is additionally started through
//! `setpriv --pdeathsig KILL` (when available) so that it also dies if the wrapper itself
//! is killed.  The wrapper ignores SIGINT/SIGTERM/SIGHUP/SIGQUIT and is in its own process
//! group, so Ctrl-C or a process-group kill of the test run reaches it only through the pipe.
//! `stop`/`kill`/`pause`/`is_running` act on the real server pid (checked against its
//! /proc start time, so a recycled pid is never signalled).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill as send_signal};
use nix::unistd::Pid;

use super::util::{poll_until_blocking, proc_stat};

const SETPRIV: &str = "/usr/bin/setpriv";

/// The wrapper: starts the server, prints its pid, then blocks reading stdin.  On EOF (or any
/// line) it SIGKILLs and reaps the server; unless the line was "keep" it removes $2.
const WRAPPER: &str = r#"log=$1; rmdir=$2; shift 2
"$@" </dev/null >>"$log" 2>&1 &
p=$!
trap '' INT TERM HUP QUIT PIPE
echo "$p"
read -r cmd || cmd=
kill -9 "$p" 2>/dev/null
wait "$p" 2>/dev/null
if [ "$cmd" != keep ] && [ -n "$rmdir" ]; then rm -rf "$rmdir"; fi
"#;

/// A running server: the wrapper, the pipe that keeps it waiting, and the server's pid.
pub struct ServerProc {
    pub wrapper: Child,
    pub stdin: Option<ChildStdin>,
    pub pid: i32,
    /// /proc/<pid>/stat field 22, to recognise the pid after it might have been recycled.
    start_time: u64,
}

impl ServerProc {
    /// Starts `argv` (the program first) under the wrapper, its output appended to `log`;
    /// `rm_on_exit` (if not empty) is removed once it is killed.
    pub fn spawn(log: &Path, rm_on_exit: &Path, argv: &[String]) -> std::io::Result<ServerProc> {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(WRAPPER)
            .arg("switchman-zk-wrapper")
            .arg(log)
            .arg(rm_on_exit);
        if Path::new(SETPRIV).exists() {
            cmd.args([SETPRIV, "--pdeathsig", "KILL"]);
        }
        cmd.args(argv);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0);
        let mut wrapper = cmd.spawn()?;
        let stdin = wrapper.stdin.take();
        let mut line = String::new();
        let read =
            BufReader::new(wrapper.stdout.take().expect("piped stdout")).read_line(&mut line);
        let pid = match read.ok().and_then(|_| line.trim().parse::<i32>().ok()) {
            Some(pid) => pid,
            None => {
                drop(stdin);
                let _ = wrapper.wait();
                return Err(std::io::Error::other(format!(
                    "zk wrapper printed no pid: {line:?}"
                )));
            }
        };
        // The wrapper doesn't reap the server until told to, so the pid is valid (maybe a zombie).
        let start_time = proc_stat(pid).map(|(_, t)| t).unwrap_or(0);
        Ok(ServerProc {
            wrapper,
            stdin,
            pid,
            start_time,
        })
    }

    pub fn is_alive(&self) -> bool {
        matches!(proc_stat(self.pid), Some((state, t)) if t == self.start_time && state != 'Z' && state != 'X')
    }

    pub fn signal(&self, sig: Signal) {
        if self.is_alive() {
            let _ = send_signal(Pid::from_raw(self.pid), sig);
        }
    }

    pub fn wait_exit(&self, timeout: Duration) -> bool {
        poll_until_blocking(timeout, || !self.is_alive())
    }

    /// Makes the wrapper kill+reap the server and exit; waits for it.
    pub fn finish(mut self, keep_dir: bool) {
        if let Some(mut stdin) = self.stdin.take()
            && keep_dir
        {
            let _ = stdin.write_all(b"keep\n");
        }
        let _ = self.wrapper.wait();
    }
}
