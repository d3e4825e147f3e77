//! `AsyncFd`'s operation runners: [`try_io`](AsyncFd::try_io) runs an operation now if the fd
//! is known to be ready, [`async_io`](AsyncFd::async_io) waits for readiness first; both for
//! any [`Interest`], as tokio's.

use std::io;
use std::os::fd::AsRawFd;
use std::rc::Rc;

use super::AsyncFd;
use crate::reactor::{Interest, ReadyEvent, TryIoError};

impl<T: AsRawFd> AsyncFd<T> {
    /// Runs `op` at once if the fd is known to be ready in a direction of `interest`,
    /// without waiting; otherwise fails with `WouldBlock` and makes no syscall. If `op` fails
    /// with `WouldBlock`, the readiness seen is cleared (unless a newer edge arrived), so a
    /// later [`readable`](AsyncFd::readable)/[`writable`](AsyncFd::writable) waits for the
    /// next edge. No waker is stored either way: pair it with those waits. A newly
    /// registered fd is not known to be ready until the loop has seen its first edge.
    ///
    /// `interest` is an [`Interest`] (tokio's form) or a [`Direction`](crate::Direction).
    /// For both directions (`Interest::READABLE | Interest::WRITABLE`), `op` runs if either
    /// is ready, and a `WouldBlock` clears all that was seen, in both, except a closed side:
    /// that state is final, as in tokio.
    ///
    /// Fails with an `Other` error outside the runtime the fd is registered with.
    ///
    /// ```
    /// use std::io;
    /// use overlap::AsyncFd;
    /// use overlap::io::Interest;
    ///
    /// overlap::block_on(async {
    ///     let (a, b) = std::os::unix::net::UnixStream::pair()?;
    ///     a.set_nonblocking(true)?;
    ///     let fd = AsyncFd::new(a)?;
    ///     let read = |s: &std::os::unix::net::UnixStream| io::Read::read(&mut &*s, &mut [0u8; 8]);
    ///     // Nothing sent yet, and no edge seen: WouldBlock, without a syscall.
    ///     assert_eq!(fd.try_io(Interest::READABLE, read).unwrap_err().kind(), io::ErrorKind::WouldBlock);
    ///     io::Write::write_all(&mut &b, b"hi")?;
    ///     fd.readable().await?.retain_ready();
    ///     assert_eq!(fd.try_io(Interest::READABLE, read)?, 2);
    ///     io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn try_io<R>(
        &self,
        interest: impl Into<Interest>,
        op: impl FnOnce(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        self.check_runtime()?;
        let reg = self.reg();
        let mut seen: Option<ReadyEvent> = None;
        for dir in interest.into().directions() {
            if let Some(event) = reg.reactor.current_readiness(reg.key, dir) {
                seen = Some(seen.map_or(event, |first| first.merge(event)));
            }
        }
        let Some(event) = seen else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        let res = op(self.get_ref());
        if matches!(&res, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
            reg.reactor.clear_after_would_block(reg.key, event);
        }
        res
    }

    /// Fails with the `Other` error [`try_io`](Self::try_io) gives when the runtime current
    /// on this thread is not the one the fd is registered with (or none is): for a call that
    /// makes its syscall without consulting readiness (`UnixDatagram::send_to`), so that it
    /// follows the same rule as the others instead of acting where they fail.
    #[doc(hidden)]
    pub fn check_runtime(&self) -> io::Result<()> {
        let reg = self.reg();
        let here = crate::executor::with_current(|core| Rc::ptr_eq(core.reactor(), &reg.reactor));
        if here == Some(true) {
            return Ok(());
        }
        Err(io::Error::other(
            "AsyncFd used outside the runtime it was registered with; an fd stays with the \
             runtime that registered it",
        ))
    }

