//! `Barrier`: a fixed number of tasks wait until all of them have arrived.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::waiters::{wake_all, WaitQueue, Waiter};

/// Lets `n` tasks wait until all `n` have called [`wait`](Barrier::wait), then releases
/// them together; the barrier is then ready for the next round. For the tasks of one runtime
/// (not `Send`).
///
/// The task whose arrival completes a round is its *leader*
/// ([`BarrierWaitResult::is_leader`]): exactly one per round.
///
/// # Cancellation
/// A [`wait`](Barrier::wait) dropped before its round completes (under a timeout, in a
/// `select!`) takes its arrival back: the round then needs another task. One dropped after
/// the round completed changes nothing.
///
/// ```
/// use std::rc::Rc;
/// use overlap::sync::Barrier;
///
/// overlap::block_on(async {
///     let barrier = Rc::new(Barrier::new(3));
///     let tasks: Vec<_> = (0..3)
///         .map(|_| {
///             let barrier = barrier.clone();
///             overlap::spawn(async move { barrier.wait().await.is_leader() })
///         })
///         .collect();
///     let mut leaders = 0;
///     for t in tasks {
///         leaders += t.await.unwrap() as usize;
///     }
///     assert_eq!(leaders, 1);
/// });
/// ```
pub struct Barrier {
    /// Arrivals a round needs.
    needed: usize,
    /// Arrivals in the current round.
    arrived: Cell<usize>,
    /// Rounds completed: a waiter whose round number is behind is released.
    round: Cell<u64>,
    waiters: WaitQueue,
}

impl Barrier {
    /// A barrier that releases its waiters once `n` tasks wait. `n == 0` behaves as `1`:
    /// every `wait` completes at once, as leader.
    pub fn new(n: usize) -> Barrier {
        Barrier {
            needed: n.max(1),
            arrived: Cell::new(0),
            round: Cell::new(0),
            waiters: WaitQueue::default(),
        }
    }

    /// Arrives at the barrier and waits until `n` tasks have arrived in this round.
    pub fn wait(&self) -> BarrierWait<'_> {
        BarrierWait {
            barrier: self,
            joined: None,
            done: None,
        }
    }
}

/// What [`Barrier::wait`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult {
    leader: bool,
}

impl BarrierWaitResult {
    /// Whether this task's arrival completed the round (exactly one per round).
    pub fn is_leader(&self) -> bool {
        self.leader
    }
}

/// The future of [`Barrier::wait`]. Polled again after it completed, it returns the same
/// result; so does the wait that completes a round when one of the wakers it calls panics
/// (a user's own): the panic unwinds through that poll, the others are released all the
/// same, and the next poll is ready as the leader rather than an arrival in the next round.
#[must_use = "futures do nothing unless polled"]
pub struct BarrierWait<'a> {
    barrier: &'a Barrier,
    /// The round this task arrived in, and its place in line.
    joined: Option<(u64, Rc<Waiter>)>,
    done: Option<BarrierWaitResult>,
}

impl Future for BarrierWait<'_> {
    type Output = BarrierWaitResult;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<BarrierWaitResult> {
        crate::coop::budgeted(cx, |cx| self.poll_now(cx))
    }
}

impl BarrierWait<'_> {
    fn poll_now(&mut self, cx: &mut Context<'_>) -> Poll<BarrierWaitResult> {
        if let Some(res) = self.done {
            return Poll::Ready(res);
        }
        let barrier = self.barrier;
        let res = match &self.joined {
            Some((round, w)) if *round == barrier.round.get() => {
                drop(w.set_waker(cx.waker()));
                return Poll::Pending;
            }
            // Released: the round this task arrived in is over (the queue was emptied then).
            Some(_) => BarrierWaitResult { leader: false },
            None => {
                let arrived = barrier.arrived.get() + 1;
                if arrived < barrier.needed {
                    barrier.arrived.set(arrived);
                    let w = barrier.waiters.push(cx.waker());
                    self.joined = Some((barrier.round.get(), w));
                    return Poll::Pending;
                }
                barrier.arrived.set(0);
                barrier.round.set(barrier.round.get() + 1);
                let res = BarrierWaitResult { leader: true };
                // Done before the others are woken: a waker that panics (a user's own)
                // unwinds through this poll, and a poll after that is the leader again
                // instead of an arrival in the next round.
                self.done = Some(res);
                wake_all(barrier.waiters.take_all());
                return Poll::Ready(res);
            }
        };
        self.joined = None;
        self.done = Some(res);
        Poll::Ready(res)
    }
}

impl Drop for BarrierWait<'_> {
    fn drop(&mut self) {
        if let Some((round, w)) = self.joined.take() {
            if round == self.barrier.round.get() {
                // Still waiting for its round: take the arrival back.
                self.barrier.arrived.set(self.barrier.arrived.get() - 1);
                drop(self.barrier.waiters.remove(w));
            }
        }
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("needed", &self.needed)
            .field("arrived", &self.arrived.get())
            .finish()
    }
}

impl fmt::Debug for BarrierWait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BarrierWait")
            .field("waiting", &self.joined.is_some())
            .field("done", &self.done)
            .finish()
    }
}
