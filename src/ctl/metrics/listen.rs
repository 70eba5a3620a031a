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
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Mutex;

use super::pass::{self, Filter};
use crate::config::Config;
use crate::ctl::{Failure, IO_ERROR, Outcome};
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
    /// One scrape's text, or why there is none.
    async fn scrape(&self) -> Result<String, String> {
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
                Ok(super::fleet::render(&snapshot))
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
    let listener = TcpListener::bind(&addr).await.map_err(|e| Failure {
        code: IO_ERROR,
        message: format!("cannot listen on {addr}: {e}"),
    })?;
    let local = listener.local_addr().map_err(|e| Failure {
        code: crate::exit::INTERNAL.value,
        message: format!("cannot tell the address listened on: {e}"),
    })?;
    let stop_on = |kind| {
        signal(kind).map_err(|e| Failure {
            code: crate::exit::INTERNAL.value,
            message: format!("cannot handle signals: {e}"),
        })
    };
    let (mut int, mut term) = (
        stop_on(SignalKind::interrupt())?,
        stop_on(SignalKind::terminate())?,
    );
    let reader = Arc::new(Reader {
        paths: Paths::new(&config.prefix),
        session: Mutex::new(Some(Session::connect(&config.zk()).await?)),
        config,
    });
    eprintln!("switchmanctl: serving metrics on http://{local}/metrics");
    // Connections are tasks of this thread (switchmanctl's runtime has one): nothing here
    // needs to move between threads.
    let connections = tokio::task::LocalSet::new();
    connections
        .run_until(async {
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            tokio::task::spawn_local(connection(stream, reader.clone()));
                        }
                        Err(e) => {
                            // Out of file descriptors, say: pause rather than spin.
                            eprintln!("switchmanctl: cannot accept a connection: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    },
                    _ = int.recv() => break,
                    _ = term.recv() => break,
                }
            }
        })
        .await;
    if let Some(session) = reader.session.lock().await.take() {
        session.close().await;
    }
    Ok(0)
}

async fn connection(stream: tokio::net::TcpStream, reader: Arc<Reader>) {
    let service = service_fn(move |request| {
        let reader = reader.clone();
        async move { Ok::<_, Infallible>(respond(&reader, request).await) }
    });
    // A client that never finishes its request must not hold a connection for ever.
    // A connection's own errors (a scraper that hung up, a malformed request) concern only that
    // scraper, which sees them itself.
    let _ = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(DEFAULT_SCRAPE_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service)
        .await;
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
    // Prometheus says how long it will wait; an answer after that is wasted.
    let budget = request
        .headers()
        .get("x-prometheus-scrape-timeout-seconds")
        .and_then(|v| v.to_str().ok()?.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(DEFAULT_SCRAPE_TIMEOUT, Duration::from_secs_f64);
    match tokio::time::timeout(budget, reader.scrape()).await {
        Ok(Ok(body)) => {
            let mut response = text(StatusCode::OK, body);
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(prometheus::TEXT_FORMAT),
            );
            response
        }
        // Not a page of zeros: Prometheus marks the target down (`up` 0) on a 5xx.
        Ok(Err(why)) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
        Err(_) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("reading ZooKeeper took longer than the scrape timeout ({budget:?})\n"),
        ),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
