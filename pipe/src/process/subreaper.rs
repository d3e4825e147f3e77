//! [`set_child_subreaper`] and [`is_child_subreaper`]: making this process the one its
//! descendants' orphans are reparented to, so that [`reap_orphans`](super::reap_orphans)
//! gets them.

use std::io;

use crate::sys;

/// Makes this process a child subreaper (`on == true`), or stops it being one: while it is,
/// a process orphaned anywhere below it (a daemon that double-forked away from its parent, the
/// children of a service killed first) is reparented to it, not to init, and it must reap
/// them, with [`reap_orphans`](super::reap_orphans), or they stay zombies until it exits.
///
/// A supervisor, a service manager, a build runner or a container's init that is not PID 1
/// needs this to see, and clean up after, everything its children start.
///
/// The setting is the whole process's (every thread's), is not inherited by the children it
/// spawns, and survives `execve`. Stopping being a subreaper does not give back the orphans
/// already adopted. Fails only where the kernel has no subreapers (before Linux 3.4).
///
/// ```
/// use std::time::Duration;
///
/// overlap::block_on(async {
///     overlap::process::set_child_subreaper(true)?;
///     assert!(overlap::process::is_child_subreaper()?);
///     // The shell starts a grandchild in the background and exits at once: the grandchild
///     // is orphaned, and reparented to this process.
///     let status = overlap::process::Command::new("sh")
///         .args(["-c", "sh -c 'sleep 0.1; exit 4' & echo $!"])
///         .output()
///         .await?;
///     let grandchild: u32 = String::from_utf8_lossy(&status.stdout).trim().parse().unwrap();
///     let mut reaped = Vec::new();
///     while reaped.is_empty() {
///         reaped = overlap::process::reap_orphans()?;
///         overlap::time::sleep(Duration::from_millis(1)).await;
///     }
///     assert_eq!(reaped[0].0, grandchild);
///     assert_eq!(reaped[0].1.code(), Some(4));
///     overlap::process::set_child_subreaper(false)?;
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub fn set_child_subreaper(on: bool) -> io::Result<()> {
    sys::set_child_subreaper(on)
}

/// Whether this process is a child subreaper: set by [`set_child_subreaper`] (or by the
/// program that `exec`ed this one, as the setting survives `execve`).
///
/// ```
/// // A process starts as no subreaper unless what exec'ed it was one and set it.
/// let before = overlap::process::is_child_subreaper()?;
/// overlap::process::set_child_subreaper(true)?;
/// assert!(overlap::process::is_child_subreaper()?);
/// overlap::process::set_child_subreaper(before)?;
/// # std::io::Result::Ok(())
/// ```
pub fn is_child_subreaper() -> io::Result<bool> {
    sys::is_child_subreaper()
}
