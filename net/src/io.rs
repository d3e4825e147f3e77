//! The readiness loops every socket type shares: wait, try the syscall, and on `EAGAIN`
//! forget the readiness and wait for the next edge. `EINTR` is retried here, so callers never
//! see it.

use std::future::Future;
use std::io;
use std::task::{ready, Context, Poll};

use overlap_runtime::{own_waits, AsyncFd, Direction};

use crate::sys::Socket;

/// Registers `sock`, which may be in blocking mode (a std socket, an fd handed over), with
/// the current runtime, then switches it to non-blocking mode: in that order, so that a
/// registration that fails (outside a runtime, say) leaves the socket as it was. `O_NONBLOCK`
/// belongs to the open file description, which every `dup` of the socket shares: left set
/// by a call that failed, their blocking calls would start failing with `WouldBlock`.
pub(crate) fn register_nonblocking(sock: Socket) -> io::Result<AsyncFd<Socket>> {
    let io = AsyncFd::new(sock)?;
    io.get_ref().set_nonblocking(true)?;
    Ok(io)
}

/// Sleeps `delay` before a retry the kernel sends no wake-up for (a full Unix backlog, a
/// full unconnected receiver), on the socket's own runtime: polled under another one, or
/// outside any, it fails with the `Other` error the socket's readiness gives there, where
/// the timer would move (or panic, outside a runtime).
pub(crate) async fn pause_before_retry(
    io: &AsyncFd<Socket>,
    delay: std::time::Duration,
) -> io::Result<()> {
    let mut nap = std::pin::pin!(overlap_runtime::time::sleep(delay));
    std::future::poll_fn(|cx| {
        io.check_runtime()?;
        nap.as_mut().poll(cx).map(Ok)
    })
    .await
}

/// Runs `op` once the socket is read-ready, until it does not fail with `WouldBlock` or
/// `Interrupted`. When `drained(&result)` says the kernel buffer is now empty, the read
/// readiness is cleared so the next read waits for an edge instead of paying for an `EAGAIN`
/// (unless an error or priority note says a short read proves nothing: see
/// `AsyncFdReadyGuard::clear_ready_after_short_io`).
pub(crate) fn poll_read_with<R>(
    io: &AsyncFd<Socket>,
    cx: &mut Context<'_>,
    mut op: impl FnMut(&Socket) -> io::Result<R>,
    drained: impl Fn(&R) -> bool,
) -> Poll<io::Result<R>> {
    loop {
        let mut guard = ready!(io.poll_read_ready(cx))?;
        match op(io.get_ref()) {
            Ok(r) => {
                if drained(&r) {
                    guard.clear_ready_after_short_io();
                }
                return Poll::Ready(Ok(r));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if guard.ready().is_read_closed() {
                    // A datagram socket shut down for reading says `EAGAIN` once its queue
                    // is empty, while epoll keeps reporting the hang-up for ever: waiting
                    // would spin. (A blocking `recv` returns at once too.)
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::NotConnected,
                        "the socket is shut down for reading and nothing is queued",
                    )));
                }
                guard.clear_ready()
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}

