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

    /// Truncates or extends the file to `size` bytes, after writing out buffered bytes (so
    /// it takes `&mut self`, where tokio's takes `&self`). The offset does not move. A `size` past `i64::MAX`, the largest a file can have, is
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
    ///
    /// It takes `&mut self` where tokio's takes `&self`: the bytes it writes out first are
    /// this handle's own buffer. So tokio code's `let file = ..; file.sync_all().await`
    /// needs `let mut file` here (rustc's E0596, "cannot borrow `file` as mutable"), as does
    /// a file taken back with `into_inner` from a `FramedWrite` or a `BufWriter` to be
    /// synced before a rename.
    ///
    /// ```
    /// use overlap::codec::{FramedWrite, LinesCodec};
    /// use overlap::sink::SinkExt;
    /// # let dir = std::env::temp_dir().join(format!("overlap-doc-sync-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// # let (tmp, path) = (dir.join("state.tmp"), dir.join("state"));
    /// overlap::block_on(async {
    ///     let file = overlap::fs::File::create(&tmp).await?;
    ///     let mut lines = FramedWrite::new(file, LinesCodec::new());
    ///     lines.send("saved").await.map_err(std::io::Error::other)?;
    ///     let mut file = lines.into_inner(); // `mut`: sync_all takes `&mut self`
    ///     file.sync_all().await?;
    ///     drop(file);
    ///     overlap::fs::rename(&tmp, &path).await?;
    ///     assert_eq!(std::fs::read(&path)?, b"saved\n");
    ///     # std::fs::remove_dir_all(&dir)?;
    ///     Ok::<_, std::io::Error>(())
    /// }).unwrap();
    /// ```
    pub async fn sync_all(&mut self) -> io::Result<()> {
        self.settle().await?;
        self.run_on_file("sync", StdFile::sync_all).await
    }

    /// Writes out buffered bytes, then flushes the data to the device (`fdatasync`).
    /// Like [`sync_all`](File::sync_all), it takes `&mut self` where tokio's takes `&self`.
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
