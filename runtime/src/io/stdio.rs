//! `stdin`, `stdout`, `stderr`: the process's standard streams, with the blocking reads and
//! writes done on the blocking pool.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io::{self, Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Mutex, TryLockError};
use std::task::{ready, Context, Poll, Waker};

use futures_util::io::{AsyncRead, AsyncWrite};

use crate::blocking::completion::{completion, Receiver as Completion, Sender as CompletionSender};
use crate::blocking::spawn_blocking_or_error;
use crate::poison::lock;
use crate::task::JoinError;
use crate::RemoteJoinHandle;

/// How much one job reads or writes at most.
const CHUNK: usize = 64 * 1024;

/// How many accepted bytes one standard output stream holds unwritten, across all handles,
/// before a write waits: a stream nobody drains (a pipe whose reader stopped) holds at most
/// this plus one chunk in memory, however many handles write to it.
const QUEUE_CAP: usize = 1024 * 1024;

/// A job's failure to run as an I/O error (it panicked: the stream was in a bad state).
fn job_failed(e: JoinError) -> io::Error {
    io::Error::other(format!("standard stream job failed: {e}"))
}

/// The process's standard input, read on the blocking pool: see [`stdin`].
pub struct Stdin {
    state: ReadState,
}

/// What a read job hands back: what `read` said, and the buffer.
type ReadDone = (io::Result<usize>, Vec<u8>);

enum ReadState {
    /// Bytes read ahead, from `pos` on.
    Idle { buf: Vec<u8>, pos: usize },
    /// A job reads; it puts what it read in `done` before it ends. The slot, not the
    /// handle, carries the result, and wakes whichever task polled it last, under whatever
    /// runtime: a job that outlives its runtime (which cancels the handle) loses nothing, as
    /// the bytes it reads reach the next read, under a later runtime (or after a chain of
    /// them, each ended while it waited). The handle tells, once `done` is empty and closed,
    /// why the job never read.
    Busy {
        job: RemoteJoinHandle<io::Result<()>>,
        done: Completion<ReadDone>,
    },
}

/// The process's standard input as an `AsyncRead`, for line filters, REPLs and protocols
/// spoken over stdio.
///
/// Standard input may be a terminal, a pipe or a file, none of which overlap may switch to
/// non-blocking mode (the open file description is shared with other processes), so each
/// read runs as a job on the blocking pool, fetching up to 64 KiB. If another process did
/// make it non-blocking, the job waits for input with `poll(2)` rather than returning
/// `WouldBlock` (the standard output streams do the same for room). Wrap it in
/// [`BufReader`](futures_util::io::BufReader) to read lines. A process started without
/// standard input (fd 0 closed, as by a shell's `<&-`) reads end of file, as with std's. A
/// read error keeps its kind and names the stream (`failed to read standard input: ...`);
/// `overlap::io::raw_os_error` reads its OS code.
///
/// Dropping a future reading from it (a timeout) loses nothing: the read in flight stays
/// with the `Stdin`, and the next read returns its bytes, also under a later runtime (a
/// second `block_on`, whether or not the first one still lives): the job's result goes
/// straight to whoever awaits it. A read in flight cannot be called back, though: dropping
/// the `Stdin` itself while the job waits for input leaves that job blocked until input
/// comes, and the bytes it then reads are lost. Keep one `Stdin` for the program's life.
///
/// # Panics
/// The first read panics outside a runtime and outside a blocking job (inside one, the job
/// goes to the pool of [`Handle::current`](crate::Handle::current)).
///
/// ```no_run
/// use overlap::io::{AsyncBufReadExt, BufReader};
/// use overlap::stream::StreamExt;
///
/// overlap::block_on(async {
///     let mut lines = BufReader::new(overlap::io::stdin()).lines();
///     while let Some(line) = lines.next().await {
///         println!("{}", line?.to_uppercase());
///     }
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub fn stdin() -> Stdin {
    Stdin {
        state: ReadState::Idle {
            buf: Vec::new(),
            pos: 0,
        },
    }
}

