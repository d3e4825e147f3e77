//! One node's tasks: the core (election timer, heartbeats, client requests, vote fan-out),
//! the listener and a task per inbound connection, and a replication task per peer, all
//! in one `JoinSet` that dies with the node.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use overlap::codec::{length_delimited, Framed, LengthDelimitedCodec};
use overlap::net::{TcpListener, TcpStream};
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;
use overlap::sync::{mpsc, oneshot, watch, Mutex, Notify};
use overlap::task::JoinSet;
use overlap::time::{self, MissedTickBehavior};

use crate::msg::{Entry, Msg};
use crate::raft::{Config, Raft, Role, Shared, Status};
use crate::storage::{Log, Recovery};

/// A client's write: committed at an index, or refused with a hint of who leads.
pub struct ClientReq {
    pub data: Vec<u8>,
    pub reply: Reply,
}

pub type Reply = oneshot::Sender<Result<u64, Option<u64>>>;

pub struct Node {
    pub id: u64,
    pub status: watch::Receiver<Status>,
    pub client: mpsc::Sender<ClientReq>,
    pub recovery: Recovery,
    tasks: JoinSet<()>,
    handles: Vec<overlap::task::AbortHandle>,
}

type Conn = Framed<TcpStream, LengthDelimitedCodec>;

/// The frames: a `u32` length, up to 16 MiB (an AppendEntries batch can be large).
fn framing() -> length_delimited::Builder {
    let mut b = LengthDelimitedCodec::builder();
    b.length_field_type::<u32>().max_frame_length(16 << 20);
    b
}

/// A peer's end of the wire: one connection, made on first use and again after a failure,
/// carrying one request and its answer at a time.
pub struct PeerClient {
    addr: SocketAddr,
    conn: Mutex<Option<Conn>>,
    timeout: Duration,
}

impl PeerClient {
    pub fn new(addr: SocketAddr, timeout: Duration) -> PeerClient {
        PeerClient {
            addr,
            conn: Mutex::new(None),
            timeout,
        }
    }

    /// Sends `msg`, waits for the answer. The connection is taken out while in use, so a
    /// call dropped half way (its timeout, an aborted fan-out) drops it rather than leave
    /// an answer in it for the next call.
    pub async fn call(&self, msg: &Msg) -> io::Result<Msg> {
        let mut slot = self.conn.lock().await;
        let exchange = async {
            let mut conn = match slot.take() {
                Some(conn) => conn,
                None => {
                    let stream = TcpStream::connect(self.addr).await?;
                    stream.set_nodelay(true)?;
                    framing().new_framed(stream)
                }
            };
            conn.send(msg.encode()).await?;
            let frame = conn
                .next()
                .await
                .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))??;
            io::Result::Ok((conn, Msg::decode(frame)?))
        };
        // `Elapsed` converts into a `TimedOut` io::Error, as tokio's does.
        let (conn, answer) = time::timeout(self.timeout, exchange).await??;
        *slot = Some(conn);
        Ok(answer)
    }
}

impl Node {
    /// Starts node `id` on `listener`, its log in `dir`; `peers` are the other nodes' ids
    /// and the addresses to reach them at.
    pub async fn start(
        id: u64,
        dir: &Path,
        listener: TcpListener,
        peers: Vec<(u64, SocketAddr)>,
        cfg: Config,
    ) -> io::Result<Node> {
        let (log, recovery) = Log::open(dir).await?;
        let raft = Raft {
            id,
            peers: peers.iter().map(|p| p.0).collect(),
            commit: log.base(),
            log,
            role: Role::Follower,
            leader: None,
            next: Default::default(),
            matched: Default::default(),
            votes: 0,
        };
        let shared = Rc::new(Shared::new(raft, cfg.clone()));
        shared.reset_election();
        let (client, client_rx) = mpsc::channel(256);
        let mut tasks = JoinSet::new();
        let clients: Vec<Rc<PeerClient>> = peers
            .iter()
            .map(|&(_, a)| Rc::new(PeerClient::new(a, cfg.rpc_timeout)))
            .collect();
        let mut handles = vec![
            tasks.spawn(serve(listener, shared.clone())),
            tasks.spawn(core(shared.clone(), client_rx, clients.clone())),
        ];
        for (i, (peer, _)) in peers.iter().enumerate() {
            let kick = shared.replicate[i].clone();
            handles.push(tasks.spawn(replicate(shared.clone(), *peer, clients[i].clone(), kick)));
        }
        Ok(Node {
            id,
            status: shared.status_tx.subscribe(),
            client,
            recovery,
            tasks,
            handles,
        })
    }

    /// Handles that abort every task of the node, for a test to kill it from inside
    /// another future (the node is dropped later).
    pub fn kill_switch(&self) -> Vec<overlap::task::AbortHandle> {
        self.handles.clone()
    }

    pub fn status(&self) -> Status {
        *self.status.borrow()
    }

    /// Stops every task of the node (its listener closes as its task's future is dropped,
    /// on the runtime's next turn).
    pub fn kill(mut self) {
        self.tasks.abort_all();
    }

    /// Stops every task of the node and waits until they are gone (tokio's
    /// `JoinSet::shutdown`), its listener closed.
    pub async fn stop(mut self) {
        self.tasks.shutdown().await;
    }
}

async fn serve(listener: TcpListener, shared: Rc<Shared>) {
    let mut conns = JoinSet::new();
    loop {
        overlap::select! {
            Some(_) = conns.join_next() => {}
            res = listener.accept() => match res {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    conns.spawn(answer(framing().new_framed(stream), shared.clone()));
                }
                Err(e) => eprintln!("accept: {e}"),
            },
        }
    }
}

