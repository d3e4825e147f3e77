//! [`splice_bidirectional`]: a [`splice_copy`] each way, passing half-closes on, and
//! watching for an error each side that neither copy waits on.

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::{pin, Pin};
use std::task::{ready, Context, Poll};

use overlap_runtime::{own_waits, Direction, ReadyEvent, Registered};

#[cfg(doc)]
use super::splice_copy;
use super::{copy_staged, Stage};
use crate::sys;

/// Forwards both ways between `a` and `b` until each direction reaches end of file, each
/// through its own private pipe (see [`splice_copy`]): the zero-copy core of a TCP proxy.
/// When one side's data ends, the other side's write half is shut down (`shutdown(SHUT_WR)`,
/// for sockets; other fds are left alone), so end of file travels on. Returns the bytes moved
/// `(a to b, b to a)`.
///
/// Both directions run in the calling task, taking turns to go first, so a side that is
/// always readable cannot starve the other way. An error in either ends both and is
/// returned; dropping the future stops both (see [`splice_copy`] on cancellation).
///
/// # A side that fails while nothing waits on it
/// An error on either side ends the call even when neither direction is reading or writing
/// that side just then: when a client resets its connection (`ECONNRESET`) while its bytes
/// wait for an upstream that stopped reading, and the upstream has nothing to answer, or
/// the same the other way round. Each side nothing waits on is watched for an error only
/// ([`Direction::Error`](overlap_runtime::Direction::Error): `EPOLLERR`, never its
/// readiness), and the error is taken from it (`SO_ERROR`; `BrokenPipe` for a pipe whose
/// other end is closed) and returned, so both connections can be closed at once instead
/// of being held until the stalled side moves. Bytes the failed side sent that are still
/// on their way (in the private pipe, or unread) are dropped then, as on any error: the
/// peer that reset its connection gave up on them. A side that a direction reads or writes
/// meets its error in that direction's own call, after the data queued before it. A peer
/// that closes without an error (a graceful `close` after its last bytes) is not noticed
/// this way: to the other side's stall it looks like a half-close, which is not an end.
///
/// A client that sent all it had and shut down its write side, then resets its connection
/// while the server is silent (so the proxy only reads the server):
///
/// ```
/// use std::time::Duration;
/// use overlap::io::{AsyncReadExt, AsyncWriteExt};
/// use overlap::net::{TcpListener, TcpStream};
///
/// overlap::block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let addr = listener.local_addr()?;
///     let mut client = TcpStream::connect(addr).await?;
///     let (proxy_a, _) = listener.accept().await?;
///     let proxy_b = TcpStream::connect(addr).await?;
///     let (mut server, _) = listener.accept().await?;
///     let proxy = overlap::spawn(async move {
///         overlap::pipe::splice_bidirectional(&proxy_a, &proxy_b).await
///     });
///     client.write_all(b"ping").await?;
///     client.close().await?;
///     let mut got = Vec::new();
///     server.read_to_end(&mut got).await?; // the half-close came through
///     assert_eq!(got, b"ping");
///     // SO_LINGER 0: dropping the client resets its connection.
///     client.set_linger(Some(Duration::ZERO))?;
///     drop(client);
///     // The proxy, which reads nothing from the client now, still ends with the error:
///     // `BrokenPipe`, the kernel's `EPIPE` for a reset after the peer's own half-close.
///     let err = proxy.await.unwrap().unwrap_err();
///     assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
///
/// ```
/// use overlap::io::{AsyncReadExt, AsyncWriteExt};
/// use overlap::net::{TcpListener, TcpStream};
///
/// overlap::block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let addr = listener.local_addr()?;
///     // client <-> (proxy_a | proxy_b) <-> server
///     let mut client = TcpStream::connect(addr).await?;
///     let (proxy_a, _) = listener.accept().await?;
///     let proxy_b = TcpStream::connect(addr).await?;
///     let (mut server, _) = listener.accept().await?;
///     let proxy = overlap::spawn(async move {
///         overlap::pipe::splice_bidirectional(&proxy_a, &proxy_b).await
///     });
///     client.write_all(b"ping").await?;
///     client.close().await?; // shuts the write side
///     let mut got = [0u8; 4];
///     server.read_exact(&mut got).await?;
///     server.write_all(b"pong").await?;
///     server.close().await?;
///     let mut back = Vec::new();
///     client.read_to_end(&mut back).await?;
///     assert_eq!((&got, back.as_slice()), (b"ping", &b"pong"[..]));
///     assert_eq!(proxy.await.unwrap()?, (4, 4));
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub async fn splice_bidirectional<A, B>(a: &A, b: &B) -> io::Result<(u64, u64)>
where
    A: Registered + ?Sized,
    B: Registered + ?Sized,
{
    let (a_stage, b_stage) = (Cell::new(Stage::Reading), Cell::new(Stage::Reading));
    let a_to_b = async {
        let n = copy_staged(a, b, &a_stage).await?;
        sys::shutdown_write(b.as_raw_fd())?;
        io::Result::Ok(n)
    };
    let b_to_a = async {
        let n = copy_staged(b, a, &b_stage).await?;
        sys::shutdown_write(a.as_raw_fd())?;
        io::Result::Ok(n)
    };
    let (mut a_to_b, mut b_to_a) = (pin!(a_to_b), pin!(b_to_a));
    // Owned waits: each keeps one entry in its side's waiter list, removed when this ends.
    let mut a_failed = own_waits(|cx| a.poll_readiness(cx, Direction::Error));
    let mut b_failed = own_waits(|cx| b.poll_readiness(cx, Direction::Error));
    let (mut there, mut back) = (None, None);
    // Which direction goes first alternates from poll to poll: a side that is always
    // readable may spend the task's whole budget, and must not starve the other way.
    let mut b_first = false;
    poll_fn(|cx| {
        b_first = !b_first;
        for b_turn in [b_first, !b_first] {
            if b_turn && back.is_none() {
                if let Poll::Ready(n) = b_to_a.as_mut().poll(cx) {
                    back = Some(n?);
                }
            } else if !b_turn && there.is_none() {
                if let Poll::Ready(n) = a_to_b.as_mut().poll(cx) {
                    there = Some(n?);
                }
            }
        }
        if let (Some(there), Some(back)) = (there, back) {
            return Poll::Ready(Ok((there, back)));
        }
        // A side no direction reads (its copy writes, or is done) and none writes (the
        // other copy reads, or is done) would fail unseen: watch it for an error.
        let (a_seen, b_seen) = (a_stage.get(), b_stage.get());
        if a_seen != Stage::Reading && b_seen != Stage::Writing {
            if let Poll::Ready(err) = poll_failed(cx, a, &mut a_failed) {
                return Poll::Ready(Err(err));
            }
        }
        if b_seen != Stage::Reading && a_seen != Stage::Writing {
            if let Poll::Ready(err) = poll_failed(cx, b, &mut b_failed) {
                return Poll::Ready(Err(err));
            }
        }
        Poll::Pending
    })
    .await
}

/// Polls `wait`, an error-only wait on `fd`: `Ready` with the error once one is pending
/// (taken from the fd), `Pending` until then. An error someone else took first (the slot's
/// bit outlived it) is forgotten, and the wait goes on.
fn poll_failed<F, W>(cx: &mut Context<'_>, fd: &F, wait: &mut W) -> Poll<io::Error>
where
    F: Registered + ?Sized,
    W: Future<Output = io::Result<ReadyEvent>> + Unpin,
{
    // Twice at most: a cleared bit comes back only with a new edge, which only the loop's
    // next turn can bring.
    for _ in 0..2 {
        let event = match ready!(Pin::new(&mut *wait).poll(cx)) {
            Ok(event) => event,
            Err(e) => return Poll::Ready(e),
        };
        if !event.ready().is_error() {
            // Not an error edge (cannot happen while the fd is borrowed here): wait on.
            return Poll::Pending;
        }
        match sys::take_error(fd.as_raw_fd()) {
            Ok(Some(err)) => return Poll::Ready(err),
            Err(e) => return Poll::Ready(e),
            // Reading `SO_ERROR` proved no error pending: forget the stale bit.
            Ok(None) => fd.clear_readiness(event),
        }
    }
    Poll::Pending
}
