//! Children dropped while still running whose runtime ended before they did: no background
//! task is left to reap them, so a process-wide thread waits for them instead, and no
//! zombie outlives them.
//!
//! The thread waits on all of them at once (`poll(2)` over their pidfds, plus a pipe that
//! says a new orphan arrived) and reaps each as it exits, whatever the order: one orphan
//! that never exits holds back no other. Where a pidfd cannot be had (a kernel before 5.3),
//! it looks every 100 ms instead.

use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Child;
use std::sync::{Mutex, MutexGuard};
use std::thread;

use super::own_children;
use crate::sys;

/// How often the reaper looks when some orphan has no pidfd to wait on, in milliseconds.
const BLIND_LOOK_MS: libc::c_int = 100;

/// A child no runtime will reap, and what tells its exit.
struct Orphan {
    child: Child,
    pidfd: Option<OwnedFd>,
}

/// The orphans, and the reaping thread's state.
struct Orphans {
    list: Vec<Orphan>,
    reaper_running: bool,
    /// A non-blocking pipe: a byte written to `.1` wakes the reaper to add a new orphan to
    /// its wait. Made with the first orphan; `None` if that failed (the reaper then looks
    /// every [`BLIND_LOOK_MS`]).
    wake: Option<(OwnedFd, OwnedFd)>,
}

static ORPHANS: Mutex<Orphans> = Mutex::new(Orphans {
    list: Vec::new(),
    reaper_running: false,
    wake: None,
});

fn lock() -> MutexGuard<'static, Orphans> {
    // Only list and flag updates happen under this lock: a poisoned one is consistent.
    ORPHANS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Hands `child`, still running, to the orphan reaper thread, starting it if it is not
/// running. If no thread can start, the child is left to the operating system (a zombie
/// until this process exits), as before there was a reaper.
pub(super) fn adopt(child: Child) {
    // Not reaped yet, so its pid still names it.
    let pidfd = sys::pidfd_open(child.id()).ok();
    let mut orphans = lock();
    orphans.list.push(Orphan { child, pidfd });
    if orphans.reaper_running {
        if let Some((_, w)) = &orphans.wake {
            // Full means a wake is already pending: nothing is lost.
            let _ = sys::write(w.as_raw_fd(), &[1]);
        }
        return;
    }
    if orphans.wake.is_none() {
        orphans.wake = sys::pipe().ok();
    }
    let started = thread::Builder::new()
        .name("overlap-orphan-reaper".into())
        .spawn(reap_all);
    orphans.reaper_running = started.is_ok();
}

/// The reaper thread: reaps every orphan that has exited, then waits for the next exit or
/// a new orphan; ends when none is left.
fn reap_all() {
    loop {
        let (mut fds, timeout) = {
            let mut orphans = lock();
            // An error means the child is no longer ours to wait for (reaped elsewhere).
            orphans
                .list
                .retain_mut(|o| matches!(own_children::try_wait(&mut o.child), Ok(None)));
            if orphans.list.is_empty() {
                orphans.reaper_running = false;
                return;
            }
            let watch = |fd: &OwnedFd| libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // The fds stay open while the lock is released: only this thread takes
            // orphans off the list, and the wake pipe is never closed.
            let mut fds: Vec<libc::pollfd> = orphans
                .list
                .iter()
                .filter_map(|o| o.pidfd.as_ref().map(watch))
                .collect();
            fds.extend(orphans.wake.as_ref().map(|(r, _)| watch(r)));
            let blind = orphans.wake.is_none() || orphans.list.iter().any(|o| o.pidfd.is_none());
            (fds, if blind { BLIND_LOOK_MS } else { -1 })
        };
        if sys::poll_fds(&mut fds, timeout).is_err() {
            // Cannot wait (out of memory for the poll set, say): look again shortly.
            thread::sleep(std::time::Duration::from_millis(BLIND_LOOK_MS as u64));
        }
        let orphans = lock();
        if let Some((r, _)) = &orphans.wake {
            let mut sink = [0u8; 64];
            while matches!(sys::read(r.as_raw_fd(), &mut sink), Ok(n) if n > 0) {}
        }
    }
}
