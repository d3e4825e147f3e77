//! The transmission parameters (RFC 7252 4.8): the first timeout of a CON is
//! `ACK_TIMEOUT` times a random factor between 1 and `ACK_RANDOM_FACTOR`, doubled at each
//! retransmission, up to `MAX_RETRANSMIT` retransmissions; `EXCHANGE_LIFETIME` is how long
//! a message id is remembered for deduplication. The random factor comes from a seeded
//! generator, so that a run is the same for a seed.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Transmission {
    pub ack_timeout: Duration,
    /// `ACK_RANDOM_FACTOR` in thousandths (1500 is RFC 7252's 1.5).
    pub random_factor_milli: u64,
    pub max_retransmit: u32,
    /// How long a request waits for a separate response after its empty ACK, and a NON
    /// request for its answer.
    pub response_wait: Duration,
}

impl Default for Transmission {
    fn default() -> Transmission {
        Transmission {
            ack_timeout: Duration::from_secs(2),
            random_factor_milli: 1500,
            max_retransmit: 4,
            response_wait: Duration::from_secs(30),
        }
    }
}

impl Transmission {
    /// A CON's first timeout, in whole milliseconds between `ACK_TIMEOUT` and
    /// `ACK_TIMEOUT * ACK_RANDOM_FACTOR`, both included.
    pub fn initial_timeout(&self, rng: &mut Prng) -> Duration {
        let base = self.ack_timeout.as_millis() as u64;
        let spread = base * (self.random_factor_milli - 1000) / 1000;
        Duration::from_millis(base + rng.below(spread + 1))
    }

    /// `MAX_TRANSMIT_SPAN + 2 * MAX_LATENCY + PROCESSING_DELAY` (247 s with the defaults).
    pub fn exchange_lifetime(&self) -> Duration {
        let span =
            self.ack_timeout * ((1 << self.max_retransmit) - 1) * self.random_factor_milli as u32
                / 1000;
        span + Duration::from_secs(2 * 100) + self.ack_timeout
    }
}

/// splitmix64: the seeded generator.
#[derive(Clone, Debug)]
pub struct Prng(u64);

impl Prng {
    pub fn new(seed: u64) -> Prng {
        Prng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn percent(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}
