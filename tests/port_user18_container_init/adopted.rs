//! Adopted orphans: processes the init never spawned, reparented to it because it is a
//! child subreaper, which it must reap or they stay zombies for ever.
//!
//! # Reaping them without stealing overlap's statuses
//! The classic init loop is `while waitpid(-1, WNOHANG) > 0 {}` on every `SIGCHLD`. Here
//! that would also reap the main command, which overlap's [`Child`] owns: its `wait` (or
//! `exited`) would then fail with `ECHILD` and the exit code would be lost, and a pid
//! reaped behind overlap's back may be taken by a new process before overlap looks again.
//! The init even keeps the main command a zombie on purpose (`Child::exited`), so that
//! its pid, and the group id it leads, stay its own while the group is shut down.
//!
//! `waitid(P_ALL, WEXITED | WNOHANG | WNOWAIT)`, peeking before reaping, is no way out:
//! it reports one exited child, and while the main command sits there as a zombie it may
//! report that one again and again, hiding every orphan behind it.
//!
//! So the init names its children instead: `/proc/self/task/*/children` lists every child
//! of every thread (zombies included; an orphan is reparented to one of the threads), and
//! each pid that is not one of the init's own [`Child`]ren is reaped by pid with
//! `waitpid(pid, WNOHANG)`. That is safe because nothing else reaps an adopted orphan, so
//! its pid cannot be reused between the listing and the reap; and a pid of one of ours is
//! never touched. It needs `/proc` and a kernel built with `CONFIG_PROC_CHILDREN`; and the
//! init must know every pid overlap spawned for it, which is easy here (one main command,
//! spawned before the first reap) but is no general answer: see "What porting it found
//! missing".
//!
//! [`Child`]: overlap::process::Child

use std::io;
use std::process::ExitStatus;

use crate::sys;

/// The pids of this process's children, of all its threads, zombies included, in the
/// kernel's order.
pub fn children() -> io::Result<Vec<u32>> {
    let mut pids = Vec::new();
    for task in std::fs::read_dir("/proc/self/task")? {
        let path = task?.path().join("children");
        // A thread that ended between the listing and the read has no children left.
        let Ok(list) = std::fs::read_to_string(path) else {
            continue;
        };
        pids.extend(
            list.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    Ok(pids)
}

/// The children that are not in `ours` (the pids of the init's own `Child`ren): adopted
/// orphans, running or exited.
pub fn adopted(ours: &[u32]) -> io::Result<Vec<u32>> {
    let mut pids = children()?;
    pids.retain(|p| !ours.contains(p));
    Ok(pids)
}

/// One adopted orphan reaped: its pid and how it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reaped {
    /// The orphan's pid (free for reuse from now on).
    pub pid: u32,
    /// Its wait status.
    pub status: ExitStatus,
}

/// Reaps every adopted orphan that has exited, leaving the pids in `ours` alone, exited or
/// not. Returns those reaped and how many adopted orphans still run.
pub fn reap_adopted(ours: &[u32]) -> io::Result<(Vec<Reaped>, usize)> {
    let mut reaped = Vec::new();
    let mut running = 0;
    for pid in adopted(ours)? {
        match sys::reap_if_exited(pid) {
            Ok(Some(status)) => reaped.push(Reaped { pid, status }),
            Ok(None) => running += 1,
            // Listed a moment ago but not ours to wait for any more: nothing to do.
            Err(e) if e.raw_os_error() == Some(libc::ECHILD) => {}
            Err(e) => return Err(e),
        }
    }
    Ok((reaped, running))
}
