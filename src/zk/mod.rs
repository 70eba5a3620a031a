//! The ZooKeeper side: the session and its liveness, the requests made through it, and the
//! layout of our nodes. Nothing outside this folder touches the client library's `Client`.

pub mod access;
pub mod clock;
mod heartbeat;
pub mod liveness;
pub mod paths;
pub mod reads;
pub mod secure;
pub mod session;
pub mod watches;
pub mod writes;

pub use access::{session_ended, zk_error};
pub use clock::{Alarm, now};
pub use liveness::Liveness;
pub use paths::Paths;
pub use reads::{Found, Read};
pub use session::{Options, Session};
pub use watches::Lost;
pub use writes::{Created, Made, Put, Slot, Txn};
