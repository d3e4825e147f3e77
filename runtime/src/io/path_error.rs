//! Errors that name the path they are about, and reading the OS error code behind them.
//!
//! std's errors say what went wrong but not to which path. overlap's fs and FIFO errors keep
//! std's [`io::ErrorKind`] and add the operation and the path to the message: `failed to
//! open /x/y: No such file or directory (os error 2)`. The price: such an error is not an OS
//! error itself, so its [`raw_os_error`](io::Error::raw_os_error) is `None`. The original
//! error is its [`source`](std::error::Error::source), and [`raw_os_error`] reads the code
//! from either kind of error.

use std::error::Error;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The OS error code (`errno`) behind `err`: its own
/// [`raw_os_error`](io::Error::raw_os_error), or, for an error that wraps another (as
/// overlap's fs and FIFO errors wrap std's to name the path), that of the error it wraps.
///
/// Use it where you would call `err.raw_os_error()` on a std or tokio error, for codes
/// that have no stable [`io::ErrorKind`] (`EMFILE`, `ENXIO`, `ELOOP`, ...).
///
/// ```
/// # overlap::block_on(async {
/// let err = overlap::fs::read("/no/such/file").await.unwrap_err();
/// assert_eq!(err.raw_os_error(), None); // the error names the path, so it is not an OS error
/// assert_eq!(overlap::io::raw_os_error(&err), Some(libc::ENOENT));
/// assert!(err.to_string().contains("/no/such/file"));
/// # });
/// ```
pub fn raw_os_error(err: &io::Error) -> Option<i32> {
    let mut current: &(dyn Error + 'static) = err;
    loop {
        if let Some(code) = current
            .downcast_ref::<io::Error>()
            .and_then(io::Error::raw_os_error)
        {
            return Some(code);
        }
        // An io::Error's own `source()` skips the error it wraps: look at that one first.
        current = match current
            .downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
        {
            Some(inner) => inner,
            None => current.source()?,
        };
    }
}

/// `err` with the operation and the path (or the two paths) in its message; its kind is
/// kept and it stays the [`source`](Error::source). For overlap's fs and pipe crates.
#[doc(hidden)]
pub fn with_path_context(
    err: io::Error,
    op: &'static str,
    path: &Path,
    to: Option<&Path>,
) -> io::Error {
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
        write!(f, "failed to {} {}", self.op, Named(&self.path))?;
        if let Some(to) = &self.to {
            write!(f, " to {}", Named(to))?;
        }
        write!(f, ": {}", self.source)
    }
}

/// A path as a message names it: as it is, or, when empty, as `the empty path ""` (which
/// would otherwise read as a missing word: `failed to stat : ...`).
struct Named<'a>(&'a Path);

impl fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.as_os_str().is_empty() {
            f.write_str("the empty path \"\"")
        } else {
            self.0.display().fmt(f)
        }
    }
}

impl Error for PathError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}
