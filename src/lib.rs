//! # overlap
//!
//! Overlapped-style asynchronous I/O for Linux — for sockets and pipes, not only files —
//! built on its own epoll reactor: non-blocking descriptors, an event loop, and `async`/`await`
//! on top.
//!
//! - [`block_on`], [`Runtime`], [`spawn`] (tasks need not be `Send`), [`JoinHandle`],
//!   [`yield_now`], [`AsyncFd`] for any pollable fd;
//! - [`time`]: sleeps, timeouts, intervals; [`signal`]: Unix signals as events;
//!   [`sync`]: channels and locks between tasks (`mpsc`, `oneshot`, `Mutex`, …), with no
//!   atomics;
//! - [`net`]: TCP, UDP and Unix sockets; [`pipe`]: pipes and FIFOs; [`process`]: child
//!   processes; [`fs`]: files on the blocking pool, [`spawn_blocking`] for any other
//!   blocking work;
//! - [`io`]: the futures-io traits and helpers, re-exported so no extra import is needed;
//!   [`future`] and [`stream`] likewise re-export the combinators of `futures-util`;
//! - [`codec`]: tokio-util's framing (`Decoder`/`Encoder`, `Framed`, lines and
//!   length-delimited codecs) over any of those streams, and [`udp::UdpFramed`] over a UDP socket;
//!   [`either::Either`] is tokio-util's `Either`, one type for either of two streams;
//! - [`Handle`]: spawning onto a runtime from other threads.
//!
//! # Getting started
//! Put `#[overlap::main]` on an `async fn main` (or `#[overlap::test]` on an async test), or
//! call [`block_on`] from synchronous code; build a [`Runtime`] to choose settings, or to run
//! several `block_on` calls on one runtime. Import the extension traits from [`io`]
//! (`AsyncReadExt`, `AsyncWriteExt`, …) and [`stream::StreamExt`].
//!
//! ```
//! overlap::block_on(async {
//!     let task = overlap::spawn(async { "hello from a task" });
//!     assert_eq!(task.await.unwrap(), "hello from a task");
//! });
//! ```
//!
//! # Coming from tokio
//! overlap is like tokio's current-thread runtime, one runtime per thread, with these
//! differences (the README has a table, name by name):
//!
//! - Tasks need not be `Send`: [`spawn`] is tokio's `spawn_local`, without a `LocalSet`.
//!   From another thread, spawn through a [`Handle`].
//! - The [`sync`] types are `Rc`-based and not `Send`: they connect the tasks of one
//!   runtime. Between threads (a [`spawn_blocking`] job and a task, with `blocking_send` and
//!   `blocking_recv`), use [`sync::mpsc::cross_thread`], whose ends are `Send`, and for a
//!   limit shared across threads [`sync::cross_thread::Semaphore`]. I/O objects (sockets, pipes, [`AsyncFd`]) stay with the runtime that made
//!   them, and the free [`block_on`] builds a new runtime on each call.
//! - I/O types implement the futures-io `AsyncRead`/`AsyncWrite` (`poll_close` for
//!   `poll_shutdown`, `&mut [u8]` for `ReadBuf`), [`join!`] is futures-util's, and
//!   [`select!`] takes tokio's syntax (and futures-util's). tokio's number helpers
//!   (`read_u32`, `write_u16_le`, …) are on [`io::AsyncReadIntExt`]/[`io::AsyncWriteIntExt`].
//! - Dropping a [`Runtime`] does not wait for [`spawn_blocking`] jobs, except overlap's own
//!   file and stdout/stderr writes.
//!
//! Each async method that a `select!` or a timeout may drop says whether that loses
//! anything ("cancel-safe"); the module docs of [`net`], [`pipe`], [`sync`], [`fs`] and
//! [`time`] give the rule for the whole module.
//!
//! # Coming from Windows overlapped I/O
//! An overlapped `ReadFile` or `WSARecv` hands the kernel a buffer and returns at once; the
//! completion comes later, through a completion port. Linux sockets and pipes work by
//! readiness instead: epoll says when an fd can be read without blocking, and the read is
//! made then. overlap gives the overlapped way of working on top of that: each operation
//! is a future, many are in flight at once on one thread, and the [`Runtime`] is the
//! completion port that finishes them. The README maps the Windows calls one by one.
//!
//! - Awaiting an operation is `GetOverlappedResult`; [`join!`], [`select!`] and
//!   [`JoinSet`] wait for several, as `WaitForMultipleObjects` does.
//! - Dropping the future is `CancelIoEx`, and it is final: a socket or pipe read either
//!   completed (and its bytes were handed over) or never took any, and the kernel never
//!   touches the buffer afterwards, so no byte is lost and the buffer is free at once. File
//!   jobs run on in the background (see [`fs`]'s cancellation rules).
//! - The future borrows its buffer, so the rule that an overlapped buffer must outlive its
//!   operation is checked by the compiler.
//!
//! ```
//! use std::time::Duration;
//! use overlap::io::{AsyncReadExt, AsyncWriteExt};
//!
//! overlap::block_on(async {
//!     let (mut tx, mut rx) = overlap::pipe::pipe()?;
//!     let (mut a, mut b) = overlap::net::UnixStream::pair()?;
//!     // Two reads in flight at once on one thread, as two OVERLAPPED reads would be,
//!     // completed by the writes that follow.
//!     let (mut from_pipe, mut from_socket) = ([0u8; 4], [0u8; 6]);
//!     let (r1, r2, w) = overlap::join!(
//!         rx.read_exact(&mut from_pipe),
//!         b.read_exact(&mut from_socket),
//!         async {
//!             tx.write_all(b"pipe").await?;
//!             a.write_all(b"socket").await
//!         },
//!     );
//!     (r1?, r2?, w?);
//!     assert_eq!((&from_pipe, &from_socket), (b"pipe", b"socket"));
//!
//!     // CancelIoEx: a read given up after 10 ms. Nothing was lost: the byte sent
//!     // afterwards is the next one read.
//!     let mut one = [0u8; 1];
//!     let cut = overlap::time::timeout(Duration::from_millis(10), rx.read(&mut one)).await;
//!     assert!(cut.is_err());
//!     tx.write_all(b"!").await?;
//!     rx.read_exact(&mut one).await?;
//!     assert_eq!(&one, b"!");
//!     std::io::Result::Ok(())
//! })
//! .unwrap();
//! ```

