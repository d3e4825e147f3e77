//! The read side of a [`File`](crate::File): bytes fetched ahead of the reader, and how much
//! to fetch next.

use std::io;

/// The smallest read a job makes: a small user read costs one trip per 64 KiB, not per call
/// (or per `max_buf_size`, if that is smaller).
pub(crate) const MIN_CHUNK: usize = 64 * 1024;
/// The default `max_buf_size`: the largest read-ahead a job makes, reached by doubling while
/// the reader stays sequential. Two buffers of this size (the one being read, the one being
/// filled) are the most a `File` holds.
pub(crate) const MAX_CHUNK: usize = 2 * 1024 * 1024;
/// How many times `max_buf_size` a single job reads for a larger user buffer (8 MiB by
/// default); the user gets a short read.
const BIG_READ_FACTOR: usize = 4;

/// Fetched bytes not yet handed to the reader, plus the read-ahead policy.
///
/// # Invariant
/// `pos <= filled <= data.len()`; `data[pos..filled]` are the next bytes of the file after
/// the reader's position, and the fd's offset is at the end of them (plus whatever a read
/// job in flight adds).
#[derive(Debug, Default)]
pub(crate) struct ReadBuf {
    /// The fd cannot seek (a pipe, a tty): bytes fetched cannot be given back, so a job
    /// reads only what the reader asks for and nothing is read ahead.
    stream: bool,
    /// Always fully initialised (len = allocation), so jobs read into it without `unsafe`;
    /// it is zeroed once when allocated, then reused.
    data: Vec<u8>,
    pos: usize,
    filled: usize,
    /// A buffer for the next job, kept to avoid allocating (and zeroing) again.
    spare: Vec<u8>,
    /// Size of the next read-ahead; doubles while the reader is sequential.
    chunk: usize,
    /// A buffer has been handed to the reader since the last reset, so the next refill means
    /// the reader is going through the file in order.
    started: bool,
    /// The reader went through a whole buffer and asked for more since the last reset.
    sequential: bool,
    /// The last job filled its buffer: there is probably more to read.
    full: bool,
    /// The largest read-ahead (`File::max_buf_size`); at least 1.
    max: usize,
    /// A job the reader waited for read 0 bytes: report end-of-file once the buffered bytes
    /// are consumed.
    eof: bool,
    /// The job in flight was started with bytes still buffered (a read-ahead). An end of file
    /// it finds is not remembered: the file may grow before the reader gets there (a log
    /// being appended to), so the reader's own read looks again.
    ahead: bool,
    /// A read-ahead failed; reported once the buffered bytes are consumed.
    error: Option<io::Error>,
}

impl ReadBuf {
    /// An empty buffer, for a file that can seek or (`seekable` false) one that cannot.
    pub(crate) fn new(seekable: bool) -> ReadBuf {
        ReadBuf {
            stream: !seekable,
            max: MAX_CHUNK,
            ..ReadBuf::default()
        }
    }

    /// Sets the largest read-ahead (at least 1), and the largest read for a big user buffer
    /// with it. A spare buffer larger than that is let go.
    pub(crate) fn set_max(&mut self, max: usize) {
        self.max = max.max(1);
        let spare = std::mem::take(&mut self.spare);
        self.keep_spare(spare);
    }

    /// Keeps `buf` for the next job, unless it is larger than a job may read now (it grew
    /// under a larger `max`): then it goes, so that lowering `max` bounds the memory held.
    fn keep_spare(&mut self, buf: Vec<u8>) {
        if buf.len() <= self.max.saturating_mul(BIG_READ_FACTOR) {
            self.spare = buf;
        }
    }

    /// The largest read-ahead.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// The buffered bytes.
    pub(crate) fn available(&self) -> &[u8] {
        &self.data[self.pos..self.filled]
    }

    pub(crate) fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.filled);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos == self.filled
    }

    /// Takes an end-of-file or error to report now that the buffer is empty.
    pub(crate) fn take_end(&mut self) -> Option<io::Result<()>> {
        if let Some(e) = self.error.take() {
            return Some(Err(e));
        }
        if std::mem::take(&mut self.eof) {
            return Some(Ok(()));
        }
        None
    }

    /// Whether a read-ahead should start now that the reader got fresh bytes: only for a
    /// reader going through the file in order, and not at the end.
    pub(crate) fn wants_prefetch(&self) -> bool {
        !self.stream && self.sequential && self.full && !self.eof && self.error.is_none()
    }

    /// Size of the next job's read, for a reader asking `want` bytes (0: no preference), and
    /// a buffer for it. Called when a job is submitted.
    pub(crate) fn start_job(&mut self, want: usize) -> (Vec<u8>, usize) {
        if self.started && self.is_empty() {
            // The reader finished a buffer and asks for the next: sequential access.
            self.sequential = true;
        }
        self.ahead = !self.is_empty();
        let big = want.min(self.max.saturating_mul(BIG_READ_FACTOR));
        let size = if self.stream && want > 0 {
            big
        } else {
            self.chunk.clamp(MIN_CHUNK.min(self.max), self.max).max(big)
        };
        (std::mem::take(&mut self.spare), size)
    }

    /// Folds a finished read job in: `buf[..n]` are the next bytes after what is buffered.
    pub(crate) fn complete(&mut self, mut buf: Vec<u8>, want: usize, res: io::Result<usize>) {
        let ahead = std::mem::take(&mut self.ahead);
        match res {
            Ok(0) => {
                // `full` false stops further read-ahead; a read-ahead's end of file is looked
                // up again, in a job, once the reader has consumed what is buffered.
                self.eof = !ahead;
                self.full = false;
                self.keep_spare(buf);
            }
            Ok(n) => {
                self.full = n == want;
                self.started = true;
                if self.sequential {
                    self.chunk = (self.chunk.max(MIN_CHUNK) * 2).min(self.max);
                }
                if self.is_empty() {
                    std::mem::swap(&mut self.data, &mut buf);
                    self.pos = 0;
                    self.filled = n;
                } else {
                    // Only on paths that are about to discard everything (a write or seek
                    // after a read-ahead); keep the bytes so the count stays right.
                    self.data.truncate(self.filled);
                    self.data.extend_from_slice(&buf[..n]);
                    self.filled = self.data.len();
                }
                self.keep_spare(buf);
            }
            Err(e) => {
                self.error = Some(e);
                self.full = false;
                self.keep_spare(buf);
            }
        }
    }

    /// Drops the buffered bytes and resets the access pattern (after a seek, a write, a
    /// truncation). Returns how many bytes the fd's offset is ahead of the reader.
    pub(crate) fn discard(&mut self) -> u64 {
        let ahead = (self.filled - self.pos) as u64;
        self.pos = 0;
        self.filled = 0;
        self.chunk = MIN_CHUNK;
        self.started = false;
        self.sequential = false;
        self.full = false;
        self.eof = false;
        self.ahead = false;
        self.error = None;
        ahead
    }
}

/// Makes `buf` at least `size` bytes long, zeroing only newly allocated bytes. Runs in the
/// job, on the pool thread.
pub(crate) fn prepare(buf: &mut Vec<u8>, size: usize) {
    if buf.len() < size {
        buf.resize(size, 0);
    }
}
