//! A job's run history (docs/guide.md: "Output and history"): `{prefix}/history/{lock}`, a
//! persistent node whose JSON holds the job's last runs on any host, oldest first, in the order
//! of their fencing tokens, each with the tail of its output when that was captured:
//!
//! ```json
//! {"runs":[{"host":"web1.example","pid":5253,"start":1795672304881,"end":1795672304888,
//!   "exit_code":1,"token":18,"outcome":"failed","output":"disk full\n","output_bytes":10}]}
//! ```
//!
//! It is written in the transaction that writes the job's record ([`super::runs::write`]).
//! A run's end is the time of the write that added it, stamped by the servers: known only once
//! written, so the run added last has no `end` and takes the node's modification time, and the
//! next write fills it in.

use base64::Engine;
use serde_json::{Map, Value, json};
use zookeeper_client::Stat;

use super::runs::{Output, Run};

/// The most bytes a history's JSON may take: the config keeps it well below this
/// (`history` × `output_tail`), and a history written with another config is held to it by
/// leaving out the output of its oldest runs first. ZooKeeper refuses nodes of 1 MB.
pub const MOST_BYTES: usize = 512 * 1024;

/// A job's last runs, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct History {
    pub runs: Vec<Run>,
}

impl History {
    /// The data of a history node whose stat is `stat`. A run that does not parse is left out;
    /// data that is not a history at all is an error saying what is wrong with it.
    pub fn parse(data: &[u8], stat: &Stat) -> std::result::Result<History, String> {
        let value: Value = serde_json::from_slice(data).map_err(|e| format!("not JSON: {e}"))?;
        let runs = value
            .get("runs")
            .and_then(Value::as_array)
            .ok_or("not a run history (a \"runs\" list is needed)")?;
        Ok(History {
            runs: runs
                .iter()
                .filter_map(|r| Run::from_json(r, Some(stat.mtime)))
                .collect(),
        })
    }

    /// The data of the history after `previous` (or none) with `ours` added in the order of
    /// the tokens and only the last `keep` runs kept; `None` if ours is older than all of them.
    pub fn after(previous: Option<&History>, ours: &Run, keep: usize) -> Option<Vec<u8>> {
        let mut runs = previous.map(|h| h.runs.clone()).unwrap_or_default();
        let at = runs.partition_point(|r| r.token < ours.token);
        runs.insert(
            at,
            Run {
                end: None,
                ..ours.clone()
            },
        );
        let dropped = runs.len().saturating_sub(keep.max(1));
        if at < dropped {
            return None;
        }
        runs.drain(..dropped);
        Some(History { runs }.render(MOST_BYTES))
    }

    /// The JSON, within `most` bytes: the output of the oldest runs goes first, then (no output
    /// left to leave out) the oldest runs themselves, never the newest.
    pub(super) fn render(mut self, most: usize) -> Vec<u8> {
        loop {
            let runs: Vec<Value> = self
                .runs
                .iter()
                .map(|r| Value::Object(r.to_json(true)))
                .collect();
            let data = json!({ "runs": runs }).to_string().into_bytes();
            if data.len() <= most || self.runs.len() <= 1 {
                return data;
            }
            match self.runs.iter_mut().find(|r| r.output.is_some()) {
                Some(run) => run.output = None,
                None => {
                    self.runs.remove(0);
                }
            }
        }
    }
}

/// Adds `output` to a run's JSON: `output` as text if it is UTF-8 that JSON carries about as
/// compactly (a binary tail would be six bytes a byte in `\u` escapes), else `output_base64`;
/// `output_bytes` says how much CMD wrote in all, and `output_cut` that the beginning was cut.
pub fn output_to_json(output: &Output, obj: &mut Map<String, Value>) {
    let base64 = base64::engine::general_purpose::STANDARD;
    match std::str::from_utf8(&output.tail) {
        Ok(text) if json!(text).to_string().len() <= output.tail.len().div_ceil(3) * 4 + 2 => {
            obj.insert("output".into(), json!(text));
        }
        _ => {
            obj.insert("output_base64".into(), json!(base64.encode(&output.tail)));
        }
    }
    obj.insert("output_bytes".into(), json!(output.bytes));
    if output.cut() {
        obj.insert("output_cut".into(), json!(true));
    }
}

/// The output a run's JSON carries, if any (see [`output_to_json`]).
pub fn output_from_json(v: &Value) -> Option<Output> {
    let tail = match (v.get("output"), v.get("output_base64")) {
        (Some(Value::String(text)), _) => text.clone().into_bytes(),
        (_, Some(Value::String(coded))) => base64::engine::general_purpose::STANDARD
            .decode(coded)
            .ok()?,
        _ => return None,
    };
    let bytes = v
        .get("output_bytes")
        .and_then(Value::as_u64)
        .unwrap_or(tail.len() as u64)
        .max(tail.len() as u64);
    Some(Output { tail, bytes })
}
