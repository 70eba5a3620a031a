//! A fault-injecting TCP proxy between a client and ZooKeeper.
//!
//! [`Proxy`] forwards one local port per upstream server port; see its docs for the
//! semantics of `blackhole`, `block_requests`, `block_replies`, `heal` and `reset_all`.
//!
//! A proxy started with [`Proxy::start_framed`] also reads the ZooKeeper client protocol as it
//! passes, so that a test can cut one connection at a chosen request: see [`Trigger`] and
//! [`Proxy::hold_at`]. The frames are the client protocol's: each is a 4-byte big-endian length
//! and a body. A connection's first frame each way is the connect request and its response
//! (no header); every later request starts with a header (`xid`, then the opcode, both i32),
//! every later reply with one (`xid` i32, `zxid` i64, `err` i32). A reply carries its
//! request's `xid`; pings (`xid` -2) and watch notifications (`xid` -1) have their own.

use std::collections::{HashMap, VecDeque};
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
    /// Set by [`Proxy::blackhole_lossy`]: what a cut direction reads is thrown away.
    lossy: bool,
    /// Chunks currently being written, per direction.
    in_flight: [usize; 2],
    conns: HashMap<u64, Conn>,
    next_id: u64,
    shutdown: bool,
    /// Whether connections are read as ZooKeeper client frames ([`Proxy::start_framed`]).
    framed: bool,
    /// Armed by [`Proxy::hold_at`]; fires once, on the first frame that matches it.
    trigger: Option<Trigger>,
    /// Set by [`Proxy::pause_each`]: requests it matches wait this long before they go on.
    pause: Option<(Trigger, Duration)>,
    /// The request frames seen, oldest first (at most [`FRAMES_LOGGED`]).
    frames: VecDeque<Frame>,
    /// Connect responses passed on to clients: sessions established or re-established.
    connects_answered: usize,
}

struct Conn {
    client: TcpStream,
    upstream: Option<TcpStream>,
    dead: Arc<AtomicBool>,
    /// Set when a [`Trigger`] fired on this connection: it is frozen (see [`Proxy::hold_at`]).
    hold: Option<Hold>,
}

/// A frozen connection's state.
struct Hold {
    frame: Frame,
    at: HoldAt,
    /// With [`HoldAt::Reply`]: the reply to `frame` has reached the proxy and is held.
    reply_held: bool,
    /// [`ProxyState::connects_answered`] when the trigger fired.
    connects_before: usize,
}

/// How many request frames [`Proxy::frames`] remembers.
const FRAMES_LOGGED: usize = 4096;

/// The request opcodes whose body starts with a path (`CreateRequest`, `GetDataRequest`, ...).
const PATH_FIRST: [i32; 20] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 15, 17, 18, 19, 20, 21, 103, 104, 106,
];

/// One request frame that went through a framed proxy (or was held by it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The proxy's number for the connection (1, 2, ... in the order they were accepted).
    pub conn: u64,
    /// The frame's place in its connection, from 1 (the connect request).
    pub index: usize,
    /// The request header's `xid`; `None` for the connect request.
    pub xid: Option<i32>,
    /// The request header's opcode (`create2` 15, `getChildren` 8, `sync` 9, ...); `None` for
    /// the connect request.
    pub op: Option<i32>,
    /// The path the request names, for the opcodes whose body starts with one, and the path of
    /// a transaction's first operation.
    pub path: Option<String>,
}

impl std::fmt::Display for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.op {
            None => write!(f, "conn {} #{} connect", self.conn, self.index),
            Some(op) => write!(
                f,
                "conn {} #{} xid {} op {op} {}",
                self.conn,
                self.index,
                self.xid.unwrap_or_default(),
                self.path.as_deref().unwrap_or("-")
            ),
        }
    }
}

impl Frame {
    /// Reads the frame `body` (without its length), the `index`th request of connection `conn`.
    fn parse(conn: u64, index: usize, body: &[u8]) -> Frame {
        let int = |at: usize| {
            body.get(at..at + 4)
                .map(|b| i32::from_be_bytes(b.try_into().unwrap()))
        };
        let (xid, op) = if index == 1 {
            (None, None)
        } else {
            (int(0), int(4))
        };
        // A transaction (`multi` 14, `multiRead` 22) names the path of its first operation,
        // after that operation's header (`type` i32, `done` bool, `err` i32).
        let at = match op {
            Some(op) if PATH_FIRST.contains(&op) => Some(8),
            Some(14 | 22) => Some(17),
            _ => None,
        };
        let path = at.and_then(|at| {
            let len = usize::try_from(int(at)?).ok()?;
            let bytes = body.get(at + 4..at + 4 + len)?;
            Some(String::from_utf8_lossy(bytes).into_owned())
        });
        Frame {
            conn,
            index,
            xid,
            op,
            path,
        }
    }
}