    /// Waits until the fd may be ready in a direction of `interest`, then runs `f`; if `f`
    /// fails with `WouldBlock`, clears the readiness seen and waits again, until `f`
    /// succeeds or fails with another error. `f` must be a non-blocking operation on the
    /// fd. This is tokio's `AsyncFd::async_io`; for both directions, `f` runs when either is
    /// ready, and its `WouldBlock` clears both (all that was seen). A closed side stays
    /// ready, as in tokio: with both directions and one side closed (the peer shut down its
    /// writing), an `f` that keeps saying `WouldBlock` for the other side runs again at once,
    /// so `f` should act on the closed side too (a read that returns 0). One difference: an
    /// `Interrupted` error is retried too, as `WouldBlock` is, instead of returned.
    ///
    /// `f` should fail with `WouldBlock` only when the fd itself said so (`EAGAIN`), as
    /// readiness is edge-triggered: an `f` that reports `WouldBlock` with data still queued
    /// (an inotify reader whose read brought only events it skips, as in smol's
    /// `linux-inotify` example) waits for the fd's *next* event, where async-io's `read_with`
    /// runs it again at once. Loop inside `f` until a read says `WouldBlock`.
    ///
    /// `interest` is an [`Interest`] or a [`Direction`](crate::Direction).
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use overlap::AsyncFd;
    /// use overlap::io::Interest;
    ///
    /// overlap::block_on(async {
    ///     let (a, b) = std::os::unix::net::UnixStream::pair()?;
    ///     a.set_nonblocking(true)?;
    ///     let fd = AsyncFd::new(a)?;
    ///     let reader = overlap::spawn(async move {
    ///         let mut buf = [0u8; 8];
    ///         let n = fd.async_io(Interest::READABLE, |s| (&*s).read(&mut buf)).await?;
    ///         std::io::Result::Ok(buf[..n].to_vec())
    ///     });
    ///     (&b).write_all(b"ping")?;
    ///     assert_eq!(reader.await.unwrap()?, b"ping");
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub async fn async_io<R>(
        &self,
        interest: impl Into<Interest>,
        mut f: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        let interest = interest.into();
        loop {
            if let Some(res) = settled(self.ready(interest).await?.try_io(&mut f)) {
                return res;
            }
        }
    }

    /// Like [`async_io`](AsyncFd::async_io), lending `f` the inner value mutably (for an
    /// inner type whose I/O takes `&mut self`): tokio's `AsyncFd::async_io_mut`.
    ///
    /// ```
    /// use std::io::Write;
    /// use overlap::AsyncFd;
    /// use overlap::io::Interest;
    ///
    /// overlap::block_on(async {
    ///     let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    ///     a.set_nonblocking(true)?;
    ///     let mut fd = AsyncFd::new(a)?;
    ///     assert_eq!(fd.async_io_mut(Interest::WRITABLE, |s| s.write(b"hi")).await?, 2);
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub async fn async_io_mut<R>(
        &mut self,
        interest: impl Into<Interest>,
        mut f: impl FnMut(&mut T) -> io::Result<R>,
    ) -> io::Result<R> {
        let interest = interest.into();
        loop {
            if let Some(res) = settled(self.ready_mut(interest).await?.try_io(&mut f)) {
                return res;
            }
        }
    }

    /// [`async_io`](AsyncFd::async_io) for reading: runs `op` when the fd is read-ready,
    /// retrying after `WouldBlock` until it succeeds or fails with another error.
    pub async fn async_io_read<R>(&self, op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.async_io(Interest::READABLE, op).await
    }

    /// [`async_io`](AsyncFd::async_io) for writing.
    pub async fn async_io_write<R>(&self, op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.async_io(Interest::WRITABLE, op).await
    }
}

/// The result of one attempt of an `async_io` loop, or `None` to wait and try again (the
/// operation said `WouldBlock`, its readiness now cleared, or `Interrupted`).
fn settled<R>(attempt: Result<io::Result<R>, TryIoError>) -> Option<io::Result<R>> {
    match attempt {
        Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => None,
        Ok(res) => Some(res),
        Err(TryIoError { .. }) => None,
    }
}
