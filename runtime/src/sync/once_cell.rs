//! `OnceCell`: a value set once, possibly by an async initializer that other tasks wait for.

use std::cell::{Cell, OnceCell as StdOnceCell};
use std::error::Error;
use std::fmt;
use std::future::Future;

use super::Notify;

/// A cell written at most once. [`get_or_init`](OnceCell::get_or_init) runs an async
/// initializer in the first task that asks; tasks asking meanwhile wait for its value instead
/// of running their own. For the tasks of one runtime (not `Send`).
///
/// # Cancellation
/// If the task running the initializer drops it (its future is cancelled, or
/// [`get_or_try_init`](OnceCell::get_or_try_init)'s initializer fails), the cell stays empty
/// and one of the waiting tasks runs its own initializer instead: nobody waits for ever. (Except
/// an initializer that asks its own cell for the value: it waits for itself, for ever.)
///
/// ```
/// use std::rc::Rc;
/// use overlap::sync::OnceCell;
///
/// overlap::block_on(async {
///     let config = Rc::new(OnceCell::new());
///     let mut readers = Vec::new();
///     for _ in 0..3 {
///         let config = config.clone();
///         readers.push(overlap::spawn(async move {
///             *config
///                 .get_or_init(|| async {
///                     overlap::yield_now().await; // loading it takes a while
///                     42
///                 })
///                 .await
///         }));
///     }
///     for r in readers {
///         assert_eq!(r.await.unwrap(), 42);
///     }
/// });
/// ```
pub struct OnceCell<T> {
    /// The value given to [`const_new_with`](OnceCell::const_new_with): std's `OnceCell`
    /// cannot be filled in a `const fn`, so a cell made full keeps its value here (and
    /// `value` stays empty). At most one of the two holds a value.
    preset: Option<T>,
    value: StdOnceCell<T>,
    /// A task runs an initializer now.
    initializing: Cell<bool>,
    /// Woken when an initializer finishes or gives up.
    changed: Notify,
}

impl<T> Default for OnceCell<T> {
    fn default() -> Self {
        OnceCell::new()
    }
}

/// Clears the "initializing" mark when an initializer ends without a value (cancelled or
/// failed) and wakes the waiters, so that one of them takes over.
struct InitGuard<'a, T> {
    cell: &'a OnceCell<T>,
}

impl<T> Drop for InitGuard<'_, T> {
    fn drop(&mut self) {
        self.cell.initializing.set(false);
        self.cell.changed.notify_waiters();
    }
}

impl<T> OnceCell<T> {
    /// An empty cell.
    pub const fn new() -> OnceCell<T> {
        OnceCell {
            preset: None,
            value: StdOnceCell::new(),
            initializing: Cell::new(false),
            changed: Notify::new(),
        }
    }

    /// [`new`](OnceCell::new) under tokio's name for its `const` constructor: overlap's
    /// `new` is a `const fn` as well, so either makes an empty cell in a `const` context.
    ///
    /// ```
    /// use overlap::sync::OnceCell;
    ///
    /// thread_local! {
    ///     static CONFIG: OnceCell<String> = const { OnceCell::const_new() };
    /// }
    /// CONFIG.with(|c| c.set("on".to_string()).unwrap());
    /// CONFIG.with(|c| assert_eq!(c.get().map(String::as_str), Some("on")));
    /// ```
    pub const fn const_new() -> OnceCell<T> {
        OnceCell::new()
    }

    /// A cell that already holds `value`, usable in a `const` context (tokio's
    /// `const_new_with`). Like any full cell, it refuses [`set`](OnceCell::set) and gives its
    /// value up only to [`take`](OnceCell::take) or [`into_inner`](OnceCell::into_inner).
    ///
    /// ```
    /// use overlap::sync::OnceCell;
    ///
    /// thread_local! {
    ///     static MODE: OnceCell<&'static str> = const { OnceCell::const_new_with("fast") };
    /// }
    /// MODE.with(|m| {
    ///     assert_eq!(m.get(), Some(&"fast"));
    ///     assert!(m.set("slow").is_err());
    /// });
    /// ```
    pub const fn const_new_with(value: T) -> OnceCell<T> {
        OnceCell {
            preset: Some(value),
            value: StdOnceCell::new(),
            initializing: Cell::new(false),
            changed: Notify::new(),
        }
    }

    /// A cell holding `value` if it is `Some`, empty otherwise.
    pub fn new_with(value: Option<T>) -> OnceCell<T> {
        let cell = OnceCell::new();
        if let Some(v) = value {
            let _ = cell.value.set(v);
        }
        cell
    }

    /// The value, if set.
    pub fn get(&self) -> Option<&T> {
        self.preset.as_ref().or_else(|| self.value.get())
    }

    /// The value, if set.
    pub fn get_mut(&mut self) -> Option<&mut T> {
        match &mut self.preset {
            Some(v) => Some(v),
            None => self.value.get_mut(),
        }
    }

