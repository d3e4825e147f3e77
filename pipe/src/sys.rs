//! The libc calls of the pipe crate.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;

use overlap_runtime::syscall;

mod dead_end;

pub(crate) use dead_end::{at_end_of_file, dead_write_end, write_error};

/// `pipe2(O_NONBLOCK | O_CLOEXEC)`: (read end, write end).
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two fds pipe2 writes.
    syscall!(pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC))?;
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Opens a FIFO (or any path) non-blocking and close-on-exec with `access` (`O_RDONLY`,
/// `O_WRONLY` or `O_RDWR`). `O_NOCTTY` too: a terminal's path, refused later as no FIFO, must not
/// become the controlling terminal of a session leader that has none.
pub(crate) fn open(path: &Path, access: libc::c_int) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    let flags = access | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
    let fd = loop {
        // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
        match syscall!(open(c.as_ptr(), flags)) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => break other?,
        }
    };
    // SAFETY: the fd was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fstat(fd)`.
fn stat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: a zeroed stat is a valid buffer for fstat to fill.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid, writable stat buffer.
    syscall!(fstat(fd, &mut st))?;
    Ok(st)
}

/// `fstat` file type bits of `fd`.
pub(crate) fn file_type(fd: RawFd) -> io::Result<libc::mode_t> {
    Ok(stat(fd)?.st_mode & libc::S_IFMT)
}

/// Whether `a` and `b` are ends of one pipe or FIFO (the same inode). An fd `fstat` fails
/// on (a closed one) says no: the caller's next call on it reports the error.
pub(crate) fn same_pipe(a: RawFd, b: RawFd) -> bool {
    let is_fifo = |st: &libc::stat| st.st_mode & libc::S_IFMT == libc::S_IFIFO;
    match (stat(a), stat(b)) {
        (Ok(a), Ok(b)) => {
            is_fifo(&a) && is_fifo(&b) && (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
        }
        _ => false,
    }
}

/// Whether `fd` is a datagram socket with no peer (never connected): one that a splice
/// into would fail with `EDESTADDRREQ` only after the bytes had left their source. Any
/// other fd, or one the kernel will not describe, is `false`.
pub(crate) fn unconnected_datagram_socket(fd: RawFd) -> bool {
    if !matches!(socket_type(fd), Ok(libc::SOCK_DGRAM)) {
        return false;
    }
    let mut addr = std::mem::MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut alen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `addr` has room for any address, `alen` says how much; the kernel writes at
    // most that.
    let peer = syscall!(getpeername(fd, addr.as_mut_ptr().cast(), &mut alen));
    matches!(peer, Err(e) if e.raw_os_error() == Some(libc::ENOTCONN))
}

/// A socket's type (`SO_TYPE`: `SOCK_STREAM`, `SOCK_DGRAM`, ...); `ENOTSOCK` for an fd that
/// is no socket.
pub(crate) fn socket_type(fd: RawFd) -> io::Result<libc::c_int> {
    let mut ty: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `ty` and `len` are valid for the kernel to write an int and its length.
    syscall!(getsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_TYPE,
        (&mut ty as *mut libc::c_int).cast(),
        &mut len
    ))?;
    Ok(ty)
}

/// The access mode `fd` was opened with: `O_RDONLY`, `O_WRONLY` or `O_RDWR`; `None` for an
/// `O_PATH` fd, which is open for neither (its `O_ACCMODE` bits read as `O_RDONLY`, but
/// reads, `fcntl(F_SETFL)` and epoll all refuse it with `EBADF`).
pub(crate) fn access_mode(fd: RawFd) -> io::Result<Option<libc::c_int>> {
    // SAFETY: F_GETFL takes no pointer argument.
    let flags = syscall!(fcntl(fd, libc::F_GETFL))?;
    Ok((flags & libc::O_PATH == 0).then_some(flags & libc::O_ACCMODE))
}

/// Turns `O_NONBLOCK` on or off for `fd` (a flag of the open file description, so every fd
/// sharing it sees the change).
pub(crate) fn set_nonblocking_to(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: F_GETFL takes no pointer argument.
    let flags = syscall!(fcntl(fd, libc::F_GETFL))?;
    let wanted = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    if wanted != flags {
        // SAFETY: F_SETFL takes an integer flag argument.
        syscall!(fcntl(fd, libc::F_SETFL, wanted))?;
    }
    Ok(())
}

