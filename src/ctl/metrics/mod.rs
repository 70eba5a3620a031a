//! `metrics`: what `status` knows, as Prometheus metrics, printed once or served over HTTP for
//! Prometheus to scrape (README: "Monitoring"). Both read the prefix with `status`'s pass
//! ([`pass::read`]); nothing else reads ZooKeeper here.

mod fleet;
mod listen;

use super::status::pass::{self, Filter, Snapshot};
use super::{Ctl, Outcome, load_config, print};
use crate::zk::{Paths, Session};

pub use fleet::LastSuccess;

pub(super) async fn metrics(ctl: &Ctl, listen: Option<&str>) -> Outcome {
    let config = load_config(ctl)?;
    if let Some(addr) = listen {
        return listen::serve(config, addr).await;
    }
    let paths = Paths::new(&config.prefix);
    let session = Session::connect(&config).await?;
    let read = pass::read(&session, &paths, &Filter::default()).await;
    session.close().await;
    print(render(&read?))?;
    Ok(0)
}

/// The text of one scrape.
fn render(snapshot: &Snapshot) -> String {
    fleet::render(snapshot, &successes(snapshot))
}

/// The jobs' last successful runs, fleet-wide. The run records they come from (`{prefix}/runs`)
/// are not on this branch yet; once the pass reads them, each record's last success becomes a
/// [`LastSuccess`] here and the family `switchman_last_success_timestamp_seconds` fills.
fn successes(_snapshot: &Snapshot) -> Vec<LastSuccess> {
    Vec::new()
}
