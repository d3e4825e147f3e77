//! One runtime's reader of the signal self-pipe, and what it has handed out.
//!
//! # Invariants
//! - `HandedOut` moves only when this runtime's reader task runs, that is between this
//!   runtime's task polls: a `Signal` made here takes its start from it, so an arrival whose
//!   handler ran while the task making the `Signal` was busy still reaches it, even when
//!   another runtime's reader drained the pipe and broadcast meanwhile.
//! - A listener that reports an arrival moves its runtime's `HandedOut` up to it: another
//!   runtime's broadcast may wake it before this runtime's reader has caught up, and a
//!   listener made after that must not report the same arrival again.
//! - The reader broadcasts only when it drained something; after a nudge it only catches
//!   up. Two readers therefore never nudge each other back and forth.

use std::cell::Cell;
use std::future::poll_fn;
use std::io;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::task::Poll;

use super::registry::{self, Nudge, SIGNALS, SLOTS};
use crate::reactor::AsyncFd;

/// Per signal, the count of arrivals handed out as of this runtime's reader's last run.
#[derive(Debug)]
pub(crate) struct HandedOut([Cell<u64>; SIGNALS]);

impl HandedOut {
    fn now() -> HandedOut {
        let handed = HandedOut(std::array::from_fn(|_| Cell::new(0)));
        handed.catch_up();
        handed
    }

    /// Takes in every broadcast so far.
    fn catch_up(&self) {
        for (mine, slot) in self.0.iter().zip(&SLOTS) {
            mine.set(slot.delivered.load(Ordering::SeqCst));
        }
    }

    /// Signal `signum`'s count as of the reader's last run, or of the last arrival a
    /// listener here reported (`signum` is in range: it has a slot).
    pub(crate) fn count(&self, signum: usize) -> u64 {
        self.0[signum].get()
    }

    /// A listener polled on this runtime reported signal `signum`'s arrivals up to `count`
    /// (woken by another runtime's broadcast, before this runtime's reader caught up): they
    /// are handed out here too, so a listener made next does not report them again.
    pub(crate) fn reported(&self, signum: usize, count: u64) {
        let mine = &self.0[signum];
        mine.set(mine.get().max(count));
    }
}

/// Tells the current runtime's `HandedOut`, if any, that a listener polled here reported
/// signal `signum`'s arrivals up to `count`.
pub(crate) fn reported_here(signum: usize, count: u64) {
    crate::executor::with_current(|core| {
        if let Some(handed) = core.signals_handed.borrow().as_ref() {
            handed.reported(signum, count);
        }
    });
}

/// Starts this runtime's reader of the self-pipe, unless it runs already, and returns what
/// it has handed out. Fails outside a runtime, or if the reader's fd cannot be made.
pub(crate) fn start() -> io::Result<Rc<HandedOut>> {
    let running = crate::executor::with_current(|core| core.signals_handed.borrow().clone())
        .ok_or_else(|| io::Error::other("signal() called outside of an overlap runtime"))?;
    if let Some(handed) = running {
        return Ok(handed);
    }
    let fd = registry::reader_fd().and_then(AsyncFd::new)?;
    let handed = Rc::new(HandedOut::now());
    crate::executor::with_current(|core| {
        *core.signals_handed.borrow_mut() = Some(handed.clone());
    });
    // Detached: it lives as long as the runtime, asleep in epoll between signals.
    drop(crate::spawn(read(fd, handed.clone())));
    Ok(handed)
}

async fn read(fd: AsyncFd<std::os::fd::OwnedFd>, handed: Rc<HandedOut>) {
    let nudge = Nudge::new_listed();
    // A broadcast between `start` and the listing above nudged nobody here.
    handed.catch_up();
    loop {
        let drained = poll_fn(|cx| {
            if let Poll::Ready(ready) = fd.poll_read_ready(cx) {
                return Poll::Ready(ready.map(|mut guard| {
                    let got = registry::drain(fd.get_ref().as_raw_fd());
                    guard.clear_ready();
                    got
                }));
            }
            if nudge.take(cx) {
                Poll::Ready(Ok(false))
            } else {
                Poll::Pending
            }
        })
        .await;
        match drained {
            // The runtime is going away.
            Err(_) => return,
            Ok(true) => registry::broadcast(&nudge),
            Ok(false) => {}
        }
        handed.catch_up();
    }
}
