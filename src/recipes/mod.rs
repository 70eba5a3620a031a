//! The coordination recipes, each on top of the session's access layer: the lock, the FIFO
//! queue, the line of runs waiting for a lock, the counting semaphore, group membership, and
//! the record and history of a job's runs.

pub mod groups;
pub mod history;
pub mod holder;
pub mod lock;
pub mod queue;
pub mod runs;
pub mod semaphore;
pub mod waiters;
