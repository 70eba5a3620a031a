//! Run records (docs/guide.md: "Run records"): `{prefix}/runs/{lock}`, a persistent node whose JSON
//! says how the job's last run went and when it last succeeded, on whichever host.
//!
//! Every time in a record was stamped by the ZooKeeper servers: a run's start is the creation
//! time of its lock node, its end the modification time of the record it wrote. No host's clock
//! enters, so a host whose clock is off cannot make a job run twice within `--min-interval`.
//!
//! A record is written while the lock is held, by a compare-and-set on the version read, and
//! only over the record of an older holder (a smaller fencing token). So a holder that lost its
//! lock without knowing it yet cannot overwrite what a newer holder wrote.

use serde_json::{Map, Value, json};
use zookeeper_client::Stat;

use crate::error::Result;
use crate::zk::Session;

/// One run, as a record keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub host: String,
    pub pid: u32,
    /// Its lock node's creation time: ms since the epoch on the servers' clock.
    pub start: i64,
    /// Its record's write time (ms, servers' clock); `None` before it is written.
    pub end: Option<i64>,
    pub exit_code: i32,
    /// Its lock node's creation zxid: the fencing token its CMD was given.
    pub token: i64,
}

impl Run {
    pub fn succeeded(&self) -> bool {
        self.exit_code == 0
    }

    fn to_json(&self) -> Map<String, Value> {
        let mut obj = Map::new();
        obj.insert("host".into(), json!(self.host));
        obj.insert("pid".into(), json!(self.pid));
        obj.insert("start".into(), json!(self.start));
        if let Some(end) = self.end {
            obj.insert("end".into(), json!(end));
        }
        obj.insert("exit_code".into(), json!(self.exit_code));
        obj.insert("token".into(), json!(self.token));
        obj
    }

    fn from_json(v: &Value, end: Option<i64>) -> Option<Run> {
        Some(Run {
            host: v.get("host")?.as_str()?.to_string(),
            pid: u32::try_from(v.get("pid")?.as_u64()?).ok()?,
            start: v.get("start")?.as_i64()?,
            end: end.or_else(|| v.get("end").and_then(Value::as_i64)),
            exit_code: i32::try_from(v.get("exit_code")?.as_i64()?).ok()?,
            token: v.get("token")?.as_i64()?,
        })
    }
}

/// A record as read: the last run (its end is the node's modification time) and the last
/// successful run, which is the last run itself when that one succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub last: Run,
    pub last_success: Option<Run>,
}

impl Record {
    /// The data of a record node, whose stat is `stat`. An error says what is wrong with it.
    pub fn parse(data: &[u8], stat: &Stat) -> std::result::Result<Record, String> {
        let value: Value = serde_json::from_slice(data).map_err(|e| format!("not JSON: {e}"))?;
        let last = Run::from_json(&value, Some(stat.mtime)).ok_or_else(|| {
            "not a run record (host, pid, start, exit_code and token are needed)".to_string()
        })?;
        let last_success = if last.succeeded() {
            Some(last.clone())
        } else {
            value
                .get("last_success")
                .and_then(|v| Run::from_json(v, None))
        };
        Ok(Record { last, last_success })
    }

    /// The data that records `ours` as the last run after this record (or after none): a failed
    /// run carries the last success along, with its end, which is no longer the node's mtime.
    pub fn after(previous: Option<&Record>, ours: &Run) -> Vec<u8> {
        let mut obj = Run {
            end: None,
            ..ours.clone()
        }
        .to_json();
        if !ours.succeeded()
            && let Some(success) = previous.and_then(|r| r.last_success.as_ref())
        {
            obj.insert("last_success".into(), Value::Object(success.to_json()));
        }
        Value::Object(obj).to_string().into_bytes()
    }

    /// How long before `ctime` (our lock node's creation) the last successful run started, in
    /// ms, and that run. Negative when the servers' clocks disagree across a leader change.
    pub fn since_success(&self, ctime: i64) -> Option<(i64, &Run)> {
        self.last_success
            .as_ref()
            .map(|run| (ctime - run.start, run))
    }
}

