//! Who created a node, as its data says: every node switchman (and the Perl original) creates
//! holds `"{fqdn} {pid}"` (docs/layout.md). Data in any other shape is someone
//! else's doing; it is shown as it is, never treated as an error.

use std::fmt;

use zookeeper_client::Stat;

use crate::error::Result;
use crate::timestamp;
use crate::zk::Session;

/// The data of a node, read as `"{fqdn} {pid}"` where it has that shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Host {
        fqdn: String,
        pid: u32,
    },
    /// Anything else, as text (bytes that are not UTF-8 replaced).
    Raw(String),
}

impl Owner {
    pub fn parse(data: &[u8]) -> Owner {
        let text = String::from_utf8_lossy(data);
        let parsed = text.split_once(' ').and_then(|(fqdn, pid)| {
            let plain = |s: &str| !s.is_empty() && !s.chars().any(|c| c.is_whitespace());
            let digits = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
            (plain(fqdn) && !fqdn.chars().any(char::is_control) && digits)
                .then(|| pid.parse().ok())
                .flatten()
                .map(|pid| Owner::Host {
                    fqdn: fqdn.to_string(),
                    pid,
                })
        });
        parsed.unwrap_or_else(|| Owner::Raw(text.into_owned()))
    }

    pub fn host(&self) -> Option<&str> {
        match self {
            Owner::Host { fqdn, .. } => Some(fqdn),
            Owner::Raw(_) => None,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        match self {
            Owner::Host { pid, .. } => Some(*pid),
            Owner::Raw(_) => None,
        }
    }

    /// The data as stored, when it is not `"{fqdn} {pid}"`.
    pub fn raw(&self) -> Option<&str> {
        match self {
            Owner::Host { .. } => None,
            Owner::Raw(raw) => Some(raw),
        }
    }
}

impl fmt::Display for Owner {
    /// `web1.example pid 4242`, or the raw data quoted (escaped, so that a log line stays one
    /// line whatever the node holds).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Host { fqdn, pid } => write!(f, "{fqdn} pid {pid}"),
            Owner::Raw(raw) => write!(f, "{raw:?}"),
        }
    }
}

/// The holder of a lock (or of a queue item): its owner, when it was created, and its fencing
/// token (creation zxid).
#[derive(Debug, Clone)]
pub struct Holder {
    pub owner: Owner,
    /// Creation time on the servers' clock, ms since the epoch.
    pub ctime: i64,
    pub czxid: i64,
}

impl Holder {
    pub fn new(data: &[u8], stat: &Stat) -> Holder {
        Holder {
            owner: Owner::parse(data),
            ctime: stat.ctime,
            czxid: stat.czxid,
        }
    }

    /// The holder of the node at `path`; `None` if there is no node.
    pub async fn read(session: &Session, path: &str) -> Result<Option<Holder>> {
        Ok(session
            .data(path)
            .await?
            .map(|(data, stat)| Holder::new(&data, &stat)))
    }

    /// `web1.example pid 4242 since 03:00:00Z`: for the log line of a skipped run.
    pub fn describe(&self) -> String {
        format!(
            "{} since {}",
            self.owner,
            timestamp::since(self.ctime, timestamp::now_ms())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_parse_or_stay_raw() {
        assert_eq!(
            Owner::parse(b"web1.example 4242"),
            Owner::Host {
                fqdn: "web1.example".into(),
                pid: 4242
            }
        );
        for junk in [
            &b""[..],
            b"4242",
            b"web1 4242 x",
            b"web1  4242",
            b" 4242",
            b"web1 -1",
            b"web1 99999999999",
            b"web\x01 1",
            b"\xff\xfe 1x",
        ] {
            assert!(
                matches!(Owner::parse(junk), Owner::Raw(_)),
                "{:?}",
                String::from_utf8_lossy(junk)
            );
        }
        assert_eq!(Owner::parse(b"a\nb").to_string(), r#""a\nb""#);
    }
}
