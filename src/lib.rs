//! # overlap
//!
//! Overlapped-style asynchronous I/O for Linux — for sockets and pipes, not only files —
//! built on its own epoll reactor: non-blocking descriptors, an event loop, and `async`/`await`
//! on top.
//!
//! - [`block_on`], [`Runtime`], [`spawn`] (tasks need not be `Send`), [`JoinHandle`],
//!   [`yield_now`], [`AsyncFd`] for any pollable fd;
//! - [`time`]: sleeps, timeouts, intervals; [`signal`]: Unix signals as events;
//! - [`net`]: TCP, UDP and Unix sockets; [`pipe`]: pipes and FIFOs; [`process`]: child
//!   processes; [`fs`]: files on the blocking pool, [`spawn_blocking`] for any other
//!   blocking work;
//! - [`io`]: the futures-io traits and helpers, re-exported so no extra import is needed.
//!
//! ```
//! use overlap::io::{AsyncReadExt, AsyncWriteExt};
//!
//! overlap::block_on(async {
//!     let task = overlap::spawn(async { "hello from a task" });
//!     assert_eq!(task.await.unwrap(), "hello from a task");
//! });
//! ```

pub use overlap_runtime::{
    block_on, coop_poll_proceed, metrics, signal, spawn, spawn_blocking, time, try_spawn,
    yield_now, AsyncFd, AsyncFdReadyGuard, Builder, Direction, JoinError, JoinHandle, Ready,
    ReadyEvent, Registered, Runtime, RuntimeMetrics, TryIoError, YieldNow,
};

/// Asynchronous I/O traits and helpers (re-exported from `futures-util`).
///
/// Every overlap I/O type implements [`AsyncRead`](io::AsyncRead)/[`AsyncWrite`](io::AsyncWrite) from futures-io, so these
/// extension traits and adapters work on them directly.
pub mod io {
    pub use futures_util::io::{
        copy, copy_buf, empty, repeat, sink, AllowStdIo, AsyncBufRead, AsyncBufReadExt, AsyncRead,
        AsyncReadExt, AsyncSeek, AsyncSeekExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter,
        Cursor, ReadHalf, WriteHalf,
    };
}

/// Networking: TCP, UDP and Unix sockets on the reactor.
pub mod net {
    pub use overlap_net::*;
}

/// Pipes and FIFOs.
pub mod pipe {
    pub use overlap_pipe::*;
}

/// Child processes: async stdio pipes, and exits awaited through a pidfd.
pub mod process {
    pub use overlap_pipe::process::*;
}

/// Files and directories, with blocking work on the pool.
pub mod fs {
    pub use overlap_fs::*;
}

/// The README's usage example, compiled and run as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