#[doc(hidden)]
pub use overlap_runtime::block_on_start_paused;
pub use overlap_runtime::{
    block_on, codec, coop_poll_proceed, metrics, own_waits, signal, spawn, spawn_blocking, sync,
    time, try_spawn, yield_now, AbortHandle, AsyncFd, AsyncFdReadyGuard, AsyncFdReadyMutGuard,
    AsyncFdTryNewError, Builder, Direction, Handle, JoinError, JoinHandle, JoinSet, OwnWaits,
    Ready, ReadyEvent, Registered, RemoteJoinHandle, Runtime, RuntimeGuard, RuntimeMetrics,
    TryIoError, YieldNow,
};

/// Tasks, under the names tokio's `task` module uses, for code moving over:
/// `task::spawn_local` is [`spawn`] (every overlap task may be `!Send`).
///
/// ```
/// use overlap::task;
///
/// overlap::block_on(async {
///     let mut set = task::JoinSet::new();
///     set.spawn(async { 1 });
///     let local = task::spawn_local(async { 2 });
///     task::yield_now().await;
///     let blocking = task::spawn_blocking(|| 3);
///     let sum = set.join_next().await.unwrap().unwrap() + local.await.unwrap() + blocking.await.unwrap();
///     assert_eq!(sum, 6);
/// });
/// ```
///
/// tokio's `LocalSet` has no counterpart, every task being local already: a
/// `local.run_until(fut)` is `fut` itself, `local.block_on(&rt, fut)` is
/// [`Runtime::block_on`], and `local.spawn_local(fut)` is [`spawn`], or
/// [`JoinSet::spawn`](task::JoinSet::spawn) to keep the set's other two traits: dropping a
/// `JoinSet` aborts its tasks, as dropping a `LocalSet` drops them, and
/// [`join_all`](task::JoinSet::join_all) waits for all of them, as `local.await` does. The
/// tasks of a `LocalSet` run only while it is driven; overlap's run whenever their runtime
/// does (during any of its `block_on` calls).
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use overlap::task::JoinSet;
///
/// // tokio: let local = LocalSet::new(); local.spawn_local(..) twice; local.await;
/// let rt = overlap::Runtime::new().unwrap();
/// let log = Rc::new(RefCell::new(Vec::new()));
/// let mut local = JoinSet::new();
/// rt.block_on(async {
///     for name in ["first", "second"] {
///         let log = log.clone(); // an Rc: the tasks are not Send
///         local.spawn(async move { log.borrow_mut().push(name) });
///     }
///     local.join_all().await;
/// });
/// assert_eq!(*log.borrow(), ["first", "second"]);
/// ```
pub mod task {
    pub use overlap_runtime::task_id::{id, try_id, Id};
    pub use overlap_runtime::{
        consume_budget, spawn, spawn as spawn_local, spawn_blocking, task_local, try_spawn,
        unconstrained, yield_now, AbortHandle, AbortOnDropHandle, AccessError, JoinError,
        JoinHandle, JoinNext, JoinNextWithId, JoinSet, LocalKey, RemoteJoinHandle, TaskLocalFuture,
        TaskTracker, TaskTrackerToken, TaskTrackerWaitFuture, TrackedFuture, Unconstrained,
        YieldNow,
    };

