//! [`SetOnce`]: tokio's value set once that tasks, threads and runtimes wait for, like
//! Python's `asyncio.Event` with a payload.

use std::error::Error;
use std::fmt;
use std::future::poll_fn;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll};

use super::wait_list::{WaitList, WaitSlot};
use super::waiters::wake_all;

/// A value set at most once, which any number of tasks [`wait`](SetOnce::wait) for: tokio's
/// `SetOnce`, an event that carries a value.
///
/// [`set`](SetOnce::set) stores the value and wakes every waiting task; a second `set`
/// fails, handing its value back. [`get`](SetOnce::get) looks without waiting. Unlike
/// [`OnceCell`](super::OnceCell) there is no initializer: whoever has the value sets it.
///
/// Unlike most of [`sync`](super), and like tokio's, it is `Send` and `Sync` (for a `T`
/// that is): a `static` one, or one in an `Arc`, is set from any thread (a
/// [`spawn_blocking`](crate::spawn_blocking) job, another runtime) and waited for on any.
/// A dropped `wait` gives up its place; none is lost or woken for nothing.
///
/// ```
/// use overlap::sync::SetOnce;
///
/// static LISTENING_ON: SetOnce<u16> = SetOnce::const_new();
///
/// overlap::block_on(async {
///     let server = overlap::spawn(async {
///         let listener = overlap::net::TcpListener::bind("127.0.0.1:0").await?;
///         LISTENING_ON.set(listener.local_addr()?.port()).unwrap(); // wakes the client
///         let (_conn, _) = listener.accept().await?;
///         std::io::Result::Ok(())
///     });
///     let port = *LISTENING_ON.wait().await;
///     overlap::net::TcpStream::connect(("127.0.0.1", port)).await?;
///     server.await??;
///     assert!(LISTENING_ON.set(1).is_err(), "set once only");
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub struct SetOnce<T> {
    /// The value given to [`const_new_with`](SetOnce::const_new_with): a `OnceLock` cannot
    /// be filled in a `const fn`. At most one of `preset` and `value` holds a value.
    preset: Option<T>,
    value: OnceLock<T>,
    waiters: Mutex<WaitList>,
}

impl<T> SetOnce<T> {
    /// An empty one.
    pub const fn new() -> SetOnce<T> {
        SetOnce {
            preset: None,
            value: OnceLock::new(),
            waiters: Mutex::new(WaitList::new()),
        }
    }

    /// An empty one, in a `const` or `static` (the same as [`new`](SetOnce::new), which is
    /// `const` too; tokio has both names).
    pub const fn const_new() -> SetOnce<T> {
        SetOnce::new()
    }

    /// One already set to `value`, in a `const` or `static`.
    ///
    /// ```
    /// static DEFAULT_PORT: overlap::sync::SetOnce<u16> = overlap::sync::SetOnce::const_new_with(8080);
    /// assert_eq!(DEFAULT_PORT.get(), Some(&8080));
    /// ```
    pub const fn const_new_with(value: T) -> SetOnce<T> {
        SetOnce {
            preset: Some(value),
            value: OnceLock::new(),
            waiters: Mutex::new(WaitList::new()),
        }
    }

    /// One set to `value` if it is `Some`, empty otherwise.
    pub fn new_with(value: Option<T>) -> SetOnce<T> {
        SetOnce {
            preset: value,
            ..SetOnce::new()
        }
    }

    /// The value, if it is set.
    pub fn get(&self) -> Option<&T> {
        self.preset.as_ref().or_else(|| self.value.get())
    }

    /// Whether the value is set.
    pub fn initialized(&self) -> bool {
        self.get().is_some()
    }

