//! Response rate limiting per source (a token bucket each, on the runtime's clock, so the
//! paused clock drives it): within the rate a query is answered; over it, every second
//! query gets a "slip" (an empty answer with TC set, which sends a real client to TCP)
//! and the others are dropped.

use std::collections::HashMap;
use std::net::SocketAddr;

use overlap::time::Instant;

#[derive(Clone, Copy, Debug)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Answer,
    Slip,
    Drop,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    over: u64,
}

/// Keyed by the whole source address: the tests' clients all share 127.0.0.1 (a real
/// server keys by address or prefix).
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: HashMap<SocketAddr, Bucket>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter {
            limit,
            buckets: HashMap::new(),
        }
    }

    pub fn check(&mut self, from: SocketAddr) -> Verdict {
        let now = Instant::now();
        let burst = self.limit.burst as f64;
        let b = self.buckets.entry(from).or_insert(Bucket {
            tokens: burst,
            last: now,
            over: 0,
        });
        let elapsed = now.duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.limit.per_second as f64).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Verdict::Answer;
        }
        b.over += 1;
        if b.over % 2 == 0 {
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }
}
