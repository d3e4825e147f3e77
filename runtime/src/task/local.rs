//! Task-local values: `task_local!` and [`LocalKey`].

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

/// Declares task-local values: each task (or future) that runs inside
/// [`LocalKey::scope`] sees its own value, set for as long as the scoped future is polled.
/// Each declaration ends with a semicolon, which the last one may leave out (as tokio's).
/// Per-request context (a request id, a deadline, a tracing span) is the usual use; a
/// `thread_local!` cannot do it, because every task of a runtime shares its thread.
///
/// ```
/// overlap::task_local! {
///     static REQUEST_ID: u64;
/// }
///
/// async fn log(what: &str) -> String {
///     format!("[{}] {what}", REQUEST_ID.get())
/// }
///
/// overlap::block_on(async {
///     let a = overlap::spawn(REQUEST_ID.scope(1, async { log("a").await }));
///     let b = overlap::spawn(REQUEST_ID.scope(2, async {
///         overlap::yield_now().await; // interleaves with `a`
///         log("b").await
///     }));
///     assert_eq!(a.await.unwrap(), "[1] a");
///     assert_eq!(b.await.unwrap(), "[2] b");
///     assert!(REQUEST_ID.try_with(|_| ()).is_err(), "no value outside a scope");
/// });
/// ```
#[macro_export]
macro_rules! task_local {
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty; $($rest:tt)*) => {
        $(#[$attr])*
        $vis static $name: $crate::LocalKey<$t> = {
            ::std::thread_local! {
                static KEY: ::std::cell::RefCell<::std::option::Option<$t>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }
            $crate::LocalKey::__new(&KEY)
        };
        $crate::task_local!($($rest)*);
    };
    // The last declaration may go without its semicolon, as tokio's macro allows.
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty) => {
        $crate::task_local!($(#[$attr])* $vis static $name: $t;);
    };
    () => {};
}

/// A key for task-local values, declared with [`task_local!`](crate::task_local).
pub struct LocalKey<T: 'static> {
    inner: &'static std::thread::LocalKey<RefCell<Option<T>>>,
}

/// Why [`LocalKey::try_with`] could not give the value: no scope of that key is running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessError(());

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task-local value not set: not inside a scope of its key")
    }
}

impl std::error::Error for AccessError {}

impl<T: 'static> LocalKey<T> {
    #[doc(hidden)]
    pub const fn __new(inner: &'static std::thread::LocalKey<RefCell<Option<T>>>) -> Self {
        LocalKey { inner }
    }

    /// Runs `future` with `value` as this key's value: set while the future is polled (and
    /// while it is dropped), and the outer value, if any, everywhere else.
    pub fn scope<F: Future>(&'static self, value: T, future: F) -> TaskLocalFuture<T, F> {
        TaskLocalFuture {
            key: self,
            value: Some(value),
            future: Some(future),
        }
    }

    /// Runs `f` with `value` as this key's value, synchronously.
    ///
    /// # Panics
    /// Inside [`with`](LocalKey::with) on the same key (whose value is borrowed there), as
    /// does polling or dropping a [`scope`](LocalKey::scope)'s future there.
    #[track_caller]
    pub fn sync_scope<R>(&'static self, value: T, f: impl FnOnce() -> R) -> R {
        let mut slot = Some(value);
        self.swapped(&mut slot, f)
    }

    /// Calls `f` with the current value.
    ///
    /// # Panics
    /// Outside a scope of this key; see [`try_with`](LocalKey::try_with).
    #[track_caller]
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        match self.try_with(f) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        }
    }

    /// Calls `f` with the current value, or fails outside a scope of this key.
    pub fn try_with<R>(&'static self, f: impl FnOnce(&T) -> R) -> Result<R, AccessError> {
        // The thread-local is gone only while the thread's thread-locals are destroyed (a
        // runtime kept in one drops its tasks then): no scope runs, as outside one.
        let got = self.inner.try_with(|cell| {
            let value = cell.borrow();
            value.as_ref().map(f)
        });
        got.ok().flatten().ok_or(AccessError(()))
    }

    /// Swaps `slot` into the thread-local, runs `f`, and swaps back, even if `f` panics. If
    /// the thread-local is already destroyed (thread exit), runs `f` without the value.
    fn swapped<R>(&'static self, slot: &mut Option<T>, f: impl FnOnce() -> R) -> R {
        struct Back<'a, T: 'static> {
            key: &'static LocalKey<T>,
            slot: &'a mut Option<T>,
        }
        impl<T: 'static> Drop for Back<'_, T> {
            fn drop(&mut self) {
                let _ = self
                    .key
                    .inner
                    .try_with(|cell| std::mem::swap(self.slot, &mut *cell.borrow_mut()));
            }
        }
        let swapped = self.inner.try_with(|cell| {
            let mut current = cell.try_borrow_mut().unwrap_or_else(|_| {
                panic!(
                    "cannot enter a task-local scope (or drop a future holding one) inside \
                     `with` on the same task-local: its value is borrowed there"
                )
            });
            std::mem::swap(slot, &mut *current)
        });
        if swapped.is_err() {
            return f();
        }
        let _back = Back { key: self, slot };
        f()
    }
}

