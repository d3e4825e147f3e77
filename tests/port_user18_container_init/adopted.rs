//! Adopted orphans: processes the init never spawned, reparented to it because it is a
//! child subreaper, which it must reap or they stay zombies for ever.
//!
//! # Reaping them without stealing overlap's statuses
//! The classic init loop is `while waitpid(-1, WNOHANG) > 0 {}` on every `SIGCHLD`. Here
//! that would also reap the main command, which overlap's [`Child`] owns: its `wait` (or
//! `exited`) would then fail with `ECHILD` and the exit code would be lost, and a pid
//! reaped behind overlap's back may be taken by a new process before overlap looks again
//! (`tests_reaping.rs` shows it). The init even keeps the main command a zombie on purpose
//! (`Child::exited`), so that its pid, and the group id it leads, stay its own while the
//! group is shut down; and `waitid(P_ALL, WEXITED | WNOHANG | WNOWAIT)`, peeking before
//! reaping, reports one exited child, which may be that zombie again and again, hiding
//! every orphan behind it.
//!
//! So the init reaps with [`overlap::process::reap_orphans`], which reaps every exited
//! child that overlap did not spawn and none of overlap's own (it keeps a registry of them,
//! from their spawn to their reap, and looks past overlap's zombie through `/proc`). The
//! init still lists its children (`/proc/self/task/*/children`, zombies included) to know
//! which adopted orphans still run, to signal them at shutdown and to tell when none is
//! left: for that it skips the pids of its own `Child`ren (one, the main command).
//!
//! [`Child`]: overlap::process::Child

use std::io;
use std::process::ExitStatus;

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

/// Reaps every adopted orphan that has exited ([`overlap::process::reap_orphans`], which
/// leaves overlap's own children alone, the main command's zombie included). Returns those
/// reaped and how many adopted orphans (children not in `ours`, the pids of the init's own
/// `Child`ren) are left, running or exited since.
pub fn reap_adopted(ours: &[u32]) -> io::Result<(Vec<Reaped>, usize)> {
    let reaped = overlap::process::reap_orphans()?
        .into_iter()
        .map(|(pid, status)| Reaped { pid, status })
        .collect();
    Ok((reaped, adopted(ours)?.len()))
}
