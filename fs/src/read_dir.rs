//! [`read_dir`]: a directory's entries as a [`Stream`], fetched from the pool in batches.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::fs::{self as stdfs, FileType, Metadata};
use std::future::poll_fn;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use futures_core::Stream;

use crate::error::with_path;
use crate::job::{self, run, Job};

/// Entries fetched per job: enough that a large directory costs few trips to the pool, small
/// enough that the first entries arrive quickly.
const BATCH: usize = 256;

/// Opens the directory at `path` for listing (one job), returning a [`ReadDir`] stream.
///
/// `.` and `..` are not listed; the order is the file system's.
///
/// ```
/// use overlap::stream::StreamExt;
/// # let dir = std::env::temp_dir().join(format!("overlap-doc-read-dir-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// overlap::block_on(async {
///     overlap::fs::write(dir.join("a"), "x").await?;
///     let mut names = Vec::new();
///     let mut entries = overlap::fs::read_dir(&dir).await?;
///     while let Some(entry) = entries.next().await {
///         names.push(entry?.file_name());
///     }
///     assert_eq!(names, ["a"]);
///     # std::fs::remove_dir_all(&dir)?;
///     Ok::<_, std::io::Error>(())
/// }).unwrap();
/// ```
pub async fn read_dir(path: impl AsRef<Path>) -> io::Result<ReadDir> {
    let path: Arc<Path> = path.as_ref().into();
    let p = path.clone();
    let inner =
        run(move || stdfs::read_dir(&p).map_err(|e| with_path(e, "read directory", &p))).await?;
    Ok(ReadDir {
        path,
        state: State::Idle(Some(inner)),
        ready: VecDeque::new(),
        ended: false,
        rescue: Rescue::default(),
        fetched_again: false,
    })
}

/// Where a fetch job dropped without running (its runtime shut down while it was queued,
/// or no pool thread could start) puts the std iterator back, for the `ReadDir` to go on
/// with.
type Rescue = Arc<Mutex<Option<stdfs::ReadDir>>>;

/// The std iterator, lent to a fetch job: the job takes it when it runs; dropped unrun, it
/// goes back to the [`Rescue`] slot.
struct Lent {
    iter: Option<stdfs::ReadDir>,
    rescue: Rescue,
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Some(iter) = self.iter.take() {
            // Only an iterator moves under this lock; a poisoned one is still consistent.
            *self.rescue.lock().unwrap_or_else(|e| e.into_inner()) = Some(iter);
        }
    }
}

/// A batch fetched by one job: the std iterator back (or `None` at the end) and the entries.
type Batch = (Option<stdfs::ReadDir>, Vec<io::Result<DirEntry>>);

/// The entries of a directory, as a [`Stream`] of `io::Result<DirEntry>`.
///
/// Each job on the pool reads up to 256 entries (and their file types, which usually come
/// free with the listing), so a directory of 10,000 files takes about 40 trips, not 10,000.
/// Dropping the stream while a batch is being read lets that job finish in the background.
/// A batch whose job never ran (its runtime shut down with the job still queued) is fetched
/// again by the next call, under whichever runtime polls it then, so no entry is lost; only
/// if that job cannot run either does the call fail, and the stream then ends.
pub struct ReadDir {
    path: Arc<Path>,
    state: State,
    ready: VecDeque<io::Result<DirEntry>>,
    /// `None` was returned: the stream is terminated (`FusedStream`).
    ended: bool,
    /// Where a fetch job that never ran leaves the iterator.
    rescue: Rescue,
    /// The batch being fetched is the second try of one whose job never ran: if this job
    /// never runs either, the stream ends. Kept across calls, as a job's failure to start
    /// is reported to a later poll (a call kept only in a local fetched it again at every
    /// poll, spinning for as long as no pool thread could start).
    fetched_again: bool,
}

enum State {
    /// The std iterator, or `None` once it is exhausted.
    Idle(Option<stdfs::ReadDir>),
    Fetching(Job<Batch>),
}

impl ReadDir {
    /// The next entry, or `None` at the end; a method twin of [`Stream::poll_next`].
    /// Cancel-safe: the batch being fetched stays with the `ReadDir`, for the next call.
    pub async fn next_entry(&mut self) -> io::Result<Option<DirEntry>> {
        poll_fn(|cx| self.poll_next_entry(cx)).await
    }

