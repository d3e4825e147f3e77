//! Readiness bits and the event snapshot used to clear them safely.

use std::fmt;
use std::ops;

/// A set of readiness states reported for an fd.
///
/// `READ_CLOSED` (the peer shut its write side: `EPOLLRDHUP`, or `EPOLLHUP`) and
/// `WRITE_CLOSED` (`EPOLLHUP`) stay set: once seen, reads keep returning 0 and writes keep
/// failing without waiting. Only for an fd whose hang-up may end (a FIFO whose writers all
/// left can get a new one; see `AsyncFd::set_hangup_may_end`) does an operation in that
/// direction failing with `WouldBlock` clear them, since it proves the hang-up is over.
/// `ERROR` (`EPOLLERR`) wakes the waits of every [`Interest`](crate::io::Interest), and is
/// all that ends an [`Interest::ERROR`](crate::io::Interest::ERROR) wait, so the next
/// syscall reports the error; it is cleared with the readiness after a `WouldBlock`, which
/// proves the error was consumed (a UDP socket is usable again after an ICMP error).
///
/// `PRIORITY` (`EPOLLPRI`) means two things, by the wait that reports it. To a
/// [`Interest::PRIORITY`](crate::io::Interest::PRIORITY) wait it is readiness: priority
/// data was signalled since that readiness was last cleared, and clearing the guard's
/// readiness makes the next such wait sleep until the kernel signals it again. To a
/// `READABLE` wait it is a note that is never cleared: priority data was signalled at some
/// point, so a short read no longer proves the queue drained (see [`Ready::PRIORITY`]).
///
/// Waits return it ([`AsyncFd::ready`](crate::AsyncFd::ready), and the sockets' `ready`);
/// it is a plain set of bits:
///
/// ```
/// use overlap::io::Ready;
///
/// let seen = Ready::READABLE | Ready::PRIORITY;
/// assert!(seen.is_readable() && seen.is_priority());
/// assert!(!seen.is_error() && !seen.is_read_closed());
/// assert!(seen.contains(Ready::PRIORITY) && !seen.contains(Ready::ERROR));
/// assert_eq!(seen - Ready::PRIORITY, Ready::READABLE);
/// assert_eq!(format!("{:?}", seen | Ready::ERROR), "{READABLE, ERROR, PRIORITY}");
/// assert!(Ready::EMPTY.is_empty());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Ready(u8);

impl Ready {
    /// No readiness.
    pub const EMPTY: Ready = Ready(0);
    /// Data can be read (`EPOLLIN`).
    pub const READABLE: Ready = Ready(1);
    /// Data can be written (`EPOLLOUT`).
    pub const WRITABLE: Ready = Ready(2);
    /// The peer closed its writing half (`EPOLLRDHUP` or `EPOLLHUP`).
    pub const READ_CLOSED: Ready = Ready(4);
    /// The writing half is closed (`EPOLLHUP`).
    pub const WRITE_CLOSED: Ready = Ready(8);
    /// An error is pending on the fd (`EPOLLERR`).
    pub const ERROR: Ready = Ready(16);
    /// Priority data was signalled (`EPOLLPRI`: TCP urgent data, a sysfs attribute or
    /// `/proc/self/mounts` change). To an [`Interest::PRIORITY`](crate::io::Interest::PRIORITY)
    /// wait, it is what ended the wait (cleared with the guard's readiness). To a read
    /// wait, it is a note that stays for good once priority data was ever signalled: a
    /// reader that reads up to a TCP urgent mark gets less than is queued, so once this is
    /// set a short read no longer proves the queue drained. Priority data also makes the
    /// fd `READABLE`.
    pub const PRIORITY: Ready = Ready(32);

    /// Priority data signalled since a priority waiter last cleared it: the clearable twin
    /// of the sticky `PRIORITY` note, never shown to users (see [`ReadyEvent::ready`]).
    pub(crate) const PRIORITY_EDGE: Ready = Ready(64);

    /// Both halves closed.
    pub(crate) const BOTH_CLOSED: Ready = Ready(4 | 8);
    /// What a reader waits for.
    pub(crate) const READ_INTEREST: Ready = Ready(1 | 4 | 16);
    /// What a writer waits for.
    pub(crate) const WRITE_INTEREST: Ready = Ready(2 | 8 | 16);
    /// What a priority waiter waits for.
    pub(crate) const PRIORITY_INTEREST: Ready = Ready(64 | 4 | 16);
    /// What an error waiter waits for.
    pub(crate) const ERROR_INTEREST: Ready = Ready(16);
    /// Bits that `clear_ready` may remove.
    pub(crate) const CLEARABLE: Ready = Ready(1 | 2 | 16 | 64);

    pub(crate) fn from_epoll(events: u32) -> Ready {
        let mut r = 0;
        if events & (libc::EPOLLIN | libc::EPOLLPRI) as u32 != 0 {
            r |= Self::READABLE.0;
        }
        if events & libc::EPOLLPRI as u32 != 0 {
            r |= Self::PRIORITY.0 | Self::PRIORITY_EDGE.0;
        }
        if events & libc::EPOLLOUT as u32 != 0 {
            r |= Self::WRITABLE.0;
        }
        if events & libc::EPOLLRDHUP as u32 != 0 {
            r |= Self::READ_CLOSED.0;
        }
        if events & libc::EPOLLHUP as u32 != 0 {
            r |= Self::READ_CLOSED.0 | Self::WRITE_CLOSED.0;
        }
        if events & libc::EPOLLERR as u32 != 0 {
            r |= Self::ERROR.0;
        }
        Ready(r)
    }

