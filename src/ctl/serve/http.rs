//! What `serve` answers, and how: the page, `/api/status`, `/metrics`, the event stream and the
//! page's assets, all read-only, each from the [`Hub`]'s shared view; and each job's own page,
//! read when asked for.

use std::convert::Infallible;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use http_body_util::{Either, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use percent_encoding::percent_decode_str;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::hub::{Hub, View};
use super::{job, page, runs};
use crate::ctl::listener::{self, text};
use crate::ctl::metrics::listen::{exposition, late, scrape_budget};
use crate::ctl::status::render;
use crate::timestamp;
use crate::zk::Paths;
use crate::zk::paths::check_component;

/// How long a page or `/api/status` waits for ZooKeeper before it shows that it did not answer.
const BUDGET: Duration = Duration::from_secs(10);

/// An idle event stream sends a comment this often, so that a proxy keeps it open and a client
/// that vanished is found out by the failed write.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// How soon a browser reconnects a stream that broke (ms).
const RETRY_MS: u32 = 2000;

/// Only same-origin scripts, styles and connections; no frames, forms or plugins.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                      connect-src 'self'; base-uri 'none'; form-action 'none'; \
                      frame-ancestors 'none'";

type Events = Pin<Box<dyn Stream<Item = Result<Frame<Bytes>, Infallible>>>>;
type Body = Either<Full<Bytes>, StreamBody<Events>>;

/// Every asset of the page, in the binary: path, content type, bytes.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "/assets/page.css",
        "text/css; charset=utf-8",
        include_str!("assets/page.css"),
    ),
    (
        "/assets/page.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/page.js"),
    ),
    (
        "/assets/favicon.svg",
        "image/svg+xml",
        include_str!("assets/favicon.svg"),
    ),
];

/// Serves one connection's requests.
pub async fn connection(stream: TcpStream, hub: Rc<Hub>) {
    let service = service_fn(move |request| {
        let hub = hub.clone();
        async move { Ok::<_, Infallible>(respond(hub, request).await) }
    });
    let _ = listener::http1()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn respond(hub: Rc<Hub>, request: Request<Incoming>) -> Response<Body> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = full(text(
            StatusCode::METHOD_NOT_ALLOWED,
            "read-only: only GET\n".into(),
        ));
        let allow = HeaderValue::from_static("GET, HEAD");
        response.headers_mut().insert(header::ALLOW, allow);
        return guarded(response);
    }
    let response = match request.uri().path() {
        "/" => page(&hub).await,
        "/api/status" => status(&hub).await,
        "/api/events" => events(hub),
        "/metrics" => {
            let budget = scrape_budget(request.headers());
            let read = match tokio::time::timeout(budget, hub.fresh()).await {
                Ok(view) => current(&view),
                Err(_) => Err(late(budget)),
            };
            full(exposition(read))
        }
        path if path.starts_with("/jobs/") => job_page(&hub, &path["/jobs/".len()..]).await,
        path => match ASSETS.iter().find(|(p, _, _)| *p == path) {
            Some((_, kind, body)) => {
                let mut response = full(text(StatusCode::OK, body.to_string()));
                set(&mut response, header::CONTENT_TYPE, kind);
                set(&mut response, header::CACHE_CONTROL, "no-cache");
                return guarded(response);
            }
            None => full(text(
                StatusCode::NOT_FOUND,
                "not found; the page is at /\n".into(),
            )),
        },
    };
    let mut response = guarded(response);
    set(&mut response, header::CACHE_CONTROL, "no-store");
    response
}

/// A view fresh enough to answer with, or, if ZooKeeper keeps it waiting, the last one with
/// an outage that says so.
async fn fresh(hub: &Hub) -> Arc<View> {
    match tokio::time::timeout(BUDGET, hub.fresh()).await {
        Ok(view) => view,
        Err(_) => Arc::new(
            hub.latest()
                .overdue(format!("no answer from ZooKeeper within {BUDGET:?}")),
        ),
    }
}

async fn page(hub: &Hub) -> Response<Body> {
    let view = fresh(hub).await;
    html(
        status_of(&view),
        page::page(hub.prefix(), &view, timestamp::now_ms()),
    )
}

