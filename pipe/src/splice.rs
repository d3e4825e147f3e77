//! Zero-copy moves between pipes and sockets with `splice(2)`.
//!
//! `splice` moves bytes between two fds inside the kernel, one of which must be a pipe: a
//! proxy can forward a socket's data without copying it into user memory and back. Every
//! function here waits on the reactor like any other overlap I/O: it never blocks the loop
//! and never returns `WouldBlock` or `Interrupted`.
//!
//! - [`Sender::splice_from`] fills a pipe from a socket (or another pipe);
//! - [`Receiver::splice_to`] empties a pipe into a socket (or another pipe);
//! - [`splice_copy`] forwards everything from one fd to another until end of file, through a
//!   private pipe: the zero-copy twin of [`overlap::io::copy`](overlap_runtime::io::copy).
//! - [`splice_bidirectional`] runs one `splice_copy` each way and passes half-closes on.
//!
//! Either side may be anything that implements [`Registered`]: overlap's TCP and Unix
//! streams (and their split halves), pipe ends, or an [`AsyncFd`](overlap_runtime::AsyncFd)
//! around your own fd. Regular files cannot be registered (epoll refuses them); use
//! `overlap::fs` for them. If the kernel cannot splice an fd (an eventfd, say), the call fails
//! with `InvalidInput`. A datagram socket (UDP, Unix datagram) does splice (the datagrams'
//! bytes, their boundaries lost), but never reaches end of file: an empty datagram moves
//! nothing and the copy goes on, so a `splice_copy` from one only ends with an error (such as
//! `NotConnected` once it is shut down for reading and drained) or when dropped. As a
//! destination, a datagram socket never connected has nowhere to send: `NotConnected`.
//!
//! Writing into a socket whose peer is gone fails with `BrokenPipe` or `ConnectionReset`.
//! `splice` has no `MSG_NOSIGNAL`, so the kernel also raises `SIGPIPE`; Rust programs ignore
//! that signal by default, but a program that restored its default action would be killed.

mod bidirectional;

use std::cell::Cell;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::task::{ready, Context, Poll};

use overlap_runtime::{own_waits, Direction, Registered};

use crate::{sys, Receiver, Sender};

pub use bidirectional::splice_bidirectional;

/// How much [`splice_copy`] asks for per call: the default capacity of a Linux pipe. A
/// bigger pipe would need `F_SETPIPE_SZ`, which counts against a per-user limit.
const COPY_CHUNK: usize = 64 * 1024;

impl Sender {
    /// Moves up to `len` bytes from `from` into this pipe without copying them through user
    /// memory, waiting until `from` has data and the pipe has room. Returns how many bytes
    /// moved; 0 means `from` is at end of file, or `len` was 0, or (from a datagram socket)
    /// the datagram was empty. Cancel-safe: it returns as soon as one `splice` moves bytes,
    /// so a dropped one moved none.
    ///
    /// ```
    /// use overlap::io::{AsyncReadExt, AsyncWriteExt};
    /// use overlap::net::UnixStream;
    ///
    /// overlap::block_on(async {
    ///     let (mut a, b) = UnixStream::pair()?;
    ///     let (mut tx, mut rx) = overlap::pipe::pipe()?;
    ///     a.write_all(b"socket to pipe").await?;
    ///     let n = tx.splice_from(&b, 1024).await?;
    ///     let mut got = vec![0; n];
    ///     rx.read_exact(&mut got).await?;
    ///     assert_eq!(got, b"socket to pipe");
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub async fn splice_from<S: Registered + ?Sized>(
        &mut self,
        from: &S,
        len: usize,
    ) -> io::Result<usize> {
        if len == 0 {
            return Ok(0);
        }
        let this = &*self;
        own_waits(|cx| poll_splice(cx, from, this, len)).await
    }
}

