//! The checker: each check a task on its own interval with jitter, at most N runs in
//! flight (a `Semaphore`), checks added and removed at runtime (an `AbortHandle` per
//! check), a `watch` per check and a `broadcast` of state changes, alerts queued for the
//! webhook, the status endpoint, and a CancellationToken and TaskTracker shutdown.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::net::TcpListener;
use overlap::sync::{broadcast, watch, CancellationToken, Semaphore};
use overlap::task::{AbortHandle, TaskTracker};
use overlap::time::{interval_at, Instant, MissedTickBehavior};

use super::alerts::{self, AlertConfig, Alerts};
use super::checks::{Kind, Status};
use super::state::{Damping, State, View};
use super::status;

/// One check as configured.
#[derive(Clone)]
pub struct CheckDef {
    pub name: String,
    pub kind: Kind,
    pub every: Duration,
    /// The first run comes at a pseudo-random offset in `[0, jitter)`, spreading checks.
    pub jitter: Duration,
    pub missed: MissedTickBehavior,
    pub damping: Damping,
}

impl CheckDef {
    pub fn new(name: &str, kind: Kind, every: Duration) -> CheckDef {
        CheckDef {
            name: name.to_string(),
            kind,
            every,
            jitter: Duration::ZERO,
            missed: MissedTickBehavior::Skip,
            damping: Damping::default(),
        }
    }
}

/// A change of a check's status, as broadcast.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub check: String,
    pub from: Option<Status>,
    pub to: Status,
    pub at: Instant,
}

pub struct Config {
    pub max_in_flight: usize,
    pub events: usize,
    pub seed: u64,
    /// Where to serve `GET /status`, if anywhere.
    pub status: Option<SocketAddr>,
    pub alerts: Option<AlertConfig>,
    pub drain: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_in_flight: 4,
            events: 64,
            seed: 0x9e37_79b9_7f4a_7c15,
            status: None,
            alerts: None,
            drain: Duration::from_secs(30),
        }
    }
}

/// Counters for the tests (and a metrics page).
#[derive(Default)]
pub struct Stats {
    pub in_flight: Cell<usize>,
    pub max_in_flight: Cell<usize>,
    pub runs: Cell<u64>,
    /// Each run's check and start, in order.
    pub starts: RefCell<Vec<(String, Instant)>>,
}

struct Entry {
    abort: AbortHandle,
    view: watch::Receiver<View>,
}

pub struct Inner {
    limit: Semaphore,
    events: broadcast::Sender<Event>,
    checks: RefCell<BTreeMap<String, Entry>>,
    tracker: TaskTracker,
    token: CancellationToken,
    seed: u64,
    pub stats: Stats,
    pub alerts: Option<Rc<Alerts>>,
}

impl Inner {
    /// Every check's name and view, by name.
    pub fn views(&self) -> Vec<(String, View)> {
        let checks = self.checks.borrow();
        let all = checks
            .iter()
            .map(|(n, e)| (n.clone(), e.view.borrow().clone()));
        all.collect()
    }

    pub fn view(&self, name: &str) -> Option<View> {
        Some(self.checks.borrow().get(name)?.view.borrow().clone())
    }
}

pub struct Checker {
    pub inner: Rc<Inner>,
    pub status_addr: Option<SocketAddr>,
    drain: Duration,
}

impl Checker {
    pub async fn start(config: Config) -> std::io::Result<Checker> {
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        let alerts = config.alerts.map(|cfg| {
            let queue = Rc::new(Alerts::new(cfg.queue));
            tracker.spawn(alerts::deliver(queue.clone(), cfg, token.clone()));
            queue
        });
        let inner = Rc::new(Inner {
            limit: Semaphore::new(config.max_in_flight),
            events: broadcast::Sender::new(config.events),
            checks: RefCell::new(BTreeMap::new()),
            tracker: tracker.clone(),
            token: token.clone(),
            seed: config.seed,
            stats: Stats::default(),
            alerts,
        });
        let status_addr = match config.status {
            Some(addr) => {
                let listener = TcpListener::bind(addr).await?;
                let addr = listener.local_addr()?;
                let serve = status::serve(listener, inner.clone(), tracker.clone(), token);
                tracker.spawn(serve);
                Some(addr)
            }
            None => None,
        };
        Ok(Checker {
            inner,
            status_addr,
            drain: config.drain,
        })
    }

    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Adds (or replaces) a check; its status's `watch`.
    pub fn add(&self, def: CheckDef) -> watch::Receiver<View> {
        let (tx, rx) = watch::channel(View::default());
        let name = def.name.clone();
        let task = self.inner.tracker.spawn(run(self.inner.clone(), def, tx));
        let entry = Entry {
            abort: task.abort_handle(),
            view: rx.clone(),
        };
        if let Some(old) = self.inner.checks.borrow_mut().insert(name, entry) {
            old.abort.abort();
        }
        rx
    }

