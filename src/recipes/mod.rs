//! The coordination recipes, each on top of the session's access layer: the lock, the FIFO
//! queue, the counting semaphore, and group membership.

pub mod groups;
pub mod holder;
pub mod lock;
pub mod queue;
pub mod semaphore;
