//! Run records (docs/guide.md: "Run records"): `{prefix}/runs/{lock}`, a persistent node whose
//! JSON says how the job's last run went and when it last succeeded, on whichever host; and
//! beside it the job's history, `{prefix}/history/{lock}` (see [`history`]), its last runs with
//! their output. The record stays small, since `status` and `switchmanctl metrics` read every
//! job's; older switchman builds, which keep no history, read and write it alike.
//!
//! Every time in a record was stamped by the ZooKeeper servers: a run's start is the creation
//! time of its lock node, its end the modification time of the record it wrote. No host's clock
//! enters, so a host whose clock is off cannot make a job run twice within `--min-interval`.
//!
//! Both nodes are read in one request and written in one transaction, by a compare-and-set on
//! the versions read, so two runs that end at once never lose one another's run: the one that
//! loses the race reads again and adds its run to what the other wrote. The record's last run
//! is replaced only by a newer holder's (a larger fencing token), so a holder that lost its lock
//! without knowing it yet cannot overwrite what a newer holder wrote; its run still takes its
//! place in the history, in the order of the tokens.

use serde_json::{Map, Value, json};
use zookeeper_client::Stat;

use super::history::{self, History};
use crate::error::Result;
use crate::outcome::Outcome;
use crate::zk::{Put, Read, Session};

/// One run, as a record and a history keep it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub host: String,
    pub pid: u32,
    /// Its lock node's creation time: ms since the epoch on the servers' clock.
    pub start: i64,
    /// Its write time (ms, servers' clock); `None` before it is written.
    pub end: Option<i64>,
    /// switchman's exit code: CMD's own, 128+N when it died of signal N, 79 when it was
    /// stopped, 126 or 127 when it could not be started.
    pub exit_code: i32,
    /// Its lock node's creation zxid: the fencing token its CMD was given.
    pub token: i64,
    pub outcome: Outcome,
    /// The signal CMD died of, `SIGKILL` and the like.
    pub signal: Option<String>,
    /// The command line, with `--lockname-from-args` (whose lock name is a hash).
    pub command: Option<String>,
    /// What went wrong, for a run that was stopped or whose CMD could not be started.
    pub error: Option<String>,
    /// The tail of CMD's output, when it was captured (kept in the history only).
    pub output: Option<Output>,
}

/// The last bytes of CMD's output, stdout and stderr in the order their lines came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub tail: Vec<u8>,
    /// Bytes CMD wrote in all: more than the tail when the beginning was cut.
    pub bytes: u64,
}

impl Output {
    pub fn cut(&self) -> bool {
        self.bytes > self.tail.len() as u64
    }
}

impl Run {
    pub fn succeeded(&self) -> bool {
        self.outcome == Outcome::Succeeded
    }

    /// The run as JSON; its output only with `output`.
    pub(super) fn to_json(&self, output: bool) -> Map<String, Value> {
        let mut obj = Map::new();
        obj.insert("host".into(), json!(self.host));
        obj.insert("pid".into(), json!(self.pid));
        obj.insert("start".into(), json!(self.start));
        if let Some(end) = self.end {
            obj.insert("end".into(), json!(end));
        }
        obj.insert("exit_code".into(), json!(self.exit_code));
        obj.insert("token".into(), json!(self.token));
        obj.insert("outcome".into(), json!(self.outcome.label()));
        for (key, value) in [
            ("signal", &self.signal),
            ("command", &self.command),
            ("error", &self.error),
        ] {
            if let Some(v) = value {
                obj.insert(key.into(), json!(v));
            }
        }
        if let (true, Some(out)) = (output, &self.output) {
            history::output_to_json(out, &mut obj);
        }
        obj
    }

