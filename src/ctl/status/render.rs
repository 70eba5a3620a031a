//! A pass's findings for people (aligned tables, times as ages) and for scripts (one JSON object
//! whose keys stay put: a field that does not apply is `null`, never missing).

use serde_json::{Map, Value, json};

use super::pass::{Filter, Snapshot};
use crate::recipes::holder::Holder;
use crate::recipes::runs::Run;
use crate::timestamp;

/// Raw node data longer than this is cut short in the tables (the JSON has all of it).
const RAW_SHOWN: usize = 40;

/// The tables, each section after a blank line; a section the filter leaves out is not shown.
pub fn people(s: &Snapshot, filter: &Filter) -> String {
    let now = s.read_at;
    let mut out = format!(
        "{} at {} (read in {} ms)\n",
        s.prefix,
        timestamp::rfc3339(now),
        s.took.as_millis()
    );
    let mut section = |empty: &str, header: &[&str], rows: Vec<Vec<String>>| {
        out.push('\n');
        if rows.is_empty() {
            out.push_str(empty);
            out.push('\n');
        } else {
            out.push_str(&table(header, rows));
        }
    };
    // What a hashed lock name (--lockname-from-args) stands for, as its run record says.
    let command = |name: &str| {
        s.runs
            .iter()
            .find(|r| r.name == name)
            .and_then(|r| r.record.last.command.clone())
    };
    let commands = s.runs.iter().any(|r| r.record.last.command.is_some());
    if filter.locks() {
        let rows = s.locks.iter().map(|l| {
            let mut row = vec![l.name.clone()];
            row.extend(holder_cells(&l.holder, now));
            row.push(l.holder.czxid.to_string());
            if commands {
                row.push(command(&l.name).unwrap_or_default());
            }
            row
        });
        let header = ["LOCK", "HOST", "PID", "AGE", "TOKEN", "COMMAND"];
        section(
            "no locks held",
            &header[..header.len() - usize::from(!commands)],
            rows.collect(),
        );
    }
    // Lines and run records appear only where --wait and records are used.
    if !s.lines.is_empty() {
        let rows = s.lines.iter().flat_map(|line| {
            line.waiters.iter().map(|w| {
                let mut row = vec![line.lock.clone(), w.position.to_string()];
                row.extend(holder_cells(&w.holder, now));
                row.push(or_dash(w.seq));
                row
            })
        });
        section(
            "",
            &["LINE", "#", "HOST", "PID", "AGE", "SEQ"],
            rows.collect(),
        );
    }
    let rows = s.queues.iter().flat_map(|q| {
        q.waiters.iter().map(|w| {
            let mut row = vec![q.resource.clone(), w.position.to_string()];
            row.push(w.task.clone().unwrap_or_else(|| format!("{:?}", w.node)));
            row.extend(holder_cells(&w.holder, now));
            row.push(or_dash(w.seq));
            row
        })
    });
    section(
        "no one is queued",
        &["QUEUE", "#", "TASK", "HOST", "PID", "AGE", "SEQ"],
        rows.collect(),
    );
    if filter.semaphores() {
        let rows = s.semaphores.iter().flat_map(|sem| {
            sem.leases.iter().map(|l| {
                let mut row = vec![
                    sem.resource.clone(),
                    sem.used.to_string(),
                    or_dash(sem.total),
                    l.count
                        .map_or_else(|| format!("{:?}", l.node), |c| c.to_string()),
                ];
                row.extend(holder_cells(&l.holder, now));
                row.push(or_dash(l.seq));
                row
            })
        });
        section(
            "no leases held",
            &[
                "SEMAPHORE",
                "USED",
                "TOTAL",
                "COUNT",
                "HOST",
                "PID",
                "AGE",
                "SEQ",
            ],
            rows.collect(),
        );
    }
    if !s.runs.is_empty() {
        let rows = s.runs.iter().map(|r| {
            let (last, success) = (&r.record.last, r.record.last_success.as_ref());
            let mut row = vec![
                r.name.clone(),
                last.outcome.to_string(),
                last.exit_code.to_string(),
                last.host.clone(),
                last.pid.to_string(),
                timestamp::age(last.start, now),
                last.token.to_string(),
                match success {
                    None => "never".to_string(),
                    Some(ok) if ok == last => "this run".to_string(),
                    Some(ok) => format!("{} ago on {}", timestamp::age(ok.start, now), ok.host),
                },
            ];
            if commands {
                row.push(last.command.clone().unwrap_or_default());
            }
            row
        });
        let header = [
            "RUN",
            "OUTCOME",
            "EXIT",
            "HOST",
            "PID",
            "AGE",
            "TOKEN",
            "LAST SUCCESS",
            "COMMAND",
        ];
        section(
            "",
            &header[..header.len() - usize::from(!commands)],
            rows.collect(),
        );
    }
    if let Some(groups) = &s.groups {
        let rows = groups.iter().map(|(g, hosts)| {
            vec![
                g.clone(),
                hosts.iter().cloned().collect::<Vec<_>>().join(" "),
            ]
        });
        section("no groups", &["GROUP", "HOSTS"], rows.collect());
    }
    if !s.warnings.is_empty() {
        out.push('\n');
        for w in &s.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
    }
    out
}