    /// Whether the value is set.
    pub fn initialized(&self) -> bool {
        self.get().is_some()
    }

    /// Sets the value. Fails, handing `value` back, if the cell is already set or an
    /// initializer is running.
    pub fn set(&self, value: T) -> Result<(), SetError<T>> {
        if self.initializing.get() {
            return Err(SetError::InitializingError(value));
        }
        if self.preset.is_some() {
            return Err(SetError::AlreadyInitializedError(value));
        }
        self.value
            .set(value)
            .map_err(SetError::AlreadyInitializedError)?;
        self.changed.notify_waiters();
        Ok(())
    }

    /// The value, running `init` to make it if the cell is empty. If another task's
    /// initializer is running, waits for its value instead.
    pub async fn get_or_init<F, Fut>(&self, init: F) -> &T
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let res: Result<&T, std::convert::Infallible> =
            self.get_or_try_init(|| async { Ok(init().await) }).await;
        match res {
            Ok(v) => v,
        }
    }

    /// Like [`get_or_init`](OnceCell::get_or_init), with an initializer that may fail: its
    /// error is returned to this caller and the cell stays empty (a waiting task then runs
    /// its own initializer).
    pub async fn get_or_try_init<E, F, Fut>(&self, init: F) -> Result<&T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        loop {
            if let Some(v) = self.get() {
                return Ok(v);
            }
            if !self.initializing.get() {
                break;
            }
            // Made before the await with nothing in between, so the end of the running
            // initializer cannot be missed.
            self.changed.notified().await;
        }
        self.initializing.set(true);
        let guard = InitGuard { cell: self };
        let value = init().await?;
        // Nobody else sets the cell while `initializing` is set, so this stores `value`.
        let value = self.value.get_or_init(|| value);
        drop(guard);
        Ok(value)
    }

    /// Takes the value out, leaving the cell empty.
    pub fn take(&mut self) -> Option<T> {
        self.preset.take().or_else(|| self.value.take())
    }

    /// The value, if set.
    pub fn into_inner(self) -> Option<T> {
        self.preset.or(self.value.into_inner())
    }
}

/// A cell holding a clone of the value, if set (an initializer running in the original is not
/// shared: the clone is empty until it is set on its own), as tokio's.
///
/// ```
/// let cell = overlap::sync::OnceCell::from(7);
/// assert_eq!(cell.clone().get(), Some(&7));
/// assert_eq!(overlap::sync::OnceCell::<u8>::new().clone().get(), None);
/// ```
impl<T: Clone> Clone for OnceCell<T> {
    fn clone(&self) -> Self {
        OnceCell::new_with(self.get().cloned())
    }
}

/// Two cells are equal when both are empty or both hold equal values.
///
/// ```
/// use overlap::sync::OnceCell;
///
/// assert_eq!(OnceCell::from(1), OnceCell::const_new_with(1));
/// assert_ne!(OnceCell::from(1), OnceCell::new());
/// ```
impl<T: PartialEq> PartialEq for OnceCell<T> {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl<T: Eq> Eq for OnceCell<T> {}

/// A cell holding `value`.
impl<T> From<T> for OnceCell<T> {
    fn from(value: T) -> Self {
        OnceCell::new_with(Some(value))
    }
}

impl<T: fmt::Debug> fmt::Debug for OnceCell<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnceCell")
            .field("value", &self.get())
            .field("initializing", &self.initializing.get())
            .finish()
    }
}

/// Why [`OnceCell::set`] failed; holds the value it was given.
#[derive(Debug, PartialEq, Eq)]
pub enum SetError<T> {
    /// The cell already holds a value.
    AlreadyInitializedError(T),
    /// An initializer is running.
    InitializingError(T),
}

impl<T> SetError<T> {
    /// Whether the cell already held a value.
    ///
    /// ```
    /// let cell = overlap::sync::OnceCell::from(1);
    /// let err = cell.set(2).unwrap_err();
    /// assert!(err.is_already_init_err() && !err.is_initializing_err());
    /// assert_eq!(err.into_inner(), 2);
    /// ```
    pub fn is_already_init_err(&self) -> bool {
        matches!(self, SetError::AlreadyInitializedError(_))
    }

    /// Whether an initializer was running.
    pub fn is_initializing_err(&self) -> bool {
        matches!(self, SetError::InitializingError(_))
    }

    /// The value that was not stored.
    pub fn into_inner(self) -> T {
        match self {
            SetError::AlreadyInitializedError(v) | SetError::InitializingError(v) => v,
        }
    }
}

impl<T> fmt::Display for SetError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SetError::AlreadyInitializedError(_) => "the cell is already initialized",
            SetError::InitializingError(_) => "the cell is being initialized",
        })
    }
}

impl<T: fmt::Debug> Error for SetError<T> {}
