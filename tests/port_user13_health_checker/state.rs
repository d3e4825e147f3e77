//! Flap damping: a check goes critical only after K critical runs in a row, and back only
//! after M non-critical runs in a row; passing and warning swap at once.

use super::checks::{Outcome, Status};

/// The thresholds (Consul's `failures_before_critical` and `success_before_passing`).
#[derive(Clone, Copy, Debug)]
pub struct Damping {
    pub failures: u32,
    pub successes: u32,
}

impl Default for Damping {
    fn default() -> Damping {
        Damping {
            failures: 1,
            successes: 1,
        }
    }
}

/// What the `watch` of a check shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct View {
    /// `None` until the first run.
    pub status: Option<Status>,
    pub output: String,
    pub runs: u64,
}

/// A check's damped state.
#[derive(Debug, Default)]
pub struct State {
    pub view: View,
    critical_streak: u32,
    ok_streak: u32,
}

impl State {
    /// Takes one run's outcome; the change of status it makes, if any.
    pub fn record(&mut self, d: Damping, o: &Outcome) -> Option<(Option<Status>, Status)> {
        self.view.runs += 1;
        self.view.output = o.output.clone();
        if o.status == Status::Critical {
            self.critical_streak += 1;
            self.ok_streak = 0;
        } else {
            self.ok_streak += 1;
            self.critical_streak = 0;
        }
        let from = self.view.status;
        let to = match from {
            // The first run decides at once.
            None => o.status,
            Some(Status::Critical) if o.status != Status::Critical => {
                if self.ok_streak < d.successes {
                    return None;
                }
                o.status
            }
            Some(s) if s != Status::Critical && o.status == Status::Critical => {
                if self.critical_streak < d.failures {
                    return None;
                }
                Status::Critical
            }
            Some(_) => o.status,
        };
        if from == Some(to) {
            return None;
        }
        self.view.status = Some(to);
        Some((from, to))
    }
}