/// HOST, PID and AGE; node data that is not `"{fqdn} {pid}"` goes, quoted, under HOST.
fn holder_cells(h: &Holder, now: i64) -> [String; 3] {
    let host = match h.owner.host() {
        Some(host) => host.to_string(),
        None => {
            let raw = h.owner.raw().unwrap_or_default();
            let mut shown: String = raw.chars().take(RAW_SHOWN).collect();
            if shown.len() < raw.len() {
                shown.push_str("...");
            }
            format!("{shown:?}")
        }
    };
    [host, or_dash(h.owner.pid()), timestamp::age(h.ctime, now)]
}

fn or_dash(v: Option<impl ToString>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// Left-aligned columns two spaces apart, no trailing blanks.
pub(in crate::ctl) fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut widths = vec![0; header.len()];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `host`, `pid`, `since` (and `data`, the node's data as stored when it is not
/// `"{fqdn} {pid}"`, else `null`).
fn holder_json(h: &Holder, fields: Value) -> Value {
    let mut obj = match fields {
        Value::Object(obj) => obj,
        _ => Map::new(),
    };
    obj.insert("host".into(), json!(h.owner.host()));
    obj.insert("pid".into(), json!(h.owner.pid()));
    obj.insert("since".into(), json!(timestamp::rfc3339(h.ctime)));
    obj.insert("data".into(), json!(h.owner.raw()));
    Value::Object(obj)
}

/// A run of a record: times as the servers stamped them (RFC 3339, UTC).
fn run_json(run: &Run) -> Value {
    json!({
        "host": run.host,
        "pid": run.pid,
        "start": timestamp::rfc3339(run.start),
        "end": run.end.map(timestamp::rfc3339),
        "exit_code": run.exit_code,
        "token": run.token,
        "outcome": run.outcome.label(),
        "signal": run.signal,
        "command": run.command,
    })
}

/// One object for scripts. `groups` is `null` when a filter leaves the groups out.
pub fn json(s: &Snapshot) -> Value {
    let locks: Vec<Value> = s
        .locks
        .iter()
        .map(|l| holder_json(&l.holder, json!({"name": l.name, "token": l.holder.czxid})))
        .collect();
    let queues: Vec<Value> = s
        .queues
        .iter()
        .map(|q| {
            let waiters: Vec<Value> = q
                .waiters
                .iter()
                .map(|w| holder_json(&w.holder, json!({"task": w.task, "seq": w.seq, "position": w.position, "node": w.node})))
                .collect();
            json!({"resource": q.resource, "waiters": waiters})
        })
        .collect();
    let semaphores: Vec<Value> = s
        .semaphores
        .iter()
        .map(|sem| {
            let leases: Vec<Value> = sem
                .leases
                .iter()
                .map(|l| holder_json(&l.holder, json!({"count": l.count, "seq": l.seq, "node": l.node})))
                .collect();
            json!({"resource": sem.resource, "total": sem.total, "used": sem.used, "leases": leases})
        })
        .collect();
    let lines: Vec<Value> = s
        .lines
        .iter()
        .map(|line| {
            let waiters: Vec<Value> = line
                .waiters
                .iter()
                .map(|w| {
                    holder_json(
                        &w.holder,
                        json!({"seq": w.seq, "position": w.position, "node": w.node}),
                    )
                })
                .collect();
            json!({"lock": line.lock, "waiters": waiters})
        })
        .collect();
    let runs: Vec<Value> = s
        .runs
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "last_run": run_json(&r.record.last),
                "last_success": r.record.last_success.as_ref().map(run_json),
            })
        })
        .collect();
    json!({
        "prefix": s.prefix,
        "locks": locks,
        "lock_waiters": lines,
        "queues": queues,
        "semaphores": semaphores,
        "runs": runs,
        "groups": s.groups,
        "warnings": s.warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_trim() {
        let t = table(
            &["A", "LONGER", "C"],
            vec![vec!["xyz".into(), "1".into(), "".into()]],
        );
        assert_eq!(t, "A    LONGER  C\nxyz  1\n");
    }
}