    /// Removes a check, aborting its run in flight; whether there was one by that name.
    pub fn remove(&self, name: &str) -> bool {
        let entry = self.inner.checks.borrow_mut().remove(name);
        entry.map(|e| e.abort.abort()).is_some()
    }

    pub fn view(&self, name: &str) -> Option<View> {
        self.inner.view(name)
    }

    /// Cancels everything and waits for the tasks (runs in flight end, children killed and
    /// reaped); whether they all ended within the drain time.
    pub async fn shutdown(&self) -> bool {
        self.inner.token.cancel();
        self.inner.tracker.close();
        overlap::time::timeout(self.drain, self.inner.tracker.wait())
            .await
            .is_ok()
    }
}

/// The pseudo-random first-run offset of `name`, in `[0, jitter)`.
fn offset(seed: u64, name: &str, jitter: Duration) -> Duration {
    if jitter.is_zero() {
        return Duration::ZERO;
    }
    let mut x = seed;
    for b in name.bytes() {
        x = (x ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    x ^= x >> 33;
    Duration::from_nanos(x % jitter.as_nanos() as u64)
}

/// Counts a run in flight while it lives (an aborted run included).
struct InFlight<'a>(&'a Stats);

impl<'a> InFlight<'a> {
    fn new(stats: &'a Stats) -> InFlight<'a> {
        stats.in_flight.set(stats.in_flight.get() + 1);
        stats
            .max_in_flight
            .set(stats.max_in_flight.get().max(stats.in_flight.get()));
        InFlight(stats)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.set(self.0.in_flight.get() - 1);
    }
}

/// One check's task.
async fn run(inner: Rc<Inner>, def: CheckDef, view: watch::Sender<View>) {
    let first = Instant::now() + offset(inner.seed, &def.name, def.jitter);
    let mut tick = interval_at(first, def.every);
    tick.set_missed_tick_behavior(def.missed);
    let mut state = State::default();
    loop {
        overlap::select! {
            _ = tick.tick() => {}
            _ = inner.token.cancelled() => return,
        }
        let permit = overlap::select! {
            p = inner.limit.acquire() => p.expect("the semaphore is never closed"),
            _ = inner.token.cancelled() => return,
        };
        let outcome = {
            let stats = &inner.stats;
            stats.runs.set(stats.runs.get() + 1);
            let now = Instant::now();
            stats.starts.borrow_mut().push((def.name.clone(), now));
            let _counted = InFlight::new(stats);
            match def.kind.run(&inner.token).await {
                Some(o) => o,
                None => return,
            }
        };
        drop(permit);
        if let Some((from, to)) = state.record(def.damping, &outcome) {
            let event = Event {
                check: def.name.clone(),
                from,
                to,
                at: Instant::now(),
            };
            if let (Some(alerts), Some(from)) = (&inner.alerts, from) {
                alerts.push(&def.name, from, to);
            }
            // No subscriber is no error.
            let _ = inner.events.send(event);
        }
        view.send_replace(state.view.clone());
    }
}

/// The user's event log: a subscriber that may be slower than the checks; a lag is
/// counted and skipped, never the end.
pub async fn log_events(
    mut rx: broadcast::Receiver<Event>,
    per_event: Duration,
    log: Rc<RefCell<Vec<Event>>>,
    lagged: Rc<Cell<u64>>,
) {
    loop {
        match rx.recv().await {
            Ok(event) => {
                overlap::time::sleep(per_event).await;
                log.borrow_mut().push(event);
            }
            Err(broadcast::error::RecvError::Lagged(n)) => lagged.set(lagged.get() + n),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