/// Which frame a [`Trigger`] fires on.
#[derive(Clone, Debug)]
enum Match {
    /// The `n`th frame of a connection (1 is the connect request).
    Nth(usize),
    /// The first frame with this opcode (and a path containing `path`, if given).
    Op { op: i32, path: Option<String> },
}

/// Where a fired [`Trigger`] stops the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldAt {
    /// Before the frame: the request never reaches the server.
    Request,
    /// After it: the server gets the request and answers; the answer is held.
    Reply,
}

/// A request frame at which [`Proxy::hold_at`] freezes its connection.
#[derive(Clone, Debug)]
pub struct Trigger {
    matching: Match,
    at: HoldAt,
    /// Fire on the `occurrence`th matching frame (counted across connections), from 1.
    occurrence: usize,
    /// Matching frames seen so far.
    seen: usize,
}

impl Trigger {
    /// The `n`th frame of a connection, counting the connect request as the first.
    pub fn nth_frame(n: usize) -> Trigger {
        assert!(n >= 1, "frames are counted from 1");
        Trigger {
            matching: Match::Nth(n),
            at: HoldAt::Request,
            occurrence: 1,
            seen: 0,
        }
    }

    /// The first request with opcode `op` (after a connection's connect request).
    pub fn op(op: i32) -> Trigger {
        Trigger {
            matching: Match::Op { op, path: None },
            at: HoldAt::Request,
            occurrence: 1,
            seen: 0,
        }
    }

    /// Only a request whose path contains `fragment` (see [`Frame::path`]).
    pub fn path_containing(mut self, fragment: &str) -> Trigger {
        match &mut self.matching {
            Match::Op { path, .. } => *path = Some(fragment.to_string()),
            Match::Nth(_) => panic!("a frame picked by its place has no path to match"),
        }
        self
    }

    /// Fire on the `k`th matching frame instead of the first (counted across connections).
    pub fn occurrence(mut self, k: usize) -> Trigger {
        assert!(k >= 1, "occurrences are counted from 1");
        self.occurrence = k;
        self
    }

    /// Where to stop: before the frame (the default) or after it, holding its reply.
    pub fn holding(mut self, at: HoldAt) -> Trigger {
        self.at = at;
        self
    }

    /// Whether `frame` is the one to fire on (counting it if it matches).
    fn fires_on(&mut self, frame: &Frame) -> bool {
        if self.matches(frame) {
            self.seen += 1;
        }
        self.seen == self.occurrence
    }

    fn matches(&self, frame: &Frame) -> bool {
        match &self.matching {
            Match::Nth(n) => frame.index == *n,
            Match::Op { op, path } => {
                frame.op == Some(*op)
                    && path
                        .as_ref()
                        .is_none_or(|p| frame.path.as_deref().is_some_and(|f| f.contains(p)))
            }
        }
    }
}

/// What a framed pump does with one complete frame.
enum Verdict {
    Forward,
    Hold,
    Stop,
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