impl Receiver {
    /// Moves up to `len` bytes out of this pipe into `to` without copying them through user
    /// memory, waiting until the pipe has data and `to` has room. Returns how many bytes
    /// moved; 0 means every write end is closed and the pipe is drained (or `len` was 0). A
    /// FIFO no writer has opened yet is waited on, as a read waits, whatever state `to` is in.
    /// Cancel-safe, as [`splice_from`](Sender::splice_from) is.
    ///
    /// ```
    /// use overlap::io::{AsyncReadExt, AsyncWriteExt};
    /// use overlap::net::UnixStream;
    ///
    /// overlap::block_on(async {
    ///     let (a, mut b) = UnixStream::pair()?;
    ///     let (mut tx, mut rx) = overlap::pipe::pipe()?;
    ///     tx.write_all(b"pipe to socket").await?;
    ///     let n = rx.splice_to(&a, 1024).await?;
    ///     let mut got = vec![0; n];
    ///     b.read_exact(&mut got).await?;
    ///     assert_eq!(got, b"pipe to socket");
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub async fn splice_to<D: Registered + ?Sized>(
        &mut self,
        to: &D,
        len: usize,
    ) -> io::Result<usize> {
        if len == 0 {
            return Ok(0);
        }
        let this = &*self;
        own_waits(|cx| poll_splice(cx, this, to, len)).await
    }
}

