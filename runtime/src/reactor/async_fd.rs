//! `AsyncFd`: any pollable fd on the runtime's reactor. Its operation runners (`try_io`,
//! `async_io`) are in `ops.rs`.

mod ops;

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::task::{Context, Poll};

use super::guard::{AsyncFdReadyGuard, AsyncFdReadyMutGuard};
use super::{own_waits, Direction, Interest, IoKey, Reactor, Ready, ReadyEvent, Registered};

/// Associates a pollable file descriptor with the current runtime's reactor.
///
/// `AsyncFd` does no I/O itself: it tells you when the fd *may* be ready. You then try the
/// non-blocking operation; if it fails with `WouldBlock`, clear the readiness (or use
/// [`AsyncFdReadyGuard::try_io`], which does that) and wait again. The fd must already be in
/// non-blocking mode. Sockets, pipes, FIFOs, eventfds, timerfds, signalfds, inotify fds and
/// ttys all work; regular files do not (epoll refuses them with `EPERM`).
///
/// # Contract
/// - **Spurious wakeups:** readiness is a hint. A `readable()` that returns does not promise
///   that the next `read` succeeds; always handle `WouldBlock`.
/// - **Edge-triggered:** readiness is cleared only by you (on `WouldBlock`, or when you know
///   the fd is drained). Forgetting to clear it makes the next wait return at once.
/// - **Waiters:** one task may wait for read readiness while another waits for write
///   readiness. Several tasks (or futures) waiting on the same direction are all woken by
///   its next edge; those that find the readiness taken by another wait again.
///   [`readable`](AsyncFd::readable), [`writable`](AsyncFd::writable) and every other
///   `async fn` built with [`own_waits`](crate::own_waits) (all of overlap's socket and
///   pipe `async fn`s are) keep their waker in an entry of their own, removed when the
///   future drops: any number of them may wait, and a cancelled one is never woken. The
///   poll functions ([`poll_read_ready`](AsyncFd::poll_read_ready), `AsyncRead`) share one
///   slot per direction instead: a waiter there that gave up is woken once, harmlessly, and
///   then forgotten. Up to 1,025 such waiters per fd are kept; beyond that the oldest is
///   set aside and woken at the loop's next event or sleep, to wait again: none is lost,
///   but with that many each event anywhere costs a round of spurious wakes, and past
///   about 5,000 (more than the runtime sets aside) they wake one another without end.
///   Many tasks waiting on one fd should use the `async fn`s.
/// - **Cancellation:** the waits ([`readable`](AsyncFd::readable), [`ready`](AsyncFd::ready),
///   their `_mut` forms, ...) are cancel-safe: dropped before they complete, they consumed
///   no readiness. So is [`async_io`](AsyncFd::async_io): it returns as soon as its
///   operation says anything but `WouldBlock` or `Interrupted`, so in a dropped one every
///   attempt said one of those (and, for a syscall, did nothing).
/// - **Drop:** the fd is removed from epoll, then the inner value is dropped (closing the fd
///   if it owns it). [`AsyncFd::into_inner`] removes it from epoll and hands the value back.
///   Either way, a task still waiting for its readiness (one that shares the `AsyncFd`) is
///   woken, to find it gone. An fd closed first, behind the `AsyncFd`'s back (an
///   `AsyncFd<RawFd>` whose owner closed it), is not named to epoll again: its number may
///   belong to another registration by then, which is left alone (the kernel drops the
///   closed fd's entry with its file).
/// - **Runtime:** it must be created inside a runtime and used on that runtime's thread (it is
///   `!Send`), by that runtime: polled by another runtime on the thread, or outside any, its
///   readiness fails with an `Other` error (the registered loop is not running, so waiting
///   would never end). A wait still pending when its runtime is dropped (a future polled by
///   hand, or by another executor) is woken then, to meet that error, as in tokio. Every
///   readiness that returns `Ready` spends one unit of the task's cooperative budget, so a
///   task that never sees `Pending` still lets others run.
///
/// ```
/// use overlap::AsyncFd;
/// use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
///
/// overlap::block_on(async {
///     // An eventfd, made non-blocking, joins the loop like any socket.
///     // SAFETY: eventfd takes no pointers.
///     let raw = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
///     assert!(raw >= 0);
///     // SAFETY: `raw` was just created and nothing else owns it.
///     let fd = AsyncFd::new(unsafe { OwnedFd::from_raw_fd(raw) }).unwrap();
///     let one = 1u64.to_ne_bytes();
///     // SAFETY: `one` is 8 readable bytes.
///     assert_eq!(unsafe { libc::write(raw, one.as_ptr().cast(), 8) }, 8);
///
///     let mut guard = fd.readable().await.unwrap();
///     let n = guard
///         .try_io(|inner| {
///             let mut buf = [0u8; 8];
///             // SAFETY: `buf` is 8 writable bytes.
///             let n = unsafe { libc::read(inner.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
///             if n < 0 { Err(std::io::Error::last_os_error()) } else { Ok(u64::from_ne_bytes(buf)) }
///         })
///         .expect("was readable")
///         .unwrap();
///     assert_eq!(n, 1);
/// });
/// ```
pub struct AsyncFd<T: AsRawFd> {
    // Field order matters: the registration (epoll_ctl DEL) drops before the inner value
    // (close), so an fd is never closed while still registered. The registration removes
    // the fd it was made with even if the inner value was swapped through `get_mut` (the
    // old fd may still be open, held by the caller); if that fd was closed and its number
    // registered again, the reactor's record of which registration holds each number keeps
    // the newer one in (see `fd_owners.rs`).
    reg: Option<Registration>,
    inner: Option<T>,
}

