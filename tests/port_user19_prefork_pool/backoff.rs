//! The restart back-off of one worker slot: each failure in a row doubles the pause before
//! the next start (up to a ceiling), a worker that gets ready resets it, and too many
//! failures in a row without one getting ready make the master give up on the slot
//! rather than spin.

use std::time::Duration;

/// One slot's failures in a row, and what they cost.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// The first pause is `first`; none is longer than `max`.
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            failures: 0,
        }
    }

    /// Counts a failure and returns the pause before the next start: `first`, then twice
    /// that, and so on up to `max`.
    pub fn failed(&mut self) -> Duration {
        let shift = self.failures.min(20);
        self.failures += 1;
        self.first.saturating_mul(1 << shift).min(self.max)
    }

    /// A worker got ready: the next failure pauses `first` again.
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }

    /// Failures in a row since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}
