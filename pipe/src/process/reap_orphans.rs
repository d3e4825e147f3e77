//! [`reap_orphans`]: reaping the exited children of this process that overlap did not
//! spawn (orphans adopted by a subreaper, say), leaving overlap's own alone.

use std::io;
use std::process::ExitStatus;

use super::own_children::{self, NoSpawns};
use crate::sys;

/// Reaps every exited child of this process that overlap did not spawn, returning the pid
/// and exit status of each, in the order reaped; an empty `Vec` if there is none. Does not
/// block, and never touches a child of overlap's that is not reaped yet: a [`Child`]'s
/// [`wait`](super::Child::wait) (or [`exited`](super::Child::exited), which keeps the child a zombie on
/// purpose) still gets its status, and one dropped and reaped in the background is never
/// reported here.
///
/// # What it is for
/// A process that gets children it never spawned must reap them, or they stay zombies
/// until it exits: a child subreaper (`prctl(PR_SET_CHILD_SUBREAPER)`), to which processes
/// orphaned below it are reparented; PID 1 in a container, to which every orphan of the
/// container goes; a supervisor that adopts the daemons its services start. The classic
/// `while waitpid(-1, WNOHANG) > 0 {}` would reap overlap's children too, and their
/// `wait` would fail with `ECHILD`, the status lost. Call this instead, each time a
/// `SIGCHLD` arrives: listen with
/// [`overlap::signal::signal(SignalKind::child())`](overlap_runtime::signal::signal),
/// and reap after each `recv` (signals of a kind sent together may arrive as one, so reap
/// them all each time, as this does).
///
/// # Which children are overlap's
/// Those spawned through [`Command`](super::Command), [`spawn`](super::spawn) and
/// [`output`](super::output), from their spawn until overlap reaped them. A child spawned
/// with plain [`std::process::Command`] (or `fork`) outside overlap is not: this reaps it
/// too once it exits, and std's own `wait` on it then fails. Spawn through overlap what
/// you mean to wait for yourself, or don't mix the two.
///
/// # How
/// `waitid(P_ALL, WEXITED | WNOHANG | WNOWAIT)` names one exited child without reaping
/// it: one of someone else's is reaped by its pid, and the next looked for. Once it names
/// one of overlap's (a zombie kept by [`Child::exited`], or one about to be reaped), which
/// would hide the others behind it, the children are listed instead, from
/// `/proc/self/task/*/children` (a kernel built with `CONFIG_PROC_CHILDREN`) or else from
/// the parent pid of each `/proc/<pid>/stat`, and each one not overlap's is reaped by pid
/// if it has exited. A spawn of overlap's waits while a child is chosen and reaped here,
/// and this waits for the spawns under way to register their children, so a child of
/// overlap's is never taken for an orphan; the listing itself holds up nothing.
///
/// Fails if `/proc` cannot be read where the listing is needed, or with `waitid`'s error;
/// but only if it reaped nothing before the error. A reaped child's status is nowhere else
/// once reaped, so the children reaped before an error are returned instead, and an error
/// that persists is reported by the next call.
///
/// ```
/// use std::os::unix::process::ExitStatusExt;
///
/// overlap::block_on(async {
///     // Not spawned through overlap: reaped by `reap_orphans` once it exits.
///     let stray = std::process::Command::new("sh").args(["-c", "exit 7"]).spawn()?;
///     // Spawned through overlap: left alone, its status `wait`'s.
///     let mut ours = overlap::process::Command::new("sh").args(["-c", "exit 3"]).spawn()?;
///     assert_eq!(ours.exited().await?.code(), Some(3)); // exited, not reaped
///     let mut reaped = Vec::new();
///     while reaped.is_empty() {
///         reaped = overlap::process::reap_orphans()?;
///         overlap::time::sleep(std::time::Duration::from_millis(1)).await;
///     }
///     assert_eq!(reaped.len(), 1);
///     assert_eq!((reaped[0].0, reaped[0].1.code()), (stray.id(), Some(7)));
///     assert_eq!(ours.wait().await?.code(), Some(3));
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
///
/// [`Child`]: super::Child
/// [`Child::exited`]: super::Child::exited
pub fn reap_orphans() -> io::Result<Vec<(u32, ExitStatus)>> {
    let mut reaped = Vec::new();
    match reap_all(&mut reaped) {
        // Nothing reaped yet: nothing is lost by failing.
        Err(e) if reaped.is_empty() => Err(e),
        // The statuses already taken from the kernel go back; the error, if it stays,
        // comes with the next call.
        _ => Ok(reaped),
    }
}

