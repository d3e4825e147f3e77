//! The peers' transport: the address book, the fault layer (per-link cut, drop and delay,
//! applied to each RPC and to its reply, never to real packets), the task sending one
//! node's RPCs to one peer over a `Framed` TCP connection, and the listener answering them.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::codec::Framed;
use overlap::net::{TcpListener, TcpStream};
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;
use overlap::sync::{mpsc, oneshot};
use overlap::task::JoinSet;
use overlap::time;

use crate::raft::{Event, Status};
use crate::support::Rng;
use crate::wire::{Frame, RaftCodec, Request, Response};

#[derive(Clone, Copy, Debug, Default)]
pub struct Link {
    pub cut: bool,
    /// Percent of messages dropped.
    pub drop_pct: u8,
    pub delay: Duration,
}

/// The address book and the fault flags, shared by every node of a cluster.
pub struct Net {
    links: RefCell<HashMap<(u8, u8), Link>>,
    rng: RefCell<Rng>,
    peer_addrs: RefCell<HashMap<u8, SocketAddr>>,
    client_addrs: RefCell<HashMap<u8, SocketAddr>>,
    pub dropped: Cell<u64>,
}

impl Net {
    pub fn new(seed: u64) -> Net {
        Net {
            links: RefCell::default(),
            rng: RefCell::new(Rng(seed | 1)),
            peer_addrs: RefCell::default(),
            client_addrs: RefCell::default(),
            dropped: Cell::new(0),
        }
    }

    pub fn set_link(&self, from: u8, to: u8, link: Link) {
        self.links.borrow_mut().insert((from, to), link);
    }

    /// Cuts every link between `side` and the other nodes of `0..n`, both ways.
    pub fn partition(&self, n: u8, side: &[u8]) {
        for a in side {
            for b in (0..n).filter(|b| !side.contains(b)) {
                for (x, y) in [(*a, b), (b, *a)] {
                    self.links.borrow_mut().entry((x, y)).or_default().cut = true;
                }
            }
        }
    }

    /// Every link whole again, with no drops or delays.
    pub fn heal(&self) {
        self.links.borrow_mut().clear();
    }

    /// Whether a message from `from` to `to` gets through now, and after what delay.
    pub fn passes(&self, from: u8, to: u8) -> Option<Duration> {
        let link = self
            .links
            .borrow()
            .get(&(from, to))
            .copied()
            .unwrap_or_default();
        let lost = link.cut
            || (link.drop_pct > 0 && self.rng.borrow_mut().below(100) < link.drop_pct as usize);
        if lost {
            self.dropped.set(self.dropped.get() + 1);
            return None;
        }
        Some(link.delay)
    }

    pub fn set_addrs(&self, id: u8, peer: Option<SocketAddr>, client: Option<SocketAddr>) {
        for (book, addr) in [(&self.peer_addrs, peer), (&self.client_addrs, client)] {
            match addr {
                Some(a) => book.borrow_mut().insert(id, a),
                None => book.borrow_mut().remove(&id),
            };
        }
    }

    pub fn peer_addr(&self, id: u8) -> Option<SocketAddr> {
        self.peer_addrs.borrow().get(&id).copied()
    }

    pub fn client_addr(&self, id: u8) -> Option<SocketAddr> {
        self.client_addrs.borrow().get(&id).copied()
    }
}

type Conn = Framed<TcpStream, RaftCodec>;

/// Sends `me`'s RPCs to `to`, one at a time, each answered by an `Event::Reply` (with
/// `None` when the fault layer dropped it, the peer was unreachable, or it timed out).
pub async fn peer_task(
    me: u8,
    to: u8,
    net: Rc<Net>,
    mut rx: mpsc::UnboundedReceiver<(u64, Request)>,
    events: mpsc::UnboundedSender<Event>,
    rpc_timeout: Duration,
) {
    let mut conn: Option<Conn> = None;
    while let Some((term, req)) = rx.recv().await {
        let resp = match time::timeout(rpc_timeout, exchange(me, to, &net, &mut conn, req)).await {
            Ok(r) => r,
            Err(_) => {
                // A reply may still come: the connection would be out of step.
                conn = None;
                None
            }
        };
        if events
            .send(Event::Reply {
                peer: to,
                term,
                resp,
            })
            .is_err()
        {
            return;
        }
    }
}

async fn exchange(
    me: u8,
    to: u8,
    net: &Net,
    conn: &mut Option<Conn>,
    req: Request,
) -> Option<Response> {
    let delay = net.passes(me, to)?;
    time::sleep(delay).await;
    if conn.is_none() {
        let stream = TcpStream::connect(net.peer_addr(to)?).await.ok()?;
        stream.set_nodelay(true).ok()?;
        *conn = Some(Framed::new(stream, RaftCodec));
    }
    let c = conn.as_mut().unwrap();
    let got = match c.send(Frame::Req(req)).await {
        Ok(()) => c.next().await,
        Err(_) => None,
    };
    let Some(Ok(Frame::Resp(resp))) = got else {
        *conn = None;
        return None;
    };
    let delay = net.passes(to, me)?;
    time::sleep(delay).await;
    Some(resp)
}

/// Accepts peers' connections, each answered by its own task until it closes or sends
/// something malformed (which closes only that connection, counted in the status).
pub async fn serve_peers(
    listener: TcpListener,
    events: mpsc::UnboundedSender<Event>,
    status: Rc<RefCell<Status>>,
) {
    let mut conns = JoinSet::new();
    loop {
        overlap::select! {
            r = listener.accept() => {
                let Ok((stream, _)) = r else { continue };
                let _ = stream.set_nodelay(true);
                conns.spawn(serve_conn(stream, events.clone(), status.clone()));
            }
            Some(_) = conns.join_next() => {}
        }
    }
}

async fn serve_conn(
    stream: TcpStream,
    events: mpsc::UnboundedSender<Event>,
    status: Rc<RefCell<Status>>,
) {
    let mut framed = Framed::new(stream, RaftCodec);
    while let Some(frame) = framed.next().await {
        let req = match frame {
            Ok(Frame::Req(req)) => req,
            Ok(Frame::Resp(_)) => {
                status.borrow_mut().malformed_frames += 1;
                return;
            }
            Err(e) => {
                // A bad frame, or one cut short by the peer going away: both counted.
                if e.kind() == std::io::ErrorKind::InvalidData
                    || e.kind() == std::io::ErrorKind::Other
                {
                    status.borrow_mut().malformed_frames += 1;
                }
                return;
            }
        };
        let (tx, rx) = oneshot::channel();
        if events.send(Event::Rpc(req, tx)).is_err() {
            return;
        }
        let Ok(resp) = rx.await else { return };
        if framed.send(Frame::Resp(resp)).await.is_err() {
            return;
        }
    }
}
