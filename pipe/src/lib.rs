//! Pipes and FIFOs on overlap's reactor.
//!
//! [`pipe`] makes an anonymous pipe as an async [`Sender`] (write end) and [`Receiver`]
//! (read end); [`Sender::open`] and [`Receiver::open`] open named FIFOs, and
//! [`OpenOptions`] opens them read-write (tokio's `read_write(true)`). Both ends are
//! non-blocking and close-on-exec, registered with the current runtime's reactor, and
//! implement the futures-io [`AsyncWrite`](futures_util::io::AsyncWrite) /
//! [`AsyncRead`](futures_util::io::AsyncRead) traits.
//!
//! Bytes can also move between a pipe and a socket without passing through user memory:
//! [`Sender::splice_from`], [`Receiver::splice_to`], [`splice_copy`] for a whole stream,
//! and [`splice_bidirectional`] for both directions of a zero-copy proxy. See the `splice` functions' docs for the details.
//!
//! # Cancellation
//! A read or write makes its syscall only when it is about to return, so one dropped while
//! it waits (in a `select!`, under a timeout) has moved no byte: a dropped `read` leaves the
//! data for the next one, a dropped `write` has written nothing. The same holds for
//! `readable`, `writable`, [`Sender::splice_from`] and [`Receiver::splice_to`], but not for
//! [`splice_copy`] and [`splice_bidirectional`], which lose the bytes held in their private
//! pipe. A dropped [`Child::wait`](process::Child::wait) leaves the exit status for the
//! next one; dropping `output()` or `wait_with_output()` drops the child (see [`process`]).
//!
//! ```
//! use overlap::io::{AsyncReadExt, AsyncWriteExt};
//!
//! overlap::block_on(async {
//!     let (mut tx, mut rx) = overlap::pipe::pipe().unwrap();
//!     overlap::spawn(async move {
//!         tx.write_all(b"through the pipe").await.unwrap();
//!         // Dropping the sender closes the write end: the receiver sees EOF.
//!     });
//!     let mut got = String::new();
//!     rx.read_to_string(&mut got).await.unwrap();
//!     assert_eq!(got, "through the pipe");
//! });
//! ```

mod open_options;
pub mod process;
mod receiver;
mod sender;
mod splice;
mod sys;

use std::io;

pub use open_options::OpenOptions;
pub use receiver::Receiver;
pub use sender::Sender;
pub use splice::{splice_bidirectional, splice_copy};

/// Creates an anonymous pipe: `(write end, read end)`, both registered with the current
/// runtime.
///
/// Fails outside a runtime (`ErrorKind::Other`) or when the process is out of fds.
pub fn pipe() -> io::Result<(Sender, Receiver)> {
    let (r, w) = sys::pipe()?;
    Ok((Sender::from_owned_fd(w)?, Receiver::from_owned_fd(r)?))
}

/// Opens the FIFO at `path` for `access` (`O_RDONLY`, `O_WRONLY` or `O_RDWR`; non-blocking and
/// close-on-exec), an error naming the path. `open(2)` says `ENXIO` both for a FIFO with no
/// reader and for what is no FIFO at all (a Unix socket, a device with no driver): the
/// latter is reported as `InvalidInput` here, so that code retrying until a reader comes
/// does not retry for ever.
fn open_fifo(path: &std::path::Path, access: libc::c_int) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::unix::fs::FileTypeExt;
    // Before the open: outside a runtime the end could not be registered, and an end opened
    // and closed again is seen at the other end (a writer that comes and goes is end of file
    // to the readers; a reader releases a writer blocked in `open`).
    overlap_runtime::check_io_runtime()
        .map_err(|e| overlap_runtime::io::with_path_context(e, "open", path, None))?;
    sys::open(path, access).map_err(|e| {
        let not_fifo = e.raw_os_error() == Some(libc::ENXIO)
            && std::fs::metadata(path).is_ok_and(|m| !m.file_type().is_fifo());
        let e = if not_fifo {
            io::Error::new(io::ErrorKind::InvalidInput, "not a pipe or FIFO")
        } else {
            e
        };
        overlap_runtime::io::with_path_context(e, "open", path, None)
    })
}

/// Checks that `fd` is a pipe or FIFO open for `access` (`O_RDONLY` for a receiver,
/// `O_WRONLY` for a sender; `O_RDWR` does for both; an `O_PATH` fd does for neither),
/// changing nothing. The wrong end is refused: epoll never reports it ready for the other
/// direction, so a wait on it would never end.
fn check_pipe(fd: &std::os::fd::OwnedFd, access: libc::c_int) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let raw = fd.as_raw_fd();
    if sys::file_type(raw)? != libc::S_IFIFO {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a pipe or FIFO",
        ));
    }
    let Some(mode) = sys::access_mode(raw)? else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "this fd was opened with O_PATH: neither end of a pipe",
        ));
    };
    if mode != access && mode != libc::O_RDWR {
        let (wanted, end) = if access == libc::O_RDONLY {
            ("reading", "write")
        } else {
            ("writing", "read")
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("this fd is a pipe's {end} end, not open for {wanted}"),
        ));
    }
    Ok(())
}

/// Registers a pipe end that [`check_pipe`] accepted, then makes it non-blocking: in that
/// order, so that a registration that fails (outside a runtime, say) leaves its open file
/// description as it was. `O_NONBLOCK` is the description's, shared with every fd (and
/// process) it was duplicated to: left set by a call that failed, their blocking reads and
/// writes would fail with `EAGAIN`.
fn register_pipe(
    fd: std::os::fd::OwnedFd,
) -> io::Result<overlap_runtime::AsyncFd<std::os::fd::OwnedFd>> {
    use std::os::fd::AsRawFd;
    let fd = overlap_runtime::AsyncFd::new(fd)?;
    sys::set_nonblocking_to(fd.as_raw_fd(), true)?;
    Ok(fd)
}
