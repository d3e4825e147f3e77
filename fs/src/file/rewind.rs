//! [`File::rewind`], tokio's `AsyncSeekExt::rewind`, which futures-util's `AsyncSeekExt`
//! lacks.

use std::io::{self, SeekFrom};

use super::File;

impl File {
    /// Moves the offset back to the start of the file, after writing out buffered bytes,
    /// as tokio's `AsyncSeekExt::rewind` (and std's `Seek::rewind`) does: the same as
    /// [`seek(SeekFrom::Start(0))`](File::seek) with the position dropped. Bytes read ahead
    /// are dropped, so what follows reads the file as it is now.
    ///
    /// A program checking a file it has just written (a compacted log read back before it
    /// replaces the old one) writes, rewinds and reads:
    ///
    /// ```
    /// use overlap::io::{AsyncReadExt, AsyncWriteExt};
    /// # let path = std::env::temp_dir().join(format!("overlap-doc-rewind-{}", std::process::id()));
    /// overlap::block_on(async {
    ///     let mut file = overlap::fs::OpenOptions::new()
    ///         .read(true).write(true).create(true).truncate(true)
    ///         .open(&path).await?;
    ///     file.write_all(b"written, then read back").await?; // still buffered: written first
    ///     file.rewind().await?;
    ///     let mut back = String::new();
    ///     file.read_to_string(&mut back).await?;
    ///     assert_eq!(back, "written, then read back");
    ///     # std::fs::remove_file(&path)?;
    ///     Ok::<_, std::io::Error>(())
    /// }).unwrap();
    /// ```
    ///
    /// Dropped before it completes, it behaves as a dropped [`seek`](File::seek): once its
    /// job has started, the offset still moves, before anything the `File` does next.
    pub async fn rewind(&mut self) -> io::Result<()> {
        self.seek(SeekFrom::Start(0)).await.map(drop)
    }
}
