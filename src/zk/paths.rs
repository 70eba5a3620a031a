//! Every ZooKeeper path switchman touches, in one place. This layout is shared with the original
//! Perl switchman (docs/layout.md), so it is a compatibility promise: old and new
//! copies share one prefix, and nothing here may change what the original can see. Folders of
//! our own (`waiters`, `runs`, `history`) are new names beside the original's, which it never
//! lists.

/// The znode paths below one configured prefix.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The prefix, or "" for "/", so that every path below is `{prefix}/...`.
    prefix: String,
}

impl Paths {
    /// `prefix` as `config` leaves it: an absolute znode path without a trailing slash, or "/".
    pub fn new(prefix: &str) -> Paths {
        let prefix = if prefix == "/" { "" } else { prefix };
        Paths {
            prefix: prefix.to_string(),
        }
    }

    /// `{prefix}`: persistent, holds the JSON with groups and resources.
    pub fn prefix(&self) -> &str {
        if self.prefix.is_empty() {
            "/"
        } else {
            &self.prefix
        }
    }

    /// `{prefix}/locks`: the folder of the lock nodes.
    pub fn locks(&self) -> String {
        format!("{}/locks", self.prefix)
    }

    /// `{prefix}/queues`: one queue folder per resource.
    pub fn queues(&self) -> String {
        format!("{}/queues", self.prefix)
    }

    /// `{prefix}/semaphores`: one folder per resource.
    pub fn semaphores(&self) -> String {
        format!("{}/semaphores", self.prefix)
    }

    /// `{prefix}/waiters`: one line of `--wait` runs per lock.
    pub fn waiters(&self) -> String {
        format!("{}/waiters", self.prefix)
    }

    /// `{prefix}/waiters/{lock}`: a FIFO of `wait-{seq10}` items in front of the lock.
    pub fn lock_line(&self, lock: &str) -> String {
        format!("{}/waiters/{lock}", self.prefix)
    }

    /// `{prefix}/waiters/{lock}/wait-`: the stem ZooKeeper appends the sequence number to.
    pub fn lock_line_stem(&self, lock: &str) -> String {
        format!("{}/waiters/{lock}/wait-", self.prefix)
    }

    /// `{prefix}/runs`: the run records, one persistent node per lock.
    pub fn runs(&self) -> String {
        format!("{}/runs", self.prefix)
    }

    /// `{prefix}/runs/{lock}`: JSON, the job's last run and last success.
    pub fn run_record(&self, lock: &str) -> String {
        format!("{}/runs/{lock}", self.prefix)
    }

    /// `{prefix}/history`: the run histories, one persistent node per lock.
    pub fn histories(&self) -> String {
        format!("{}/history", self.prefix)
    }

    /// `{prefix}/history/{lock}`: JSON, the job's last runs with their output.
    pub fn run_history(&self, lock: &str) -> String {
        format!("{}/history/{lock}", self.prefix)
    }

    /// `{prefix}/locks/{lock}`: ephemeral, data `"{fqdn} {pid}"`.
    pub fn lock(&self, lock: &str) -> String {
        format!("{}/locks/{lock}", self.prefix)
    }

    /// `{prefix}/queues/{res}`: a FIFO of `{lock}-{seq10}` items.
    pub fn queue(&self, res: &str) -> String {
        format!("{}/queues/{res}", self.prefix)
    }

    /// `{prefix}/queues/{res}/{lock}-`: the stem ZooKeeper appends the sequence number to.
    pub fn queue_item_stem(&self, res: &str, lock: &str) -> String {
        format!("{}/queues/{res}/{lock}-", self.prefix)
    }

    /// `{prefix}/semaphores/{res}/lock`: the guard mutex's folder.
    pub fn semaphore_guard(&self, res: &str) -> String {
        format!("{}/semaphores/{res}/lock", self.prefix)
    }

    /// `{prefix}/semaphores/{res}/lock/acquire-`
    pub fn semaphore_guard_stem(&self, res: &str) -> String {
        format!("{}/semaphores/{res}/lock/acquire-", self.prefix)
    }

    /// `{prefix}/semaphores/{res}/leases`
    pub fn semaphore_leases(&self, res: &str) -> String {
        format!("{}/semaphores/{res}/leases", self.prefix)
    }

