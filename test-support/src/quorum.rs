//! A three-server ensemble whose every server-to-server link runs through a fault [`Proxy`],
//! so that a test can cut one member off from its peers while its client port stays
//! reachable: the partition of issue 9, where a follower keeps answering reads from its own
//! copy of the data after the leader has given up on it. It may also hold observers (issue
//! 20), linked like the voters, since an observer cut off from its leader does the same.
//!
//! # How the links are laid
//!
//! Every member gets a config file of its own (`Ensemble::start_with` writes them; the servers
//! run and log as in any [`Ensemble`], `zk.log` in each member's dir, its tail printed when a
//! test panics). Its own `server.N` line names its real quorum
//! and election ports (it binds them); the line of each peer names the two ports of a link
//! that forwards *this* member's connections to *that* peer. So member A reaches B only
//! through link A→B, and B reaches A only through link B→A; cutting the four links of member
//! F (both directions, to both peers) leaves F alone with its clients. ZooKeeper checks
//! nothing that such differing configs would trip: the quorum verifiers all have version 0
//! (static configs), so neither the election's notifications nor the leader's NEWLEADER
//! packet make a member adopt another's view (and with reconfig disabled, the default, a
//! member does not even store it).
//!
//! An observer's `server.N` line ends in `:observer` in every member's config, and its own
//! config adds `peerType=observer` (where the two disagree, ZooKeeper warns and goes by the
//! line): a voter that took the observer for a voter would count it towards its quorum.
//!
//! # Observers that follow a follower
//!
//! With `observerMasterPort` set (ZooKeeper 3.6+), a follower serves observers on that port
//! (`Follower.followLeader` starts an `ObserverMaster`; a leader starts none), and an observer
//! connects to no leader at all: it tries the voters of its config in turn, each at *its own*
//! `observerMasterPort` on that voter's address (`QuorumPeer.updateObserverMasterList`). On
//! one loopback address every voter would have to listen on the same port, so
//! [`QuorumEnsemble::start_observing_a_follower`] gives each voter a real port of its own and
//! the observer, as its `observerMasterPort`, a third port on its link to member 0, which
//! forwards to member 0's real one: whichever voter the observer picks, it reaches member 0,
//! which is a follower (a fresh election never makes the lowest id lead, and the tests that
//! use this cut no voter). A cut of the observer cuts that port with the rest of the link.
//!
//! A link is one [`Proxy`] with two ports, the peer's quorum port and its election port;
//! `blackhole`/`heal` on it act on both. The election port has one more hop in front of the
//! proxy, an [`ElectionRewriter`], for the reason below.
//!
//! # The election's call-back
//!
//! ZooKeeper's election keeps one connection per pair of servers, the one opened by the
//! server with the higher id. When a lower-id server A connects to B, B closes that connection
//! and connects back to A, not at the address B's config gives for A but at the election
//! address A announced in its first message (`QuorumCnxManager.handleConnection`). A
//! announces its real port, so B's call-back would bypass link B→A, and a cut of B→A would not
//! cut it. The rewriter therefore edits that first message on its way from A to B, announcing
//! instead the port of link B→A, which is where B's config says A is anyway.
//!
//! The first message (`QuorumCnxManager.startConnection`/`InitialMessage.parse`, 3.5 to 3.8)
//! is: the protocol version as a big-endian i64 (-65536 for V1, one address; -65535 for V2,
//! several joined with `|`), the sender's id (i64), the length of what follows (i32), and the
//! address(es) as `host:port` text. A non-negative first long is a pre-3.5 message carrying
//! only the id, passed on unchanged. The receiver reads the address with a single `read`, so
//! the rewritten message goes out in one write.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::ensemble::Ensemble;
use super::ports::pick_ports;
use super::proxy::Proxy;
use super::util::{lock, poll_until_blocking};

