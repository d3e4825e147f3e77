//! `Unblock`: any blocking `Read`/`Write` as `AsyncRead`/`AsyncWrite`, its calls run on the
//! blocking pool.

use std::fmt;
use std::future::Future;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_util::io::{AsyncRead, AsyncSeek, AsyncWrite};

use crate::blocking::spawn_blocking_or_error;
use crate::task::{JoinError, JoinHandle};

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
///
/// Use one `Unblock` either to read or to write: read-ahead moves the inner value's
/// position past the bytes returned so far, and a write drops the read-ahead bytes not yet
/// returned. With a [`Seek`] value, seek (`SeekFrom::Current(0)` will do) between reading
/// and writing: that puts the value's position back where the reader is.
///
/// # Seeking
/// For a [`Seek`] value, `Unblock` is `AsyncSeek`, as a buffered reader would be: a seek
/// first waits for the write in flight (and reports its error), then seeks in a job; a
/// `SeekFrom::Current` offset counts from the bytes returned so far, not from the end of
/// the read-ahead, which the seek drops (unless it fails without moving the value). So
/// the position after a seek is exact. A value that buffers writes itself (a
/// `BufWriter`) flushes them in its own `seek`. Call `poll_seek` again with the same
/// `pos` after `Pending`: a call with the `pos` of the seek in flight is taken as that
/// retry, so a seek dropped while pending and then asked for again counts once.
///
/// # Dropping and cancellation
/// A job in flight cannot be called back. Dropping the `Unblock` (or a future using it)
/// while a job runs lets that job finish on the pool, then drops the inner value there
/// (a job that has just finished may have handed it back already: it is then dropped with
/// the `Unblock`); bytes a read job fetched then are lost. Use [`into_inner`](Unblock::into_inner) to get
/// the value back once the job in flight is done.
///
/// # Panics
/// The first read or write panics outside a runtime.
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
pub struct Unblock<T> {
    state: State<T>,
    chunk: usize,
}

/// A job on the pool: `Err` inside if no pool thread could be started for it (the value
/// it took is then gone).
type Job<R> = JoinHandle<io::Result<R>>;

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
    /// `close`'s job: flushes the value, then drops it on the pool.
    Closing(Job<io::Result<()>>),
    /// Closed: the value is gone.
    Closed,
    /// A job panicked, was dropped with its runtime, or could not start (no pool thread),
    /// and took the value with it.
    Lost,
}