/// One inbound connection: each request handled under the lock and answered in turn.
async fn answer(mut conn: Conn, shared: Rc<Shared>) {
    while let Some(Ok(frame)) = conn.next().await {
        let Ok(msg) = Msg::decode(frame) else { return };
        let mut r = shared.raft.lock().await;
        let reply = match msg {
            Msg::VoteReq { .. } => shared.on_vote_req(&mut r, msg).await,
            Msg::AppendReq { .. } => shared.on_append_req(&mut r, msg).await,
            _ => return,
        };
        drop(r);
        match reply {
            Ok(reply) if conn.send(reply.encode()).await.is_ok() => {}
            _ => return,
        }
    }
}

async fn core(
    shared: Rc<Shared>,
    mut client_rx: mpsc::Receiver<ClientReq>,
    clients: Vec<Rc<PeerClient>>,
) {
    let mut election = pin!(time::sleep_until(shared.deadline.get()));
    let mut heartbeat = time::interval(shared.cfg.heartbeat);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut commit_rx = shared.commit_tx.subscribe();
    let mut votes: JoinSet<(u64, io::Result<Msg>)> = JoinSet::new();
    let mut pending: BTreeMap<u64, (u64, Reply)> = BTreeMap::new();
    let mut batch = Vec::new();
    loop {
        let leading = shared.status_tx.borrow().role == Role::Leader;
        overlap::select! {
            biased;
            _ = shared.wake_core.notified() => {
                election.as_mut().reset(shared.deadline.get());
                if !leading {
                    pending.clear(); // their entries may yet be overwritten: let them retry
                }
            }
            Some(Ok((term, res))) = votes.join_next() => {
                let mut r = shared.raft.lock().await;
                if let Ok(Msg::VoteResp { term: t, granted }) = res {
                    if t > r.log.meta().term {
                        shared.step_down(&mut r, t).await.expect("disk");
                        shared.publish(&r);
                    } else if granted && r.role == Role::Candidate && r.log.meta().term == term {
                        r.votes += 1;
                        if r.votes >= r.quorum() {
                            votes.abort_all();
                            shared.become_leader(&mut r).await.expect("disk");
                        }
                    }
                }
            }
            n = client_rx.recv_many(&mut batch, 64) => {
                if n == 0 {
                    return;
                }
                let mut r = shared.raft.lock().await;
                if r.role != Role::Leader {
                    for req in batch.drain(..) {
                        let _ = req.reply.send(Err(r.leader));
                    }
                    continue;
                }
                let term = r.log.meta().term;
                let first = r.log.last_index() + 1;
                let entries = batch.iter().map(|q| Entry { term, data: q.data.clone() }).collect();
                r.log.append(entries).await.expect("disk");
                for (i, req) in batch.drain(..).enumerate() {
                    pending.insert(first + i as u64, (term, req.reply));
                }
                shared.advance_commit(&mut r).await.expect("disk");
                shared.kick_replicators();
            }
            Ok(()) = commit_rx.changed() => {
                let commit = *commit_rx.borrow_and_update();
                let r = shared.raft.lock().await;
                while let Some(entry) = pending.first_entry() {
                    if *entry.key() > commit {
                        break;
                    }
                    let (index, (term, reply)) = entry.remove_entry();
                    let _ = reply.send(if r.log.term_at(index) == Some(term) { Ok(index) } else { Err(None) });
                }
            }
            _ = &mut election, if !leading => {
                let mut r = shared.raft.lock().await;
                let term = r.log.meta().term + 1;
                let id = r.id;
                r.log.set_vote(term, Some(id)).await.expect("disk");
                r.role = Role::Candidate;
                r.leader = None;
                r.votes = 1;
                shared.reset_election();
                shared.publish(&r);
                let req = Msg::VoteReq { term, candidate: r.id, last_index: r.log.last_index(), last_term: r.log.last_term() };
                if r.peers.is_empty() {
                    shared.become_leader(&mut r).await.expect("disk");
                }
                votes.abort_all();
                for c in &clients {
                    let (c, req) = (c.clone(), req.clone());
                    votes.spawn(async move { (term, c.call(&req).await) });
                }
            }
            _ = heartbeat.tick(), if leading => shared.kick_replicators(),
        }
    }
}

/// Keeps one peer's log up with ours while we lead: woken by the core's `Notify` (new
/// entries, a heartbeat) and by the commit index moving (`watch`), sending until the peer
/// has everything, backing off after a failed call.
async fn replicate(shared: Rc<Shared>, peer: u64, client: Rc<PeerClient>, kick: Rc<Notify>) {
    let mut commit_rx = shared.commit_tx.subscribe();
    let mut backoff = shared.cfg.backoff_min;
    loop {
        overlap::select! {
            biased;
            _ = kick.notified() => {}
            Ok(()) = commit_rx.changed() => {}
        }
        loop {
            let (req, sent_term) = {
                let r = shared.raft.lock().await;
                match shared.append_req_for(&r, peer) {
                    Some(req) => (req, r.log.meta().term),
                    None => break,
                }
            };
            match client.call(&req).await {
                Ok(resp) => {
                    backoff = shared.cfg.backoff_min;
                    let mut r = shared.raft.lock().await;
                    match shared.on_append_resp(&mut r, peer, sent_term, resp).await {
                        Ok(true) => continue,
                        Ok(false) => break,
                        Err(e) => panic!("node {}: {e}", r.id),
                    }
                }
                Err(_) => {
                    time::sleep(backoff).await;
                    backoff = (backoff * 2).min(shared.cfg.backoff_max);
                    break;
                }
            }
        }
    }
}