const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// `QuorumCnxManager.PROTOCOL_VERSION_V1` and `_V2`.
const PROTOCOL_V1: i64 = -65536;
const PROTOCOL_V2: i64 = -65535;
/// `QuorumCnxManager.maxBuffer`: the receiver rejects a longer address.
const MAX_ADDRESS_LEN: i32 = 2048;

/// One direction between two members: `from`'s connections to `to`'s quorum and election
/// ports.
struct Link {
    from: usize,
    to: usize,
    /// Port 0 forwards to `to`'s quorum port, port 1 to its election port.
    proxy: Proxy,
    /// In front of the proxy's election port.
    election: ElectionRewriter,
}

/// Three voting members (0 to 2), and any observers after them, with every server-to-server
/// link cuttable (see the module docs). Derefs to [`Ensemble`] for everything else (client
/// ports, modes, `mntr`, stop/start).
///
/// The sync window, `syncLimit × tickTime` (tickTime is 100 ms), is how long a follower or an
/// observer that hears nothing from its leader goes on serving before it gives up on it.
pub struct QuorumEnsemble {
    // Dropped first: the servers die before their links do.
    ensemble: Ensemble,
    links: Vec<Link>,
    /// The members' real quorum and election ports (and the voters' observer-master ports),
    /// which only the links connect to.
    server_ports: Vec<u16>,
    sync_window: Duration,
    /// The follower the observers follow, if they do not follow the leader.
    master: Option<usize>,
}

/// The voter whose `ObserverMaster` the observers reach, when they follow a follower (see the
/// module docs).
const MASTER: usize = 0;

/// The voting members; every member after them is an observer.
const VOTERS: usize = 3;

impl std::ops::Deref for QuorumEnsemble {
    type Target = Ensemble;
    fn deref(&self) -> &Ensemble {
        &self.ensemble
    }
}

impl std::ops::DerefMut for QuorumEnsemble {
    fn deref_mut(&mut self) -> &mut Ensemble {
        &mut self.ensemble
    }
}

impl QuorumEnsemble {
    /// Starts three servers with `syncLimit = sync_window / tickTime` and waits until all
    /// serve, one leads and both followers are synced with it.
    pub fn start(sync_window: Duration) -> QuorumEnsemble {
        QuorumEnsemble::start_with_observers(sync_window, 0)
    }

    /// [`QuorumEnsemble::start`] with `observers` more servers, members 3 on, which observe:
    /// they serve clients and forward what needs the leader, but do not vote. Waits until
    /// they too are synced with the leader.
    pub fn start_with_observers(sync_window: Duration, observers: usize) -> QuorumEnsemble {
        QuorumEnsemble::start_laid(sync_window, observers, false)
    }

    /// [`QuorumEnsemble::start`] with one observer, member 3, that follows the follower
    /// member 0 through its `ObserverMaster` instead of the leader (see the module docs).
    /// Waits until member 0 reports it synced.
    pub fn start_observing_a_follower(sync_window: Duration) -> QuorumEnsemble {
        QuorumEnsemble::start_laid(sync_window, 1, true)
    }

