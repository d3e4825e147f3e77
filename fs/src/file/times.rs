//! A [`File`]'s access and modification times: std's `set_times` and `set_modified`, which
//! a copier needs to keep a source's mtime (tokio's `File` has neither).

use std::fs::{File as StdFile, FileTimes};
use std::io;
use std::time::SystemTime;

use super::File;

impl File {
    /// Sets the file's access and/or modification times (`futimens`), as
    /// [`std::fs::File::set_times`] does, after writing out buffered bytes: a write that
    /// landed afterwards would move the modification time on again. A `File` opened
    /// read-only will do for the file's owner.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use overlap::fs::{File, FileTimes};
    /// use overlap::io::AsyncWriteExt;
    /// # let path = std::env::temp_dir().join(format!("overlap-doc-times-{}", std::process::id()));
    /// overlap::block_on(async {
    ///     let then = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    ///     let mut file = File::create(&path).await?;
    ///     file.write_all(b"kept as of then").await?; // still buffered: written first
    ///     file.set_times(FileTimes::new().set_accessed(then).set_modified(then)).await?;
    ///     assert_eq!(file.metadata().await?.modified()?, then);
    ///     # std::fs::remove_file(&path)?;
    ///     Ok::<_, std::io::Error>(())
    /// }).unwrap();
    /// ```
    pub async fn set_times(&mut self, times: FileTimes) -> io::Result<()> {
        self.settle().await?;
        self.run_on_file("set times of", move |f| StdFile::set_times(f, times))
            .await
    }

    /// Sets the file's modification time, after writing out buffered bytes; the same as
    /// [`set_times`](File::set_times) with only a modification time.
    pub async fn set_modified(&mut self, time: SystemTime) -> io::Result<()> {
        self.set_times(FileTimes::new().set_modified(time)).await
    }
}
