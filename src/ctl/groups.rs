//! `groups`: the groups fully expanded, as switchman resolves them for `--group`.

use std::collections::{BTreeMap, BTreeSet};

use super::{Ctl, Failure, Outcome, PROBLEMS, load_config, print, read_prefix_data};
use crate::prefix_data::PrefixData;

pub(super) async fn groups(ctl: &Ctl, names: &[String], json: bool) -> Outcome {
    let config = load_config(ctl)?;
    let data = read_prefix_data(&config).await?;
    let mut shown = BTreeMap::new();
    let mut code = 0;
    if names.is_empty() {
        shown = expand_all(&data)?;
    }
    for name in names {
        match data.hosts_of(name) {
            Ok(hosts) => {
                shown.insert(name.clone(), hosts);
            }
            Err(_) => {
                eprintln!(
                    "switchmanctl: group {name:?} is not defined in {}",
                    config.prefix
                );
                code = PROBLEMS;
            }
        }
    }
    let text = if json {
        let mut text = serde_json::to_string_pretty(&shown).expect("strings serialise");
        text.push('\n');
        text
    } else {
        shown
            .iter()
            .map(|(group, hosts)| {
                let mut line = format!("{group}:");
                for host in hosts {
                    line.push(' ');
                    line.push_str(host);
                }
                line.push('\n');
                line
            })
            .collect()
    };
    print(&text)?;
    Ok(code)
}

/// Every group with its hosts, nested groups resolved.
pub(super) fn expand_all(
    data: &PrefixData,
) -> std::result::Result<BTreeMap<String, BTreeSet<String>>, Failure> {
    data.groups
        .keys()
        .map(|g| Ok((g.clone(), data.hosts_of(g)?)))
        .collect()
}
