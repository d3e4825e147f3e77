//! Waits that own their entry in an fd's waiter list, for as long as the future lives.
//!
//! A plain poll function (`poll_read`, `poll_accept`) has nowhere to keep state between
//! polls, so the reactor keeps its waker in the fd's shared per-direction slot, where a
//! waiter that gave up stays until the next edge and the number kept is bounded. A future
//! has a place, and a destructor: [`OwnWaits`] gives every readiness wait made while it is
//! polled an entry of its own, which its drop removes. Every `async fn` of overlap's I/O
//! types (`accept`, `recv`, `readable`, ...) waits this way, so any number of tasks may wait
//! on one fd, and a cancelled wait leaves nothing behind.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::ptr;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::{Direction, IoKey, Reactor};

thread_local! {
    /// The entries of the [`OwnWaits`] being polled on this thread, or null.
    static SCOPE: Cell<*const Entries> = const { Cell::new(ptr::null()) };
}

/// One entry: the waiter `index` in the owned list of registration `key`, for `dir`.
struct Entry {
    reactor: Rc<Reactor>,
    key: IoKey,
    dir: Direction,
    index: usize,
}

impl Entry {
    fn is(&self, reactor: &Reactor, key: IoKey, dir: Direction) -> bool {
        ptr::eq(&*self.reactor, reactor) && self.key == key && self.dir == dir
    }
}

/// The entries a future holds in waiter lists; removed when it drops. Most futures wait on
/// one fd in one direction: the first entry is kept inline, so waiting allocates nothing
/// here.
#[derive(Default)]
pub(crate) struct Entries {
    first: RefCell<Option<Entry>>,
    rest: RefCell<Vec<Entry>>,
}

impl Entries {
    /// Runs `f` with the entries of the [`OwnWaits`] being polled, if any.
    pub(super) fn with_current<R>(f: impl FnOnce(&Entries) -> R) -> Option<R> {
        let ptr = SCOPE.with(Cell::get);
        // SAFETY: a non-null SCOPE points at the entries of an `OwnWaits` whose `poll` is on
        // this thread's stack (it set SCOPE and restores it before returning or unwinding),
        // and that poll holds the future pinned and borrowed, so the entries are alive.
        (!ptr.is_null()).then(|| f(unsafe { &*ptr }))
    }

    /// The index of this future's entry for `key` and `dir` in `reactor`, if it has one.
    pub(super) fn find(&self, reactor: &Reactor, key: IoKey, dir: Direction) -> Option<usize> {
        let first = self.first.borrow();
        let rest = self.rest.borrow();
        first
            .iter()
            .chain(rest.iter())
            .find(|e| e.is(reactor, key, dir))
            .map(|e| e.index)
    }

    /// Records `index` as the entry for `key` and `dir` in `reactor`. It replaces one for
    /// the same slot whatever its generation: one gone from the reactor's list, or one of an
    /// earlier registration in that slot, whose fd was deregistered (taking its entries with
    /// it). So a future that outlives many fds (waiting on whatever an `Rc<RefCell<_>>`
    /// holds now) keeps one entry per slot, not one per fd it ever waited on.
    pub(super) fn record(&self, reactor: &Rc<Reactor>, key: IoKey, dir: Direction, index: usize) {
        let mut first = self.first.borrow_mut();
        let mut rest = self.rest.borrow_mut();
        if let Some(e) = first
            .iter_mut()
            .chain(rest.iter_mut())
            .find(|e| ptr::eq(&*e.reactor, &**reactor) && e.key.index == key.index && e.dir == dir)
        {
            e.key = key;
            e.index = index;
            return;
        }
        let entry = Entry {
            reactor: reactor.clone(),
            key,
            dir,
            index,
        };
        match &*first {
            None => *first = Some(entry),
            Some(_) => rest.push(entry),
        }
    }

    fn len(&self) -> usize {
        usize::from(self.first.borrow().is_some()) + self.rest.borrow().len()
    }
}

impl Drop for Entries {
    fn drop(&mut self) {
        let first = self.first.get_mut().take();
        for e in first.into_iter().chain(self.rest.get_mut().drain(..)) {
            e.reactor.remove_owned(e.key, e.index);
        }
    }
}

/// Restores the previous scope when an [`OwnWaits`] poll ends, also by unwinding.
struct Restore(*const Entries);

impl Drop for Restore {
    fn drop(&mut self) {
        SCOPE.with(|s| s.set(self.0));
    }
}

/// A future made from a poll function, like [`std::future::poll_fn`], whose readiness waits
/// each own an entry in their fd's waiter list: made by [`own_waits`].
///
/// Every `AsyncFd` (or overlap socket, pipe, ...) readiness wait that returns `Pending`
/// while the function runs stores its waker in an entry kept for this future alone, reused
/// by its later polls, and removed when the future is dropped. So:
/// - any number of futures may wait on one fd and direction, each woken by the next edge;
/// - a future dropped while waiting (cancelled by `timeout` or `select!`) leaves no waker
///   behind to be woken for nothing.
///
/// Waits made by a plain poll function outside such a future share the fd's
/// per-direction slot instead (see [`AsyncFd`](crate::AsyncFd)'s contract). Only waits made
/// on this future's behalf belong inside: the function must not poll another long-lived
/// future or stream whose wait should outlast this one.
pub struct OwnWaits<F> {
    f: F,
    entries: Entries,
}

/// Wraps a poll function into a future whose readiness waits own their waiter entries (see
/// [`OwnWaits`]). Use it instead of `poll_fn` to write an `async fn` over an
/// [`AsyncFd`](crate::AsyncFd) that many tasks may await on one fd at once.
///
/// ```
/// use overlap::{own_waits, AsyncFd};
/// use std::os::unix::net::UnixStream;
/// use std::rc::Rc;
///
/// overlap::block_on(async {
///     let (a, b) = UnixStream::pair()?;
///     a.set_nonblocking(true)?;
///     let fd = Rc::new(AsyncFd::new(a)?);
///     // A hundred tasks wait for the same fd to become readable.
///     let waiters: Vec<_> = (0..100)
///         .map(|_| {
///             let fd = fd.clone();
///             overlap::spawn(async move {
///                 own_waits(|cx| fd.poll_read_ready(cx).map(|r| r.map(drop))).await
///             })
///         })
///         .collect();
///     overlap::task::yield_now().await;
///     std::io::Write::write_all(&mut &b, b"!")?;
///     for w in waiters {
///         w.await.unwrap()?;
///     }
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub fn own_waits<T, F: FnMut(&mut Context<'_>) -> Poll<T> + Unpin>(f: F) -> OwnWaits<F> {
    OwnWaits {
        f,
        entries: Entries::default(),
    }
}

impl<T, F: FnMut(&mut Context<'_>) -> Poll<T> + Unpin> Future for OwnWaits<F> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = self.get_mut();
        let _restore = Restore(SCOPE.with(|s| s.replace(&this.entries)));
        (this.f)(cx)
    }
}

impl<F> fmt::Debug for OwnWaits<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnWaits")
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}
