//! What `metrics --listen` and `serve` share: a TCP listener whose connections hyper serves on
//! this thread until SIGINT or SIGTERM, and plain-text answers.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioTimer;
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};

use super::{Failure, IO_ERROR};

/// How long a client may take to send its request's head: one that never finishes it must not
/// hold a connection for ever.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Listens on `addr` (exit 74 if it cannot), and returns the listener and the address it got
/// (port 0 asks the kernel for one).
pub(super) async fn bind(addr: &str) -> Result<(TcpListener, SocketAddr), Failure> {
    let listener = TcpListener::bind(addr).await.map_err(|e| Failure {
        code: IO_ERROR,
        message: format!("cannot listen on {addr}: {e}"),
    })?;
    let local = listener.local_addr().map_err(|e| Failure {
        code: crate::exit::INTERNAL.value,
        message: format!("cannot tell the address listened on: {e}"),
    })?;
    Ok((listener, local))
}

/// hyper's HTTP/1 server with the timeouts every connection gets.
pub(super) fn http1() -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
}

/// Hands each connection accepted on `listener` to `connection`, as a task of this thread
/// (switchmanctl's runtime has one, so nothing here needs to move between threads), until
/// SIGINT or SIGTERM. A connection's own errors (a client that hung up, a malformed request)
/// concern only that client, which sees them itself.
pub(super) async fn accept<F>(
    listener: TcpListener,
    connection: impl Fn(TcpStream) -> F,
) -> Result<(), Failure>
where
    F: Future<Output = ()> + 'static,
{
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
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::task::spawn_local(connection(stream));
                }
                Err(e) => {
                    // Out of file descriptors, say: pause rather than spin.
                    eprintln!("switchmanctl: cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = int.recv() => return Ok(()),
            _ = term.recv() => return Ok(()),
        }
    }
}

/// A plain-text answer.
pub(super) fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
