//! What the signal module needs from libc: `sigaction`, the self-pipe, and a write that a
//! signal handler may make.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// A signal handler that takes the `siginfo_t` and context (`SA_SIGINFO`), as the kernel
/// calls it.
pub(crate) type Handler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);

/// The action a signal had before ours: its handler (`sa_sigaction`, possibly `SIG_DFL` or
/// `SIG_IGN`), whether that handler takes a `siginfo_t` (`SA_SIGINFO`), what it asked for
/// while it runs: the signals blocked (`sa_mask`), the alternate stack (`SA_ONSTACK`) and
/// its own signal left unblocked (`SA_NODEFER`), and the interrupted system calls restarted
/// (`SA_RESTART`), which ours then asks for too (see [`install`]), whether it is for one
/// arrival only (`SA_RESETHAND`), and, for `SIGCHLD`, whether it asked not to hear children
/// stop and continue (`SA_NOCLDSTOP`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Previous {
    pub(crate) handler: libc::sighandler_t,
    pub(crate) siginfo: bool,
    pub(crate) mask: libc::sigset_t,
    pub(crate) on_stack: bool,
    pub(crate) no_defer: bool,
    pub(crate) restart: bool,
    pub(crate) one_shot: bool,
    pub(crate) no_child_stop: bool,
}

/// `si_code`s of a `SIGCHLD` the kernel sends only to an action without `SA_NOCLDSTOP`
/// (`<bits/siginfo-consts.h>`; the libc crate has no names for them on Linux): a traced
/// child stopped, a child stopped, a stopped child continued.
const CLD_TRAPPED: libc::c_int = 4;
const CLD_STOPPED: libc::c_int = 5;
const CLD_CONTINUED: libc::c_int = 6;

/// The action `signum` has now.
pub(crate) fn current(signum: libc::c_int) -> io::Result<Previous> {
    // SAFETY: an all-zero sigaction is a valid value to be overwritten.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only reads the current one into `old`, a valid sigaction.
    syscall!(sigaction(signum, std::ptr::null(), &mut old))?;
    Ok(previous_of(&old))
}

fn previous_of(sa: &libc::sigaction) -> Previous {
    Previous {
        handler: sa.sa_sigaction,
        siginfo: sa.sa_flags & libc::SA_SIGINFO != 0,
        mask: sa.sa_mask,
        on_stack: sa.sa_flags & libc::SA_ONSTACK != 0,
        no_defer: sa.sa_flags & libc::SA_NODEFER != 0,
        restart: sa.sa_flags & libc::SA_RESTART != 0,
        one_shot: sa.sa_flags & libc::SA_RESETHAND != 0,
        no_child_stop: sa.sa_flags & libc::SA_NOCLDSTOP != 0,
    }
}

/// Installs `handler` for `signum` (with `SA_SIGINFO`, to hand a previous handler what the
/// kernel gave), in place of `before`, the action it is taken to replace. Ours calls that
/// one's handler, so it runs with that one's `sa_mask`, `SA_ONSTACK` and `SA_NODEFER`: the
/// previous handler is then called as the kernel would have called it. It also keeps that
/// one's `SA_RESTART` or its absence: a program whose handler has no `SA_RESTART`, so that
/// the signal ends a blocking `read` with `EINTR`, keeps that. Replacing `SIG_DFL` or
/// `SIG_IGN`, ours asks for `SA_RESTART`, so interrupted syscalls of other code resume
/// instead of failing with `EINTR`. (The previous `SA_RESETHAND` is the caller's to honour:
/// ours stays installed.) Returns the action it replaced.
pub(crate) fn install(
    signum: libc::c_int,
    handler: Handler,
    before: &Previous,
) -> io::Result<Previous> {
    // SAFETY: an all-zero sigaction is a valid value (no flags, empty mask, SIG_DFL).
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = handler as libc::sighandler_t;
    sa.sa_flags = libc::SA_SIGINFO;
    if before.on_stack {
        sa.sa_flags |= libc::SA_ONSTACK;
    }
    // The default action and `SIG_IGN` have no handler to run: their mask means nothing.
    if before.handler == libc::SIG_DFL || before.handler == libc::SIG_IGN {
        sa.sa_flags |= libc::SA_RESTART;
        // SAFETY: `sa.sa_mask` is a valid sigset_t to clear.
        syscall!(sigemptyset(&mut sa.sa_mask))?;
    } else {
        sa.sa_mask = before.mask;
        if before.no_defer {
            sa.sa_flags |= libc::SA_NODEFER;
        }
        if before.restart {
            sa.sa_flags |= libc::SA_RESTART;
        }
    }
    // SAFETY: as in `current`.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: `sa` and `old` are valid sigactions.
    syscall!(sigaction(signum, &sa, &mut old))?;
    Ok(previous_of(&old))
}

