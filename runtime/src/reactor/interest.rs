//! `Interest`: the directions a task (or a registration) cares about.

use std::fmt;
use std::ops;

use super::Direction;

/// The readiness to wait for, or to register an fd for: [`READABLE`], [`WRITABLE`],
/// [`PRIORITY`], [`ERROR`], or several (`Interest::READABLE | Interest::WRITABLE`).
///
/// A wait for an `Interest` ends as soon as one of its kinds of readiness is there, and
/// reports which in its [`Ready`]. Each comes with the states that mean nothing more will
/// come, so a wait never sleeps on a dead fd:
///
/// | interest | ends on | also on |
/// |---|---|---|
/// | `READABLE` | data to read (`EPOLLIN`, and `EPOLLPRI`: priority data counts as readable) | [`Ready::READ_CLOSED`], [`Ready::ERROR`] |
/// | `WRITABLE` | room to write (`EPOLLOUT`) | [`Ready::WRITE_CLOSED`], [`Ready::ERROR`] |
/// | `PRIORITY` | priority data (`EPOLLPRI`: TCP urgent data, a change in a sysfs attribute or `/proc/self/mounts`), reported as [`Ready::PRIORITY`] | [`Ready::READ_CLOSED`], [`Ready::ERROR`] |
/// | `ERROR` | an error pending on the fd (`EPOLLERR`), reported as [`Ready::ERROR`] | nothing else |
///
/// `ERROR` is tokio's `Interest::ERROR`: it ends on `EPOLLERR` only, never on read or write
/// readiness, so a task can wait for a connection to fail while its data sits unread (a
/// TCP reset, `ECONNRESET`; an ICMP error on a connected UDP socket; a pipe's write end
/// whose readers all left). A hang-up alone (`EPOLLHUP` without `EPOLLERR`: the peer closed
/// a Unix stream, or both halves of a TCP connection were shut down in order) does not end
/// it: that shows as [`Ready::READ_CLOSED`] to a `READABLE` wait. `PRIORITY` ends on the
/// read side's hang-up as tokio's does, and also on an error, as every other interest
/// here does.
///
/// The fd is registered once, for all of them (errors are always reported by epoll);
/// [`AsyncFd::with_interest`](crate::AsyncFd::with_interest) can leave read, write or
/// priority events out.
///
/// [`Ready`]: crate::Ready
/// [`Ready::READ_CLOSED`]: crate::Ready::READ_CLOSED
/// [`Ready::WRITE_CLOSED`]: crate::Ready::WRITE_CLOSED
/// [`Ready::ERROR`]: crate::Ready::ERROR
/// [`Ready::PRIORITY`]: crate::Ready::PRIORITY
/// [`READABLE`]: Interest::READABLE
/// [`WRITABLE`]: Interest::WRITABLE
/// [`PRIORITY`]: Interest::PRIORITY
/// [`ERROR`]: Interest::ERROR
///
/// ```
/// use overlap::io::Interest;
///
/// let both = Interest::READABLE | Interest::WRITABLE;
/// assert!(both.is_readable() && both.is_writable() && !both.is_error());
/// assert_eq!(Interest::READABLE.add(Interest::WRITABLE), both);
/// assert_eq!(both.remove(Interest::WRITABLE), Some(Interest::READABLE));
/// assert_eq!(Interest::READABLE.remove(Interest::READABLE), None);
/// let rare = Interest::PRIORITY | Interest::ERROR;
/// assert!(rare.is_priority() && rare.is_error() && !rare.is_readable());
/// assert_eq!(format!("{:?}", both | rare), "READABLE | WRITABLE | PRIORITY | ERROR");
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
    /// Priority readiness (`EPOLLPRI`): TCP urgent data arrived, or a sysfs attribute or
    /// `/proc/self/mounts` changed; also the read side's hang-up, or an error. No read
    /// clears it: clear the guard once the priority data is handled (example:
    /// [`AsyncFd::ready_mut`](crate::AsyncFd::ready_mut)).
    pub const PRIORITY: Interest = Interest(4);
    /// Error readiness (`EPOLLERR`) only: an error is pending on the fd. Read or write
    /// readiness does not end such a wait (see the table above; example:
    /// [`AsyncFd::ready`](crate::AsyncFd::ready)).
    pub const ERROR: Interest = Interest(8);

    /// Whether the interest includes reading.
    pub const fn is_readable(self) -> bool {
        self.0 & Self::READABLE.0 != 0
    }

    /// Whether the interest includes writing.
    pub const fn is_writable(self) -> bool {
        self.0 & Self::WRITABLE.0 != 0
    }

    /// Whether the interest includes priority readiness.
    pub const fn is_priority(self) -> bool {
        self.0 & Self::PRIORITY.0 != 0
    }

    /// Whether the interest includes error readiness.
    pub const fn is_error(self) -> bool {
        self.0 & Self::ERROR.0 != 0
    }

    /// Both interests together (the same as `self | other`, usable in a `const`).
    pub const fn add(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }

    /// `self` without `other`'s kinds of readiness, or `None` if none are left.
    pub const fn remove(self, other: Interest) -> Option<Interest> {
        let left = self.0 & !other.0;
        if left == 0 {
            None
        } else {
            Some(Interest(left))
        }
    }

    /// The directions of this interest: reads, writes, priority, errors.
    pub(crate) fn directions(self) -> impl Iterator<Item = Direction> {
        let read = self.is_readable().then_some(Direction::Read);
        let write = self.is_writable().then_some(Direction::Write);
        let priority = self.is_priority().then_some(Direction::Priority);
        let error = self.is_error().then_some(Direction::Error);
        read.into_iter().chain(write).chain(priority).chain(error)
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
        if self.is_priority() {
            events |= libc::EPOLLPRI | libc::EPOLLRDHUP;
        }
        // Errors (and hang-ups) are reported whatever the events asked for.
        events as u32
    }
}

