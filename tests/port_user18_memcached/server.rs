//! The server: its settings, what every connection shares (the cache, the counters, the
//! stop token), the accept loop, the UDP task, the expiry sweeper, and the graceful
//! shutdown (no new connections; each connection answers what it has already read, then
//! closes).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use overlap::net::{TcpListener, UdpSocket};
use overlap::sync::CancellationToken;
use overlap::task::{JoinSet, TaskTracker};
use overlap::time::Instant;

use super::conn;
use super::store::{Clock, Store};
use super::udp;

#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// memcached's `-m`: the bytes items may take, overhead included.
    pub memory_limit: usize,
    /// memcached's `-I`: the largest value; a larger one is refused and swallowed.
    pub max_item_size: usize,
    /// A line longer than this without its `\r\n` closes the connection.
    pub max_line: usize,
    /// The same for `get`/`gets`/`gat`/`gats` lines, which may name many keys.
    pub max_retrieval_line: usize,
    /// Replies queued past this, a connection stops reading until they are written.
    pub output_limit: usize,
    /// memcached's `-o idle_timeout`: a connection silent this long is closed.
    pub idle_timeout: Option<Duration>,
    /// How often the sweeper removes expired items nobody asked for.
    pub sweep_every: Duration,
    /// The unix time at start, so an absolute exptime can be read on a paused clock.
    pub epoch: i64,
}

impl Default for Config {
    fn default() -> Config {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        Config {
            memory_limit: 64 << 20,
            max_item_size: 1 << 20,
            max_line: 2048,
            max_retrieval_line: 64 * 1024,
            output_limit: 1 << 20,
            idle_timeout: None,
            sweep_every: Duration::from_secs(1),
            epoch: now.unwrap().as_secs() as i64,
        }
    }
}

/// Counters of the server itself (the cache keeps its own).
#[derive(Debug, Default)]
pub struct Counters {
    pub curr_connections: Cell<u64>,
    pub total_connections: Cell<u64>,
    /// Times a connection stopped reading because its replies passed `output_limit`.
    pub output_waits: Cell<u64>,
    /// Connections stopped so now.
    pub output_waiting: Cell<u64>,
    /// The most reply bytes any connection had queued.
    pub peak_output: Cell<usize>,
    /// Commands parsed, over TCP and UDP.
    pub commands: Cell<u64>,
    /// Datagrams too short for the frame header, dropped unanswered.
    pub udp_runts: Cell<u64>,
    /// How connections ended, in order.
    pub ends: RefCell<Vec<conn::End>>,
}

pub struct Shared {
    pub cfg: Config,
    pub store: RefCell<Store>,
    pub counters: Counters,
    pub stop: CancellationToken,
}

impl Shared {
    /// `stats`, in memcached's names and order.
    pub fn stats(&self) -> Vec<(&'static str, String)> {
        let s = self.store.borrow();
        let (c, k) = (&s.counters, &self.counters);
        vec![
            ("pid", std::process::id().to_string()),
            ("uptime", s.clock.started.elapsed().as_secs().to_string()),
            ("time", s.clock.unix_now().to_string()),
            ("version", super::VERSION.to_string()),
            ("curr_connections", k.curr_connections.get().to_string()),
            ("total_connections", k.total_connections.get().to_string()),
            ("cmd_get", c.cmd_get.to_string()),
            ("cmd_set", c.cmd_set.to_string()),
            ("cmd_flush", c.cmd_flush.to_string()),
            ("cmd_touch", c.cmd_touch.to_string()),
            ("get_hits", c.get_hits.to_string()),
            ("get_misses", c.get_misses.to_string()),
            ("delete_misses", c.delete_misses.to_string()),
            ("delete_hits", c.delete_hits.to_string()),
            ("incr_misses", c.incr_misses.to_string()),
            ("incr_hits", c.incr_hits.to_string()),
            ("decr_misses", c.decr_misses.to_string()),
            ("decr_hits", c.decr_hits.to_string()),
            ("cas_misses", c.cas_misses.to_string()),
            ("cas_hits", c.cas_hits.to_string()),
            ("cas_badval", c.cas_badval.to_string()),
            ("touch_hits", c.touch_hits.to_string()),
            ("touch_misses", c.touch_misses.to_string()),
            ("limit_maxbytes", s.limit().to_string()),
            ("bytes", s.bytes().to_string()),
            ("curr_items", s.len().to_string()),
            ("total_items", c.total_items.to_string()),
            ("evictions", c.evictions.to_string()),
            ("reclaimed", c.reclaimed.to_string()),
            ("conn_output_waits", k.output_waits.get().to_string()),
        ]
    }
}

pub struct Server {
    pub shared: Rc<Shared>,
    conns: Rc<TaskTracker>,
    tasks: JoinSet<()>,
}

impl Server {
    /// A server with no listener yet, its sweeper running.
    pub fn new(cfg: Config) -> Server {
        let clock = Clock {
            started: Instant::now(),
            epoch: cfg.epoch,
        };
        let shared = Rc::new(Shared {
            cfg,
            store: RefCell::new(Store::new(cfg.memory_limit, clock)),
            counters: Counters::default(),
            stop: CancellationToken::new(),
        });
        let mut tasks = JoinSet::new();
        let s = shared.clone();
        tasks.spawn(async move {
            let mut tick = overlap::time::interval(s.cfg.sweep_every);
            tick.set_missed_tick_behavior(overlap::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                s.store.borrow_mut().sweep();
            }
        });
        Server {
            shared,
            conns: Rc::new(TaskTracker::new()),
            tasks,
        }
    }

    pub fn serve_tcp(&mut self, listener: TcpListener) {
        let (shared, conns) = (self.shared.clone(), self.conns.clone());
        self.tasks.spawn(async move {
            loop {
                let Ok((s, _)) = listener.accept().await else {
                    continue;
                };
                let _ = s.set_nodelay(true);
                conns.spawn(conn::serve(s, shared.clone()));
            }
        });
    }

    pub fn serve_udp(&mut self, socket: UdpSocket) {
        self.tasks.spawn(udp::serve(socket, self.shared.clone()));
    }

    /// Stops accepting and serving UDP; lets every connection answer the commands it has
    /// already read and close; then returns.
    pub async fn shutdown(mut self) {
        self.tasks.shutdown().await;
        self.shared.stop.cancel();
        self.conns.close();
        self.conns.wait().await;
    }
}