    /// Polls for the next entry (tokio's `poll_next_entry`): `Ready(Ok(None))` at the end.
    /// On `Pending`, the waker of `cx` is woken when the batch being fetched arrives.
    pub fn poll_next_entry(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<DirEntry>>> {
        self.poll_entry(cx).map(Option::transpose)
    }

    fn poll_entry(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<DirEntry>>> {
        // A batch that never ran is fetched again once: a second one that cannot run
        // either (no pool thread starts) ends the stream with its error.
        loop {
            if let Some(entry) = self.ready.pop_front() {
                return Poll::Ready(Some(entry));
            }
            match &mut self.state {
                State::Idle(None) => {
                    self.ended = true;
                    return Poll::Ready(None);
                }
                State::Idle(iter) => {
                    let lent = Lent {
                        iter: iter.take(),
                        rescue: self.rescue.clone(),
                    };
                    let path = self.path.clone();
                    self.state = State::Fetching(job::spawn(move || {
                        let mut lent = lent;
                        let Some(mut iter) = lent.iter.take() else {
                            return (None, Vec::new());
                        };
                        let batch = fetch(&mut iter, &path);
                        let more = batch.len() == BATCH;
                        (more.then_some(iter), batch)
                    }));
                }
                State::Fetching(fetch_job) => {
                    let res = ready!(fetch_job.poll_value(cx));
                    match res {
                        Ok((iter, batch)) => {
                            self.fetched_again = false;
                            self.state = State::Idle(iter);
                            self.ready.extend(batch);
                        }
                        Err(e) => {
                            // Only a job now sure never to run has given the iterator back.
                            let outside = fetch_job.outside_runtime();
                            let rescued = fetch_job.abandon().then(|| self.take_rescued());
                            match rescued.flatten() {
                                // Polled outside any runtime: the error, with the iterator
                                // kept for a call inside one.
                                Some(iter) if outside => {
                                    self.fetched_again = false;
                                    self.state = State::Idle(Some(iter));
                                    return Poll::Ready(Some(Err(e)));
                                }
                                Some(iter) if !self.fetched_again => {
                                    self.fetched_again = true;
                                    self.state = State::Idle(Some(iter));
                                }
                                _ => {
                                    self.state = State::Idle(None);
                                    return Poll::Ready(Some(Err(e)));
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The iterator a fetch job dropped unrun gave back, if any.
    fn take_rescued(&self) -> Option<stdfs::ReadDir> {
        self.rescue.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Reads up to [`BATCH`] entries on a pool thread.
fn fetch(iter: &mut stdfs::ReadDir, dir: &Path) -> Vec<io::Result<DirEntry>> {
    let mut batch = Vec::with_capacity(BATCH);
    for entry in iter.by_ref().take(BATCH) {
        batch.push(
            entry
                .map(|std| {
                    // Usually from the listing's d_type; an lstat only on file systems
                    // that do not fill it in, and that happens here, off the loop.
                    let file_type = std.file_type().ok();
                    DirEntry {
                        std: Arc::new(std),
                        file_type,
                    }
                })
                .map_err(|e| with_path(e, "read directory", dir)),
        );
    }
    batch
}

impl Stream for ReadDir {
    type Item = io::Result<DirEntry>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_entry(cx)
    }
}

/// Terminated once it has returned `None`.
impl futures_core::stream::FusedStream for ReadDir {
    fn is_terminated(&self) -> bool {
        self.ended
    }
}

impl fmt::Debug for ReadDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadDir")
            .field("path", &self.path)
            .field("buffered", &self.ready.len())
            .finish()
    }
}

/// One entry of a [`ReadDir`].
#[derive(Clone)]
pub struct DirEntry {
    std: Arc<stdfs::DirEntry>,
    /// Fetched with the batch; `None` if that failed (then asked again, in a job).
    file_type: Option<FileType>,
}

impl DirEntry {
    /// The full path: the directory given to [`read_dir`] joined with the file name.
    pub fn path(&self) -> PathBuf {
        self.std.path()
    }

    /// The bare file name.
    pub fn file_name(&self) -> OsString {
        self.std.file_name()
    }

    /// The entry's inode number, from the listing (no syscall): `st_ino` of its
    /// [`metadata`](DirEntry::metadata), but for a mount point, whose listing shows the
    /// covered directory's.
    pub fn ino(&self) -> u64 {
        std::os::unix::fs::DirEntryExt::ino(&*self.std)
    }

    /// The entry's file type, not following symlinks. Usually known from the listing, so
    /// this rarely needs the pool.
    pub async fn file_type(&self) -> io::Result<FileType> {
        if let Some(t) = self.file_type {
            return Ok(t);
        }
        let std = self.std.clone();
        run(move || {
            std.file_type()
                .map_err(|e| with_path(e, "lstat", &std.path()))
        })
        .await
    }

    /// The entry's metadata, not following symlinks (one job).
    pub async fn metadata(&self) -> io::Result<Metadata> {
        let std = self.std.clone();
        run(move || {
            std.metadata()
                .map_err(|e| with_path(e, "lstat", &std.path()))
        })
        .await
    }
}

impl fmt::Debug for DirEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DirEntry").field(&self.path()).finish()
    }
}
