//! `--group`: run only on hosts the prefix znode's `groups` lists, and stop CMD when this host
//! leaves the group while CMD runs (docs/guide.md: "Groups").
//!
//! The group lists live in ZooKeeper so that moving a job is one edit there, needing no access
//! to the hosts. The watch on the prefix node keeps that edit live: no polling.

use zookeeper_client::OneshotWatcher;

use crate::error::Result;
use crate::prefix_data::PrefixData;
use crate::zk::Session;
use crate::zk::session_ended;

/// Reads the prefix znode's data; absent data means no groups and no resources. With `watch`,
/// also returns a watch on the node, for [`Membership`]. The data is returned unparsed, so that
/// a caller can keep the watch even when the data is bad.
pub async fn fetch_prefix(
    session: &Session,
    prefix: &str,
    watch: bool,
) -> Result<(Vec<u8>, Option<OneshotWatcher>)> {
    if watch {
        let (data, watcher) = session.data_or_empty_watched(prefix).await?;
        Ok((data, Some(watcher)))
    } else {
        let data = session.data(prefix).await?.map(|(d, _)| d);
        Ok((data.unwrap_or_default(), None))
    }
}

/// Why a watched membership ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loss {
    /// The host is no longer in the group, or the group is gone.
    Left(String),
    /// The ZooKeeper session expired or was closed.
    SessionEnded(String),
}

impl Loss {
    pub fn reason(self) -> String {
        match self {
            Loss::Left(why) | Loss::SessionEnded(why) => why,
        }
    }
}

/// This host's membership of a group, watched.
pub struct Membership {
    pub group: String,
    pub host: String,
    prefix: String,
    watcher: OneshotWatcher,
}

impl Membership {
    /// `Ok(None)` if `host` is not in `group` (skip the run); an undefined group is a config
    /// error naming the znode.
    pub fn check(
        data: &PrefixData,
        watcher: OneshotWatcher,
        prefix: &str,
        group: &str,
        host: &str,
    ) -> Result<Option<Membership>> {
        let member = data
            .contains(group, host)
            .map_err(|e| in_znode(e, prefix))?;
        Ok(member.then(|| Membership {
            group: group.to_string(),
            host: host.to_string(),
            prefix: prefix.to_string(),
            watcher,
        }))
    }

    /// Resolves when this host is no longer in the group, or the session ended; a change that
    /// keeps the host does nothing. Data that does not parse is logged loudly and otherwise
    /// ignored: a typo in the prefix znode must not kill every running job, so the last good
    /// view stands until the data is fixed.
    pub async fn watch(self, session: &Session) -> Loss {
        let Membership {
            group,
            host,
            prefix,
            mut watcher,
        } = self;
        loop {
            let event = watcher.changed().await;
            if session_ended(&event) {
                return Loss::SessionEnded(format!(
                    "the ZooKeeper session ended ({})",
                    event.session_state
                ));
            }
            let data;
            (data, watcher) = match session.data_or_empty_watched(&prefix).await {
                Ok(read) => read,
                // The access layer retried within the session's lifetime; past it, the
                // session itself is lost, which the supervisor learns of on its own.
                Err(e) => return Loss::SessionEnded(e.to_string()),
            };
            match PrefixData::parse(&prefix, &data).map(|d| d.contains(&group, &host)) {
                Ok(Ok(true)) => {
                    tracing::debug!("prefix data changed; {host} is still in group {group}")
                }
                Ok(Ok(false)) => {
                    return Loss::Left(format!(
                        "host {host} was removed from group {group} in {prefix}"
                    ));
                }
                Ok(Err(_)) => {
                    return Loss::Left(format!("group {group} was removed from {prefix}"));
                }
                Err(e) => tracing::error!(
                    "ignoring the new data of {prefix}, keeping the last good groups: {e}"
                ),
            }
        }
    }
}

fn in_znode(e: crate::error::Error, prefix: &str) -> crate::error::Error {
    match e {
        crate::error::Error::Config(m) => crate::error::Error::Config(format!("{m} ({prefix})")),
        other => other,
    }
}
