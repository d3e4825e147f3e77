//! A mini-redis-shaped key-value server: a `Listener` accepting until a shutdown future
//! ends, a `Handler` per connection whose loop races reading a frame against a shutdown
//! broadcast, and a drain that waits for every handler through an mpsc channel whose
//! senders the handlers hold. Frames are lines: `SET key value`, `GET key`, `PING`, and
//! `HOLD`, which answers only once the test releases it (a request in flight at shutdown).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::rc::Rc;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream};
use overlap::sync::{broadcast, mpsc, Notify};

/// Shared by the handlers: the keys, and what `HOLD` waits on.
#[derive(Debug, Default)]
pub struct Db {
    pub entries: RefCell<HashMap<String, String>>,
    pub release: Notify,
    /// Set once a `HOLD` is waiting on `release`.
    pub holding: Cell<bool>,
}

/// Listens for the server's shutdown signal (mini-redis's `Shutdown`).
#[derive(Debug)]
struct Shutdown {
    is_shutdown: bool,
    notify: broadcast::Receiver<()>,
}

impl Shutdown {
    fn is_shutdown(&self) -> bool {
        self.is_shutdown
    }

    /// Cancel-safe: nothing is lost if this is dropped before the signal.
    async fn recv(&mut self) {
        if self.is_shutdown {
            return;
        }
        // Only one value is ever sent, or the sender is dropped: either way, shut down.
        let _ = self.notify.recv().await;
        self.is_shutdown = true;
    }
}

/// A connection reading newline-terminated frames into a buffer it keeps, so that a
/// `read_frame` dropped by a `select!` loses no bytes: the next call finds them.
#[derive(Debug)]
struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Connection {
    /// The next frame, or `None` once the peer closed at a frame boundary.
    async fn read_frame(&mut self) -> io::Result<Option<String>> {
        loop {
            if let Some(nl) = self.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=nl).collect();
                let text = String::from_utf8_lossy(&line[..nl]).into_owned();
                return Ok(Some(text));
            }
            let mut chunk = [0u8; 64];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return if self.buffer.is_empty() {
                    Ok(None)
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "connection reset by peer",
                    ))
                };
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }

    async fn write_frame(&mut self, reply: &str) -> io::Result<()> {
        self.stream.write_all(reply.as_bytes()).await?;
        self.stream.write_all(b"\n").await
    }
}

#[derive(Debug)]
struct Handler {
    db: Rc<Db>,
    connection: Connection,
    shutdown: Shutdown,
    /// Dropped with the handler: the drain's `recv` ends once every one is gone.
    _shutdown_complete: mpsc::Sender<()>,
}

impl Handler {
    async fn run(&mut self) -> io::Result<()> {
        while !self.shutdown.is_shutdown() {
            let maybe_frame = overlap::select! {
                res = self.connection.read_frame() => res?,
                _ = self.shutdown.recv() => {
                    // Shutting down: return from `run`, which ends the task.
                    return Ok(());
                }
            };
            let Some(frame) = maybe_frame else {
                return Ok(());
            };
            let reply = self.apply(&frame).await;
            self.connection.write_frame(&reply).await?;
        }
        Ok(())
    }

    async fn apply(&self, frame: &str) -> String {
        let mut words = frame.split(' ');
        match (words.next(), words.next(), words.next()) {
            (Some("PING"), None, None) => "PONG".to_string(),
            (Some("SET"), Some(k), Some(v)) => {
                self.db.entries.borrow_mut().insert(k.into(), v.into());
                "OK".to_string()
            }
            (Some("GET"), Some(k), None) => self
                .db
                .entries
                .borrow()
                .get(k)
                .cloned()
                .unwrap_or_else(|| "(nil)".into()),
            (Some("HOLD"), None, None) => {
                self.db.holding.set(true);
                self.db.release.notified().await;
                "RELEASED".to_string()
            }
            _ => format!("ERR unknown command '{frame}'"),
        }
    }
}

#[derive(Debug)]
struct Listener {
    db: Rc<Db>,
    listener: TcpListener,
    notify_shutdown: broadcast::Sender<()>,
    shutdown_complete_tx: mpsc::Sender<()>,
    accepted: Rc<RefCell<usize>>,
}

impl Listener {
    async fn run(&mut self) -> io::Result<()> {
        loop {
            let (socket, _) = self.listener.accept().await?;
            *self.accepted.borrow_mut() += 1;
            let mut handler = Handler {
                db: self.db.clone(),
                connection: Connection {
                    stream: socket,
                    buffer: Vec::new(),
                },
                shutdown: Shutdown {
                    is_shutdown: false,
                    notify: self.notify_shutdown.subscribe(),
                },
                _shutdown_complete: self.shutdown_complete_tx.clone(),
            };
            overlap::spawn(async move {
                if let Err(err) = handler.run().await {
                    panic!("connection error: {err}");
                }
            });
        }
    }
}

/// mini-redis's `server::run`: serves until `shutdown` completes, then tells every handler
/// and waits for them all. Gives back how many connections it accepted.
pub async fn run(listener: TcpListener, db: Rc<Db>, shutdown: impl Future) -> usize {
    let (notify_shutdown, _) = broadcast::channel(1);
    let (shutdown_complete_tx, mut shutdown_complete_rx) = mpsc::channel(1);
    let accepted = Rc::new(RefCell::new(0));
    let mut server = Listener {
        db,
        listener,
        notify_shutdown,
        shutdown_complete_tx,
        accepted: accepted.clone(),
    };
    // tokio's reads `_ = shutdown =>`, moving the `impl Future` in; overlap's borrows a
    // future given by name, so `{ shutdown }` moves it.
    overlap::select! {
        res = server.run() => {
            if let Err(err) = res {
                panic!("failed to accept: {err}");
            }
        }
        _ = { shutdown } => {}
    }
    let Listener {
        shutdown_complete_tx,
        notify_shutdown,
        ..
    } = server;
    drop(notify_shutdown);
    drop(shutdown_complete_tx);
    let _ = shutdown_complete_rx.recv().await;
    let n = *accepted.borrow();
    n
}
