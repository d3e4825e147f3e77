//! The service: an accept loop, one task per connection, and each connection's loop of
//! requests (kept alive, pipelined requests answered in order), each head read under the
//! header timeout.

use std::cell::Cell;
use std::net::SocketAddr;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::BufReader;
use overlap::net::{TcpListener, TcpStream};
use overlap::task::{JoinHandle, JoinSet};
use overlap::time::timeout;

use super::handlers::{self, Next};
use super::http::{self, parse_head, read_head, HeadEnd};
use super::storage::Store;

#[derive(Debug, Clone)]
pub struct Config {
    /// The largest body one PUT may bring (413 past it).
    pub max_upload: u64,
    /// The bytes stored plus those uploads in progress hold, all together (507 past it).
    pub quota: u64,
    /// How long a client has to send a whole request head, counted from when the server
    /// starts waiting for it (so it also ends an idle kept-alive connection).
    pub header_timeout: Duration,
    /// How long a body may go without a byte.
    pub body_idle: Duration,
    /// The longest request head.
    pub max_head: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_upload: 64 << 20,
            quota: 256 << 20,
            header_timeout: Duration::from_secs(10),
            body_idle: Duration::from_secs(30),
            max_head: 8 * 1024,
        }
    }
}

/// What the server counts, for the tests (and a user's metrics).
#[derive(Debug, Default)]
pub struct Stats {
    pub accepted: Cell<u64>,
    /// Connections whose task has not ended.
    pub open: Cell<u64>,
    pub requests: Cell<u64>,
    /// Heads refused (4xx/5xx before any body).
    pub bad_heads: Cell<u64>,
    /// Idle connections closed, and slow heads answered 408, at the header timeout.
    pub idle_closed: Cell<u64>,
    pub slow_heads: Cell<u64>,
    /// Uploads that ended without a commit, by why.
    pub vanished: Cell<u64>,
    /// Of those, the ones whose client reset the connection (the others closed it).
    pub resets: Cell<u64>,
    pub malformed_bodies: Cell<u64>,
    pub too_large: Cell<u64>,
    pub over_quota: Cell<u64>,
    pub body_timeouts: Cell<u64>,
    pub precondition_failed: Cell<u64>,
    /// Body bytes taken off connections, all uploads together (data only, not framing).
    pub body_bytes: Cell<u64>,
    pub committed: Cell<u64>,
}

impl Stats {
    pub fn bump(c: &Cell<u64>) {
        c.set(c.get() + 1);
    }
}

/// A running service.
pub struct Server {
    pub addr: SocketAddr,
    pub store: Rc<Store>,
    pub stats: Rc<Stats>,
    task: JoinHandle<()>,
}

impl Server {
    /// Opens the store in `dir` and serves it on `host`, port 0.
    pub async fn start(host: &str, dir: &Path, cfg: Config) -> Server {
        let store = Store::open(dir, cfg.max_upload, cfg.quota).await.unwrap();
        let listener = TcpListener::bind((host, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = Rc::new(Stats::default());
        let task = overlap::spawn(accept_loop(
            listener,
            store.clone(),
            stats.clone(),
            cfg.clone(),
        ));
        Server {
            addr,
            store,
            stats,
            task,
        }
    }

    /// Stops accepting and ends every connection (their uploads' guards remove the temp
    /// files), then waits for all of it to be gone.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
        // Dropping the accept loop's `JoinSet` aborted the connections; their futures are
        // dropped at the runtime's next turn, as tokio's are.
        while self.stats.open.get() > 0 {
            overlap::yield_now().await;
        }
    }
}

async fn accept_loop(listener: TcpListener, store: Rc<Store>, stats: Rc<Stats>, cfg: Config) {
    // Dropping the set (when this task is aborted) aborts the connections.
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let Ok((stream, _)) = listener.accept().await else {
            overlap::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        Stats::bump(&stats.accepted);
        let (store, stats, cfg) = (store.clone(), stats.clone(), cfg.clone());
        conns.spawn(async move {
            stats.open.set(stats.open.get() + 1);
            let _open = OpenCount(stats.clone());
            connection(stream, &store, &stats, &cfg).await;
        });
    }
}

/// Counts a connection's task out however it ends, aborted too.
struct OpenCount(Rc<Stats>);

impl Drop for OpenCount {
    fn drop(&mut self) {
        self.0.open.set(self.0.open.get() - 1);
    }
}

async fn connection(stream: TcpStream, store: &Rc<Store>, stats: &Stats, cfg: &Config) {
    let _ = stream.set_nodelay(true);
    let mut rd = BufReader::with_capacity(64 * 1024, &stream);
    let mut wr = &stream;
    loop {
        let mut raw = Vec::new();
        match timeout(
            cfg.header_timeout,
            read_head(&mut rd, &mut raw, cfg.max_head),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(HeadEnd::Closed | HeadEnd::Cut)) => return,
            Ok(Err(HeadEnd::TooLarge)) => {
                Stats::bump(&stats.bad_heads);
                let _ = http::respond(&mut wr, 431, &[], b"head too large\n", true).await;
                return;
            }
            Err(_elapsed) => {
                if raw.is_empty() && rd.buffer().is_empty() {
                    Stats::bump(&stats.idle_closed);
                } else {
                    // A slow client gets its answer only as far as its socket takes it
                    // now: it gets no more time.
                    Stats::bump(&stats.slow_heads);
                    let _ = stream.try_write(&http::response_head(408, &[], 0, true));
                }
                return;
            }
        }
        Stats::bump(&stats.requests);
        let head = match parse_head(&raw) {
            Ok(head) => head,
            Err(bad) => {
                Stats::bump(&stats.bad_heads);
                let body = format!("{}\n", bad.why);
                let _ = http::respond(&mut wr, bad.status, &[], body.as_bytes(), true).await;
                return;
            }
        };
        match handlers::handle(&head, &mut rd, &mut wr, store, stats, cfg).await {
            Ok(Next::KeepAlive) if head.keep_alive() => continue,
            _ => return,
        }
    }
}