/// A registered fd: the reactor and the slot key.
struct Registration {
    reactor: Rc<Reactor>,
    key: IoKey,
    fd: RawFd,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.reactor.deregister(self.fd, self.key);
    }
}

impl<T: AsRawFd> AsyncFd<T> {
    /// Registers `inner`'s fd with the current runtime's reactor, for both directions.
    ///
    /// Fails with `ErrorKind::Other` outside a runtime, and with the kernel's error if epoll
    /// refuses the fd (`EPERM` for regular files and directories). `inner` is dropped then
    /// (closing the fd if it owns it); [`try_new`](Self::try_new) gives it back instead.
    pub fn new(inner: T) -> io::Result<AsyncFd<T>> {
        Self::with_interest(inner, Interest::READABLE | Interest::WRITABLE)
    }

    /// Registers `inner`'s fd for the directions of `interest` only: a write-only fd (a
    /// pipe's write end, say) registered with [`Interest::WRITABLE`] makes the loop deliver
    /// no read events for it. Errors and hang-ups are reported whatever the interest
    /// ([`Interest::ERROR`] adds nothing to a registration; [`Interest::PRIORITY`] asks for
    /// `EPOLLPRI`).
    ///
    /// A wait in a direction outside `interest` ends only with an error or a hang-up.
    ///
    /// ```
    /// use overlap::AsyncFd;
    /// use overlap::io::Interest;
    ///
    /// overlap::block_on(async {
    ///     let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    ///     a.set_nonblocking(true)?;
    ///     let fd = AsyncFd::with_interest(a, Interest::WRITABLE)?;
    ///     assert!(fd.writable().await?.ready().is_writable());
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn with_interest(inner: T, interest: Interest) -> io::Result<AsyncFd<T>> {
        Self::try_with_interest(inner, interest).map_err(AsyncFdTryNewError::into_error)
    }

    /// Like [`new`](Self::new), but a failure hands `inner` back with the error, so the fd
    /// can be used another way (a regular file, which epoll refuses, read on the blocking
    /// pool instead).
    ///
    /// ```
    /// use overlap::AsyncFd;
    ///
    /// overlap::block_on(async {
    ///     let file = std::fs::File::open("/proc/self/status")?;
    ///     let (file, err) = AsyncFd::try_new(file).unwrap_err().into_parts();
    ///     assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    ///     assert!(file.metadata()?.is_file(), "still open");
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn try_new(inner: T) -> Result<AsyncFd<T>, AsyncFdTryNewError<T>> {
        Self::try_with_interest(inner, Interest::READABLE | Interest::WRITABLE)
    }