    /// A run from JSON, `end` given by the node's modification time where the JSON has none.
    /// Records written before outcomes were named have none: a run of theirs either exited 0
    /// or failed.
    pub(super) fn from_json(v: &Value, end: Option<i64>) -> Option<Run> {
        let exit_code = i32::try_from(v.get("exit_code")?.as_i64()?).ok()?;
        let text = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
        let outcome = match v.get("outcome").and_then(Value::as_str) {
            Some(label) => Outcome::parse(label)?,
            None if exit_code == 0 => Outcome::Succeeded,
            None => Outcome::Failed,
        };
        Some(Run {
            host: v.get("host")?.as_str()?.to_string(),
            pid: u32::try_from(v.get("pid")?.as_u64()?).ok()?,
            start: v.get("start")?.as_i64()?,
            end: v.get("end").and_then(Value::as_i64).or(end),
            exit_code,
            token: v.get("token")?.as_i64()?,
            outcome,
            signal: text("signal"),
            command: text("command"),
            error: text("error"),
            output: history::output_from_json(v),
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
        let mut last = Run::from_json(&value, None).ok_or_else(|| {
            "not a run record (host, pid, start, exit_code and token are needed)".to_string()
        })?;
        last.end = Some(stat.mtime);
        let last_success = if last.succeeded() {
            Some(last.clone())
        } else {
            value
                .get("last_success")
                .and_then(|v| Run::from_json(v, None))
        };
        Ok(Record { last, last_success })
    }

    /// The data that records `ours` as the last run after this record (or after none): a run
    /// that did not succeed carries the last success along, with its end, which is no longer
    /// the node's mtime. The output is the history's alone.
    pub fn after(previous: Option<&Record>, ours: &Run) -> Vec<u8> {
        let mut obj = Run {
            end: None,
            ..ours.clone()
        }
        .to_json(false);
        if !ours.succeeded()
            && let Some(success) = previous.and_then(|r| r.last_success.as_ref())
        {
            obj.insert("last_success".into(), Value::Object(success.to_json(false)));
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

/// What a read found at one node: nothing, or the node at `version` with its value or what is
/// wrong with it.
#[derive(Debug, Clone)]
pub enum Node<T> {
    Absent,
    Present {
        version: i32,
        value: std::result::Result<T, String>,
    },
}

impl<T> Node<T> {
    pub fn value(&self) -> Option<&T> {
        match self {
            Node::Present { value: Ok(v), .. } => Some(v),
            _ => None,
        }
    }

    fn version(&self) -> Option<i32> {
        match self {
            Node::Absent => None,
            Node::Present { version, .. } => Some(*version),
        }
    }

    fn read(
        found: Option<(Vec<u8>, Stat)>,
        parse: impl Fn(&[u8], &Stat) -> std::result::Result<T, String>,
    ) -> Node<T> {
        match found {
            None => Node::Absent,
            Some((data, stat)) => Node::Present {
                version: stat.version,
                value: parse(&data, &stat),
            },
        }
    }
}

/// A job's two nodes: its record and its history.
#[derive(Debug, Clone, Copy)]
pub struct Paths<'a> {
    pub record: &'a str,
    pub history: &'a str,
}

/// What a read of a job's record and history found.
#[derive(Debug, Clone)]
pub struct Found {
    pub record: Node<Record>,
    pub history: Node<History>,
}

impl Found {
    pub fn record(&self) -> Option<&Record> {
        self.record.value()
    }
}

/// Reads the job's record and history, in one request.
pub async fn read(session: &Session, paths: Paths<'_>) -> Result<Found> {
    let mut found = session
        .read_all(&[Read::Data(paths.record), Read::Data(paths.history)])
        .await?
        .into_iter()
        .map(crate::zk::Found::data);
    Ok(Found {
        record: Node::read(found.next().flatten(), Record::parse),
        history: Node::read(found.next().flatten(), History::parse),
    })
}

/// How a write ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// In the record and the history.
    Yes,
    /// In the history only: the record holds this newer holder's run.
    HistoryOnly(Run),
    /// Nowhere: the record holds this newer holder's run, and the history as many runs newer
    /// than ours as it keeps.
    No(Run),
}

/// Records `ours` in the job's record and history, keeping `keep` runs in the history, over
/// `seen` (the read made when the run took the lock, if any). A compare-and-set of both nodes:
/// if either changed since it was read, both are read again. A node that does not parse is
/// replaced.
pub async fn write(
    session: &Session,
    paths: Paths<'_>,
    ours: &Run,
    keep: usize,
    seen: Option<Found>,
) -> Result<Written> {
    let mut seen = seen;
    loop {
        let found = match seen.take() {
            Some(found) => found,
            None => read(session, paths).await?,
        };
        // A write whose reply was lost and that happened after all: the token is ours alone.
        if found
            .history
            .value()
            .is_some_and(|h| h.runs.iter().any(|r| r.token == ours.token))
        {
            return Ok(Written::Yes);
        }
        let record = found.record();
        let newer = record
            .filter(|r| r.last.token >= ours.token)
            .map(|r| r.last.clone());
        let record_data = newer.is_none().then(|| Record::after(record, ours));
        let history_data = History::after(found.history.value(), ours, keep);
        let mut puts = Vec::new();
        if let Some(data) = &record_data {
            puts.push(Put {
                path: paths.record,
                data,
                version: found.record.version(),
            });
        }
        if let Some(data) = &history_data {
            puts.push(Put {
                path: paths.history,
                data,
                version: found.history.version(),
            });
        }
        let written = match (newer, history_data.is_some()) {
            (None, _) => Written::Yes,
            (Some(newer), true) => Written::HistoryOnly(newer),
            (Some(newer), false) => return Ok(Written::No(newer)),
        };
        if session.put_all(&puts).await? {
            return Ok(written);
        }
        tracing::debug!(
            "{} changed since it was read; reading it again",
            paths.record
        );
    }
}

#[cfg(test)]
mod tests;
