//! Positional reads and writes (`pread`/`pwrite`): each call names its offset, as the
//! `OVERLAPPED` structure of Windows' overlapped file I/O does, and the `File`'s own
//! position stays where it was.

use std::future::poll_fn;
use std::io;
use std::task::{ready, Context, Poll};

use super::blocking::{self, Done};
use super::{File, Kind};
use crate::at_offset;

/// A positional job's outcome and its buffer (empty if the job was lost).
type AtOutcome = (io::Result<usize>, Vec<u8>);

impl File {
    /// Reads up to `buf.len()` bytes from `offset` (`pread`), without moving the file's
    /// position, and returns how many it read: `0` at or past the end of the file. This is
    /// std's `FileExt::read_at`, which tokio's `File` lacks.
    ///
    /// Bytes this `File` buffered for writing go out first, so the read sees them. One call
    /// is one pool job of at most [`max_buf_size`](File::max_buf_size) bytes, so a larger
    /// `buf` gets a short read; [`read_exact_at`](File::read_exact_at) fills it all.
    ///
    /// It takes `&mut self` (std's takes `&self`): operations on one `File` run one job at a
    /// time, in order. Tasks that read one file at many offsets at once each take their own
    /// handle from [`try_clone`](File::try_clone); positional calls do not share a position.
    ///
    /// An fd without offsets (a pipe, FIFO or socket) refuses with `ESPIPE` ("Illegal
    /// seek"), and an `offset` past `i64::MAX` is refused with
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) before anything is done. Dropping the
    /// future before it completes changes nothing; its job, if it started, finishes before
    /// the `File`'s next operation.
    ///
    /// ```
    /// use overlap::io::{AsyncSeekExt, AsyncWriteExt};
    /// # let path = std::env::temp_dir().join(format!("overlap-doc-read-at-{}", std::process::id()));
    /// overlap::block_on(async {
    ///     let mut file = overlap::fs::OpenOptions::new()
    ///         .read(true).write(true).create(true).truncate(true)
    ///         .open(&path).await?;
    ///     file.write_all(b"0123456789").await?;
    ///     let mut four = [0u8; 4];
    ///     assert_eq!(file.read_at(&mut four, 3).await?, 4);
    ///     assert_eq!(&four, b"3456");
    ///     assert_eq!(file.read_at(&mut four, 8).await?, 2, "two bytes are left there");
    ///     assert_eq!(file.read_at(&mut four, 10).await?, 0, "the end of the file");
    ///     // The position is still after the written bytes.
    ///     assert_eq!(file.stream_position().await?, 10);
    ///     # std::fs::remove_file(&path)?;
    ///     Ok::<_, std::io::Error>(())
    /// }).unwrap();
    /// ```
    pub async fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let n = buf.len().min(self.max_buf_size());
        self.read_chunk_at(&mut buf[..n], offset, false).await
    }

    /// Fills all of `buf` from the bytes at `offset` on (`pread`, as many as it takes),
    /// without moving the file's position; std's `FileExt::read_exact_at`.
    ///
    /// It reads in pool jobs of up to [`max_buf_size`](File::max_buf_size) bytes each. A
    /// file that ends first gives [`UnexpectedEof`](io::ErrorKind::UnexpectedEof), naming
    /// the file, the offset where it ended and the range asked for, and what `buf` then
    /// holds is unspecified. Otherwise it is as [`read_at`](File::read_at).
    ///
    /// ```
    /// use overlap::io::AsyncWriteExt;
    /// # let path = std::env::temp_dir().join(format!("overlap-doc-read-exact-at-{}", std::process::id()));
    /// overlap::block_on(async {
    ///     let mut file = overlap::fs::File::options()
    ///         .read(true).write(true).create(true).truncate(true)
    ///         .open(&path).await?;
    ///     file.write_all(b"header:payload").await?;
    ///     let mut payload = [0u8; 7];
    ///     file.read_exact_at(&mut payload, 7).await?;
    ///     assert_eq!(&payload, b"payload");
    ///     let err = file.read_exact_at(&mut payload, 8).await.unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    ///     assert!(err.to_string().contains("the file ends at offset 14, before offset 15"));
    ///     # std::fs::remove_file(&path)?;
    ///     Ok::<_, std::io::Error>(())
    /// }).unwrap();
    /// ```
    pub async fn read_exact_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let chunk = self.max_buf_size();
        let read = async |part: &mut [u8], at: u64| self.read_chunk_at(part, at, true).await;
        let len = buf.len();
        match at_offset::read_exact_in_chunks(buf, offset, chunk, read).await? {
            Some(at) => Err(self.err(at_offset::ended_before(offset, len, at), "read")),
            None => Ok(()),
        }
    }

    /// Writes up to `buf.len()` bytes at `offset` (`pwrite`), without moving the file's
    /// position, and returns how many it wrote; std's `FileExt::write_at`. Writing past the
    /// end extends the file (a gap reads as zeros).
    ///
    /// Bytes this `File` buffered for writing go out first, so the two land in the order
    /// they were written, and bytes it read ahead are dropped, so later reads see these. One
    /// call is one pool job of at most [`max_buf_size`](File::max_buf_size) bytes, so a
    /// larger `buf` is written in part; [`write_all_at`](File::write_all_at) writes it all.
    ///
    /// On a file opened for appending, Linux's `pwrite` appends whatever the offset (as with
    /// std's `write_at`). As [`read_at`](File::read_at), it takes `&mut self`, an fd without
    /// offsets refuses with `ESPIPE`, and an `offset` past `i64::MAX` is refused. Dropped
    /// before it completes, it still writes, before the `File`'s next operation, once its
    /// job has started; dropped while it still waited for buffered writes or an earlier
    /// operation's job (its first step), it writes nothing.
    ///
    /// ```
    /// use overlap::io::AsyncWriteExt;
    /// # let path = std::env::temp_dir().join(format!("overlap-doc-write-at-{}", std::process::id()));
    /// overlap::block_on(async {
    ///     let mut file = overlap::fs::File::options()
    ///         .read(true).write(true).create(true).truncate(true)
    ///         .open(&path).await?;
    ///     file.write_all(b"hello, world").await?;
    ///     assert_eq!(file.write_at(b"WORLD", 7).await?, 5);
    ///     file.write_all(b"!").await?; // at the position, which did not move
    ///     file.flush().await?;
    ///     assert_eq!(std::fs::read(&path)?, b"hello, WORLD!");
    ///     # std::fs::remove_file(&path)?;
    ///     Ok::<_, std::io::Error>(())
    /// }).unwrap();
    /// ```
    pub async fn write_at(&mut self, buf: &[u8], offset: u64) -> io::Result<usize> {
        let n = buf.len().min(self.max_buf_size());
        self.write_chunk_at(&buf[..n], offset, false).await
    }

    /// Writes all of `buf` at `offset` on (`pwrite`, as many as it takes), without moving
    /// the file's position; std's `FileExt::write_all_at`.
    ///
    /// It writes in pool jobs of up to [`max_buf_size`](File::max_buf_size) bytes each; on
    /// an error, a prefix of `buf` may have been written. Otherwise it is as
    /// [`write_at`](File::write_at).
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("overlap-doc-write-all-at-{}", std::process::id()));
    /// overlap::block_on(async {
    ///     let mut file = overlap::fs::File::create(&path).await?;
    ///     // Blocks arriving out of order land where they belong.
    ///     file.write_all_at(b"world", 6).await?;
    ///     file.write_all_at(b"hello,", 0).await?;
    ///     assert_eq!(std::fs::read(&path)?, b"hello,world");
    ///     # std::fs::remove_file(&path)?;
    ///     Ok::<_, std::io::Error>(())
    /// }).unwrap();
    /// ```
    pub async fn write_all_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        let chunk = self.max_buf_size();
        let write = async |part: &[u8], at: u64| self.write_chunk_at(part, at, true).await;
        at_offset::write_all_in_chunks(buf, offset, chunk, write).await
    }

    /// One `read_at` job into `buf`, which fits in one job; `exact` reads on until it is
    /// full or the file ends.
    async fn read_chunk_at(
        &mut self,
        buf: &mut [u8],
        offset: u64,
        exact: bool,
    ) -> io::Result<usize> {
        blocking::past_largest_offset(offset, "offset").map_err(|e| self.err(e, "read"))?;
        if buf.is_empty() {
            return Ok(0);
        }
        self.settle().await?;
        let mut job_buf = std::mem::take(&mut self.wspare);
        job_buf.clear();
        job_buf.resize(buf.len(), 0);
        let std = self.std.clone();
        self.submit_at(Kind::ReadAt, move || {
            let res = at_offset::read_at(&std, &mut job_buf, offset, exact);
            Done::At { buf: job_buf, res }
        });
        let (res, mut job_buf) = poll_fn(|cx| self.poll_at(cx)).await;
        let res = res.map_err(|e| self.err(e, "read"));
        if let Ok(n) = res {
            buf[..n].copy_from_slice(&job_buf[..n]);
        }
        job_buf.clear();
        self.keep_wspare(job_buf);
        res
    }

    /// One `write_at` job of `buf`, which fits in one job; `all` writes on until all of it
    /// is written.
    async fn write_chunk_at(&mut self, buf: &[u8], offset: u64, all: bool) -> io::Result<usize> {
        blocking::past_largest_offset(offset, "offset").map_err(|e| self.err(e, "write"))?;
        if buf.is_empty() {
            return Ok(0);
        }
        self.settle().await?;
        // The read-ahead may hold bytes this write replaces; the fd's offset is ahead of
        // the reader by what it held, for the next read, write or seek to move back.
        self.rewind += self.discard_reads();
        let mut job_buf = std::mem::take(&mut self.wspare);
        job_buf.clear();
        job_buf.extend_from_slice(buf);
        let std = self.std.clone();
        self.submit_at(Kind::WriteAt, move || {
            let res = at_offset::write_at(&std, &job_buf, offset, all);
            Done::At { buf: job_buf, res }
        });
        let (res, mut job_buf) = poll_fn(|cx| self.poll_at(cx)).await;
        job_buf.clear();
        self.keep_wspare(job_buf);
        res.map_err(|e| self.err(e, "write"))
    }

    /// Waits for the positional job this caller submitted, which `&mut self` kept in the
    /// slot, and takes its outcome.
    fn poll_at(&mut self, cx: &mut Context<'_>) -> Poll<AtOutcome> {
        let Some(inflight) = &mut self.job else {
            return Poll::Ready((Err(lost_job()), Vec::new()));
        };
        let res = ready!(inflight.job.poll_value(cx));
        self.job = None;
        Poll::Ready(match res {
            Ok(Done::At { buf, res }) => (res, buf),
            Ok(_) => (Err(lost_job()), Vec::new()),
            // The runtime shut down before the job ran, or no pool thread could start.
            Err(e) => (Err(e), Vec::new()),
        })
    }
}

fn lost_job() -> io::Error {
    io::Error::other("the positional file operation's job was lost")
}