    fn start_laid(sync_window: Duration, observers: usize, via_follower: bool) -> QuorumEnsemble {
        let sync_limit = (sync_window.as_millis() / 100).max(1) as u32;
        let n = VOTERS + observers;
        let (ensemble, (links, real)) = Ensemble::start_with(n, sync_limit, |real| {
            let masters = via_follower.then(|| pick_ports(VOTERS));
            let (links, lines) = lay_links(real, VOTERS, masters.as_deref());
            let ports: Vec<u16> = real
                .iter()
                .flat_map(|&(q, e)| [q, e])
                .chain(masters.into_iter().flatten())
                .collect();
            (lines, (links, ports))
        });
        let q = QuorumEnsemble {
            ensemble,
            links,
            server_ports: real,
            sync_window: Duration::from_millis(100 * u64::from(sync_limit)),
            master: via_follower.then_some(MASTER),
        };
        // A panic here prints the servers' log tails (see `Ensemble`'s drop).
        q.wait_whole(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{e}"));
        q
    }

    /// `syncLimit × tickTime`.
    pub fn sync_window(&self) -> Duration {
        self.sync_window
    }

    /// Cuts member `i` off from every peer, both ways, quorum and election links alike,
    /// silently (see [`Proxy::blackhole`]). Its client port stays reachable.
    pub fn isolate(&self, i: usize) {
        for link in self.links.iter().filter(|l| l.from == i || l.to == i) {
            link.proxy.blackhole();
        }
    }

    /// Restores every link; what was held is delivered.
    pub fn heal_links(&self) {
        for link in &self.links {
            link.proxy.heal();
        }
    }

    /// Established connections from a server straight to another's real quorum or election
    /// port, around the links, as "pid local-port -> port" (read from /proc). There should be
    /// none: only the links' proxies, in this process, connect to those ports.
    pub fn connections_around_links(&self) -> Vec<String> {
        let real: HashSet<u16> = self.server_ports.iter().copied().collect();
        let port_of = |hex: &str| {
            hex.rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
        };
        let table = fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        let mut found = Vec::new();
        for pid in (0..self.ensemble.member_count()).filter_map(|i| self.ensemble.pid(i)) {
            let inodes: HashSet<String> = fs::read_dir(format!("/proc/{pid}/fd"))
                .into_iter()
                .flatten()
                .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
                .filter_map(|target| {
                    let t = target.to_string_lossy();
                    Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
                })
                .collect();
            for row in table.lines().skip(1) {
                let f: Vec<&str> = row.split_whitespace().collect();
                let (Some(local), Some(remote), Some(&"01"), Some(inode)) =
                    (f.get(1), f.get(2), f.get(3), f.get(9))
                else {
                    continue; // not an established connection
                };
                if let (Some(l), Some(r)) = (port_of(local), port_of(remote))
                    && inodes.contains(*inode)
                    && real.contains(&r)
                {
                    found.push(format!("java {pid} 127.0.0.1:{l} -> 127.0.0.1:{r}"));
                }
            }
        }
        found
    }

    /// The observers' member indices.
    pub fn observers(&self) -> std::ops::Range<usize> {
        VOTERS..self.ensemble.member_count()
    }

    /// The voting members' indices.
    pub fn voters(&self) -> std::ops::Range<usize> {
        0..VOTERS
    }

    /// The follower the observers follow, if they do not follow the leader.
    pub fn observer_master(&self) -> Option<usize> {
        self.master
    }

    /// A member in `Mode: follower`, the first from `start` on (round robin), if any.
    pub fn follower_from(&self, start: usize) -> Option<usize> {
        let n = self.ensemble.member_count();
        (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| self.ensemble.mode(i).as_deref() == Some("follower"))
    }

    /// Waits until every member serves, one of them leads and reports all the others synced
    /// (`zk_synced_followers`, and `zk_synced_observers` if there are observers, in its
    /// `mntr`; the observers' master reports those when they follow a follower): the ensemble
    /// is whole again.
    pub fn wait_whole(&self, timeout: Duration) -> Result<(), String> {
        let n = self.ensemble.member_count();
        let observers = self.observers();
        let whole = poll_until_blocking(timeout, || {
            let Some(leader) = self.ensemble.leader() else {
                return false;
            };
            let synced = |member: usize, key: &str| {
                self.ensemble
                    .mntr(member)
                    .get(key)
                    .and_then(|v| v.parse::<usize>().ok())
            };
            let master = self.master.unwrap_or(leader);
            synced(leader, "zk_synced_followers") == Some(VOTERS - 1)
                && (observers.is_empty()
                    || synced(master, "zk_synced_observers") == Some(observers.len()))
                && (0..n).all(|i| {
                    let role = if observers.contains(&i) {
                        "observer"
                    } else {
                        "follower"
                    };
                    i == leader || self.ensemble.mode(i).as_deref() == Some(role)
                })
        });
        if whole {
            Ok(())
        } else {
            let modes: Vec<Option<String>> = (0..n).map(|i| self.ensemble.mode(i)).collect();
            Err(format!(
                "the ensemble was not whole again within {timeout:?} (modes {modes:?})"
            ))
        }
    }
}

/// The links between every two of the members whose real (quorum, election) ports are `real`,
/// and each member's `server.N` lines: its own real ports, and for each peer the ports of the
/// link from it to that peer. Members from `voters` on are observers. With `masters`, the
/// voters' real observer-master ports, each voter listens on its own, and the observers reach
/// [`MASTER`]'s through a third port on their links to it (see the module docs).
fn lay_links(
    real: &[(u16, u16)],
    voters: usize,
    masters: Option<&[u16]>,
) -> (Vec<Link>, Vec<String>) {
    let n = real.len();
    let pairs: Vec<(usize, usize)> = (0..n)
        .flat_map(|a| (0..n).filter(move |&b| b != a).map(move |b| (a, b)))
        .collect();
    let index = |from: usize, to: usize| {
        pairs
            .iter()
            .position(|&p| p == (from, to))
            .expect("a link between two members")
    };
    // Every rewriter is bound first: each announces the port of the link the other way.
    let listeners: Vec<TcpListener> = pairs
        .iter()
        .map(|_| TcpListener::bind((LOCALHOST, 0)).expect("rewriter: bind 127.0.0.1:0"))
        .collect();
    let rewriter_ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().expect("rewriter: local_addr").port())
        .collect();
    let links: Vec<Link> = pairs
        .iter()
        .zip(listeners)
        .map(|(&(from, to), listener)| {
            let mut upstreams = vec![real[to].0, real[to].1];
            if let Some(masters) = masters
                && from >= voters
                && to == MASTER
            {
                upstreams.push(masters[MASTER]);
            }
            let proxy = Proxy::start(&upstreams);
            let election =
                ElectionRewriter::start(listener, proxy.port(1), rewriter_ports[index(to, from)]);
            Link {
                from,
                to,
                proxy,
                election,
            }
        })
        .collect();
    let role = |j: usize| if j >= voters { ":observer" } else { "" };
    let lines = (0..n)
        .map(|i| {
            let own = if i >= voters {
                let master = masters.map(|_| links[index(i, MASTER)].proxy.port(2));
                let master = master.map(|p| format!("observerMasterPort={p}\n"));
                format!("peerType=observer\n{}", master.unwrap_or_default())
            } else {
                let master = masters.map(|m| format!("observerMasterPort={}\n", m[i]));
                master.unwrap_or_default()
            };
            let servers: String = (0..n)
                .map(|j| {
                    let (quorum, election) = if j == i {
                        real[i]
                    } else {
                        let link = &links[index(i, j)];
                        (link.proxy.port(0), link.election.port)
                    };
                    format!(
                        "server.{}=127.0.0.1:{quorum}:{election}{}\n",
                        j + 1,
                        role(j)
                    )
                })
                .collect();
            format!("{own}{servers}")
        })
        .collect();
    (links, lines)
}

