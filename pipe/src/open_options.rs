//! Options for opening a FIFO: tokio's `net::unix::pipe::OpenOptions`.

use std::io;
use std::path::Path;

use crate::{Receiver, Sender};

/// Options for opening a FIFO, under tokio's name: [`Receiver::open`] and
/// [`Sender::open`] with a choice of access.
///
/// [`read_write(true)`](OpenOptions::read_write) opens the FIFO `O_RDWR` (Linux
/// defines this for a FIFO): the end opened is then both a reader and a writer of it, so
///
/// - a [`Sender`] opens even with no reader (where [`Sender::open`] fails with `ENXIO`),
///   and never gets `BrokenPipe` when the readers leave;
/// - a [`Receiver`] never reads end of file when the last other writer leaves: a daemon
///   reading a control FIFO that clients open and close waits for the next one instead
///   of reading 0 again and again.
///
/// Errors name the path, as `open`'s do. A path that is no FIFO fails with
/// `InvalidInput` (a directory opened for writing, by `open_sender` or with `read_write`,
/// fails with `IsADirectory`, as `open(2)` refuses it first). Tokio's `unchecked(true)`, which lets a character device through,
/// has no counterpart: the file type is always checked.
///
/// ```
/// use overlap::io::AsyncWriteExt;
/// use overlap::pipe::{OpenOptions, Sender};
///
/// let dir = std::env::temp_dir().join(format!("overlap-doc-fifo-rw-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("fifo");
/// let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
/// // SAFETY: `c_path` is a NUL-terminated path.
/// assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
///
/// overlap::block_on(async {
///     // No reader: a plain open is refused, a read-write one is not.
///     assert!(Sender::open(&path).is_err());
///     let mut tx = OpenOptions::new().read_write(true).open_sender(&path)?;
///     tx.write_all(b"kept for the next reader").await?;
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    read_write: bool,
}

impl OpenOptions {
    /// The default options: the FIFO opened for the end's own direction only, as
    /// [`Receiver::open`] and [`Sender::open`] do.
    pub fn new() -> OpenOptions {
        OpenOptions::default()
    }

    /// Whether to open the FIFO for reading and writing (`O_RDWR`) rather than for the
    /// end's direction only. See the type's docs for what that changes.
    pub fn read_write(&mut self, value: bool) -> &mut OpenOptions {
        self.read_write = value;
        self
    }

    /// Opens the FIFO at `path` as a [`Receiver`]. Without `read_write` this is
    /// [`Receiver::open`]; with it, reads never see end of file while the receiver lives,
    /// since it is a writer too.
    ///
    /// ```
    /// use overlap::io::{AsyncReadExt, AsyncWriteExt};
    /// use overlap::pipe::{OpenOptions, Sender};
    ///
    /// let dir = std::env::temp_dir().join(format!("overlap-doc-fifo-rx-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("fifo");
    /// let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    /// // SAFETY: `c_path` is a NUL-terminated path.
    /// assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    ///
    /// overlap::block_on(async {
    ///     let mut rx = OpenOptions::new().read_write(true).open_receiver(&path)?;
    ///     for client in ["one\n", "two\n"] {
    ///         let mut tx = Sender::open(&path)?;
    ///         tx.write_all(client.as_bytes()).await?;
    ///         // The client leaves: no end of file for the receiver.
    ///     }
    ///     let mut got = [0u8; 8];
    ///     rx.read_exact(&mut got).await?;
    ///     assert_eq!(&got, b"one\ntwo\n");
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn open_receiver(&self, path: impl AsRef<Path>) -> io::Result<Receiver> {
        let path = path.as_ref();
        let fd = crate::open_fifo(path, self.access(libc::O_RDONLY))?;
        Receiver::from_owned_fd(fd)
            .map_err(|e| overlap_runtime::io::with_path_context(e, "open", path, None))
    }

    /// Opens the FIFO at `path` as a [`Sender`]. Without `read_write` this is
    /// [`Sender::open`] (`ENXIO` with no reader); with it, the open succeeds with no
    /// reader, and writes go into the FIFO until it is full, for a reader to come.
    pub fn open_sender(&self, path: impl AsRef<Path>) -> io::Result<Sender> {
        let path = path.as_ref();
        let fd = crate::open_fifo(path, self.access(libc::O_WRONLY))?;
        Sender::from_owned_fd(fd)
            .map_err(|e| overlap_runtime::io::with_path_context(e, "open", path, None))
    }

    fn access(&self, own: libc::c_int) -> libc::c_int {
        if self.read_write {
            libc::O_RDWR
        } else {
            own
        }
    }
}
