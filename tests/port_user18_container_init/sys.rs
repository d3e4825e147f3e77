//! The init's own system calls, the only `unsafe` of the program: becoming a child
//! subreaper (`prctl`), `kill` for an adopted orphan outside the main command's group, and
//! the naive `waitpid(-1)` a test shows breaking overlap's `Child::wait`. overlap offers
//! none of them: they are about processes overlap never spawned (their reaping it does
//! offer, `overlap::process::reap_orphans`).

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// Marks this process a child subreaper (`prctl(PR_SET_CHILD_SUBREAPER, 1)`): a process
/// orphaned anywhere below it is reparented to it, not to pid 1, and is its to reap.
/// Process-wide, and inherited by no child (the kernel clears it on `fork`).
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only; PR_SET_CHILD_SUBREAPER reads none of the
    // others.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether this process is a child subreaper (`PR_GET_CHILD_SUBREAPER`).
pub fn is_child_subreaper() -> io::Result<bool> {
    let mut flag: libc::c_int = 0;
    // SAFETY: the kernel writes one int through the pointer, which points at `flag`.
    let r = unsafe { libc::prctl(libc::PR_GET_CHILD_SUBREAPER, &mut flag as *mut libc::c_int) };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(flag != 0)
}

/// What the naive init does: reaps *any* exited child (`waitpid(-1, WNOHANG)`), returning
/// its pid and status. Kept for the test that shows why the init must not.
pub fn reap_any_exited() -> io::Result<Option<(u32, ExitStatus)>> {
    let mut status: libc::c_int = 0;
    // SAFETY: the kernel writes one int through the pointer, which points at `status`.
    let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    match r {
        0 => Ok(None),
        -1 => Err(io::Error::last_os_error()),
        pid => Ok(Some((pid as u32, ExitStatus::from_raw(status)))),
    }
}

/// Sends `signal` to process `pid`: the init sends it only to its unreaped children, whose
/// pids no other process can have taken. `ESRCH` is no error (it exited meanwhile).
pub fn kill(pid: u32, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: kill takes integers only.
    if unsafe { libc::kill(pid as libc::pid_t, signal) } == -1 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ESRCH) {
            return Err(e);
        }
    }
    Ok(())
}

/// The process group of process `pid` (`getpgid`). Asked only of unreaped children of this
/// process, whose pids no other process can have taken.
pub fn getpgid(pid: u32) -> io::Result<u32> {
    // SAFETY: getpgid takes an integer only.
    let r = unsafe { libc::getpgid(pid as libc::pid_t) };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(r as u32)
}

/// Whether child `pid` has exited, without reaping it (`waitid(P_PID, WEXITED | WNOHANG |
/// WNOWAIT)`). A pid that is no child of this process (any more: reaped, here by overlap's
/// background reaper) has exited too.
pub fn has_exited(pid: u32) -> io::Result<bool> {
    // SAFETY: an all-zero siginfo_t is a valid value for the kernel to fill.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    loop {
        // SAFETY: the kernel writes one siginfo_t through the pointer, which points at
        // `info`.
        let r = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) };
        if r == -1 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ECHILD) => return Ok(true),
                _ => return Err(e),
            }
        }
        // With WNOHANG and nothing exited, the kernel leaves si_pid 0.
        // SAFETY: `info` was filled by waitid (or left zeroed), and si_pid reads a plain int.
        return Ok(unsafe { info.si_pid() } != 0);
    }
}