impl AsyncRead for Stdin {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if out.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // Each call spends a unit of the task's budget, as a `File`'s does: a loop of small
        // reads served from the read-ahead lets other tasks run. A call that waits for the
        // read job gives it back.
        let this = self.get_mut();
        crate::coop::budgeted(cx, |cx| loop {
            match &mut this.state {
                ReadState::Idle { buf, pos } if *pos < buf.len() => {
                    return Poll::Ready(Ok(super::copy_read_ahead(buf, pos, out)));
                }
                ReadState::Idle { buf, .. } => {
                    let mut buf = std::mem::take(buf);
                    buf.resize(CHUNK, 0);
                    let (tx, done) = completion();
                    let job = spawn_blocking_or_error(move || {
                        let n = read_stdin(&mut buf)
                            .map_err(|e| naming_stream(e, "read", "standard input"));
                        tx.send((n, buf));
                    });
                    this.state = ReadState::Busy { job, done };
                }
                ReadState::Busy { job, done } => {
                    let (n, mut buf) = match ready!(Pin::new(done).poll(cx)) {
                        Some(res) => res,
                        None => {
                            // The job ended without reading: it never ran, or it panicked.
                            let joined = ready!(Pin::new(job).poll(cx));
                            // The handle is spent: the next read starts a new job.
                            this.state = ReadState::Idle {
                                buf: Vec::new(),
                                pos: 0,
                            };
                            match joined {
                                Err(e) if e.is_panic() => return Poll::Ready(Err(job_failed(e))),
                                // No pool thread could be started: nothing was read.
                                Ok(Err(e)) => return Poll::Ready(Err(e)),
                                // Dropped before it ran (its runtime ended): nothing was
                                // read, read now.
                                _ => continue,
                            }
                        }
                    };
                    let n = match n {
                        Ok(n) => n,
                        Err(e) => {
                            buf.clear();
                            this.state = ReadState::Idle { buf, pos: 0 };
                            return Poll::Ready(Err(e));
                        }
                    };
                    buf.truncate(n);
                    this.state = ReadState::Idle { buf, pos: 0 };
                    if n == 0 {
                        return Poll::Ready(Ok(0));
                    }
                }
            }
        })
    }
}

impl fmt::Debug for Stdin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stdin").finish_non_exhaustive()
    }
}

/// Which standard stream a [`Writer`] writes to.
#[derive(Clone, Copy, Debug)]
enum Target {
    Stdout,
    Stderr,
}

/// A chunk a `write` accepted, waiting for its turn, and where its outcome goes.
struct Accepted {
    buf: Vec<u8>,
    done: CompletionSender<WriteDone>,
    /// Held until the chunk is written, whichever job writes it, so that the runtime's drop
    /// waits for it (up to 10 s), as tokio's waits for its blocking writes.
    _durable: Option<crate::DurableWork>,
}

/// One standard output stream's accepted chunks, in the order the writes accepted them,
/// across all handles and runtimes. Each write's job writes every chunk queued so far, in
/// that order, unless another job is at it (which then writes its chunk too), so a later
/// `stdout()` handle's bytes never overtake an earlier one's still in flight: with a job per
/// write, the pool could run them in any order.
struct Pending {
    queue: Mutex<Queue>,
    /// Held by the one job taking chunks from `queue` and writing them.
    writing: Mutex<()>,
}

/// What [`Pending::queue`] guards.
struct Queue {
    chunks: VecDeque<Accepted>,
    /// The bytes accepted and not yet written: those of `chunks` and of the chunk being
    /// written. A write waits while this is at least [`QUEUE_CAP`].
    unwritten: usize,
    /// The tasks whose write found the queue full, all woken (outside the lock) when a
    /// chunk is done. They may belong to different runtimes and threads; a waiter that gave
    /// up leaves its waker here until then, which wakes it for nothing.
    waiters: Vec<Waker>,
}

static STDOUT_PENDING: Pending = Pending::new();
static STDERR_PENDING: Pending = Pending::new();

impl Pending {
    const fn new() -> Pending {
        Pending {
            queue: Mutex::new(Queue {
                chunks: VecDeque::new(),
                unwritten: 0,
                waiters: Vec::new(),
            }),
            writing: Mutex::new(()),
        }
    }
}

