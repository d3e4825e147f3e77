//! The libc calls of the fs crate that std does not offer, and the one `unsafe` trait impl
//! (`FromRawFd` for `File`).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use overlap_runtime::syscall;

mod dir;

pub(crate) use dir::{Dir, Kind};

/// A new fd for the open file description behind `fd` (`F_DUPFD_CLOEXEC`).
pub(crate) fn dup(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC takes an integer (the lowest fd number to use).
    let new = syscall!(fcntl(fd, libc::F_DUPFD_CLOEXEC, 0))?;
    // SAFETY: the fd was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Deallocates `len` bytes of `fd`'s file from `offset` (`fallocate` with
/// `FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`): the range reads as zeros after, and the
/// file's size stays. A file system without holes answers `EOPNOTSUPP`. May block on the
/// disk: pool only.
pub(crate) fn punch_hole(fd: RawFd, offset: u64, len: u64) -> io::Result<()> {
    let too_far = || io::Error::new(io::ErrorKind::InvalidInput, "range past i64::MAX");
    let off = libc::off_t::try_from(offset).map_err(|_| too_far())?;
    let len = libc::off_t::try_from(len).map_err(|_| too_far())?;
    let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
    // SAFETY: fallocate takes integers only and touches no memory of ours.
    syscall!(fallocate(fd, mode, off, len)).map(drop)
}

/// How a run of `sendfile` calls ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Sent {
    /// This many bytes went, and the range is done or the file ended.
    Done(u64),
    /// This many bytes went, then the destination was full (`EAGAIN`).
    Full(u64),
}

/// Sends up to `len` bytes of `file` from `offset` to `to` with `sendfile(2)`, call after
/// call, until the range is sent, the file ends, or `to` (non-blocking) is full. `EINTR`
/// is retried. The file's own offset does not move. May block on the disk: pool only.
pub(crate) fn sendfile(file: RawFd, to: RawFd, offset: u64, len: u64) -> io::Result<Sent> {
    let mut sent = 0u64;
    let Ok(mut off) = libc::off_t::try_from(offset) else {
        return Ok(Sent::Done(0)); // past the end of any file
    };
    while sent < len {
        // The kernel moves at most about 2 GiB per call, and no offset may pass off_t's
        // largest value.
        let room = (libc::off_t::MAX - off) as u64;
        let chunk = (len - sent).min(1 << 30).min(room) as usize;
        if chunk == 0 {
            break;
        }
        // SAFETY: `off` is a valid off_t the kernel reads and advances; no buffer of ours
        // is passed.
        match syscall!(sendfile(to, file, &mut off, chunk)) {
            Ok(0) => break,
            Ok(n) => sent += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Sent::Full(sent)),
            Err(e) if past_the_end(&e, file, off) => break,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Err(refused(file, to)),
            Err(e) if e.raw_os_error() == Some(libc::EDESTADDRREQ) => return Err(no_peer()),
            Err(e) if e.raw_os_error() == Some(libc::EBADF) && write_only(file) => {
                return Err(not_readable())
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Sent::Done(sent))
}

/// Whether `sendfile` refused `file` at `off` for being past its end. The kernel refuses
/// some offsets far past the end (beyond the file system's largest file, `EOVERFLOW`, or
/// `EINVAL` on some file systems) instead of reading nothing: the end of the file all the
/// same. An `EINVAL` is taken so only from a file with bytes: a file whose size says 0 may
/// be one whose file system cannot feed `sendfile` at all (`/proc/<pid>/status`), whatever
/// the offset.
fn past_the_end(e: &io::Error, file: RawFd, off: libc::off_t) -> bool {
    let size = match e.raw_os_error() {
        Some(libc::EOVERFLOW | libc::EINVAL) => match stat(file) {
            Ok(st) => st.st_size.max(0) as u64,
            Err(_) => return false,
        },
        _ => return false,
    };
    size <= off as u64 && (size > 0 || e.raw_os_error() == Some(libc::EOVERFLOW))
}

/// The error for an `EINVAL` from `sendfile(to, file, ..)` not past the end, naming the side
/// at fault where it can: a directory source says what a read of it says (`EISDIR`); with a
/// socket or pipe destination, which `sendfile` always takes, the source is the cause.
/// Otherwise the plain `EINVAL`, which the caller blames on the destination.
fn refused(file: RawFd, to: RawFd) -> io::Error {
    if stat(file).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR) {
        return io::Error::from_raw_os_error(libc::EISDIR);
    }
    if stat(to).is_ok_and(|st| matches!(st.st_mode & libc::S_IFMT, libc::S_IFSOCK | libc::S_IFIFO))
    {
        return io::Error::new(
            io::ErrorKind::InvalidInput,
            "the kernel cannot sendfile from this file (its file system does not support it)",
        );
    }
    io::Error::from_raw_os_error(libc::EINVAL)
}

