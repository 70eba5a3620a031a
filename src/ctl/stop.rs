//! `stop`: deletes a lock node, so that the switchman holding it stops its CMD (exit 79 there;
//! the Perl original notices within its one-second check and exits with CMD's code).
//!
//! `--if-token` must never hit the run that replaced the one aimed at. ZooKeeper cannot delete
//! "the node with this creation zxid", so the node is read, its zxid compared, and then deleted
//! only at the version read. That refuses a node whose data changed meanwhile; a new holder's
//! node starts at version 0 like the old one, though, so a holder that ends and is replaced in
//! the one round trip between the read and the delete would still be hit (docs/operators.md:
//! "stop").

use super::{Ctl, Outcome, PROBLEMS, load_config, print};
use crate::error::Error;
use crate::recipes::holder::Holder;
use crate::zk::paths::check_component;
use crate::zk::{Paths, Session};

pub(super) async fn stop(ctl: &Ctl, lock: &str, if_token: Option<i64>) -> Outcome {
    let config = load_config(ctl)?;
    check_component("lock name", lock).map_err(Error::Usage)?;
    let path = Paths::new(&config.prefix).lock(lock);
    let session = Session::connect(&config.zk()).await?;
    let result = stop_holder(&session, &path, if_token).await;
    session.close().await;
    result
}

async fn stop_holder(session: &Session, path: &str, if_token: Option<i64>) -> Outcome {
    loop {
        let Some((data, stat)) = session.data(path).await? else {
            eprintln!("switchmanctl: no one holds {path}; nothing to stop");
            return Ok(PROBLEMS);
        };
        let holder = Holder::new(&data, &stat);
        if let Some(token) = if_token
            && token != stat.czxid
        {
            eprintln!(
                "switchmanctl: {path} is held by {} with token {}, not {token}; nothing was \
                 deleted",
                holder.describe(),
                stat.czxid
            );
            return Ok(PROBLEMS);
        }
        if session.delete_at_version(path, stat.version).await? {
            print(format!(
                "stopped: deleted {path}, held by {} (token {}); its switchman stops CMD\n",
                holder.describe(),
                stat.czxid
            ))?;
            return Ok(0);
        }
        // Its data changed or it went since we read it: look again.
    }
}
