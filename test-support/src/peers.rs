//! What the benches set switchman beside, when it is installed: etcd 3.4 (`etcd-server` and
//! `etcd-client` from Debian; `scripts/bench` installs them), run privately. Each bench uses
//! what it needs of it.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Whether `program` is on the PATH.
pub fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// A private etcd on free loopback ports, killed when dropped (or when this process dies).
pub struct Etcd {
    child: Child,
    /// `127.0.0.1:PORT`, for `etcdctl --endpoints`.
    pub endpoint: String,
    _dir: tempfile::TempDir,
}

impl Etcd {
    /// Starts one when `etcd` and `etcdctl` are installed, and waits until it answers.
    pub fn start_if_installed() -> Option<Etcd> {
        (installed("etcd") && installed("etcdctl")).then(Etcd::start)
    }

    fn start() -> Etcd {
        let dir = tempfile::tempdir().unwrap();
        let ports = crate::pick_ports(2);
        let client = format!("http://127.0.0.1:{}", ports[0]);
        let peer = format!("http://127.0.0.1:{}", ports[1]);
        let mut cmd = Command::new("etcd");
        cmd.arg("--name=bench")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=bench={peer}"))
            .arg("--log-level=error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: prctl only, between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                    .map_err(std::io::Error::from)
            });
        }
        let child = cmd.spawn().expect("start etcd");
        let etcd = Etcd {
            child,
            endpoint: format!("127.0.0.1:{}", ports[0]),
            _dir: dir,
        };
        let healthy = crate::poll_until_blocking(Duration::from_secs(30), || {
            etcdctl(&etcd.endpoint)
                .args(["endpoint", "health"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        assert!(healthy, "etcd did not become healthy at {}", etcd.endpoint);
        etcd
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `etcdctl` (API 3) for the etcd at `endpoint`.
pub fn etcdctl(endpoint: &str) -> Command {
    let mut cmd = Command::new("etcdctl");
    cmd.env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"));
    cmd
}
