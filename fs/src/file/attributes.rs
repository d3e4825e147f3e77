//! The operations on the whole file rather than its bytes at the offset: its metadata,
//! its length, its permissions and the syncs to the device, each one pool job after the
//! buffered writes have gone out.

use std::fs::{File as StdFile, Metadata, Permissions};
use std::future::poll_fn;
use std::io;

use super::{blocking, File};
use crate::error::for_file;
use crate::job::run;

impl File {
    /// The file's metadata (`fstat`). Bytes still buffered or in flight may not be counted
    /// in its length yet: `flush` first for an exact size.
    pub async fn metadata(&self) -> io::Result<Metadata> {
        let (std, path) = (self.std.clone(), self.path.clone());
        run(move || {
            std.metadata()
                .map_err(|e| for_file(e, "stat", path.as_deref()))
        })
        .await
    }

    /// Truncates or extends the file to `size` bytes, after writing out buffered bytes. The
    /// offset does not move. A `size` past `i64::MAX`, the largest a file can have, is
    /// refused with [`InvalidInput`](io::ErrorKind::InvalidInput) before anything is done.
    ///
    /// Dropped before it completes, the truncation still happens, before anything the `File`
    /// does next through `&mut self`, once it has started: a `set_len` dropped while it still
    /// waited for earlier writes or another operation's job (its first step) never truncates.
    /// ([`metadata`](File::metadata), through `&self`, waits for no job: `flush` first.)
    ///
    /// ```
    /// use overlap::io::AsyncWriteExt;
    /// # let path = std::env::temp_dir().join(format!("overlap-doc-setlen-{}", std::process::id()));
    /// overlap::block_on(async {
    ///     let mut file = overlap::fs::File::create(&path).await?;
    ///     file.write_all(b"0123456789").await?;
    ///     file.set_len(4).await?; // the buffered bytes are written first
    ///     assert_eq!(file.metadata().await?.len(), 4);
    ///     file.sync_all().await?; // and to the device
    ///     # std::fs::remove_file(&path)?;
    ///     Ok::<_, std::io::Error>(())
    /// }).unwrap();
    /// ```
    pub async fn set_len(&mut self, size: u64) -> io::Result<()> {
        blocking::past_largest_offset(size, "size").map_err(|e| self.err(e, "truncate"))?;
        self.settle().await?;
        self.submit_truncate(size);
        // The job in flight is the one just submitted: `&mut self` kept every other
        // operation out since `settle` emptied the slot.
        match poll_fn(|cx| self.poll_job(cx)).await {
            Some(res) => res.map(drop),
            // Its job never ran, twice.
            None => self.error.take().map_or(Ok(()), Err),
        }
    }

    /// Writes out buffered bytes, then flushes data and metadata to the device (`fsync`).
    pub async fn sync_all(&mut self) -> io::Result<()> {
        self.settle().await?;
        self.run_on_file("sync", StdFile::sync_all).await
    }

    /// Writes out buffered bytes, then flushes the data to the device (`fdatasync`).
    pub async fn sync_data(&mut self) -> io::Result<()> {
        self.settle().await?;
        self.run_on_file("sync", StdFile::sync_data).await
    }

    /// Changes the file's permissions (`fchmod`), after writing out buffered bytes: a
    /// write landing afterwards would clear a setuid or setgid bit just set (the kernel
    /// drops them on a write by a process without `CAP_FSETID`). So it takes `&mut self`,
    /// where tokio's takes `&self`.
    pub async fn set_permissions(&mut self, perm: Permissions) -> io::Result<()> {
        self.settle().await?;
        self.run_on_file("set permissions of", move |f| f.set_permissions(perm))
            .await
    }

    /// Runs one std call on the fd in a job, naming the file in its error.
    pub(super) async fn run_on_file<T, F>(&self, op: &'static str, f: F) -> io::Result<T>
    where
        F: FnOnce(&StdFile) -> io::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let (std, path) = (self.std.clone(), self.path.clone());
        run(move || f(&std).map_err(|e| for_file(e, op, path.as_deref()))).await
    }
}
