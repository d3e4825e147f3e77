//! What a `File`'s jobs do on their pool thread: plain std calls on the shared fd.

use std::fs::File as StdFile;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, MutexGuard};

use super::read_buf::prepare;
use crate::sys;

/// What a finished job hands back to the `File`.
#[derive(Debug)]
pub(crate) enum Done {
    /// `buf[..n]` holds the bytes read, from a read of `want` bytes.
    Read {
        buf: Vec<u8>,
        want: usize,
        res: io::Result<usize>,
    },
    /// The written buffer comes back (emptied) for reuse.
    Write { buf: Vec<u8>, res: io::Result<()> },
    /// The new offset.
    Seek(io::Result<u64>),
    /// `set_len`'s outcome.
    Truncate(io::Result<()>),
    /// A positional read or write: the bytes moved, and the job's buffer back for reuse
    /// (for a read, `buf[..n]` holds the bytes).
    At {
        buf: Vec<u8>,
        res: io::Result<usize>,
    },
}

/// Bytes handed to the write job in flight, which writes them after its own, in order: the
/// bytes a `File` accepts while that job runs, so they go out without another call on the
/// `File` (its next operation, a `flush`, its drop), as tokio's `File` writes them.
#[derive(Debug, Default)]
pub(crate) struct Handoff {
    /// A write job has been submitted and has not yet looked at `handed` for the last time.
    pub(crate) running: bool,
    pub(crate) handed: Vec<u8>,
    /// The outcome of the last write job to finish, set with `running = false`: for a `File`
    /// whose job handle lost it (the runtime that ran the job shut down meanwhile, or the
    /// job never ran on the pool and wrote when dropped instead: see [`WriteJob`]).
    pub(crate) finished: Option<io::Result<()>>,
}

pub(crate) fn lock(h: &Mutex<Handoff>) -> MutexGuard<'_, Handoff> {
    // Only byte moves happen under this lock; a poisoned one is still consistent.
    h.lock().unwrap_or_else(|e| e.into_inner())
}

/// Moves the offset back by `rewind` bytes (read-ahead the user never saw), then reads up
/// to `want` bytes there into `buf`, retrying on `EINTR`, and waiting out `EAGAIN` (an fd in
/// non-blocking mode) with `poll`.
pub(crate) fn read(file: &StdFile, mut buf: Vec<u8>, want: usize, rewind: u64) -> Done {
    prepare(&mut buf, want);
    let res = rewind_by(file, rewind).and_then(|()| loop {
        match (&*file).read(&mut buf[..want]) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                sys::wait_fd(file.as_raw_fd(), libc::POLLIN)?
            }
            res => break res,
        }
    });
    Done::Read { buf, want, res }
}

/// Moves the offset back by `rewind` bytes (read-ahead the user never saw), then writes all
/// of `buf`.
pub(crate) fn write_at_cursor(file: &StdFile, buf: &[u8], rewind: u64) -> io::Result<()> {
    rewind_by(file, rewind)?;
    write_all(file, buf)
}

