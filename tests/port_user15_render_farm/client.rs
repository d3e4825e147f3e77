//! The tests' side: a client speaking the protocol, a gate that holds jobs at a chosen step
//! on their pool threads (and tells the test, through a cross-thread channel, when one
//! arrives), the rig that starts a farm in a temp dir, and the results computed directly,
//! to check the farm's against.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex};

use overlap::codec::{Framed, LengthDelimitedCodec};
use overlap::io::AsyncWriteExt;
use overlap::net::{TcpListener, TcpStream};
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;
use overlap::sync::mpsc::cross_thread;

use super::cache::Cache;
use super::farm::{Config, Farm};
use super::proto::{JobRequest, Reply, Request};
use super::server::Server;
use super::work::{fnv1a, mix, StepHook, Tile};
use crate::support::TempDir;

pub struct Client {
    framed: Framed<TcpStream, LengthDelimitedCodec>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            framed: Framed::new(stream, LengthDelimitedCodec::new()),
        }
    }

    pub async fn send_raw(&mut self, frame: &[u8]) {
        self.framed.send(frame).await.unwrap();
    }

    pub async fn ping(&mut self, id: u32) {
        self.send_raw(&Request::Ping { id }.encode()).await;
    }

    pub async fn submit(&mut self, id: u32, op: &str, payload: &[u8]) {
        let job = JobRequest {
            id,
            op: op.into(),
            payload: payload.to_vec(),
        };
        self.send_raw(&Request::Job(job).encode()).await;
    }

    /// The next reply, `None` at end of file.
    pub async fn next(&mut self) -> Option<Reply> {
        let frame = self.framed.next().await?.unwrap();
        Some(Reply::decode(&frame).expect("a well-formed reply"))
    }

    /// Replies up to and including the final one for job `id`.
    pub async fn until_final(&mut self, id: u32) -> Vec<Reply> {
        let mut got = Vec::new();
        loop {
            let reply = self.next().await.expect("a reply before end of file");
            let done = reply.id() == id && reply.is_final();
            got.push(reply);
            if done {
                return got;
            }
        }
    }

    /// The final replies of `n` jobs, whichever order they come in, sorted by id (the
    /// progress in between skipped).
    pub async fn finals(&mut self, n: usize) -> Vec<Reply> {
        let mut finals = Vec::new();
        while finals.len() < n {
            let reply = self.next().await.expect("a reply before end of file");
            if reply.is_final() {
                finals.push(reply);
            }
        }
        finals.sort_by_key(Reply::id);
        finals
    }

    /// Submits and waits for the final reply, checking that the progress before it counted
    /// each step once, in order.
    pub async fn run(&mut self, id: u32, op: &str, payload: &[u8]) -> Reply {
        self.submit(id, op, payload).await;
        let mut replies = self.until_final(id).await;
        let last = replies.pop().unwrap();
        let steps: Vec<u32> = replies
            .iter()
            .map(|r| match r {
                Reply::Progress { id: i, done, .. } if *i == id => *done,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        if matches!(last, Reply::Result { cached: false, .. }) {
            assert_eq!(steps, (1..=steps.len() as u32).collect::<Vec<_>>());
        }
        last
    }

    /// Bytes written as they are, outside any frame.
    pub async fn write_raw(&mut self, bytes: &[u8]) {
        self.framed.get_mut().write_all(bytes).await.unwrap();
    }
}

/// Holds every job of `op` that reaches `step`, until let through.
pub struct Gate {
    op: &'static str,
    step: u32,
    state: Mutex<GateState>,
    cv: Condvar,
    arrivals: cross_thread::UnboundedSender<u32>,
}

#[derive(Default)]
struct GateState {
    passes: u64,
    open: bool,
}

impl Gate {
    /// The gate, and the channel on which it says a job arrived (the step, again).
    pub fn new(op: &'static str, step: u32) -> (Arc<Gate>, cross_thread::UnboundedReceiver<u32>) {
        let (arrivals, arrived) = cross_thread::unbounded_channel();
        let gate = Gate {
            op,
            step,
            state: Mutex::default(),
            cv: Condvar::new(),
            arrivals,
        };
        (Arc::new(gate), arrived)
    }

    pub fn hook(self: &Arc<Self>) -> StepHook {
        let gate = self.clone();
        Arc::new(move |op, step, _total| {
            if op != gate.op || step != gate.step {
                return;
            }
            let _ = gate.arrivals.send(step);
            let mut st = gate.state.lock().unwrap();
            while !st.open && st.passes == 0 {
                st = gate.cv.wait(st).unwrap();
            }
            if !st.open {
                st.passes -= 1;
            }
        })
    }

    /// Lets one held job through.
    pub fn pass_one(&self) {
        self.state.lock().unwrap().passes += 1;
        self.cv.notify_all();
    }

    /// Lets every job through, from now on.
    pub fn open(&self) {
        self.state.lock().unwrap().open = true;
        self.cv.notify_all();
    }
}

/// A farm serving on `host`, its cache in a temp dir; the gate, if any, opened on drop so
/// that no pool thread stays held after a failed test.
pub struct Rig {
    pub server: Rc<Server>,
    pub dir: TempDir,
    pub gate: Option<Arc<Gate>>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(gate) = &self.gate {
            gate.open();
        }
    }
}

