//! [`PositionalFile`]: a file shared by many tasks, read and written only at offsets each
//! call names, with any number of operations in flight at once.

use std::fmt;
use std::fs::{File as StdFile, Metadata};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::Arc;

mod queue;

use queue::{Op, Shared};

use overlap_runtime::Registered;

use crate::at_offset;
use crate::error::{explain_access, for_file};
use crate::file::MAX_JOB_BYTES;
use crate::job::{self, run};
use crate::send_range::send_range;
use crate::sys;
use crate::File;

/// A file read and written only at offsets each call names (`pread`/`pwrite`): the model of
/// overlapped file I/O on Windows, where a handle has no position and every request
/// carries its offset. Its methods take `&self`, so any number of tasks may have reads and
/// writes in flight on one file at once: a database's page reads, a piece exchange's block
/// writes. They wait in one queue per file, which pool jobs drain side by side, up to
/// [`max_jobs`](PositionalFile::max_jobs) of them (the CPUs, by default), each taking
/// request after request without a trip to the pool for each. Cloning it is cheap and
/// shares the fd and the queue; it is `Send` and `Sync`.
///
/// Unlike a [`File`] it keeps no position and buffers nothing: each call goes to the
/// kernel on its own, at most 2 MiB per request (a longer `read_at` or `write_at` is short;
/// [`read_exact_at`](PositionalFile::read_exact_at) and
/// [`write_all_at`](PositionalFile::write_all_at) go on in further requests), copying
/// between the caller's buffer and the job's. [`read_vec_at`](PositionalFile::read_vec_at)
/// and [`write_vec_at`](PositionalFile::write_vec_at) move an owned `Vec` instead, with no
/// copy, in one request however long. Operations
/// in flight together are not ordered among themselves (unless `max_jobs` is 1): two
/// writes to the same bytes at once land in either order, as two threads' `pwrite`s do;
/// await a write before a read that must see it.
///
/// Dropping a call's future skips a read still waiting in the queue; anything else runs to
/// the end (see the crate's Cancellation section): a dropped write may still land, after
/// operations started later. The fd closes when the last clone is dropped and no job still
/// holds it.
///
/// On a file opened for appending, Linux's `pwrite` appends whatever the offset. An fd
/// without offsets (a pipe, FIFO or socket) refuses with `ESPIPE` ("Illegal seek"), an
/// offset past `i64::MAX` is refused with [`InvalidInput`](io::ErrorKind::InvalidInput),
/// and errors name the file, as [`File`]'s do.
///
/// ```
/// use overlap::fs::{OpenOptions, PositionalFile};
/// # let path = std::env::temp_dir().join(format!("overlap-doc-positional-{}", std::process::id()));
/// overlap::block_on(async {
///     let file = OpenOptions::new().read(true).write(true).create(true).truncate(true)
///         .open_positional(&path).await?;
///     // Eight blocks written by eight tasks at once, then read back at once.
///     let writers: Vec<_> = (0..8u8)
///         .map(|i| {
///             let file = file.clone();
///             overlap::spawn(async move { file.write_all_at(&[i; 512], i as u64 * 512).await })
///         })
///         .collect();
///     for w in writers {
///         w.await??;
///     }
///     let (mut a, mut b) = ([0u8; 512], [0u8; 512]);
///     let (ra, rb) = overlap::join!(file.read_exact_at(&mut a, 0), file.read_exact_at(&mut b, 3584));
///     ra?;
///     rb?;
///     assert_eq!((a[0], b[511]), (0, 7));
///     assert_eq!(file.metadata().await?.len(), 4096);
///     # std::fs::remove_file(&path)?;
///     Ok::<_, std::io::Error>(())
/// }).unwrap();
/// ```
#[derive(Clone)]
pub struct PositionalFile {
    shared: Arc<Shared>,
    /// For error messages.
    path: Option<Arc<Path>>,
}

