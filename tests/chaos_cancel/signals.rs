//! `overlap::signal` under cuts and aborts: listener tasks make, poll (through cut `recv`s)
//! and drop `Signal`s for `SIGUSR1` and `SIGUSR2` while a raiser task sends them to this
//! process, from the runtime's thread (`raise`, `kill`) or from a pool thread (`raise`).
//!
//! Signals coalesce, so a listener may report fewer arrivals than were raised, but:
//! - one that existed before a raise returned reports at least one arrival after it: an
//!   uncut `recv` then completes (or the seed hangs, which the hang guard reports);
//! - each report stands for an arrival of its own: no more reports than raises since the
//!   listener was made, plus one for arrivals from before it that were not handed out yet.
//!   A `kill` of this process counts as made after every listener: the kernel hands a
//!   process-directed signal to the process's main thread when that thread does not block
//!   it (here the test harness's, waiting for this test), so its handler may run after
//!   `kill` returned, on another thread.
//!
//! A signal also interrupts the syscall the thread taking it is blocked in (the runtime's
//! wait for events, a pool thread's), so the other actors of the seed meet `EINTR` too,
//! which must never surface.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use overlap::signal::{signal, Signal, SignalKind};

use crate::cut::{cut, pause, pick, seed, Cut};
use crate::support::Rng;
use crate::sync::Tasks;

/// The two signals the actors use.
const KINDS: [SignalKind; 2] = [SignalKind::user_defined1(), SignalKind::user_defined2()];

/// Per signal, the raises started and the raises that returned (one raiser, one raise at
/// a time: raise `k` started once `started >= k`, returned once `done >= k`), and of
/// those, the ones whose handler had surely run by then (not a `kill`'s).
#[derive(Default)]
struct Raised {
    started: [Cell<u64>; 2],
    done: [Cell<u64>; 2],
    settled: [Cell<u64>; 2],
    /// The raiser is done.
    over: Cell<bool>,
}

impl Raised {
    fn started(&self, which: usize) -> u64 {
        self.started[which].get()
    }

    fn done(&self, which: usize) -> u64 {
        self.done[which].get()
    }

    fn settled(&self, which: usize) -> u64 {
        self.settled[which].get()
    }

    fn bump(count: &Cell<u64>) {
        count.set(count.get() + 1);
    }
}

/// One listener: its `Signal`, and what it may and must report.
struct Listener {
    sig: Signal,
    which: usize,
    /// Raises that had started when it was made, or when it last reported: a later one
    /// that has returned is owed a report.
    owed_after: u64,
    /// Raises that had returned with their handler run when it was made: the bound on its
    /// reports counts from there.
    settled_at_start: u64,
    reports: u64,
}

impl Listener {
    fn new(which: usize, raised: &Raised) -> Listener {
        // Not `done`: a raise from a pool thread may have run its handler, and had it
        // handed out, before the `Signal` was made, and return only after.
        let sig = signal(KINDS[which]).unwrap_or_else(|e| panic!("seed {}: signal: {e}", seed()));
        Listener {
            sig,
            which,
            owed_after: raised.started(which),
            settled_at_start: raised.settled(which),
            reports: 0,
        }
    }

    /// Whether a raise started after it was made or last reported has returned.
    fn owed(&self, raised: &Raised) -> bool {
        raised.done(self.which) > self.owed_after
    }

    /// Counts a report: no more than the raises that can stand behind one.
    fn reported(&mut self, raised: &Raised) {
        self.reports += 1;
        // Every arrival after it was made comes from a raise not settled by then (the
        // handler runs before `raise` returns; a `kill`'s may run later, on another
        // thread); the arrivals from before that were not handed out yet come in one report.
        let most = raised.started(self.which) - self.settled_at_start + 1;
        assert!(
            self.reports <= most,
            "seed {}: {:?}: {} reports from at most {most} arrivals",
            seed(),
            KINDS[self.which],
            self.reports
        );
        // The report may stand for every raise started by now: none of them is owed.
        self.owed_after = raised.started(self.which);
    }
}

/// Listener tasks and a raiser task, each maybe aborted.
pub fn actor(rng: &mut Rng, tasks: &mut Tasks) {
    let raised = Rc::new(Raised::default());
    // The handlers are in place before any signal is sent: a signal without one would end
    // the process.
    for kind in KINDS {
        drop(signal(kind).unwrap());
    }
    for i in 0..1 + rng.below(4) {
        let (raised, mut lrng) = (raised.clone(), Rng(rng.next() | 1));
        tasks.spawn(format!("signal listener {i}"), true, async move {
            let mut l = Listener::new(lrng.below(2), &raised);
            for _ in 0..lrng.below(30) {
                match lrng.below(8) {
                    0 => {
                        l = Listener::new(lrng.below(2), &raised);
                    }
                    1..=4 => {
                        // Left to wait for a wake only if owed: nothing else need ever come.
                        let how = match pick(&mut lrng) {
                            Cut::Never | Cut::AfterPending(_) if !l.owed(&raised) => {
                                Cut::AfterPending(1)
                            }
                            how => how,
                        };
                        if cut(how, l.sig.recv()).await.is_some() {
                            l.reported(&raised);
                        }
                    }
                    5 if l.owed(&raised) => {
                        // Owed: must come, cut by nothing (the hang guard watches).
                        l.sig.recv().await;
                        l.reported(&raised);
                    }
                    _ => pause(&mut lrng).await,
                }
            }
            // Some stay for the raiser's last raise, whose wake nothing else would stand in
            // for.
            if lrng.below(2) == 0 {
                while !raised.over.get() {
                    overlap::time::sleep(Duration::from_millis(1)).await;
                }
            }
            if l.owed(&raised) {
                l.sig.recv().await;
                l.reported(&raised);
            }
        });
    }
    let mut rrng = Rng(rng.next() | 1);
    // Not aborted: a raise from a pool job it stopped waiting for could come after the
    // seed, uncounted.
    tasks.spawn("signal raiser".into(), false, async move {
        for _ in 0..rrng.below(12) {
            let which = rrng.below(2);
            let signum = KINDS[which].as_raw();
            match rrng.below(3) {
                0 => {
                    Raised::bump(&raised.started[which]);
                    // SAFETY: raise takes no pointers; the signal has overlap's handler.
                    assert_eq!(unsafe { libc::raise(signum) }, 0);
                    Raised::bump(&raised.done[which]);
                    Raised::bump(&raised.settled[which]);
                }
                1 => {
                    Raised::bump(&raised.started[which]);
                    // SAFETY: kill and getpid take no pointers; the signal has a handler.
                    assert_eq!(unsafe { libc::kill(libc::getpid(), signum) }, 0);
                    // Not settled: its handler may be yet to run, on the main thread.
                    Raised::bump(&raised.done[which]);
                }
                _ => {
                    // From a pool thread, while the runtime's thread goes on. `raise`, to
                    // that thread: its handler has run when `raise` returns. (A `kill` of
                    // the process there may be taken by another thread, its handler run
                    // after the job is done; two such late handlers of the same signal can
                    // then both land after a listener is made, two reports where the bound
                    // counts one.)
                    Raised::bump(&raised.started[which]);
                    let job = overlap::spawn_blocking(move || {
                        // SAFETY: raise takes no pointers; the signal has a handler.
                        unsafe { libc::raise(signum) }
                    });
                    assert_eq!(job.await.unwrap(), 0);
                    Raised::bump(&raised.done[which]);
                    Raised::bump(&raised.settled[which]);
                }
            }
            pause(&mut rrng).await;
        }
        raised.over.set(true);
    });
}