    /// Sets the value and wakes every task waiting for it. Fails, handing `value` back, if
    /// it was set already.
    pub fn set(&self, value: T) -> Result<(), SetOnceError<T>> {
        if self.preset.is_some() {
            return Err(SetOnceError(value));
        }
        self.value.set(value).map_err(SetOnceError)?;
        // Set before the wakers are taken, under the lock a wait registers under: a wait
        // that found no value there registered first, and its waker is taken now.
        let wakers: Vec<_> = self.lock().take_all().collect();
        // Woken with no lock held; a panicking waker stops none of the others.
        wake_all(wakers);
        Ok(())
    }

    /// Waits until the value is set, then gives it. Ready at once if it is set already.
    /// Dropped before it completes, it gives its place back and nothing else happens.
    pub async fn wait(&self) -> &T {
        let mut wait = Wait {
            once: self,
            slot: WaitSlot::default(),
        };
        poll_fn(|cx| wait.poll(cx)).await
    }

    /// The value, if it was set.
    pub fn into_inner(self) -> Option<T> {
        self.preset.or_else(|| self.value.into_inner())
    }

    /// The wait list, even if a thread panicked holding it: every change to it is one
    /// step, so a panic never leaves it half done.
    fn lock(&self) -> MutexGuard<'_, WaitList> {
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One [`SetOnce::wait`]: its place in the wait list, given back when it is dropped.
struct Wait<'a, T> {
    once: &'a SetOnce<T>,
    slot: WaitSlot,
}

impl<'a, T> Wait<'a, T> {
    /// Registers under the lock `set` takes the wakers under, after it stored the value:
    /// no wake is lost. The waker is cloned with the lock released (a clone is user code,
    /// which may call this `SetOnce`), and the value looked for again once it is taken back.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<&'a T> {
        if let Some(v) = self.once.get() {
            return Poll::Ready(v);
        }
        let mut waker = None;
        loop {
            let mut waiters = self.once.lock();
            // `set` stores the value before it takes the wakers under this lock: not seen
            // here, it has not taken them yet, and will take the one stored now.
            if let Some(v) = self.once.get() {
                drop(waiters);
                drop(waker);
                return Poll::Ready(v);
            }
            if waiters.waits_with(&self.slot, cx.waker()) {
                drop(waiters);
                drop(waker);
                return Poll::Pending;
            }
            if let Some(waker) = waker.take() {
                let old = waiters.register_owned(&mut self.slot, waker);
                drop(waiters);
                drop(old);
                return Poll::Pending;
            }
            drop(waiters);
            waker = Some(cx.waker().clone());
        }
    }
}

impl<T> Drop for Wait<'_, T> {
    fn drop(&mut self) {
        if self.slot.is_taken() {
            self.once.lock().forget(&mut self.slot);
        }
    }
}

impl<T> Default for SetOnce<T> {
    fn default() -> SetOnce<T> {
        SetOnce::new()
    }
}

impl<T> From<T> for SetOnce<T> {
    /// One already set to `value`.
    fn from(value: T) -> SetOnce<T> {
        SetOnce::new_with(Some(value))
    }
}

impl<T: Clone> Clone for SetOnce<T> {
    /// A new `SetOnce` holding a clone of the value, if there is one; nobody waiting on
    /// this one waits on the clone.
    fn clone(&self) -> SetOnce<T> {
        SetOnce::new_with(self.get().cloned())
    }
}

impl<T: PartialEq> PartialEq for SetOnce<T> {
    /// Equal when both are empty or both hold equal values.
    fn eq(&self, other: &SetOnce<T>) -> bool {
        self.get() == other.get()
    }
}

impl<T: Eq> Eq for SetOnce<T> {}

impl<T: fmt::Debug> fmt::Debug for SetOnce<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetOnce")
            .field("value", &self.get())
            .finish()
    }
}

/// Why [`SetOnce::set`] failed: the value was set already. Holds the value it was given.
#[derive(Debug, PartialEq, Eq)]
pub struct SetOnceError<T>(pub T);

impl<T> SetOnceError<T> {
    /// The value that was not stored.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Display for SetOnceError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the SetOnce is already set")
    }
}

impl<T: fmt::Debug> Error for SetOnceError<T> {}