/// `read(2)`; EINTR is retried.
pub(crate) fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        match syscall!(read(fd, buf.as_mut_ptr().cast(), buf.len())) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other.map(|n| n as usize),
        }
    }
}

/// `readv(2)` into up to `UIO_MAXIOV` (1024) buffers; EINTR is retried.
pub(crate) fn readv(fd: RawFd, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
    let cnt = bufs.len().min(libc::UIO_MAXIOV as usize) as libc::c_int;
    loop {
        // SAFETY: IoSliceMut is ABI-compatible with iovec; the first `cnt` entries each
        // describe memory valid for writes of its length, borrowed for the whole call.
        match syscall!(readv(fd, bufs.as_mut_ptr().cast(), cnt)) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other.map(|n| n as usize),
        }
    }
}

/// `write(2)`; EINTR is retried. A pipe with no reader gives EPIPE (the runtime's users
/// get `BrokenPipe`; SIGPIPE is ignored by Rust's runtime by default).
pub(crate) fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
        match syscall!(write(fd, buf.as_ptr().cast(), buf.len())) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other.map(|n| n as usize),
        }
    }
}

/// `writev(2)`; EINTR is retried.
pub(crate) fn writev(fd: RawFd, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    let cnt = bufs.len().min(libc::UIO_MAXIOV as usize) as libc::c_int;
    loop {
        // SAFETY: IoSlice is ABI-compatible with iovec; `cnt` entries are valid to read.
        match syscall!(writev(fd, bufs.as_ptr().cast(), cnt)) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other.map(|n| n as usize),
        }
    }
}

/// `splice(2)` of up to `len` bytes from `from` to `to` at their current offsets, never
/// blocking (`SPLICE_F_NONBLOCK`; the fds are non-blocking too). EINTR is retried. At least
/// one of the fds must be a pipe.
pub(crate) fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // The kernel caps one call at `MAX_RW_COUNT` anyway; asking for more than `isize::MAX`
    // could be read as negative.
    let len = len.min(isize::MAX as usize);
    let flags = libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE;
    loop {
        // SAFETY: null offsets mean "use and advance the fds' own positions"; no memory of
        // ours is passed.
        match syscall!(splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            flags
        )) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other.map(|n| n as usize),
        }
    }
}

/// `SIOCATMARK` (from `<linux/sockios.h>`; not in the libc crate for Linux).
const SIOCATMARK: libc::c_ulong = 0x8905;

/// At a TCP urgent mark (the peer sent `MSG_OOB` data), `splice` cannot go on: it says
/// `EAGAIN`, or 0 once the peer's FIN arrived, with data still queued behind the mark. A
/// `recv` can pass the mark (skipping the urgent byte, or returning it with `SO_OOBINLINE`);
/// this moves one such byte from `src` into the pipe `dst`, after which `splice` works again.
///
/// Returns `None` if `src` is not at an urgent mark (or not a TCP socket), `Some(0)` if the
/// data ends at the mark, `Some(1)` once a byte moved. `dst` must have room for a byte: a
/// byte taken from `src` that the pipe then refuses is reported as an error, not lost
/// silently.
pub(crate) fn step_over_urgent(src: RawFd, dst: RawFd) -> io::Result<Option<usize>> {
    let mut at_mark: libc::c_int = 0;
    // SAFETY: SIOCATMARK writes one int through the pointer, which points at `at_mark`.
    let asked = syscall!(ioctl(
        src,
        SIOCATMARK as _,
        &mut at_mark as *mut libc::c_int
    ));
    if asked.is_err() || at_mark == 0 {
        return Ok(None);
    }
    let mut byte = 0u8;
    let n = loop {
        // SAFETY: one writable byte.
        match syscall!(recv(
            src,
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_DONTWAIT
        )) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            other => break other?,
        }
    };
    if n == 0 {
        return Ok(Some(0));
    }
    match write(dst, &[byte]) {
        Ok(1) => Ok(Some(1)),
        Ok(_) | Err(_) => Err(io::Error::other(
            "splice: a byte read past a TCP urgent mark could not be put in the pipe",
        )),
    }
}

