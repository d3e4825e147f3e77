//! mini-redis's server patterns, ported the way a tokio user would, over real loopback TCP:
//!
//! - the listener: a `Semaphore` caps live connections (`acquire_owned` before `accept`),
//!   a `broadcast` channel tells every connection to stop, and an `mpsc` sender cloned into
//!   each connection tells, when the last one is dropped, that all have finished;
//! - the database: keys with expiry in an `Rc`-shared state, purged by a background task
//!   that sleeps until the next deadline or a `Notify`, checked under a paused clock as
//!   mini-redis's `key_value_timeout` test does.

mod support;

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use overlap::net::{OwnedWriteHalf, TcpListener, TcpStream};
use overlap::sync::{broadcast, mpsc, oneshot, Notify, Semaphore};
use overlap::time::{self, Instant};
use support::within;

const HANG: Duration = Duration::from_secs(30);

/// The keys, and their expiry deadlines in order.
#[derive(Default)]
struct State {
    entries: HashMap<String, (String, Option<Instant>)>,
    expirations: BTreeSet<(Instant, String)>,
}

#[derive(Default)]
struct Db {
    state: RefCell<State>,
    background_task: Notify,
}

impl Db {
    fn get(&self, key: &str) -> Option<String> {
        self.state.borrow().entries.get(key).map(|e| e.0.clone())
    }

    fn set(&self, key: String, value: String, expire: Option<Duration>) {
        let mut state = self.state.borrow_mut();
        let when = expire.map(|d| Instant::now() + d);
        // Wake the purge task if this key expires before every other one.
        let notify = when.is_some_and(|when| {
            state
                .expirations
                .iter()
                .next()
                .is_none_or(|(next, _)| *next > when)
        });
        if let Some((_, Some(old))) = state.entries.insert(key.clone(), (value, when)) {
            state.expirations.remove(&(old, key.clone()));
        }
        if let Some(when) = when {
            state.expirations.insert((when, key));
        }
        drop(state);
        if notify {
            self.background_task.notify_one();
        }
    }

    /// Drops the expired keys; returns the next deadline, if any.
    fn purge_expired_keys(&self) -> Option<Instant> {
        let mut state = self.state.borrow_mut();
        let now = Instant::now();
        while let Some((when, key)) = state.expirations.first().cloned() {
            if when > now {
                return Some(when);
            }
            state.entries.remove(&key);
            state.expirations.remove(&(when, key));
        }
        None
    }
}

async fn purge_expired_tasks(db: Rc<Db>) {
    loop {
        if let Some(when) = db.purge_expired_keys() {
            overlap::select! {
                _ = time::sleep_until(when) => {}
                _ = db.background_task.notified().fuse() => {}
            }
        } else {
            db.background_task.notified().await;
        }
    }
}

/// Answers one command line: `SET key value [seconds]`, `GET key`.
fn apply(db: &Db, line: &str) -> String {
    let parts: Vec<&str> = line.split_whitespace().collect();
    match parts.as_slice() {
        ["SET", key, value, rest @ ..] => {
            let expire = rest
                .first()
                .map(|s| Duration::from_secs(s.parse().unwrap()));
            db.set(key.to_string(), value.to_string(), expire);
            "OK".into()
        }
        ["GET", key] => db.get(key).unwrap_or_else(|| "(nil)".into()),
        _ => format!("ERR unknown command {line:?}"),
    }
}

/// mini-redis's `Shutdown`: remembers that the signal came, so `recv` can be awaited again.
struct Shutdown {
    is_shutdown: bool,
    notify: broadcast::Receiver<()>,
}

impl Shutdown {
    async fn recv(&mut self) {
        if !self.is_shutdown {
            let _ = self.notify.recv().await;
            self.is_shutdown = true;
        }
    }
}

struct Handler {
    db: Rc<Db>,
    shutdown: Shutdown,
    _shutdown_complete: mpsc::Sender<()>,
}

impl Handler {
    async fn run(&mut self, socket: TcpStream) -> io::Result<()> {
        let (read, mut write) = socket.into_split();
        let mut read = BufReader::new(read);
        let mut line = String::new();
        while !self.shutdown.is_shutdown {
            line.clear();
            let n = overlap::select! {
                res = read.read_line(&mut line).fuse() => res?,
                _ = self.shutdown.recv().fuse() => return Ok(()),
            };
            if n == 0 {
                return Ok(());
            }
            reply(&mut write, &apply(&self.db, &line)).await?;
        }
        Ok(())
    }
}

async fn reply(write: &mut OwnedWriteHalf, text: &str) -> io::Result<()> {
    write.write_all(format!("{text}\n").as_bytes()).await
}

struct Listener {
    listener: TcpListener,
    db: Rc<Db>,
    limit_connections: Rc<Semaphore>,
    notify_shutdown: broadcast::Sender<()>,
    shutdown_complete_tx: mpsc::Sender<()>,
}