/// The error for `EDESTADDRREQ`, a datagram destination never connected, which has no
/// `ErrorKind` a caller can match: `NotConnected`, what `UdpSocket::send` says there.
fn no_peer() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the destination socket is not connected (sendfile needs a connected peer)",
    )
}

/// Whether `fd` is open for writing only (`O_WRONLY`, as `OpenOptions` makes it for a
/// `write` or `append` without `read`): `sendfile`'s `EBADF` then means the source cannot be
/// read, not that a descriptor is closed.
fn write_only(fd: RawFd) -> bool {
    // SAFETY: F_GETFL takes no argument and only reads the fd's status flags.
    syscall!(fcntl(fd, libc::F_GETFL)).is_ok_and(|flags| flags & libc::O_ACCMODE == libc::O_WRONLY)
}

/// The access mode `fd` was opened with (`O_RDONLY`, `O_WRONLY` or `O_RDWR`), if
/// `F_GETFL` answers.
pub(crate) fn access_mode(fd: RawFd) -> Option<libc::c_int> {
    // SAFETY: F_GETFL takes no argument and only reads the fd's status flags.
    syscall!(fcntl(fd, libc::F_GETFL))
        .ok()
        .map(|flags| flags & libc::O_ACCMODE)
}

/// The error for `EBADF` from a source opened for writing only, which the kernel's "Bad file
/// descriptor" hides: `InvalidInput`, naming what to change.
fn not_readable() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "the file is not open for reading (sendfile reads it: open it with read(true))",
    )
}

/// One `pread` of up to `max` bytes (at most as many as `buf` has spare capacity for) at
/// `offset` into `buf`'s spare capacity; the bytes read are added to its length. Returns the count: `0` at
/// the end of the file.
pub(crate) fn pread_to_spare(
    fd: RawFd,
    buf: &mut Vec<u8>,
    max: usize,
    offset: u64,
) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    let max = max.min(spare.len());
    let off = libc::off_t::try_from(offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset past i64::MAX"))?;
    // SAFETY: `spare` is memory `buf` owns, valid and writable for its `spare.len()` bytes
    // (at least `max`) for the whole call, and the kernel writes at most `max` of them;
    // uninitialized bytes may be written to.
    let n = syscall!(pread(fd, spare.as_mut_ptr().cast(), max, off))? as usize;
    // SAFETY: the kernel initialized the first `n` (at most `max`) spare bytes, right after
    // the `buf.len()` bytes that were already initialized.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// Blocks until `fd` has any of `events` (`POLLIN`, `POLLOUT`), or an error or hang-up
/// state that the next read or write reports: for an fd in non-blocking mode (a pipe end
/// another process made so, a FIFO opened `O_NONBLOCK`), whose read or write on a pool thread
/// said `EAGAIN`. `EINTR` is retried. May block for good: pool only.
pub(crate) fn wait_fd(fd: RawFd, events: libc::c_short) -> io::Result<()> {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    loop {
        // SAFETY: `pfd` is one valid, writable pollfd for the whole call.
        match syscall!(poll(&mut pfd, 1, -1)) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other.map(drop),
        }
    }
}

/// The `fstat` of the file behind `fd`.
fn stat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: a zeroed stat is a valid buffer for fstat to fill.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid, writable stat buffer.
    syscall!(fstat(fd, &mut st))?;
    Ok(st)
}

/// Takes ownership of an open file descriptor, as tokio's `File` does: the same as
/// [`File::from_std`](crate::File::from_std) of `std::fs::File::from_raw_fd(fd)` (its offset
/// is used as is; error messages name no path).
impl FromRawFd for crate::File {
    /// # Safety
    /// `fd` must be an open file descriptor that the caller owns and hands over: nothing
    /// else may use or close it afterwards (see [`FromRawFd::from_raw_fd`]).
    unsafe fn from_raw_fd(fd: RawFd) -> crate::File {
        // SAFETY: the caller hands over an open fd it owns, as this function requires.
        crate::File::from_std(unsafe { std::fs::File::from_raw_fd(fd) })
    }
}
