//! The gateway's admission rules, on the runtime's clock (`overlap::time::Instant`, so a
//! paused test clock drives them): a token bucket per client IP, and a circuit breaker per
//! backend.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use overlap::time::Instant;

/// A bucket's size and refill rate.
#[derive(Clone, Copy, Debug)]
pub struct RateConfig {
    /// The most requests in a burst.
    pub burst: u64,
    /// Tokens added per second.
    pub per_second: u64,
    /// Buckets kept at most; past it, the full ones (idle clients) are forgotten.
    pub max_clients: usize,
}

/// Tokens counted in thousandths, so that a refill never rounds.
const MILLI: u64 = 1000;

struct Bucket {
    milli_tokens: u64,
    last: Instant,
}

/// Token buckets by client IP.
pub struct RateLimiter {
    cfg: RateConfig,
    buckets: RefCell<HashMap<IpAddr, Bucket>>,
    pub limited: Cell<u64>,
}

impl RateLimiter {
    pub fn new(cfg: RateConfig) -> RateLimiter {
        RateLimiter {
            cfg,
            buckets: RefCell::new(HashMap::new()),
            limited: Cell::new(0),
        }
    }

    /// Takes a token for `ip` at `now`, or says how long until one is there.
    pub fn take(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let cap = self.cfg.burst * MILLI;
        let mut buckets = self.buckets.borrow_mut();
        if buckets.len() >= self.cfg.max_clients && !buckets.contains_key(&ip) {
            let rate = self.cfg.per_second;
            buckets.retain(|_, b| refilled(b, now, rate, cap) < cap);
        }
        let b = buckets.entry(ip).or_insert(Bucket {
            milli_tokens: cap,
            last: now,
        });
        b.milli_tokens = refilled(b, now, self.cfg.per_second, cap);
        b.last = now;
        if b.milli_tokens >= MILLI {
            b.milli_tokens -= MILLI;
            return Ok(());
        }
        self.limited.set(self.limited.get() + 1);
        // A thousandth of a token comes every 1/per_second ms.
        let missing = MILLI - b.milli_tokens;
        Err(Duration::from_micros(
            (missing * 1000).div_ceil(self.cfg.per_second),
        ))
    }

    /// Buckets held now.
    pub fn clients(&self) -> usize {
        self.buckets.borrow().len()
    }
}

fn refilled(b: &Bucket, now: Instant, per_second: u64, cap: u64) -> u64 {
    let ms = now.saturating_duration_since(b.last).as_millis() as u64;
    (b.milli_tokens + ms * per_second).min(cap)
}

/// The circuit breaker's settings.
#[derive(Clone, Copy, Debug)]
pub struct BreakerConfig {
    /// Consecutive failures that open it.
    pub failures: u32,
    /// How long it stays open before one probe goes through.
    pub cooldown: Duration,
}

/// What the breaker is doing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BreakerState {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is out; everyone else is refused until it reports.
    HalfOpen,
}

/// A circuit breaker for one backend.
pub struct Breaker {
    cfg: BreakerConfig,
    state: Cell<BreakerState>,
    pub opened: Cell<u64>,
    pub refused: Cell<u64>,
}

/// Leave to try the backend; report how it went. Dropped without a report (the client
/// went away first), a probe lets the next request probe instead.
pub struct Ticket<'a> {
    breaker: &'a Breaker,
    probe: bool,
    reported: bool,
}

impl Breaker {
    pub fn new(cfg: BreakerConfig) -> Breaker {
        Breaker {
            cfg,
            state: Cell::new(BreakerState::Closed { failures: 0 }),
            opened: Cell::new(0),
            refused: Cell::new(0),
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state.get()
    }

    /// A ticket, or how long until the breaker lets a probe through (zero while a probe
    /// is out).
    pub fn allow(&self, now: Instant) -> Result<Ticket<'_>, Duration> {
        let probe = match self.state.get() {
            BreakerState::Closed { .. } => false,
            BreakerState::Open { until } if now >= until => {
                self.state.set(BreakerState::HalfOpen);
                true
            }
            BreakerState::Open { until } => {
                self.refused.set(self.refused.get() + 1);
                return Err(until - now);
            }
            BreakerState::HalfOpen => {
                self.refused.set(self.refused.get() + 1);
                return Err(Duration::ZERO);
            }
        };
        Ok(Ticket {
            breaker: self,
            probe,
            reported: false,
        })
    }

    fn open(&self, now: Instant) {
        self.opened.set(self.opened.get() + 1);
        self.state.set(BreakerState::Open {
            until: now + self.cfg.cooldown,
        });
    }
}

impl Ticket<'_> {
    pub fn success(mut self) {
        self.reported = true;
        self.breaker.state.set(BreakerState::Closed { failures: 0 });
    }

    pub fn failure(mut self, now: Instant) {
        self.reported = true;
        let b = self.breaker;
        match b.state.get() {
            BreakerState::HalfOpen => b.open(now),
            BreakerState::Closed { failures } if failures + 1 >= b.cfg.failures => b.open(now),
            BreakerState::Closed { failures } => b.state.set(BreakerState::Closed {
                failures: failures + 1,
            }),
            // Opened meanwhile by another request's failure.
            BreakerState::Open { .. } => {}
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if self.probe && !self.reported {
            // The probe never got an answer either way: open again at once, due now.
            self.breaker.state.set(BreakerState::Open {
                until: overlap::time::now(),
            });
        }
    }
}
