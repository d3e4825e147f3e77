//! The server: an accept loop on a `TcpListener`, a `Semaphore` bounding the sessions (one
//! past the limit is told 421 and closed), each session a task of its own (`session.rs`)
//! in the loop's `JoinSet`, reaped in its `select!`; the accept loop's `JoinHandle` aborted
//! when the `Server` is dropped, and with it the `JoinSet`, which aborts every session.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::AsyncWriteExt;
use overlap::net::{TcpListener, TcpStream};
use overlap::sync::Semaphore;
use overlap::task::{JoinHandle, JoinSet};

use super::session;

#[derive(Clone, Debug)]
pub struct Config {
    pub user: &'static str,
    pub password: &'static str,
    pub max_sessions: usize,
    /// A control connection with no command for this long is told 421 and closed.
    pub idle: Duration,
    /// How long a transfer command waits for the client to connect to its PASV port.
    pub data_accept: Duration,
    /// The longest command line taken; a longer one is answered 500.
    pub max_line: usize,
    /// RETR as the tokio version has it, `seek` then `io::copy`, instead of
    /// `File::send_to`.
    pub retr_by_copy: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            user: "alice",
            password: "wonderland",
            max_sessions: 64,
            idle: Duration::from_secs(300),
            data_accept: Duration::from_secs(30),
            max_line: 1024,
            retr_by_copy: false,
        }
    }
}

/// How a session ended, for the tests to look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// The client sent QUIT.
    Quit,
    /// The control connection ended (or failed) without a QUIT.
    Lost,
    /// No command within the idle time.
    Idle,
    /// Refused: the session limit was reached.
    Full,
}

/// What the sessions share.
pub struct Shared {
    pub config: Config,
    /// The canonical root every session is confined to.
    pub root: PathBuf,
    /// Sessions running now.
    pub live: Cell<usize>,
    /// Each ended connection's end, in order.
    pub ends: RefCell<Vec<End>>,
    /// Transfers that ended aborted (ABOR, or the client gone).
    pub aborted: Cell<usize>,
}

pub struct Server {
    pub addr: SocketAddr,
    pub shared: Rc<Shared>,
    acceptor: JoinHandle<()>,
}

impl Server {
    /// Serves `root` on `addr` (a loopback address with port 0).
    pub async fn start(addr: SocketAddr, root: PathBuf, config: Config) -> Server {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let root = overlap::fs::canonicalize(root).await.unwrap();
        let limit = Rc::new(Semaphore::new(config.max_sessions));
        let shared = Rc::new(Shared {
            config,
            root,
            live: Cell::new(0),
            ends: RefCell::new(Vec::new()),
            aborted: Cell::new(0),
        });
        let acceptor = overlap::spawn(accept_loop(listener, limit, Rc::clone(&shared)));
        Server {
            addr,
            shared,
            acceptor,
        }
    }

    pub fn live(&self) -> usize {
        self.shared.live.get()
    }

    pub fn ends(&self) -> Vec<End> {
        self.shared.ends.borrow().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

async fn accept_loop(listener: TcpListener, limit: Rc<Semaphore>, shared: Rc<Shared>) {
    let mut sessions = JoinSet::new();
    loop {
        let accepted = overlap::select! {
            accepted = listener.accept() => accepted,
            // Finished sessions reaped as they end; disabled while there are none.
            Some(_) = sessions.join_next() => continue,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            // EMFILE and the like: back off a little rather than spin.
            Err(_) => {
                overlap::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let shared = Rc::clone(&shared);
        match Rc::clone(&limit).try_acquire_owned() {
            Ok(permit) => {
                shared.live.set(shared.live.get() + 1);
                sessions.spawn(async move {
                    let end = session::run(stream, &shared).await;
                    shared.live.set(shared.live.get() - 1);
                    shared.ends.borrow_mut().push(end);
                    drop(permit);
                });
            }
            Err(_) => {
                sessions.spawn(async move {
                    refuse(stream).await;
                    shared.ends.borrow_mut().push(End::Full);
                });
            }
        }
    }
}

/// Tells a client past the limit so, and closes.
async fn refuse(mut stream: TcpStream) {
    let _ = stream
        .write_all(b"421 Too many connections, try again later.\r\n")
        .await;
    let _ = stream.close().await;
}
