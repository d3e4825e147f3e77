//! The load generator: requests started at a rate (`time::interval`, missed ticks
//! delayed), at most `concurrency` in flight (a `Semaphore`), each timed into a latency
//! histogram; and the connect storm: many connections opened at once against a small
//! backlog, through the pool's timeouts and backoff.

use std::cell::RefCell;
use std::collections::BTreeMap;

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::net::TcpStream;
use overlap::sync::Semaphore;
use overlap::task::JoinSet;
use overlap::time::{self, Instant, MissedTickBehavior};

use super::http::Request;
use super::pool::Pool;

/// Latencies in power-of-two buckets of microseconds.
#[derive(Default, Debug)]
pub struct Histogram {
    buckets: [u64; 32],
}

impl Histogram {
    pub fn record(&mut self, d: Duration) {
        let us = d.as_micros().max(1) as u64;
        self.buckets[(63 - us.leading_zeros()) as usize] += 1;
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The upper bound of the bucket holding the `p`-th percentile (0 < p <= 100).
    pub fn percentile(&self, p: f64) -> Duration {
        let want = ((self.count() as f64) * p / 100.0).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= want {
                return Duration::from_micros(2u64 << i);
            }
        }
        Duration::ZERO
    }
}

/// How a run goes.
pub struct Plan {
    pub requests: usize,
    pub concurrency: usize,
    /// One request started per period, if set.
    pub period: Option<Duration>,
    pub request: Rc<dyn Fn(usize) -> Request>,
}

/// What a run gave.
#[derive(Default, Debug)]
pub struct Report {
    pub ok: usize,
    /// Errors by their words, so a test (or a user) reads what went wrong.
    pub errors: BTreeMap<String, usize>,
    pub latency: Histogram,
    /// The statuses and bodies, in the order requests were started.
    pub bodies: Vec<Option<(u16, Vec<u8>)>>,
}

/// Runs `plan` against `addr` through `pool`.
pub async fn run(pool: &Rc<Pool>, addr: SocketAddr, plan: Plan) -> Report {
    let report = Rc::new(RefCell::new(Report {
        bodies: vec![None; plan.requests],
        ..Report::default()
    }));
    let limit = Rc::new(Semaphore::new(plan.concurrency));
    let mut ticker = plan.period.map(|p| {
        let mut t = time::interval(p);
        // A stall (every slot busy) must not turn into a burst above the rate.
        t.set_missed_tick_behavior(MissedTickBehavior::Delay);
        t
    });
    let mut set = JoinSet::new();
    for i in 0..plan.requests {
        let permit = limit.clone().acquire_owned().await.unwrap();
        if let Some(t) = ticker.as_mut() {
            t.tick().await;
        }
        let (pool, report, req) = (pool.clone(), report.clone(), (plan.request)(i));
        set.spawn(async move {
            let _permit = permit;
            let start = Instant::now();
            let res = pool.send(addr, &req).await;
            let mut r = report.borrow_mut();
            match res {
                Ok(resp) => {
                    r.ok += 1;
                    r.latency.record(start.elapsed());
                    r.bodies[i] = Some((resp.status, resp.body));
                }
                Err(e) => *r.errors.entry(e.to_string()).or_default() += 1,
            }
        });
    }
    while set.join_next().await.is_some() {}
    Rc::try_unwrap(report).unwrap().into_inner()
}

/// Opens `n` connections to `addr` with at most `in_flight` connects at once, each through
/// the pool's timeouts and backoff, and holds them all; the errors by their words.
pub async fn storm(
    pool: &Rc<Pool>,
    addr: SocketAddr,
    n: usize,
    in_flight: usize,
) -> (Vec<TcpStream>, BTreeMap<String, usize>) {
    let limit = Rc::new(Semaphore::new(in_flight));
    let mut set = JoinSet::new();
    for _ in 0..n {
        let permit = limit.clone().acquire_owned().await.unwrap();
        let pool = pool.clone();
        set.spawn(async move {
            let _permit = permit;
            pool.connect(addr).await
        });
    }
    let (mut conns, mut errors) = (Vec::new(), BTreeMap::new());
    while let Some(res) = set.join_next().await {
        match res.unwrap() {
            Ok(c) => conns.push(c),
            Err(e) => *errors.entry(e.to_string()).or_default() += 1,
        }
    }
    (conns, errors)
}
