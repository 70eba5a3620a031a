//! The one rule by which every request the recipes and `switchmanctl` make is retried, and how
//! what the servers say maps to our exit codes. The requests themselves are the session's
//! methods in `reads.rs`, `writes.rs` and `watches.rs`.
//!
//! **The retry rule.** A request that fails with its connection (lost, reset, or no reply in
//! time) is not a failure of the run: the client library reconnects with the same session, and
//! the session, with every node of ours, lives on until the servers have not heard from us for
//! the session timeout. So such a request is made again, after a short pause, until
//! [`Liveness::retry_until`](super::liveness::Liveness::retry_until), a session timeout after a
//! server last answered us; only then does the run give up, as "ZooKeeper unavailable" (exit 69; once CMD runs, the supervisor stops it first, exit
//! 79). A request that cannot simply be repeated is made safe to repeat: a create whose reply
//! was lost may have happened, so we look for the node our session owns before creating again.
//!
//! Everything else the servers say (no node, node exists, bad version) is an answer, returned
//! to the caller as a value; only errors nobody planned for become exit 70.

use std::future::Future;

use zookeeper_client::EventType;

use super::clock::now;
use super::session::Session;
use crate::error::Error;

pub(super) type ZkResult<T> = std::result::Result<T, zookeeper_client::Error>;

/// Whether `e` is about the connection rather than the request: the library fails requests in
/// flight with `ConnectionLoss`, `Timeout`, or a message of its own ("no response from
/// connection in 800ms", an I/O error) when it drops a connection to reconnect.
pub(super) fn is_transient(e: &zookeeper_client::Error) -> bool {
    matches!(
        e,
        zookeeper_client::Error::ConnectionLoss
            | zookeeper_client::Error::Timeout
            | zookeeper_client::Error::Custom(_)
    )
}

/// Maps a ZooKeeper error met while reading or writing `path` to our exit codes.
pub fn zk_error(op: &str, path: &str, err: zookeeper_client::Error) -> Error {
    match err {
        e if is_transient(&e) => Error::Unavailable(format!(
            "{op} {path}: {e}; no answer from ZooKeeper within the session timeout"
        )),
        zookeeper_client::Error::SessionExpired | zookeeper_client::Error::ClientClosed => {
            Error::Unavailable(format!(
                "{op} {path}: {err}; ZooKeeper went away during the run"
            ))
        }
        zookeeper_client::Error::NoAuth => {
            Error::NoPerm(format!("{op} {path}: the znode's ACL does not allow it"))
        }
        zookeeper_client::Error::AuthFailed => {
            Error::NoPerm(format!("{op} {path}: ZooKeeper refused our authentication"))
        }
        // Anything else we did not plan for is internal (70), with the operation and znode.
        other => Error::Internal(format!("{op} {path}: {other}")),
    }
}

impl Session {
    /// [`zk_error`], with who we are for a refusal, and the config for an ACL the servers
    /// refuse to set.
    pub(super) fn zk_error(&self, op: &str, path: &str, err: zookeeper_client::Error) -> Error {
        match err {
            // The session's authentication, not the node's ACL: a session without credentials
            // learns only here that the ensemble enforces authentication.
            zookeeper_client::Error::AuthFailed => {
                Error::NoPerm(format!("{op} {path}: {}", self.refused))
            }
            zookeeper_client::Error::NoAuth => Error::NoPerm(format!(
                "{op} {path}: denied to {} by the ACL of the znode (or, to create or \
                     delete, of its parent); check the user and password, or give that identity \
                     access (docs/security.md)",
                self.identity
            )),
            zookeeper_client::Error::InvalidAcl => Error::Config(format!(
                "{op} {path}: ZooKeeper refuses the ACL made from \"acl\" and \"acl_extra\" in {}",
                self.config_path.display()
            )),
            e => zk_error(op, path, e),
        }
    }

    /// The retry rule: `attempt` again while it fails with its connection and the session may
    /// still be alive. Its last error is returned as is (the caller maps it with [`zk_error`]).
    pub(super) async fn retry<T, Fut>(&self, mut attempt: impl FnMut() -> Fut) -> ZkResult<T>
    where
        Fut: Future<Output = ZkResult<T>>,
    {
        loop {
            match attempt().await {
                Err(e) if is_transient(&e) && now() < self.liveness().retry_until() => {
                    tracing::debug!("{e}; trying again on the same session");
                    tokio::time::sleep(self.liveness().retry_pause()).await;
                }
                Err(e) if is_transient(&e) => return Err(e),
                answered => {
                    self.liveness().heard(now());
                    return answered;
                }
            }
        }
    }
}

/// A folder that does not exist has no children.
pub(super) fn empty_if_absent(listed: ZkResult<Vec<String>>) -> ZkResult<Vec<String>> {
    match listed {
        Err(zookeeper_client::Error::NoNode) => Ok(Vec::new()),
        other => other,
    }
}

/// Whether a watch event says the session is over (the node's fate no longer matters).
pub fn session_ended(event: &zookeeper_client::WatchedEvent) -> bool {
    event.event_type == EventType::Session && event.session_state.is_terminated()
}