    /// tokio's `task::coop`: the cooperative budget from a library's side. Each task poll
    /// gets 128 units; every ready operation (I/O, a channel, a lock, a timer) spends one,
    /// and once they are spent the next one returns `Pending` and the task goes to the
    /// back of the queue, so that one busy task cannot starve the others or the reactor.
    pub mod coop {
        pub use overlap_runtime::coop_api::{
            cooperative, has_budget_remaining, poll_proceed, Cooperative, RestoreOnPending,
        };
        pub use overlap_runtime::{consume_budget, unconstrained, Unconstrained};
    }
}

/// The runtime, under the names tokio's `runtime` module uses, for code moving over:
/// `Builder::new_current_thread().enable_all().build()` gives a [`Runtime`] (every overlap
/// runtime is a current-thread one, its reactor and timers always on), and
/// [`Runtime::enter`]'s guard is also named `EnterGuard`.
///
/// ```
/// use overlap::runtime::{Builder, Handle};
///
/// let rt = Builder::new_current_thread().enable_all().build().unwrap();
/// let _guard = rt.enter();
/// let task = Handle::current().spawn(async { "spawned" });
/// assert_eq!(rt.block_on(task).unwrap(), "spawned");
/// ```
pub mod runtime {
    pub use overlap_runtime::{
        Builder, Handle, RemoteJoinHandle, Runtime, RuntimeGuard, RuntimeGuard as EnterGuard,
        RuntimeMetrics,
    };
}