/// Asks the kernel, without waiting, whether `from` is readable and `to` writable right now
/// (`poll(2)` with a zero timeout). Error and hang-up states count as ready: the next
/// syscall reports them. A bare `POLLERR` is no error for certain: a socket's error queue
/// (transmit timestamps, zero-copy completions) raises it too, and no read or write ever
/// reports that; so a side with nothing else is ready only if an error is pending, and then
/// that error (taken from the fd) is returned, as its next syscall would return it.
pub(crate) fn ready_now(from: RawFd, to: RawFd) -> io::Result<(bool, bool)> {
    let mut fds = [
        libc::pollfd {
            fd: from,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: to,
            events: libc::POLLOUT,
            revents: 0,
        },
    ];
    loop {
        // SAFETY: `fds` is a valid array of two pollfd entries for the whole call.
        match syscall!(poll(fds.as_mut_ptr(), 2, 0)) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(_) => break,
        }
    }
    Ok((
        ready_in(from, fds[0].revents)?,
        ready_in(to, fds[1].revents)?,
    ))
}

/// Whether `revents` from `poll(2)` on `fd` says ready (see [`ready_now`]): any bit but a
/// bare `POLLERR` does; a bare `POLLERR` is the fd's pending error, returned, or, with none
/// pending (only the error queue holds something), not ready.
fn ready_in(fd: RawFd, revents: libc::c_short) -> io::Result<bool> {
    if revents != libc::POLLERR {
        return Ok(revents != 0);
    }
    match take_error(fd)? {
        Some(err) => Err(err),
        None => Ok(false),
    }
}

/// Whether `fd` is a datagram socket (`SOCK_DGRAM`: UDP, Unix datagram), whose reads
/// return 0 for an empty datagram rather than at end of file. Anything else (a stream or
/// seqpacket socket, a pipe, a non-socket) is not.
pub(crate) fn is_datagram(fd: RawFd) -> bool {
    let mut ty: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `ty` and `len` are valid for writes and `len` holds the size of `ty`.
    let res = syscall!(getsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_TYPE,
        (&mut ty as *mut libc::c_int).cast(),
        &mut len
    ));
    res.is_ok() && ty == libc::SOCK_DGRAM
}

/// `poll(2)` on `fds` for up to `timeout_ms` (-1: no limit); `EINTR` counts as a return
/// with nothing ready.
pub(crate) fn poll_fds(fds: &mut [libc::pollfd], timeout_ms: libc::c_int) -> io::Result<()> {
    let n = libc::nfds_t::try_from(fds.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many fds to poll"))?;
    // SAFETY: `fds` is a valid, writable array of `n` pollfd entries for the whole call.
    match syscall!(poll(fds.as_mut_ptr(), n, timeout_ms)) {
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
        other => other.map(drop),
    }
}

/// Takes the error pending on `fd`, if any: a socket's `SO_ERROR` (reading it clears it, as
/// a failing call would), or, for an fd that is not a socket and that `poll(2)` reports in
/// error (a pipe's write end whose readers all left), `BrokenPipe`. `None` when no error is
/// pending any more (someone took it first), including on a socket whose only "error" is
/// its error queue (`MSG_ERRQUEUE` notes), which is no failure.
pub(crate) fn take_error(fd: RawFd) -> io::Result<Option<io::Error>> {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `err` and `len` are valid for writes and `len` holds the size of `err`.
    let res = syscall!(getsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_ERROR,
        (&mut err as *mut libc::c_int).cast(),
        &mut len
    ));
    match res {
        Ok(_) if err != 0 => return Ok(Some(io::Error::from_raw_os_error(err))),
        Ok(_) => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ENOTSOCK) => {}
        Err(e) => return Err(e),
    }
    let mut fds = [libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    }];
    poll_fds(&mut fds, 0)?;
    Ok((fds[0].revents & libc::POLLERR != 0).then(|| {
        io::Error::new(
            io::ErrorKind::BrokenPipe,
            "the fd reports an error (EPOLLERR): a pipe whose other end is closed",
        )
    }))
}