    /// Whether no bit is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Whether `READABLE` is set.
    pub fn is_readable(self) -> bool {
        self.contains(Self::READABLE)
    }
    /// Whether `WRITABLE` is set.
    pub fn is_writable(self) -> bool {
        self.contains(Self::WRITABLE)
    }
    /// Whether `READ_CLOSED` is set.
    pub fn is_read_closed(self) -> bool {
        self.contains(Self::READ_CLOSED)
    }
    /// Whether `WRITE_CLOSED` is set.
    pub fn is_write_closed(self) -> bool {
        self.contains(Self::WRITE_CLOSED)
    }
    /// Whether `ERROR` is set.
    pub fn is_error(self) -> bool {
        self.contains(Self::ERROR)
    }
    /// Whether `PRIORITY` is set.
    pub fn is_priority(self) -> bool {
        self.contains(Self::PRIORITY)
    }
    /// Whether every bit of `other` is set in `self`.
    pub fn contains(self, other: Ready) -> bool {
        self.0 & other.0 == other.0
    }
    pub(crate) fn intersects(self, other: Ready) -> bool {
        self.0 & other.0 != 0
    }
}

impl ops::BitOr for Ready {
    type Output = Ready;
    fn bitor(self, rhs: Ready) -> Ready {
        Ready(self.0 | rhs.0)
    }
}

impl ops::BitAnd for Ready {
    type Output = Ready;
    fn bitand(self, rhs: Ready) -> Ready {
        Ready(self.0 & rhs.0)
    }
}

impl ops::Sub for Ready {
    type Output = Ready;
    fn sub(self, rhs: Ready) -> Ready {
        Ready(self.0 & !rhs.0)
    }
}

impl fmt::Debug for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Self::READABLE, "READABLE"),
            (Self::WRITABLE, "WRITABLE"),
            (Self::READ_CLOSED, "READ_CLOSED"),
            (Self::WRITE_CLOSED, "WRITE_CLOSED"),
            (Self::ERROR, "ERROR"),
            (Self::PRIORITY, "PRIORITY"),
        ];
        let mut set = f.debug_set();
        for (bit, name) in names {
            if self.contains(bit) {
                set.entry(&format_args!("{name}"));
            }
        }
        set.finish()
    }
}

/// Readiness observed at one moment, with the slot's tick at that moment: what
/// [`Registered::poll_readiness`](crate::Registered::poll_readiness) returns, to be handed
/// back to [`Registered::clear_readiness`](crate::Registered::clear_readiness) after a
/// `WouldBlock`.
///
/// Clearing with an old event is a no-op if a newer edge arrived since (the tick moved on),
/// so a `WouldBlock` can never erase readiness the kernel reported after the syscall.
#[derive(Clone, Copy, Debug)]
pub struct ReadyEvent {
    pub(crate) ready: Ready,
    pub(crate) tick: u32,
}

impl ReadyEvent {
    /// `self` and `later` (seen after it, in another direction) as one event: the union of
    /// their readiness, with the later tick, so clearing it after an operation that followed
    /// both looks is a no-op only if an edge arrived after the later look.
    pub(crate) fn merge(self, later: ReadyEvent) -> ReadyEvent {
        ReadyEvent {
            ready: self.ready | later.ready,
            tick: later.tick,
        }
    }

    /// The event limited to the bits of `ready` (`PRIORITY` standing for the priority
    /// readiness too, so clearing it after a priority wait clears what that wait saw).
    pub(crate) fn only(self, ready: Ready) -> ReadyEvent {
        let mask = if ready.intersects(Ready::PRIORITY) {
            ready | Ready::PRIORITY_EDGE
        } else {
            ready
        };
        ReadyEvent {
            ready: self.ready & mask,
            tick: self.tick,
        }
    }

    /// The readiness seen, limited to the direction that was polled: with
    /// [`Ready::PRIORITY`] as a note on read readiness, and as the readiness itself for a
    /// priority wait.
    pub fn ready(&self) -> Ready {
        self.ready - Ready::PRIORITY_EDGE
    }
}

/// What a task waits on in an fd: one of the kinds of readiness of an
/// [`Interest`](crate::io::Interest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Readable, read side closed, or an error.
    Read,
    /// Writable, write side closed, or an error.
    Write,
    /// Priority data (`EPOLLPRI`), read side closed, or an error.
    Priority,
    /// An error (`EPOLLERR`) only: read or write readiness does not count.
    Error,
}

impl Direction {
    pub(crate) fn interest(self) -> Ready {
        match self {
            Direction::Read => Ready::READ_INTEREST,
            Direction::Write => Ready::WRITE_INTEREST,
            Direction::Priority => Ready::PRIORITY_INTEREST,
            Direction::Error => Ready::ERROR_INTEREST,
        }
    }
}
