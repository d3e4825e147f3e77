//! Errors that name the file they are about.
//!
//! std's errors say what went wrong but not to which path. Every error this crate returns for
//! a path keeps std's [`io::ErrorKind`] and adds the operation and the path to the message:
//! `failed to open /x/y: No such file or directory (os error 2)`. The original error stays
//! reachable as the [`source`](std::error::Error::source) of the message, and
//! `overlap::io::raw_os_error` reads its OS error code (`raw_os_error()` itself is `None`).

use std::io;
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