/// One `splice` from `src` to `dst`, for fds the caller does not own the pipe of.
///
/// When `splice` says `EAGAIN`, either side may be the one not ready, and waiting on the
/// wrong one could sleep forever (a full pipe sends no read edge). So a zero-timeout `poll`
/// asks the kernel which side it was, and only that side's readiness is cleared.
///
/// A TCP source that ever had urgent data ([`Ready::PRIORITY`](overlap_runtime::Ready))
/// may be stuck at the urgent mark, which `splice` cannot pass: then a `recv` steps over it
/// (see `sys::step_over_urgent`).
fn poll_splice<S, D>(cx: &mut Context<'_>, src: &S, dst: &D, len: usize) -> Poll<io::Result<usize>>
where
    S: Registered + ?Sized,
    D: Registered + ?Sized,
{
    // A destination that can take nothing any more (a pipe whose readers are gone, a reset
    // socket) is tried once without waiting for the source, so its error comes at once when
    // the kernel checks the destination first (a socket source); from an empty pipe it says
    // `EAGAIN` first, and the error comes with the source's next data or end of file.
    let mut probe_dead_end = true;
    // Sticky error bits can keep a side "ready" while the kernel says `EAGAIN`; after a few
    // rounds, give the other tasks a turn instead of looping here.
    for _ in 0..4 {
        let writable = ready!(dst.poll_readiness(cx, Direction::Write))?;
        let dead = writable.ready().is_error() || writable.ready().is_write_closed();
        let readable = if dead && probe_dead_end {
            probe_dead_end = false;
            None
        } else {
            match src.poll_readiness(cx, Direction::Read) {
                Poll::Ready(readable) => Some(readable?),
                Poll::Pending => {
                    // The destination's readiness spent a unit of the task's budget for a
                    // splice that now waits: give it back, as a wait costs nothing.
                    overlap_runtime::coop_refund();
                    return Poll::Pending;
                }
            }
        };
        let urgent_seen = readable.is_some_and(|r| r.ready().is_priority());
        match sys::splice(src.as_raw_fd(), dst.as_raw_fd(), len) {
            // The probe's 0 comes from a source pipe with no writer, as for a FIFO no writer
            // has opened yet, which a read waits on: wait for the source to say end of file.
            Ok(0) if readable.is_none() => continue,
            // End of file, or the peer's FIN behind an urgent mark.
            Ok(0) if urgent_seen => {
                let stepped = sys::step_over_urgent(src.as_raw_fd(), dst.as_raw_fd())?;
                return Poll::Ready(Ok(stepped.unwrap_or(0)));
            }
            Ok(n) => return Poll::Ready(Ok(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let Some(readable) = readable else {
                    // The probe found no error to report: wait for the source as usual.
                    continue;
                };
                let (src_ready, dst_ready) = sys::ready_now(src.as_raw_fd(), dst.as_raw_fd())?;
                if src_ready && dst_ready && urgent_seen {
                    let stepped = sys::step_over_urgent(src.as_raw_fd(), dst.as_raw_fd())?;
                    if let Some(n) = stepped {
                        return Poll::Ready(Ok(n));
                    }
                }
                // The destination had room, so the source said `EAGAIN`: a datagram socket
                // shut down for reading and drained (it still polls readable).
                if src_ready
                    && dst_ready
                    && readable.ready().is_read_closed()
                    && sys::is_datagram(src.as_raw_fd())
                {
                    return Poll::Ready(Err(shut_for_reading()));
                }
                if !src_ready {
                    src.clear_readiness(readable);
                }
                if !dst_ready {
                    dst.clear_readiness(writable);
                }
                if src_ready && dst_ready {
                    // The state changed between the two calls: try again on the next turn.
                    break;
                }
            }
            Err(e) => return Poll::Ready(Err(explain(e))),
        }
    }
    cx.waker().wake_by_ref();
    Poll::Pending
}

/// Forwards everything from `from` to `to` until `from` reaches end of file, through a
/// private pipe, so the bytes never enter user memory. Returns how many bytes moved.
///
/// `to` is not shut down at the end: call `shutdown(Shutdown::Write)` (or `close`) on it if
/// its peer should see end of file. `from` and `to` may not be ends of one pipe or FIFO
/// (the read end and the write end of the same pipe): that fails with `InvalidInput`, as a
/// `splice` of a pipe into itself does, instead of moving the same bytes round for ever.
/// A `to` that can never be written (a pipe's read end, a listening socket), or that the
/// kernel cannot splice into (an eventfd), fails with `InvalidInput` too, before any byte is
/// taken from `from`. A `to` that is dead already (a pipe whose readers are all gone, a
/// stream socket reset or shut down for writing, a Unix stream whose peer closed) fails with
/// the error a write would give (`BrokenPipe`, `ConnectionReset`), also before any byte is
/// taken; and so does one found dead when the copy, after waiting for `from`, is about to
/// take more, unless `from` is at end of file then: with nothing to lose, the copy ends with
/// its count. (The kernel is asked with a `poll`, at the start and, after a wait, when the
/// reactor saw `to` hang up or fail: a stream socket hung up, a pipe in error; then a `send`
/// of 0 bytes gives a socket's error, taking it as a write would.) A datagram
/// socket or another kind of fd is not asked: its failure comes with the first write, as
/// below.
///
/// # When it pays off
/// For bulk data: a 512 MiB transfer between loopback sockets takes about a third of the CPU
/// time of `io::copy` (see `splice_bench`). For small request/response messages it costs one
/// syscall more per message than a buffered copy: a `splice` that moved less than asked does
/// not prove the source drained (the pipe may have run out of slots), so the next one must
/// look, and finds `EAGAIN`. (The look at the destination after a wait costs a syscall only
/// when the reactor saw it hang up or fail.)
///
/// # Cancellation
/// Dropping the future stops the copy. Bytes already taken from `from` but not yet written
/// to `to` (at most 64 KiB, held in the private pipe) are lost, as with the buffer of
/// [`overlap::io::copy`](overlap_runtime::io::copy). A destination that fails while the
/// private pipe holds bytes (its reader gone, a reset peer) ends the copy the same way: those
/// bytes are lost, the count of those already written is not reported, and what the copy had
/// not taken is still in `from`.
///
/// ```
/// use overlap::io::{AsyncReadExt, AsyncWriteExt};
/// use overlap::net::{TcpListener, TcpStream};
/// use std::net::Shutdown;
///
/// overlap::block_on(async {
///     // client -> proxy_in ... proxy_out -> server: the proxy forwards without copying.
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let mut client = TcpStream::connect(listener.local_addr()?).await?;
///     let (proxy_in, _) = listener.accept().await?;
///     let proxy_out = TcpStream::connect(listener.local_addr()?).await?;
///     let (mut server, _) = listener.accept().await?;
///
///     client.write_all(b"forwarded in the kernel").await?;
///     client.shutdown(Shutdown::Write)?;
///     let n = overlap::pipe::splice_copy(&proxy_in, &proxy_out).await?;
///     proxy_out.shutdown(Shutdown::Write)?;
///
///     let mut got = String::new();
///     server.read_to_string(&mut got).await?;
///     assert_eq!((n, got.as_str()), (23, "forwarded in the kernel"));
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub async fn splice_copy<S, D>(from: &S, to: &D) -> io::Result<u64>
where
    S: Registered + ?Sized,
    D: Registered + ?Sized,
{
    copy_staged(from, to, &Cell::new(Stage::Reading)).await
}

/// Which side a copy waits on: what [`splice_bidirectional`] reads to know which side
/// nothing is watching.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Filling the private pipe from the source.
    Reading,
    /// Draining the private pipe into the destination.
    Writing,
    /// Finished: the source reached end of file.
    Done,
}

/// [`splice_copy`], keeping `stage` up to date.
async fn copy_staged<S, D>(from: &S, to: &D, stage: &Cell<Stage>) -> io::Result<u64>
where
    S: Registered + ?Sized,
    D: Registered + ?Sized,
{
    // The kernel refuses to splice a pipe into itself; through the private pipe it would
    // work, and move the same bytes round for ever, never reaching end of file.
    if sys::same_pipe(from.as_raw_fd(), to.as_raw_fd()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "splice: the source and destination are the same pipe",
        ));
    }
    // A destination that refuses writes outright (a pipe's read end, a listening socket)
    // fails the copy before a byte is taken from the source, which would be lost in the
    // private pipe. A `Pending` here leaves no waiter behind: its entry goes with the
    // `own_waits` future.
    own_waits(|cx| match to.poll_readiness(cx, Direction::Write) {
        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        _ => Poll::Ready(Ok(())),
    })
    .await?;
    // So does a datagram socket with no peer, whose refusal (`EDESTADDRREQ`) would come only
    // once the bytes were in the private pipe.
    if sys::unconnected_datagram_socket(to.as_raw_fd()) {
        return Err(explain(io::Error::from_raw_os_error(libc::EDESTADDRREQ)));
    }
    // So does a destination that is dead already (a pipe whose readers are gone, a reset
    // socket): its readiness is no `Err`, only an error (which a socket's error queue raises
    // too) or a hang-up, and may be stale, so ask the kernel, without writing a byte.
    if let Some(e) = dead_destination(from, to)? {
        return Err(e);
    }
    // Not registered with the reactor: its fill level is always known, so it never needs
    // waiting on. Empty, it always has room; holding bytes, it always has data.
    let (pipe_out, pipe_in) = sys::pipe()?;
    // A destination the kernel cannot splice into at all (an eventfd, a timerfd: no
    // `splice_write`) takes writes, so it passed the check above; a splice out of the still
    // empty private pipe finds it out (`EINVAL`) before a byte leaves the source. Into
    // anything else that splice says `EAGAIN` (the pipe is empty) and does nothing.
    if let Err(e) = sys::splice(pipe_out.as_raw_fd(), to.as_raw_fd(), 1) {
        if e.raw_os_error() == Some(libc::EINVAL) {
            return Err(explain(e));
        }
    }
    let mut total = 0u64;
    loop {
        stage.set(Stage::Reading);
        let mut waited = false;
        let n = own_waits(|cx| poll_fill(cx, from, to, &pipe_in, &mut waited)).await?;
        if n == 0 {
            stage.set(Stage::Done);
            return Ok(total);
        }
        stage.set(Stage::Writing);
        let mut left = n;
        while left > 0 {
            left -= own_waits(|cx| poll_drain(cx, &pipe_out, to, left)).await?;
        }
        total += n as u64;
    }
}

