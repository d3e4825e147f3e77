//! Errors that name the file they are about.
//!
//! std's errors say what went wrong but not to which path. Every error this crate returns for
//! a path keeps std's [`io::ErrorKind`] and adds the operation and the path to the message:
//! `failed to open /x/y: No such file or directory (os error 2)`. The original error stays
//! reachable as the [`source`](std::error::Error::source) of the message, and
//! `overlap::io::raw_os_error` reads its OS error code (`raw_os_error()` itself is `None`).

use std::error::Error;
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::path::Path;

use overlap_runtime::io::with_path_context;

/// Wraps `err` so its message names `op` and `path`; the kind is kept.
pub(crate) fn with_path(err: io::Error, op: &'static str, path: &Path) -> io::Error {
    with_path_context(err, op, path, None)
}

/// Like [`with_path`] for an operation from one path to another.
pub(crate) fn with_paths(err: io::Error, op: &'static str, from: &Path, to: &Path) -> io::Error {
    with_path_context(err, op, from, Some(to))
}

/// Turns an error about an open file into one naming its path, when the path is known
/// (a [`File`](crate::File) made by [`from_std`](crate::File::from_std) has none).
pub(crate) fn for_file(err: io::Error, op: &'static str, path: Option<&Path>) -> io::Error {
    match path {
        Some(p) => with_path(err, op, p),
        None => err,
    }
}

/// Says why, when `err` is the kernel's answer to an operation the fd was not opened for:
/// `EBADF` from a read of a file opened write-only or a write (buffered or positional) or a
/// hole punched in one opened read-only, `EINVAL` from `ftruncate` (`set_len`) on one opened read-only.
/// Bare, "Bad file descriptor" reads as a closed fd and "Invalid argument" as a bad
/// length. The kind and the OS error code (the wrapped error's) are kept; other errors
/// come back as they are.
pub(crate) fn explain_access(err: io::Error, op: &'static str, fd: RawFd) -> io::Error {
    let (needs, lacking) = match (op, err.raw_os_error()) {
        ("read", Some(libc::EBADF)) => ("reading", libc::O_WRONLY),
        ("write", Some(libc::EBADF))
        | ("punch a hole in", Some(libc::EBADF))
        | ("truncate", Some(libc::EINVAL)) => ("writing", libc::O_RDONLY),
        _ => return err,
    };
    if crate::sys::access_mode(fd) != Some(lacking) {
        return err;
    }
    io::Error::new(err.kind(), NotOpenFor { needs, source: err })
}

/// The payload of [`explain_access`]'s error.
#[derive(Debug)]
struct NotOpenFor {
    /// `"reading"` or `"writing"`.
    needs: &'static str,
    source: io::Error,
}

impl fmt::Display for NotOpenFor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let option = if self.needs == "reading" {
            "read"
        } else {
            "write"
        };
        write!(
            f,
            "the file is not open for {} (open it with {option}(true)): {}",
            self.needs, self.source
        )
    }
}

impl Error for NotOpenFor {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}
