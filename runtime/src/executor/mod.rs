//! The single-threaded executor: `Runtime`, `Builder`, `block_on`, and the wake path.

mod context;
mod core;
mod runtime;
mod shared;

use std::time::Duration;

pub use runtime::{block_on, metrics, Builder, Runtime};

pub(crate) use context::with_current;
pub(crate) use shared::Shared;

use crate::task::raw::TaskPtr;

/// Runtime settings, fixed when the runtime is built.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// Task polls between two looks at the reactor while tasks keep being ready.
    pub(crate) event_interval: usize,
    /// Events fetched per `epoll_wait`.
    pub(crate) max_events: usize,
    /// Upper bound on blocking-pool threads.
    pub(crate) max_blocking_threads: usize,
    /// How long an idle blocking-pool thread waits for work before it exits.
    pub(crate) blocking_keep_alive: Duration,
    /// Stack size of blocking-pool threads (`None`: the standard library's default).
    pub(crate) blocking_stack_size: Option<usize>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            event_interval: 61,
            max_events: 1024,
            max_blocking_threads: 512,
            blocking_keep_alive: Duration::from_secs(10),
            blocking_stack_size: None,
        }
    }
}

/// Puts a task that was just marked scheduled on its runtime's run queue: the local queue
/// when called on that runtime's thread, otherwise the remote queue (which wakes the loop).
pub(crate) fn schedule(task: TaskPtr) {
    let local = with_current(|core| {
        if core.owns(&task) {
            core.push_local(task);
            true
        } else {
            false
        }
    });
    if local != Some(true) {
        task.shared().push_remote(task);
    }
}