/// Asynchronous I/O traits and helpers (re-exported from `futures-util`), plus
/// [`copy_bidirectional`](io::copy_bidirectional) for proxies.
///
/// Every overlap byte stream (TCP and Unix streams and their halves, pipe ends, `File`,
/// stdio, [`DuplexStream`](io::DuplexStream), [`Unblock`](io::Unblock)) implements
/// [`AsyncRead`](io::AsyncRead)/[`AsyncWrite`](io::AsyncWrite) from futures-io, so these
/// extension traits and adapters work on them directly. tokio's number helpers for binary
/// protocols (`read_u32`, `read_i64_le`, `write_u16`, `write_f64_le`, …) are the extension
/// traits [`AsyncReadIntExt`](io::AsyncReadIntExt) and
/// [`AsyncWriteIntExt`](io::AsyncWriteIntExt), to import next to futures' `AsyncReadExt` and
/// `AsyncWriteExt`; tokio's `read_buf` (a read appended to a `BytesMut` or `Vec<u8>`) is
/// [`AsyncReadBufExt`](io::AsyncReadBufExt), and its `write_buf`/`write_all_buf` (writes
/// that drop what they wrote from a `BytesMut`, `VecDeque<u8>`, `Cursor` or `&[u8]`)
/// [`AsyncWriteBufExt`](io::AsyncWriteBufExt).
///
/// For a large body, prefer [`io::read_to_end`] to `AsyncReadExt::read_to_end`: futures-util's
/// method zero-fills the vector's whole spare capacity again after every `Pending`, which
/// makes reading a long socket stream quadratic.
/// Likewise prefer [`io::read_to_string`] to `AsyncReadExt::read_to_string`, which on bytes
/// that are not UTF-8 empties the string it was given, where std's leaves it as it was.
///
/// The adapters' types are here too, to name them in a struct: `lines()` on a buffered
/// reader is a [`Stream`](crate::stream::Stream) of `io::Result<String>` (tokio's
/// `next_line()` is `lines.next().await` here, with [`StreamExt`](crate::stream::StreamExt)).
/// Like `next_line`, `lines.next()` is cancel-safe: the part of a line read before it was
/// dropped stays in the `Lines`, and the next call returns the whole line.
/// Unlike tokio's, futures-util's `Lines` cannot give its reader back (no `into_inner`), and
/// neither bounds a line's length: a server that takes its stream back (for a TLS upgrade)
/// or must not hold an endless line reads with `(&mut reader).take(limit).read_until(..)`
/// on the `BufReader` itself, whose `buffer()` shows what it read ahead, or frames its
/// stream with [`codec::LinesCodec::new_with_max_length`] in a [`codec::Framed`], whose
/// `into_parts` gives the stream back with the bytes read ahead.
///
/// ```
/// use std::time::Duration;
/// use overlap::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
/// use overlap::net::{OwnedReadHalf, TcpListener, TcpStream};
/// use overlap::stream::StreamExt;
///
/// struct Peer {
///     lines: Lines<BufReader<OwnedReadHalf>>,
/// }
///
/// overlap::block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let mut client = TcpStream::connect(listener.local_addr()?).await?;
///     client.write_all(b"one\ntwo\n").await?;
///     let (read, _write) = listener.accept().await?.0.into_split();
///     let mut peer = Peer { lines: BufReader::new(read).lines() };
///     assert_eq!(peer.lines.next().await.transpose()?.as_deref(), Some("one"));
///     assert_eq!(peer.lines.next().await.transpose()?.as_deref(), Some("two"));
///
///     client.write_all(b"thr").await?;
///     let cut = overlap::time::timeout(Duration::from_millis(1), peer.lines.next()).await;
///     assert!(cut.is_err(), "half a line: still waiting");
///     client.write_all(b"ee\n").await?;
///     assert_eq!(peer.lines.next().await.transpose()?.as_deref(), Some("three"));
///     overlap::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub mod io {
    pub use futures_util::io::{
        empty, repeat, sink, AllowStdIo, AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt,
        AsyncSeek, AsyncSeekExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter, Chain, Cursor,
        Empty, IoSlice, IoSliceMut, LineWriter, Lines, ReadHalf, Repeat, ReuniteError, Sink, Take,
        Window, WriteHalf,
    };
    pub use overlap_runtime::io::{
        copy, copy_bidirectional, copy_bidirectional_with_sizes, copy_buf, duplex, join,
        raw_os_error, read_to_end, read_to_string, simplex, split, stderr, stdin, stdout,
        AsyncReadBufExt, AsyncReadIntExt, AsyncWriteBufExt, AsyncWriteIntExt, BufStream,
        DuplexStream, InspectReader, InspectWriter, Interest, Join, ReadBuf, ReadBufTarget,
        ReadInt, ReadToEnd, ReadToString, Ready, SimplexReader, SimplexStream, SimplexWriter,
        Stderr, Stdin, Stdout, Unblock, WriteAllBuf, WriteBuf, WriteBufSource, WriteInt,
    };

    /// [`AsyncFd`](crate::AsyncFd) and its guards and errors under tokio's path,
    /// `io::unix::…`, for code moving over. One difference: a guard's `try_io` hands its
    /// closure the inner value (`&T`), where tokio's hands it the `AsyncFd` (so tokio's
    /// `inner.get_ref().read(buf)` is `inner.read(buf)` here).
    pub mod unix {
        pub use overlap_runtime::{
            AsyncFd, AsyncFdReadyGuard, AsyncFdReadyMutGuard, AsyncFdTryNewError, TryIoError,
        };
    }
    /// tokio-util's `io::ReaderStream`: a reader as a stream of its chunks.
    pub use overlap_runtime::codec::ReaderStream;
    /// std's error and seek types, so `overlap::io` names what its traits use (as
    /// `tokio::io` does).
    pub use std::io::{Error, ErrorKind, Result, SeekFrom};
}

