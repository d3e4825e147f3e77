//! The delivery agent: its settings, the local users and their mailboxes (with the quota
//! usage each caches), and the accept loops, one on a Unix socket and one on TCP loopback,
//! each connection served by `session::serve` in a task of its own.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use overlap::net::{TcpListener, UnixListener};
use overlap::JoinHandle;

use crate::maildir::{host_name, Maildir};
use crate::session;

/// What the agent allows.
#[derive(Clone, Debug)]
pub struct Config {
    /// The name it gives in its greeting and its `LHLO` reply.
    pub name: String,
    /// The longest line, its CRLF included (RFC 5321: 1,000).
    pub line_limit: usize,
    /// The largest message, in bytes as received (unstuffed, CRLFs counted); advertised as
    /// `SIZE`.
    pub max_message: u64,
    /// Recipients per transaction; the next get `452`.
    pub max_rcpts: usize,
    /// For each command to arrive.
    pub command_timeout: Duration,
    /// For each line of a message body to arrive.
    pub data_timeout: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            name: "lmtp.test".into(),
            line_limit: 1000,
            max_message: 1 << 20,
            max_rcpts: 10,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(600),
        }
    }
}

/// One local user's mailbox.
pub struct Mailbox {
    pub maildir: Maildir,
    /// The bytes allowed in `cur/` + `new/`; `None`: no limit.
    pub quota: Option<u64>,
    /// The bytes held, read from disk once (`Maildir::size`) and then kept up to date by
    /// this agent's own deliveries (a `maildirsize` file's job, kept in memory).
    usage: Cell<Option<u64>>,
}

impl Mailbox {
    /// The bytes held, from the cache or, the first time, from the disk.
    pub async fn usage(&self) -> io::Result<u64> {
        if let Some(n) = self.usage.get() {
            return Ok(n);
        }
        let n = self.maildir.size().await?;
        // Another session may have filled the cache while this one read the directory
        // (and counted its own delivery since): its number is newer and stays.
        if self.usage.get().is_none() {
            self.usage.set(Some(n));
        }
        Ok(self.usage.get().unwrap_or(n))
    }

    /// Counts a delivery of `bytes`.
    pub fn delivered(&self, bytes: u64) {
        if let Some(n) = self.usage.get() {
            self.usage.set(Some(n + bytes));
        }
    }
}

/// The local users, by lower-cased local part.
#[derive(Default)]
pub struct Mailboxes {
    users: HashMap<String, Mailbox>,
}

impl Mailboxes {
    /// Adds `user`, whose Maildir is at `root` (made beforehand: see `Maildir::create`).
    pub fn add(&mut self, user: &str, root: &Path, quota: Option<u64>) {
        let mailbox = Mailbox {
            maildir: Maildir::at(root),
            quota,
            usage: Cell::new(None),
        };
        self.users.insert(user.to_ascii_lowercase(), mailbox);
    }

    /// The mailbox of `address` (`user@domain`; the domain is not checked, every address
    /// handed to an LMTP server is for this host).
    pub fn find(&self, address: &str) -> Option<(&str, &Mailbox)> {
        let local = address.split('@').next()?.to_ascii_lowercase();
        self.users
            .get_key_value(&local)
            .map(|(k, v)| (k.as_str(), v))
    }
}

/// What the sessions saw, for the tests.
#[derive(Default, Debug)]
pub struct Stats {
    pub sessions: Cell<u32>,
    pub live: Cell<u32>,
    /// Messages committed into a `new/`, one per recipient.
    pub delivered: Cell<u32>,
    pub timeouts: Cell<u32>,
    /// Sessions that ended with an error (the client vanished, a timeout).
    pub errors: RefCell<Vec<String>>,
}

/// What every session shares.
pub struct Shared {
    pub config: Config,
    pub mailboxes: Mailboxes,
    pub stats: Stats,
    /// The host part of the Maildir names.
    pub host: String,
}

/// A running agent: its two listeners' accept loops.
pub struct Server {
    pub shared: Rc<Shared>,
    pub tcp_addr: SocketAddr,
    pub unix_path: PathBuf,
    loops: Vec<JoinHandle<()>>,
}

impl Server {
    /// Listens on `127.0.0.1:<any>` and on the Unix socket `socket` (as Postfix's
    /// `lmtp:unix:` transport or Dovecot's `lmtp` socket would).
    pub async fn start(config: Config, mailboxes: Mailboxes, socket: &Path) -> io::Result<Server> {
        let shared = Rc::new(Shared {
            config,
            mailboxes,
            stats: Stats::default(),
            host: host_name().await,
        });
        let tcp = TcpListener::bind("127.0.0.1:0").await?;
        let tcp_addr = tcp.local_addr()?;
        let unix = UnixListener::bind(socket)?;
        let tcp_loop = overlap::spawn({
            let shared = shared.clone();
            async move {
                loop {
                    match tcp.accept().await {
                        Ok((stream, _)) => {
                            // Replies are small and go when a group is complete: no Nagle.
                            let _ = stream.set_nodelay(true);
                            overlap::spawn(session::serve(stream, shared.clone()));
                        }
                        Err(e) => accept_failed(&shared, e).await,
                    }
                }
            }
        });
        let unix_loop = overlap::spawn({
            let shared = shared.clone();
            async move {
                loop {
                    match unix.accept().await {
                        Ok((stream, _)) => {
                            overlap::spawn(session::serve(stream, shared.clone()));
                        }
                        Err(e) => accept_failed(&shared, e).await,
                    }
                }
            }
        });
        Ok(Server {
            shared,
            tcp_addr,
            unix_path: socket.to_path_buf(),
            loops: vec![tcp_loop, unix_loop],
        })
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }
}

impl Drop for Server {
    /// Stops accepting (the listeners close with their tasks); sessions already running go on.
    fn drop(&mut self) {
        for task in &self.loops {
            task.abort();
        }
    }
}

/// An accept that failed (`EMFILE`, a connection reset before it was taken): noted, and
/// retried after a pause rather than in a busy loop.
async fn accept_failed(shared: &Shared, e: io::Error) {
    shared
        .stats
        .errors
        .borrow_mut()
        .push(format!("accept: {e}"));
    overlap::time::sleep(Duration::from_millis(100)).await;
}