impl<T> Drop for Unblock<T> {
    fn drop(&mut self) {
        // The task awaiting the job would receive the value and drop it here, on the event
        // loop, where a blocking `Drop` (a `BufWriter` flushing) would stall every task.
        // Aborted, it is gone before the job ends, and the value is dropped on the pool.
        match &self.state {
            State::Reading(job) => job.abort(),
            State::Seeking { job, .. } => job.abort(),
            State::Writing(job) | State::Flushing { job, .. } => job.abort(),
            State::Closing(job) => job.abort(),
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
        "an earlier blocking job of this Unblock did not finish (it panicked, could not start, \
         or its runtime was dropped): its value is gone",
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
        // What is read ahead after a write (nothing) or a flush (what was before it).
        let (pos, filled) = match &self.state {
            State::Flushing { read_ahead, .. } => *read_ahead,
            _ => (0, 0),
        };
        let res = match &mut self.state {
            State::Idle { .. } => return Poll::Ready(Ok(())),
            State::Lost => return Poll::Ready(Err(lost())),
            State::Closed => return Poll::Ready(Err(closed())),
            State::Closing(job) => {
                let done = ready!(Pin::new(job).poll(cx));
                self.state = State::Closed;
                done.map_err(job_failed)???;
                return Poll::Ready(Err(closed()));
            }
            State::Reading(job) => {
                let done = ready!(Pin::new(job).poll(cx));
                self.state = State::Lost;
                let (inner, buf, res) = done.map_err(job_failed)??;
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
                let (inner, buf, res) = done.map_err(job_failed)??;
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

impl<T> Unblock<T> {
    /// Takes the value and buffer out of an idle state (leaving `Lost` until a job puts them
    /// back); `None`, changing nothing, if a job is in flight or the value is lost.
    fn take_idle(&mut self) -> Option<(T, Vec<u8>)> {
        match std::mem::replace(&mut self.state, State::Lost) {
            State::Idle { inner, buf, .. } => Some((inner, buf)),
            other => {
                self.state = other;
                None
            }
        }
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
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Idle {
                    buf, pos, filled, ..
                } if *pos < *filled => {
                    return Poll::Ready(Ok(super::copy_read_ahead(&buf[..*filled], pos, out)));
                }
                State::Idle { .. } => {
                    let Some((mut inner, mut buf)) = this.take_idle() else {
                        return Poll::Ready(Err(lost()));
                    };
                    // Zero-fills only what no earlier job initialized: a loop of small reads
                    // does not pay for clearing a whole chunk each time.
                    buf.resize(this.chunk, 0);
                    this.state = State::Reading(spawn_blocking_or_error(move || {
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
                | State::Closing(_)
                | State::Closed
                | State::Lost => {
                    ready!(this.poll_idle(cx))?;
                }
            }
        }
    }
}

impl<T: Write + Send + 'static> AsyncWrite for Unblock<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_idle(cx))?;
        if bytes.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // Read-ahead bytes not returned yet are dropped (see the type's docs).
        let Some((mut inner, mut buf)) = this.take_idle() else {
            return Poll::Ready(Err(lost()));
        };
        let n = bytes.len().min(this.chunk);
        // Overwrites the initialized prefix and appends the rest: no zero-filling, and the
        // buffer keeps its initialized length for the next read job.
        let reuse = n.min(buf.len());
        buf[..reuse].copy_from_slice(&bytes[..reuse]);
        buf.extend_from_slice(&bytes[reuse..n]);
        this.state = State::Writing(spawn_blocking_or_error(move || {
            let res = inner.write_all(&buf[..n]);
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
                State::Closing(_) | State::Closed => return Pin::new(this).poll_close(cx),
                State::Idle { pos, filled, .. } => {
                    let read_ahead = (*pos, *filled);
                    let Some((mut inner, buf)) = this.take_idle() else {
                        return Poll::Ready(Err(lost()));
                    };
                    let job = spawn_blocking_or_error(move || {
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
                State::Closing(job) => {
                    let done = ready!(Pin::new(job).poll(cx));
                    this.state = State::Closed;
                    return Poll::Ready(done.map_err(job_failed).and_then(|res| res?));
                }
                State::Idle { .. } => {
                    let Some((mut inner, _buf)) = this.take_idle() else {
                        return Poll::Ready(Err(lost()));
                    };
                    // The value's `Drop` may block (a `BufWriter` flushing, a child's
                    // stdin): it runs on the pool, after the flush.
                    this.state = State::Closing(spawn_blocking_or_error(move || {
                        let res = inner.flush();
                        drop(inner);
                        res
                    }));
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

impl<T> fmt::Debug for Unblock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Idle { .. } => "idle",
            State::Reading(_) => "reading",
            State::Seeking { .. } => "seeking",
            State::Writing(_) => "writing",
            State::Flushing { .. } => "flushing",
            State::Closing(_) => "closing",
            State::Closed => "closed",
            State::Lost => "lost",
        };
        f.debug_struct("Unblock")
            .field("state", &state)
            .field("chunk", &self.chunk)
            .finish()
    }
}

impl<T> Unblock<T> {
    /// Waits for the seek job in flight and goes idle, keeping the read-ahead bytes if the
    /// seek failed without moving the value. Only called in the seeking state (any other
    /// reports a lost value).
    fn poll_seek_job(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        let State::Seeking {
            job, read_ahead, ..
        } = &mut self.state
        else {
            return Poll::Ready(Err(lost()));
        };
        let (pos, filled) = *read_ahead;
        let done = ready!(Pin::new(job).poll(cx));
        self.state = State::Lost;
        let (inner, buf, res, kept) = done.map_err(job_failed)??;
        let (pos, filled) = if kept { (pos, filled) } else { (0, 0) };
        self.state = State::Idle {
            inner,
            buf,
            pos,
            filled,
        };
        Poll::Ready(res)
    }
}

/// Seeks `inner` to `pos` as seen by a reader that has `unread` bytes of read-ahead left;
/// the flag says whether those bytes are still valid (the seek failed without moving).
fn seek_past_read_ahead<T: Seek>(
    inner: &mut T,
    pos: SeekFrom,
    unread: i64,
) -> (io::Result<u64>, bool) {
    let SeekFrom::Current(off) = pos else {
        return match inner.seek(pos) {
            Ok(at) => (Ok(at), false),
            Err(e) => (Err(e), unread > 0),
        };
    };
    if let Some(adjusted) = off.checked_sub(unread) {
        return match inner.seek(SeekFrom::Current(adjusted)) {
            Ok(at) => (Ok(at), false),
            Err(e) => (Err(e), unread > 0),
        };
    }
    // `off - unread` overflows: back to the reader's position first, then on from there.
    if let Err(e) = inner.seek(SeekFrom::Current(-unread)) {
        return (Err(e), true);
    }
    (inner.seek(SeekFrom::Current(off)), false)
}

impl<T: Seek + Send + 'static> AsyncSeek for Unblock<T> {
    /// Waits for the write in flight, then seeks in a job, counting `SeekFrom::Current`
    /// from the bytes returned so far and dropping the read-ahead (see
    /// [Seeking](Unblock#seeking)).
    fn poll_seek(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        pos: SeekFrom,
    ) -> Poll<io::Result<u64>> {
        let this = self.get_mut();
        loop {
            match &this.state {
                State::Seeking { pos: p, .. } if *p == pos => return this.poll_seek_job(cx),
                State::Idle {
                    pos: at, filled, ..
                } => {
                    let read_ahead = (*at, *filled);
                    let Some((mut inner, buf)) = this.take_idle() else {
                        return Poll::Ready(Err(lost()));
                    };
                    // At most a chunk (64 MiB): always fits.
                    let unread = i64::try_from(read_ahead.1 - read_ahead.0).unwrap_or(i64::MAX);
                    let job = spawn_blocking_or_error(move || {
                        let (res, kept) = seek_past_read_ahead(&mut inner, pos, unread);
                        (inner, buf, res, kept)
                    });
                    this.state = State::Seeking {
                        job,
                        pos,
                        read_ahead,
                    };
                }
                // A read nobody waits for any more: its bytes become read-ahead, and its
                // error is dropped (a reader meets it again).
                State::Reading(_) => {
                    let _ = ready!(this.poll_idle(cx));
                }
                // Another seek's result is dropped; a write's or flush's error is reported, as
                // is a closed or lost value.
                _ => ready!(this.poll_idle(cx))?,
            }
        }
    }
}
