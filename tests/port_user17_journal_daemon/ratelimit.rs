//! Per-pid rate limiting: at most `burst` records a pid per window of `window`, the window
//! starting at the pid's first record; the excess dropped and counted, and when the
//! window ends one "suppressed N messages" entry owed for it.

use std::collections::HashMap;
use std::time::Duration;

use overlap::time::Instant;

struct Window {
    start: Instant,
    count: u32,
    suppressed: u64,
    uid: u32,
    gid: u32,
}

/// An ended window's suppressed count, to be written as an entry of that pid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suppressed {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
    pub n: u64,
}

pub struct RateLimiter {
    burst: u32,
    window: Duration,
    pids: HashMap<i32, Window>,
}

impl RateLimiter {
    pub fn new(burst: u32, window: Duration) -> RateLimiter {
        RateLimiter {
            burst,
            window,
            pids: HashMap::new(),
        }
    }

    /// Whether a record of `pid` at `now` may be written; first any suppressed count owed
    /// for the pid's window that has ended.
    pub fn check(
        &mut self,
        pid: i32,
        uid: u32,
        gid: u32,
        now: Instant,
    ) -> (bool, Option<Suppressed>) {
        let mut owed = None;
        if let Some(w) = self.pids.get(&pid) {
            if now >= w.start + self.window {
                owed = self.close(pid);
            }
        }
        let w = self.pids.entry(pid).or_insert(Window {
            start: now,
            count: 0,
            suppressed: 0,
            uid,
            gid,
        });
        if w.count < self.burst {
            w.count += 1;
            (true, owed)
        } else {
            w.suppressed += 1;
            (false, owed)
        }
    }

    /// Ends every window over at `now`, giving the suppressed counts owed (by pid).
    pub fn expire(&mut self, now: Instant) -> Vec<Suppressed> {
        let mut over: Vec<i32> = self
            .pids
            .iter()
            .filter(|(_, w)| now >= w.start + self.window)
            .map(|(&pid, _)| pid)
            .collect();
        over.sort_unstable();
        over.into_iter().filter_map(|pid| self.close(pid)).collect()
    }

    /// When the next window with something suppressed ends.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pids
            .values()
            .filter(|w| w.suppressed > 0)
            .map(|w| w.start + self.window)
            .min()
    }

    fn close(&mut self, pid: i32) -> Option<Suppressed> {
        let w = self.pids.remove(&pid)?;
        (w.suppressed > 0).then_some(Suppressed {
            pid,
            uid: w.uid,
            gid: w.gid,
            n: w.suppressed,
        })
    }
}