/// Moves bytes from `from` into the empty private pipe: `EAGAIN` can only mean `from` has
/// no data, or, for a TCP socket that had urgent data, that it is stuck at the urgent mark
/// (as is a 0 with data queued behind the mark): a `recv` then steps over it.
///
/// `to` may have died while this waited for `from` (`waited` says it did): then, if the
/// reactor saw it hang up or fail, the kernel is asked first, so bytes it could never take
/// stay in `from`. Not on every chunk, and with no syscall unless the reactor saw trouble.
fn poll_fill<S, D>(
    cx: &mut Context<'_>,
    from: &S,
    to: &D,
    pipe_in: &OwnedFd,
    waited: &mut bool,
) -> Poll<io::Result<usize>>
where
    S: Registered + ?Sized,
    D: Registered + ?Sized,
{
    let (src, pipe) = (from.as_raw_fd(), pipe_in.as_raw_fd());
    loop {
        let Poll::Ready(event) = from.poll_readiness(cx, Direction::Read) else {
            *waited = true;
            return Poll::Pending;
        };
        let event = event?;
        if std::mem::take(waited) && looks_dead(cx, to) {
            if let Some(e) = dead_destination(from, to)? {
                return Poll::Ready(Err(e));
            }
        }
        let urgent_seen = event.ready().is_priority();
        match sys::splice(src, pipe, COPY_CHUNK) {
            Ok(0) if urgent_seen => {
                return Poll::Ready(sys::step_over_urgent(src, pipe).map(|s| s.unwrap_or(0)));
            }
            // An empty datagram, not end of file (checked only here: a 0 is rare): it was
            // consumed, so look at the next one.
            Ok(0) if sys::is_datagram(src) => {}
            Ok(n) => return Poll::Ready(Ok(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if urgent_seen {
                    if let Some(n) = sys::step_over_urgent(src, pipe)? {
                        return Poll::Ready(Ok(n));
                    }
                }
                if event.ready().is_read_closed() && sys::is_datagram(src) {
                    return Poll::Ready(Err(shut_for_reading()));
                }
                from.clear_readiness(event);
            }
            Err(e) => return Poll::Ready(Err(explain(e))),
        }
    }
}

/// Whether the reactor has seen `to` hang up or fail (or cannot say): only then is the
/// kernel asked (see [`dead_destination`]), so a copy of small messages, which waits for
/// `from` before each, pays no syscall for the look. A `to` that is not writable now gets
/// this task's waker too, which may wake it for nothing later (a spurious wakeup).
fn looks_dead<D: Registered + ?Sized>(cx: &mut Context<'_>, to: &D) -> bool {
    match to.poll_readiness(cx, Direction::Write) {
        Poll::Ready(Ok(event)) => event.ready().is_error() || event.ready().is_write_closed(),
        Poll::Ready(Err(_)) => true,
        Poll::Pending => false,
    }
}

/// The error a write into `to` would fail with now, if `to` is dead (see
/// `sys::dead_write_end`) and `from` holds or may still get bytes it could not take. A `from`
/// at end of file has nothing to lose: the copy ends as it would have, with its count, and
/// `to`'s pending error (a reset) is left for whoever uses `to` next.
fn dead_destination<S, D>(from: &S, to: &D) -> io::Result<Option<io::Error>>
where
    S: Registered + ?Sized,
    D: Registered + ?Sized,
{
    if !sys::dead_write_end(to.as_raw_fd())? || sys::at_end_of_file(from.as_raw_fd()) {
        return Ok(None);
    }
    Ok(Some(explain(sys::write_error(to.as_raw_fd()))))
}

/// Moves `left` bytes held in the private pipe into `to`: `EAGAIN` can only mean `to` is
/// full.
fn poll_drain<D: Registered + ?Sized>(
    cx: &mut Context<'_>,
    pipe_out: &OwnedFd,
    to: &D,
    left: usize,
) -> Poll<io::Result<usize>> {
    poll_one_side(cx, to, Direction::Write, || {
        sys::splice(pipe_out.as_raw_fd(), to.as_raw_fd(), left)
    })
    .map(|res| match res {
        // The pipe holds `left` bytes, so 0 cannot be end of file: the kernel took nothing.
        Ok(0) => Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "splice wrote no bytes to the destination",
        )),
        other => other,
    })
}

