//! When the loop must next look at the [`TimerWheel`]: the next deadline, with or without
//! the slack that lets nearby timers share a wakeup.

use std::cmp::Reverse;

use super::{
    hard_of, Cached, Due, Item, TimerWheel, DUE_FULL_SCAN, DUE_SCAN, SCAN_LIMIT, TICK_SHIFT,
    WHEEL_BITS,
};

impl TimerWheel {
    /// A time (ns) at which the loop should next call `advance`. Never later than any timer's
    /// deadline plus slack; within that, the last deadline in reach, so one wakeup fires as
    /// many timers as their slack allows (and a lone timer fires exactly at its deadline). When
    /// the earliest timers sit in a slot that must be cascaded first, that slot's start.
    pub(crate) fn next_deadline(&mut self) -> Option<u64> {
        if let Cached::Known(next) = self.cached {
            return next;
        }
        let next = self.compute_next(true);
        self.cached = Cached::Known(next);
        next
    }

    /// The earliest deadline of any timer, with no slack (or an earlier instant at which the
    /// wheel must cascade): where a paused clock's auto-advance may jump without making any
    /// timer fire later than its deadline. Not cached: paused clocks are for tests.
    pub(crate) fn earliest_deadline(&mut self) -> Option<u64> {
        self.compute_next(false)
    }

    /// See [`next_deadline`](Self::next_deadline); `with_slack: false` for
    /// [`earliest_deadline`](Self::earliest_deadline).
    fn compute_next(&mut self, with_slack: bool) -> Option<u64> {
        if self.len == 0 {
            return None; // whatever items are left are stale
        }
        self.flush();
        while let Some(&Reverse((_, stamp, index, _))) = self.due.peek() {
            if self.is_live(index, stamp) {
                break;
            }
            self.due.pop();
            self.stale -= 1;
        }
        // The latest the loop may wake: no timer's deadline plus slack may pass. Stale items
        // only make this earlier (an early wakeup, never a late one).
        let heap = self.due.as_slice();
        // A small heap is read whole, so `hard` and the latest deadline within it are exact.
        // In a big one only the top levels are read: every item below them has a deadline
        // (so a deadline plus slack) no earlier than its ancestor's on the last level read,
        // so those deadlines bound the rest, at O(1) cost for a crowded tick. That bound
        // ignores slack, which makes dense timers wake more often than needed; hence the
        // whole read where it is cheap.
        let top = if heap.len() <= DUE_FULL_SCAN {
            heap
        } else {
            &heap[..DUE_SCAN]
        };
        let hard_of = |it: Due| if with_slack { hard_of(it) } else { it.0 };
        let mut hard = top.iter().map(|&Reverse(it)| hard_of(it)).min();
        if heap.len() > top.len() {
            let frontier = &top[DUE_SCAN / 2..];
            let below = frontier.iter().map(|r| r.0 .0).min();
            hard = hard.min(below);
        }
        let mut near: &[Item] = &[];
        if let Some((level, slot, start)) = self.next_slot() {
            // The lowest occupied level holds the earliest deadlines (see the invariant), and
            // every item elsewhere in the wheel is due no sooner than this slot's end.
            let items = &self.levels[level].slots[slot];
            let bound = if level == 0 && items.len() <= SCAN_LIMIT {
                near = items;
                let end = (start + 1) << TICK_SHIFT;
                // A stale item's entry may hold another timer's slack: that only adds a time
                // that is not a live timer's, which can make the wakeup earlier, never later.
                let slack = |it: &Item| {
                    if with_slack {
                        self.slack_of(it.index)
                    } else {
                        0
                    }
                };
                let hard = |it: &Item| it.deadline.saturating_add(slack(it).into());
                items.iter().map(hard).fold(end, u64::min)
            } else {
                start << TICK_SHIFT
            };
            hard = Some(hard.map_or(bound, |h| h.min(bound)));
        } else if !self.overflow.is_empty() {
            // Overflow items are looked at again when `elapsed` enters the next span of
            // 2^36 ticks; wake then.
            let span = u128::from(self.elapsed >> WHEEL_BITS) + 1;
            let start = u64::try_from(span << (WHEEL_BITS + TICK_SHIFT)).unwrap_or(u64::MAX);
            hard = Some(hard.map_or(start, |h| h.min(start)));
        }
        let hard = hard?;
        // Waking after the last deadline at or before `hard` fires nothing more, so wake then:
        // a lone timer fires exactly on time whatever its slack.
        let deadlines = top.iter().map(|r| r.0 .0);
        let latest = deadlines.chain(near.iter().map(|it| it.deadline));
        Some(latest.filter(|&d| d <= hard).max().unwrap_or(hard))
    }
}