/// Like [`poll_read_with`], for the write direction.
pub(crate) fn poll_write_with<R>(
    io: &AsyncFd<Socket>,
    cx: &mut Context<'_>,
    mut op: impl FnMut(&Socket) -> io::Result<R>,
    full: impl Fn(&R) -> bool,
) -> Poll<io::Result<R>> {
    loop {
        let mut guard = ready!(io.poll_write_ready(cx))?;
        match op(io.get_ref()) {
            Ok(r) => {
                if full(&r) {
                    guard.clear_ready_after_short_io();
                }
                return Poll::Ready(Ok(r));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => guard.clear_ready(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}

/// `recv` of one datagram on a datagram socket (UDP, Unix), as a poll function. Readiness
/// is only cleared on `EAGAIN`: a short datagram says nothing about what else is queued.
pub(crate) fn poll_recv_datagram(
    io: &AsyncFd<Socket>,
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<io::Result<usize>> {
    poll_read_with(io, cx, |s| s.recv(buf, 0), |_| false)
}

/// `send` of one datagram to the connected peer, as a poll function.
pub(crate) fn poll_send_datagram(
    io: &AsyncFd<Socket>,
    cx: &mut Context<'_>,
    buf: &[u8],
) -> Poll<io::Result<usize>> {
    poll_write_with(io, cx, |s| s.send(buf), |_| false)
}

/// Waits for read readiness and runs `op` (see [`poll_read_with`]); never clears early.
pub(crate) async fn read_io<R>(
    io: &AsyncFd<Socket>,
    mut op: impl FnMut(&Socket) -> io::Result<R>,
) -> io::Result<R> {
    own_waits(|cx| poll_read_with(io, cx, &mut op, |_| false)).await
}

/// Waits for write readiness and runs `op`; never clears early.
pub(crate) async fn write_io<R>(
    io: &AsyncFd<Socket>,
    mut op: impl FnMut(&Socket) -> io::Result<R>,
) -> io::Result<R> {
    own_waits(|cx| poll_write_with(io, cx, &mut op, |_| false)).await
}

/// `AsyncRead::poll_read` for a TCP stream.
///
/// A read that returns fewer bytes than asked (but not 0) means the receive queue is empty
/// now: a TCP `recv` copies until the buffer is full or the queue runs out. So the read
/// readiness is cleared and the next read sleeps until the next `EPOLLIN` edge: one `recv`
/// per message instead of two. If more data raced in, its edge is already queued in epoll
/// (or newer than our snapshot, which the tick check keeps), so nothing is lost. EOF (0) is
/// not cleared: `READ_CLOSED` stays, and every later read returns 0 again at once.
///
/// One exception: `recv` also stops at a TCP urgent mark (`MSG_OOB` data) with the rest of
/// the queue unread. Urgent data raises `EPOLLPRI`, which leaves [`Ready::PRIORITY`] on the
/// socket for good; from then on only `EAGAIN` clears the readiness.
///
/// [`Ready::PRIORITY`]: overlap_runtime::Ready::PRIORITY
pub(crate) fn poll_read_stream(
    io: &AsyncFd<Socket>,
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<io::Result<usize>> {
    read_stream(io, cx, buf, |s, buf| Ok((s.recv(buf, 0)?, false)))
}

/// `AsyncRead::poll_read` for a Unix stream socket: as [`poll_read_stream`], with one more
/// way a read stops short of the queue's end. The kernel ends a read after a message that
/// carried file descriptors (or credentials, with `SO_PASSCRED`), which a plain read
/// discards, flagging `MSG_CTRUNC`; such a short read keeps the readiness.
pub(crate) fn poll_read_unix_stream(
    io: &AsyncFd<Socket>,
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<io::Result<usize>> {
    read_stream(io, cx, buf, Socket::recv_noting_truncation)
}

/// `AsyncRead::poll_read_vectored` for a stream socket (TCP or Unix): one `recvmsg` filling
/// `bufs` in order, up to 1024 slices from the first non-empty one. As a plain read, a read
/// short of their total waits for the next edge, unless the kernel stopped it early at a
/// message that carried (and lost) ancillary data on a Unix socket.
pub(crate) fn poll_read_vectored_stream(
    io: &AsyncFd<Socket>,
    cx: &mut Context<'_>,
    bufs: &mut [io::IoSliceMut<'_>],
) -> Poll<io::Result<usize>> {
    let bufs = skip_empty_mut(bufs);
    let len: usize = bufs.iter().take(1024).map(|b| b.len()).sum();
    if len == 0 {
        return Poll::Ready(Ok(0));
    }
    let read = poll_read_with(
        io,
        cx,
        |s| s.recv_vectored(bufs),
        |&(n, stopped_early)| n > 0 && n < len && !stopped_early,
    );
    read.map_ok(|(n, _)| n)
}

/// A stream read with `recv`, which returns the bytes read and whether the read may have
/// stopped short of the queue's end for another reason than the queue running out.
fn read_stream(
    io: &AsyncFd<Socket>,
    cx: &mut Context<'_>,
    buf: &mut [u8],
    recv: impl Fn(&Socket, &mut [u8]) -> io::Result<(usize, bool)>,
) -> Poll<io::Result<usize>> {
    if buf.is_empty() {
        return Poll::Ready(Ok(0));
    }
    let len = buf.len();
    let read = poll_read_with(
        io,
        cx,
        |s| recv(s, buf),
        |&(n, stopped_early)| n > 0 && n < len && !stopped_early,
    );
    read.map_ok(|(n, _)| n)
}

/// `AsyncWrite::poll_write` for a stream socket: `send` with `MSG_NOSIGNAL`.
///
/// A short write means the send buffer is full, so the write readiness is cleared and the
/// next write waits for `EPOLLOUT` (the kernel sets `SOCK_NOSPACE` and signals when room
/// frees up). `EPOLLRDHUP` (the peer shut its write side) is read-side only: writes go on.
/// `EPOLLHUP` (both directions closed, e.g. after a reset) and `EPOLLERR` stay set, so a
/// writer never sleeps on a dead socket: `send` itself reports `EPIPE`/`ECONNRESET`.
pub(crate) fn poll_write_stream(
    io: &AsyncFd<Socket>,
    cx: &mut Context<'_>,
    buf: &[u8],
) -> Poll<io::Result<usize>> {
    if buf.is_empty() {
        return Poll::Ready(Ok(0));
    }
    let len = buf.len();
    poll_write_with(io, cx, |s| s.send(buf), |&n| n < len)
}

/// `AsyncWrite::poll_write_vectored` for a stream socket: one `sendmsg` of up to 1024
/// slices, from the first non-empty one (so that a run of empty slices longer than that does
/// not read as a write of nothing).
pub(crate) fn poll_write_vectored_stream(
    io: &AsyncFd<Socket>,
    cx: &mut Context<'_>,
    bufs: &[io::IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    let bufs = skip_empty(bufs);
    let len: usize = bufs.iter().take(1024).map(|b| b.len()).sum();
    if len == 0 {
        return Poll::Ready(Ok(0));
    }
    poll_write_with(io, cx, |s| s.send_vectored(bufs), |&n| n < len)
}

/// `AsyncWrite::poll_close` for a stream socket: shut down the write side, so the peer reads
/// EOF. `ENOTCONN` (never connected, or the peer already reset the connection) counts as
/// closed.
pub(crate) fn shutdown_write(io: &AsyncFd<Socket>) -> io::Result<()> {
    match shutdown(io, std::net::Shutdown::Write) {
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        res => res,
    }
}

/// `shutdown(2)` of a registered socket. Once the write side is shut, a task blocked
/// writing (on a full buffer) is woken to meet `EPIPE`: a Unix stream socket reports no edge
/// for it (`unix_poll` gives `EPOLLOUT` only for room in the buffer, `EPOLLHUP` only once
/// both sides are shut), where a blocking `send` returns at once.
pub(crate) fn shutdown(io: &AsyncFd<Socket>, how: std::net::Shutdown) -> io::Result<()> {
    io.get_ref().shutdown(how)?;
    if how != std::net::Shutdown::Read {
        io.set_write_closed();
    }
    Ok(())
}

/// `bufs` from its first non-empty slice on.
pub(crate) fn skip_empty<'a, 'b>(bufs: &'a [io::IoSlice<'b>]) -> &'a [io::IoSlice<'b>] {
    let first = bufs
        .iter()
        .position(|b| !b.is_empty())
        .unwrap_or(bufs.len());
    &bufs[first..]
}

/// `bufs` from its first non-empty slice on, for a vectored read: a run of more empty slices
/// than one `recvmsg` takes (1024) would otherwise read nothing and look like end of file.
pub(crate) fn skip_empty_mut<'a, 'b>(
    bufs: &'a mut [io::IoSliceMut<'b>],
) -> &'a mut [io::IoSliceMut<'b>] {
    let first = bufs
        .iter()
        .position(|b| !b.is_empty())
        .unwrap_or(bufs.len());
    &mut bufs[first..]
}

/// `try_read_vectored` for a stream socket: one `recvmsg` now, if the socket is known to be
/// readable (see [`try_now`]). Ancillary data (fds passed over a Unix socket) is discarded.
/// Slices that are all empty read nothing: `Ok(0)`, without a syscall.
pub(crate) fn try_read_vectored_stream(
    io: &AsyncFd<Socket>,
    bufs: &mut [io::IoSliceMut<'_>],
) -> io::Result<usize> {
    let bufs = skip_empty_mut(bufs);
    try_stream(io, Direction::Read, bufs.len(), |s| {
        s.recv_vectored(bufs).map(|(n, _)| n)
    })
}

/// `try_write_vectored` for a stream socket: one `sendmsg` (`MSG_NOSIGNAL`) now, if the
/// socket is known to be writable. Slices that are all empty write nothing: `Ok(0)`.
pub(crate) fn try_write_vectored_stream(
    io: &AsyncFd<Socket>,
    bufs: &[io::IoSlice<'_>],
) -> io::Result<usize> {
    let bufs = skip_empty(bufs);
    try_stream(io, Direction::Write, bufs.len(), |s| s.send_vectored(bufs))
}

/// [`try_now`] for a stream socket's read or write of `len` bytes (or buffers): with nothing
/// to move it is `Ok(0)` at once, without a syscall, as a `poll_read`/`poll_write` is. (Not
/// for datagram sockets, where an empty datagram is one to send or receive.)
pub(crate) fn try_stream(
    io: &AsyncFd<Socket>,
    dir: Direction,
    len: usize,
    op: impl FnMut(&Socket) -> io::Result<usize>,
) -> io::Result<usize> {
    if len == 0 {
        return Ok(0);
    }
    try_now(io, dir, op)
}

/// `op` once, now, if the socket is known to be ready in `dir`; `WouldBlock` otherwise, and
/// after an `op` that would block (whose readiness is then cleared: see `AsyncFd::try_io`).
/// `EINTR` is retried.
///
/// A read that would block on a socket whose read side stays closed (a datagram socket shut
/// down for reading, its queue drained) fails with `NotConnected`, as [`poll_read_with`]
/// does: the hang-up is never cleared, so `readable()` would return at once for ever and a
/// `readable`/`try_recv` loop would spin.
pub(crate) fn try_now<R>(
    io: &AsyncFd<Socket>,
    dir: Direction,
    mut op: impl FnMut(&Socket) -> io::Result<R>,
) -> io::Result<R> {
    loop {
        match io.try_io(dir, &mut op) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    && dir == Direction::Read
                    && io.current_ready(Direction::Read).is_read_closed() =>
            {
                return Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "the socket is shut down for reading and nothing is queued",
                ));
            }
            res => return res,
        }
    }
}

/// `readable`, `writable`, `ready` and the readiness poll functions (named `$poll_read` and
/// `$poll_write`) for a socket type with an `io: AsyncFd<Socket>` field, whose `try_*`
/// methods they pair with. Doc comments in the optional `ready { ... }`, `try_io { ... }`
/// and `async_io { ... }` blocks are appended to those methods' docs (a type's examples).
macro_rules! impl_readiness {
    (
        $ty:ident, $try_read:literal, $try_write:literal, $poll_read:ident, $poll_write:ident
        $(, ready { $(#[$ready_doc:meta])* })?
        $(, try_io { $(#[$try_io_doc:meta])* })?
        $(, async_io { $(#[$async_io_doc:meta])* })?
    ) => {
        impl $ty {
            #[doc = concat!(
                        "Waits until the socket may be readable: data, end of file or an error is \
                 there. It reads nothing; follow it with [`", $try_read, "`](Self::",
                        $try_read, ").\n\nReadiness is a hint: the read may still say \
                 `WouldBlock` (another task got there first, or the wake was spurious), \
                 which clears it, so the next wait sleeps until new data. Cancel-safe.\n\n\
                 Each return spends a unit of the task's cooperative budget (unlike \
                 tokio's): in a loop that never meets `Pending`, about one wait in 128 \
                 yields to the other tasks first."
                    )]
            pub async fn readable(&self) -> ::std::io::Result<()> {
                self.io.readable().await.map(drop)
            }

            #[doc = concat!(
                        "Waits until the socket may be writable (or has failed). It writes \
                 nothing; follow it with [`", $try_write, "`](Self::", $try_write,
                        "), which may still say `WouldBlock`. Cancel-safe.\n\n\
                 Each return spends a unit of the task's cooperative budget, as \
                 [`readable`](Self::readable)'s does (tokio's `writable` spends none)."
                    )]
            pub async fn writable(&self) -> ::std::io::Result<()> {
                self.io.writable().await.map(drop)
            }

            #[doc = concat!(
                        "Waits until the socket may be ready in one of the directions of \
                 `interest`, and tells which: readable (or read-closed), writable (or \
                 write-closed), or failed ([`Ready::is_error`](overlap_runtime::Ready::is_error)). \
                 It moves no data; follow it with [`", $try_read, "`](Self::", $try_read,
                        ") and [`", $try_write, "`](Self::", $try_write, "), whose \
                 `WouldBlock` clears that direction's readiness, so the next wait sleeps \
                 until there is news. Cancel-safe.\n\n\
                 Read-closed and write-closed stay once seen: after them the calls return \
                 at once (end of file, or an error), so a loop must stop asking for that \
                 direction.\n\n\
                 [`Interest::ERROR`](overlap_runtime::Interest::ERROR) waits for an error \
                 only (a TCP reset, an ICMP error), however readable or writable the socket \
                 is meanwhile; [`Interest::PRIORITY`](overlap_runtime::Interest::PRIORITY) \
                 for TCP urgent data. Both stay reported until a call takes the error (or \
                 `recv(MSG_OOB)` the urgent byte) and a later one says `WouldBlock`.\n\n\
                 Each return spends a unit of the task's cooperative budget, as \
                 [`readable`](Self::readable)'s does (tokio's `ready` spends none)."
                    )]
            $($(#[$ready_doc])*)?
            pub async fn ready(
                &self,
                interest: overlap_runtime::Interest,
            ) -> ::std::io::Result<overlap_runtime::Ready> {
                self.io.ready(interest).await.map(|guard| guard.ready())
            }

            /// Runs `f` (a non-blocking call on this socket: `recv(MSG_OOB)`, a
            /// `getsockopt`, ...) now if the socket is known to be ready in a direction of
            /// `interest`, else fails with `WouldBlock` without calling it. If `f` fails with
            /// `WouldBlock`, the readiness seen is cleared (unless a newer edge arrived), so
            /// the next [`ready`](Self::ready) for it sleeps until the kernel signals again.
            /// It stores no waker: wait with [`ready`](Self::ready), or use
            /// [`async_io`](Self::async_io), which does both. tokio's `try_io`: the way to
            /// clear [`Interest::PRIORITY`] readiness once the urgent byte is read, which no
            /// read call clears.
            ///
            /// [`Interest::PRIORITY`]: overlap_runtime::Interest::PRIORITY
            $($(#[$try_io_doc])*)?
            pub fn try_io<R>(
                &self,
                interest: overlap_runtime::Interest,
                f: impl FnOnce() -> ::std::io::Result<R>,
            ) -> ::std::io::Result<R> {
                self.io.try_io(interest, |_| f())
            }

            /// Waits for readiness in a direction of `interest` and runs `f`, again after
            /// each `WouldBlock` (which clears the readiness seen) or `Interrupted`, until it
            /// returns anything else: tokio's `async_io` (see [`try_io`](Self::try_io)).
            /// Cancel-safe as long as `f` does nothing when it says `WouldBlock`.
            $($(#[$async_io_doc])*)?
            pub async fn async_io<R>(
                &self,
                interest: overlap_runtime::Interest,
                mut f: impl FnMut() -> ::std::io::Result<R>,
            ) -> ::std::io::Result<R> {
                self.io.async_io(interest, |_| f()).await
            }

            #[doc = concat!(
                        "Polls for read readiness: `Ready(Ok(()))` once the socket may be \
                 readable (see [`readable`](Self::readable)), else `Pending` with the waker \
                 of `cx` stored, and woken by the next read edge. Pair it with [`",
                        $try_read, "`](Self::", $try_read, ").\n\n\
                 Unlike tokio's, every waker stored is woken, not only the last one's."
                    )]
            pub fn $poll_read(
                &self,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                self.io.poll_read_ready(cx).map_ok(drop)
            }

            #[doc = concat!(
                        "Polls for write readiness, as [`", stringify!($poll_read),
                        "`](Self::", stringify!($poll_read), ") does for reads. Pair it \
                 with [`", $try_write, "`](Self::", $try_write, ")."
                    )]
            pub fn $poll_write(
                &self,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                self.io.poll_write_ready(cx).map_ok(drop)
            }
        }
    };
}
pub(crate) use impl_readiness;
