//! Passing file descriptors (`SCM_RIGHTS`) over [`UnixStream`] and [`UnixDatagram`].

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;

use overlap_runtime::{AsyncFd, Direction};

use super::{SocketAddr, UnixDatagram, UnixStream};
use crate::io::{read_io, try_now, write_io};
use crate::sys::{Received, SockAddr, Socket, MAX_FDS};

/// Refuses more descriptors than one message carries, in our words (the kernel's are
/// "Invalid argument").
fn check_count(fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    if fds.len() > MAX_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "one message carries at most {MAX_FDS} file descriptors, not {}",
                fds.len()
            ),
        ));
    }
    Ok(())
}

/// Waits until `io` is readable and receives one message with its descriptors (see
/// [`whole`]).
async fn recv_fds(
    io: &AsyncFd<Socket>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
) -> io::Result<usize> {
    let first_new = fds.len();
    let got = read_io(io, |s| s.recv_with_fds(buf, fds)).await?;
    whole(got, fds, first_new)
}

/// Receives one message with its descriptors if `io` is known to be readable, without
/// waiting: `WouldBlock` otherwise (see [`whole`]).
fn try_recv_fds(io: &AsyncFd<Socket>, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
    let first_new = fds.len();
    let got = try_now(io, Direction::Read, |s| s.recv_with_fds(buf, fds))?;
    whole(got, fds, first_new)
}

/// The length of a message received with descriptors appended to `fds` from `first_new`
/// on. If the kernel could not give them all, those it gave are closed and the message is
/// an error: a message whose descriptors are missing is no message the sender sent.
pub(super) fn whole(got: Received, fds: &mut Vec<OwnedFd>, first_new: usize) -> io::Result<usize> {
    if got.fds_cut {
        fds.truncate(first_new);
        return Err(io::Error::other(format!(
            "the file descriptors sent with a message of {} bytes were lost: the process has \
             no room for them (RLIMIT_NOFILE) or more came than one message carries",
            got.len
        )));
    }
    Ok(got.len)
}

/// A stream carries descriptors only with bytes: refuses `fds` with an empty `buf`, and
/// more than one message carries.
fn check_stream_send(buf: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    check_count(fds)?;
    if buf.is_empty() && !fds.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a stream carries file descriptors only with at least one byte",
        ));
    }
    Ok(())
}

impl UnixStream {
    /// Writes bytes from `buf` with the descriptors `fds` attached (`SCM_RIGHTS`), waiting
    /// for room; returns how many bytes went, as a write does. The descriptors travel with
    /// those bytes, whatever their number: on a short count, write the rest of `buf` with
    /// a plain write (or another call with no `fds`). The peer gets its own copies of them
    /// with [`recv_with_fds`](Self::recv_with_fds); this process keeps its own.
    ///
    /// A stream carries descriptors only with at least one byte: an empty `buf` with `fds`
    /// is refused with `InvalidInput`, as are more than 253 descriptors (the kernel's limit
    /// per message). With no `fds` it is a plain write.
    ///
    /// Cancel-safe: dropped while it waits for room, it has sent nothing.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::os::fd::AsFd;
    /// use overlap::net::UnixStream;
    ///
    /// overlap::block_on(async {
    ///     let (a, b) = UnixStream::pair()?;
    ///     // Hand the peer one end of a std socket pair, with a byte saying what it is.
    ///     let (mut mine, theirs) = std::os::unix::net::UnixStream::pair()?;
    ///     assert_eq!(a.send_with_fds(b"s", &[theirs.as_fd()]).await?, 1);
    ///     drop(theirs);
    ///
    ///     let (mut buf, mut fds) = ([0u8; 8], Vec::new());
    ///     assert_eq!(b.recv_with_fds(&mut buf, &mut fds).await?, 1);
    ///     let mut received = std::os::unix::net::UnixStream::from(fds.pop().unwrap());
    ///     received.write_all(b"hi")?;
    ///     let mut got = [0u8; 2];
    ///     mine.read_exact(&mut got)?;
    ///     assert_eq!(&got, b"hi");
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub async fn send_with_fds(&self, buf: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
        check_stream_send(buf, fds)?;
        if buf.is_empty() {
            return Ok(0);
        }
        write_io(&self.io, |s| s.send_with_fds(buf, fds)).await
    }

    /// Like [`send_with_fds`](Self::send_with_fds), without waiting: `WouldBlock` if nothing
    /// fits now (or the socket is not known to be writable), and then nothing was sent.
    /// Pairs with [`writable`](Self::writable); bad input is refused as there.
    pub fn try_send_with_fds(&self, buf: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
        check_stream_send(buf, fds)?;
        crate::io::try_stream(&self.io, Direction::Write, buf.len(), |s| {
            s.send_with_fds(buf, fds)
        })
    }

    /// Like [`recv_with_fds`](Self::recv_with_fds), without waiting: `WouldBlock` if nothing
    /// is queued (or the socket is not known to be readable), `fds` then untouched. Pairs
    /// with [`readable`](Self::readable).
    pub fn try_recv_with_fds(&self, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        try_recv_fds(&self.io, buf, fds).map_err(super::stream::no_peer)
    }