impl Listener {
    async fn run(&mut self) -> io::Result<()> {
        loop {
            let permit = self
                .limit_connections
                .clone()
                .acquire_owned()
                .await
                .unwrap();
            let (socket, _) = self.listener.accept().await?;
            let mut handler = Handler {
                db: self.db.clone(),
                shutdown: Shutdown {
                    is_shutdown: false,
                    notify: self.notify_shutdown.subscribe(),
                },
                _shutdown_complete: self.shutdown_complete_tx.clone(),
            };
            overlap::spawn(async move {
                handler.run(socket).await.unwrap();
                drop(permit);
            });
        }
    }
}

/// Starts the accept loop on a fresh port; it runs until `shutdown` fires, then tells every
/// connection to stop and waits for them all, as mini-redis's `server::run` does.
async fn serve(
    max_connections: usize,
    shutdown: oneshot::Receiver<()>,
) -> io::Result<(SocketAddr, Rc<Db>, overlap::JoinHandle<io::Result<()>>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let db = Rc::new(Db::default());
    overlap::spawn(purge_expired_tasks(db.clone()));
    let (notify_shutdown, _) = broadcast::channel(1);
    let (shutdown_complete_tx, mut shutdown_complete_rx) = mpsc::channel(1);
    let mut server = Listener {
        listener,
        db: db.clone(),
        limit_connections: Rc::new(Semaphore::new(max_connections)),
        notify_shutdown,
        shutdown_complete_tx,
    };
    let task = overlap::spawn(async move {
        overlap::select! {
            res = server.run().fuse() => res?,
            _ = shutdown.fuse() => {}
        }
        let Listener {
            notify_shutdown,
            shutdown_complete_tx,
            ..
        } = server;
        drop(notify_shutdown);
        drop(shutdown_complete_tx);
        let _ = shutdown_complete_rx.recv().await;
        Ok(())
    });
    Ok((addr, db, task))
}

/// A client that sends a line and reads the answer's line.
struct Client {
    read: BufReader<overlap::net::OwnedReadHalf>,
    write: OwnedWriteHalf,
}

impl Client {
    async fn connect(addr: SocketAddr) -> io::Result<Client> {
        let (read, write) = TcpStream::connect(addr).await?.into_split();
        Ok(Client {
            read: BufReader::new(read),
            write,
        })
    }

    async fn ask(&mut self, command: &str) -> io::Result<String> {
        reply(&mut self.write, command).await?;
        let mut answer = String::new();
        within(HANG, self.read.read_line(&mut answer), "no answer").await?;
        Ok(answer.trim_end().to_string())
    }
}

#[overlap::test]
async fn the_connection_limit_holds_and_shutdown_waits_for_every_connection() -> io::Result<()> {
    let (stop, stopped) = oneshot::channel();
    let (addr, db, server) = serve(2, stopped).await?;
    let mut a = Client::connect(addr).await?;
    let mut b = Client::connect(addr).await?;
    assert_eq!(a.ask("SET a 1").await?, "OK");
    assert_eq!(b.ask("SET b 2").await?, "OK");
    // Both permits are taken: the third connection sits in the backlog, unserved.
    let mut c = Client::connect(addr).await?;
    reply(&mut c.write, "GET a").await?;
    let mut early = String::new();
    let unserved = time::timeout(Duration::from_millis(50), c.read.read_line(&mut early)).await;
    assert!(unserved.is_err(), "served past the limit: {early:?}");
    // A connection leaving frees its permit: the third is accepted and answers.
    drop(a);
    let mut answer = String::new();
    within(HANG, c.read.read_line(&mut answer), "never served").await?;
    assert_eq!(answer, "1\n");

    stop.send(()).unwrap();
    within(HANG, server, "shutdown never completed").await??;
    // Every connection was told to stop and closed its socket.
    for client in [&mut b, &mut c] {
        let mut rest = Vec::new();
        within(HANG, client.read.read_to_end(&mut rest), "not closed").await?;
        assert_eq!(rest, b"");
    }
    assert_eq!(db.get("b").as_deref(), Some("2"));
    Ok(())
}

#[overlap::test(start_paused = true)]
async fn key_value_timeout() -> io::Result<()> {
    let (_stop, stopped) = oneshot::channel();
    let (addr, _db, _server) = serve(8, stopped).await?;
    let mut client = Client::connect(addr).await?;
    assert_eq!(client.ask("SET hello world 1").await?, "OK");
    assert_eq!(client.ask("SET other value 3").await?, "OK");
    assert_eq!(client.ask("GET hello").await?, "world");
    time::advance(Duration::from_secs(1)).await;
    assert_eq!(client.ask("GET hello").await?, "(nil)");
    assert_eq!(client.ask("GET other").await?, "value");
    time::advance(Duration::from_secs(2)).await;
    assert_eq!(client.ask("GET other").await?, "(nil)");
    Ok(())
}
