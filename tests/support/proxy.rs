//! A fault-injecting TCP proxy between a client and ZooKeeper.
//!
//! [`Proxy`] forwards one local port per upstream server port; see its docs for the
//! semantics of `blackhole`, `block_requests`, `block_replies`, `heal` and `reset_all`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::util::lock;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Dir {
    /// client -> server
    Requests = 0,
    /// server -> client
    Replies = 1,
}

struct ProxyState {
    /// Whether each direction (indexed by `Dir`) is forwarded.
    open: [bool; 2],
    /// Chunks currently being written, per direction.
    in_flight: [usize; 2],
    conns: HashMap<u64, Conn>,
    next_id: u64,
    shutdown: bool,
}

struct Conn {
    client: TcpStream,
    upstream: Option<TcpStream>,
    dead: Arc<AtomicBool>,
}

impl Conn {
    fn close(&self) {
        self.dead.store(true, Ordering::SeqCst);
        let _ = self.client.shutdown(Shutdown::Both);
        if let Some(u) = &self.upstream {
            let _ = u.shutdown(Shutdown::Both);
        }
    }
}

struct ProxyShared {
    state: Mutex<ProxyState>,
    cond: Condvar,
}

impl ProxyShared {
    /// Blocks until `dir` is open; false if the connection died or the proxy shut down.
    fn wait_open(&self, dir: Dir, dead: &AtomicBool) -> bool {
        let mut st = lock(&self.state);
        loop {
            if st.shutdown || dead.load(Ordering::SeqCst) {
                return false;
            }
            if st.open[dir as usize] {
                return true;
            }
            st = self.cond.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Like `wait_open`, and registers an in-flight write.
    fn begin_write(&self, dir: Dir, dead: &AtomicBool) -> bool {
        let mut st = lock(&self.state);
        loop {
            if st.shutdown || dead.load(Ordering::SeqCst) {
                return false;
            }
            if st.open[dir as usize] {
                st.in_flight[dir as usize] += 1;
                return true;
            }
            st = self.cond.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn end_write(&self, dir: Dir) {
        lock(&self.state).in_flight[dir as usize] -= 1;
        self.cond.notify_all();
    }

    fn set_open(&self, requests: bool, replies: bool) {
        let mut st = lock(&self.state);
        st.open = [requests, replies];
        self.cond.notify_all();
        // Let writes that were already under way in a now-cut direction finish, so that
        // once this returns nothing more is delivered that way.  (Bounded: a write to a
        // peer that isn't reading could block.)
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            let busy = (!requests && st.in_flight[0] > 0) || (!replies && st.in_flight[1] > 0);
            let now = Instant::now();
            if !busy || now >= deadline {
                break;
            }
            st = self
                .cond
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn remove(&self, id: u64) {
        if let Some(conn) = lock(&self.state).conns.remove(&id) {
            conn.close();
        }
        self.cond.notify_all();
    }
}

/// A TCP proxy on 127.0.0.1 with one listening port per upstream port, for injecting
/// network faults between a client and ZooKeeper.  Runs on std threads.
///
/// Cut semantics (`blackhole`, `block_requests`, `block_replies`): the proxy stops
/// *reading* the cut direction, on every existing and new connection, so bytes back up in
/// the kernel socket buffers (at most one already-read chunk is held by the proxy) and no
/// socket is closed: the peers see a silent partition, exactly as with dropped packets,
/// including an EOF/close from the far side, which is also not passed on while cut.
/// Nothing is dropped, so on `heal` everything held is delivered in order and the
/// ZooKeeper framing stays intact; by then the client has usually given up on that
/// connection anyway (ping timeout) and reconnected.  A new connection accepted while
/// requests are cut isn't connected upstream until they flow again.  When a cut call
/// returns, nothing more is delivered in the cut direction.
///
/// `reset_all` closes every current connection (both sides see EOF); new connections are
/// accepted as usual, subject to the current cut mode.
pub struct Proxy {
    ports: Vec<u16>,
    upstreams: Vec<u16>,
    shared: Arc<ProxyShared>,
    acceptors: Vec<thread::JoinHandle<()>>,
}

impl Proxy {
    /// Starts forwarding 127.0.0.1:<new port i> to 127.0.0.1:`upstreams[i]`.
    pub fn start(upstreams: &[u16]) -> Proxy {
        let shared = Arc::new(ProxyShared {
            state: Mutex::new(ProxyState {
                open: [true, true],
                in_flight: [0, 0],
                conns: HashMap::new(),
                next_id: 0,
                shutdown: false,
            }),
            cond: Condvar::new(),
        });
        let mut ports = Vec::new();
        let mut acceptors = Vec::new();
        for &upstream in upstreams {
            let listener =
                TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("proxy: bind 127.0.0.1:0");
            ports.push(listener.local_addr().expect("proxy: local_addr").port());
            let shared = shared.clone();
            let handle = thread::Builder::new()
                .name(format!("proxy-accept-{upstream}"))
                .spawn(move || accept_loop(listener, upstream, shared))
                .expect("spawn proxy thread");
            acceptors.push(handle);
        }
        Proxy {
            ports,
            upstreams: upstreams.to_vec(),
            shared,
            acceptors,
        }
    }

    /// "127.0.0.1:p1,127.0.0.1:p2,..." of the proxy's listening ports.
    pub fn connect_string(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The listening port forwarding to `upstreams[i]`.
    pub fn port(&self, i: usize) -> u16 {
        self.ports[i]
    }

    pub fn upstreams(&self) -> &[u16] {
        &self.upstreams
    }

    /// Full partition: nothing is forwarded either way; connections stay open.
    pub fn blackhole(&self) {
        self.shared.set_open(false, false);
    }

    /// Client->server still forwarded; server->client held.
    pub fn block_replies(&self) {
        self.shared.set_open(true, false);
    }

    /// Server->client still forwarded; client->server held.
    pub fn block_requests(&self) {
        self.shared.set_open(false, true);
    }

    /// Forward both ways again; held bytes are delivered (nothing was dropped).
    pub fn heal(&self) {
        self.shared.set_open(true, true);
    }

    /// Closes every current connection (client and upstream side).
    pub fn reset_all(&self) {
        let conns: Vec<Conn> = lock(&self.shared.state)
            .conns
            .drain()
            .map(|(_, c)| c)
            .collect();
        for c in &conns {
            c.close();
        }
        self.shared.cond.notify_all();
    }

    /// Number of currently open proxied connections.
    pub fn connection_count(&self) -> usize {
        lock(&self.shared.state).conns.len()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        lock(&self.shared.state).shutdown = true;
        self.reset_all();
        for &port in &self.ports {
            // wake the blocking accept()
            let _ = TcpStream::connect_timeout(
                &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                Duration::from_millis(200),
            );
        }
        for handle in self.acceptors.drain(..) {
            let _ = handle.join();
        }
    }
}

fn accept_loop(listener: TcpListener, upstream: u16, shared: Arc<ProxyShared>) {
    for stream in listener.incoming() {
        if lock(&shared.state).shutdown {
            return;
        }
        let Ok(client) = stream else {
            thread::sleep(Duration::from_millis(10)); // e.g. out of fds: don't spin
            continue;
        };
        let _ = client.set_nodelay(true);
        let shared = shared.clone();
        let _ = thread::Builder::new()
            .name(format!("proxy-conn-{upstream}"))
            .spawn(move || handle_connection(client, upstream, shared));
    }
}

fn handle_connection(client: TcpStream, upstream_port: u16, shared: Arc<ProxyShared>) {
    let dead = Arc::new(AtomicBool::new(false));
    let Ok(client_clone) = client.try_clone() else {
        return;
    };
    let id = {
        let mut st = lock(&shared.state);
        if st.shutdown {
            return;
        }
        st.next_id += 1;
        let id = st.next_id;
        st.conns.insert(
            id,
            Conn {
                client: client_clone,
                upstream: None,
                dead: dead.clone(),
            },
        );
        id
    };
    // Don't even connect upstream while requests are cut (a partitioned client's SYN
    // wouldn't get through either).
    if !shared.wait_open(Dir::Requests, &dead) {
        shared.remove(id);
        return;
    }
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, upstream_port));
    let upstream = match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        Ok(s) => s,
        Err(_) => {
            shared.remove(id); // upstream down: close the client side
            return;
        }
    };
    let _ = upstream.set_nodelay(true);
    {
        let mut st = lock(&shared.state);
        match (st.conns.get_mut(&id), upstream.try_clone()) {
            (Some(conn), Ok(clone)) if !dead.load(Ordering::SeqCst) => conn.upstream = Some(clone),
            _ => {
                drop(st);
                let _ = upstream.shutdown(Shutdown::Both);
                shared.remove(id);
                return;
            }
        }
    }
    let replies = {
        let (from, to, shared, dead) = (
            upstream.try_clone(),
            client.try_clone(),
            shared.clone(),
            dead.clone(),
        );
        match (from, to) {
            (Ok(from), Ok(to)) => thread::Builder::new()
                .name(format!("proxy-replies-{upstream_port}"))
                .spawn(move || pump(from, to, Dir::Replies, &shared, &dead))
                .ok(),
            _ => None,
        }
    };
    if replies.is_some() {
        pump(client, upstream, Dir::Requests, &shared, &dead);
    }
    if let Some(handle) = replies {
        let _ = handle.join();
    }
    shared.remove(id);
}

/// Copies `from` -> `to` while `dir` is open.  Ends (closing both sockets) on EOF or error
/// from either side; an EOF read while `dir` is cut is held back like data.
fn pump(mut from: TcpStream, mut to: TcpStream, dir: Dir, shared: &ProxyShared, dead: &AtomicBool) {
    let mut buf = vec![0u8; 64 * 1024];
    while shared.wait_open(dir, dead) {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => {
                // Deliver the EOF only when this direction flows.
                shared.wait_open(dir, dead);
                break;
            }
            Ok(n) => n,
        };
        if !shared.begin_write(dir, dead) {
            break;
        }
        let result = to.write_all(&buf[..n]);
        shared.end_write(dir);
        if result.is_err() {
            break;
        }
    }
    dead.store(true, Ordering::SeqCst);
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
    shared.cond.notify_all();
}