    /// Like [`with_interest`](Self::with_interest), handing `inner` back on failure (see
    /// [`try_new`](Self::try_new)).
    pub fn try_with_interest(
        inner: T,
        interest: Interest,
    ) -> Result<AsyncFd<T>, AsyncFdTryNewError<T>> {
        let fd = inner.as_raw_fd();
        let Some(reactor) = crate::executor::with_current(|core| core.reactor().clone()) else {
            let error = outside_runtime();
            return Err(AsyncFdTryNewError { inner, error });
        };
        match reactor.register(fd, interest) {
            Ok(key) => Ok(AsyncFd {
                reg: Some(Registration { reactor, key, fd }),
                inner: Some(inner),
            }),
            Err(error) => Err(AsyncFdTryNewError { inner, error }),
        }
    }

    /// Declares whether this fd's hang-up may end: a FIFO's read end whose writers all left
    /// can get a new writer. If so, an operation failing with `WouldBlock` (in
    /// [`try_io`](AsyncFdReadyGuard::try_io), or handed to
    /// [`Registered::clear_readiness`]) also forgets a hang-up seen in its direction, so the
    /// next wait sleeps until the fd has news instead of retrying at once. Off by default:
    /// on a socket a hang-up is final, even where `WouldBlock` follows it (a datagram socket
    /// shut down for reading). `overlap::pipe`'s `Receiver` turns it on.
    pub fn set_hangup_may_end(&self, may_end: bool) {
        let reg = self.reg();
        reg.reactor.set_hangup_may_end(reg.key, may_end);
    }

    /// Records that the fd's write side is closed for good (its owner shut it down with
    /// `shutdown(SHUT_WR)`), waking a task waiting to write: its next write fails at once
    /// instead of waiting for an edge the kernel may never send (a Unix stream socket whose
    /// send buffer is full reports neither `EPOLLOUT` nor `EPOLLHUP` after `SHUT_WR`).
    pub fn set_write_closed(&self) {
        let reg = self.reg();
        reg.reactor.set_write_closed(reg.key);
    }

    /// The readiness known now in direction `dir` (empty if none), without waiting or
    /// storing a waker.
    pub fn current_ready(&self, dir: Direction) -> Ready {
        let reg = self.reg();
        reg.reactor
            .current_readiness(reg.key, dir)
            .map_or(Ready::EMPTY, |event| event.ready())
    }

    fn reg(&self) -> &Registration {
        self.reg.as_ref().expect("AsyncFd used after into_inner")
    }

    /// A shared reference to the inner value.
    pub fn get_ref(&self) -> &T {
        self.inner.as_ref().expect("AsyncFd used after into_inner")
    }

    /// A mutable reference to the inner value.
    ///
    /// Replacing it with a value holding another fd does not register that fd: readiness
    /// still comes from the fd registered by [`new`](AsyncFd::new) (which the replaced value
    /// closed, typically). Dropping the `AsyncFd` (or [`into_inner`](AsyncFd::into_inner))
    /// takes the fd it registered out of epoll if that fd is still open (swapped out with
    /// `std::mem::replace` and kept), so it can be registered again; whatever the
    /// replacement, it never touches another registration that reuses the old fd's number.
    pub fn get_mut(&mut self) -> &mut T {
        self.inner.as_mut().expect("AsyncFd used after into_inner")
    }

    /// Removes the fd from the reactor and returns the inner value, still open.
    pub fn into_inner(mut self) -> T {
        drop(self.reg.take());
        self.inner.take().expect("AsyncFd used after into_inner")
    }

