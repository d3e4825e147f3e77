//! The single-threaded executor: `Runtime`, `Builder`, `block_on`, and the wake path.

mod context;
mod core;
mod handle;
mod remote_task;
mod runtime;
mod shared;
mod spin;

use std::time::Duration;

pub use handle::{Handle, RemoteJoinHandle};
pub use runtime::{block_on, block_on_start_paused, metrics, Builder, Runtime, RuntimeGuard};

pub(crate) use context::{
    current_task, in_driving_block_on, with_current, with_driving, with_owner, with_owner_of,
};
pub(crate) use core::Core;
pub(crate) use handle::{clock_now, no_runtime_here, park_until_ready};
pub(crate) use remote_task::JoinSlot;
pub(crate) use shared::Shared;

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
    /// Name of blocking-pool threads.
    pub(crate) blocking_thread_name: crate::blocking::ThreadName,
    /// Run on each blocking-pool thread as it starts and as it stops.
    pub(crate) on_thread_start: Option<crate::blocking::Hook>,
    pub(crate) on_thread_stop: Option<crate::blocking::Hook>,
    /// The timers' clock starts paused (see `time::pause`).
    pub(crate) start_paused: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            event_interval: 61,
            max_events: 1024,
            max_blocking_threads: 512,
            blocking_keep_alive: Duration::from_secs(10),
            blocking_stack_size: None,
            blocking_thread_name: crate::blocking::ThreadName::Fixed("overlap-blocking".into()),
            on_thread_start: None,
            on_thread_stop: None,
            start_paused: false,
        }
    }
}