impl Target {
    fn pending(self) -> &'static Pending {
        match self {
            Target::Stdout => &STDOUT_PENDING,
            Target::Stderr => &STDERR_PENDING,
        }
    }

    /// Queues a chunk a `write` accepted, unless the queue is full: then `cx`'s waker is
    /// kept, to be woken once a chunk is done, and the caller returns `Pending` having
    /// accepted nothing. Once queued, a job must run [`write_pending`](Self::write_pending).
    /// `buf` makes the chunk: it is called only if the chunk is taken.
    fn poll_accept(
        self,
        cx: &mut Context<'_>,
        buf: impl FnOnce() -> Vec<u8>,
    ) -> Poll<Completion<WriteDone>> {
        // Held only for the check and the push, never across a write: this runs on the
        // runtime's thread.
        let mut queue = lock(&self.pending().queue);
        if queue.unwritten >= QUEUE_CAP {
            if !queue.waiters.iter().any(|w| w.will_wake(cx.waker())) {
                queue.waiters.push(cx.waker().clone());
            }
            return Poll::Pending;
        }
        let (done, rx) = completion();
        let chunk = Accepted {
            buf: buf(),
            done,
            _durable: crate::durable_work(),
        };
        queue.unwritten += chunk.buf.len();
        queue.chunks.push_back(chunk);
        Poll::Ready(rx)
    }

    /// Counts `len` bytes written (or failed) and wakes the writes waiting for room.
    fn chunk_done(self, len: usize) {
        let waiters = {
            let mut queue = lock(&self.pending().queue);
            queue.unwritten -= len;
            std::mem::take(&mut queue.waiters)
        };
        // Outside the lock: a waker may run code of its own, or take this lock again. One
        // that panics (a user's own) costs the others nothing: each is called.
        for waker in waiters {
            crate::unwind::contain(|| waker.wake());
        }
    }

    /// Writes every accepted chunk, in order, sending each its outcome; returns at once if
    /// another job is writing. That job checks the queue again after it stops writing,
    /// which is after this one found it busy, so it sees this job's chunk (queued before
    /// this job ran): no chunk is left behind.
    fn write_pending(self) {
        let pending = self.pending();
        loop {
            let _writing = match pending.writing.try_lock() {
                Ok(guard) => guard,
                Err(TryLockError::Poisoned(e)) => e.into_inner(),
                Err(TryLockError::WouldBlock) => return,
            };
            loop {
                let Some(chunk) = lock(&pending.queue).chunks.pop_front() else {
                    break;
                };
                let len = chunk.buf.len();
                // Caught, so that the chunks queued behind it still get written: a panic
                // drops `done` unsent, and its writer hears the write failed.
                let res = catch_unwind(AssertUnwindSafe(|| self.write_all(&chunk.buf)));
                // Sending the outcome (or dropping `done` unsent) wakes the writer: a waker
                // that panics (a user's own) must cost neither the chunks queued behind
                // this one nor the room count, so that is caught too.
                crate::unwind::contain(move || match res {
                    Ok(res) => {
                        chunk.done.send((res, chunk.buf));
                    }
                    Err(_) => drop(chunk),
                });
                self.chunk_done(len);
            }
            drop(_writing);
            if lock(&pending.queue).chunks.is_empty() {
                return;
            }
        }
    }

    /// Writes `bytes` to the stream; an error names the stream.
    fn write_all(self, bytes: &[u8]) -> io::Result<()> {
        let res = match self {
            Target::Stdout => {
                // Locked for order with `println!`, whose buffered bytes go first. Ours go
                // straight to the fd, not through std's buffer: std keeps the bytes a failed
                // write left there and writes them once the stream works again, after this
                // job has reported them failed.
                let mut out = io::stdout().lock();
                flush_waiting(&mut out, 1)?;
                write_all_waiting(&mut RawFdWriter(1), 1, bytes)
            }
            Target::Stderr => write_all_waiting(&mut io::stderr().lock(), 2, bytes),
        };
        let stream = match self {
            Target::Stdout => "standard output",
            Target::Stderr => "standard error",
        };
        res.map_err(|e| naming_stream(e, "write", stream))
    }
}