    /// Polls the readiness of the directions of `interest`: `Ready` with what is known as
    /// soon as one of them is ready (the others looked at without storing a waker), else
    /// `Pending` with the waker stored for each.
    fn poll_event(&self, cx: &mut Context<'_>, interest: Interest) -> Poll<io::Result<ReadyEvent>> {
        let reg = self.reg();
        // One look at the current runtime: is it this fd's, and may the task go on?
        let here = crate::executor::with_current(|core| {
            Rc::ptr_eq(core.reactor(), &reg.reactor).then(|| crate::coop::spend(core))
        });
        match here.flatten() {
            Some(true) => {}
            Some(false) => {
                // The budget is spent: let the other tasks run.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            None => {
                // Its reactor is not the one running (or none is): waiting would never end.
                return Poll::Ready(Err(io::Error::other(
                    "AsyncFd polled outside the runtime it was registered with; an fd stays \
                     with the runtime that registered it",
                )));
            }
        }
        let mut seen: Option<ReadyEvent> = None;
        for dir in interest.directions() {
            let event = match seen {
                // Ready already: the other direction is only looked at, so that no waker is
                // left behind for a wait that is over.
                Some(_) => reg.reactor.current_readiness(reg.key, dir),
                None => match reg.reactor.poll_ready(reg.key, dir, cx) {
                    Poll::Ready(event) => Some(event),
                    Poll::Pending => None,
                },
            };
            seen = match (seen, event) {
                (Some(first), Some(later)) => Some(first.merge(later)),
                (first, later) => first.or(later),
            };
        }
        match seen {
            Some(event) => Poll::Ready(Ok(event)),
            None => {
                crate::coop::refund();
                Poll::Pending
            }
        }
    }

