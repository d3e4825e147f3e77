//! Handing a [`File`]'s fd on: to std ([`File::into_std`], [`File::try_into_std`]) or to a
//! second `File` ([`File::try_clone`]). All of them put the fd's offset where the reader is
//! first, so whoever gets the fd next starts where this `File`'s user left off.

use std::fs::File as StdFile;
use std::io::{self, SeekFrom};
use std::sync::Arc;

use super::File;

impl File {
    /// Waits for every job, writes out buffered bytes, moves the fd's offset back to the
    /// reader's position, and returns the std file. A pending write error is returned
    /// instead (and the file is closed). Bytes buffered from an fd that cannot seek (read
    /// through [`AsyncBufRead`](futures_util::io::AsyncBufRead) and not consumed) cannot be
    /// given back to it, and are dropped.
    ///
    /// If a dropped operation's job still holds the fd (a `metadata`, say), the std file is
    /// a duplicate of it (`dup`, sharing its offset); with no fd left for that, the error
    /// names the file, as `try_clone`'s does.
    pub async fn into_std(mut self) -> io::Result<StdFile> {
        self.settle_offset().await?;
        // What is still buffered came from an fd that cannot seek: it cannot go back.
        self.read.discard();
        // A dropped `metadata` or `send_to` may have left a job holding the fd: share it.
        self.try_into_std()
            .or_else(|file| file.std.try_clone().map_err(|e| file.err(e, "duplicate")))
    }

    /// The std file, at once, if nothing stands in the way; else `Err(self)`, unchanged.
    ///
    /// It succeeds only when no job is in flight or still holds the fd (one left running by
    /// a dropped operation), no written byte waits to go out, no read-ahead is buffered (the
    /// fd's offset is then where the reader is) and no write error waits to be reported:
    /// after [`flush`](futures_util::io::AsyncWriteExt::flush) and, if the file was read,
    /// a [`seek`](File::seek), say. [`into_std`](File::into_std) waits for all that instead.
    ///
    /// ```
    /// use overlap::io::AsyncWriteExt;
    /// # let path = std::env::temp_dir().join(format!("overlap-doc-tis-{}", std::process::id()));
    /// overlap::block_on(async {
    ///     let mut file = overlap::fs::File::create(&path).await?;
    ///     file.write_all(b"hello").await?;
    ///     // The write may still be on its way to the kernel.
    ///     let mut file = match file.try_into_std() {
    ///         Ok(_) => unreachable!("a write job is in flight"),
    ///         Err(file) => file,
    ///     };
    ///     file.flush().await?;
    ///     let std_file = file.try_into_std().expect("flushed, nothing buffered");
    ///     assert_eq!(std_file.metadata()?.len(), 5);
    ///     # std::fs::remove_file(&path)?;
    ///     Ok::<_, std::io::Error>(())
    /// }).unwrap();
    /// ```
    // tokio's signature: the `File` itself comes back, unchanged, to be used on.
    #[allow(clippy::result_large_err)]
    pub fn try_into_std(self) -> Result<StdFile, File> {
        let busy = self.job.is_some()
            || !self.wbuf.is_empty()
            || !self.read.is_empty()
            || self.rewind > 0
            || self.error.is_some();
        if busy || Arc::strong_count(&self.std) > 1 {
            return Err(self);
        }
        let (std, path) = (self.std.clone(), self.path.clone());
        // Nothing buffered: the drop writes nothing, and leaves `std` the only holder.
        drop(self);
        Arc::try_unwrap(std).map_err(|shared| File::from_shared(shared, path))
    }

    /// A second `File` on a duplicate of the fd (`dup`), sharing its offset, as
    /// [`std::fs::File::try_clone`] does.
    ///
    /// It first waits for the job in flight, writes out buffered bytes and gives back the
    /// read-ahead (moving the fd's offset back to where the reader is), so the clone starts
    /// where this `File`'s reader is, after every byte written through it. A pending write
    /// error is returned instead. Unlike tokio's, it takes `&mut self`: it changes what this
    /// `File` holds.
    ///
    /// The two `File`s share one offset but buffer on their own: a read through one moves
    /// the offset past its read-ahead, and a write waits in its buffer. Hand over from one to
    /// the other only at points where the one used last has nothing buffered: after a
    /// `flush` (and a `seek` if it read), or after another `try_clone`. Bytes buffered from
    /// an fd that cannot seek stay with this `File`.
    ///
    /// ```
    /// use overlap::io::AsyncWriteExt;
    /// # let path = std::env::temp_dir().join(format!("overlap-doc-clone-{}", std::process::id()));
    /// overlap::block_on(async {
    ///     let mut file = overlap::fs::File::create(&path).await?;
    ///     file.write_all(b"first, ").await?;
    ///     let mut clone = file.try_clone().await?;
    ///     clone.write_all(b"then the clone").await?;
    ///     clone.flush().await?;
    ///     assert_eq!(std::fs::read(&path)?, b"first, then the clone");
    ///     # std::fs::remove_file(&path)?;
    ///     Ok::<_, std::io::Error>(())
    /// }).unwrap();
    /// ```
    pub async fn try_clone(&mut self) -> io::Result<File> {
        self.settle_offset().await?;
        // `fcntl(F_DUPFD_CLOEXEC)`: never blocks.
        let std = self.std.try_clone().map_err(|e| self.err(e, "duplicate"))?;
        let mut clone = File::from_parts(std, self.path.clone());
        clone.set_max_buf_size(self.max_buf_size());
        Ok(clone)
    }

    /// Waits for every job, writes out buffered bytes and reports a pending write error,
    /// then drops the read-ahead of a seekable fd, moving its offset back to the reader's
    /// position: afterwards no job is in flight and the fd's offset is the reader's.
    async fn settle_offset(&mut self) -> io::Result<()> {
        self.settle().await?;
        if self.seekable && (self.rewind > 0 || !self.read.is_empty()) {
            // A seek job takes the read-ahead back (see `submit_seek`); dropped midway, it
            // still lands before the next operation.
            self.seek(SeekFrom::Current(0)).await?;
        }
        Ok(())
    }
}
