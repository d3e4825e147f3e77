//! A flush window's aggregates, rendered as Graphite's plaintext lines (`name value
//! timestamp`). Counters, timers and sets start again each window; gauges keep their value
//! (a delta moves it), and are sent in the windows that touched them.

use std::collections::{BTreeMap, BTreeSet};

use super::parse::{Kind, Sample};

#[derive(Default)]
struct Timer {
    values: Vec<f64>,
    /// Events the values stand for: each counts `1 / rate`.
    count: f64,
}

#[derive(Default)]
pub struct Metrics {
    counters: BTreeMap<String, f64>,
    timers: BTreeMap<String, Timer>,
    sets: BTreeMap<String, BTreeSet<String>>,
    gauges: BTreeMap<String, f64>,
    gauges_touched: BTreeSet<String>,
}

impl Metrics {
    pub fn record(&mut self, s: Sample) {
        match s.kind {
            Kind::Counter(v) => *self.counters.entry(s.name).or_default() += v / s.rate,
            Kind::Timer(v) => {
                let t = self.timers.entry(s.name).or_default();
                t.values.push(v);
                t.count += 1.0 / s.rate;
            }
            Kind::Set(member) => {
                self.sets.entry(s.name).or_default().insert(member);
            }
            Kind::Gauge { value, delta } => {
                let g = self.gauges.entry(s.name.clone()).or_default();
                *g = if delta { *g + value } else { value };
                self.gauges_touched.insert(s.name);
            }
        }
    }

    /// The window's lines, stamped `ts`; the window starts again.
    pub fn flush(&mut self, ts: u64) -> Vec<String> {
        let mut out = Vec::new();
        for (name, v) in std::mem::take(&mut self.counters) {
            out.push(format!("counters.{name} {v} {ts}"));
        }
        for (name, mut t) in std::mem::take(&mut self.timers) {
            t.values.sort_by(f64::total_cmp);
            let n = t.values.len();
            let mean = t.values.iter().sum::<f64>() / n as f64;
            // The nearest rank: the smallest value with 90% of them at or below it.
            let p90 = t.values[(n * 9).div_ceil(10) - 1];
            let upper = t.values[n - 1];
            out.push(format!("timers.{name}.count {} {ts}", t.count));
            out.push(format!("timers.{name}.mean {mean} {ts}"));
            out.push(format!("timers.{name}.p90 {p90} {ts}"));
            out.push(format!("timers.{name}.upper {upper} {ts}"));
        }
        for (name, members) in std::mem::take(&mut self.sets) {
            out.push(format!("sets.{name}.count {} {ts}", members.len()));
        }
        for name in std::mem::take(&mut self.gauges_touched) {
            if let Some(v) = self.gauges.get(&name) {
                out.push(format!("gauges.{name} {v} {ts}"));
            }
        }
        out
    }

    /// The window's counters so far.
    pub fn counters(&self) -> Vec<(String, f64)> {
        self.counters.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    pub fn gauges(&self) -> Vec<(String, f64)> {
        self.gauges.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// Forgets `name` whatever its type; whether it was known.
    pub fn delete(&mut self, name: &str) -> bool {
        let mut found = self.counters.remove(name).is_some();
        found |= self.timers.remove(name).is_some();
        found |= self.sets.remove(name).is_some();
        found |= self.gauges.remove(name).is_some();
        self.gauges_touched.remove(name);
        found
    }
}