/// `err` with the operation and the stream named in its message (`failed to write
/// standard output: No space left on device (os error 28)`), as fs errors name their path:
/// the kind is kept, and [`raw_os_error`](super::raw_os_error) reads the OS code.
fn naming_stream(err: io::Error, op: &'static str, stream: &'static str) -> io::Error {
    super::with_path_context(err, op, std::path::Path::new(stream), None)
}

/// Unbuffered writes to a standard stream's fd. A stream the process was started without
/// (the fd is not open: `EBADF`) takes every byte and drops it, as std's own writers (so
/// ours to stderr) do: a program run with `>&-` is not failed by its output.
struct RawFdWriter(i32);

impl Write for RawFdWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match crate::sys::fd::write(self.0, buf) {
            Err(e) if e.raw_os_error() == Some(libc::EBADF) => Ok(buf.len()),
            res => res,
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One read of stdin (on a pool thread). The fd is shared with other processes, one of
/// which may have made it non-blocking: then `EAGAIN` means waiting for input, here.
fn read_stdin(buf: &mut [u8]) -> io::Result<usize> {
    let mut stdin = io::stdin().lock();
    loop {
        match stdin.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                crate::sys::poll::wait_fd(0, libc::POLLIN)?
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            res => return res,
        }
    }
}

/// `write_all` that waits out `EAGAIN` on a standard stream made non-blocking by another
/// process (std's `write_all` gives up, and the caller cannot tell how much went out).
/// A `write` that fails accepted nothing, so the retry resends exactly the rest.
fn write_all_waiting(out: &mut impl Write, fd: i32, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match out.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                crate::sys::poll::wait_fd(fd, libc::POLLOUT)?
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `flush` that waits out `EAGAIN`, as [`write_all_waiting`] does.
fn flush_waiting(out: &mut impl Write, fd: i32) -> io::Result<()> {
    loop {
        match out.flush() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                crate::sys::poll::wait_fd(fd, libc::POLLOUT)?
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            res => return res,
        }
    }
}

/// A standard output stream written on the blocking pool, one job at a time.
struct Writer {
    target: Target,
    state: WriteState,
}

/// What a write job hands back: what `write_all` said, and the buffer.
type WriteDone = (io::Result<()>, Vec<u8>);

enum WriteState {
    Idle(Vec<u8>),
    /// A job writes; it puts the outcome in `done` once the bytes are out. The slot, not the
    /// job's handle, carries it, and wakes whichever task polled it last, under whatever
    /// runtime: a job that outlives its runtime (which cancels its handle) still writes, and
    /// the next write or flush, also under a later runtime (or a chain of them, each ended
    /// while it waited), waits for it, so the bytes keep their order and are not reported as
    /// failed.
    Busy(Completion<WriteDone>),
}

impl Writer {
    fn new(target: Target) -> Writer {
        Writer {
            target,
            state: WriteState::Idle(Vec::new()),
        }
    }

    /// Waits for the job in flight, if any; reports its error.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let WriteState::Busy(done) = &mut self.state else {
            return Poll::Ready(Ok(()));
        };
        // `None`: the job dropped its sender unsent, so its write panicked.
        let (res, buf) = ready!(Pin::new(done).poll(cx)).unwrap_or_else(|| {
            let e = io::Error::other("standard stream job failed: the write panicked");
            (Err(e), Vec::new())
        });
        self.state = WriteState::Idle(buf);
        Poll::Ready(res)
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        // An empty write neither waits for the job in flight (the stream may have no room
        // for a long time) nor takes its error, which the next write or flush reports.
        if bytes.is_empty() {
            return Poll::Ready(Ok(0));
        }
        ready!(self.poll_idle(cx))?;
        let n = bytes.len().min(CHUNK);
        if crate::executor::with_current(|_| ()).is_none() {
            panic!(
                "overlap::io::stdout/stderr written outside of a runtime's thread: write from a \
                 future run by `overlap::block_on` or `Runtime::block_on`"
            );
        }
        // A full queue: wait, having accepted nothing, so dropping this write loses nothing.
        let WriteState::Idle(spare) = &mut self.state else {
            unreachable!("poll_idle returned Ready, so no job is in flight");
        };
        let done = ready!(self.target.poll_accept(cx, || {
            let mut buf = std::mem::take(spare);
            buf.clear();
            buf.extend_from_slice(&bytes[..n]);
            buf
        }));
        // The outcome comes through `done`, so no handle is kept. The shared clean-up path
        // is what these bytes need: queued on the pool, written at once on this thread if no
        // pool thread can start, and queued again if the runtime's shutdown drops the job
        // unrun (the chunk's `DurableWork` makes that shutdown wait for it).
        let target = self.target;
        crate::spawn_blocking_detached(move || target.write_pending());
        self.state = WriteState::Busy(done);
        Poll::Ready(Ok(n))
    }
}