impl<T: Clone + 'static> LocalKey<T> {
    /// A clone of the current value.
    ///
    /// # Panics
    /// Outside a scope of this key.
    #[track_caller]
    pub fn get(&'static self) -> T {
        self.with(T::clone)
    }

    /// A clone of the current value, or an error outside a scope of this key.
    ///
    /// ```
    /// overlap::task_local! {
    ///     static USER: u32;
    /// }
    ///
    /// overlap::block_on(async {
    ///     assert!(USER.try_get().is_err());
    ///     USER.scope(7, async { assert_eq!(USER.try_get(), Ok(7)) }).await;
    /// });
    /// ```
    pub fn try_get(&'static self) -> Result<T, AccessError> {
        self.try_with(T::clone)
    }
}

impl<T: 'static> fmt::Debug for LocalKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKey").finish_non_exhaustive()
    }
}

pin_project! {
    /// The future returned by [`LocalKey::scope`].
    pub struct TaskLocalFuture<T: 'static, F> {
        key: &'static LocalKey<T>,
        // The value, while it is not swapped in.
        value: Option<T>,
        // `None` once dropped (by the drop below, with the value set).
        #[pin]
        future: Option<F>,
    }

    impl<T: 'static, F> PinnedDrop for TaskLocalFuture<T, F> {
        fn drop(this: Pin<&mut Self>) {
            // The future's destructor sees the value too, as its body did; `set` drops it
            // where it lies.
            let this = this.project();
            if this.future.is_some() {
                let key = *this.key;
                let mut future = this.future;
                key.swapped(this.value, || future.set(None));
            }
        }
    }
}

impl<T: 'static, F> TaskLocalFuture<T, F> {
    /// Takes the value out of this scope: `Some` the first time, `None` after. The future
    /// may still be polled (or dropped), but its body then sees no value: `with` panics and
    /// `try_with` fails, as outside a scope.
    ///
    /// ```
    /// use std::pin::pin;
    ///
    /// overlap::task_local! {
    ///     static USER: u32;
    /// }
    ///
    /// overlap::block_on(async {
    ///     let mut scoped = pin!(USER.scope(7, async { USER.try_get().is_ok() }));
    ///     assert_eq!(scoped.as_mut().take_value(), Some(7));
    ///     assert_eq!(scoped.as_mut().take_value(), None);
    ///     assert!(!scoped.await, "the body no longer sees the value");
    /// });
    /// ```
    pub fn take_value(self: Pin<&mut Self>) -> Option<T> {
        self.project().value.take()
    }
}

impl<T: 'static, F: Future> Future for TaskLocalFuture<T, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let key = *this.key;
        let future = this.future;
        key.swapped(this.value, || {
            future
                .as_pin_mut()
                .expect("TaskLocalFuture polled after it was dropped")
                .poll(cx)
        })
    }
}

impl<T: 'static, F> fmt::Debug for TaskLocalFuture<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskLocalFuture").finish_non_exhaustive()
    }
}