    /// Plain pumps: blocks until `dir` may be read (it flows, or is cut lossily); false if the
    /// connection died or the proxy shut down.
    fn wait_read(&self, dir: Dir, dead: &AtomicBool) -> bool {
        let mut st = lock(&self.state);
        loop {
            if st.shutdown || dead.load(Ordering::SeqCst) {
                return false;
            }
            if st.open[dir as usize] || st.lossy {
                return true;
            }
            st = self.cond.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Plain pumps, for a chunk read: `Some(true)` to write it (a write is registered, end it
    /// with `end_write`), `Some(false)` to throw it away (cut lossily), `None` if the
    /// connection died; blocks while `dir` is cut without loss.
    fn write_or_drop(&self, dir: Dir, dead: &AtomicBool) -> Option<bool> {
        let mut st = lock(&self.state);
        loop {
            if st.shutdown || dead.load(Ordering::SeqCst) {
                return None;
            }
            if st.open[dir as usize] {
                st.in_flight[dir as usize] += 1;
                return Some(true);
            }
            if st.lossy {
                return Some(false);
            }
            st = self.cond.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn end_write(&self, dir: Dir) {
        lock(&self.state).in_flight[dir as usize] -= 1;
        self.cond.notify_all();
    }

    fn set_open(&self, requests: bool, replies: bool) {
        self.set_open_lossy(requests, replies, false);
    }

    fn set_open_lossy(&self, requests: bool, replies: bool, lossy: bool) {
        let mut st = lock(&self.state);
        st.open = [requests, replies];
        st.lossy = lossy;
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

    /// Framed: blocks until `dir` of connection `id` may be read; false if it died. A frozen
    /// connection is read no more, except for its replies while the one it waits for (with
    /// [`HoldAt::Reply`]) has not come yet.
    fn wait_readable(&self, dir: Dir, id: u64, dead: &AtomicBool) -> bool {
        let mut st = lock(&self.state);
        loop {
            if st.shutdown || dead.load(Ordering::SeqCst) {
                return false;
            }
            let held = st.conns.get(&id).and_then(|c| c.hold.as_ref());
            let frozen = held
                .is_some_and(|h| !(dir == Dir::Replies && h.at == HoldAt::Reply && !h.reply_held));
            if st.open[dir as usize] && !frozen {
                return true;
            }
            st = self.cond.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Framed: blocks until `dir` of connection `id` flows (open, not frozen); false if it died.
    fn wait_flowing(&self, dir: Dir, id: u64, dead: &AtomicBool) -> bool {
        let mut st = lock(&self.state);
        loop {
            if st.shutdown || dead.load(Ordering::SeqCst) {
                return false;
            }
            let frozen = st.conns.get(&id).is_some_and(|c| c.hold.is_some());
            if st.open[dir as usize] && !frozen {
                return true;
            }
            st = self.cond.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Framed: decides the fate of the complete frame `body` (without its length), the
    /// `index`th of its direction on connection `id`; on `Forward`, registers the write (end
    /// it with `end_write`). A request may fire the trigger, freezing the connection.
    fn admit(&self, dir: Dir, id: u64, index: usize, body: &[u8], dead: &AtomicBool) -> Verdict {
        let mut st = lock(&self.state);
        // With `HoldAt::Reply`, the frame that fires the trigger is the last to go through.
        let mut last_through = false;
        if dir == Dir::Requests {
            let frame = Frame::parse(id, index, body);
            if st.frames.len() == FRAMES_LOGGED {
                st.frames.pop_front();
            }
            st.frames.push_back(frame.clone());
            let frozen = st.conns.get(&id).is_none_or(|c| c.hold.is_some());
            if !frozen && let Some(trigger) = st.trigger.take_if(|t| t.fires_on(&frame)) {
                last_through = trigger.at == HoldAt::Reply;
                let connects_before = st.connects_answered;
                st.conns.get_mut(&id).expect("a live connection").hold = Some(Hold {
                    frame,
                    at: trigger.at,
                    reply_held: false,
                    connects_before,
                });
                self.cond.notify_all();
            }
        } else if let Some(hold) = st.conns.get_mut(&id).and_then(|c| c.hold.as_mut())
            && hold.at == HoldAt::Reply
            && if index == 1 {
                hold.frame.index == 1 // the connect response answers the connect request
            } else {
                let xid = body
                    .get(..4)
                    .map(|b| i32::from_be_bytes(b.try_into().unwrap()));
                xid.is_some() && xid == hold.frame.xid
            }
        {
            hold.reply_held = true;
            self.cond.notify_all();
        }
        loop {
            if st.shutdown || dead.load(Ordering::SeqCst) {
                return Verdict::Stop;
            }
            let frozen = st.conns.get(&id).is_none_or(|c| c.hold.is_some());
            if frozen && !last_through {
                return Verdict::Hold;
            }
            if st.open[dir as usize] {
                st.in_flight[dir as usize] += 1;
                return Verdict::Forward;
            }
            st = self.cond.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Framed: how long the request frame `body`, the `index`th of its connection, waits
    /// before it goes on ([`Proxy::pause_each`]).
    fn pause_for(&self, dir: Dir, index: usize, body: &[u8]) -> Option<Duration> {
        if dir != Dir::Requests || index == 1 {
            return None;
        }
        let st = lock(&self.state);
        let (matching, pause) = st.pause.as_ref()?;
        matching
            .matches(&Frame::parse(0, index, body))
            .then_some(*pause)
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
    /// Starts forwarding `127.0.0.1:<new port i>` to `127.0.0.1:upstreams[i]`, bytes as they
    /// come (any protocol).
    pub fn start(upstreams: &[u16]) -> Proxy {
        Proxy::start_with(upstreams, false)
    }

    /// Like [`Proxy::start`], for ZooKeeper clients: every connection is read as the client
    /// protocol's frames (see the module docs), which [`Proxy::hold_at`] and
    /// [`Proxy::frames`] need. Frames are passed on whole, each as it completes.
    pub fn start_framed(upstreams: &[u16]) -> Proxy {
        Proxy::start_with(upstreams, true)
    }

    fn start_with(upstreams: &[u16], framed: bool) -> Proxy {
        let shared = Arc::new(ProxyShared {
            state: Mutex::new(ProxyState {
                open: [true, true],
                lossy: false,
                in_flight: [0, 0],
                conns: HashMap::new(),
                next_id: 0,
                shutdown: false,
                framed,
                trigger: None,
                pause: None,
                frames: VecDeque::new(),
                connects_answered: 0,
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

    /// Full partition that loses what is sent meanwhile, as dropped packets whose senders do
    /// not retransmit: every byte read either way is thrown away, on existing and new
    /// connections alike (a new one is still connected upstream, and its connect request
    /// lost), until [`Proxy::heal`]. A stream cut mid-frame is garbage to its reader after the
    /// heal, as it would be. Plain proxies only; a framed one holds, as with `blackhole`.
    pub fn blackhole_lossy(&self) {
        self.shared.set_open_lossy(false, false, true);
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

    /// Framed proxies only: arms `trigger`. The first request frame that matches it, on any
    /// connection, current or new, freezes that connection: from then on nothing more passes
    /// either way on it, as in a silent stall of that one connection (other connections, and
    /// new ones, are served as usual). With [`HoldAt::Request`] the frame itself is held, so
    /// the server never sees it; with [`HoldAt::Reply`] it goes through, and the proxy reads
    /// the server's replies, passing none on, until it holds the reply to that frame. Then
    /// the test ends the stall with [`Proxy::reset_held`], or leaves it until the client gives
    /// up on the connection and opens another (awaited with [`Proxy::abandoned`]).
    /// The trigger fires once; arming another replaces one that has not fired.
    pub fn hold_at(&self, trigger: Trigger) {
        let mut st = lock(&self.shared.state);
        assert!(
            st.framed,
            "hold_at needs a proxy made with Proxy::start_framed"
        );
        st.trigger = Some(trigger);
    }

    /// Framed proxies only: every request frame that `matching` matches (its opcode and path;
    /// not its occurrence) waits `pause` in the proxy before it goes on, and so does what its
    /// connection sends after it. For widening a race between a client's requests.
    pub fn pause_each(&self, matching: Trigger, pause: Duration) {
        let mut st = lock(&self.shared.state);
        assert!(
            st.framed,
            "pause_each needs a proxy made with Proxy::start_framed"
        );
        st.pause = Some((matching, pause));
    }

    /// The frame a frozen connection holds, once the hold is complete: at once with
    /// [`HoldAt::Request`], once the reply is held with [`HoldAt::Reply`]. `None` before the
    /// trigger fires, and after the connection is closed. A condition to await.
    pub fn held(&self) -> Option<Frame> {
        lock(&self.shared.state)
            .conns
            .values()
            .filter_map(|c| c.hold.as_ref())
            .find(|h| h.at == HoldAt::Request || h.reply_held)
            .map(|h| h.frame.clone())
    }

    /// The frame a frozen connection fired on, once the client has established a session over
    /// another connection since: it gave up on the frozen one by itself (its own timeout),
    /// whether or not the hold was complete. (A held reply may never come: when a session
    /// moves to a new connection, the server drops the old one with what it had not sent.)
    pub fn abandoned(&self) -> Option<Frame> {
        let st = lock(&self.shared.state);
        st.conns
            .values()
            .filter_map(|c| c.hold.as_ref())
            .find(|h| st.connects_answered > h.connects_before)
            .map(|h| h.frame.clone())
    }

    /// Closes every frozen connection (both sides see it closed, as after a reset: the client
    /// library fails what it had in flight with a connection loss). What they held is dropped:
    /// the request, with [`HoldAt::Request`]; the reply, with [`HoldAt::Reply`].
    pub fn reset_held(&self) {
        let frozen: Vec<Conn> = {
            let mut st = lock(&self.shared.state);
            let ids: Vec<u64> = st
                .conns
                .iter()
                .filter(|(_, c)| c.hold.is_some())
                .map(|(&id, _)| id)
                .collect();
            ids.iter().filter_map(|id| st.conns.remove(id)).collect()
        };
        for c in &frozen {
            c.close();
        }
        self.shared.cond.notify_all();
    }

    /// Framed proxies only: how many connect responses have been passed on to clients, i.e.
    /// how many times a session was established or re-established through the proxy.
    pub fn connects_answered(&self) -> usize {
        lock(&self.shared.state).connects_answered
    }

    /// Framed proxies only: the request frames seen so far, oldest first (the last 4096).
    pub fn frames(&self) -> Vec<Frame> {
        lock(&self.shared.state).frames.iter().cloned().collect()
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
                hold: None,
            },
        );
        id
    };
    // Don't even connect upstream while requests are cut (a partitioned client's SYN
    // wouldn't get through either).
    if !shared.wait_read(Dir::Requests, &dead) {
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
    let framed = lock(&shared.state).framed;
    pump_both(
        client,
        upstream,
        upstream_port,
        &shared,
        &dead,
        move |from, to, dir, shared, dead| {
            if framed {
                pump_framed(from, to, dir, id, shared, dead)
            } else {
                pump(from, to, dir, shared, dead)
            }
        },
    );
    shared.remove(id);
}

/// Runs `pump` for both directions of a connection (replies on a thread of their own) until
/// it ends.
fn pump_both(
    client: TcpStream,
    upstream: TcpStream,
    upstream_port: u16,
    shared: &Arc<ProxyShared>,
    dead: &Arc<AtomicBool>,
    pump: impl Fn(TcpStream, TcpStream, Dir, &ProxyShared, &AtomicBool) + Clone + Send + 'static,
) {
    let replies = {
        let (from, to, shared, dead, pump) = (
            upstream.try_clone(),
            client.try_clone(),
            shared.clone(),
            dead.clone(),
            pump.clone(),
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
        pump(client, upstream, Dir::Requests, shared, dead);
    }
    if let Some(handle) = replies {
        let _ = handle.join();
    }
}

/// Copies `from` -> `to` while `dir` is open.  Ends (closing both sockets) on EOF or error
/// from either side; an EOF read while `dir` is cut is held back like data.
fn pump(mut from: TcpStream, mut to: TcpStream, dir: Dir, shared: &ProxyShared, dead: &AtomicBool) {
    let mut buf = vec![0u8; 64 * 1024];
    while shared.wait_read(dir, dead) {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => {
                // Deliver the EOF only when this direction flows.
                shared.wait_open(dir, dead);
                break;
            }
            Ok(n) => n,
        };
        match shared.write_or_drop(dir, dead) {
            None => break,
            Some(false) => continue,
            Some(true) => {}
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

/// Like [`pump`], a whole ZooKeeper frame at a time, each admitted by
/// [`ProxyShared::admit`] (which may freeze the connection). A frozen connection's held frames
/// are kept back for good: it ends only by being closed.
fn pump_framed(
    mut from: TcpStream,
    mut to: TcpStream,
    dir: Dir,
    id: u64,
    shared: &ProxyShared,
    dead: &AtomicBool,
) {
    let mut buf = vec![0u8; 64 * 1024];
    // Bytes read and not yet passed on or held: at most one incomplete frame.
    let mut pending: Vec<u8> = Vec::new();
    let mut index = 0;
    'pumping: while shared.wait_readable(dir, id, dead) {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => {
                // Deliver the EOF only when this direction flows.
                shared.wait_flowing(dir, id, dead);
                break;
            }
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        let mut start = 0;
        while let Some(len) = pending
            .get(start..start + 4)
            .map(|b| i32::from_be_bytes(b.try_into().unwrap()))
        {
            let Ok(len) = usize::try_from(len) else {
                break 'pumping; // not the ZooKeeper client protocol: drop the connection
            };
            let end = start + 4 + len;
            if pending.len() < end {
                break;
            }
            index += 1;
            if let Some(pause) = shared.pause_for(dir, index, &pending[start + 4..end]) {
                thread::sleep(pause);
            }
            match shared.admit(dir, id, index, &pending[start + 4..end], dead) {
                Verdict::Forward => {
                    let result = to.write_all(&pending[start..end]);
                    shared.end_write(dir);
                    if result.is_err() {
                        break 'pumping;
                    }
                    if dir == Dir::Replies && index == 1 {
                        lock(&shared.state).connects_answered += 1;
                    }
                }
                Verdict::Hold => {}
                Verdict::Stop => break 'pumping,
            }
            start = end;
        }
        pending.drain(..start);
    }
    dead.store(true, Ordering::SeqCst);
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
    shared.cond.notify_all();
}