    /// Reads bytes into `buf`, appending to `fds` the descriptors that came with them;
    /// returns how many bytes, 0 at end of file (and at once for an empty `buf`).
    ///
    /// A read that reaches bytes sent with descriptors takes those descriptors and stops at
    /// the end of those bytes, short of `buf` if need be: one call gets at most one
    /// sender's set, with the bytes before them that it read on its way. The
    /// descriptors are new ones in this process, close-on-exec; to use one as a socket,
    /// give it to the wrapper's `TryFrom<OwnedFd>`, which checks its kind.
    ///
    /// If the process has no room for them (`RLIMIT_NOFILE`), the kernel closes the
    /// descriptors it could not install: the call then fails with an `Other` error after
    /// the bytes were taken, and closes those it did get, since the message is incomplete;
    /// treat the stream as broken. Bytes read with a plain `read` lose their descriptors
    /// the same way (see [Passing file descriptors](Self#passing-file-descriptors)).
    ///
    /// Cancel-safe: dropped while it waits, it has taken nothing.
    pub async fn recv_with_fds(&self, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        recv_fds(&self.io, buf, fds)
            .await
            .map_err(super::stream::no_peer)
    }
}

impl UnixDatagram {
    /// Sends `buf` as one datagram to the connected peer with the descriptors `fds`
    /// attached (`SCM_RIGHTS`); an empty `buf` makes an empty datagram that carries them.
    /// More than 253 descriptors (the kernel's limit per message) are refused with
    /// `InvalidInput`; no peer is `NotConnected`, as for [`send`](Self::send).
    ///
    /// ```
    /// use std::os::fd::AsFd;
    /// use overlap::net::UnixDatagram;
    ///
    /// overlap::block_on(async {
    ///     let (a, b) = UnixDatagram::pair()?;
    ///     let file = std::fs::File::open("/dev/null")?;
    ///     a.send_with_fds(b"", &[file.as_fd(), file.as_fd()]).await?;
    ///     let mut fds = Vec::new();
    ///     assert_eq!(b.recv_with_fds(&mut [0u8; 4], &mut fds).await?, 0);
    ///     assert_eq!(fds.len(), 2);
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub async fn send_with_fds(&self, buf: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
        check_count(fds)?;
        let sent = write_io(&self.io, |s| s.send_with_fds(buf, fds)).await;
        sent.map_err(|e| self.peer_taken(e))
    }

    /// Sends `buf` as one datagram to the socket bound at `path` with the descriptors `fds`
    /// attached, as [`send_with_fds`](Self::send_with_fds) does to the connected peer: for
    /// an unconnected socket answering several peers. It waits for a full receiver and
    /// refuses a path as [`send_to`](Self::send_to) does, and more than 253 descriptors
    /// with `InvalidInput`. Cancel-safe: dropped before it completes, it has sent nothing.
    pub async fn send_to_with_fds(
        &self,
        buf: &[u8],
        fds: &[BorrowedFd<'_>],
        path: impl AsRef<Path>,
    ) -> io::Result<usize> {
        check_count(fds)?;
        self.send_to_with(path.as_ref(), |s, addr| {
            s.send_to_with_fds(buf, fds, Some(addr))
        })
        .await
    }

    /// Receives one datagram into `buf` (cut to its length, as [`recv`](Self::recv) does),
    /// appending to `fds` the descriptors that came with it; returns its length. A
    /// datagram whose descriptors the process had no room for fails as
    /// [`UnixStream::recv_with_fds`] describes, the datagram taken.
    pub async fn recv_with_fds(&self, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
        recv_fds(&self.io, buf, fds).await
    }

    /// Like [`recv_with_fds`](Self::recv_with_fds), also returning the sender's address
    /// (unnamed if it is not bound), as [`recv_from`](Self::recv_from) does: for an
    /// unconnected socket that answers several peers with
    /// [`send_to_with_fds`](Self::send_to_with_fds). Cancel-safe: dropped while it waits,
    /// it has taken no datagram.
    pub async fn recv_from_with_fds(
        &self,
        buf: &mut [u8],
        fds: &mut Vec<OwnedFd>,
    ) -> io::Result<(usize, SocketAddr)> {
        let first_new = fds.len();
        let mut from = SockAddr::empty();
        let got = read_io(&self.io, |s| {
            from = SockAddr::empty();
            s.recv_from_with_fds(buf, fds, Some(&mut from))
        })
        .await?;
        let len = whole(got, fds, first_new)?;
        match from.to_unix() {
            Some(addr) => Ok((len, addr)),
            None => {
                fds.truncate(first_new);
                Err(io::Error::other(
                    "a datagram came from an address that is no Unix socket path std can hold",
                ))
            }
        }
    }

    /// Like [`send_with_fds`](Self::send_with_fds), without waiting: `WouldBlock` if the
    /// datagram cannot go now (the peer's queue is full), and then nothing was sent. Pairs
    /// with [`writable`](Self::writable).
    pub fn try_send_with_fds(&self, buf: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
        check_count(fds)?;
        try_now(&self.io, Direction::Write, |s| s.send_with_fds(buf, fds))
            .map_err(|e| self.peer_taken(e))
    }

    /// Like [`recv_with_fds`](Self::recv_with_fds), without waiting: `WouldBlock` if no
    /// datagram is queued, `fds` then untouched. Pairs with [`readable`](Self::readable).
    pub fn try_recv_with_fds(&self, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
        try_recv_fds(&self.io, buf, fds)
    }
}
