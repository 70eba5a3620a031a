//! `status`: who holds each lock, who waits in each queue and in what order, how much of each
//! semaphore is leased, and the groups, read in one pass (see [`pass`]) and shown for people or
//! as JSON; with `--watch`, again on every change.

pub(super) mod pass;
pub(super) mod render;
mod watch;

use super::{Ctl, Outcome, load_config, print};
use crate::error::Error;
use crate::zk::paths::check_component;
use crate::zk::{Paths, Session};

pub use pass::Filter;

pub(super) async fn status(ctl: &Ctl, filter: &Filter, json: bool, watching: bool) -> Outcome {
    let config = load_config(ctl)?;
    for (what, name) in [("--lock", &filter.lock), ("--resource", &filter.resource)] {
        if let Some(name) = name {
            check_component(what, name).map_err(Error::Usage)?;
        }
    }
    let paths = Paths::new(&config.prefix);
    let session = Session::connect(&config.zk()).await?;
    let result = if watching {
        watch::watch(&session, &paths, filter, json).await
    } else {
        once(&session, &paths, filter, json).await
    };
    session.close().await;
    result
}

async fn once(session: &Session, paths: &Paths, filter: &Filter, json: bool) -> Outcome {
    let snapshot = pass::read(session, paths, filter).await?;
    let text = if json {
        let mut text =
            serde_json::to_string_pretty(&render::json(&snapshot)).expect("values serialise");
        text.push('\n');
        text
    } else {
        render::people(&snapshot, filter)
    };
    print(text)?;
    Ok(0)
}
