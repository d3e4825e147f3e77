//! The registry of overlap's own children not reaped yet, process-wide: what
//! [`reap_orphans`](super::reap_orphans) must leave alone.
//!
//! A pid goes in before its spawn lets go of [`SPAWNS`] (read), and a reaper holds that
//! lock (write) while it decides which children are not overlap's, so it never sees a
//! child of overlap's that is not registered yet; and the pid comes out only *after* the
//! child was reaped (or found reaped elsewhere, `ECHILD`), so that until then nothing but
//! overlap can reap it. Every reap of overlap's goes through [`try_wait`] or [`wait`] here
//! for that.
//!
//! The registry itself is locked only for a lookup, an insert, or a reap and its removal:
//! a spawn held up between its fork and its exec (the fork of a big process, an exec from
//! a slow file system, a `pre_exec` that waits) holds up `reap_orphans`, and other spawns
//! only while `reap_orphans` waits, but never the reaps of overlap's other children.

use std::collections::BTreeSet;
use std::io;
use std::process::ExitStatus;
use std::sync::{Mutex, MutexGuard, RwLock, RwLockWriteGuard};

use crate::sys;

/// The pids of overlap's unreaped children.
///
/// # Invariant
/// A pid is here from before its spawn lets go of [`SPAWNS`] until after it was reaped.
pub(super) struct OwnChildren(BTreeSet<u32>);

static OWN: Mutex<OwnChildren> = Mutex::new(OwnChildren(BTreeSet::new()));

/// Held for reading by each spawn of overlap's, from before its fork until its pid is in
/// [`OWN`]; for writing by a reaper of other children ([`no_spawns`]).
static SPAWNS: RwLock<()> = RwLock::new(());

/// Locks the registry. A panic under the lock leaves it consistent: each change is one
/// insert or one removal.
fn lock() -> MutexGuard<'static, OwnChildren> {
    OWN.lock().unwrap_or_else(|e| e.into_inner())
}

/// While held, no spawn of overlap's is under way: every child of overlap's is in the
/// registry, until it is reaped.
pub(super) struct NoSpawns(#[allow(dead_code)] RwLockWriteGuard<'static, ()>);

/// Waits for the spawns of overlap's under way to register their children, and holds off
/// new ones until the guard is dropped.
pub(super) fn no_spawns() -> NoSpawns {
    // A spawn that panicked (in std) under the read lock registered nothing: consistent.
    NoSpawns(SPAWNS.write().unwrap_or_else(|e| e.into_inner()))
}

impl NoSpawns {
    /// Whether `pid` is one of overlap's children, not reaped yet. Exact while `self` is
    /// held, until the child is reaped.
    pub(super) fn is_own(&self, pid: u32) -> bool {
        lock().0.contains(&pid)
    }
}

impl OwnChildren {
    /// Takes out `pid`, whose child a wait just reaped or found gone, unless `pid` names a
    /// child of this process again: the old one's status cached by std (a second
    /// `try_wait`) or its `ECHILD` seen again, while a new child took the pid. A new child
    /// of overlap's keeps its entry, registered already or about to be.
    fn remove_reaped(&mut self, pid: u32) {
        if matches!(sys::waitable_child(pid), Err(e) if e.raw_os_error() == Some(libc::ECHILD)) {
            self.0.remove(&pid);
        }
    }
}

/// `cmd.spawn()`, the child registered before [`SPAWNS`] is let go. The registry is not
/// locked across the spawn: a child of overlap's that another spawn has not registered yet
/// can only be reaped by overlap (its spawn, on exec failing), never by `reap_orphans`,
/// which waits for the spawn first.
pub(super) fn spawn(cmd: &mut std::process::Command) -> io::Result<std::process::Child> {
    let _spawning = SPAWNS.read().unwrap_or_else(|e| e.into_inner());
    let child = cmd.spawn()?;
    lock().0.insert(child.id());
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