/// The body of [`reap_orphans`]: reaps every exited child not overlap's, adding it to
/// `reaped` as it goes, so that an error leaves there what was reaped before it.
fn reap_all(reaped: &mut Vec<(u32, ExitStatus)>) -> io::Result<()> {
    let no_spawns = own_children::no_spawns();
    loop {
        let pid = match sys::any_exited_unreaped() {
            Ok(Some((pid, _))) => pid,
            // Every child still runs, or there is none.
            Ok(None) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ECHILD) => return Ok(()),
            Err(e) => return Err(e),
        };
        if no_spawns.is_own(pid) {
            // overlap's zombie may be named again and again: look at each child instead,
            // listed while spawns go on (any child spawned meanwhile is registered before
            // `no_spawns` is held again).
            drop(no_spawns);
            let listed = children()?;
            return reap_listed(listed, &own_children::no_spawns(), reaped);
        }
        // Not overlap's, and unreaped: no spawn of overlap's can take the pid before this
        // reap (it waits for `no_spawns`); reaped meanwhile by a wait of someone else's,
        // it is skipped (`ECHILD`), and one that took its pid since is not overlap's.
        if let Some(status) = reap(pid)? {
            reaped.push((pid, status));
        }
    }
}

/// Reaps each exited child of `listed` that is not overlap's, adding it to `reaped`.
fn reap_listed(
    listed: Vec<u32>,
    no_spawns: &NoSpawns,
    reaped: &mut Vec<(u32, ExitStatus)>,
) -> io::Result<()> {
    for pid in listed {
        if no_spawns.is_own(pid) {
            continue;
        }
        if let Some(status) = reap(pid)? {
            reaped.push((pid, status));
        }
    }
    Ok(())
}

/// Reaps child `pid` if it has exited. `None` if it runs, or is no child of this process
/// any more (`ECHILD`: a listed child reaped meanwhile by a `waitpid` of someone else's).
fn reap(pid: u32) -> io::Result<Option<ExitStatus>> {
    match sys::reap_if_exited(pid) {
        Err(e) if e.raw_os_error() == Some(libc::ECHILD) => Ok(None),
        other => other,
    }
}

/// The pids of this process's children, of all its threads, zombies included: from
/// `/proc/self/task/*/children`, or, on a kernel without `CONFIG_PROC_CHILDREN` (no such
/// file), from every `/proc/<pid>/stat` whose parent is this process.
fn children() -> io::Result<Vec<u32>> {
    let mut pids = Vec::new();
    for task in std::fs::read_dir("/proc/self/task")? {
        let dir = task?.path();
        match std::fs::read_to_string(dir.join("children")) {
            Ok(list) => pids.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            ),
            // No such file in a thread that is still there: no `CONFIG_PROC_CHILDREN`.
            Err(e) if e.kind() == io::ErrorKind::NotFound && dir.exists() => {
                return children_by_stat()
            }
            // The thread ended since the listing: it has no children left.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(pids)
}

/// The pids whose `/proc/<pid>/stat` names this process as parent.
fn children_by_stat() -> io::Result<Vec<u32>> {
    let me = std::process::id();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // A process that ended (and was reaped) since the listing has no stat left.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if parent_in_stat(&stat) == Some(me) {
            pids.push(pid);
        }
    }
    Ok(pids)
}

/// The parent pid in a `/proc/<pid>/stat` line: the second field after the command name,
/// which sits in parentheses and may hold spaces and parentheses itself.
fn parent_in_stat(stat: &str) -> Option<u32> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::parent_in_stat;

    #[test]
    fn the_parent_is_read_after_a_name_with_spaces_and_parentheses() {
        let stat = "4242 (a (weird) name) Z 17 4242 4242 0 -1 4194308";
        assert_eq!(parent_in_stat(stat), Some(17));
        assert_eq!(parent_in_stat("garbage"), None);
    }
}
