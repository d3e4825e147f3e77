//! The calling thread's timer slack (`prctl(PR_SET_TIMERSLACK)`).
//!
//! Linux lets a sleeping thread's wakeup be delayed by up to its *timer slack* (50 µs by
//! default) so that nearby wakeups can be merged. `epoll_pwait2` honours it, so with the
//! default a 1 ms sleep overshoots by about 50 µs more than it needs to.

use std::io;

/// The calling thread's timer slack, in nanoseconds.
pub(crate) fn get() -> io::Result<u64> {
    // SAFETY: PR_GET_TIMERSLACK reads no pointers; the unused arguments must be zero (passed
    // as full-width longs, since prctl is variadic).
    let ns = unsafe {
        libc::prctl(
            libc::PR_GET_TIMERSLACK,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if ns == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(ns as u64)
}

/// Sets the calling thread's timer slack; `0` restores the thread's default.
pub(crate) fn set(ns: u64) -> io::Result<()> {
    // SAFETY: PR_SET_TIMERSLACK takes the value itself, no pointers; the rest must be zero.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_TIMERSLACK,
            ns as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