impl PositionalFile {
    /// Opens `path` read-only. For writing (or creating), set up
    /// [`OpenOptions`](crate::OpenOptions) and call its
    /// [`open_positional`](crate::OpenOptions::open_positional).
    pub async fn open(path: impl AsRef<Path>) -> io::Result<PositionalFile> {
        crate::OpenOptions::new()
            .read(true)
            .open_positional(path)
            .await
    }

    /// A `PositionalFile` on a just-opened fd, named by `path` in errors.
    pub(crate) fn from_parts(std: StdFile, path: Option<Arc<Path>>) -> PositionalFile {
        PositionalFile {
            shared: Arc::new(Shared::new(std)),
            path,
        }
    }

    /// Takes over `file`'s fd, after its buffered writes are written out (as
    /// [`File::into_std`] does); its path goes on naming it in errors.
    pub async fn from_file(file: File) -> io::Result<PositionalFile> {
        let path = file.path_for_errors();
        let std = file.into_std().await?;
        Ok(PositionalFile::from_parts(std, path))
    }

    /// Takes over a std file; its errors name no path.
    pub fn from_std(std: StdFile) -> PositionalFile {
        PositionalFile::from_parts(std, None)
    }

    /// The std file back, if this is the last handle and no job still holds the fd; else
    /// `Err(self)`, unchanged. A job lets go of the fd before its caller learns it is
    /// done, so once every call made on the file has returned, only a dropped call still
    /// running (a write that started, a `send_to` run) can keep it.
    // The handle itself comes back, as from `File::try_into_std`.
    #[allow(clippy::result_large_err)]
    pub fn try_into_std(self) -> Result<StdFile, PositionalFile> {
        let path = self.path;
        Arc::try_unwrap(self.shared)
            .map(|shared| shared.std)
            .map_err(|shared| PositionalFile { shared, path })
    }

    /// How many pool jobs this file's requests run on at most at once (shared by its
    /// clones); see [`set_max_jobs`](PositionalFile::set_max_jobs).
    pub fn max_jobs(&self) -> usize {
        self.shared.max_jobs()
    }

