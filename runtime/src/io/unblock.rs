//! `Unblock`: any blocking `Read`/`Write` as `AsyncRead`/`AsyncWrite`, its calls run on the
//! blocking pool.

use std::fmt;
use std::future::Future;
use std::io::{self, Read, SeekFrom, Write};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use futures_util::io::{AsyncRead, AsyncWrite};

use crate::blocking::spawn_blocking_or_error;
use crate::poison::lock;
use crate::task::JoinError;
use crate::RemoteJoinHandle;

mod seek;

/// How much one job reads or writes by default.
const DEFAULT_CHUNK: usize = 64 * 1024;

/// The largest chunk: a read job allocates a whole chunk up front, so a larger one (up to
/// `usize::MAX`) would fail to allocate instead of reading.
const MAX_CHUNK: usize = 64 * 1024 * 1024;

/// What a job hands back: the value, its buffer, and what the call said.
type Done<T, R> = (T, Vec<u8>, io::Result<R>);

/// What a seek job hands back: as [`Done`], and whether the read-ahead bytes are still
/// valid (the seek failed without moving the value).
type SeekDone<T> = (T, Vec<u8>, io::Result<u64>, bool);

/// Runs a blocking reader or writer on the [blocking pool](crate::spawn_blocking), one job at
/// a time, as an `AsyncRead` or `AsyncWrite`: for what cannot be made non-blocking or
/// registered with epoll (a regular file through a library that wants `Read`, a serial port
/// opened by a blocking API, a decompressor over one).
///
/// Reads fetch up to a chunk (64 KiB by default) ahead, into one buffer that stays
/// allocated and initialized from job to job (only its first growth to a chunk is
/// zero-filled, not every read); a write copies up to a chunk into a job and returns at
/// once, and the next write or `flush` waits for that job, so bytes go out in order and an
/// error comes back from the next call. `flush` also runs the inner value's `flush`, and
/// keeps the bytes read ahead (it does not move the value). `close` flushes and then drops the inner value on the pool (as
/// `blocking::Unblock` does), so a pipe or socket it held is closed and its reader sees end
/// of file; later reads and writes fail with `BrokenPipe`, and `into_inner` with the same.
/// An empty read or write returns `Ok(0)` at once, whatever the state: it waits for no
/// job, and leaves a job's error for the next call that moves bytes.
/// A value whose `read` or `write` claims more bytes than it was given fails the call that
/// reports it with `InvalidData` (the value stays, for later calls); one whose `write`
/// accepts nothing, with `WriteZero`.
///
/// Use one `Unblock` either to read or to write: read-ahead moves the inner value's
/// position past the bytes returned so far, and a write drops the read-ahead bytes not yet
/// returned. With a [`Seek`](std::io::Seek) value, seek (`SeekFrom::Current(0)` will do) between reading
/// and writing: that puts the value's position back where the reader is.
///
/// # Seeking
/// For a [`Seek`](std::io::Seek) value, `Unblock` is `AsyncSeek`, as a buffered reader would be: a seek
/// first waits for the write in flight (and reports its error), then seeks in a job; a
/// `SeekFrom::Current` offset counts from the bytes returned so far, not from the end of
/// the read-ahead, which the seek drops (unless it fails without moving the value). So
/// the position after a seek is exact. A value that buffers writes itself (a
/// `BufWriter`) flushes them in its own `seek`. Call `poll_seek` again with the same
/// `pos` after `Pending`: a call with the `pos` of the seek in flight is taken as that
/// retry, so a seek dropped while pending and then asked for again counts once.
///
/// # Dropping and cancellation
/// A job in flight cannot be called back. A call's future dropped before it completes (a
/// `read` under a timeout, in a `select!`) loses nothing: its job stays with the `Unblock`,
/// and the next call takes the result (a read's bytes, a write's error). Dropping the
/// `Unblock` itself (or a future that owns it) while a job runs (or waits in the pool's
/// queue) lets that job finish on the pool, then drops the inner value there (one the runtime's shutdown drops unrun hands it to the pool
/// to drop; one that finished before the drop, its result not yet taken by a call, has
/// handed it back already: it is then dropped with the `Unblock`); bytes a read job fetched
/// then are lost. A job still running when its runtime is dropped hands its result
/// straight to the `Unblock`, so the next call, under any runtime, goes on from it. Use
/// [`into_inner`](Unblock::into_inner) to get the value back once the job in flight is
/// done.
///
/// # When no pool thread can start
/// If no blocking thread exists and the kernel refuses a new one (`RLIMIT_NPROC`, a pids
/// cgroup limit), a job never runs and hands the value back untouched: the call that waits
/// for it fails with an error saying no blocking thread could start (a read, seek, flush or
/// close at once; a write, whose bytes were accepted and not written, from the next call),
/// and the `Unblock` is as before it (read-ahead kept, position unmoved), so a later call
/// retries. The same holds for a job dropped unrun because its runtime shut down.
///
/// # Panics
/// The first read or write panics outside a runtime and outside a blocking job (inside one,
/// the job goes to the pool of [`Handle::current`](crate::Handle::current)).
///
/// ```
/// use overlap::io::{AsyncReadExt, AsyncWriteExt, Unblock};
///
/// overlap::block_on(async {
///     let path = std::env::temp_dir().join(format!("unblock-doc-{}", std::process::id()));
///     let mut out = Unblock::new(std::fs::File::create(&path)?);
///     out.write_all(b"written on the pool").await?;
///     out.flush().await?;
///     let mut back = String::new();
///     Unblock::new(std::fs::File::open(&path)?).read_to_string(&mut back).await?;
///     assert_eq!(back, "written on the pool");
///     std::fs::remove_file(&path)
/// })
/// .unwrap();
/// ```
///
/// A read given up under a timeout leaves its job's bytes for the next read:
///
/// ```
/// use std::io::Write;
/// use std::time::Duration;
/// use overlap::io::{AsyncReadExt, Unblock};
///
/// overlap::block_on(async {
///     let (near, mut far) = std::os::unix::net::UnixStream::pair()?;
///     let mut reader = Unblock::new(near);
///     let mut buf = [0u8; 5];
///     let cut = overlap::time::timeout(Duration::from_millis(1), reader.read(&mut buf)).await;
///     assert!(cut.is_err(), "nothing written yet");
///     far.write_all(b"hello")?;
///     reader.read_exact(&mut buf).await?; // the abandoned read's job brings them
///     assert_eq!(&buf, b"hello");
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub struct Unblock<T> {
    state: State<T>,
    chunk: usize,
    /// Where a job dropped without running puts back what it took.
    rescue: Rescue<T>,
}

