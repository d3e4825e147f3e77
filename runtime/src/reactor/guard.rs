//! The guards `AsyncFd`'s readiness waits return: proof of readiness, and the way to forget
//! it once an operation says `WouldBlock`.

use std::fmt;
use std::io;
use std::os::fd::AsRawFd;

use super::{AsyncFd, Ready, ReadyEvent};

/// Proof that an [`AsyncFd`] was ready, returned by `readable`/`writable`/`ready`.
///
/// Dropping the guard keeps the readiness; call [`clear_ready`](Self::clear_ready) once the
/// fd reports `WouldBlock` (or you know it is drained), or use [`try_io`](Self::try_io).
///
/// So a retry loop in the style of async-io's `Async::readable` (try the operation, and on
/// `WouldBlock` `fd.readable().await?;` and try again) would spin: the dropped guard keeps
/// the readiness, and each wait returns at once. The guard is `#[must_use]`, as tokio's is,
/// so that loop draws a warning (an error here):
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// # use std::io::Read;
/// # async fn read(fd: &overlap::AsyncFd<std::os::unix::net::UnixStream>) -> std::io::Result<usize> {
/// let mut buf = [0u8; 8];
/// loop {
///     match (&*fd.get_ref()).read(&mut buf) {
///         Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
///             fd.readable().await?; // spins: should be `.clear_ready()`, or use `try_io`
///         }
///         res => return res,
///     }
/// }
/// # }
/// ```
#[must_use = "dropping the guard keeps the readiness, so the next wait returns at once: call \
              `clear_ready` after `WouldBlock`, or use `try_io`"]
pub struct AsyncFdReadyGuard<'a, T: AsRawFd> {
    fd: &'a AsyncFd<T>,
    event: Option<ReadyEvent>,
}

/// Like [`AsyncFdReadyGuard`], holding the [`AsyncFd`] mutably: returned by
/// [`readable_mut`](AsyncFd::readable_mut), [`writable_mut`](AsyncFd::writable_mut) and
/// [`ready_mut`](AsyncFd::ready_mut), for inner types whose I/O takes `&mut self`.
#[must_use = "dropping the guard keeps the readiness, so the next wait returns at once: call \
              `clear_ready` after `WouldBlock`, or use `try_io`"]
pub struct AsyncFdReadyMutGuard<'a, T: AsRawFd> {
    fd: &'a mut AsyncFd<T>,
    event: Option<ReadyEvent>,
}

/// Returned by [`AsyncFdReadyGuard::try_io`] (and the mutable guard's) when the operation
/// would block; the readiness has been cleared, so wait again.
#[derive(Debug)]
pub struct TryIoError(());

impl<'a, T: AsRawFd> AsyncFdReadyGuard<'a, T> {
    pub(crate) fn new(fd: &'a AsyncFd<T>, event: ReadyEvent) -> Self {
        AsyncFdReadyGuard {
            fd,
            event: Some(event),
        }
    }

    /// The `AsyncFd` this guard belongs to.
    pub fn get_ref(&self) -> &'a AsyncFd<T> {
        self.fd
    }

    /// The inner value of the `AsyncFd`.
    pub fn get_inner(&self) -> &'a T {
        self.fd.get_ref()
    }

    /// Runs `op` on the inner value. If it fails with `WouldBlock`, clears the readiness
    /// (all this guard saw) and returns `Err(TryIoError)`; otherwise returns `Ok` with its
    /// result.
    pub fn try_io<R>(
        &mut self,
        op: impl FnOnce(&T) -> io::Result<R>,
    ) -> Result<io::Result<R>, TryIoError> {
        let res = op(self.fd.get_ref());
        self.after_io(res)
    }
}

impl<'a, T: AsRawFd> AsyncFdReadyMutGuard<'a, T> {
    pub(crate) fn new(fd: &'a mut AsyncFd<T>, event: ReadyEvent) -> Self {
        AsyncFdReadyMutGuard {
            fd,
            event: Some(event),
        }
    }

    /// The `AsyncFd` this guard belongs to.
    pub fn get_ref(&self) -> &AsyncFd<T> {
        self.fd
    }

    /// The `AsyncFd` this guard belongs to, mutably.
    pub fn get_mut(&mut self) -> &mut AsyncFd<T> {
        self.fd
    }

    /// The inner value of the `AsyncFd`.
    pub fn get_inner(&self) -> &T {
        self.fd.get_ref()
    }

    /// The inner value of the `AsyncFd`, mutably.
    pub fn get_inner_mut(&mut self) -> &mut T {
        self.fd.get_mut()
    }