    fn poll_ready(
        &self,
        cx: &mut Context<'_>,
        interest: Interest,
    ) -> Poll<io::Result<AsyncFdReadyGuard<'_, T>>> {
        self.poll_event(cx, interest)
            .map_ok(|event| AsyncFdReadyGuard::new(self, event))
    }

    /// Polls for read readiness (readable, read-closed, or error).
    ///
    /// On `Pending`, the waker of `cx` is stored and woken by the next read edge, with
    /// those of any other task waiting to read.
    pub fn poll_read_ready(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<AsyncFdReadyGuard<'_, T>>> {
        self.poll_ready(cx, Interest::READABLE)
    }

    /// Polls for write readiness (writable, write-closed, or error).
    pub fn poll_write_ready(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<AsyncFdReadyGuard<'_, T>>> {
        self.poll_ready(cx, Interest::WRITABLE)
    }

    /// Waits until the fd may be readable.
    pub async fn readable(&self) -> io::Result<AsyncFdReadyGuard<'_, T>> {
        own_waits(|cx| self.poll_read_ready(cx)).await
    }

    /// Waits until the fd may be writable.
    pub async fn writable(&self) -> io::Result<AsyncFdReadyGuard<'_, T>> {
        own_waits(|cx| self.poll_write_ready(cx)).await
    }

    /// Waits until the fd may be ready in one of the directions of `interest`; the guard's
    /// [`ready`](AsyncFdReadyGuard::ready) tells which (with the closed states and errors).
    /// Clearing the guard clears all it saw; after an operation in one direction only, use
    /// [`clear_ready_matching`](AsyncFdReadyGuard::clear_ready_matching) so the other
    /// direction's readiness stays.
    ///
    /// [`Interest::ERROR`] waits for an error only (`EPOLLERR`: a TCP reset, an ICMP error
    /// on a connected UDP socket), however readable or writable the fd is meanwhile, and
    /// [`Interest::PRIORITY`] for priority data (`EPOLLPRI`); see [`Interest`]. After
    /// handling either (taking the error with `SO_ERROR` or a failing call, reading the
    /// urgent byte with `MSG_OOB`, re-reading the changed sysfs file), clear the guard, so
    /// the next such wait sleeps until the kernel signals again: a newer edge that arrived
    /// meanwhile is kept, as for reads and writes.
    ///
    /// ```
    /// use overlap::AsyncFd;
    /// use overlap::io::Interest;
    ///
    /// overlap::block_on(async {
    ///     let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    ///     a.set_nonblocking(true)?;
    ///     let fd = AsyncFd::new(a)?;
    ///     // Nothing to read, but room to write.
    ///     let guard = fd.ready(Interest::READABLE | Interest::WRITABLE).await?;
    ///     assert!(guard.ready().is_writable() && !guard.ready().is_readable());
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    ///
    /// An error-only wait on a TCP connection whose peer resets it:
    ///
    /// ```
    /// use std::time::Duration;
    /// use overlap::AsyncFd;
    /// use overlap::io::Interest;
    ///
    /// overlap::block_on(async {
    ///     let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    ///     let peer = overlap::net::TcpStream::connect(listener.local_addr()?).await?;
    ///     let (ours, _) = listener.accept()?;
    ///     ours.set_nonblocking(true)?;
    ///     let fd = AsyncFd::new(ours)?;
    ///     // Writable all along, the socket ends an `ERROR` wait only once it fails:
    ///     // SO_LINGER 0 makes dropping the peer reset the connection.
    ///     peer.set_linger(Some(Duration::ZERO))?;
    ///     drop(peer);
    ///     let mut guard = fd.ready(Interest::ERROR).await?;
    ///     assert!(guard.ready().is_error());
    ///     let err = guard.get_inner().take_error()?.expect("an error is pending");
    ///     assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    ///     guard.clear_ready(); // taken: the next `ERROR` wait sleeps
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub async fn ready(&self, interest: Interest) -> io::Result<AsyncFdReadyGuard<'_, T>> {
        own_waits(|cx| self.poll_ready(cx, interest)).await
    }

    /// Like [`ready`](Self::ready), with a guard that lends the inner value mutably.
    ///
    /// A priority wait for TCP urgent data, cleared once the urgent byte is read:
    ///
    /// ```
    /// use std::io::Read;
    /// use std::os::fd::AsRawFd;
    /// use overlap::AsyncFd;
    /// use overlap::io::Interest;
    ///
    /// overlap::block_on(async {
    ///     let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    ///     let peer = std::net::TcpStream::connect(listener.local_addr()?)?;
    ///     let (ours, _) = listener.accept()?;
    ///     ours.set_nonblocking(true)?;
    ///     let mut fd = AsyncFd::new(ours)?;
    ///     // Urgent data: the byte is sent out of band.
    ///     // SAFETY: the buffer is one readable byte.
    ///     let sent = unsafe { libc::send(peer.as_raw_fd(), b"!".as_ptr().cast(), 1, libc::MSG_OOB) };
    ///     assert_eq!(sent, 1);
    ///     let mut guard = fd.ready_mut(Interest::PRIORITY).await?;
    ///     assert!(guard.ready().is_priority());
    ///     let mut byte = 0u8;
    ///     let fd_num = guard.get_inner().as_raw_fd();
    ///     // SAFETY: `byte` is one writable byte.
    ///     let n = unsafe { libc::recv(fd_num, (&mut byte as *mut u8).cast(), 1, libc::MSG_OOB) };
    ///     assert_eq!((n, byte), (1, b'!'));
    ///     // No read clears priority readiness: clear it, so the next such wait sleeps.
    ///     guard.clear_ready();
    ///     // The urgent byte is not in the plain stream.
    ///     let plain = guard.get_inner_mut().read(&mut [0u8; 1]);
    ///     assert_eq!(plain.unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub async fn ready_mut(
        &mut self,
        interest: Interest,
    ) -> io::Result<AsyncFdReadyMutGuard<'_, T>> {
        let event = own_waits(|cx| self.poll_event(cx, interest)).await?;
        Ok(AsyncFdReadyMutGuard::new(self, event))
    }

    /// Like [`readable`](Self::readable), with a guard that lends the inner value mutably
    /// (for an inner type whose I/O takes `&mut self`).
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use overlap::AsyncFd;
    ///
    /// overlap::block_on(async {
    ///     let (a, mut b) = std::os::unix::net::UnixStream::pair()?;
    ///     a.set_nonblocking(true)?;
    ///     let mut fd = AsyncFd::new(a)?;
    ///     b.write_all(b"hi")?;
    ///     let mut guard = fd.readable_mut().await?;
    ///     let mut buf = [0u8; 8];
    ///     let n = guard.try_io(|sock| sock.read(&mut buf)).expect("readable")?;
    ///     assert_eq!(&buf[..n], b"hi");
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub async fn readable_mut(&mut self) -> io::Result<AsyncFdReadyMutGuard<'_, T>> {
        self.ready_mut(Interest::READABLE).await
    }

    /// Like [`writable`](Self::writable), with a guard that lends the inner value mutably.
    pub async fn writable_mut(&mut self) -> io::Result<AsyncFdReadyMutGuard<'_, T>> {
        self.ready_mut(Interest::WRITABLE).await
    }

    /// Forgets the readiness of `event` (closed states kept), unless a newer edge arrived.
    pub(crate) fn forget(&self, event: ReadyEvent) {
        let reg = self.reg();
        reg.reactor.clear_readiness(reg.key, event);
    }

    /// Forgets the readiness of `event` after its operation failed with `WouldBlock`.
    pub(crate) fn forget_after_would_block(&self, event: ReadyEvent) {
        let reg = self.reg();
        reg.reactor.clear_after_would_block(reg.key, event);
    }
}