/// Waits on `fd` in `dir` and runs `op` until it does not say `WouldBlock`.
fn poll_one_side<F: Registered + ?Sized>(
    cx: &mut Context<'_>,
    fd: &F,
    dir: Direction,
    mut op: impl FnMut() -> io::Result<usize>,
) -> Poll<io::Result<usize>> {
    loop {
        let event = ready!(fd.poll_readiness(cx, dir))?;
        match op() {
            Ok(n) => return Poll::Ready(Ok(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => fd.clear_readiness(event),
            Err(e) => return Poll::Ready(Err(explain(e))),
        }
    }
}

/// A datagram socket shut down for reading says `EAGAIN` once its queue is empty, while
/// epoll keeps reporting the hang-up for ever: waiting would spin, so this ends the call
/// (the same error overlap's sockets give for a receive there).
fn shut_for_reading() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the socket is shut down for reading and nothing is queued",
    )
}

/// `EINVAL` from `splice` on fds that passed our type checks means the kernel cannot splice
/// one of them; say so instead of a bare "Invalid argument". `EDESTADDRREQ` (a datagram
/// destination never connected), of no `ErrorKind` a caller can match, is `NotConnected`,
/// what `UdpSocket::send` says there.
fn explain(e: io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(libc::EINVAL) => io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("splice: the kernel cannot splice this kind of fd ({e})"),
        ),
        Some(libc::EDESTADDRREQ) => io::Error::new(
            io::ErrorKind::NotConnected,
            "splice: the destination socket is not connected",
        ),
        _ => e,
    }
}
