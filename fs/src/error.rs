//! Errors that name the file they are about.
//!
//! std's errors say what went wrong but not to which path. Every error this crate returns for
//! a path keeps std's [`io::ErrorKind`] and adds the operation and the path to the message:
//! `failed to open /x/y: No such file or directory (os error 2)`. The original error stays
//! reachable as the [`source`](std::error::Error::source) of the message.

use std::error::Error;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The payload of a path-annotated [`io::Error`].
#[derive(Debug)]
struct PathError {
    op: &'static str,
    path: PathBuf,
    /// A second path, for operations on two (`rename a to b`).
    to: Option<PathBuf>,
    source: io::Error,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "failed to {} {}", self.op, self.path.display())?;
        if let Some(to) = &self.to {
            write!(f, " to {}", to.display())?;
        }
        write!(f, ": {}", self.source)
    }
}

impl Error for PathError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

/// Wraps `err` so its message names `op` and `path`; the kind is kept.
pub(crate) fn with_path(err: io::Error, op: &'static str, path: &Path) -> io::Error {
    annotate(err, op, path, None)
}

/// Like [`with_path`] for an operation from one path to another.
pub(crate) fn with_paths(err: io::Error, op: &'static str, from: &Path, to: &Path) -> io::Error {
    annotate(err, op, from, Some(to))
}

fn annotate(err: io::Error, op: &'static str, path: &Path, to: Option<&Path>) -> io::Error {
    io::Error::new(
        err.kind(),
        PathError {
            op,
            path: path.to_owned(),
            to: to.map(Path::to_owned),
            source: err,
        },
    )
}

/// Turns an error about an open file into one naming its path, when the path is known
/// (a [`File`](crate::File) made by [`from_std`](crate::File::from_std) has none).
pub(crate) fn for_file(err: io::Error, op: &'static str, path: Option<&Path>) -> io::Error {
    match path {
        Some(p) => with_path(err, op, p),
        None => err,
    }
}
