//! [`File`]: an open file whose reads, writes and seeks run on the blocking pool in large
//! batches.

mod attributes;
mod blocking;
mod io_impls;
mod jobs;
mod positional;
mod read_buf;
mod rewind;
mod send;
mod times;
mod to_std;

use std::fmt;
use std::fs::File as StdFile;
use std::future::poll_fn;
use std::io::{self, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use blocking::{Done, Handoff};
use read_buf::{ReadBuf, MAX_CHUNK};

use crate::error::{explain_access, for_file};
use crate::job::Job;
use crate::OpenOptions;

pub(crate) use blocking::past_largest_offset;

/// The most bytes one positional job moves, for a `PositionalFile` (a [`File`]'s own
/// positional calls go by its `max_buf_size`).
pub(crate) const MAX_JOB_BYTES: usize = MAX_CHUNK;

/// An open file on the blocking pool: the async twin of [`std::fs::File`], implementing
/// futures-io's [`AsyncRead`](futures_util::io::AsyncRead),
/// [`AsyncBufRead`](futures_util::io::AsyncBufRead),
/// [`AsyncWrite`](futures_util::io::AsyncWrite) and
/// [`AsyncSeek`](futures_util::io::AsyncSeek).
///
/// Regular files cannot be watched by epoll, so every operation runs as a job on the
/// runtime's blocking pool, and a `File` makes few, large jobs:
///
/// - **Reads** fetch at least 64 KiB per job and serve smaller reads from that buffer. While
///   the reader goes through the file in order, the next chunk is read ahead, in a job that
///   runs while the current one is consumed, and chunks double up to 2 MiB. Bytes read
///   ahead are the file as it was when they were fetched: a change another handle or
///   process makes to them afterwards (an overwrite, or a truncation and new bytes, as a
///   log writer cutting back a torn tail makes) is not seen until a seek, any seek
///   (`SeekFrom::Current(0)` too), drops them; bytes appended past them are read when
///   reached, also when a read-ahead ran into the old end (the reader's read looks again).
///   tokio's `File` reads only what each call asks, so a reader ported from it that must
///   see such changes seeks before reading. For the same reason, a reader that
///   stops at a known offset (a byte range served over HTTP, say) has read up to two
///   chunks past it from the disk: [`read_exact_at`](File::read_exact_at) reads a range
///   exactly, [`send_to`](File::send_to) sends one, and a lower
///   [`set_max_buf_size`](File::set_max_buf_size) bounds the excess.
/// - **Writes** are copied into a buffer and return at once. The buffer goes to the pool
///   straight away if no write job is running; otherwise bytes gather (up to 1 MiB) and
///   the running job writes them after its own before it ends, so a burst of small writes
///   costs a few jobs, not one each. Either way accepted bytes are on their way: a `File`
///   written to and then left alone (a log file between two lines) still gets them
///   written, with no further call.
///
///   So writes are write-behind (as with tokio's `File`): a `write` or `write_all` that
///   returned `Ok` has accepted its bytes, not written them. This `File`'s own reads,
///   seeks and `set_len` see them (they wait for the writes; its
///   [`metadata`](File::metadata) does not), but any other handle on the path may not
///   yet: [`fs::read`](crate::read), a `std::fs::File`, another `File` or a
///   [`PositionalFile`](crate::PositionalFile), a child process. Await
///   [`flush`](futures_util::io::AsyncWriteExt::flush) (or [`sync_all`](File::sync_all))
///   before telling anyone the bytes are there: before counting them as written, sending
///   a reply or a message, or renaming the file to where readers will open it.
/// - **Positional** reads and writes ([`read_at`](File::read_at),
///   [`write_all_at`](File::write_all_at), ...) name their offset, as overlapped I/O on
///   Windows does, and leave the position alone: one job each, after buffered writes.
/// - [`set_max_buf_size`](File::set_max_buf_size) moves both limits (2 MiB by default).
/// - At most one job per `File` is in flight, so operations reach the kernel in order:
///   reads and seeks after writes see the written bytes.
///
/// # Errors
/// Errors keep std's [`io::ErrorKind`] and name the file, e.g. `failed to write /x/y: No
/// space left on device (os error 28)` (a `File` made by [`from_std`](File::from_std) does
/// not know its path). A write job fails after its `write` call returned `Ok`: the error
/// is reported by the next operation on the `File` (a read, write, seek, `flush`, ...).
/// The failed job may have written a prefix of its bytes (up to a file size limit, say);
/// the rest, and every byte accepted after them and not yet written, are dropped with that
/// one error, as they would land at the wrong offset: the file then holds what was
/// written before the refused byte, and the next write goes on from the fd's offset.
///
/// A write past the process's file size limit (`RLIMIT_FSIZE`) fails with
/// [`FileTooLarge`](io::ErrorKind::FileTooLarge) (`EFBIG`), but the kernel also raises
/// `SIGXFSZ`, whose default action ends the whole process (Rust ignores `SIGPIPE` at
/// startup, not `SIGXFSZ`), whichever pool thread wrote: a server that must answer such a
/// refusal (with a 507, say) ignores `SIGXFSZ` first (see `tests/fs_write_faults.rs`).
///
/// # Flush, drop and cancellation
/// - [`flush`](futures_util::io::AsyncWriteExt::flush) waits until every accepted byte has
///   been written to the kernel (it does not `fsync`; see [`sync_all`](File::sync_all)) and
///   reports any write error. `close` is the same as `flush`. The fd closes on drop, or,
///   if a job is in flight then, when that job ends, on the pool: a job the `File` started
///   on its own counts, as the read-ahead of a reader that read up to the end of the file
///   and stopped, so a server counting its fds right after a shutdown may find one still
///   open for a moment (nothing waits on it; it closes as the job ends).
/// - Dropping a `File` never loses accepted bytes: the write job in flight goes on to the
///   end of them, unless a write before them failed (see Errors above). The drop does not
///   wait for that job: the path read or opened right after the drop may not hold the
///   bytes yet. Its errors are lost too, so `flush` first when either matters. If the runtime is dropped
///   while a write job is still queued, the bytes are written on the thread dropping the
///   runtime rather than lost; a `File` dropped outside any runtime writes on the dropping
///   thread too. A write job still running when the runtime is dropped is waited for by
///   that drop (for up to 10 s, in case a write blocks for good, as into a FIFO nobody
///   reads), so a `File` dropped unflushed at the end of an `#[overlap::main]` function
///   has written everything before the process exits.
/// - Dropping an operation's future (a `read`, `seek`, `set_len`, `sync_all`, ...) before it
///   completes lets its job finish in the background; the `File` picks up the result when
///   next used (read bytes stay buffered, a write error is reported later), and the next
///   operation that touches the offset or the contents waits for that job first. A seek
///   abandoned this way still takes effect; see [`seek`](File::seek).
///
/// # Pipes, FIFOs and terminals
/// A `File` on an fd that cannot seek (opened from a FIFO or a tty path, or made with
/// [`from_std`](File::from_std) from such an fd) reads only what each call asks for, never
/// ahead, and keeps reads and writes apart: a write does not throw buffered read bytes
/// away. A job still blocks a pool thread until the fd has data (or room), also for an fd in
/// non-blocking mode, where it waits out `EAGAIN` with `poll(2)` instead of returning it, and
/// the next operation on the `File` waits for it; for such fds `overlap::pipe` and
/// `overlap::AsyncFd` wait on the reactor instead and are the better fit.
///
/// ```
/// use overlap::fs::File;
/// use overlap::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
/// use std::io::SeekFrom;
/// # let path = std::env::temp_dir().join(format!("overlap-doc-file-{}", std::process::id()));
/// overlap::block_on(async {
///     let mut file = overlap::fs::OpenOptions::new()
///         .read(true).write(true).create(true).truncate(true)
///         .open(&path).await?;
///     file.write_all(b"hello, world").await?;
///     file.seek(SeekFrom::Start(7)).await?;
///     let mut s = String::new();
///     file.read_to_string(&mut s).await?;
///     assert_eq!(s, "world");
///     # std::fs::remove_file(&path)?;
///     Ok::<_, std::io::Error>(())
/// }).unwrap();
/// ```
pub struct File {
    /// Shared with the jobs; the fd closes when the last of them lets go.
    std: Arc<StdFile>,
    /// For error messages.
    path: Option<Arc<Path>>,
    /// The one job in flight (see the type docs: ordering).
    job: Option<InFlight>,
    read: ReadBuf,
    /// The buffer a write with no job in flight copies its bytes into, to start a write
    /// job with. (Bytes accepted while a write job runs go to that job, through `handoff`.)
    ///
    /// # Invariant
    /// Empty between calls: the write that fills it hands it to a new job at once, so a
    /// `File` never holds accepted bytes no job will write (nor needs a `Drop` to write
    /// them). The checks for a non-empty one elsewhere are defensive.
    wbuf: Vec<u8>,
    /// A write job's buffer, back for reuse: by the next write job's batch (`wbuf`), or by
    /// the bytes handed to the job in flight, so a `File` holds two write buffers, not three.
    wspare: Vec<u8>,
    /// A write error not yet reported.
    error: Option<io::Error>,
    /// Bytes the fd's offset is ahead of the user's position, from discarded read-ahead;
    /// the next write or seek job moves it back first.
    rewind: u64,
    handoff: Arc<Mutex<Handoff>>,
    /// The fd has an offset (`lseek` works): reads may fetch ahead and be taken back. A
    /// pipe, FIFO or tty has none, so a `File` on one never rewinds nor discards reads.
    seekable: bool,
    /// A job never ran (its runtime shut down first, or no pool thread could start) and
    /// was submitted again: if that one fails too, the failure is reported.
    never_ran: bool,
    /// Bytes accepted from writes while a write job is in flight; past this, `write` waits
    /// for that job. One more buffer of this size is being written by the job: half of
    /// [`max_buf_size`](File::max_buf_size) each, at least 1.
    write_cap: usize,
    /// The `sendfile` run of a [`send_to`](File::send_to) that was dropped while it ran (or
    /// of the one running now): the next `send_to` waits for it, so its bytes follow.
    send_run: Option<Job<io::Result<crate::sys::Sent>>>,
}

struct InFlight {
    kind: Kind,
    job: Job<Done>,
    /// The `rewind` a read or seek job took over: given back if the job never runs.
    rewind: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
    Seek(SeekFrom),
    /// `set_len` to this size: moves the offset back to the reader, then truncates.
    Truncate(u64),
    /// A `read_at` or `read_exact_at` (`pread`): the offset does not move.
    ReadAt,
    /// A `write_at` or `write_all_at` (`pwrite`): the offset does not move.
    WriteAt,
}

impl File {
    /// Opens `path` read-only. On a FIFO it waits for a writer, on a pool thread: see
    /// [`OpenOptions::open`] for the way around it.
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path).await
    }

    /// Opens `path` write-only, creating it or truncating it.
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .await
    }

    /// Creates a new file at `path`, read-write, failing if it exists.
    pub async fn create_new(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .await
    }

    /// Options to open a file with; the same as [`OpenOptions::new`].
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Wraps an open std file. Its offset is used as is; error messages will not name a
    /// path.
    pub fn from_std(std: StdFile) -> File {
        File::from_parts(std, None)
    }

    /// The path errors name, if known.
    pub(crate) fn path_for_errors(&self) -> Option<Arc<Path>> {
        self.path.clone()
    }

    pub(crate) fn from_parts(std: StdFile, path: Option<Arc<Path>>) -> File {
        File::from_shared(Arc::new(std), path)
    }

    /// A `File` on an fd nothing is buffered or in flight for, at the fd's offset.
    fn from_shared(std: Arc<StdFile>, path: Option<Arc<Path>>) -> File {
        // `lseek(fd, 0, SEEK_CUR)`: fails (`ESPIPE`) on pipes, FIFOs, sockets and ttys; never
        // blocks.
        let seekable = (&*std).stream_position().is_ok();
        File {
            std,
            path,
            job: None,
            read: ReadBuf::new(seekable),
            wbuf: Vec::new(),
            wspare: Vec::new(),
            error: None,
            rewind: 0,
            handoff: Arc::default(),
            seekable,
            never_ran: false,
            write_cap: MAX_CHUNK / 2,
            send_run: None,
        }
    }

    /// Sets the size that bounds this `File`'s pool jobs and buffers (tokio's
    /// `set_max_buf_size`; default 2 MiB, `0` is taken as 1):
    ///
    /// - reads fetch ahead in chunks that grow up to `max_buf_size`, and the `File` holds at
    ///   most two of them; a read into a larger buffer of the caller's reads up to 4 times
    ///   `max_buf_size` in one job (the caller gets a short read beyond that);
    /// - written bytes gather up to half of it while a job writes the other half, so a
    ///   single `write` accepts at most `max_buf_size / 2` bytes, and what a `File` holds
    ///   for writing stays within `max_buf_size`.
    ///
    /// Lower it to bound the memory of many open files, raise it for fewer, larger
    /// syscalls. It applies to the jobs started after the call; a `File` made by
    /// [`try_clone`](File::try_clone) starts with the same `max_buf_size`, as in tokio.
    ///
    /// ```
    /// use overlap::io::{AsyncReadExt, AsyncWriteExt};
    /// # let path = std::env::temp_dir().join(format!("overlap-doc-maxbuf-{}", std::process::id()));
    /// overlap::block_on(async {
    ///     let mut file = overlap::fs::OpenOptions::new()
    ///         .read(true).write(true).create(true).truncate(true)
    ///         .open(&path).await?;
    ///     assert_eq!(file.max_buf_size(), 2 * 1024 * 1024);
    ///     file.set_max_buf_size(1024);
    ///     assert_eq!(file.write(&[7u8; 4096]).await?, 512, "half of it per write");
    ///     file.write_all(&[7u8; 4096 - 512]).await?;
    ///     file.seek(std::io::SeekFrom::Start(0)).await?;
    ///     let mut buf = vec![0u8; 8192];
    ///     assert_eq!(file.read(&mut buf).await?, 4096, "four times it for a big buffer");
    ///     # std::fs::remove_file(&path)?;
    ///     Ok::<_, std::io::Error>(())
    /// }).unwrap();
    /// ```
    pub fn set_max_buf_size(&mut self, max_buf_size: usize) {
        let max = max_buf_size.max(1);
        self.read.set_max(max);
        self.write_cap = (max / 2).max(1);
        if self.oversized(&self.wspare) {
            self.wspare = Vec::new();
        }
        if self.wbuf.is_empty() && self.oversized(&self.wbuf) {
            self.wbuf = Vec::new();
        }
    }

    /// Keeps an emptied write buffer for reuse, unless it is [oversized](File::oversized).
    fn keep_wspare(&mut self, buf: Vec<u8>) {
        if !self.oversized(&buf) {
            self.wspare = buf;
        }
    }

    /// Whether a write buffer grew under a larger `max_buf_size` than now (past twice the
    /// batch: a buffer grows by doubling), so that keeping it would hold more memory than
    /// the size now allows.
    fn oversized(&self, buf: &Vec<u8>) -> bool {
        buf.capacity() > self.write_cap.saturating_mul(2)
    }

    /// The size that bounds this `File`'s pool jobs and buffers; see
    /// [`set_max_buf_size`](File::set_max_buf_size) for what it bounds.
    pub fn max_buf_size(&self) -> usize {
        self.read.max()
    }

    /// Moves the offset to `pos`, after writing out buffered bytes, and returns the new
    /// offset from the start of the file. `SeekFrom::Current` counts from the reader's
    /// position (what has been read, not what was fetched ahead). A `SeekFrom::Start` past
    /// `i64::MAX`, the largest offset a file can have, is refused with
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) before anything is done; one landing
    /// before the start of the file (or past what its file system allows) fails with
    /// `InvalidInput` too, saying so, and leaves the position where it was.
    ///
    /// This is what `file.seek(pos)` calls, in preference to
    /// [`AsyncSeekExt::seek`](futures_util::io::AsyncSeekExt::seek). Each call is a seek of
    /// its own: one that was dropped before it completed still takes effect, first, if its
    /// job had started; one dropped while it still waited for an earlier operation's job or
    /// buffered writes does not move the offset at all. (Generic
    /// code going through [`AsyncSeek::poll_seek`](futures_util::io::AsyncSeek::poll_seek)
    /// cannot tell a new seek from the retry of a pending one with the same `pos`, and
    /// takes it as a retry; for `SeekFrom::Start` and `SeekFrom::End` that is the same.)
    ///
    /// ```
    /// use std::io::SeekFrom;
    /// use overlap::io::{AsyncReadExt, AsyncWriteExt};
    /// # let path = std::env::temp_dir().join(format!("overlap-doc-seek-{}", std::process::id()));
    /// overlap::block_on(async {
    ///     let mut file = overlap::fs::OpenOptions::new()
    ///         .read(true).write(true).create(true).truncate(true)
    ///         .open(&path).await?;
    ///     file.write_all(b"0123456789").await?;
    ///     assert_eq!(file.seek(SeekFrom::Start(2)).await?, 2);
    ///     let mut two = [0u8; 2];
    ///     file.read_exact(&mut two).await?;
    ///     assert_eq!(file.seek(SeekFrom::Current(3)).await?, 7);
    ///     assert_eq!(&two, b"23");
    ///     # std::fs::remove_file(&path)?;
    ///     Ok::<_, std::io::Error>(())
    /// }).unwrap();
    /// ```
    pub async fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        // A job in flight now belongs to an earlier operation, perhaps a dropped seek with
        // this very `pos`: let it land (its seek result is not ours) before ours starts.
        poll_fn(|cx| self.poll_job(cx).map(drop)).await;
        poll_fn(|cx| self.poll_seek_to(cx, pos)).await
    }

    /// Waits until no job is in flight and no byte is buffered for writing, then reports a
    /// pending write error.
    async fn settle(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_settle(cx)).await
    }

    fn poll_settle(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if self.job.is_some() {
                ready!(self.poll_job(cx));
            } else if !self.wbuf.is_empty() {
                self.submit_write();
            } else {
                return Poll::Ready(self.error.take().map_or(Ok(()), Err));
            }
        }
    }

    fn err(&self, e: io::Error, op: &'static str) -> io::Error {
        let e = explain_access(e, op, self.std.as_raw_fd());
        for_file(e, op, self.path.as_deref())
    }

    fn kind(&self) -> Option<Kind> {
        self.job.as_ref().map(|j| j.kind)
    }

    /// Makes the read buffer non-empty, or reports end-of-file (an empty buffer) or an
    /// error. `want` is the reader's buffer size (0: no preference).
    fn poll_fill(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<()>> {
        loop {
            if let Some(e) = self.error.take() {
                return Poll::Ready(Err(e));
            }
            match self.kind() {
                // Written bytes must reach the kernel before a read looks there.
                Some(Kind::Write | Kind::Seek(_) | Kind::Truncate(_) | Kind::WriteAt) => {
                    ready!(self.poll_job(cx));
                    continue;
                }
                None if !self.wbuf.is_empty() => {
                    self.submit_write();
                    continue;
                }
                _ => {}
            }
            if !self.read.is_empty() {
                if self.job.is_none() && self.read.wants_prefetch() {
                    self.submit_read(0);
                }
                return Poll::Ready(Ok(()));
            }
            if let Some(end) = self.read.take_end() {
                return Poll::Ready(end);
            }
            if self.job.is_some() {
                ready!(self.poll_job(cx));
            } else {
                self.submit_read(want);
            }
        }
    }

    fn poll_write_buf(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            if let Some(e) = self.error.take() {
                return Poll::Ready(Err(e));
            }
            match self.kind() {
                // A read-ahead, seek or truncation must land before the write, which then
                // starts from the reader's position (see `rewind`).
                Some(
                    Kind::Read | Kind::Seek(_) | Kind::Truncate(_) | Kind::ReadAt | Kind::WriteAt,
                ) => {
                    ready!(self.poll_job(cx));
                    continue;
                }
                // Collect a finished write job now so its buffer is free; never waits here.
                Some(Kind::Write) if self.poll_job(cx).is_ready() => continue,
                Some(Kind::Write) | None => {}
            }
            self.rewind += self.discard_reads();
            if self.job.is_none() && !self.wbuf.is_empty() {
                self.submit_write();
            }
            if self.job.is_some() {
                match self.hand_to_write_job(data) {
                    Some(n) => return Poll::Ready(Ok(n)),
                    // Its hand-offs are full, or it is done with them: wait for it.
                    None => {
                        ready!(self.poll_job(cx));
                        continue;
                    }
                }
            }
            let n = self.write_cap.min(data.len());
            if self.wbuf.capacity() == 0 {
                self.wbuf = std::mem::take(&mut self.wspare);
                self.wbuf.reserve(n.max(64 * 1024).min(self.write_cap));
            }
            self.wbuf.extend_from_slice(&data[..n]);
            self.submit_write();
            return Poll::Ready(Ok(n));
        }
    }

    /// Hands bytes of `data` (up to `write_cap` waiting at once) to the
    /// write job in flight, which writes them after its own before it finishes: accepted
    /// bytes never wait for another call on the `File` to go out. `None` if that job no
    /// longer takes any (it has seen its last hand-off) or its hand-offs are full.
    fn hand_to_write_job(&mut self, data: &[u8]) -> Option<usize> {
        // Only a write job is in flight here (reads, seeks and the rest were waited for),
        // and it took any `rewind` over: the bytes go on from where its own end.
        debug_assert_eq!(self.kind(), Some(Kind::Write));
        if self.rewind != 0 {
            return None;
        }
        let mut h = blocking::lock(&self.handoff);
        if !h.running {
            return None;
        }
        let room = self.write_cap.saturating_sub(h.handed.len());
        if room == 0 {
            return None;
        }
        let n = room.min(data.len());
        if h.handed.is_empty() && self.oversized(&h.handed) {
            // Grown under a larger `max_buf_size` than now: a job taking hand-offs for
            // long would otherwise keep swapping it back and forth with its own.
            h.handed = Vec::new();
        }
        if h.handed.capacity() == 0 {
            h.handed = std::mem::take(&mut self.wspare);
            h.handed.reserve(n.max(64 * 1024).min(self.write_cap));
        }
        h.handed.extend_from_slice(&data[..n]);
        Some(n)
    }

    fn poll_flush_writes(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            match self.kind() {
                // A `write_at` dropped after its job started counts as written before.
                Some(Kind::Write | Kind::WriteAt) => {
                    ready!(self.poll_job(cx));
                }
                None if !self.wbuf.is_empty() => self.submit_write(),
                // Nothing written is pending (see the `wbuf` invariant).
                _ => return Poll::Ready(self.error.take().map_or(Ok(()), Err)),
            }
        }
    }

    fn poll_seek_to(&mut self, cx: &mut Context<'_>, pos: SeekFrom) -> Poll<io::Result<u64>> {
        if let SeekFrom::Start(n) = pos {
            // std would hand the kernel a negative offset, refused as "Invalid argument".
            blocking::past_largest_offset(n, "offset").map_err(|e| self.err(e, "seek"))?;
        }
        loop {
            match self.kind() {
                Some(Kind::Seek(p)) if p == pos => {
                    if let Some(res) = ready!(self.poll_job(cx)) {
                        return Poll::Ready(res);
                    }
                }
                Some(_) => {
                    // Another seek's result is dropped: it was abandoned.
                    ready!(self.poll_job(cx));
                }
                None if !self.wbuf.is_empty() => self.submit_write(),
                None => {
                    if let Some(e) = self.error.take() {
                        return Poll::Ready(Err(e));
                    }
                    self.submit_seek(pos);
                }
            }
        }
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File")
            .field("std", &self.std)
            .field("path", &self.path)
            .field("job", &self.kind())
            .field("read_buffered", &self.read.available().len())
            .field("write_buffered", &self.wbuf.len())
            .finish()
    }
}