/// A job on the pool: `Err` inside if no pool thread could be started for it (the value
/// it took is then in the [`Rescue`] slot).
type Job<R> = RemoteJoinHandle<io::Result<R>>;

/// The slot into which a job that is dropped without running (no pool thread could start
/// for it, or the runtime shut down first) puts back the value and buffer it took, for the
/// `Unblock` to go on with. One per `Unblock`, empty but between such a drop and the next
/// look at the job's outcome.
type Rescue<T> = Arc<Mutex<Option<(T, Vec<u8>)>>>;

/// The value and buffer a job took: the job takes them out when it runs; dropped unrun, it
/// puts them in the [`Rescue`] slot, or, if the `Unblock` is gone, drops them on the pool.
struct Taken<T: Send + 'static> {
    held: Option<(T, Vec<u8>)>,
    rescue: Rescue<T>,
}

impl<T: Send + 'static> Taken<T> {
    /// The value and buffer, for the job that now runs.
    fn take(mut self) -> (T, Vec<u8>) {
        self.held
            .take()
            .expect("a job's value is taken only once, when it runs")
    }
}

impl<T: Send + 'static> Drop for Taken<T> {
    fn drop(&mut self) {
        let Some(held) = self.held.take() else {
            return;
        };
        if Arc::strong_count(&self.rescue) > 1 {
            *lock(&self.rescue) = Some(held);
        } else {
            // The `Unblock` is gone (dropped while this job was queued, which the runtime's
            // shutdown then dropped unrun, here on the runtime's thread): the value's `Drop`
            // may block, so it runs on the pool, as it would have had the job run.
            crate::spawn_blocking_detached(move || drop(held));
        }
    }
}

