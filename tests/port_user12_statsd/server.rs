//! The aggregator: a UDP receiver parsing datagrams into the window, a flusher on an
//! `interval` rendering the window into the backend's outbox, the backend's writer
//! (`backend.rs`) and the management port (`admin.rs`), all tasks of one `TaskTracker`
//! under one `CancellationToken`; a shutdown flushes once more and lets the writer drain.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use overlap::net::{TcpListener, UdpSocket};
use overlap::sync::CancellationToken;
use overlap::task::TaskTracker;
use overlap::time::{interval_at, timeout, Instant, MissedTickBehavior};

use super::aggregate::Metrics;
use super::backend::{self, Dial, Link};
use super::parse::parse_datagram;

#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub backend: SocketAddr,
    pub flush_every: Duration,
    /// A datagram longer than this is dropped whole (and counted).
    pub max_datagram: usize,
    /// Lines held for the backend while it is away; the oldest go first.
    pub outbox: usize,
    /// The backend's reconnect backoff: first wait, and the most it doubles to.
    pub backoff: (Duration, Duration),
    /// The backend connection's `SO_SNDBUF`, if set.
    pub send_buffer: Option<u32>,
    /// How long a shutdown waits for the tasks (the writer's last lines).
    pub drain: Duration,
}

impl Config {
    pub fn new(backend: SocketAddr) -> Config {
        let any = if backend.is_ipv6() {
            "[::1]:0"
        } else {
            "127.0.0.1:0"
        };
        Config {
            listen: any.parse().unwrap(),
            backend,
            flush_every: Duration::from_secs(10),
            max_datagram: 1432,
            outbox: 10_000,
            backoff: (Duration::from_millis(100), Duration::from_secs(5)),
            send_buffer: None,
            drain: Duration::from_secs(5),
        }
    }
}

/// The server's counters, as `stats` shows them.
#[derive(Default)]
pub struct Stats {
    pub datagrams: Cell<u64>,
    pub samples: Cell<u64>,
    pub bad_lines: Cell<u64>,
    pub oversized: Cell<u64>,
    pub flushes: Cell<u64>,
    pub admin_sessions: Cell<u64>,
}

fn bump(c: &Cell<u64>, n: u64) {
    c.set(c.get() + n);
}

pub struct State {
    pub metrics: RefCell<Metrics>,
    pub stats: Stats,
    pub link: Rc<Link>,
    pub started: Instant,
}

pub struct Server {
    pub udp: SocketAddr,
    pub admin: SocketAddr,
    pub state: Rc<State>,
    token: CancellationToken,
    tracker: TaskTracker,
    drain: Duration,
}

impl Server {
    pub async fn start(config: Config) -> std::io::Result<Server> {
        let socket = UdpSocket::bind(config.listen).await?;
        let admin = TcpListener::bind(config.listen).await?;
        let state = Rc::new(State {
            metrics: RefCell::default(),
            stats: Stats::default(),
            link: Rc::new(Link::new(config.outbox)),
            started: Instant::now(),
        });
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        let server = Server {
            udp: socket.local_addr()?,
            admin: admin.local_addr()?,
            state: state.clone(),
            token: token.clone(),
            tracker: tracker.clone(),
            drain: config.drain,
        };
        tracker.spawn(receive(
            socket,
            state.clone(),
            config.max_datagram,
            token.clone(),
        ));
        tracker.spawn(flush_loop(state.clone(), config.flush_every, token.clone()));
        let dial = Dial {
            addr: config.backend,
            backoff: config.backoff,
            send_buffer: config.send_buffer,
        };
        tracker.spawn(backend::writer(state.link.clone(), dial));
        tracker.spawn(super::admin::serve(admin, state, token, tracker.clone()));
        Ok(server)
    }

    /// Cancels everything, and waits up to the drain time for the last flush to reach the
    /// backend and every task to end; whether they did.
    pub async fn shutdown(&self) -> bool {
        self.token.cancel();
        self.tracker.close();
        timeout(self.drain, self.tracker.wait()).await.is_ok()
    }

    pub fn stats(&self) -> &Stats {
        &self.state.stats
    }
}

async fn receive(socket: UdpSocket, state: Rc<State>, max: usize, token: CancellationToken) {
    // One byte more than the largest datagram taken: a datagram that fills it was cut.
    let mut buf = vec![0u8; max + 1];
    loop {
        let n = overlap::select! {
            _ = token.cancelled() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, _)) => n,
                Err(_) => continue,
            },
        };
        let stats = &state.stats;
        bump(&stats.datagrams, 1);
        if n > max {
            bump(&stats.oversized, 1);
            continue;
        }
        let (samples, bad) = parse_datagram(&buf[..n]);
        bump(&stats.bad_lines, bad);
        bump(&stats.samples, samples.len() as u64);
        let mut metrics = state.metrics.borrow_mut();
        for s in samples {
            metrics.record(s);
        }
    }
}

fn flush(state: &State) {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let lines = state.metrics.borrow_mut().flush(ts);
    bump(&state.stats.flushes, 1);
    if !lines.is_empty() {
        state.link.outbox.borrow_mut().push(lines);
        state.link.wake.notify_one();
    }
}

async fn flush_loop(state: Rc<State>, every: Duration, token: CancellationToken) {
    let mut tick = interval_at(Instant::now() + every, every);
    // A stalled loop (or a clock jump) flushes once, not once per window missed.
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        overlap::select! {
            _ = tick.tick() => flush(&state),
            _ = token.cancelled() => break,
        }
    }
    flush(&state);
    state.link.outbox.borrow_mut().closing = true;
    state.link.wake.notify_one();
}
