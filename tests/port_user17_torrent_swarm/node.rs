//! A peer of the swarm (`Node`): its file, its picker, its listener and its connections,
//! each a task (`conn.rs`) that talks to the others through the shared state and a
//! command channel; its settings and its counters.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::rc::{Rc, Weak};
use std::time::Duration;

use overlap::net::{TcpListener, TcpStream};
use overlap::sync::{mpsc, watch};
use overlap::task::JoinSet;

use super::conn;
use super::picker::{ConnId, Picker};
use super::storage::Storage;
use super::wire::{Block, Meta};

#[derive(Clone, Debug)]
pub struct Config {
    /// Requests outstanding at one peer at most (the pipeline's depth).
    pub max_outstanding: usize,
    /// A request unanswered this long: the peer is dropped and its requests go elsewhere.
    pub request_timeout: Duration,
    /// A connection that has not handshaken in this long is closed.
    pub handshake_timeout: Duration,
    /// Connections at most; more are closed at once.
    pub max_peers: usize,
    /// The picker's tie-break seed.
    pub seed: u64,
    pub endgame: bool,
    /// A lying peer (for the tests): every block it uploads has its first byte flipped.
    pub corrupt_uploads: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_outstanding: 4,
            request_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            max_peers: 8,
            seed: 1,
            endgame: true,
            corrupt_uploads: false,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Blocks received and written, each once.
    pub blocks_in: u64,
    /// Blocks received already written (endgame copies) or cancelled.
    pub wasted: u64,
    /// Blocks uploaded, and requests cancelled before they were.
    pub blocks_out: u64,
    pub uploads_cancelled: u64,
    pub requests_sent: u64,
    /// Of `requests_sent`, endgame duplicates.
    pub endgame_requests: u64,
    pub cancels_sent: u64,
    pub hash_fails: u64,
    /// Requests handed back to the picker when their connection ended (or timed out).
    pub released: u64,
    /// Requests that timed out.
    pub timeouts: u64,
    /// Connections refused: wrong info-hash, a banned peer, ourselves, over `max_peers`.
    pub refused: u64,
}

/// What one connection task is told by the others.
#[derive(Debug)]
pub enum Cmd {
    Have(u32),
    Cancel(Block),
    /// Blocks were released elsewhere: look for something to ask for.
    Refill,
    /// A piece this peer sent failed its checksum.
    Ban,
}

pub struct Peer {
    pub tx: mpsc::UnboundedSender<Cmd>,
    pub peer_id: u64,
}

pub struct Shared {
    pub meta: Rc<Meta>,
    pub storage: Storage,
    pub peer_id: u64,
    pub cfg: Config,
    pub picker: RefCell<Picker>,
    pub peers: RefCell<HashMap<ConnId, Peer>>,
    pub banned: RefCell<HashSet<u64>>,
    pub stats: RefCell<Stats>,
    /// Why each connection ended, in order (`End::describe`).
    pub ends: RefCell<Vec<String>>,
    pub next_conn: Cell<ConnId>,
    pub complete: watch::Sender<bool>,
    tasks: RefCell<JoinSet<()>>,
}

impl Shared {
    pub fn stat(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut self.stats.borrow_mut())
    }

    /// Tells every connection but `except`.
    pub fn broadcast(&self, except: Option<ConnId>, cmd: impl Fn() -> Cmd) {
        for (&id, p) in self.peers.borrow().iter() {
            if Some(id) != except {
                let _ = p.tx.send(cmd());
            }
        }
    }

    pub fn tell(&self, conn: ConnId, cmd: Cmd) {
        if let Some(p) = self.peers.borrow().get(&conn) {
            let _ = p.tx.send(cmd);
        }
    }

    /// Runs a connection (made by us or accepted) as a task of the node.
    pub fn spawn_conn(self: &Rc<Self>, stream: TcpStream) {
        let me = self.clone();
        self.tasks.borrow_mut().spawn(conn::run(me, stream));
    }
}

/// A peer of the swarm, with its listener on loopback.
pub struct Node {
    pub addr: SocketAddr,
    shared: Rc<Shared>,
    complete: watch::Receiver<bool>,
}

impl Node {
    /// Opens `path` (checking what it holds), listens on `host` port 0 and accepts peers.
    pub async fn start(
        path: &Path,
        meta: Meta,
        peer_id: u64,
        host: &str,
        cfg: Config,
    ) -> io::Result<Node> {
        let meta = Rc::new(meta);
        let (storage, have) = Storage::open(path, meta.clone()).await?;
        let mut picker = Picker::new(meta.clone(), have, cfg.seed);
        picker.endgame_enabled = cfg.endgame;
        let (complete, complete_rx) = watch::channel(picker.complete());
        let listener = TcpListener::bind((host, 0)).await?;
        let shared = Rc::new(Shared {
            meta,
            storage,
            peer_id,
            cfg,
            picker: RefCell::new(picker),
            peers: RefCell::new(HashMap::new()),
            banned: RefCell::new(HashSet::new()),
            stats: RefCell::new(Stats::default()),
            ends: RefCell::new(Vec::new()),
            next_conn: Cell::new(1),
            complete,
            tasks: RefCell::new(JoinSet::new()),
        });
        let addr = listener.local_addr()?;
        let weak = Rc::downgrade(&shared);
        shared.tasks.borrow_mut().spawn(accept_loop(weak, listener));
        Ok(Node {
            addr,
            shared,
            complete: complete_rx,
        })
    }

    /// Connects to the peer listening at `addr` (the handshake runs in the new task).
    pub async fn connect(&self, addr: SocketAddr) -> io::Result<()> {
        let stream = TcpStream::connect(addr).await?;
        self.shared.spawn_conn(stream);
        Ok(())
    }

    pub async fn wait_complete(&mut self) {
        self.complete.wait_for(|&c| c).await.unwrap();
    }

    pub fn stats(&self) -> Stats {
        self.shared.stats.borrow().clone()
    }

    pub fn have(&self) -> Vec<bool> {
        self.shared.picker.borrow().have.clone()
    }

    /// Connections past their handshake.
    pub fn peers(&self) -> usize {
        self.shared.peers.borrow().len()
    }

    pub fn ends(&self) -> Vec<String> {
        self.shared.ends.borrow().clone()
    }

    pub fn banned(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.shared.banned.borrow().iter().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// The file's fd, to check that it is closed after the shutdown.
    pub fn file_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.shared.storage.file.as_raw_fd()
    }

    /// Stops every task of the node (listener and connections, mid-message or not) and
    /// waits for them; the file closes with the last of them. Gives a handle that tells
    /// whether anything of the node is still alive.
    pub async fn shutdown(self) -> Weak<Shared> {
        let weak = Rc::downgrade(&self.shared);
        let mut tasks = std::mem::take(&mut *self.shared.tasks.borrow_mut());
        tasks.shutdown().await;
        weak
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // The tasks hold the shared state, which holds them: a node dropped without its
        // shutdown stops them here.
        self.shared.tasks.borrow_mut().abort_all();
    }
}

async fn accept_loop(shared: Weak<Shared>, listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of fds, say: wait for some to close rather than spin.
            overlap::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if shared.peers.borrow().len() >= shared.cfg.max_peers {
            shared.stat(|s| s.refused += 1);
            shared.ends.borrow_mut().push("refused: full".to_string());
            continue;
        }
        shared.spawn_conn(stream);
    }
}