/// `write_all` that also waits out `EAGAIN` (an fd in non-blocking mode: a pipe end another
/// process made so) with `poll`, where std's gives up midway without saying how much went.
/// A `write` that fails wrote nothing, so the retry sends exactly the rest.
fn write_all(file: &StdFile, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match (&*file).write(buf) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                sys::wait_fd(file.as_raw_fd(), libc::POLLOUT)?
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Moves the fd's offset back by `rewind` bytes, to the reader's position.
pub(crate) fn rewind_by(file: &StdFile, rewind: u64) -> io::Result<()> {
    if rewind > 0 {
        (&*file).seek(SeekFrom::Current(-as_offset(rewind)?))?;
    }
    Ok(())
}

/// A write job: `buf`, then whatever its `File` handed over meanwhile (see [`Handoff`]).
///
/// If the job is dropped without running (the runtime shut down while it was queued, or no
/// pool thread could start), its destructor writes on the dropping thread instead: accepted
/// bytes are never thrown away.
#[derive(Debug)]
pub(crate) struct WriteJob {
    pub(crate) file: Arc<StdFile>,
    pub(crate) buf: Vec<u8>,
    pub(crate) rewind: u64,
    pub(crate) handoff: Arc<Mutex<Handoff>>,
    pub(crate) ran: bool,
    /// Held until the job ends, so that its runtime's drop waits for it (the bytes are
    /// lost if the process exits first). `None` outside a runtime.
    pub(crate) _durable: Option<overlap_runtime::DurableWork>,
}

impl WriteJob {
    /// Writes `buf`, then each batch of bytes handed over meanwhile, until none is left;
    /// gives back its last buffer, emptied, for reuse.
    pub(crate) fn run(mut self) -> Done {
        self.ran = true;
        let mut buf = std::mem::take(&mut self.buf);
        let mut res = write_at_cursor(&self.file, &buf, self.rewind);
        loop {
            buf.clear();
            {
                let mut h = lock(&self.handoff);
                // After refused bytes, the ones handed over would land at the wrong
                // offset: they go unwritten, reported with the first error (a live
                // `File` reports it; a dropped one's bytes are lost with nobody to tell).
                if res.is_err() {
                    h.handed.clear();
                }
                if h.handed.is_empty() {
                    // Not kept: an idle `File` holds no memory here.
                    h.handed = Vec::new();
                    h.running = false;
                    h.finished = Some(match &res {
                        Ok(()) => Ok(()),
                        Err(e) => Err(copy_error(e)),
                    });
                    break;
                }
                // The emptied buffer takes the next hand-offs.
                std::mem::swap(&mut h.handed, &mut buf);
            }
            res = write_all(&self.file, &buf);
        }
        Done::Write { buf, res }
    }
}

/// An `io::Error` with the same kind, OS code and message (`io::Error` is not `Clone`).
fn copy_error(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}

/// The outcome of the last write job, if none is in flight any more.
pub(crate) fn finished_write(handoff: &Mutex<Handoff>) -> Option<io::Result<()>> {
    let mut h = lock(handoff);
    (!h.running).then(|| h.finished.take().unwrap_or(Ok(())))
}

/// Waits (on a pool thread) until the write job in flight has finished, for a `File` whose
/// handle on that job was lost with its runtime, and hands back the job's outcome.
pub(crate) fn wait_for_write(handoff: &Mutex<Handoff>) -> Done {
    loop {
        if let Some(res) = finished_write(handoff) {
            return Done::Write {
                buf: Vec::new(),
                res,
            };
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// A write job dropped without running (its runtime shut down while it was queued) still
/// writes its bytes, in order, off the dropping thread: that is the runtime's thread, which a
/// write blocked for good (a FIFO nobody reads) must not hold. The runtime's drop waits for
/// it as for a running job (the `DurableWork` goes along). Its outcome reaches the `File`
/// through `Handoff::finished`.
impl Drop for WriteJob {
    fn drop(&mut self) {
        if !self.ran {
            let unrun = WriteJob {
                file: self.file.clone(),
                buf: std::mem::take(&mut self.buf),
                rewind: self.rewind,
                handoff: self.handoff.clone(),
                ran: false,
                _durable: self._durable.take(),
            };
            overlap_runtime::spawn_blocking_detached(move || drop(unrun.run()));
        }
    }
}

/// A seek job; `Current` offsets are taken from the reader's position, `rewind` bytes
/// behind the fd's.
pub(crate) fn seek(file: &StdFile, pos: SeekFrom, rewind: u64) -> Done {
    let from_fd = match pos {
        SeekFrom::Current(n) => match as_offset(rewind).map(|r| n.checked_sub(r)) {
            Ok(Some(n)) => SeekFrom::Current(n),
            _ => return Done::Seek(Err(invalid_seek())),
        },
        other => other,
    };
    Done::Seek((&*file).seek(from_fd).map_err(|e| refused_seek(e, pos)))
}

/// The kernel's `EINVAL` for a seek (the position would be negative, or past the largest
/// offset the file system allows) in our own words, naming the seek as the user asked it;
/// the OS error stays its source.
fn refused_seek(e: io::Error, pos: SeekFrom) -> io::Error {
    if e.raw_os_error() != Some(libc::EINVAL) {
        return e;
    }
    let below_zero = matches!(pos, SeekFrom::Current(n) | SeekFrom::End(n) if n < 0);
    let what = if below_zero {
        "lands before the start of the file"
    } else {
        "lands past the largest offset the file system allows"
    };
    io::Error::new(
        io::ErrorKind::InvalidInput,
        RefusedSeek {
            text: format!("{pos:?} {what}"),
            source: e,
        },
    )
}

/// A seek the kernel refused: what was asked and why, with the OS error as the source.
#[derive(Debug)]
struct RefusedSeek {
    text: String,
    source: io::Error,
}

impl std::fmt::Display for RefusedSeek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.text, self.source)
    }
}

impl std::error::Error for RefusedSeek {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn as_offset(n: u64) -> io::Result<i64> {
    i64::try_from(n).map_err(|_| invalid_seek())
}

fn invalid_seek() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "seek offset out of range")
}

/// Refuses a size or offset past `i64::MAX` (`off_t`'s largest value, so the largest a file
/// can have) in our own words, where std says "out of range integral type conversion
/// attempted" or the kernel "Invalid argument".
pub(crate) fn past_largest_offset(n: u64, what: &str) -> io::Result<()> {
    if i64::try_from(n).is_ok() {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{what} {n} is past the largest a file can have ({})",
            i64::MAX
        ),
    ))
}