/// What a read of the record's node found.
#[derive(Debug, Clone)]
pub enum Found {
    Absent,
    /// The node at `version`; its data, or what is wrong with it.
    Present {
        version: i32,
        record: std::result::Result<Record, String>,
    },
}

impl Found {
    pub fn record(&self) -> Option<&Record> {
        match self {
            Found::Present {
                record: Ok(record), ..
            } => Some(record),
            _ => None,
        }
    }
}

/// Reads the record at `path`.
pub async fn read(session: &Session, path: &str) -> Result<Found> {
    Ok(match session.data(path).await? {
        None => Found::Absent,
        Some((data, stat)) => Found::Present {
            version: stat.version,
            record: Record::parse(&data, &stat),
        },
    })
}

/// How a write ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    Yes,
    /// Not written: the record holds a run with a fencing token at least ours.
    Newer(Run),
}

/// Records `ours` at `path`, over `seen` (the read made when the run took the lock, if any).
/// A compare-and-set: if the node changed since it was read, it is read again, and written only
/// if what it now holds is an older holder's run. A record that does not parse is replaced.
pub async fn write(
    session: &Session,
    path: &str,
    ours: &Run,
    seen: Option<Found>,
) -> Result<Written> {
    let mut seen = seen;
    loop {
        let found = match seen.take() {
            Some(found) => found,
            None => read(session, path).await?,
        };
        let record = found.record();
        if let Some(r) = record
            && r.last.token >= ours.token
        {
            return Ok(Written::Newer(r.last.clone()));
        }
        let data = Record::after(record, ours);
        let written = match &found {
            Found::Absent => session.create_persistent(path, &data).await?.is_some(),
            Found::Present { version, .. } => {
                session.set_data(path, &data, *version).await?.is_some()
            }
        };
        if written {
            return Ok(Written::Yes);
        }
        tracing::debug!("{path} changed since it was read; reading it again");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(mtime: i64) -> Stat {
        Stat {
            czxid: 1,
            mzxid: 2,
            pzxid: 1,
            ctime: 0,
            mtime,
            version: 3,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: 0,
            data_length: 0,
            num_children: 0,
        }
    }

    fn run(host: &str, start: i64, exit_code: i32, token: i64) -> Run {
        Run {
            host: host.into(),
            pid: 7,
            start,
            end: None,
            exit_code,
            token,
        }
    }

    /// Writes `ours` after `previous`, then reads it back as if the write happened at `at`.
    fn round_trip(previous: Option<&Record>, ours: &Run, at: i64) -> Record {
        Record::parse(&Record::after(previous, ours), &stat(at)).unwrap()
    }

    #[test]
    fn a_failure_carries_the_last_success_along() {
        let first = round_trip(None, &run("web1", 1000, 0, 10), 2000);
        assert_eq!(first.last.end, Some(2000), "the end is the write's mtime");
        assert_eq!(first.last_success, Some(first.last.clone()));

        let failed = round_trip(Some(&first), &run("web2", 5000, 3, 20), 6000);
        assert_eq!(failed.last.exit_code, 3);
        let success = failed.last_success.clone().unwrap();
        assert_eq!((success.host.as_str(), success.end), ("web1", Some(2000)));

        let again = round_trip(Some(&failed), &run("web3", 7000, 1, 30), 8000);
        assert_eq!(again.last_success, failed.last_success, "still the first");
        let ok = round_trip(Some(&again), &run("web2", 9000, 0, 40), 9500);
        assert_eq!(ok.last_success.unwrap().start, 9000);

        let never = round_trip(None, &run("web1", 1000, 1, 10), 2000);
        assert_eq!(never.last_success, None);
        assert_eq!(never.since_success(5000), None);
    }

    #[test]
    fn the_interval_is_measured_between_two_server_times() {
        let r = round_trip(None, &run("web1", 1_000_000, 0, 10), 1_500_000);
        assert_eq!(r.since_success(1_002_000).unwrap().0, 2000);
        assert_eq!(r.since_success(999_000).unwrap().0, -1000);
    }

    #[test]
    fn junk_is_reported_not_trusted() {
        for junk in [&b""[..], b"web1 42", b"{}", br#"{"host": "w", "pid": -1}"#] {
            assert!(Record::parse(junk, &stat(0)).is_err(), "{junk:?}");
        }
    }
}
