//! switchman: the TCP stream of every connection to a server.
//!
//! async-net's stream is driven by async-io's reactor, which runs on a thread of its own: every
//! reply the server sends wakes that thread, which then wakes the runtime's. With the `tokio`
//! feature the stream is tokio's, registered with the reactor of the runtime the session runs
//! on, so a reply wakes the session's task directly. async-net and tokio resolve host names
//! alike (an IP address at once, a name on a blocking thread), and what is read and written is
//! the same. The tokio stream sets TCP_NODELAY, as ZooKeeper's Java client does: requests sent
//! one behind the other without waiting (a create and the read that watches its node) can
//! still leave in two writes (the second made once the first was written, or a partial write),
//! and Nagle's algorithm would hold the second until the first is acknowledged, a round trip
//! across a network.

#[cfg(not(feature = "tokio"))]
pub use async_net::TcpStream;

#[cfg(feature = "tokio")]
pub use self::tokio_stream::TcpStream;

#[cfg(feature = "tokio")]
mod tokio_stream {
    use std::io::{IoSlice, Result};
    use std::pin::Pin;
    use std::task::{ready, Context, Poll};

    use futures::io::{AsyncRead, AsyncWrite};
    use tokio::io::{AsyncRead as _, AsyncWrite as _, ReadBuf};

    /// tokio's TCP stream, with the `futures` I/O traits the connection code is written for.
    #[derive(Debug)]
    pub struct TcpStream(tokio::net::TcpStream);

    impl TcpStream {
        pub async fn connect(addr: (&str, u16)) -> Result<TcpStream> {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(TcpStream(stream))
        }
    }

    impl AsyncRead for TcpStream {
        fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<Result<usize>> {
            let mut buf = ReadBuf::new(buf);
            ready!(Pin::new(&mut self.get_mut().0).poll_read(cx, &mut buf))?;
            Poll::Ready(Ok(buf.filled().len()))
        }
    }

    impl AsyncWrite for TcpStream {
        fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize>> {
            Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
        }

        fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<Result<usize>> {
            Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
            Pin::new(&mut self.get_mut().0).poll_flush(cx)
        }

        fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
            Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
        }
    }
}
