//! The control FIFO: made if missing (an existing path must be a FIFO), opened in one of
//! three ways at end of file, and watched for being deleted or replaced under the daemon.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use overlap::pipe::{OpenOptions, Receiver};

/// What the daemon does about "every writer has closed the FIFO".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EofMode {
    /// Holds a write end itself (`O_RDWR`, tokio's `read_write(true)`): end of file never
    /// comes, reads wait for the next client.
    KeepWriter,
    /// Reads to end of file, then opens the FIFO again: reads wait for the next client.
    Reopen,
    /// The first version: treats a read of 0 as "nothing now" and reads again. At end of
    /// file every read returns 0 at once, so this spins until a writer comes (it gives up
    /// after `SPIN_GUARD` reads in a row).
    Naive,
}

/// Reads of 0 in a row after which the naive loop gives up.
pub const SPIN_GUARD: u64 = 10_000;

/// Which FIFO an fd or path is: `(device, inode)`.
pub type Identity = (u64, u64);

/// Makes the FIFO at `path` unless it is there; what is there must be a FIFO. Whether it
/// was made here (and so is the daemon's to remove).
pub fn ensure_fifo(path: &Path) -> io::Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_fifo() => Ok(false),
        Ok(meta) => Err(not_a_fifo(path, &meta)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            mkfifo(path)?;
            Ok(true)
        }
        Err(e) => Err(e),
    }
}

fn mkfifo(path: &Path) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in the FIFO's path"))?;
    // SAFETY: `c` is a NUL-terminated path that outlives the call.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("mkfifo {}: {e}", path.display()),
        ));
    }
    Ok(())
}

fn not_a_fifo(path: &Path, meta: &std::fs::Metadata) -> io::Error {
    let ft = meta.file_type();
    let what = if ft.is_dir() {
        "a directory"
    } else if ft.is_socket() {
        "a Unix socket"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_file() {
        "a regular file"
    } else {
        "not a FIFO"
    };
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("control path {} is {what}, not a FIFO", path.display()),
    )
}

pub fn open(path: &Path, mode: EofMode) -> io::Result<(Receiver, Identity)> {
    let rx = match mode {
        EofMode::KeepWriter => OpenOptions::new().read_write(true).open_receiver(path)?,
        EofMode::Reopen | EofMode::Naive => Receiver::open(path)?,
    };
    let meta = std::fs::metadata(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&rx)
    ))?;
    Ok((rx, (meta.dev(), meta.ino())))
}

/// What the path holds now, against the FIFO the daemon has open.
#[derive(Debug, PartialEq, Eq)]
pub enum PathState {
    Same,
    /// Deleted: made again.
    Recreated,
    /// Another FIFO is there now.
    Replaced,
}

/// Looks at `path`: deleted, it is made again; another FIFO, the daemon should open it; no
/// FIFO any more, an error.
pub fn check_path(path: &Path, ours: Identity) -> io::Result<PathState> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_fifo() => Err(not_a_fifo(path, &meta)),
        Ok(meta) if (meta.dev(), meta.ino()) == ours => Ok(PathState::Same),
        Ok(_) => Ok(PathState::Replaced),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            mkfifo(path)?;
            Ok(PathState::Recreated)
        }
        Err(e) => Err(e),
    }
}

/// Which FIFO `path` is now, if it is one.
pub fn check_ident(path: &Path) -> Option<Identity> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    meta.file_type().is_fifo().then(|| (meta.dev(), meta.ino()))
}
