//! Whether a copy's destination is dead already, found out without writing a byte (or
//! taking its pending error), and whether its source is at end of file, found out without
//! reading one.

use std::io;
use std::os::fd::RawFd;

use overlap_runtime::syscall;

/// The kinds of fd these looks tell apart.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A stream socket (TCP, Unix stream).
    Stream,
    /// A pipe or FIFO.
    Pipe,
    /// Anything else: a datagram or seqpacket socket, a character device, ...
    Other,
}

/// What kind of fd `fd` is; `Other` if neither `getsockopt` nor `fstat` can tell.
fn kind(fd: RawFd) -> Kind {
    match super::socket_type(fd) {
        Ok(libc::SOCK_STREAM) => Kind::Stream,
        Ok(_) => Kind::Other,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSOCK) => {
            if matches!(super::file_type(fd), Ok(libc::S_IFIFO)) {
                Kind::Pipe
            } else {
                Kind::Other
            }
        }
        Err(_) => Kind::Other,
    }
}

/// `poll(2)` of `fd` for `events` without waiting: its `revents`.
fn revents_now(fd: RawFd, events: libc::c_short) -> io::Result<libc::c_short> {
    let mut fds = [libc::pollfd {
        fd,
        events,
        revents: 0,
    }];
    super::poll_fds(&mut fds, 0)?;
    Ok(fds[0].revents)
}

/// Whether every write into `fd` fails now, asked with one `poll` that writes nothing and
/// leaves a pending error in place (its kind is looked up only when `poll` reports trouble):
///
/// - a stream socket is dead on `POLLHUP`: reset, closed, or shut down both ways (a Unix
///   stream whose peer closed), all states in which a write fails. A bare `POLLERR` is no
///   proof: a socket's error queue (transmit timestamps) raises it too;
/// - a pipe or FIFO is dead on `POLLERR`: its readers are all gone (a pipe has no error
///   queue);
/// - anything else (a datagram socket, a character device) is not looked at: `false`.
pub(crate) fn dead_write_end(fd: RawFd) -> io::Result<bool> {
    let revents = revents_now(fd, libc::POLLOUT)?;
    if revents & (libc::POLLHUP | libc::POLLERR) == 0 {
        return Ok(false);
    }
    Ok(match kind(fd) {
        Kind::Stream => revents & libc::POLLHUP != 0,
        Kind::Pipe => revents & libc::POLLERR != 0,
        Kind::Other => false,
    })
}

/// The error a write into `fd`, which [`dead_write_end`] found dead, fails with, found
/// without writing a byte or raising `SIGPIPE`: for a stream socket, what a `send` of 0
/// bytes (`MSG_NOSIGNAL | MSG_DONTWAIT`) fails with (its pending error, such as
/// `ECONNRESET`, taken as a write takes it, else `EPIPE`); for a pipe, `EPIPE`.
pub(crate) fn write_error(fd: RawFd) -> io::Error {
    let epipe = || io::Error::from_raw_os_error(libc::EPIPE);
    if kind(fd) != Kind::Stream {
        return epipe();
    }
    let flags = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;
    loop {
        // SAFETY: a length of 0 means the kernel reads nothing through the pointer, which
        // is non-null and aligned anyway.
        match syscall!(send(fd, [0u8; 0].as_ptr().cast(), 0, flags)) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => return e,
            // Taken by someone else meanwhile, or no error pending: what a write says.
            _ => return epipe(),
        }
    }
}

/// Whether `fd` is at end of file now, found without taking a byte: a stream socket whose
/// `recv(MSG_PEEK)` returns 0, or a pipe or FIFO that `poll` reports hung up with nothing to
/// read. Anything else (data queued, nothing yet, an error, which the next read reports, a
/// datagram socket, which has no end of file) is not.
pub(crate) fn at_end_of_file(fd: RawFd) -> bool {
    match kind(fd) {
        Kind::Stream => {
            let mut byte = 0u8;
            let flags = libc::MSG_PEEK | libc::MSG_DONTWAIT;
            // SAFETY: `byte` is one writable byte for the whole call; with `MSG_PEEK` the
            // kernel copies into it and leaves it queued.
            let res = syscall!(recv(fd, (&mut byte as *mut u8).cast(), 1, flags));
            matches!(res, Ok(0))
        }
        Kind::Pipe => revents_now(fd, libc::POLLIN)
            .is_ok_and(|r| r & libc::POLLHUP != 0 && r & libc::POLLIN == 0),
        Kind::Other => false,
    }
}
