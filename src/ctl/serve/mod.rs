//! `serve`: the fleet in a browser. One read-only listener for a live page of what `status`
//! shows (docs/operators.md: "serve"), `status --json` at `/api/status`, `metrics --listen`'s
//! `/metrics`, and the page's server-sent events at `/api/events`; every asset is in the binary.
//!
//! - [`hub`]: the one session and watch behind it all, and the pass every reader shares;
//! - [`http`]: what each path answers;
//! - [`page`]: the HTML of the page, [`job`] that of the jobs' runs and of a job's own page, and
//!   [`runs`] each job's runs as they list them;
//! - `assets/`: the style sheet and the few lines of script that apply the event stream.

mod http;
mod hub;
mod job;
mod page;
mod runs;

use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;

use super::{Ctl, Outcome, listener, load_config};
use crate::zk::Session;

/// Where `serve` listens unless told: this host alone, since the page has no authentication of
/// its own.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9829";

/// `--listen`'s value: `IP:PORT`, or a port alone (`9829`, `:9829`, `localhost:9829`), which
/// means 127.0.0.1 too: every address only when written out (`0.0.0.0:9829`, `[::]:9829`).
pub fn listen_address(text: &str) -> Result<SocketAddr, String> {
    let port = text
        .strip_prefix(':')
        .or_else(|| text.strip_prefix("localhost:"))
        .unwrap_or(text);
    if let Ok(port) = port.parse::<u16>() {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    text.parse().map_err(|_| {
        "not an address: give IP:PORT (127.0.0.1:9829, [::1]:9829, 0.0.0.0:9829 for every \
         address), or a port alone for 127.0.0.1"
            .to_string()
    })
}

pub(super) async fn serve(ctl: &Ctl, listen: SocketAddr) -> Outcome {
    let config = load_config(ctl)?;
    let (tcp, local) = listener::bind(&listen.to_string()).await?;
    // At once, so that a wrong zkhosts or credentials fail now (69, 77, 78), not in a browser.
    let session = Session::connect(&config.zk()).await?;
    let hub = Rc::new(hub::Hub::new(&config.prefix));
    let mut reader = hub::Reader::new(config, session);
    eprintln!("switchmanctl: serving the status page on http://{local}/");
    let connections = tokio::task::LocalSet::new();
    let served = connections
        .run_until(async {
            tokio::select! {
                served = listener::accept(tcp, |stream| http::connection(stream, hub.clone())) => served,
                () = reader.run(&hub) => Ok(()),
            }
        })
        .await;
    drop(connections);
    reader.close().await;
    served.map(|()| 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_alone_is_this_host_alone() {
        for given in ["9829", ":9829", "localhost:9829", "127.0.0.1:9829"] {
            assert_eq!(
                listen_address(given),
                Ok("127.0.0.1:9829".parse().unwrap()),
                "{given}"
            );
        }
        assert_eq!(listen_address(DEFAULT_LISTEN), listen_address("9829"));
        assert_eq!(
            listen_address("[::]:80"),
            Ok("[::]:80".parse().unwrap()),
            "every address, written out"
        );
        for bad in ["", "web1:80", "127.0.0.1", "127.0.0.1:99999", ":x"] {
            assert!(listen_address(bad).is_err(), "{bad}");
        }
    }
}