/// A job's own page: its history, read now (`name` as the page's link encodes it).
async fn job_page(hub: &Hub, name: &str) -> Response<Body> {
    let name = percent_decode_str(name).decode_utf8_lossy();
    if check_component("job", &name).is_err() {
        return full(text(StatusCode::NOT_FOUND, "no such job\n".into()));
    }
    let paths = Paths::new(hub.prefix());
    let asked = vec![paths.run_history(&name), paths.run_record(&name)];
    let (status, runs) = match tokio::time::timeout(BUDGET, hub.read(asked)).await {
        Ok(Ok(found)) => {
            let mut found = found.into_iter();
            match runs::from_nodes(found.next().flatten(), found.next().flatten()) {
                Some(runs) => (StatusCode::OK, runs),
                None => {
                    let why = format!("no runs of {name} are recorded");
                    (StatusCode::NOT_FOUND, Err(why))
                }
            }
        }
        Ok(Err(why)) => (StatusCode::SERVICE_UNAVAILABLE, Err(why)),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Err(format!("no answer from ZooKeeper within {BUDGET:?}")),
        ),
    };
    let now = timestamp::now_ms();
    html(status, job::page(hub.prefix(), &name, &runs, now))
}

fn html(status: StatusCode, page: String) -> Response<Body> {
    let mut response = full(text(status, page));
    set(
        &mut response,
        header::CONTENT_TYPE,
        "text/html; charset=utf-8",
    );
    set(&mut response, header::CONTENT_SECURITY_POLICY, POLICY);
    response
}

/// `status --json`, byte for byte, or a 503 saying why there is none.
async fn status(hub: &Hub) -> Response<Body> {
    let view = fresh(hub).await;
    let body = match current(&view) {
        Ok(snapshot) => {
            let mut text =
                serde_json::to_string_pretty(&render::json(&snapshot)).expect("values serialise");
            text.push('\n');
            text
        }
        Err(why) => format!("{}\n", serde_json::json!({ "error": why })),
    };
    let mut response = full(text(status_of(&view), body));
    set(&mut response, header::CONTENT_TYPE, "application/json");
    response
}

/// The server-sent events: the latest view at once, then each new one. A slow client skips the
/// views it had no time for, and holds up no one: each stream takes the latest when it can.
fn events(hub: Rc<Hub>) -> Response<Body> {
    /// One open stream; its end is the hub's news.
    struct Follower {
        hub: Rc<Hub>,
        views: watch::Receiver<Arc<View>>,
        first: bool,
    }
    impl Drop for Follower {
        fn drop(&mut self) {
            self.hub.unfollow();
        }
    }
    let views = hub.follow();
    let follower = Follower {
        hub,
        views,
        first: true,
    };
    let frames = futures::stream::unfold(follower, |mut f| async move {
        let frame = if f.first {
            f.first = false;
            let latest = f.views.borrow_and_update().event.clone();
            Bytes::from([format!("retry: {RETRY_MS}\n").as_bytes(), &latest].concat())
        } else {
            match tokio::time::timeout(KEEPALIVE, f.views.changed()).await {
                Ok(Ok(())) => f.views.borrow_and_update().event.clone(),
                Ok(Err(_)) => return None,
                Err(_) => Bytes::from_static(b": still here\n\n"),
            }
        };
        Some((Ok(Frame::data(frame)), f))
    });
    let events: Events = Box::pin(frames);
    let mut response = Response::new(Either::Right(StreamBody::new(events)));
    set(&mut response, header::CONTENT_TYPE, "text/event-stream");
    // nginx buffers what it proxies unless told not to.
    set(&mut response, "x-accel-buffering", "no");
    response
}

/// The snapshot to answer from, as of now if the view is current; or why there is none.
fn current(view: &View) -> Result<crate::ctl::status::pass::Snapshot, String> {
    match (&view.outage, &view.snapshot) {
        (None, Some(s)) => Ok(crate::ctl::status::pass::Snapshot {
            // The watch vouches that nothing changed since: ages count to now.
            read_at: timestamp::now_ms().max(s.read_at),
            ..(**s).clone()
        }),
        (Some(o), _) => Err(format!("ZooKeeper cannot be read: {}", o.why)),
        (None, None) => Err("nothing has been read yet".to_string()),
    }
}

fn status_of(view: &View) -> StatusCode {
    match view.outage {
        None => StatusCode::OK,
        Some(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn full(response: Response<Full<Bytes>>) -> Response<Body> {
    response.map(Either::Left)
}

/// Headers every answer gets: no guessing of types, no referrer sent on from the page's links.
fn guarded(mut response: Response<Body>) -> Response<Body> {
    set(&mut response, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(&mut response, header::REFERRER_POLICY, "no-referrer");
    response
}

fn set(response: &mut Response<Body>, name: impl header::IntoHeaderName, value: &'static str) {
    response
        .headers_mut()
        .insert(name, HeaderValue::from_static(value));
}
