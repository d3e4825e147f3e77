//! [`Instant`]: a point on the current runtime's clock, which a paused runtime holds still.

use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};
use std::time::Duration;

/// A measurement of the current runtime's monotonic clock: `std::time::Instant`, except that
/// [`Instant::now`] and [`Instant::elapsed`] read the runtime's clock, which stands still
/// while the runtime's time is [paused](super::pause) and jumps when it is
/// [advanced](super::advance).
///
/// Until the runtime's time is first paused the two clocks agree, so code that only
/// measures and sleeps behaves the same with either. Under a paused clock only this type
/// keeps step with the timers: a deadline built as `Instant::now() + d` with it is `d` after
/// the paused clock's reading, where one built from `std::time::Instant::now()` is on the
/// real clock instead. Once paused, the two differ by however far the clock was advanced
/// (or held back), and go on differing after [`resume`](super::resume).
/// In a [`spawn_blocking`](crate::spawn_blocking) job `Instant::now()` reads the clock of
/// the job's runtime, paused or not; outside a runtime and its jobs, the real clock.
///
/// It converts to and from `std::time::Instant` ([`from_std`](Instant::from_std),
/// [`into_std`](Instant::into_std), `From`) without changing the instant it names.
///
/// ```
/// use std::time::Duration;
/// use overlap::time::{self, Instant};
///
/// overlap::block_on(async {
///     time::pause();
///     let start = Instant::now();
///     time::sleep(Duration::from_secs(90)).await; // the paused clock jumps to the deadline
///     assert!(start.elapsed() >= Duration::from_secs(90));
///     assert!(start.into_std().elapsed() < Duration::from_secs(90), "no real wait");
///     time::resume();
///     let ahead = Instant::now().into_std() - std::time::Instant::now();
///     assert!(ahead > Duration::from_secs(60), "still the jump ahead of the real clock");
/// });
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct Instant(std::time::Instant);

impl Instant {
    /// The current runtime's clock now (see [`time::now`](super::now)), in its blocking jobs
    /// too; outside a runtime and its jobs, `std::time::Instant::now()`.
    pub fn now() -> Instant {
        super::now()
    }

    /// The same instant, as this type.
    pub fn from_std(std: std::time::Instant) -> Instant {
        Instant(std)
    }

    /// The same instant, as a `std::time::Instant` (whose `now` and `elapsed` read the real
    /// clock).
    pub fn into_std(self) -> std::time::Instant {
        self.0
    }

    /// How much later `self` is than `earlier`; zero if it is not later.
    pub fn duration_since(&self, earlier: Instant) -> Duration {
        self.0.saturating_duration_since(earlier.0)
    }

    /// How much later `self` is than `earlier`, or `None` if it is earlier.
    pub fn checked_duration_since(&self, earlier: Instant) -> Option<Duration> {
        self.0.checked_duration_since(earlier.0)
    }

    /// How much later `self` is than `earlier`; zero if it is not later.
    pub fn saturating_duration_since(&self, earlier: Instant) -> Duration {
        self.0.saturating_duration_since(earlier.0)
    }

    /// How far the current runtime's clock has moved past `self`; zero if it has not reached
    /// it.
    pub fn elapsed(&self) -> Duration {
        Instant::now().saturating_duration_since(*self)
    }

    /// `self + duration`, or `None` if the clock cannot represent it.
    pub fn checked_add(&self, duration: Duration) -> Option<Instant> {
        self.0.checked_add(duration).map(Instant)
    }

    /// `self - duration`, or `None` if the clock cannot represent it.
    pub fn checked_sub(&self, duration: Duration) -> Option<Instant> {
        self.0.checked_sub(duration).map(Instant)
    }
}

impl From<std::time::Instant> for Instant {
    fn from(std: std::time::Instant) -> Instant {
        Instant(std)
    }
}

impl From<Instant> for std::time::Instant {
    fn from(instant: Instant) -> std::time::Instant {
        instant.0
    }
}

/// # Panics
/// If the result cannot be represented (use [`Instant::checked_add`] for a fallible sum).
impl Add<Duration> for Instant {
    type Output = Instant;

    fn add(self, rhs: Duration) -> Instant {
        Instant(self.0 + rhs)
    }
}

/// # Panics
/// As for `+`.
impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        self.0 += rhs;
    }
}

/// # Panics
/// If the result cannot be represented (use [`Instant::checked_sub`] for a fallible one).
impl Sub<Duration> for Instant {
    type Output = Instant;

    fn sub(self, rhs: Duration) -> Instant {
        Instant(self.0 - rhs)
    }
}

/// # Panics
/// As for `-`.
impl SubAssign<Duration> for Instant {
    fn sub_assign(&mut self, rhs: Duration) {
        self.0 -= rhs;
    }
}

/// The time from `rhs` to `self`; zero if `rhs` is later (as `std::time::Instant` does).
impl Sub<Instant> for Instant {
    type Output = Duration;

    fn sub(self, rhs: Instant) -> Duration {
        self.duration_since(rhs)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
