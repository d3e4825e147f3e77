//! One node: its files opened and replayed, its two listeners (peers on one, clients on
//! the other, both 127.0.0.1 port 0, published in the address book), the core task, one
//! sender task per peer; all in one `JoinSet`, so dropping the node is a crash: every
//! task and socket gone at once, nothing flushed that was not already synced.

use std::cell::RefCell;
use std::io;
use std::path::Path;
use std::rc::Rc;

use overlap::codec::{Framed, LinesCodec};
use overlap::net::{TcpListener, TcpStream};
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;
use overlap::sync::{mpsc, oneshot};
use overlap::task::JoinSet;

use crate::raft::{Config, Event, History, Outcome, Raft, Status};
use crate::storage::Storage;
use crate::transport::{peer_task, serve_peers, Net};
use crate::wire::Command;

/// The longest client line taken.
pub const MAX_LINE: usize = 4096;

pub struct Node {
    pub id: u8,
    pub status: Rc<RefCell<Status>>,
    tasks: JoinSet<()>,
    net: Rc<Net>,
}

impl Node {
    pub async fn start(
        id: u8,
        n: u8,
        dir: &Path,
        net: Rc<Net>,
        cfg: Config,
        seed: u64,
        history: History,
    ) -> io::Result<Node> {
        let (store, loaded) = Storage::open(dir).await?;
        let peers = TcpListener::bind("127.0.0.1:0").await?;
        let clients = TcpListener::bind("127.0.0.1:0").await?;
        net.set_addrs(id, Some(peers.local_addr()?), Some(clients.local_addr()?));
        let status = Rc::new(RefCell::new(Status::default()));
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let mut tasks = JoinSet::new();
        let rpc_timeout = cfg.rpc_timeout;
        let mut raft = Raft::new(
            id,
            n,
            cfg,
            seed ^ id as u64,
            store,
            loaded,
            status.clone(),
            history,
        )?;
        raft.publish();
        for p in 0..n {
            if p == id {
                raft.peers.push(None);
                continue;
            }
            let (tx, rx) = mpsc::unbounded_channel();
            raft.peers.push(Some(tx));
            tasks.spawn(peer_task(
                id,
                p,
                net.clone(),
                rx,
                ev_tx.clone(),
                rpc_timeout,
            ));
        }
        tasks.spawn(async move {
            if let Err(e) = raft.run(ev_rx).await {
                panic!("node {id}'s storage failed: {e}");
            }
        });
        tasks.spawn(serve_peers(peers, ev_tx.clone(), status.clone()));
        tasks.spawn(serve_clients(clients, ev_tx));
        Ok(Node {
            id,
            status,
            tasks,
            net,
        })
    }

    /// Stops every task of the node and waits until they are gone.
    pub async fn shutdown(mut self) {
        self.tasks.shutdown().await;
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.net.set_addrs(self.id, None, None);
    }
}

async fn serve_clients(listener: TcpListener, events: mpsc::UnboundedSender<Event>) {
    let mut conns = JoinSet::new();
    loop {
        overlap::select! {
            r = listener.accept() => {
                let Ok((stream, _)) = r else { continue };
                conns.spawn(serve_client(stream, events.clone()));
            }
            Some(_) = conns.join_next() => {}
        }
    }
}

/// Parses one client line: `PUT key value` or `GET key`, keys without spaces.
pub fn parse_command(line: &str) -> Result<Command, String> {
    let mut parts = line.splitn(3, ' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("PUT"), Some(k), Some(v)) if !k.is_empty() => Ok(Command::Put(k.into(), v.into())),
        (Some("GET"), Some(k), None) if !k.is_empty() => Ok(Command::Get(k.into())),
        (Some("PUT" | "GET"), ..) => Err("usage: PUT key value | GET key".into()),
        (Some(other), ..) => Err(format!("unknown command {other:?}")),
        (None, ..) => Err("empty line".into()),
    }
}

async fn serve_client(stream: TcpStream, events: mpsc::UnboundedSender<Event>) {
    let mut lines = Framed::new(stream, LinesCodec::new_with_max_length(MAX_LINE));
    while let Some(line) = lines.next().await {
        let reply = match line {
            Ok(line) => match parse_command(&line) {
                Ok(cmd) => {
                    let (tx, rx) = oneshot::channel();
                    if events.send(Event::Client(cmd, tx)).is_err() {
                        return;
                    }
                    match rx.await {
                        Ok(Outcome::Done) => "OK".to_string(),
                        Ok(Outcome::Value(Some(v))) => format!("VALUE {v}"),
                        Ok(Outcome::Value(None)) => "NONE".to_string(),
                        Ok(Outcome::Redirect(Some(l))) => format!("REDIRECT {l}"),
                        Ok(Outcome::Redirect(None)) => "REDIRECT ?".to_string(),
                        Err(_) => return,
                    }
                }
                Err(e) => format!("ERR {e}"),
            },
            Err(e) => {
                // An overlong line: said, and the connection closed.
                let _ = lines.send(format!("ERR {e}")).await;
                return;
            }
        };
        if lines.send(reply).await.is_err() {
            return;
        }
    }
}