// ---------------------------------------------------------------------------------------
// The election rewriter
// ---------------------------------------------------------------------------------------

/// Forwards connections from one member to a link's election port, rewriting the address
/// announced in the first message (see the module docs) to `127.0.0.1:announce`.
pub struct ElectionRewriter {
    port: u16,
    shared: Arc<RewriterShared>,
    acceptor: Option<thread::JoinHandle<()>>,
}

struct RewriterShared {
    shutdown: AtomicBool,
    /// Both sockets of every open connection, to close them on drop.
    conns: Mutex<HashMap<u64, [TcpStream; 2]>>,
    next_id: AtomicU64,
}

impl ElectionRewriter {
    fn start(listener: TcpListener, upstream: u16, announce: u16) -> ElectionRewriter {
        let port = listener.local_addr().expect("rewriter: local_addr").port();
        let shared = Arc::new(RewriterShared {
            shutdown: AtomicBool::new(false),
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        });
        let acceptor = {
            let shared = shared.clone();
            thread::Builder::new()
                .name(format!("election-rewriter-{port}"))
                .spawn(move || {
                    for stream in listener.incoming() {
                        if shared.shutdown.load(Ordering::SeqCst) {
                            return;
                        }
                        let Ok(client) = stream else {
                            thread::sleep(Duration::from_millis(10));
                            continue;
                        };
                        let shared = shared.clone();
                        let _ = thread::Builder::new()
                            .name(format!("election-rewrite-{port}"))
                            .spawn(move || rewrite_connection(client, upstream, announce, &shared));
                    }
                })
                .expect("spawn rewriter thread")
        };
        ElectionRewriter {
            port,
            shared,
            acceptor: Some(acceptor),
        }
    }
}