    /// `{prefix}/semaphores/{res}/leases/{count}_{total}_`
    pub fn semaphore_lease_stem(&self, res: &str, count: u64, total: u64) -> String {
        let stem = LeaseName { count, total }.stem();
        format!("{}/semaphores/{res}/leases/{stem}", self.prefix)
    }
}

/// Checks that `name` can be one ZooKeeper path component (docs/guide.md: "Command line"): not
/// empty, not `.` or `..`, no `/`, no NUL or control characters, at most 512 bytes. `what` names
/// the thing for the error message, e.g. "lock name".
pub fn check_component(what: &str, name: &str) -> Result<(), String> {
    let problem = if name.is_empty() {
        Some("is empty")
    } else if name == "." || name == ".." {
        Some("may not be . or ..")
    } else if name.contains('/') {
        Some("may not contain /")
    } else if name.chars().any(char::is_control) {
        Some("may not contain NUL or control characters")
    } else if name.len() > 512 {
        Some("is longer than 512 bytes")
    } else {
        None
    };
    match problem {
        Some(p) => Err(format!(
            "{what} {name:?} {p} (it must be a single ZooKeeper path component)"
        )),
        None => Ok(()),
    }
}

/// What a lease node's name, `{count}_{total}_{seq10}`, says: the units it holds out of the
/// semaphore's total. The original sums the counts from the names alone, so they are the
/// semaphore's whole state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseName {
    pub count: u64,
    pub total: u64,
}

impl LeaseName {
    /// `{count}_{total}_`, to which ZooKeeper appends the sequence number.
    fn stem(self) -> String {
        format!("{}_{}_", self.count, self.total)
    }

    /// The count and total of a lease node's name; `None` for a name of another shape.
    pub fn parse(name: &str) -> Option<LeaseName> {
        let mut parts = name.splitn(3, '_');
        let count = parts.next()?.parse().ok()?;
        let total = parts.next()?.parse().ok()?;
        Some(LeaseName { count, total })
    }
}

/// The sequence number ZooKeeper appended to a sequential node's name: the digits after the
/// last `-` or `_`.
pub fn sequence_of(name: &str) -> Option<i64> {
    let digits = &name[name.rfind(['-', '_'])? + 1..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_original() {
        let p = Paths::new("/a/b");
        assert_eq!(p.prefix(), "/a/b");
        assert_eq!(p.lock("job"), "/a/b/locks/job");
        assert_eq!(p.queue_item_stem("cpu", "job"), "/a/b/queues/cpu/job-");
        assert_eq!(
            p.semaphore_guard_stem("cpu"),
            "/a/b/semaphores/cpu/lock/acquire-"
        );
        assert_eq!(
            p.semaphore_lease_stem("cpu", 2, 5),
            "/a/b/semaphores/cpu/leases/2_5_"
        );
        assert_eq!(Paths::new("/").lock("x"), "/locks/x");
        assert_eq!(p.locks(), "/a/b/locks");
        assert_eq!(p.queues(), "/a/b/queues");
        assert_eq!(p.semaphores(), "/a/b/semaphores");
    }

    #[test]
    fn lease_names_read_back() {
        let stem = Paths::new("/p").semaphore_lease_stem("r", 2, 5);
        let name = format!("{}0000000007", stem.rsplit('/').next().unwrap());
        assert_eq!(
            LeaseName::parse(&name),
            Some(LeaseName { count: 2, total: 5 })
        );
        assert_eq!(sequence_of(&name), Some(7));
        for junk in ["x_5_1", "2_x_1", "2", ""] {
            assert_eq!(LeaseName::parse(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn our_own_folders_sit_beside_the_originals() {
        let p = Paths::new("/a/b");
        assert_eq!(p.waiters(), "/a/b/waiters");
        assert_eq!(p.lock_line("job"), "/a/b/waiters/job");
        assert_eq!(p.lock_line_stem("job"), "/a/b/waiters/job/wait-");
        assert_eq!(p.runs(), "/a/b/runs");
        assert_eq!(p.run_record("job"), "/a/b/runs/job");
        assert_eq!(Paths::new("/").run_record("x"), "/runs/x");
    }

    #[test]
    fn components_are_checked() {
        assert!(check_component("lock name", "backup").is_ok());
        for bad in ["", ".", "..", "a/b", "a\0b", "a\nb"] {
            assert!(check_component("lock name", bad).is_err(), "{bad:?}");
        }
        assert!(check_component("lock name", &"x".repeat(513)).is_err());
        assert!(check_component("lock name", &"x".repeat(512)).is_ok());
    }
}
