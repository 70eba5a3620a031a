//! Every exit code of both binaries, in one table: its value, its name and what it means.
//!
//! [`crate::error::Error`] and `switchmanctl` take their codes from here, and `--help`, the man
//! pages and `docs/exit-codes.md` are rendered from [`TABLE`] (see [`crate::manual`]), so no
//! copy of a code or of its meaning is kept by hand anywhere else.

/// Which binary exits with a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binary {
    Switchman,
    Switchmanctl,
}

/// One exit code: its value, a name for it (sysexits' where it has one), what it means, and
/// which binaries use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub value: i32,
    pub name: &'static str,
    pub meaning: &'static str,
    pub switchman: bool,
    pub switchmanctl: bool,
}

impl Exit {
    pub fn used_by(&self, binary: Binary) -> bool {
        match binary {
            Binary::Switchman => self.switchman,
            Binary::Switchmanctl => self.switchmanctl,
        }
    }
}

const fn exit(
    value: i32,
    name: &'static str,
    meaning: &'static str,
    switchman: bool,
    switchmanctl: bool,
) -> Exit {
    Exit {
        value,
        name,
        meaning,
        switchman,
        switchmanctl,
    }
}

/// switchman did not run CMD because another host has it in hand (`--busy-exit-code` and
/// `busy_exit_code` change this code).
pub const SKIPPED: Exit = exit(
    0,
    "SKIPPED",
    "skipped: the lock is held elsewhere, the task is already queued elsewhere, this host is not \
     in the group, or (`--min-interval`) the job succeeded too recently (`--busy-exit-code` or \
     `busy_exit_code` change it)",
    true,
    false,
);
pub const OK: Exit = exit(0, "OK", "all well", false, true);
/// A check found problems, `set-data` lost its compare-and-set, or `stop` found nothing to stop.
pub const PROBLEMS: Exit = exit(
    1,
    "PROBLEMS",
    "a check found problems, `set-data` found that someone else changed the data first \
     (nothing written), or `stop` found nothing to stop",
    false,
    true,
);
pub const USAGE: Exit = exit(
    64,
    "USAGE",
    "usage error: a bad option, lease spec or lock name (switchman runs no CMD)",
    true,
    true,
);
pub const NO_INPUT: Exit = exit(66, "NOINPUT", "an input file cannot be read", false, true);
pub const UNAVAILABLE: Exit = exit(
    69,
    "UNAVAILABLE",
    "ZooKeeper unavailable: no session within `connect_timeout`, or (switchman) the session was \
     lost before CMD started (also while waiting in line)",
    true,
    true,
);
pub const INTERNAL: Exit = exit(
    70,
    "SOFTWARE",
    "internal or unexpected ZooKeeper error",
    true,
    true,
);
pub const IO_ERROR: Exit = exit(
    74,
    "IOERR",
    "stdout cannot be written, or the address of `metrics --listen` or `serve --listen` cannot \
     be listened on",
    false,
    true,
);
pub const TIMEOUT: Exit = exit(
    75,
    "TEMPFAIL",
    "`--wait` ran out, or (without `--wait`) `resources_wait_timeout` passed",
    true,
    false,
);
pub const NO_PERM: Exit = exit(
    77,
    "NOPERM",
    "ZooKeeper refused us: credentials refused, no Kerberos ticket to be had, a znode whose ACL \
     keeps us out, a TLS handshake that failed (the line names the identity, the principal or \
     realm, the znode or the server)",
    true,
    true,
);
pub const CONFIG: Exit = exit(
    78,
    "CONFIG",
    "config error: the config file, a logfile or journal that cannot be used, invalid prefix \
     data, or (switchman) an unknown group or resource",
    true,
    true,
);
pub const LOST: Exit = exit(
    79,
    "LOST",
    "CMD was stopped because the lock, session, lease or group membership was lost",
    true,
    false,
);
pub const CANNOT_EXECUTE: Exit = exit(
    126,
    "CANNOT_EXECUTE",
    "CMD could not be executed, as shells do",
    true,
    false,
);
pub const NOT_FOUND: Exit = exit(
    127,
    "NOT_FOUND",
    "CMD was not found, as shells do",
    true,
    false,
);

/// Every exit code, in order of value.
pub const TABLE: &[Exit] = &[
    SKIPPED,
    OK,
    PROBLEMS,
    USAGE,
    NO_INPUT,
    UNAVAILABLE,
    INTERNAL,
    IO_ERROR,
    TIMEOUT,
    NO_PERM,
    CONFIG,
    LOST,
    CANNOT_EXECUTE,
    NOT_FOUND,
];

/// switchman's first row, which is no code of its own: when CMD ran, CMD's code is switchman's.
pub const CMD_RAN: (&str, &str) = ("CMD's code", "CMD ran (128+N if it died of signal N)");

/// What is said under every exit-code table of `binary`.
pub fn footnote(binary: Binary) -> &'static str {
    match binary {
        Binary::Switchman => {
            "Every non-zero exit of switchman's own prints one line on stderr; skipped runs print \
             nothing, so cron mails nothing for them."
        }
        Binary::Switchmanctl => {
            "Every failure of switchmanctl's own prints one line on stderr \
             (`switchmanctl: ...`)."
        }
    }
}

/// The rows of `binary`'s table as (code, meaning), CMD's code first for switchman.
pub fn rows(binary: Binary) -> Vec<(String, &'static str)> {
    let mut rows = Vec::new();
    if binary == Binary::Switchman {
        rows.push((CMD_RAN.0.to_string(), CMD_RAN.1));
    }
    for e in TABLE.iter().filter(|e| e.used_by(binary)) {
        rows.push((e.value.to_string(), e.meaning));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_in_order_and_each_name_is_one_code() {
        assert!(TABLE.windows(2).all(|w| w[0].value <= w[1].value));
        for binary in [Binary::Switchman, Binary::Switchmanctl] {
            let mut values: Vec<i32> = TABLE
                .iter()
                .filter(|e| e.used_by(binary))
                .map(|e| e.value)
                .collect();
            let n = values.len();
            values.dedup();
            assert_eq!(values.len(), n, "{binary:?} has a code twice");
        }
        let mut names: Vec<&str> = TABLE.iter().map(|e| e.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), TABLE.len());
    }
}
