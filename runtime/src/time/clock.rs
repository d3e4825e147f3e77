//! A runtime's clock: the real one, or, once paused, a frozen one that only `advance` and
//! the loop's auto-advance move (for tests of timeouts that must not take real time).
//!
//! The runtime's thread reads its own copy of the clock's state, with no lock; every change
//! (pause, resume, advance) is made there, and copied under a lock into a [`SharedClock`]
//! that the runtime's blocking jobs read from their pool threads.

use std::cell::Cell;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Where a clock stands: what it reads at a given real instant.
#[derive(Clone, Copy, Debug)]
struct Reading {
    /// The reading while paused.
    frozen: Option<Instant>,
    /// Running, the clock reads `origin + (real now - real_origin)`: real time, shifted by
    /// how far an earlier pause moved it (ahead by the advances, behind by the real time
    /// spent paused).
    origin: Instant,
    real_origin: Instant,
}

impl Reading {
    /// The clock's reading when the real clock reads `real`.
    fn at(&self, real: Instant) -> Instant {
        match self.frozen {
            Some(t) => t,
            None => self.origin + real.saturating_duration_since(self.real_origin),
        }
    }
}

/// The clock of one runtime's timers, on the runtime's thread.
#[derive(Debug)]
pub(super) struct Clock {
    /// The runtime thread's copy of the state, which only this thread changes.
    local: Cell<Reading>,
    /// Whether the clock was ever paused: until then it reads `Instant::now()` directly.
    shifted: Cell<bool>,
    /// The copy other threads read.
    shared: Arc<SharedClock>,
}

/// A runtime's clock as its blocking jobs read it, from any thread (see `time::now`): the
/// same readings as on the runtime's thread, never going back.
///
/// Each reading takes a lock, and reads the real clock under it: a change of the clock
/// (made under the same lock) then lies wholly before or after it, so a pause freezes the
/// clock no earlier than any reading a job made before, and a job's reading made after an
/// advance shows it.
#[derive(Debug)]
pub(crate) struct SharedClock {
    reading: Mutex<Reading>,
}

impl SharedClock {
    /// A running clock, showing the real time.
    pub(crate) fn new() -> SharedClock {
        let now = Instant::now();
        SharedClock {
            reading: Mutex::new(Reading {
                frozen: None,
                origin: now,
                real_origin: now,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Reading> {
        // A panic under the lock (an instant past what `Instant` can hold) comes before the
        // state is written, so a poisoned lock's state is still whole.
        self.reading.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The clock's reading now.
    pub(crate) fn now(&self) -> Instant {
        let reading = self.lock();
        reading.at(Instant::now())
    }
}

impl Clock {
    /// A running clock, whose state other threads read in `shared` (a new one, see
    /// [`SharedClock::new`]).
    pub(super) fn new(shared: Arc<SharedClock>) -> Clock {
        let local = *shared.lock();
        Clock {
            local: Cell::new(local),
            shifted: Cell::new(false),
            shared,
        }
    }

    pub(super) fn now(&self) -> Instant {
        if !self.shifted.get() {
            return Instant::now();
        }
        self.local.get().at(Instant::now())
    }

    pub(super) fn is_paused(&self) -> bool {
        self.local.get().frozen.is_some()
    }

    /// Changes the clock's state to what `change` makes of it and of the real time now,
    /// here and in the shared copy, under its lock (so that a reading on another thread
    /// comes wholly before or after the change).
    fn change(&self, change: impl FnOnce(Reading, Instant) -> Reading) {
        let mut shared = self.shared.lock();
        let next = change(self.local.get(), Instant::now());
        *shared = next;
        self.local.set(next);
    }

    /// Freezes the clock at its current reading. Nothing happens if it is paused already.
    pub(super) fn pause(&self) {
        if !self.is_paused() {
            self.change(|r, real| Reading {
                frozen: Some(r.at(real)),
                ..r
            });
            self.shifted.set(true);
        }
    }

    /// Lets the clock run again from where it stands. Nothing happens if it is running.
    pub(super) fn resume(&self) {
        if let Some(t) = self.local.get().frozen {
            self.change(|_, real| Reading {
                frozen: None,
                origin: t,
                real_origin: real,
            });
        }
    }

    /// Moves a paused clock forward to `t` (never back). Returns false if it is not paused.
    pub(super) fn advance_to(&self, t: Instant) -> bool {
        match self.local.get().frozen {
            Some(now) => {
                self.change(|r, _| Reading {
                    frozen: Some(now.max(t)),
                    ..r
                });
                true
            }
            None => false,
        }
    }

    /// Moves a paused clock forward by `d`. Returns false if it is not paused.
    pub(super) fn advance(&self, d: Duration) -> bool {
        match self.local.get().frozen {
            // As far as a deadline `d` from now: however far the clock has gone already.
            Some(now) => self.advance_to(
                now.checked_add(d)
                    .unwrap_or_else(|| super::never_after(now)),
            ),
            None => false,
        }
    }
}