impl From<Direction> for Interest {
    fn from(dir: Direction) -> Interest {
        match dir {
            Direction::Read => Interest::READABLE,
            Direction::Write => Interest::WRITABLE,
            Direction::Priority => Interest::PRIORITY,
            Direction::Error => Interest::ERROR,
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
        let names = [
            (Interest::READABLE, "READABLE"),
            (Interest::WRITABLE, "WRITABLE"),
            (Interest::PRIORITY, "PRIORITY"),
            (Interest::ERROR, "ERROR"),
        ];
        let mut sep = "";
        for (bit, name) in names {
            if self.0 & bit.0 != 0 {
                f.write_str(sep)?;
                f.write_str(name)?;
                sep = " | ";
            }
        }
        Ok(())
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
        let all = both | Interest::PRIORITY | Interest::ERROR;
        let dirs: Vec<Direction> = all.directions().collect();
        assert_eq!(
            dirs,
            [
                Direction::Read,
                Direction::Write,
                Direction::Priority,
                Direction::Error
            ]
        );
        assert_eq!(all.epoll_events(), crate::sys::epoll::INTEREST);
        assert_eq!(
            Interest::ERROR.epoll_events(),
            libc::EPOLLET as u32,
            "errors need no event bit: epoll always reports them"
        );
        let prio = Interest::PRIORITY.epoll_events();
        assert_eq!(prio & (libc::EPOLLIN | libc::EPOLLOUT) as u32, 0);
        assert_ne!(prio & libc::EPOLLPRI as u32, 0);
    }

    #[test]
    fn debug_names_every_bit() {
        assert_eq!(format!("{:?}", Interest::ERROR), "ERROR");
        assert_eq!(
            format!("{:?}", Interest::WRITABLE | Interest::PRIORITY),
            "WRITABLE | PRIORITY"
        );
        assert_eq!(
            (Interest::ERROR | Interest::READABLE).remove(Interest::READABLE),
            Some(Interest::ERROR)
        );
    }
}
