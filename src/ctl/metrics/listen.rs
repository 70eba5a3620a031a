//! `metrics --listen ADDR`: `/metrics` over HTTP for Prometheus to scrape.
//!
//! Each scrape reads the prefix afresh, in one pass, rather than keeping a view up to date from
//! watches: the cost then follows the scrape interval the operator chose (one pass per scrape,
//! at most one pass at a time however many scrapers come), not the rate at which leases come
//! and go on a busy prefix, and no answer can be older than the scrape that asked for it. An
//! idle listener costs the session's pings and nothing more.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::Mutex;

use super::pass::{self, Filter, Snapshot};
use crate::config::Config;
use crate::ctl::Outcome;
use crate::ctl::listener::{self, text};
use crate::zk::{Paths, Session};

/// A scrape's budget when Prometheus does not send its own (its default scrape timeout).
const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

/// The session and what it reads. The mutex makes scrapes take turns: concurrent scrapers
/// cost a pass each, one after another, never several passes at once.
struct Reader {
    config: Config,
    paths: Paths,
    session: Mutex<Option<Session>>,
}

impl Reader {
    /// One scrape's pass, or why there is none.
    async fn scrape(&self) -> Result<Snapshot, String> {
        let mut slot = self.session.lock().await;
        // Taken out for the pass and put back only after a good one: a session whose pass
        // failed (or was cut off by the scrape timeout) may be gone for good, expired in an
        // outage, and the next scrape starts a new one rather than failing for ever.
        let session = match slot.take() {
            Some(session) => session,
            None => Session::connect(&self.config.zk())
                .await
                .map_err(|e| e.to_string())?,
        };
        match pass::read(&session, &self.paths, &Filter::default()).await {
            Ok(snapshot) => {
                *slot = Some(session);
                Ok(snapshot)
            }
            Err(e) => {
                session.close().await;
                Err(e.to_string())
            }
        }
    }
}

pub(super) async fn serve(config: Config, addr: &str) -> Outcome {
    // `:9100`, as node_exporter is told, means every address.
    let addr = match addr.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => addr.to_string(),
    };
    let (tcp, local) = listener::bind(&addr).await?;
    let reader = Arc::new(Reader {
        paths: Paths::new(&config.prefix),
        session: Mutex::new(Some(Session::connect(&config.zk()).await?)),
        config,
    });
    eprintln!("switchmanctl: serving metrics on http://{local}/metrics");
    let connections = tokio::task::LocalSet::new();
    let served = connections
        .run_until(listener::accept(tcp, |stream| {
            let reader = reader.clone();
            async move {
                let service = service_fn(move |request| {
                    let reader = reader.clone();
                    async move { Ok::<_, Infallible>(respond(&reader, request).await) }
                });
                let _ = listener::http1()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            }
        }))
        .await;
    if let Some(session) = reader.session.lock().await.take() {
        session.close().await;
    }
    served.map(|()| 0)
}

async fn respond(reader: &Reader, request: Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
    }
    match request.uri().path() {
        "/metrics" => {}
        "/" => return text(StatusCode::OK, "switchman metrics: see /metrics\n".into()),
        _ => return text(StatusCode::NOT_FOUND, "not found; see /metrics\n".into()),
    }
    let budget = scrape_budget(request.headers());
    exposition(
        tokio::time::timeout(budget, reader.scrape())
            .await
            .unwrap_or_else(|_| Err(late(budget))),
    )
}

/// How long a scrape may take: Prometheus says how long it will wait, and an answer after that
/// is wasted.
pub(in crate::ctl) fn scrape_budget(headers: &HeaderMap) -> Duration {
    headers
        .get("x-prometheus-scrape-timeout-seconds")
        .and_then(|v| v.to_str().ok()?.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(DEFAULT_SCRAPE_TIMEOUT, Duration::from_secs_f64)
}

/// Why a scrape that ran out of `budget` has no answer.
pub(in crate::ctl) fn late(budget: Duration) -> String {
    format!("reading ZooKeeper took longer than the scrape timeout ({budget:?})")
}

/// The answer to a scrape: the metrics of a pass, or a 503 saying why there are none (not a
/// page of zeros: Prometheus marks the target down, `up` 0, on a 5xx).
pub(in crate::ctl) fn exposition(read: Result<Snapshot, String>) -> Response<Full<Bytes>> {
    match read {
        Ok(snapshot) => {
            let mut response = text(StatusCode::OK, super::fleet::render(&snapshot));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(prometheus::TEXT_FORMAT),
            );
            response
        }
        Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    }
}