/// `shutdown(fd, SHUT_WR)` for a socket, so its peer reads end of file. Not a socket
/// (`ENOTSOCK`) or no longer connected (`ENOTCONN`): nothing to do.
pub(crate) fn shutdown_write(fd: RawFd) -> io::Result<()> {
    // SAFETY: shutdown takes only integers.
    match syscall!(shutdown(fd, libc::SHUT_WR)) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTSOCK | libc::ENOTCONN)) => Ok(()),
        other => other.map(drop),
    }
}

/// `pidfd_open(pid, 0)`: an fd (close-on-exec) that becomes readable when the process
/// exits. Linux 5.3 and later.
pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    // SAFETY: pidfd_open takes two integers and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the fd was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `kill(pid, sig)`: the fallback where pidfds are missing or denied.
pub(crate) fn kill(pid: u32, sig: libc::c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    // SAFETY: kill takes only integers.
    syscall!(kill(pid, sig)).map(drop)
}

/// `PIDFD_SIGNAL_PROCESS_GROUP` (Linux 6.9): `pidfd_send_signal` signals the process group
/// that the pidfd's process leads (or led) instead of the process itself.
const PIDFD_SIGNAL_PROCESS_GROUP: libc::c_uint = 1 << 2;

/// `pidfd_send_signal(pidfd, sig, NULL, PIDFD_SIGNAL_PROCESS_GROUP)`: signals every process
/// of the group whose id is the pid the pidfd was opened for, found through the kernel's
/// own record of that process, so never a group that a later process reusing the pid
/// leads, even after the leader was reaped. `EINVAL` on kernels before 6.9 (the flag
/// unknown); `ESRCH` when no process is left in the group.
pub(crate) fn pidfd_send_signal_to_group(
    pidfd: BorrowedFd<'_>,
    sig: libc::c_int,
) -> io::Result<()> {
    pidfd_send_signal_with(pidfd, sig, PIDFD_SIGNAL_PROCESS_GROUP)
}

/// Whether `signal` is a signal number (1 to the last real-time signal): `sigaddset`
/// refuses any other.
pub(crate) fn is_signal(signal: libc::c_int) -> bool {
    // SAFETY: an all-zero sigset_t is a valid value to fill.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t; a number that is no signal is refused with -1.
    unsafe { libc::sigaddset(&mut set, signal) == 0 }
}

/// `kill(-pid, sig)`: signals the process group `pid`.
pub(crate) fn kill_group(pid: u32, sig: libc::c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    // SAFETY: kill takes only integers.
    syscall!(kill(-pid, sig)).map(drop)
}

/// Whether `pid` is a child of this process not reaped yet, running or exited, without
/// reaping it (`waitid` with `WNOWAIT`): `ECHILD` if not.
pub(crate) fn waitable_child(pid: u32) -> io::Result<()> {
    exit_status_unreaped(ChildId::Pid(pid)).map(drop)
}

/// A child of this process, as `waitid` names it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ChildId<'a> {
    /// Through its pidfd (`P_PIDFD`, Linux 5.4+): never another process that took its pid.
    Pidfd(BorrowedFd<'a>),
    /// Through its pid (`P_PID`): right while it is this process's unreaped child, whose
    /// pid no other process can take.
    Pid(u32),
}

/// `waitid(id, WEXITED | WNOHANG | WNOWAIT)`: the exit status of `id` if it has exited,
/// without reaping it (it stays a zombie, its pid reserved, for a later `wait` to reap);
/// `None` while it runs. `ECHILD` if it is not this process's child, or was reaped.
pub(crate) fn exit_status_unreaped(id: ChildId<'_>) -> io::Result<Option<ExitStatus>> {
    let (idtype, id) = match id {
        ChildId::Pidfd(fd) => (libc::P_PIDFD, fd.as_raw_fd() as libc::id_t),
        ChildId::Pid(pid) => (libc::P_PID, pid as libc::id_t),
    };
    let peeked = waitid_exit(idtype, id, libc::WNOWAIT)?;
    Ok(peeked.map(|(_, status)| status))
}

/// `waitid(P_ALL, WEXITED | WNOHANG | WNOWAIT)`: one exited child of this process (of any
/// of its threads), its pid and status, left unreaped; `None` if every child still runs.
/// The kernel reports the same zombie again and again while it stays unreaped, so this
/// cannot list them. `ECHILD` if this process has no unreaped child at all.
pub(crate) fn any_exited_unreaped() -> io::Result<Option<(u32, ExitStatus)>> {
    waitid_exit(libc::P_ALL, 0, libc::WNOWAIT)
}

