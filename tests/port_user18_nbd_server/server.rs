//! The server: its exports (regular files, each read-write or read-only), settings and
//! counters, the accept loops (TCP and a Unix socket), one connection's life (the
//! handshake under a deadline, then the transmission phase), and the graceful shutdown:
//! no new connections nor requests, every request already read answered, each export
//! flushed, then every connection closed.

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use overlap::io::{AsyncRead, AsyncWrite};
use overlap::net::{TcpListener, UnixListener};
use overlap::sync::CancellationToken;
use overlap::task::JoinSet;

use super::handshake::{self, Chosen};
use super::transmission;

/// An export: a name and the regular file behind it.
#[derive(Debug, Clone)]
pub struct Export {
    pub name: String,
    pub path: PathBuf,
    pub read_only: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// The largest READ or WRITE (NBD_INFO_BLOCK_SIZE's maximum): larger gets EINVAL.
    pub max_payload: u32,
    /// A WRITE's payload up to this is read and dropped after its EINVAL; a longer one
    /// closes the connection (the length is taken for garbage, not a request).
    pub max_skip: u32,
    /// Requests read and not yet answered, per connection: at the limit, the server
    /// stops reading the socket.
    pub max_in_flight: usize,
    /// The longest option data accepted in the handshake; longer closes the connection.
    pub max_option: u32,
    /// From accept to the end of the handshake at most.
    pub handshake_timeout: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_payload: 32 << 20,
            max_skip: 128 << 20,
            max_in_flight: 16,
            max_option: 4096,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Counters across connections, for the tests.
#[derive(Default)]
pub struct Stats {
    pub connections: Cell<usize>,
    /// Request headers read, in every connection.
    pub requests: Cell<u64>,
    pub in_flight: Cell<usize>,
    pub peak_in_flight: Cell<usize>,
    /// WRITEs (and WRITE_ZEROES, TRIMs) whose data reached the file.
    pub writes_done: Cell<u64>,
    /// For each `sync_data` as it starts: how many writes were done then, and why it ran
    /// (`"flush"`, `"fua"`, `"shutdown"`).
    pub syncs: RefCell<Vec<(&'static str, u64)>>,
    /// How each finished connection ended, in order.
    pub ends: RefCell<Vec<End>>,
}

impl Stats {
    pub fn syncs_for(&self, why: &str) -> usize {
        self.syncs.borrow().iter().filter(|s| s.0 == why).count()
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Handshake: the client closed, or sent garbage we cannot go on from.
    HandshakeEof,
    BadClientFlags(u32),
    BadOptionMagic(u64),
    OptionTooLong(u32),
    /// NBD_OPT_EXPORT_NAME of an export there is none of (it has no way to say so).
    UnknownExport(String),
    Aborted,
    HandshakeTimeout,
    /// Transmission: NBD_CMD_DISC, after every request before it was answered.
    Disconnect,
    /// The client closed between requests.
    Eof,
    /// The client closed in the middle of a request.
    Truncated,
    BadMagic(u32),
    /// A WRITE longer than `max_skip`.
    AbsurdWrite(u32),
    /// The replies could not be written (the client went away).
    ReplyFailed,
    Shutdown,
    Io(String),
}

/// What every connection shares.
pub struct Shared {
    pub exports: RefCell<Vec<Export>>,
    pub cfg: Config,
    pub stats: Stats,
    /// Cancelled by `Server::shutdown`: stop reading requests.
    pub stop: CancellationToken,
}

impl Shared {
    pub fn export(&self, name: &str) -> Option<Export> {
        let exports = self.exports.borrow();
        exports.iter().find(|e| e.name == name).cloned()
    }

    pub fn end(&self, end: End) {
        self.stats.ends.borrow_mut().push(end);
    }
}

pub struct Server {
    pub shared: Rc<Shared>,
    connections: Rc<RefCell<JoinSet<()>>>,
    listeners: JoinSet<()>,
}

impl Server {
    pub fn new(cfg: Config) -> Server {
        Server {
            shared: Rc::new(Shared {
                exports: RefCell::default(),
                cfg,
                stats: Stats::default(),
                stop: CancellationToken::new(),
            }),
            connections: Rc::default(),
            listeners: JoinSet::new(),
        }
    }

    pub fn add_export(&self, name: &str, path: &Path, read_only: bool) {
        self.shared.exports.borrow_mut().push(Export {
            name: name.into(),
            path: path.into(),
            read_only,
        });
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    pub fn serve_tcp(&mut self, listener: TcpListener) {
        let (shared, conns) = (self.shared.clone(), self.connections.clone());
        self.listeners.spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let _ = s.set_nodelay(true);
                conns.borrow_mut().spawn(connection(s, shared.clone()));
            }
        });
    }

    pub fn serve_unix(&mut self, listener: UnixListener) {
        let (shared, conns) = (self.shared.clone(), self.connections.clone());
        self.listeners.spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                conns.borrow_mut().spawn(connection(s, shared.clone()));
            }
        });
    }

    /// Stops accepting, stops every connection reading requests, lets the requests
    /// already read finish and their replies go out, flushes each connection's export,
    /// and closes the connections (a handshake still going on is cut off).
    pub async fn shutdown(mut self) {
        self.listeners.shutdown().await;
        self.shared.stop.cancel();
        let mut conns = std::mem::take(&mut *self.connections.borrow_mut());
        while conns.join_next().await.is_some() {}
    }
}

/// Counts an open connection until dropped (an aborted one too).
struct Open(Rc<Shared>);

impl Drop for Open {
    fn drop(&mut self) {
        let s = &self.0.stats;
        s.connections.set(s.connections.get() - 1);
    }
}

async fn connection<S>(mut stream: S, shared: Rc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let stats = &shared.stats;
    stats.connections.set(stats.connections.get() + 1);
    let _open = Open(shared.clone());
    let limit = shared.cfg.handshake_timeout;
    let handshake = overlap::time::timeout(limit, handshake::negotiate(&mut stream, &shared));
    let chosen = match shared.stop.run_until_cancelled(handshake).await {
        None => return shared.end(End::Shutdown),
        Some(Err(_elapsed)) => return shared.end(End::HandshakeTimeout),
        Some(Ok(Err(end))) => return shared.end(end),
        Some(Ok(Ok(chosen))) => chosen,
    };
    let Chosen { file, size, export } = chosen;
    let end = transmission::serve(stream, file, size, export.read_only, &shared).await;
    shared.end(end);
}
