//! `metrics`: what `status` knows, as Prometheus metrics, printed once or served over HTTP for
//! Prometheus to scrape (docs/monitoring.md). Both read the prefix with `status`'s pass
//! ([`pass::read`]); nothing else reads ZooKeeper here. `serve` answers `/metrics` with
//! [`listen::exposition`] too.

mod fleet;
pub(super) mod listen;

use super::status::pass::{self, Filter};
use super::{Ctl, Outcome, load_config, print};
use crate::zk::{Paths, Session};

pub(super) async fn metrics(ctl: &Ctl, listen: Option<&str>) -> Outcome {
    let config = load_config(ctl)?;
    if let Some(addr) = listen {
        return listen::serve(config, addr).await;
    }
    let paths = Paths::new(&config.prefix);
    let session = Session::connect(&config.zk()).await?;
    let read = pass::read(&session, &paths, &Filter::default()).await;
    session.close().await;
    print(fleet::render(&read?))?;
    Ok(0)
}