/// Future combinators (re-exported from `futures-util`): [`select`](future::select) and
/// [`join`](future::join) of two futures, [`FutureExt`](future::FutureExt), boxing, and more.
///
/// ```
/// use std::time::Duration;
/// use overlap::future::{select, Either};
///
/// overlap::block_on(async {
///     let slow = std::pin::pin!(overlap::time::sleep(Duration::from_secs(60)));
///     let fast = std::pin::pin!(async { "fast" });
///     match select(slow, fast).await {
///         Either::Left(_) => unreachable!("the sleep cannot win"),
///         Either::Right((out, _unfinished_sleep)) => assert_eq!(out, "fast"),
///     }
/// });
/// ```
pub mod future {
    pub use futures_util::future::*;
}

/// Stream combinators (re-exported from `futures-util`): [`StreamExt`](stream::StreamExt)
/// for the streams overlap returns (`TcpListener::incoming`, `Interval`, `Signal`, `ReadDir`,
/// `mpsc::Receiver`, …), and stream constructors; and what tokio-stream adds:
/// [`StreamMap`](stream::StreamMap), the timer adapters of
/// [`StreamTimeExt`](stream::StreamTimeExt) (`timeout`, `timeout_repeating`, `throttle`,
/// `chunks_timeout`, with tokio-stream's `merge` and `map_while`) and the
/// [`wrappers`](stream::wrappers).
///
/// ```
/// use overlap::net::{TcpListener, TcpStream};
/// use overlap::stream::StreamExt;
///
/// overlap::block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let addr = listener.local_addr()?;
///     let client = overlap::spawn(TcpStream::connect(addr));
///     let mut incoming = listener.incoming();
///     let accepted = incoming.next().await.expect("incoming never ends")?;
///     assert_eq!(accepted.peer_addr()?, client.await.unwrap()?.local_addr()?);
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub mod stream {
    pub use futures_util::stream::*;
    pub use overlap_runtime::stream::{
        ChunksTimeout, MapWhile, Merge, StreamMap, StreamTimeExt, Throttle, Timeout,
        TimeoutRepeating,
    };

    /// tokio-stream's wrappers: the channels, the interval, the signal, the listeners, a
    /// directory's entries and a reader's lines as streams (most of them are streams
    /// already; the wrappers carry tokio-stream's names), and [`BroadcastStream`](wrappers::BroadcastStream) and
    /// [`WatchStream`](wrappers::WatchStream), which make the broadcast and watch receivers
    /// streams.
    pub mod wrappers {
        pub use overlap_fs::ReadDirStream;
        pub use overlap_net::{TcpListenerStream, UnixListenerStream};
        pub use overlap_runtime::stream::wrappers::*;
    }
}

