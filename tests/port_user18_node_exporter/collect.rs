//! Collectors and the scrape that runs them: every collector at once, each under its own
//! timeout, so one that hangs (a FIFO with no writer, a daemon that never answers) costs
//! the scrape that timeout and shows as `node_scrape_collector_success{...} 0` instead of
//! a hung or failed scrape.

use std::io;
use std::rc::Rc;
use std::time::Duration;

use overlap::future::{join_all, LocalBoxFuture};
use overlap::time::{timeout, Instant};

use crate::exposition::{Family, Kind};

/// A source of metrics, read afresh at each scrape.
pub trait Collector {
    /// The name in `node_scrape_collector_success{collector="..."}`.
    fn name(&self) -> &str;
    /// Reads the metrics now. An error fails this collector only.
    fn collect(&self) -> LocalBoxFuture<'_, io::Result<Vec<Family>>>;
}

/// The collectors a scrape runs, each with its timeout.
#[derive(Clone, Default)]
pub struct Registry {
    entries: Vec<(Rc<dyn Collector>, Duration)>,
}

impl Registry {
    /// Adds `collector`, given up on after `limit` at each scrape.
    pub fn add(mut self, collector: impl Collector + 'static, limit: Duration) -> Registry {
        self.entries.push((Rc::new(collector), limit));
        self
    }

    /// Runs every collector concurrently and returns their families, followed by each
    /// collector's `node_scrape_collector_success` and `_duration_seconds`. A collector's
    /// error or timeout drops its families, nothing else.
    pub async fn gather(&self) -> Vec<Family> {
        let runs = self.entries.iter().map(|(c, limit)| async move {
            let start = Instant::now();
            let out = match timeout(*limit, c.collect()).await {
                Ok(Ok(families)) => Some(families),
                Ok(Err(e)) => {
                    eprintln!("node_exporter: collector {} failed: {e}", c.name());
                    None
                }
                Err(_) => {
                    eprintln!(
                        "node_exporter: collector {} timed out after {limit:?}",
                        c.name()
                    );
                    None
                }
            };
            (c.name().to_string(), start.elapsed(), out)
        });
        let results = join_all(runs).await;
        let mut success = Family::new(
            "node_scrape_collector_success",
            "node_exporter: Whether a collector succeeded.",
            Kind::Gauge,
        );
        let mut duration = Family::new(
            "node_scrape_collector_duration_seconds",
            "node_exporter: Duration of a collector scrape.",
            Kind::Gauge,
        );
        let mut families = Vec::new();
        for (name, took, out) in results {
            success.push(&[("collector", &name)], f64::from(u8::from(out.is_some())));
            duration.push(&[("collector", &name)], took.as_secs_f64());
            families.extend(out.into_iter().flatten());
        }
        families.push(success);
        families.push(duration);
        families
    }
}
