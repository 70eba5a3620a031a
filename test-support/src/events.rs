//! An event stream of `switchmanctl serve` (`/api/events`), read as a browser reads it.

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpStream;

use super::util::PATIENCE;

/// One open stream. It asks over HTTP/1.0, so that the body comes as sent, not in chunks.
pub struct EventStream {
    lines: Lines<BufReader<TcpStream>>,
}

impl EventStream {
    /// Opens the stream of the server at `addr` (`host:port`), and reads its answer's head.
    pub async fn open(addr: &str) -> EventStream {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET /api/events HTTP/1.0\r\nHost: {addr}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut lines = BufReader::new(stream).lines();
        let status = lines.next_line().await.unwrap().unwrap_or_default();
        assert!(status.starts_with("HTTP/1.0 200"), "{status}");
        while lines
            .next_line()
            .await
            .unwrap()
            .is_some_and(|l| !l.is_empty())
        {}
        EventStream { lines }
    }

    /// The next event: its id and its data (lines joined as a browser joins them).
    pub async fn next(&mut self) -> (u64, String) {
        let read = async {
            let (mut id, mut data) = (None, Vec::new());
            while let Some(line) = self.lines.next_line().await.unwrap() {
                if let (true, Some(id)) = (line.is_empty(), id) {
                    return (id, data.join("\n"));
                }
                if let Some(v) = line.strip_prefix("id: ") {
                    id = Some(v.parse().unwrap());
                }
                if let Some(v) = line.strip_prefix("data: ") {
                    data.push(v.to_string());
                }
            }
            panic!("the event stream ended");
        };
        tokio::time::timeout(PATIENCE, read)
            .await
            .expect("no event within 30 s")
    }

    /// The id of the first event whose data has `needle`.
    pub async fn until(&mut self, needle: &str) -> u64 {
        loop {
            let (id, data) = self.next().await;
            if data.contains(needle) {
                return id;
            }
        }
    }
}