/// tokio-util's `either` module: [`Either`](either::Either), a value of one of two types
/// that is itself whatever both are, for one variable or field holding either of two
/// streams or futures.
///
/// It is futures-util's `Either` (also at [`overlap::future::Either`](crate::future::Either)),
/// under tokio-util's path. As tokio-util's, it is an `AsyncRead`, `AsyncBufRead`,
/// `AsyncWrite` and `AsyncSeek` when both sides are (the futures-io traits, as every overlap
/// stream), a `Stream` when both are streams of the same item, and a `Future` when both are
/// futures with the same output; it is also a `Sink`, and has futures-util's methods
/// (`as_pin_mut`, `factor_first`, `into_inner` when both sides are one type, …). Reach the
/// stream inside with `match` for what the traits do not cover (`try_read`, `peer_addr`).
///
/// A backend reached over TCP or a Unix socket, one type for both:
///
/// ```
/// use overlap::either::Either;
/// use overlap::io::{AsyncReadExt, AsyncWriteExt};
/// use overlap::net::{TcpListener, TcpStream, UnixStream};
///
/// overlap::block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let tcp = TcpStream::connect(listener.local_addr()?).await?;
///     let (mut tcp_peer, _) = listener.accept().await?;
///     let (unix, mut unix_peer) = UnixStream::pair()?;
///     let mut upstreams: Vec<Either<TcpStream, UnixStream>> =
///         vec![Either::Left(tcp), Either::Right(unix)];
///     for up in &mut upstreams {
///         up.write_all(b"ping").await?;
///     }
///     let mut buf = [0u8; 4];
///     tcp_peer.read_exact(&mut buf).await?;
///     unix_peer.read_exact(&mut buf).await?;
///     assert_eq!(&buf, b"ping");
///     unix_peer.write_all(b"pong").await?;
///     upstreams[1].read_exact(&mut buf).await?;
///     assert_eq!(&buf, b"pong");
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub mod either {
    pub use futures_util::future::Either;
}

/// A UDP socket framed by a codec: tokio-util's `udp` module (also at
/// `overlap::net::UdpFramed`).
pub mod udp {
    pub use overlap_net::UdpFramed;
}

/// Sinks (re-exported from `futures-util`): the `Sink` trait and `SinkExt`'s `send`,
/// `feed`, `send_all`, for [`sync::PollSender`] and the futures ecosystem's sinks.
pub mod sink {
    pub use futures_util::sink::*;
}

/// `#[overlap::main]` runs an `async fn main` on a runtime built for the current thread;
/// `#[overlap::test]` does the same for an `async fn` test.
///
/// ```
/// #[overlap::main]
/// async fn main() -> std::io::Result<()> {
///     let task = overlap::spawn(async { 6 * 7 });
///     assert_eq!(task.await?, 42);
///     Ok(())
/// }
/// ```
///
/// Each is the same as wrapping the body in [`block_on`]. A test or `main` takes no
/// arguments (another function under `#[overlap::main]` may, as with tokio's), and the
/// attribute only `start_paused = true|false` (as [`Builder::start_paused`]),
/// tokio's `flavor = "current_thread"`, and tokio's `crate = "path"` for a crate that reaches
/// overlap by another path than `::overlap` (`crate = "my_rt"` after `my_rt = { package =
/// "overlap", .. }` in `Cargo.toml`); for other runtime settings, build a [`Runtime`] with
/// [`Runtime::builder`] and call its `block_on`.
pub use overlap_macros::{main, test};
pub use overlap_runtime::task_local;

/// `join!`, `try_join!` and `pin_mut!`, from `futures-util`: wait for all of several futures
/// at once inside one task (for the first of them, [`select!`]).
///
/// ```
/// overlap::block_on(async {
///     let (a, b) = overlap::join!(async { 1 }, async { 2 });
///     assert_eq!(a + b, 3);
/// });
/// ```
pub use futures_util::{join, pin_mut, try_join};

mod select;

/// What macros expand to; not a public interface.
#[doc(hidden)]
pub mod __private {
    pub use crate::select::support as select;
    pub use overlap_macros::select_impl;
}

// The crates themselves, so that `overlap::net` and the others show their crate docs
// (the contracts: cancellation, drop) and not a one-line summary.
#[doc(inline)]
pub use overlap_fs as fs;
#[doc(inline)]
pub use overlap_net as net;
#[doc(inline)]
pub use overlap_pipe as pipe;
#[doc(inline)]
pub use overlap_pipe::process;

#[cfg(doctest)]
mod macro_misuse;

/// The README's usage example, compiled and run as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
