//! switchman's own failures, each tied to one exit code of [`crate::exit`].

use std::fmt;

use crate::exit;

/// A failure of switchman itself (not of CMD). Every variant maps to one documented exit code,
/// and its message is the one line printed on stderr, so it must say what went wrong and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Bad option, lease spec or lock name; no CMD. Exit 64.
    Usage(String),
    /// No ZooKeeper session could be established. Exit 69.
    Unavailable(String),
    /// Internal or unexpected ZooKeeper error. Exit 70.
    Internal(String),
    /// A wait timed out (`resources_wait_timeout`). Exit 75.
    Timeout(String),
    /// ZooKeeper refused us: bad credentials, a znode whose ACL keeps us out, a TLS handshake
    /// that failed. Exit 77 (sysexits' NOPERM).
    NoPerm(String),
    /// Config file, prefix data, unknown group or resource. Exit 78.
    Config(String),
    /// CMD was stopped because the lock, session, lease or group membership was lost. Exit 79.
    Lost(String),
    /// CMD could not be started: 127 if it was not found, 126 otherwise, as shells do.
    CannotRun(String, i32),
}

impl Error {
    /// The process exit code [`crate::exit::TABLE`] assigns to this kind of failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => exit::USAGE.value,
            Error::Unavailable(_) => exit::UNAVAILABLE.value,
            Error::Internal(_) => exit::INTERNAL.value,
            Error::Timeout(_) => exit::TIMEOUT.value,
            Error::NoPerm(_) => exit::NO_PERM.value,
            Error::Config(_) => exit::CONFIG.value,
            Error::Lost(_) => exit::LOST.value,
            Error::CannotRun(_, code) => *code,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, msg) = match self {
            Error::Usage(m) => ("usage error", m),
            Error::Unavailable(m) => ("ZooKeeper unavailable", m),
            Error::Internal(m) => ("internal error", m),
            Error::Timeout(m) => ("timed out", m),
            Error::NoPerm(m) => ("permission denied", m),
            Error::Config(m) => ("config error", m),
            Error::Lost(m) => ("CMD stopped", m),
            Error::CannotRun(m, _) => ("cannot start CMD", m),
        };
        write!(f, "{kind}: {msg}")
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;
