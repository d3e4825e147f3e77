//! The service's side of `sd_notify`: datagrams of `KEY=value` lines to the socket named
//! by `NOTIFY_SOCKET`, a path or an abstract name written `@name` (a leading NUL byte for
//! overlap's `send_to`), with fds attached for `FDSTORE=1`.

use std::io;
use std::os::fd::BorrowedFd;

use overlap::net::UnixDatagram;

/// Where notifications go; with no `NOTIFY_SOCKET` every send is a no-op, as
/// `sd_notify` is outside a service manager.
pub struct Notifier {
    sock: Option<(UnixDatagram, String)>,
}

impl Notifier {
    /// A notifier for the value of `NOTIFY_SOCKET`; `InvalidInput` for one that is neither
    /// an absolute path nor `@name`. Must be called inside a runtime.
    pub fn new(notify_socket: Option<&str>) -> io::Result<Notifier> {
        let Some(value) = notify_socket else {
            return Ok(Notifier { sock: None });
        };
        let addr = match value.strip_prefix('@') {
            Some(name) if !name.is_empty() => format!("\0{name}"),
            None if value.starts_with('/') => value.to_owned(),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("NOTIFY_SOCKET={value:?} is neither an absolute path nor @name"),
                ))
            }
        };
        Ok(Notifier {
            sock: Some((UnixDatagram::unbound()?, addr)),
        })
    }

    /// Sends `msg` as one datagram.
    pub async fn send(&self, msg: &str) -> io::Result<()> {
        self.send_with_fds(msg, &[]).await
    }

    /// Sends `msg` with `fds` attached (`SCM_RIGHTS`), for `FDSTORE=1`.
    pub async fn send_with_fds(&self, msg: &str, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
        if let Some((sock, addr)) = &self.sock {
            sock.send_to_with_fds(msg.as_bytes(), fds, addr).await?;
        }
        Ok(())
    }
}

/// `CLOCK_MONOTONIC` in microseconds, for `RELOADING=1`'s `MONOTONIC_USEC=` (no
/// `Instant` gives it, in overlap, tokio or std).
pub fn monotonic_usec() -> u64 {
    // SAFETY: an all-zero timespec is valid; clock_gettime writes into it.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `ts` is a live local; CLOCK_MONOTONIC always exists.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(r, 0);
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}
