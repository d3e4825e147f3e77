//! Non-blocking connect, shared by TCP and Unix streams.

use std::io;

use overlap_runtime::AsyncFd;

use crate::sys::{SockAddr, Socket};

/// Connects the already registered `io` to `addr` without blocking the loop. The socket
/// stays the caller's whatever the outcome, so a Unix connect refused with `EAGAIN` (a full
/// backlog) can be tried again on the same socket, which keeps any address it was bound to,
/// and a TCP one refused with `EADDRNOTAVAIL` can say which address it had.
///
/// The socket is registered *before* `connect`, so the completion edge cannot be missed;
/// dropping the future (a timeout) abandons the attempt, and the caller's socket with it.
///
/// Kernel behaviour handled here:
/// - `EINPROGRESS`: the handshake goes on in the background; the socket turns writable
///   (`EPOLLOUT`) when it completes, or reports `EPOLLERR`/`EPOLLHUP` when it fails. Either
///   way `SO_ERROR` holds the outcome (`ECONNREFUSED`, `ETIMEDOUT`, ...).
/// - `EINTR` from `connect` also means "still in progress" (the attempt is not cancelled),
///   so it is waited for the same way.
/// - A refused connection may be reported as `EPOLLERR | EPOLLHUP` without `EPOLLOUT`; the
///   writer waits for those too. If `SO_ERROR` was already consumed, a closed socket that
///   never became writable is reported as `ConnectionRefused`.
pub(crate) async fn connect_registered(io: &AsyncFd<Socket>, addr: &SockAddr) -> io::Result<()> {
    match io.get_ref().connect(addr) {
        Ok(()) => return Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINPROGRESS | libc::EINTR)) => {}
        Err(e) => return Err(e),
    }
    loop {
        let mut guard = io.writable().await?;
        let ready = guard.ready();
        if let Some(err) = io.get_ref().take_error()? {
            return Err(err);
        }
        if ready.is_writable() {
            break;
        }
        if ready.is_write_closed() || ready.is_error() {
            return Err(io::Error::from(io::ErrorKind::ConnectionRefused));
        }
        guard.clear_ready();
    }
    Ok(())
}
