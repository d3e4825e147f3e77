//! tokio-stream's `ReadDirStream`: a [`ReadDir`] owned as a [`Stream`] of its entries.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::stream::{FusedStream, Stream};

use crate::{DirEntry, ReadDir};

/// A [`ReadDir`] owned as a [`Stream`] of its entries (tokio-stream's `ReadDirStream`, at
/// `overlap::stream::wrappers::ReadDirStream`). overlap's `ReadDir` is a stream already:
/// this carries tokio-stream's name and methods, so that code written with them builds
/// unchanged. It yields each entry (an error reading the directory as an `Err` item, the
/// path named in it) and ends after the last one; it is cancel-safe as
/// [`ReadDir::next_entry`] is.
///
/// ```
/// use overlap::stream::wrappers::ReadDirStream;
/// use overlap::stream::StreamExt;
/// # let dir = std::env::temp_dir().join(format!("overlap-doc-read-dir-stream-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
///
/// overlap::block_on(async {
///     overlap::fs::write(dir.join("a.txt"), "a").await?;
///     let mut entries = ReadDirStream::new(overlap::fs::read_dir(&dir).await?);
///     while let Some(entry) = entries.next().await {
///         let entry = entry?;
///         assert_eq!(entry.file_name(), "a.txt");
///         assert_eq!(entry.metadata().await?.len(), 1);
///     }
///     # overlap::fs::remove_dir_all(&dir).await?;
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
#[derive(Debug)]
pub struct ReadDirStream {
    inner: ReadDir,
}

impl ReadDirStream {
    /// Wraps `read_dir`.
    pub fn new(read_dir: ReadDir) -> ReadDirStream {
        ReadDirStream { inner: read_dir }
    }

    /// The `ReadDir` back, with the entries not yet yielded.
    pub fn into_inner(self) -> ReadDir {
        self.inner
    }
}

impl Stream for ReadDirStream {
    type Item = io::Result<DirEntry>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.get_mut().inner).poll_next(cx)
    }
}

/// Terminated once it has returned `None`, as its `ReadDir` is.
impl FusedStream for ReadDirStream {
    fn is_terminated(&self) -> bool {
        self.inner.is_terminated()
    }
}

impl AsRef<ReadDir> for ReadDirStream {
    fn as_ref(&self) -> &ReadDir {
        &self.inner
    }
}

impl AsMut<ReadDir> for ReadDirStream {
    fn as_mut(&mut self) -> &mut ReadDir {
        &mut self.inner
    }
}
