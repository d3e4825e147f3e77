//! The client's two policies, kept free of I/O: the reconnect backoff (exponential, capped,
//! with "equal jitter" from a seeded generator, so a schedule can be checked exactly) and
//! the circuit breaker of a node (closed, open after `threshold` failures in a row,
//! half-open after the cool-down: one probe, whose outcome closes or re-opens it).

use std::time::Duration;

use overlap::time::Instant;

#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The wait before reconnect attempt `failures + 1`, after `failures` in a row: the
    /// exponential step `d = min(base × 2^failures, max)`, then half of it plus a random
    /// part of the other half (`d/2 + rand(0..=d/2)`), in whole milliseconds.
    pub fn delay(&self, failures: u32, rng: &mut u64) -> Duration {
        let step = self
            .base
            .saturating_mul(1u32.checked_shl(failures.min(31)).unwrap_or(u32::MAX))
            .min(self.max);
        let half = step.as_millis() as u64 / 2;
        Duration::from_millis(half + next(rng) % (half + 1))
    }

    /// The first `n` waits for a generator seeded with `seed`.
    pub fn schedule(&self, seed: u64, n: u32) -> Vec<Duration> {
        let mut rng = seed;
        (0..n).map(|i| self.delay(i, &mut rng)).collect()
    }
}

/// xorshift64* (the seed must not be zero).
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// The cool-down is over; `probing` while the one request let through is out.
    HalfOpen {
        probing: bool,
    },
}

#[derive(Debug)]
pub struct Breaker {
    pub state: State,
    pub threshold: u32,
    pub cool_down: Duration,
    /// How many times it opened.
    pub opened: u32,
}

/// What [`Breaker::admit`] lets through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    Normal,
    Probe,
}

impl Breaker {
    pub fn new(threshold: u32, cool_down: Duration) -> Breaker {
        Breaker {
            state: State::Closed { failures: 0 },
            threshold,
            cool_down,
            opened: 0,
        }
    }

    /// Whether a request may go now; if not, until when the breaker stays open (a probe
    /// already out counts as open until now).
    pub fn admit(&mut self, now: Instant) -> Result<Admit, Instant> {
        match self.state {
            State::Closed { .. } => Ok(Admit::Normal),
            State::Open { until } if now < until => Err(until),
            State::Open { .. } | State::HalfOpen { probing: false } => {
                self.state = State::HalfOpen { probing: true };
                Ok(Admit::Probe)
            }
            State::HalfOpen { probing: true } => Err(now),
        }
    }

    pub fn success(&mut self) {
        self.state = State::Closed { failures: 0 };
    }

    pub fn failure(&mut self, now: Instant) {
        let open = match self.state {
            State::Closed { failures } if failures + 1 < self.threshold => {
                self.state = State::Closed {
                    failures: failures + 1,
                };
                false
            }
            State::Open { .. } => false,
            _ => true,
        };
        if open {
            self.state = State::Open {
                until: now + self.cool_down,
            };
            self.opened += 1;
        }
    }

    /// A probe given up before its outcome (its caller was cancelled): the next request
    /// may probe instead.
    pub fn probe_abandoned(&mut self) {
        if self.state == (State::HalfOpen { probing: true }) {
            self.state = State::HalfOpen { probing: false };
        }
    }
}