    /// Sets how many pool jobs this file's requests (its clones' too) run on at most at
    /// once; `0` is taken as 1. Requests wait in one queue per file, and a job takes them
    /// one after another until the queue is empty, so one running job costs a request no
    /// trip to the pool; another starts while requests outnumber the jobs, up to this.
    ///
    /// The default is the number of CPUs (`available_parallelism`), which suits bytes in
    /// the page cache: more jobs than CPUs only take turns. A device that serves many
    /// requests at once (an NVMe drive, a network file system) answers more of them with
    /// more in flight, as many as the tasks keep outstanding: raise it to that depth. With
    /// `1`, requests run one at a time in the order they were made
    /// ([`set_len`](PositionalFile::set_len), [`sync_all`](PositionalFile::sync_all) and
    /// [`sync_data`](PositionalFile::sync_data) among them; [`metadata`](PositionalFile::metadata)
    /// runs apart, at once).
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("overlap-doc-max-jobs-{}", std::process::id()));
    /// # std::fs::write(&path, b"x").unwrap();
    /// overlap::block_on(async {
    ///     let file = overlap::fs::PositionalFile::open(&path).await?;
    ///     assert!(file.max_jobs() >= 1);
    ///     file.set_max_jobs(32); // a drive that likes a deep queue
    ///     assert_eq!(file.clone().max_jobs(), 32);
    ///     # std::fs::remove_file(&path)?;
    ///     Ok::<_, std::io::Error>(())
    /// }).unwrap();
    /// ```
    pub fn set_max_jobs(&self, n: usize) {
        self.shared.set_max_jobs(n);
    }

    /// Reads up to `buf.len()` bytes (at most 2 MiB) from `offset` and returns how many it
    /// read: `0` at or past the end of the file.
    pub async fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let n = buf.len().min(MAX_JOB_BYTES);
        self.read_chunk_at(&mut buf[..n], offset, false).await
    }

    /// Fills all of `buf` from `offset` on, in jobs of up to 2 MiB; a file that ends first
    /// gives [`UnexpectedEof`](io::ErrorKind::UnexpectedEof), with `buf`'s contents then
    /// unspecified. Its message names the file, the offset where it ended, and the range
    /// asked for (`the file ends at offset 5, before offset 8 (the end of the 4 bytes asked
    /// for from offset 4)`).
    pub async fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let chunk = MAX_JOB_BYTES;
        let read = async |part: &mut [u8], at: u64| self.read_chunk_at(part, at, true).await;
        let len = buf.len();
        match at_offset::read_exact_in_chunks(buf, offset, chunk, read).await? {
            Some(at) => Err(self.err(at_offset::ended_before(offset, len, at), "read")),
            None => Ok(()),
        }
    }

    /// Writes up to `buf.len()` bytes (at most 2 MiB) at `offset` and returns how many it
    /// wrote. Writing past the end extends the file (a gap reads as zeros).
    pub async fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        let n = buf.len().min(MAX_JOB_BYTES);
        self.write_chunk_at(&buf[..n], offset, false).await
    }

    /// Writes all of `buf` at `offset` on, in jobs of up to 2 MiB; on an error, a prefix
    /// of it may have been written.
    pub async fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let chunk = MAX_JOB_BYTES;
        let write = async |part: &[u8], at: u64| self.write_chunk_at(part, at, true).await;
        at_offset::write_all_in_chunks(buf, offset, chunk, write).await
    }

    /// Reads up to `len` bytes from `offset` into a new `Vec` and hands it over: fewer
    /// bytes only where the file ends (none at or past its end). Unlike
    /// [`read_exact_at`](PositionalFile::read_exact_at) it needs no buffer of the caller's
    /// and copies nothing after the `pread`s: the pool job's own buffer is the result. It
    /// runs as one request however long, so a large read holds one pool thread until it
    /// is done. A read of more than 1 MiB from a regular file sizes its buffer by the
    /// file's size first, so a `len` taken from a corrupt header costs no buffer longer
    /// than the bytes there are; a file holding more than its size says (one that grew
    /// meanwhile, or procfs's, which say 0) is still read on, up to `len`. A `len` no
    /// buffer can hold is refused with [`OutOfMemory`](io::ErrorKind::OutOfMemory) before
    /// anything is read.
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("overlap-doc-read-vec-at-{}", std::process::id()));
    /// overlap::block_on(async {
    ///     overlap::fs::write(&path, "header|body bytes").await?;
    ///     let file = overlap::fs::PositionalFile::open(&path).await?;
    ///     assert_eq!(file.read_vec_at(4, 7).await?, b"body");
    ///     // The file ends first: the bytes there are.
    ///     assert_eq!(file.read_vec_at(100, 12).await?, b"bytes");
    ///     assert!(file.read_vec_at(10, 1000).await?.is_empty());
    ///     # std::fs::remove_file(&path)?;
    ///     Ok::<_, std::io::Error>(())
    /// }).unwrap();
    /// ```
    pub async fn read_vec_at(&self, len: usize, offset: u64) -> io::Result<Vec<u8>> {
        // No file has bytes past `i64::MAX`, and the kernel refuses a read reaching there.
        let room = (i64::MAX as u64).saturating_sub(offset);
        let len = len.min(usize::try_from(room).unwrap_or(usize::MAX));
        let op = Op::Read {
            offset,
            len,
            exact: true,
        };
        let (n, mut bytes) = self.submit_at(offset, op, "read").await?;
        bytes.truncate(n);
        Ok(bytes)
    }

    /// Writes all of `bytes` at `offset` on, taking the buffer instead of copying it, as
    /// one request however long (a large write holds one pool thread until it is done),
    /// and gives the buffer back, its bytes as they were, for the next write to reuse. On
    /// an error, a prefix of it may have been written, and the buffer is dropped. Dropped
    /// before it completes, the write may still land, as
    /// [`write_all_at`](PositionalFile::write_all_at)'s may.
    ///
    /// ```
    /// use overlap::fs::{OpenOptions, PositionalFile};
    /// # let path = std::env::temp_dir().join(format!("overlap-doc-write-vec-at-{}", std::process::id()));
    /// overlap::block_on(async {
    ///     let file = OpenOptions::new().read(true).write(true).create(true).truncate(true)
    ///         .open_positional(&path).await?;
    ///     let block = vec![7u8; 3 << 20]; // 3 MiB, written in one request, not copied
    ///     let mut block = file.write_vec_at(block, 4096).await?;
    ///     // The same buffer again, refilled.
    ///     block.fill(9);
    ///     block.truncate(10);
    ///     file.write_vec_at(block, 0).await?;
    ///     assert_eq!(file.metadata().await?.len(), 4096 + (3 << 20));
    ///     assert_eq!(file.read_vec_at(3, 9).await?, [9, 0, 0]);
    ///     assert_eq!(file.read_vec_at(2, 4095).await?, [0, 7]);
    ///     # std::fs::remove_file(&path)?;
    ///     Ok::<_, std::io::Error>(())
    /// }).unwrap();
    /// ```
    pub async fn write_vec_at(&self, bytes: Vec<u8>, offset: u64) -> io::Result<Vec<u8>> {
        let op = Op::Write {
            offset,
            bytes,
            all: true,
        };
        self.submit_at(offset, op, "write")
            .await
            .map(|(_, bytes)| bytes)
    }

    /// Sends up to `len` bytes of the file from `offset` to `to` (a socket or a pipe on the
    /// reactor) with `sendfile(2)`, never through user memory, as
    /// [`File::send_to`] does (see it for the errors and the file changing meanwhile), and
    /// returns how many went: fewer than `len` only when the file ends first.
    ///
    /// Its `sendfile` runs go to the pool on their own, beside the queue, so they are not
    /// ordered with the requests (a write made before it, awaited, is sent). Dropped before
    /// it completes, a run already in flight finishes in the background, and unlike
    /// `File::send_to` nothing makes the next send to the same destination wait for it:
    /// many tasks share a `PositionalFile`, so a task sending to a connection awaits its
    /// sends (or closes the connection after dropping one).
    ///
    /// ```
    /// use overlap::io::AsyncReadExt;
    /// use overlap::net::UnixStream;
    /// # let path = std::env::temp_dir().join(format!("overlap-doc-pf-send-{}", std::process::id()));
    /// overlap::block_on(async {
    ///     overlap::fs::write(&path, "blob one|blob two").await?;
    ///     let file = overlap::fs::PositionalFile::open(&path).await?;
    ///     let (a, mut b) = UnixStream::pair()?;
    ///     assert_eq!(file.send_to(&a, 9, 8).await?, 8);
    ///     let mut got = [0u8; 8];
    ///     b.read_exact(&mut got).await?;
    ///     assert_eq!(&got, b"blob two");
    ///     # std::fs::remove_file(&path)?;
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub async fn send_to<D: Registered + ?Sized>(
        &self,
        to: &D,
        offset: u64,
        len: u64,
    ) -> io::Result<u64> {
        if len == 0 {
            return Ok(0);
        }
        let named = |e| for_file(e, "send", self.path.as_deref());
        let run = async |dest: Arc<OwnedFd>, at: u64, left: u64| {
            let shared = self.shared.clone();
            job::spawn(move || sys::sendfile(shared.std.as_raw_fd(), dest.as_raw_fd(), at, left))
                .await
        };
        send_range(to, offset, len, named, run).await
    }

    /// The file's metadata (`fstat`), counting every write that completed.
    pub async fn metadata(&self) -> io::Result<Metadata> {
        self.run_on_file("stat", |f| f.metadata()).await
    }

    /// Truncates or extends the file to `size` bytes; a `size` past `i64::MAX` is refused
    /// with [`InvalidInput`](io::ErrorKind::InvalidInput). It waits in the file's queue
    /// as a write does: with [`set_max_jobs(1)`](Self::set_max_jobs), it runs after every
    /// request made before it.
    pub async fn set_len(&self, size: u64) -> io::Result<()> {
        crate::file::past_largest_offset(size, "size").map_err(|e| self.err(e, "truncate"))?;
        self.run_queued(Op::SetLen { size }, "truncate").await
    }

    /// Deallocates the `len` bytes from `offset` (`fallocate` with `FALLOC_FL_PUNCH_HOLE`
    /// and `FALLOC_FL_KEEP_SIZE`): they read as zeros from then on and take no room on
    /// the device (partial blocks at either end are zeroed in place), and the file's size
    /// stays, also for a range reaching past its end. What a block device's discard (an
    /// NBD `TRIM`, an SSD's `TRIM`) or a sparse image's "write zeroes" asks of a file.
    ///
    /// It waits in the file's queue as a write does (with
    /// [`set_max_jobs(1)`](Self::set_max_jobs), after every request made before it). `len`
    /// 0 does nothing. A range past `i64::MAX` is refused with
    /// [`InvalidInput`](io::ErrorKind::InvalidInput); a file system without holes
    /// (some network and FUSE file systems) with
    /// [`Unsupported`](io::ErrorKind::Unsupported) (`EOPNOTSUPP`), so a caller can write
    /// zeros instead; a file not open for writing with `EBADF`, the message saying so.
    ///
    /// ```
    /// use overlap::fs::OpenOptions;
    /// # let path = std::env::temp_dir().join(format!("overlap-doc-punch-hole-{}", std::process::id()));
    /// overlap::block_on(async {
    ///     let file = OpenOptions::new().read(true).write(true).create(true).truncate(true)
    ///         .open_positional(&path).await?;
    ///     file.write_vec_at(vec![7u8; 3 * 4096], 0).await?;
    ///     match file.punch_hole(1000, 4096).await {
    ///         Ok(()) => {}
    ///         // No holes here: zeros written instead.
    ///         Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {
    ///             file.write_vec_at(vec![0; 4096], 1000).await.map(drop)?
    ///         }
    ///         Err(e) => return Err(e),
    ///     }
    ///     assert_eq!(file.read_vec_at(3, 999).await?, [7, 0, 0]);
    ///     assert_eq!(file.read_vec_at(2, 5095).await?, [0, 7]);
    ///     assert_eq!(file.metadata().await?.len(), 3 * 4096);
    ///     # std::fs::remove_file(&path)?;
    ///     Ok::<_, std::io::Error>(())
    /// }).unwrap();
    /// ```
    pub async fn punch_hole(&self, offset: u64, len: u64) -> io::Result<()> {
        let name = "punch a hole in";
        let end = offset.saturating_add(len);
        crate::file::past_largest_offset(end, "range end").map_err(|e| self.err(e, name))?;
        if len == 0 {
            return Ok(());
        }
        self.run_queued(Op::PunchHole { offset, len }, name).await
    }

    /// Flushes data and metadata to the device (`fsync`): every write that completed before
    /// the call is durable once it returns. It waits in the file's queue as a write does:
    /// with [`set_max_jobs(1)`](Self::set_max_jobs), it runs after every request made
    /// before it, so those writes are durable too.
    pub async fn sync_all(&self) -> io::Result<()> {
        self.run_queued(Op::Sync { data_only: false }, "sync").await
    }

    /// Flushes the data to the device (`fdatasync`), as [`sync_all`](Self::sync_all) does.
    ///
    /// With one job at most, a group commit needs to await only the sync: the writes made
    /// before it have run when it returns.
    ///
    /// ```
    /// use overlap::fs::{OpenOptions, PositionalFile};
    /// # let path = std::env::temp_dir().join(format!("overlap-doc-sync-queued-{}", std::process::id()));
    /// overlap::block_on(async {
    ///     let file = OpenOptions::new().read(true).write(true).create(true).truncate(true)
    ///         .open(&path).await?;
    ///     let file = PositionalFile::from_file(file).await?;
    ///     file.set_max_jobs(1);
    ///     // Three records appended at once, then one sync for all of them: once it is
    ///     // done, so are they.
    ///     let sync = async {
    ///         file.sync_data().await?;
    ///         file.metadata().await.map(|m| m.len())
    ///     };
    ///     let (a, b, c, len) = overlap::join!(
    ///         file.write_all_at(b"first record....", 0),
    ///         file.write_all_at(b"second record...", 16),
    ///         file.write_all_at(b"third record....", 32),
    ///         sync,
    ///     );
    ///     (a?, b?, c?);
    ///     assert_eq!(len?, 48);
    ///     # std::fs::remove_file(&path)?;
    ///     Ok::<_, std::io::Error>(())
    /// }).unwrap();
    /// ```
    pub async fn sync_data(&self) -> io::Result<()> {
        self.run_queued(Op::Sync { data_only: true }, "sync").await
    }

    async fn read_chunk_at(&self, buf: &mut [u8], offset: u64, exact: bool) -> io::Result<usize> {
        let len = buf.len();
        let op = Op::Read { offset, len, exact };
        let (n, bytes) = self.submit_at(offset, op, "read").await?;
        buf[..n].copy_from_slice(&bytes[..n]);
        Ok(n)
    }

    async fn write_chunk_at(&self, buf: &[u8], offset: u64, all: bool) -> io::Result<usize> {
        let bytes = buf.to_vec();
        let op = Op::Write { offset, bytes, all };
        Ok(self.submit_at(offset, op, "write").await?.0)
    }

    /// Refuses an `offset` past `i64::MAX`, then queues `op` unless it moves no bytes,
    /// naming the file in its error.
    async fn submit_at(
        &self,
        offset: u64,
        op: Op,
        name: &'static str,
    ) -> io::Result<(usize, Vec<u8>)> {
        crate::file::past_largest_offset(offset, "offset").map_err(|e| self.err(e, name))?;
        match op.without_a_job() {
            Ok(outcome) => outcome,
            Err(op) => self.shared.submit(op).await.map_err(|e| self.err(e, name)),
        }
    }

    /// Queues `op` (one whose outcome carries no bytes), naming the file in its error.
    async fn run_queued(&self, op: Op, name: &'static str) -> io::Result<()> {
        self.shared
            .submit(op)
            .await
            .map(drop)
            .map_err(|e| self.err(e, name))
    }

    /// Runs one std call on the fd in a job of its own, naming the file in its error.
    async fn run_on_file<T, F>(&self, op: &'static str, f: F) -> io::Result<T>
    where
        F: FnOnce(&StdFile) -> io::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let (shared, path) = (self.shared.clone(), self.path.clone());
        run(move || {
            f(&shared.std).map_err(|e| {
                let e = explain_access(e, op, shared.std.as_raw_fd());
                for_file(e, op, path.as_deref())
            })
        })
        .await
    }

    fn err(&self, e: io::Error, op: &'static str) -> io::Error {
        let e = explain_access(e, op, self.shared.std.as_raw_fd());
        for_file(e, op, self.path.as_deref())
    }
}

impl From<StdFile> for PositionalFile {
    fn from(std: StdFile) -> PositionalFile {
        PositionalFile::from_std(std)
    }
}

impl AsFd for PositionalFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.shared.std.as_fd()
    }
}

impl AsRawFd for PositionalFile {
    fn as_raw_fd(&self) -> RawFd {
        self.shared.std.as_raw_fd()
    }
}

impl fmt::Debug for PositionalFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PositionalFile")
            .field("std", &self.shared.std)
            .field("path", &self.path)
            .finish()
    }
}
