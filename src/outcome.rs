//! How a run ended, named as operators read it (docs/guide.md: "Outcomes"): one set of names
//! for the run history, the log lines' `outcome` field, the textfile's counter and `status`.

use crate::error::Error;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// CMD exited 0.
    Succeeded,
    /// CMD exited with another code, or died of a signal switchman did not send it.
    Failed,
    /// The lock was held elsewhere, the task already queued, the host not in the group, or
    /// (`--min-interval`) the job succeeded too recently: CMD did not run here.
    Skipped,
    /// switchman stopped CMD: the lock, a lease, the session or the membership was lost (exit
    /// 79), or CMD died of a signal switchman passed on to it (SIGTERM from systemd, say).
    Stopped,
    /// switchman's own failure before or around CMD: usage, config, ZooKeeper unavailable, a
    /// wait that ran out, CMD not found.
    Error,
}

impl Outcome {
    /// Every outcome, in the order the textfile lists them.
    pub const ALL: [Outcome; 5] = [
        Outcome::Succeeded,
        Outcome::Failed,
        Outcome::Skipped,
        Outcome::Stopped,
        Outcome::Error,
    ];

    /// Its name, the same everywhere it is shown.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
            Outcome::Stopped => "stopped",
            Outcome::Error => "error",
        }
    }

    pub fn parse(label: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.label() == label)
    }

    /// Its place in [`Outcome::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The outcome of a run that ended with switchman's own `error`: a stop is the loss of
    /// what CMD depended on, anything else switchman's failure.
    pub fn of_error(error: &Error) -> Outcome {
        match error {
            Error::Lost(_) => Outcome::Stopped,
            _ => Outcome::Error,
        }
    }

    /// Whether cron-quiet runs show CMD's output at the end: every run whose CMD did not
    /// succeed.
    pub fn is_failure(self) -> bool {
        matches!(self, Outcome::Failed | Outcome::Stopped | Outcome::Error)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}