enum State<T> {
    /// No job in flight. Read-ahead bytes are `buf[pos..filled]`. `buf` stays initialized
    /// (its length is the most any job used) so that a read job does not zero it again.
    Idle {
        inner: T,
        buf: Vec<u8>,
        pos: usize,
        filled: usize,
    },
    Reading(Job<Done<T, usize>>),
    /// A seek for `pos`; `read_ahead` is the idle state's `(pos, filled)` before it, kept if
    /// the seek fails without moving the value.
    Seeking {
        job: Job<SeekDone<T>>,
        pos: SeekFrom,
        read_ahead: (usize, usize),
    },
    Writing(Job<Done<T, ()>>),
    /// A flush; `read_ahead` is the idle state's `(pos, filled)` before it, kept after it:
    /// a flush does not move the value, so the bytes read ahead are still the next ones.
    Flushing {
        job: Job<Done<T, ()>>,
        read_ahead: (usize, usize),
    },
    /// `close`'s job: flushes the value, then drops it on the pool. `read_ahead` as for a
    /// flush, kept if the job never ran.
    Closing {
        job: Job<io::Result<()>>,
        read_ahead: (usize, usize),
    },
    /// Closed: the value is gone.
    Closed,
    /// A job panicked and took the value with it. (A job that never ran, as when no pool
    /// thread could start, hands the value back through the [`Rescue`] slot; one still
    /// running when its runtime is dropped hands it back as usual.)
    Lost,
}

impl<T> Drop for Unblock<T> {
    fn drop(&mut self) {
        // The task awaiting the job would receive the value and drop it here, on the event
        // loop, where a blocking `Drop` (a `BufWriter` flushing) would stall every task.
        // Aborted, it is gone before the job ends, and the value is dropped on the pool.
        // Unwatched: the abort settles the handle at once, and would wake the task that
        // last polled it, whose wait went with this `Unblock`.
        match &self.state {
            State::Reading(job) => job.abort_unwatched(),
            State::Seeking { job, .. } => job.abort_unwatched(),
            State::Writing(job) | State::Flushing { job, .. } => job.abort_unwatched(),
            State::Closing { job, .. } => job.abort_unwatched(),
            State::Idle { .. } | State::Lost | State::Closed => {}
        }
    }
}

/// A job's failure to run, as an I/O error.
fn job_failed(e: JoinError) -> io::Error {
    io::Error::other(format!("the blocking job of an Unblock failed: {e}"))
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "this Unblock was closed")
}

fn lost() -> io::Error {
    io::Error::other(
        "an earlier blocking job of this Unblock did not finish (it panicked): its value is \
         gone",
    )
}

impl<T: Send + 'static> Unblock<T> {
    /// Wraps `inner`. No job starts until the first read or write.
    pub fn new(inner: T) -> Unblock<T> {
        Unblock::with_capacity(DEFAULT_CHUNK, inner)
    }

    /// Wraps `inner`, moving at most `chunk` bytes per job (at least 1, at most 64 MiB: a
    /// read job allocates its whole chunk, so a larger one is taken as 64 MiB).
    pub fn with_capacity(chunk: usize, inner: T) -> Unblock<T> {
        Unblock {
            state: State::Idle {
                inner,
                buf: Vec::new(),
                pos: 0,
                filled: 0,
            },
            chunk: chunk.clamp(1, MAX_CHUNK),
            rescue: Arc::new(Mutex::new(None)),
        }
    }

    /// Waits for the job in flight, if any, and hands the value back. Bytes read ahead and
    /// not yet returned are dropped; bytes accepted by a write are written first (its error,
    /// if any, is returned).
    pub async fn into_inner(mut self) -> io::Result<T> {
        std::future::poll_fn(|cx| self.poll_idle(cx)).await?;
        match std::mem::replace(&mut self.state, State::Lost) {
            State::Idle { inner, .. } => Ok(inner),
            _ => Err(lost()),
        }
    }

    /// Waits until no job is in flight, storing its result; reports a write's or flush's
    /// error (a read's result is kept for the reader).
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // What is read ahead after a write or read (nothing) or a flush (what was before
        // it), and after any job that never ran (what was before it).
        let (pos, filled) = match &self.state {
            State::Flushing { read_ahead, .. } => *read_ahead,
            _ => (0, 0),
        };
        let res = match &mut self.state {
            State::Idle { .. } => return Poll::Ready(Ok(())),
            State::Lost => return Poll::Ready(Err(lost())),
            State::Closed => return Poll::Ready(Err(closed())),
            State::Closing { .. } => {
                ready!(self.poll_close_job(cx))?;
                return Poll::Ready(Err(closed()));
            }
            State::Reading(job) => {
                let done = ready!(Pin::new(job).poll(cx));
                self.state = State::Lost;
                let (inner, buf, res) = self.job_value(done, (0, 0))?;
                // A reader claiming more than it was given: what the buffer holds past its
                // real bytes is from earlier jobs, so none of it is handed out.
                let res = super::copy::checked_read(res, buf.len());
                let filled = *res.as_ref().unwrap_or(&0);
                self.state = State::Idle {
                    inner,
                    buf,
                    pos: 0,
                    filled,
                };
                res.map(drop)
            }
            State::Seeking { .. } => {
                // A seek nobody waits for any more: its result, even an error, is dropped
                // (a failed seek keeps the position). A lost value is reported by the
                // caller's next look at the state.
                let _ = ready!(self.poll_seek_job(cx));
                Ok(())
            }
            State::Writing(job) | State::Flushing { job, .. } => {
                let done = ready!(Pin::new(job).poll(cx));
                self.state = State::Lost;
                let (inner, buf, res) = self.job_value(done, (pos, filled))?;
                self.state = State::Idle {
                    inner,
                    buf,
                    pos,
                    filled,
                };
                res
            }
        };
        Poll::Ready(res)
    }
}

