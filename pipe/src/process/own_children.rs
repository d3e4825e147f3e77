//! The registry of overlap's own children not reaped yet, process-wide: what
//! [`reap_orphans`](super::reap_orphans) must leave alone.
//!
//! A pid goes in while the registry's lock is held across the spawn itself, so a reaper
//! holding the lock can never see a child of overlap's that is not registered yet; and it
//! comes out only *after* the child was reaped (or found reaped elsewhere, `ECHILD`), so
//! that until then nothing but overlap can reap it. Every reap of overlap's goes through
//! [`try_wait`] or [`wait`] here for that.

use std::collections::BTreeSet;
use std::io;
use std::process::ExitStatus;
use std::sync::{Mutex, MutexGuard};

use crate::sys;

/// The pids of overlap's unreaped children.
///
/// # Invariant
/// A pid is here from before its process could be seen by any other thread (inserted under
/// the lock held across the fork) until after it was reaped.
pub(super) struct OwnChildren(BTreeSet<u32>);

static OWN: Mutex<OwnChildren> = Mutex::new(OwnChildren(BTreeSet::new()));

/// Locks the registry. A panic under the lock (in a spawn) leaves it consistent: a pid is
/// inserted only once its spawn returned it.
pub(super) fn lock() -> MutexGuard<'static, OwnChildren> {
    OWN.lock().unwrap_or_else(|e| e.into_inner())
}

impl OwnChildren {
    /// Whether `pid` is one of overlap's children, not reaped yet.
    pub(super) fn contains(&self, pid: u32) -> bool {
        self.0.contains(&pid)
    }

    /// Takes out `pid`, whose child a wait just reaped or found gone, unless `pid` names a
    /// child of this process again: the old one's status cached by std (a second
    /// `try_wait`) or its `ECHILD` seen again, while a new child took the pid. A new child
    /// of overlap's was registered under this lock, and keeps its entry.
    fn remove_reaped(&mut self, pid: u32) {
        if matches!(sys::waitable_child(pid), Err(e) if e.raw_os_error() == Some(libc::ECHILD)) {
            self.0.remove(&pid);
        }
    }
}

/// `cmd.spawn()`, the child registered before the lock is let go.
pub(super) fn spawn(cmd: &mut std::process::Command) -> io::Result<std::process::Child> {
    let mut own = lock();
    let child = cmd.spawn()?;
    own.0.insert(child.id());
    Ok(child)
}

/// `child.try_wait()`, under the lock, the child unregistered once it was reaped, or found
/// not to be this process's child any more (`ECHILD`: reaped elsewhere).
pub(super) fn try_wait(child: &mut std::process::Child) -> io::Result<Option<ExitStatus>> {
    let mut own = lock();
    let reaped = child.try_wait();
    if gone(&reaped.as_ref().map(Option::is_some)) {
        own.remove_reaped(child.id());
    }
    reaped
}

/// `child.wait()`, blocking (outside the lock), the child unregistered once it was reaped,
/// as with [`try_wait`].
pub(super) fn wait(child: &mut std::process::Child) -> io::Result<ExitStatus> {
    let reaped = child.wait();
    if gone(&reaped.as_ref().map(|_| true)) {
        lock().remove_reaped(child.id());
    }
    reaped
}

/// Whether a wait reaped its child (`Ok(true)`) or found it gone (`ECHILD`).
fn gone(waited: &Result<bool, &io::Error>) -> bool {
    match waited {
        Ok(reaped) => *reaped,
        Err(e) => e.raw_os_error() == Some(libc::ECHILD),
    }
}
