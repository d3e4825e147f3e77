//! The model the reviews check `Semaphore`, `Mutex` and `RwLock` against: the line their
//! docs describe, a semaphore of `total` permits served strictly first come, first served,
//! zero granted at once (a mutex locker wants 1 of 1, a reader 1 of `max_readers`, a writer
//! all of them). Each
//! request is a hand-polled future whose waker counts its wakes; the model says after every
//! step which requests were handed the lock and so must have been woken exactly once, and
//! which were not and must not have been.

// The lock and the permit reviews each use a part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// Where a request stands in the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Made, never polled: not in line.
    Unpolled,
    /// Polled, in line.
    Waiting,
    /// Handed the lock (woken), not polled since: its next poll must complete.
    Chosen,
}

/// A waker that counts its wakes.
#[derive(Default)]
struct Wakes(AtomicUsize);

impl Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

struct Request<G> {
    fut: Pin<Box<dyn Future<Output = G>>>,
    wants: usize,
    stage: Stage,
    wakes: Arc<Wakes>,
    /// Wakes the model has called for so far.
    expected_wakes: usize,
}

/// The FIFO line, its free permits, the live requests and a trace of the steps (printed,
/// with the seed, when the real lock parts from the model).
pub struct Fifo<G> {
    pub seed: u64,
    pub total: usize,
    pub free: usize,
    line: VecDeque<usize>,
    requests: BTreeMap<usize, Request<G>>,
    next_id: usize,
    trace: Vec<String>,
}

impl<G> Fifo<G> {
    pub fn new(seed: u64, total: usize) -> Fifo<G> {
        Fifo {
            seed,
            total,
            free: total,
            line: VecDeque::new(),
            requests: BTreeMap::new(),
            next_id: 0,
            trace: Vec::new(),
        }
    }

    /// Notes a step in the trace.
    pub fn note(&mut self, step: String) {
        self.trace.push(step);
    }

    /// Fails the test with the seed and every step so far.
    pub fn fail(&self, what: String) -> ! {
        panic!(
            "seed {}: {what}\nsteps:\n{}",
            self.seed,
            self.trace.join("\n")
        )
    }

    /// Asserts `cond`, failing with the seed and the trace otherwise.
    pub fn check(&self, cond: bool, what: impl FnOnce() -> String) {
        if !cond {
            self.fail(what());
        }
    }

    /// A new request for `wants` permits, not polled yet; its id.
    pub fn add(&mut self, wants: usize, fut: impl Future<Output = G> + 'static) -> usize {
        let id = self.next_id;
        self.next_id += 1;
        self.note(format!("#{id} made, wants {wants}"));
        self.requests.insert(
            id,
            Request {
                fut: Box::pin(fut),
                wants,
                stage: Stage::Unpolled,
                wakes: Arc::default(),
                expected_wakes: 0,
            },
        );
        id
    }

    /// How many permits request `id` asked for.
    pub fn wants(&self, id: usize) -> usize {
        self.requests[&id].wants
    }

    /// The ids of the live requests, in the order they were made.
    pub fn ids(&self) -> Vec<usize> {
        self.requests.keys().copied().collect()
    }

    /// Whether a try-lock for `n` permits would be granted now (the model unchanged): zero
    /// takes nothing from anyone and is granted at once, as the semaphore's docs say.
    pub fn would_take(&self, n: usize) -> bool {
        n == 0 || self.line.is_empty() && self.free >= n
    }

    /// Permits free for a new request: none while someone waits in line (they are set aside
    /// for the first in line).
    pub fn available(&self) -> usize {
        if self.line.is_empty() {
            self.free
        } else {
            0
        }
    }

    /// Whether a try-lock for `n` permits is granted now: the line is empty and `n` are free.
    /// Takes them if so.
    pub fn try_take(&mut self, n: usize) -> bool {
        let ok = self.would_take(n);
        if ok {
            self.free -= n;
        }
        ok
    }

    /// `n` permits come back (a guard dropped, a writer downgraded): the front of the line
    /// is served while they satisfy it.
    pub fn release(&mut self, n: usize) {
        self.free += n;
        self.check(self.free <= self.total, || {
            format!("{} free of {}", self.free, self.total)
        });
        self.grant();
    }

    fn grant(&mut self) {
        while let Some(&first) = self.line.front() {
            let r = self.requests.get_mut(&first).expect("a line entry is live");
            if r.wants > self.free {
                break;
            }
            self.free -= r.wants;
            r.stage = Stage::Chosen;
            r.expected_wakes += 1;
            self.line.pop_front();
            self.trace.push(format!("  #{first} is handed {}", r.wants));
        }
    }

    /// Polls request `id` and checks the outcome against the model: the lock's guard if it
    /// completed (the request is then gone), `None` if it waits.
    pub fn poll(&mut self, id: usize) -> Option<G> {
        let r = self.requests.get_mut(&id).expect("a live request");
        let stage = r.stage;
        self.trace.push(format!("poll #{id} ({stage:?})"));
        let waker = Waker::from(r.wakes.clone());
        let res = r.fut.as_mut().poll(&mut Context::from_waker(&waker));
        let wants = r.wants;
        let expect_ready = match stage {
            Stage::Chosen => true,
            Stage::Waiting => false,
            Stage::Unpolled => {
                if self.try_take(wants) {
                    true
                } else {
                    self.line.push_back(id);
                    self.requests.get_mut(&id).unwrap().stage = Stage::Waiting;
                    false
                }
            }
        };
        match res {
            Poll::Ready(guard) if expect_ready => {
                self.requests.remove(&id);
                Some(guard)
            }
            Poll::Pending if !expect_ready => None,
            Poll::Ready(_) => self.fail(format!("#{id} ({stage:?}) got the lock out of turn")),
            Poll::Pending => self.fail(format!("#{id} ({stage:?}) waits though it is served")),
        }
    }

    /// Drops request `id` wherever it stands: out of line, or passing on what it was handed.
    pub fn cancel(&mut self, id: usize) {
        let r = self.requests.remove(&id).expect("a live request");
        self.trace.push(format!("drop #{id} ({:?})", r.stage));
        let Request {
            fut, stage, wants, ..
        } = r;
        drop(fut);
        match stage {
            Stage::Unpolled => {}
            Stage::Waiting => {
                self.line.retain(|&w| w != id);
                self.grant();
            }
            Stage::Chosen => self.release(wants),
        }
    }

    /// Every live request was woken exactly as often as the model handed it the lock (once
    /// per grant, never while it waits): no lost wakeup, no spurious one, no double grant.
    /// And the front of the line is not satisfiable by the free permits (nobody left waiting
    /// while the lock is free).
    pub fn check_wakes(&self) {
        for (id, r) in &self.requests {
            let got = r.wakes.0.load(Ordering::SeqCst);
            self.check(got == r.expected_wakes, || {
                format!(
                    "#{id} ({:?}) woken {got} times, the model says {}",
                    r.stage, r.expected_wakes
                )
            });
        }
        if let Some(first) = self.line.front() {
            let wants = self.requests[first].wants;
            self.check(wants > self.free, || {
                format!("#{first} waits for {wants} while {} are free", self.free)
            });
        }
    }
}
