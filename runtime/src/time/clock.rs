//! A runtime's clock: the real one, or, once paused, a frozen one that only `advance` and
//! the loop's auto-advance move (for tests of timeouts that must not take real time).

use std::cell::Cell;
use std::time::{Duration, Instant};

/// The clock of one runtime's timers.
///
/// Running, it reads `origin + (real now - real_origin)`: real time, shifted by how far an
/// earlier pause moved it (ahead by the advances, behind by the real time spent paused).
/// Paused, it reads `frozen`.
#[derive(Debug)]
pub(super) struct Clock {
    frozen: Cell<Option<Instant>>,
    /// Whether the clock was ever paused: until then it reads `Instant::now()` directly.
    shifted: Cell<bool>,
    origin: Cell<Instant>,
    real_origin: Cell<Instant>,
}

impl Clock {
    pub(super) fn new() -> Clock {
        let now = Instant::now();
        Clock {
            frozen: Cell::new(None),
            shifted: Cell::new(false),
            origin: Cell::new(now),
            real_origin: Cell::new(now),
        }
    }

    pub(super) fn now(&self) -> Instant {
        if !self.shifted.get() {
            return Instant::now();
        }
        if let Some(t) = self.frozen.get() {
            return t;
        }
        let elapsed = Instant::now().saturating_duration_since(self.real_origin.get());
        self.origin.get() + elapsed
    }

    pub(super) fn is_paused(&self) -> bool {
        self.frozen.get().is_some()
    }

    /// Freezes the clock at its current reading. Nothing happens if it is paused already.
    pub(super) fn pause(&self) {
        if !self.is_paused() {
            let now = self.now();
            self.frozen.set(Some(now));
            self.shifted.set(true);
        }
    }

    /// Lets the clock run again from where it stands. Nothing happens if it is running.
    pub(super) fn resume(&self) {
        if let Some(t) = self.frozen.take() {
            self.origin.set(t);
            self.real_origin.set(Instant::now());
        }
    }

    /// Moves a paused clock forward to `t` (never back). Returns false if it is not paused.
    pub(super) fn advance_to(&self, t: Instant) -> bool {
        match self.frozen.get() {
            Some(now) => {
                self.frozen.set(Some(now.max(t)));
                true
            }
            None => false,
        }
    }

    /// Moves a paused clock forward by `d`. Returns false if it is not paused.
    pub(super) fn advance(&self, d: Duration) -> bool {
        match self.frozen.get() {
            // As far as a deadline `d` from now: however far the clock has gone already.
            Some(now) => self.advance_to(
                now.checked_add(d)
                    .unwrap_or_else(|| super::never_after(now)),
            ),
            None => false,
        }
    }
}
