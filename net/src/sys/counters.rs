//! Per-thread counts of the I/O syscalls made by overlap-net (feature `count-syscalls`).
//!
//! Tests use them to prove that an echo round trip costs one `recv` and one `send`.

use std::cell::Cell;

/// Which kind of syscall to count.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    Recv,
    Send,
    Accept,
}

thread_local! {
    static COUNTS: [Cell<u64>; 3] = const { [Cell::new(0), Cell::new(0), Cell::new(0)] };
}

pub(crate) fn bump(kind: Kind) {
    COUNTS.with(|c| c[kind as usize].set(c[kind as usize].get() + 1));
}

/// Socket syscalls made by overlap-net on the calling thread since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyscallCounts {
    /// `recv`, `recvfrom` (including calls that failed with `EAGAIN`).
    pub recv: u64,
    /// `send`, `sendto`, `sendmsg`.
    pub send: u64,
    /// `accept4`.
    pub accept: u64,
}

/// A snapshot of this thread's counters.
pub fn syscall_counts() -> SyscallCounts {
    COUNTS.with(|c| SyscallCounts {
        recv: c[0].get(),
        send: c[1].get(),
        accept: c[2].get(),
    })
}
