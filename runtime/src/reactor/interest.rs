//! `Interest`: the directions a task (or a registration) cares about.

use std::fmt;
use std::ops;

use super::Direction;

/// The readiness directions to wait for, or to register an fd for: [`READABLE`],
/// [`WRITABLE`], or both (`Interest::READABLE | Interest::WRITABLE`).
///
/// A wait for an `Interest` ends as soon as one of its directions is ready, and reports
/// which in its [`Ready`]. Each direction comes with its closed state and with errors:
/// `READABLE` also covers [`Ready::READ_CLOSED`], `WRITABLE` [`Ready::WRITE_CLOSED`], and
/// both [`Ready::ERROR`], so a wait never sleeps on a dead fd.
///
/// Unlike tokio's, there is no error-only or priority-only interest: the reactor reports an
/// error as readiness in both directions, and priority data (`EPOLLPRI`) only as a note on
/// read readiness ([`Ready::PRIORITY`]), never as readiness of its own.
///
/// [`Ready`]: crate::Ready
/// [`Ready::READ_CLOSED`]: crate::Ready::READ_CLOSED
/// [`Ready::WRITE_CLOSED`]: crate::Ready::WRITE_CLOSED
/// [`Ready::ERROR`]: crate::Ready::ERROR
/// [`Ready::PRIORITY`]: crate::Ready::PRIORITY
/// [`READABLE`]: Interest::READABLE
/// [`WRITABLE`]: Interest::WRITABLE
///
/// ```
/// use overlap::io::Interest;
///
/// let both = Interest::READABLE | Interest::WRITABLE;
/// assert!(both.is_readable() && both.is_writable());
/// assert_eq!(Interest::READABLE.add(Interest::WRITABLE), both);
/// assert_eq!(both.remove(Interest::WRITABLE), Some(Interest::READABLE));
/// assert_eq!(Interest::READABLE.remove(Interest::READABLE), None);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interest(u8);

impl Interest {
    /// Read readiness: data (or a connection to accept) is there, the peer closed its
    /// writing half, or an error is pending.
    pub const READABLE: Interest = Interest(1);
    /// Write readiness: there is room to write, the writing half is closed, or an error is
    /// pending.
    pub const WRITABLE: Interest = Interest(2);

    /// Whether the interest includes reading.
    pub const fn is_readable(self) -> bool {
        self.0 & Self::READABLE.0 != 0
    }

    /// Whether the interest includes writing.
    pub const fn is_writable(self) -> bool {
        self.0 & Self::WRITABLE.0 != 0
    }

    /// Both interests together (the same as `self | other`, usable in a `const`).
    pub const fn add(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }

    /// `self` without `other`'s directions, or `None` if none are left.
    pub const fn remove(self, other: Interest) -> Option<Interest> {
        let left = self.0 & !other.0;
        if left == 0 {
            None
        } else {
            Some(Interest(left))
        }
    }

    /// The directions of this interest, reads first.
    pub(crate) fn directions(self) -> impl Iterator<Item = Direction> {
        let read = self.is_readable().then_some(Direction::Read);
        let write = self.is_writable().then_some(Direction::Write);
        read.into_iter().chain(write)
    }

    /// The epoll events to register an fd for, edge-triggered.
    pub(crate) fn epoll_events(self) -> u32 {
        let mut events = libc::EPOLLET;
        if self.is_readable() {
            events |= libc::EPOLLIN | libc::EPOLLPRI | libc::EPOLLRDHUP;
        }
        if self.is_writable() {
            events |= libc::EPOLLOUT;
        }
        events as u32
    }
}

impl From<Direction> for Interest {
    fn from(dir: Direction) -> Interest {
        match dir {
            Direction::Read => Interest::READABLE,
            Direction::Write => Interest::WRITABLE,
        }
    }
}

impl ops::BitOr for Interest {
    type Output = Interest;
    fn bitor(self, rhs: Interest) -> Interest {
        self.add(rhs)
    }
}

impl ops::BitOrAssign for Interest {
    fn bitor_assign(&mut self, rhs: Interest) {
        *self = self.add(rhs);
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.is_readable(), self.is_writable()) {
            (true, true) => f.write_str("READABLE | WRITABLE"),
            (true, false) => f.write_str("READABLE"),
            _ => f.write_str("WRITABLE"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Interest;
    use crate::reactor::Direction;

    #[test]
    fn directions_and_masks_follow_the_bits() {
        let both = Interest::READABLE | Interest::WRITABLE;
        let dirs: Vec<Direction> = both.directions().collect();
        assert_eq!(dirs, [Direction::Read, Direction::Write]);
        assert_eq!(
            Interest::WRITABLE.epoll_events() & libc::EPOLLIN as u32,
            0,
            "a write-only registration hears no reads"
        );
        assert_eq!(both.epoll_events(), crate::sys::epoll::INTEREST);
    }
}
