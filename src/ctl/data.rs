//! `get-data` and `set-data`: the prefix data read with its version and written back with a
//! compare-and-set on it, so that two operators editing at once cannot lose each other's change.

use std::path::Path;

use super::{
    Ctl, Failure, Outcome, PROBLEMS, display_name, load_config, parse_file, print, read_input,
};
use crate::config::Config;
use crate::prefix_data::PrefixData;
use crate::zk::Session;

/// The prefix node's data and version; `None` if the node does not exist.
async fn read_versioned(
    session: &Session,
    prefix: &str,
) -> std::result::Result<Option<(Vec<u8>, i32)>, Failure> {
    Ok(session
        .data(prefix)
        .await?
        .map(|(data, stat)| (data, stat.version)))
}

pub(super) async fn get_data(ctl: &Ctl, json: bool) -> Outcome {
    let config = load_config(ctl)?;
    let session = Session::connect(&config.zk()).await?;
    let read = read_versioned(&session, &config.prefix).await;
    session.close().await;
    let (data, version) = read?.unwrap_or((Vec::new(), -1));
    if json {
        print(envelope(&config.prefix, &data, version))?;
    } else {
        print(&data)?;
        eprintln!("{version}");
    }
    Ok(0)
}

/// `{"version": N, "data": DATA}`, DATA as stored (its keys in their order, its formatting) so
/// that what a script writes back differs only by its edit. Empty or absent data is `{}`, as
/// switchman reads it; data that is not JSON at all (the Perl original writes `"{fqdn} {pid}"`
/// into a prefix it creates) is `null`, with the text as `raw` and a warning.
fn envelope(prefix: &str, data: &[u8], version: i32) -> String {
    let text = String::from_utf8_lossy(data);
    if text.trim().is_empty() {
        return format!("{{\"version\": {version}, \"data\": {{}}}}\n");
    }
    if serde_json::from_str::<serde_json::Value>(&text).is_ok() {
        return format!(
            "{{\"version\": {version}, \"data\": {}}}\n",
            text.trim_end()
        );
    }
    eprintln!("switchmanctl: warning: the data of {prefix} is not JSON; it is given as \"raw\"");
    let raw = serde_json::Value::from(text.as_ref());
    format!("{{\"version\": {version}, \"data\": null, \"raw\": {raw}}}\n")
}

pub(super) async fn set_data(ctl: &Ctl, file: &Path, if_version: Option<i32>) -> Outcome {
    let config = load_config(ctl)?;
    let bytes = read_input(file)?;
    let new = validate(&config, &display_name(file), &bytes)?;
    let session = Session::connect(&config.zk()).await?;
    let result = write_prefix(&session, &config, &bytes, &new, if_version).await;
    session.close().await;
    result
}

/// Refuses data that would make runs fail: what switchman cannot parse, and what the original
/// Perl switchman, still running on some hosts, would read cut short at its `data_read_len`.
fn validate(config: &Config, name: &str, bytes: &[u8]) -> std::result::Result<PrefixData, Failure> {
    let data = parse_file(name, bytes).map_err(|f| Failure {
        message: format!("{}; nothing was written", f.message),
        ..f
    })?;
    if bytes.len() > config.data_read_len {
        return Err(Failure {
            code: crate::exit::CONFIG.value,
            message: format!(
                "{name} is {} bytes, more than data_read_len ({}) in {}: the original switchman \
                 would read it cut short and fail; shorten it or raise data_read_len on every \
                 host; nothing was written",
                bytes.len(),
                config.data_read_len,
                config.path.display()
            ),
        });
    }
    Ok(data)
}

async fn write_prefix(
    session: &Session,
    config: &Config,
    bytes: &[u8],
    new: &PrefixData,
    if_version: Option<i32>,
) -> Outcome {
    let prefix = config.prefix.as_str();
    let current = read_versioned(session, prefix).await?;
    let expected = match if_version {
        Some(v) => v,
        None => current.as_ref().map_or(-1, |(_, v)| *v),
    };
    let written = if expected == -1 {
        session.create_persistent(prefix, bytes).await
    } else {
        session.set_data(prefix, bytes, expected).await
    };
    match written? {
        Some(stat) => {
            // The write replaced exactly the data read (same version), so compare with it.
            if let Some((old, old_version)) = &current
                && *old_version == expected
            {
                warn_about_removals(prefix, old, new);
            }
            eprintln!(
                "switchmanctl: wrote {prefix}, now at version {}",
                stat.version
            );
            Ok(0)
        }
        None => {
            let now = match read_versioned(session, prefix).await? {
                Some((_, v)) => format!("it is at version {v} now"),
                None => "it does not exist now (version -1)".to_string(),
            };
            let expected = if expected == -1 {
                "expected it not to exist".to_string()
            } else {
                format!("expected version {expected}")
            };
            eprintln!(
                "switchmanctl: someone else changed {prefix} ({expected}; {now}); nothing was \
                 written: run get-data again, redo the edit and retry with that --if-version"
            );
            Ok(PROBLEMS)
        }
    }
}

/// Groups or resources that the new data drops: runs naming them will fail (and a running
/// CMD whose group goes is stopped), so say so, though it may well be intended.
fn warn_about_removals(prefix: &str, old: &[u8], new: &PrefixData) {
    let Ok(old) = PrefixData::parse(prefix, old) else {
        return;
    };
    for group in old.groups.keys().filter(|g| !new.groups.contains_key(*g)) {
        eprintln!(
            "switchmanctl: warning: group {group:?} is removed: runs with --group {group} will \
             fail (78), and running ones are stopped"
        );
    }
    for resource in old.resources.iter().filter(|r| !new.resources.contains(r)) {
        eprintln!(
            "switchmanctl: warning: resource {resource:?} is removed: runs leasing it will fail (78)"
        );
    }
}