impl<T: AsRawFd> Registered for AsyncFd<T> {
    fn poll_readiness(&self, cx: &mut Context<'_>, dir: Direction) -> Poll<io::Result<ReadyEvent>> {
        self.poll_event(cx, dir.into())
    }

    fn clear_readiness(&self, event: ReadyEvent) {
        self.forget_after_would_block(event);
    }
}

impl<T: AsRawFd> AsRawFd for AsyncFd<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.reg().fd
    }
}

impl<T: AsRawFd + fmt::Debug> fmt::Debug for AsyncFd<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncFd")
            .field("inner", &self.inner)
            .finish()
    }
}

/// The error of [`AsyncFd::try_new`] and [`AsyncFd::try_with_interest`]: why the fd could not
/// be registered, with the value that holds it.
pub struct AsyncFdTryNewError<T> {
    inner: T,
    error: io::Error,
}

impl<T> AsyncFdTryNewError<T> {
    /// The value that was to be registered, and the error.
    pub fn into_parts(self) -> (T, io::Error) {
        (self.inner, self.error)
    }

    fn into_error(self) -> io::Error {
        self.error
    }
}

impl<T> From<AsyncFdTryNewError<T>> for io::Error {
    fn from(e: AsyncFdTryNewError<T>) -> io::Error {
        e.into_error()
    }
}

impl<T> fmt::Debug for AsyncFdTryNewError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncFdTryNewError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Display for AsyncFdTryNewError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl<T> std::error::Error for AsyncFdTryNewError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// The error of an I/O object made where no runtime is current on this thread.
fn outside_runtime() -> io::Error {
    // A blocking job (or `Handle::block_on`) sees its runtime's handle, as tokio's do, yet
    // the runtime's reactor is its own thread's: say so, and what works from there.
    if crate::Handle::try_current().is_some() {
        return io::Error::other(
            "an I/O object (socket, pipe, child process, AsyncFd) was created on a \
             blocking-pool thread (or in `Handle::block_on`), off its runtime's thread, whose \
             reactor it must join: create it in a task there, with \
             `overlap::Handle::current().spawn_with(..)`",
        );
    }
    io::Error::other(
        "an I/O object (socket, pipe, AsyncFd) was created outside an overlap runtime: create \
         it inside `overlap::block_on`, `Runtime::block_on` or `#[overlap::main]`",
    )
}

/// Fails as making an I/O object would if no runtime is current on this thread: for code
/// that must know before a step it cannot take back (`process::Command::spawn` forks and
/// runs the program) whether the fds it will make can be registered.
#[doc(hidden)]
pub fn check_io_runtime() -> io::Result<()> {
    crate::executor::with_current(|_| ()).ok_or_else(outside_runtime)
}
