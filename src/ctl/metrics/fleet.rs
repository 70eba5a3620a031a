//! What one pass of `status` found, as Prometheus metrics (docs/monitoring.md): the fleet's
//! view from ZooKeeper (locks and their lines, queues, semaphores, groups, and each job's last
//! success from the run records), beside each host's textfile (`crate::metrics`).
//!
//! Every series of a held lock or a waiter exists only while it does, so a lock released is a
//! series gone at the next scrape, not a zero to remember. Ages are measured against this
//! host's clock, as `status` measures them.

use prometheus::core::Collector;
use prometheus::{GaugeVec, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::ctl::status::pass::Snapshot;
use crate::outcome::Outcome;

/// The families of `s`, in Prometheus's classic text format.
pub fn render(s: &Snapshot) -> String {
    let registry = Registry::new();
    let seconds = |ms: i64| ms as f64 / 1000.0;
    let age = |ctime: i64| seconds(s.read_at - ctime);

    let held = int_family(
        &registry,
        "switchman_lock_held",
        "1 for each lock held, with the holder's host (empty when the lock node's data is not \"{fqdn} {pid}\")",
        &["lock", "host"],
    );
    let held_for = family(
        &registry,
        "switchman_lock_held_seconds",
        "How long the lock has been held: the age of its lock node",
        &["lock", "host"],
    );
    for l in &s.locks {
        let labels = [l.name.as_str(), l.holder.owner.host().unwrap_or("")];
        held.with_label_values(&labels).set(1);
        held_for.with_label_values(&labels).set(age(l.holder.ctime));
    }

    let waiting = int_family(
        &registry,
        "switchman_lock_waiting",
        "Runs waiting in line for the lock (--wait)",
        &["lock"],
    );
    for line in &s.lines {
        waiting
            .with_label_values(&[&line.lock])
            .set(line.waiters.len() as i64);
    }

    let length = int_family(
        &registry,
        "switchman_queue_length",
        "Runs waiting in the resource's queue",
        &["resource"],
    );
    let oldest = family(
        &registry,
        "switchman_queue_oldest_wait_seconds",
        "How long the first in the resource's queue has waited (no sample when no one waits)",
        &["resource"],
    );
    for q in &s.queues {
        length
            .with_label_values(&[&q.resource])
            .set(q.waiters.len() as i64);
        if let Some(first) = q.waiters.first() {
            oldest
                .with_label_values(&[&q.resource])
                .set(age(first.holder.ctime));
        }
    }

    let used = int_family(
        &registry,
        "switchman_semaphore_used",
        "Units of the resource leased now",
        &["resource"],
    );
    let total = int_family(
        &registry,
        "switchman_semaphore_capacity",
        "Units of the resource there are, as the leases held say (no sample while none is held)",
        &["resource"],
    );
    for sem in &s.semaphores {
        used.with_label_values(&[&sem.resource])
            .set(sem.used as i64);
        if let Some(t) = sem.total {
            total.with_label_values(&[&sem.resource]).set(t as i64);
        }
    }

    let size = int_family(
        &registry,
        "switchman_group_size",
        "Hosts in the group, nested groups expanded",
        &["group"],
    );
    for (group, hosts) in s.groups.iter().flatten() {
        size.with_label_values(&[group]).set(hosts.len() as i64);
    }

    let success = family(
        &registry,
        "switchman_last_success_timestamp_seconds",
        "When the job's last successful run ended, on any host, from its run record (seconds since the epoch)",
        &["lock", "host"],
    );
    // A success's end is when its record was written, by the servers' clock. One carried along
    // without it is shown at its start, which is earlier, so an alert on it errs towards firing.
    for r in &s.runs {
        if let Some(run) = &r.record.last_success {
            success
                .with_label_values(&[&r.name, &run.host])
                .set(seconds(run.end.unwrap_or(run.start)));
        }
    }

    let failure = family(
        &registry,
        "switchman_last_failure_timestamp_seconds",
        "When the job's last run ended, on any host, if its CMD failed, from its run record (seconds since the epoch)",
        &["lock", "host"],
    );
    for r in s
        .runs
        .iter()
        .filter(|r| r.record.last.outcome == Outcome::Failed)
    {
        let run = &r.record.last;
        failure
            .with_label_values(&[&r.name, &run.host])
            .set(seconds(run.end.unwrap_or(run.start)));
    }

    let pass = family(
        &registry,
        "switchman_metrics_read_seconds",
        "How long reading the prefix took for this scrape",
        &[],
    );
    pass.with_label_values(&[] as &[&str])
        .set(s.took.as_secs_f64());
    let warnings = int_family(
        &registry,
        "switchman_metrics_warnings",
        "Things under the prefix an operator should know of (switchmanctl status lists them)",
        &[],
    );
    warnings
        .with_label_values(&[] as &[&str])
        .set(s.warnings.len() as i64);

    TextEncoder::new()
        .encode_to_string(&registry.gather())
        .expect("families with help and samples")
}

fn family(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    register(registry, GaugeVec::new(Opts::new(name, help), labels))
}

fn int_family(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    register(registry, IntGaugeVec::new(Opts::new(name, help), labels))
}

fn register<C: Collector + Clone + 'static>(
    registry: &Registry,
    family: prometheus::Result<C>,
) -> C {
    let family = family.expect("a valid family");
    registry
        .register(Box::new(family.clone()))
        .expect("each family registered once");
    family
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::status::pass::{Line, LockNode, Queue, RunRecord, Semaphore, Waiter};
    use crate::recipes::holder::{Holder, Owner};
    use crate::recipes::runs::{Record, Run};
    use std::collections::{BTreeMap, BTreeSet};
    use std::time::Duration;

    fn run(host: &str, exit_code: i32, end: Option<i64>) -> Run {
        Run {
            host: host.into(),
            pid: 1,
            start: 1_764_136_000_000,
            end,
            exit_code,
            token: 1,
            outcome: match exit_code {
                0 => Outcome::Succeeded,
                _ => Outcome::Failed,
            },
            signal: None,
            command: None,
            error: None,
            output: None,
        }
    }

    fn holder(data: &str, ctime: i64) -> Holder {
        Holder {
            owner: Owner::parse(data.as_bytes()),
            ctime,
            czxid: 1,
        }
    }

    #[test]
    fn what_status_knows_becomes_series() {
        let s = Snapshot {
            prefix: "/p".into(),
            locks: vec![
                LockNode {
                    name: "backup".into(),
                    holder: holder("web1.example 42", 100_000),
                },
                LockNode {
                    name: "junk".into(),
                    holder: holder("not a holder", 159_500),
                },
            ],
            queues: vec![
                Queue {
                    resource: "db".into(),
                    waiters: vec![Waiter {
                        node: "a-0000000001".into(),
                        task: Some("a".into()),
                        seq: Some(1),
                        position: 1,
                        holder: holder("web2.example 7", 130_000),
                    }],
                },
                Queue {
                    resource: "idle".into(),
                    waiters: vec![],
                },
            ],
            semaphores: vec![
                Semaphore {
                    resource: "db".into(),
                    total: Some(2),
                    used: 2,
                    leases: vec![],
                },
                Semaphore {
                    resource: "idle".into(),
                    total: None,
                    used: 0,
                    leases: vec![],
                },
            ],
            groups: Some(BTreeMap::from([(
                "all".to_string(),
                BTreeSet::from(["a".to_string(), "b".to_string()]),
            )])),
            lines: vec![Line {
                lock: "backup".into(),
                waiters: vec![Waiter {
                    node: "wait-0000000003".into(),
                    task: Some("backup".into()),
                    seq: Some(3),
                    position: 1,
                    holder: holder("web4.example 8", 150_000),
                }],
            }],
            runs: vec![RunRecord {
                name: "backup".into(),
                record: Record {
                    last: run("web1.example", 1, Some(1_764_136_500_250)),
                    last_success: Some(run("web3.example", 0, Some(1_764_136_471_077))),
                },
            }],
            warnings: vec![],
            read_at: 160_000,
            took: Duration::from_millis(12),
        };
        let text = render(&s);
        for line in [
            "switchman_lock_held{host=\"web1.example\",lock=\"backup\"} 1",
            "switchman_lock_held_seconds{host=\"web1.example\",lock=\"backup\"} 60",
            "switchman_lock_held{host=\"\",lock=\"junk\"} 1",
            "switchman_lock_held_seconds{host=\"\",lock=\"junk\"} 0.5",
            "switchman_lock_waiting{lock=\"backup\"} 1",
            "switchman_queue_length{resource=\"db\"} 1",
            "switchman_queue_length{resource=\"idle\"} 0",
            "switchman_queue_oldest_wait_seconds{resource=\"db\"} 30",
            "switchman_semaphore_used{resource=\"db\"} 2",
            "switchman_semaphore_capacity{resource=\"db\"} 2",
            "switchman_semaphore_used{resource=\"idle\"} 0",
            "switchman_group_size{group=\"all\"} 2",
            "switchman_last_success_timestamp_seconds{host=\"web3.example\",lock=\"backup\"} 1764136471.077",
            "switchman_last_failure_timestamp_seconds{host=\"web1.example\",lock=\"backup\"} 1764136500.25",
            "switchman_metrics_read_seconds 0.012",
            "switchman_metrics_warnings 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        assert!(!text.contains("resource=\"idle\"} 0\nswitchman_queue_oldest"));
        assert!(!text.contains("switchman_semaphore_capacity{resource=\"idle\"}"));
    }
}
