//! `check-hosts`: a group none of whose hosts resolves cannot run anything, so say which.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;

use super::groups::expand_all;
use super::{Ctl, Outcome, PROBLEMS, load_config, print, read_prefix_data};

pub(super) async fn check_hosts(ctl: &Ctl) -> Outcome {
    let config = load_config(ctl)?;
    let data = read_prefix_data(&config).await?;
    let expanded = expand_all(&data)?;
    let all: BTreeSet<&String> = expanded.values().flatten().collect();
    let resolved: BTreeMap<&String, bool> = futures::stream::iter(all)
        .map(|host| async move { (host, resolves(host).await) })
        .buffer_unordered(16)
        .collect()
        .await;

    let mut report = String::new();
    let mut unresolved_in: BTreeMap<&String, Vec<&String>> = BTreeMap::new();
    for (group, hosts) in &expanded {
        let bad: Vec<&String> = hosts.iter().filter(|h| !resolved[h]).collect();
        if hosts.is_empty() {
            report.push_str(&format!("group {group:?} has no hosts\n"));
        } else if bad.len() == hosts.len() {
            report.push_str(&format!(
                "group {group:?}: none of its {} hosts resolves: {}\n",
                hosts.len(),
                shorten(&bad)
            ));
        } else {
            for host in bad {
                unresolved_in.entry(host).or_default().push(group);
            }
        }
    }
    for (host, groups) in unresolved_in {
        let groups: Vec<String> = groups.iter().map(|g| format!("{g:?}")).collect();
        eprintln!(
            "switchmanctl: warning: host {host:?} does not resolve (in {})",
            groups.join(", ")
        );
    }
    print(&report)?;
    Ok(if report.is_empty() { 0 } else { PROBLEMS })
}

/// Whether the resolver knows `host` (getaddrinfo, as `hostname --fqdn` and ssh would ask).
async fn resolves(host: &str) -> bool {
    tokio::net::lookup_host((host, 0))
        .await
        .is_ok_and(|mut addrs| addrs.next().is_some())
}

fn shorten(hosts: &[&String]) -> String {
    const SHOWN: usize = 10;
    let mut text: Vec<&str> = hosts.iter().take(SHOWN).map(|h| h.as_str()).collect();
    let more = hosts.len().saturating_sub(SHOWN);
    let more = format!("... and {more} more");
    if hosts.len() > SHOWN {
        text.push(&more);
    }
    text.join(", ")
}