// The value is moved into jobs and back, never pinned in place.
impl<T> Unpin for Unblock<T> {}

impl<T: Send + 'static> Unblock<T> {
    /// Takes the value and buffer out of an idle state for a job (leaving `Lost` until the
    /// job hands them back, or puts them in the rescue slot if it never runs); `None`,
    /// changing nothing, if a job is in flight or the value is lost.
    fn take_idle(&mut self) -> Option<Taken<T>> {
        match std::mem::replace(&mut self.state, State::Lost) {
            State::Idle { inner, buf, .. } => Some(Taken {
                held: Some((inner, buf)),
                rescue: self.rescue.clone(),
            }),
            other => {
                self.state = other;
                None
            }
        }
    }

    /// A finished job's value, in the `Lost` state; or the error that kept the job from
    /// handing it back. A job that never ran (no pool thread could start for it, or its
    /// runtime shut down first) put the value in the rescue slot: it goes idle again, with
    /// `read_ahead` as before the job, so that the call reports the error and the next one
    /// goes on.
    fn job_value<V>(
        &mut self,
        done: Result<io::Result<V>, JoinError>,
        (pos, filled): (usize, usize),
    ) -> io::Result<V> {
        let err = match done {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(no_thread)) => no_thread,
            Err(e) => job_failed(e),
        };
        if let Some((inner, buf)) = lock(&self.rescue).take() {
            self.state = State::Idle {
                inner,
                buf,
                pos,
                filled,
            };
        }
        Err(err)
    }

    /// Waits for `close`'s job: closed, or idle again if the job never ran. Only called in
    /// the closing state.
    fn poll_close_job(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let State::Closing { job, read_ahead } = &mut self.state else {
            return Poll::Ready(Err(lost()));
        };
        let read_ahead = *read_ahead;
        let done = ready!(Pin::new(job).poll(cx));
        self.state = State::Closed;
        let res = self.job_value(done, read_ahead);
        Poll::Ready(res.and_then(|flushed| flushed))
    }
}

impl<T: Read + Send + 'static> AsyncRead for Unblock<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if out.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // Each call spends a unit of the task's budget, as a `File`'s does: a loop of small
        // reads served from the read-ahead (up to 64 MiB of it) lets other tasks run. A call
        // that waits for a job gives it back.
        let this = self.get_mut();
        crate::coop::budgeted(cx, |cx| loop {
            match &mut this.state {
                State::Idle {
                    buf, pos, filled, ..
                } if *pos < *filled => {
                    return Poll::Ready(Ok(super::copy_read_ahead(&buf[..*filled], pos, out)));
                }
                State::Idle { .. } => {
                    let Some(taken) = this.take_idle() else {
                        return Poll::Ready(Err(lost()));
                    };
                    let chunk = this.chunk;
                    this.state = State::Reading(spawn_blocking_or_error(move || {
                        let (mut inner, mut buf) = taken.take();
                        // Zero-fills only what no earlier job initialized: a loop of small
                        // reads does not pay for clearing a whole chunk each time.
                        buf.resize(chunk, 0);
                        let res = loop {
                            match inner.read(&mut buf) {
                                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                                res => break res,
                            }
                        };
                        (inner, buf, res)
                    }));
                }
                State::Reading(_) => {
                    ready!(this.poll_idle(cx))?;
                    if let State::Idle { filled, .. } = &this.state {
                        if *filled == 0 {
                            return Poll::Ready(Ok(0)); // end of file
                        }
                    }
                }
                // A write in flight goes out first (and reports its error here).
                State::Seeking { .. }
                | State::Writing(_)
                | State::Flushing { .. }
                | State::Closing { .. }
                | State::Closed
                | State::Lost => {
                    ready!(this.poll_idle(cx))?;
                }
            }
        })
    }
}

