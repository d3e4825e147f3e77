//! When the event loop spins for a remote wake instead of sleeping in epoll at once.

use std::cell::Cell;
use std::time::Duration;

/// How long the loop spins for a remote wake (a blocking job's result, another thread's
/// message) before it sleeps in epoll.
pub(crate) const REMOTE_SPIN: Duration = Duration::from_micros(50);

/// When the loop spins for a remote wake before sleeping in epoll, and whether that pays
/// off lately.
///
/// It is worth trying while blocking jobs run (their results usually come back within
/// microseconds), and right after a sleep that a remote wake cut short within the spin
/// window: another thread is feeding this runtime and its next wake is likely as close. A
/// wake seen while spinning costs no eventfd write and no `epoll_wait`, and the loop's thread
/// is still running when it lands (a sleeping vCPU takes far longer to wake). Spinning stops
/// after two spins in a row that saw nothing (long jobs, such as big reads, are better waited
/// for asleep, leaving the CPU to the pool), and probes again every 16th time.
#[derive(Debug)]
pub(crate) struct SpinPolicy {
    misses: Cell<u32>,
    /// The last sleep in epoll ended with a remote wake within [`REMOTE_SPIN`].
    pub(crate) remote_hot: Cell<bool>,
    /// Whether this thread may run on more than one CPU. Pinned to one, spinning only delays
    /// the very thread that would wake us: the loop then never spins after a sleep a remote
    /// wake cut short (it still spins while pool jobs run, yielding the CPU between looks).
    many_cpus: bool,
}

impl SpinPolicy {
    pub(crate) fn new() -> SpinPolicy {
        SpinPolicy {
            misses: Cell::new(0),
            remote_hot: Cell::new(false),
            many_cpus: crate::sys::affinity::cpus().is_ok_and(|n| n > 1),
        }
    }

    /// Notes how the last sleep in epoll ended.
    pub(crate) fn slept(&self, woke_remote: bool, slept: Duration) {
        self.remote_hot
            .set(self.many_cpus && woke_remote && slept < REMOTE_SPIN);
    }

    pub(crate) fn should_spin(&self) -> bool {
        let m = self.misses.get();
        if m < 2 {
            return true;
        }
        self.misses.set(m.wrapping_add(1));
        m % 16 == 0
    }

    pub(crate) fn record(&self, woken: bool) {
        self.misses.set(if woken {
            0
        } else {
            self.misses.get().saturating_add(1)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::{SpinPolicy, REMOTE_SPIN};
    use std::cell::Cell;
    use std::time::Duration;

    fn policy(many_cpus: bool) -> SpinPolicy {
        SpinPolicy {
            misses: Cell::new(0),
            remote_hot: Cell::new(false),
            many_cpus,
        }
    }

    #[test]
    fn a_sleep_a_remote_wake_cut_short_makes_the_next_one_spin_first() {
        let p = policy(true);
        p.slept(true, REMOTE_SPIN / 2);
        assert!(p.remote_hot.get());
        // A wake that took longer than a spin would have waited, or no remote wake at all.
        p.slept(true, REMOTE_SPIN * 2);
        assert!(!p.remote_hot.get());
        p.slept(false, Duration::ZERO);
        assert!(!p.remote_hot.get());
    }

    #[test]
    fn a_thread_on_one_cpu_never_spins_for_remote_wakes() {
        let p = policy(false);
        p.slept(true, Duration::from_micros(1));
        assert!(!p.remote_hot.get());
    }

    #[test]
    fn spinning_backs_off_after_two_misses_and_probes_every_16th_time() {
        let p = policy(true);
        assert!(p.should_spin());
        p.record(false);
        assert!(p.should_spin());
        p.record(false);
        let spins = (0..64).filter(|_| p.should_spin()).count();
        assert_eq!(spins, 4);
        p.record(true);
        assert!(p.should_spin());
    }
}
