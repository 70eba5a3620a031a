//! What a server wrote: its transaction log, read with ZooKeeper's own `TxnLogToolkit`, so that
//! a test can replay, transaction by transaction, which session made and removed which node
//! under a prefix, every short-lived node included (a watcher of ours could miss one).

use std::path::Path;
use std::process::Command;

use super::ensemble::ZOOKEEPER_JAR;

/// One transaction that changed nodes under the prefix asked for.
#[derive(Debug)]
pub struct Txn {
    pub session: i64,
    pub zxid: i64,
    /// In the transaction's order; a `multi` that failed changed nothing and has none.
    pub ops: Vec<TxnOp>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum TxnOp {
    Create(String),
    Delete(String),
}

/// The transactions of the server whose data directory is `data_dir` that touched nodes under
/// `prefix`, oldest first.
pub fn transactions(data_dir: &Path, prefix: &str) -> Vec<Txn> {
    let dir = data_dir.join("version-2");
    let mut logs: Vec<(i64, std::path::PathBuf)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let name = path.file_name()?.to_str()?;
            let zxid = i64::from_str_radix(name.strip_prefix("log.")?, 16).ok()?;
            Some((zxid, path))
        })
        .collect();
    logs.sort();
    let mut txns = Vec::new();
    for (_, log) in logs {
        let out = Command::new("java")
            .args(["-cp", ZOOKEEPER_JAR])
            .arg("org.apache.zookeeper.server.persistence.TxnLogToolkit")
            .arg("-d")
            .arg(&log)
            .output()
            .expect("run TxnLogToolkit");
        assert!(out.status.success(), "TxnLogToolkit {}", log.display());
        let text = String::from_utf8_lossy(&out.stdout);
        txns.extend(
            text.split(" session 0x")
                .skip(1)
                .filter_map(|e| parse(e, prefix)),
        );
    }
    txns
}

/// One dumped entry after `" session 0x"`: `SESSION cxid 0x.. zxid 0xZXID TYPE REST`, where a
/// `multi`'s REST lists its operations separated by `;` (each path between binary lengths), and a
/// `closeSession`'s the ephemeral nodes it removed.
fn parse(entry: &str, prefix: &str) -> Option<Txn> {
    let hex = |s: &str| i64::from_str_radix(s, 16).ok();
    let (session, rest) = entry.split_once(' ')?;
    let (_, rest) = rest.split_once(" zxid 0x")?;
    let (zxid, rest) = rest.split_once(' ')?;
    let (kind, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let under = format!("{prefix}/");
    let path_in = |text: &str| {
        let at = text.find(&under)?;
        let end = text[at..]
            .find(|c: char| c.is_whitespace() || c.is_control() || matches!(c, ',' | ';' | '}'))
            .map_or(text.len(), |n| at + n);
        Some(text[at..end].to_string())
    };
    let ops = match kind {
        "multi" if rest.contains("error:") => Vec::new(),
        "multi" => rest
            .split(';')
            .filter_map(|op| {
                let op = op.trim_start();
                if op.starts_with("create:") {
                    path_in(op).map(TxnOp::Create)
                } else if op.starts_with("delete:") {
                    path_in(op).map(TxnOp::Delete)
                } else {
                    None
                }
            })
            .collect(),
        "create" | "create2" | "createContainer" | "createTTL" => {
            path_in(rest).map(TxnOp::Create).into_iter().collect()
        }
        "delete" | "deleteContainer" => path_in(rest).map(TxnOp::Delete).into_iter().collect(),
        "closeSession" => rest
            .split(',')
            .filter_map(|p| path_in(p).map(TxnOp::Delete))
            .collect(),
        _ => Vec::new(),
    };
    if ops.is_empty() {
        return None;
    }
    Some(Txn {
        session: hex(session)?,
        zxid: hex(zxid)?,
        ops,
    })
}