impl<T: Write + Send + 'static> AsyncWrite for Unblock<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        // An empty write moves nothing: it neither waits for the job in flight (which may
        // wait for room for ever) nor takes its error, which the next write or flush reports.
        if bytes.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let this = self.get_mut();
        ready!(this.poll_idle(cx))?;
        // Read-ahead bytes not returned yet are dropped (see the type's docs).
        let Some(mut taken) = this.take_idle() else {
            return Poll::Ready(Err(lost()));
        };
        let n = bytes.len().min(this.chunk);
        if let Some((_, buf)) = &mut taken.held {
            // Overwrites the initialized prefix and appends the rest: no zero-filling, and
            // the buffer keeps its initialized length for the next read job.
            let reuse = n.min(buf.len());
            buf[..reuse].copy_from_slice(&bytes[..reuse]);
            buf.extend_from_slice(&bytes[reuse..n]);
        }
        this.state = State::Writing(spawn_blocking_or_error(move || {
            let (mut inner, buf) = taken.take();
            let res = write_all_checked(&mut inner, &buf[..n]);
            (inner, buf, res)
        }));
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match &this.state {
                State::Flushing { .. } => return this.poll_idle(cx),
                // Closed implies flushed.
                State::Closing { .. } | State::Closed => return Pin::new(this).poll_close(cx),
                State::Idle { pos, filled, .. } => {
                    let read_ahead = (*pos, *filled);
                    let Some(taken) = this.take_idle() else {
                        return Poll::Ready(Err(lost()));
                    };
                    let job = spawn_blocking_or_error(move || {
                        let (mut inner, buf) = taken.take();
                        let res = inner.flush();
                        (inner, buf, res)
                    });
                    this.state = State::Flushing { job, read_ahead };
                }
                State::Reading(_) | State::Seeking { .. } | State::Writing(_) | State::Lost => {
                    ready!(this.poll_idle(cx))?;
                }
            }
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Closed => return Poll::Ready(Ok(())),
                State::Closing { .. } => return this.poll_close_job(cx),
                State::Idle { pos, filled, .. } => {
                    let read_ahead = (*pos, *filled);
                    let Some(taken) = this.take_idle() else {
                        return Poll::Ready(Err(lost()));
                    };
                    // The value's `Drop` may block (a `BufWriter` flushing, a child's
                    // stdin): it runs on the pool, after the flush.
                    let job = spawn_blocking_or_error(move || {
                        let (mut inner, _buf) = taken.take();
                        let res = inner.flush();
                        drop(inner);
                        res
                    });
                    this.state = State::Closing { job, read_ahead };
                }
                State::Reading(_)
                | State::Seeking { .. }
                | State::Writing(_)
                | State::Flushing { .. }
                | State::Lost => {
                    ready!(this.poll_idle(cx))?;
                }
            }
        }
    }
}

/// `write_all` for a write job, which also turns a write claiming more bytes than it was
/// given into an `InvalidData` error: std's `write_all` would slice past the buffer's end
/// and panic, losing the value with the job.
fn write_all_checked(inner: &mut impl Write, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match super::copy::checked_write(inner.write(bytes), bytes.len()) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl<T> fmt::Debug for Unblock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Idle { .. } => "idle",
            State::Reading(_) => "reading",
            State::Seeking { .. } => "seeking",
            State::Writing(_) => "writing",
            State::Flushing { .. } => "flushing",
            State::Closing { .. } => "closing",
            State::Closed => "closed",
            State::Lost => "lost",
        };
        f.debug_struct("Unblock")
            .field("state", &state)
            .field("chunk", &self.chunk)
            .finish()
    }
}