    /// Runs `op` on the inner value, mutably. If it fails with `WouldBlock`, clears the
    /// readiness (all this guard saw) and returns `Err(TryIoError)`; otherwise returns `Ok`
    /// with its result.
    pub fn try_io<R>(
        &mut self,
        op: impl FnOnce(&mut T) -> io::Result<R>,
    ) -> Result<io::Result<R>, TryIoError> {
        let res = op(self.fd.get_mut());
        self.after_io(res)
    }
}

/// What both guards share: the readiness seen, and forgetting it.
macro_rules! guard_common {
    ($guard:ident) => {
        impl<T: AsRawFd> $guard<'_, T> {
            /// The readiness this guard saw (empty once cleared or retained).
            pub fn ready(&self) -> Ready {
                self.event.map_or(Ready::EMPTY, |e| e.ready())
            }

            /// Forgets the readiness seen (unless a newer edge arrived), so the next wait
            /// sleeps until the kernel reports a new edge. Closed states are kept; an error
            /// state is forgotten too, so call this after the fd said `WouldBlock` (which
            /// proves no error is pending), or after a read that drained the fd when
            /// [`ready`](Self::ready) shows no error.
            pub fn clear_ready(&mut self) {
                if let Some(event) = self.event.take() {
                    self.fd.forget(event);
                }
            }

            /// Like [`clear_ready`](Self::clear_ready), for the bits of `ready` only: after
            /// a wait for both directions, a read that said `WouldBlock` clears
            /// [`Ready::READABLE`] and keeps the write readiness the guard saw.
            ///
            /// ```
            /// use std::io::{ErrorKind, Read, Write};
            /// use overlap::io::{Interest, Ready};
            /// use overlap::{AsyncFd, Direction};
            ///
            /// overlap::block_on(async {
            ///     let (a, mut b) = std::os::unix::net::UnixStream::pair()?;
            ///     a.set_nonblocking(true)?;
            ///     let fd = AsyncFd::new(a)?;
            ///     b.write_all(b"hi")?;
            ///     let mut guard = fd.ready(Interest::READABLE | Interest::WRITABLE).await?;
            ///     let mut sock = guard.get_inner();
            ///     let mut buf = [0u8; 8];
            ///     assert_eq!(sock.read(&mut buf)?, 2);
            ///     assert_eq!(sock.read(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
            ///     // Drained: forget the read readiness only.
            ///     guard.clear_ready_matching(Ready::READABLE);
            ///     assert!(guard.ready().is_writable() && !guard.ready().is_readable());
            ///     assert!(fd.current_ready(Direction::Read).is_empty(), "a read wait sleeps");
            ///     assert!(fd.current_ready(Direction::Write).is_writable(), "a write goes on");
            ///     std::io::Result::Ok(())
            /// })
            /// .unwrap();
            /// ```
            pub fn clear_ready_matching(&mut self, ready: Ready) {
                if let Some(event) = self.event {
                    self.fd.forget(event.only(ready));
                    let left = event.only(event.ready() - ready);
                    self.event = (!left.ready().is_empty()).then_some(left);
                }
            }

            /// Like [`clear_ready`](Self::clear_ready), after an operation that moved fewer
            /// bytes than asked, which usually means the fd is drained (or, writing, full):
            /// the next wait then sleeps instead of paying for a `WouldBlock`. Unless the
            /// readiness seen carries an error or [`Ready::PRIORITY`]: a short read proves
            /// nothing then (an error may wait behind the data, a TCP read stops at an
            /// urgent mark), and the readiness is kept for the next attempt to settle.
            pub fn clear_ready_after_short_io(&mut self) {
                let ready = self.ready();
                if !ready.is_error() && !ready.is_priority() {
                    self.clear_ready();
                }
            }

            /// Keeps the readiness: the next wait returns at once.
            pub fn retain_ready(&mut self) {
                self.event = None;
            }

            /// Clears the readiness after a `WouldBlock`, which may forget a hang-up too:
            /// for an fd whose hang-up may end, `WouldBlock` proves it is over (a FIFO got
            /// a new writer).
            fn after_io<R>(&mut self, res: io::Result<R>) -> Result<io::Result<R>, TryIoError> {
                match res {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if let Some(event) = self.event.take() {
                            self.fd.forget_after_would_block(event);
                        }
                        Err(TryIoError(()))
                    }
                    res => Ok(res),
                }
            }
        }

        impl<T: AsRawFd> fmt::Debug for $guard<'_, T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($guard))
                    .field("ready", &self.ready())
                    .finish()
            }
        }
    };
}

guard_common!(AsyncFdReadyGuard);
guard_common!(AsyncFdReadyMutGuard);