/// Calls `prev`, the handler a signal had before ours, from our handler, with what the
/// kernel handed ours; nothing for `SIG_DFL` and `SIG_IGN` (see the module docs of
/// `signal`: listening replaces the default action), nor, for a `SIGCHLD` handler installed
/// with `SA_NOCLDSTOP`, for a child that stopped or continued: ours is installed without
/// the flag (its listeners hear those too), and the kernel would not have called that
/// handler for them. Async-signal-safe as far as `prev` is.
pub(crate) fn call_previous(
    prev: Previous,
    signum: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    if prev.handler == libc::SIG_DFL || prev.handler == libc::SIG_IGN {
        return;
    }
    if signum == libc::SIGCHLD && prev.no_child_stop && is_child_stop_or_continue(info) {
        return;
    }
    if prev.siginfo {
        let f: Handler =
            // SAFETY: `prev.handler` came from `sigaction` with `SA_SIGINFO` set, so it is a
            // function of this type; `info` and `context` are what the kernel gave our
            // handler, installed with `SA_SIGINFO` too.
            unsafe { std::mem::transmute::<libc::sighandler_t, Handler>(prev.handler) };
        f(signum, info, context);
    } else {
        // SAFETY: without `SA_SIGINFO`, a handler that is neither SIG_DFL nor SIG_IGN is a
        // one-argument function.
        let f = unsafe {
            std::mem::transmute::<libc::sighandler_t, extern "C" fn(libc::c_int)>(prev.handler)
        };
        f(signum);
    }
}

/// Whether `info`, what the kernel handed our `SIGCHLD` handler, reports a child that
/// stopped or continued (the kernel's own codes are positive; one from `kill` or
/// `sigqueue` is not, and is passed on as any other arrival).
fn is_child_stop_or_continue(info: *const libc::siginfo_t) -> bool {
    // SAFETY: ours is installed with `SA_SIGINFO`, so the kernel hands it a valid
    // `siginfo_t` (null is checked all the same), readable for the handler's duration.
    let Some(info) = (unsafe { info.as_ref() }) else {
        return false;
    };
    matches!(info.si_code, CLD_TRAPPED | CLD_STOPPED | CLD_CONTINUED)
}

/// A non-blocking, close-on-exec pipe: (read end, write end).
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two fds pipe2 writes.
    syscall!(pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC))?;
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A new close-on-exec fd for the open file behind `fd`.
pub(crate) fn dup(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC takes an integer (the lowest fd number to use).
    let new = syscall!(fcntl(fd, libc::F_DUPFD_CLOEXEC, 0))?;
    // SAFETY: the fd was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Writes one byte to `fd`, leaving `errno` as it was: callable from a signal handler
/// (`write` is async-signal-safe, and the interrupted code may be about to read `errno`).
/// A full pipe (`EAGAIN`) is fine: a byte already waits there.
pub(crate) fn poke_from_handler(fd: RawFd) {
    // SAFETY: __errno_location returns this thread's errno slot, valid for the thread's life.
    let errno = unsafe { *libc::__errno_location() };
    let byte = 1u8;
    // SAFETY: `byte` is one readable byte for the duration of the call.
    let _ = unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Reads `fd` (non-blocking) until it is empty; true if it held anything.
pub(crate) fn drain(fd: RawFd) -> bool {
    let mut buf = [0u8; 64];
    let mut got = false;
    loop {
        // SAFETY: `buf` is valid for writes of its length.
        match syscall!(read(fd, buf.as_mut_ptr().cast(), buf.len())) {
            Ok(n) if n > 0 => got = true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // Empty (EAGAIN), or no writer (0, never here): done.
            _ => return got,
        }
    }
}