/// `waitid(P_PID, pid, WEXITED | WNOHANG)`: reaps child `pid` if it has exited, returning
/// its status; `None` while it runs. `ECHILD` if `pid` is not an unreaped child of this
/// process.
pub(crate) fn reap_if_exited(pid: u32) -> io::Result<Option<ExitStatus>> {
    let peeked = waitid_exit(libc::P_PID, pid as libc::id_t, 0)?;
    Ok(peeked.map(|(_, status)| status))
}

/// `waitid(idtype, id, WEXITED | WNOHANG | extra)`, retried on `EINTR`: the pid and wait
/// status of an exited child it found, or `None` if none has exited.
fn waitid_exit(
    idtype: libc::idtype_t,
    id: libc::id_t,
    extra: libc::c_int,
) -> io::Result<Option<(u32, ExitStatus)>> {
    // SAFETY: an all-zero siginfo_t is a valid value for waitid to fill; zero in `si_pid`
    // is also what says, with `WNOHANG`, that no child has exited.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOHANG | extra;
    // SAFETY: `info` is a valid siginfo_t that outlives the call.
    while let Err(e) = syscall!(waitid(idtype, id, &mut info, flags)) {
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    // SAFETY: waitid fills the SIGCHLD fields of `info` (or leaves them zero); `si_pid` and
    // `si_status` read exactly those.
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    // The wait status `waitpid` would give, which is what `ExitStatus` holds.
    let raw = match info.si_code {
        libc::CLD_EXITED => (status & 0xff) << 8,
        libc::CLD_KILLED => status & 0x7f,
        libc::CLD_DUMPED => (status & 0x7f) | 0x80,
        // Only exits were asked for (no `WSTOPPED`, no `WCONTINUED`).
        code => {
            return Err(io::Error::other(format!(
                "waitid reported si_code {code} for an exit"
            )))
        }
    };
    Ok(Some((pid as u32, ExitStatus::from_raw(raw))))
}

/// `getpgid(pid)`: the process group of `pid`.
pub(crate) fn getpgid(pid: u32) -> io::Result<u32> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    // SAFETY: getpgid takes an integer only.
    syscall!(getpgid(pid)).map(|g| g as u32)
}

/// `pidfd_send_signal(pidfd, sig, NULL, 0)`: signals exactly the process the pidfd was
/// opened for, never a later process that reuses its pid. Linux 5.1 and later; `ESRCH`
/// once that process has been reaped.
pub(crate) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: libc::c_int) -> io::Result<()> {
    pidfd_send_signal_with(pidfd, sig, 0)
}

/// `pidfd_send_signal(pidfd, sig, NULL, flags)`.
fn pidfd_send_signal_with(
    pidfd: BorrowedFd<'_>,
    sig: libc::c_int,
    flags: libc::c_uint,
) -> io::Result<()> {
    // SAFETY: the fd is borrowed, so open for the call; a null info pointer asks the
    // kernel to fill in the `siginfo` as `kill` would; the flags are a plain integer.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            flags,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `prctl(PR_SET_CHILD_SUBREAPER, on)`: whether orphans below this process are reparented
/// to it rather than to init.
pub(crate) fn set_child_subreaper(on: bool) -> io::Result<()> {
    // SAFETY: prctl with integer arguments only; PR_SET_CHILD_SUBREAPER reads the second
    // and ignores the rest.
    syscall!(prctl(
        libc::PR_SET_CHILD_SUBREAPER,
        libc::c_ulong::from(on),
        0 as libc::c_ulong,
        0 as libc::c_ulong,
        0 as libc::c_ulong
    ))
    .map(drop)
}

/// `prctl(PR_GET_CHILD_SUBREAPER)`: whether this process is a child subreaper.
pub(crate) fn is_child_subreaper() -> io::Result<bool> {
    let mut flag: libc::c_int = 0;
    // SAFETY: PR_GET_CHILD_SUBREAPER writes one int through the pointer, which points at a
    // live local for the whole call.
    syscall!(prctl(
        libc::PR_GET_CHILD_SUBREAPER,
        &mut flag as *mut libc::c_int
    ))?;
    Ok(flag != 0)
}
