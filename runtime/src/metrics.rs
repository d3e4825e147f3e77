//! Counters a runtime keeps about itself.

/// A snapshot of a runtime's counters, cheap to take (a few loads).
///
/// Tests and benchmarks use it to prove there is no busy loop (an idle runtime adds almost no
/// `epoll_waits` or `futex_sleeps`) and no leak (`tasks_alive`, `registered_fds` and `timers_active` go back
/// down).
///
/// ```
/// overlap::block_on(async {
///     overlap::spawn(async {}).await.unwrap();
///     let m = overlap::metrics();
///     assert_eq!(m.tasks_spawned, 1);
///     assert_eq!(m.tasks_alive, 0);
/// });
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuntimeMetrics {
    /// Tasks spawned since the runtime started, `spawn_blocking` jobs among them (each has a
    /// relay task on the loop). Jobs queued through `Handle::spawn_blocking` have none: they
    /// count in `blocking_jobs` only.
    pub tasks_spawned: u64,
    /// Tasks whose future has not finished yet. A `spawn_blocking` job counts as one until
    /// it has run, awaited or not (tokio's `num_alive_tasks` leaves blocking jobs out): a
    /// program checking that no task is left waits for its jobs too. Except a job whose
    /// handle was aborted: its relay task ends at once, so it stops counting here while it
    /// may still run to its end (in `blocking_running`); to wait for every job, wait for
    /// `blocking_running` and `blocking_queued` to reach 0 as well. The runtime's own
    /// count too: the first `signal::signal()` starts one reader task (and registers one fd)
    /// for the runtime's life.
    ///
    /// Read it, as every counter here, on the runtime's thread ([`metrics`](crate::metrics)
    /// or `Runtime::metrics`); `Handle` has no `metrics()`, as tokio's has, since the counters
    /// are that thread's plain cells: from another thread, spawn `async { overlap::metrics() }`
    /// through the handle.
    pub tasks_alive: u64,
    /// Times a task's future was polled (the `block_on` future not counted).
    pub task_polls: u64,
    /// Calls to `epoll_wait`/`epoll_pwait2`.
    pub epoll_waits: u64,
    /// Readiness events delivered to registered fds.
    pub events_delivered: u64,
    /// Wakes that came from another thread through the remote queue.
    pub remote_wakes: u64,
    /// Writes to the runtime's eventfd (at most one per batch of remote wakes).
    pub eventfd_writes: u64,
    /// Times the loop slept on its futex instead of in `epoll_wait`: it does so when no fd
    /// is registered (waiting only for timers and other threads).
    pub futex_sleeps: u64,
    /// Remote wakes that woke the loop from its futex sleep (at most one per batch, like
    /// `eventfd_writes`).
    pub futex_wakes: u64,
    /// Times a task ran out of cooperative budget and was sent to the back of the queue.
    pub budget_exhausted: u64,
    /// Fds registered with the reactor now.
    pub registered_fds: u64,
    /// Timers (sleeps, timeouts, intervals) registered now.
    pub timers_active: u64,
    /// Timers that have fired since the runtime started.
    pub timers_fired: u64,
    /// Blocking-pool threads alive now (busy or idle).
    pub blocking_threads: u64,
    /// Blocking jobs waiting for a free thread now.
    pub blocking_queued: u64,
    /// Blocking jobs running on a pool thread now. With `blocking_queued` at 0 too, the
    /// pool has drained (what a program that dropped work midway may wait for);
    /// `blocking_threads` minus this is tokio's idle-thread count. A job counts until just
    /// after its result was handed over, so an awaited job may still count for a moment.
    pub blocking_running: u64,
    /// Jobs handed to the blocking pool since the runtime started: `spawn_blocking` calls
    /// (also through a `Handle`), overlap's own file, `Unblock`, standard-stream and
    /// host-name lookup work, and clean-up work (a dropped `File`'s last bytes, a lingering
    /// socket's close), counted when queued, whether or not the job then runs.
    pub blocking_jobs: u64,
}