impl Rig {
    /// A rig on 127.0.0.1 with `cfg`, its "hash" jobs held at `step` by a gate: the rig,
    /// the gate, and the channel on which the gate says a job arrived.
    pub async fn gated(
        cfg: Config,
        step: u32,
    ) -> (Rig, Arc<Gate>, cross_thread::UnboundedReceiver<u32>) {
        let (gate, arrived) = Gate::new("hash", step);
        let rig = Rig::start("127.0.0.1", cfg, Some(gate.clone())).await;
        (rig, gate, arrived)
    }

    pub async fn start(host: &str, mut cfg: Config, gate: Option<Arc<Gate>>) -> Rig {
        let dir = TempDir::new("render-farm");
        if let Some(gate) = &gate {
            cfg.hook = Some(gate.hook());
        }
        let cache = Cache::open(&dir.join("cache")).await.unwrap();
        let listener = TcpListener::bind((host, 0)).await.unwrap();
        let server = Server::start(listener, Farm::new(cfg, cache))
            .await
            .unwrap();
        Rig {
            server: Rc::new(server),
            dir,
            gate,
        }
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.server.addr).await
    }

    pub fn farm(&self) -> &Farm {
        &self.server.farm
    }
}

/// Waits, yielding to the loop and without a timer, until `cond` holds: for a paused clock
/// with a job held, where a sleep would never end (the clock does not auto-advance).
pub async fn spin_until(mut cond: impl FnMut() -> bool, what: &str) {
    for _ in 0..1_000_000 {
        if cond() {
            return;
        }
        overlap::task::yield_now().await;
    }
    panic!("never: {what}");
}

/// A `hash` payload.
pub fn hash_payload(rounds: u32, data: &[u8]) -> Vec<u8> {
    [&rounds.to_be_bytes()[..], data].concat()
}

/// `hash` computed directly, in one go.
pub fn hash_direct(rounds: u32, data: &[u8]) -> Vec<u8> {
    let mut state = fnv1a(data);
    for i in 0..rounds {
        state = mix(state ^ i as u64);
    }
    state.to_be_bytes().to_vec()
}

/// A Mandelbrot tile computed directly, pixel by pixel.
pub fn mandel_direct(t: &Tile) -> Vec<u8> {
    let mut out = Vec::new();
    for row in 0..t.h {
        for col in 0..t.w {
            let (cx, cy) = (t.x0 + col as f64 * t.step, t.y0 + row as f64 * t.step);
            let (mut x, mut y) = (0.0f64, 0.0f64);
            let mut n = 0u16;
            while n < t.max_iter && x * x + y * y <= 4.0 {
                (x, y) = (x * x - y * y + cx, 2.0 * x * y + cy);
                n += 1;
            }
            out.push(n.min(255) as u8);
        }
    }
    out
}

/// Undoes `rle`.
pub fn rle_decode(pairs: &[u8]) -> Vec<u8> {
    assert_eq!(pairs.len() % 2, 0);
    pairs
        .chunks(2)
        .flat_map(|p| std::iter::repeat_n(p[1], p[0] as usize))
        .collect()
}