macro_rules! std_writer {
    ($name:ident, $make:ident, $target:ident, $what:literal) => {
        #[doc = concat!("The process's ", $what, ", written on the blocking pool: see [`", stringify!($make), "`].")]
        pub struct $name(Writer);

        #[doc = concat!(
            "The process's ", $what, " as an `AsyncWrite`.\n\n",
            "A write copies up to 64 KiB into a job for the blocking pool and returns at once; ",
            "the next write (or `flush`) waits for that job, so bytes reach the stream in order ",
            "and an error comes back from the next call (it keeps its kind and names the ",
            "stream: `failed to write ", $what, ": ...`; `overlap::io::raw_os_error` reads its ",
            "OS code). `flush` waits until every accepted ",
            "byte is written. Accepted bytes are not lost if the handle is dropped or the ",
            "runtime ends unflushed: as with tokio, the runtime's drop waits (up to 10 s) for ",
            "the write in flight. `flush` to see its error. A handle outliving its runtime goes ",
            "on under the next one: its next write waits for the one in flight, still in order. ",
            "Writes through different handles (a new `", stringify!($make), "()` per line) also ",
            "reach the stream in the order they were accepted, unlike tokio's.\n\n",
            "Bytes accepted and not yet written are bounded across all handles to the stream: ",
            "once 1 MiB is waiting (a pipe whose reader stopped reading), a write waits, ",
            "accepting nothing, until a chunk is out, so at most 1 MiB plus one 64 KiB chunk is ",
            "held in memory. Dropping a waiting write loses nothing and sends nothing.\n\n",
            "A write that returns spends a unit of the task's cooperative budget (one ",
            "that waits spends none), so a write loop lets the other tasks run even when no ",
            "write ever has to wait.\n\n",
            "An empty write returns `Ok(0)` at once, without waiting for the write in flight. ",
            "A stream the process was started without (its fd closed, as by a shell's `>&-`) ",
            "takes every write and drops the bytes, as std's and tokio's do.\n\n",
            "`close` is a `flush`: the process's stream stays open and later writes go on, as ",
            "with tokio's `shutdown`.\n\n",
            "# Panics\nThe first write panics outside a runtime's own thread, including inside [`Handle::block_on`](crate::Handle::block_on) on a blocking-pool thread.\n\n",
            "```\nuse overlap::io::AsyncWriteExt;\n\noverlap::block_on(async {\n",
            "    let mut out = overlap::io::", stringify!($make), "();\n",
            "    out.write_all(b\"hello from overlap\\n\").await?;\n",
            "    out.flush().await\n})\n.unwrap();\n```"
        )]
        pub fn $make() -> $name {
            $name(Writer::new(Target::$target))
        }

        impl AsyncWrite for $name {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bytes: &[u8],
            ) -> Poll<io::Result<usize>> {
                // The job in flight is often done by the next write, which then never waits:
                // a write loop must still let the other tasks run.
                let this = self.get_mut();
                crate::coop::budgeted(cx, |cx| this.0.poll_write(cx, bytes))
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.get_mut().0.poll_idle(cx)
            }

            fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.get_mut().0.poll_idle(cx)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    };
}

std_writer!(Stdout, stdout, Stdout, "standard output");
std_writer!(Stderr, stderr, Stderr, "standard error");
