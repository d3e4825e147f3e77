//! One interface over the executors we compare: overlap, tokio's current-thread runtime and
//! smol's `LocalExecutor`, so each workload is written once.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// An executor under test.
pub trait Exec {
    /// Column name.
    const NAME: &'static str;
    /// The join handle, resolving to the task's output.
    type Handle<T: Send + 'static>: Future<Output = T>;
    /// Runs `f` to completion, driving spawned tasks.
    fn block_on<F: Future>(&self, f: F) -> F::Output;
    /// Spawns a task (from inside `block_on`).
    fn spawn<T: Send + 'static>(
        &self,
        f: impl Future<Output = T> + Send + 'static,
    ) -> Self::Handle<T>;
    /// Spawns a task and forgets its handle.
    fn spawn_detached(&self, f: impl Future<Output = ()> + Send + 'static);
    /// The executor's own `yield_now`.
    fn yield_now() -> impl Future<Output = ()> + Send + 'static;
}

/// A join handle whose `Err` (panic or cancel) is a bug in the benchmark.
#[derive(Debug)]
pub struct Unwrap<H>(H);

impl<T, E: std::fmt::Debug, H: Future<Output = Result<T, E>> + Unpin> Future for Unwrap<H> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.expect("benchmark task failed"))
    }
}

/// overlap's runtime.
#[derive(Debug)]
pub struct Overlap(pub overlap::Runtime);

impl Overlap {
    /// A fresh runtime.
    pub fn new() -> Overlap {
        Overlap(overlap::Runtime::new().expect("runtime"))
    }
}

impl Default for Overlap {
    fn default() -> Self {
        Self::new()
    }
}

impl Exec for Overlap {
    const NAME: &'static str = "overlap";
    type Handle<T: Send + 'static> = Unwrap<overlap::JoinHandle<T>>;
    fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.0.block_on(f)
    }
    fn spawn<T: Send + 'static>(
        &self,
        f: impl Future<Output = T> + Send + 'static,
    ) -> Self::Handle<T> {
        Unwrap(overlap::spawn(f))
    }
    fn spawn_detached(&self, f: impl Future<Output = ()> + Send + 'static) {
        drop(overlap::spawn(f));
    }
    fn yield_now() -> impl Future<Output = ()> + Send + 'static {
        overlap::yield_now()
    }
}

/// tokio's current-thread runtime.
#[derive(Debug)]
pub struct Tokio(pub tokio::runtime::Runtime);

impl Tokio {
    /// A fresh current-thread runtime with every driver enabled.
    pub fn new() -> Tokio {
        Tokio(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio"),
        )
    }
}

impl Default for Tokio {
    fn default() -> Self {
        Self::new()
    }
}

impl Exec for Tokio {
    const NAME: &'static str = "tokio";
    type Handle<T: Send + 'static> = Unwrap<tokio::task::JoinHandle<T>>;
    fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.0.block_on(f)
    }
    fn spawn<T: Send + 'static>(
        &self,
        f: impl Future<Output = T> + Send + 'static,
    ) -> Self::Handle<T> {
        Unwrap(tokio::spawn(f))
    }
    fn spawn_detached(&self, f: impl Future<Output = ()> + Send + 'static) {
        drop(tokio::spawn(f));
    }
    fn yield_now() -> impl Future<Output = ()> + Send + 'static {
        tokio::task::yield_now()
    }
}

/// smol's single-threaded executor.
#[derive(Debug)]
pub struct Smol(pub Rc<async_executor::LocalExecutor<'static>>);

impl Smol {
    /// A fresh executor.
    pub fn new() -> Smol {
        Smol(Rc::new(async_executor::LocalExecutor::new()))
    }
}

impl Default for Smol {
    fn default() -> Self {
        Self::new()
    }
}

impl Exec for Smol {
    const NAME: &'static str = "smol";
    type Handle<T: Send + 'static> = async_executor::Task<T>;
    fn block_on<F: Future>(&self, f: F) -> F::Output {
        futures_lite::future::block_on(self.0.run(f))
    }
    fn spawn<T: Send + 'static>(
        &self,
        f: impl Future<Output = T> + Send + 'static,
    ) -> Self::Handle<T> {
        self.0.spawn(f)
    }
    fn spawn_detached(&self, f: impl Future<Output = ()> + Send + 'static) {
        self.0.spawn(f).detach();
    }
    fn yield_now() -> impl Future<Output = ()> + Send + 'static {
        futures_lite::future::yield_now()
    }
}