impl Drop for ElectionRewriter {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        for [a, b] in lock(&self.shared.conns).drain().map(|(_, c)| c) {
            let _ = a.shutdown(Shutdown::Both);
            let _ = b.shutdown(Shutdown::Both);
        }
        let _ = TcpStream::connect_timeout(
            &SocketAddr::from((LOCALHOST, self.port)),
            Duration::from_millis(200),
        );
        if let Some(handle) = self.acceptor.take() {
            let _ = handle.join();
        }
    }
}

/// Reads the first message from `client` and returns it rewritten to announce
/// `127.0.0.1:announce`; anything not recognised is returned as read.
fn rewrite_initial_message(client: &mut TcpStream, announce: u16) -> std::io::Result<Vec<u8>> {
    let mut version = [0u8; 8];
    client.read_exact(&mut version)?;
    let mut out = version.to_vec();
    let protocol = i64::from_be_bytes(version);
    if protocol != PROTOCOL_V1 && protocol != PROTOCOL_V2 {
        return Ok(out); // a bare server id (pre-3.5), or not ours to understand
    }
    let mut sid = [0u8; 8];
    client.read_exact(&mut sid)?;
    out.extend_from_slice(&sid);
    let mut len = [0u8; 4];
    client.read_exact(&mut len)?;
    let len = i32::from_be_bytes(len);
    if len <= 0 || len > MAX_ADDRESS_LEN {
        out.extend_from_slice(&len.to_be_bytes()); // the receiver will reject it as it is
        return Ok(out);
    }
    let mut address = vec![0u8; len as usize];
    client.read_exact(&mut address)?;
    let announced = format!("127.0.0.1:{announce}");
    out.extend_from_slice(&(announced.len() as i32).to_be_bytes());
    out.extend_from_slice(announced.as_bytes());
    Ok(out)
}

fn rewrite_connection(
    mut client: TcpStream,
    upstream: u16,
    announce: u16,
    shared: &RewriterShared,
) {
    let Ok(mut server) = TcpStream::connect((LOCALHOST, upstream)) else {
        return;
    };
    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    lock(&shared.conns).insert(id, [c2, s2]);
    if shared.shutdown.load(Ordering::SeqCst) {
        lock(&shared.conns).remove(&id);
        return;
    }
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    if let Ok(first) = rewrite_initial_message(&mut client, announce)
        && server.write_all(&first).is_ok()
        && let (Ok(from), Ok(to)) = (server.try_clone(), client.try_clone())
    {
        let back = thread::Builder::new()
            .name(format!("election-back-{upstream}"))
            .spawn(move || copy_then_close(from, to));
        copy_then_close(client, server);
        if let Ok(handle) = back {
            let _ = handle.join();
        }
    }
    if let Some([a, b]) = lock(&shared.conns).remove(&id) {
        let _ = a.shutdown(Shutdown::Both);
        let _ = b.shutdown(Shutdown::Both);
    }
}

/// Copies until EOF or an error on either side, then closes both sockets (as [`Proxy`] does).
fn copy_then_close(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
