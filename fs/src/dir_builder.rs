//! [`DirBuilder`]: how to create a directory.

use std::fs as stdfs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use crate::ops::one_path;

/// Options for creating a directory, the async twin of [`std::fs::DirBuilder`] (and tokio's
/// `fs::DirBuilder`). [`create`](DirBuilder::create) runs as one job on the blocking pool,
/// whole chain of parents included.
///
/// ```
/// use overlap::fs::DirBuilder;
/// use std::os::unix::fs::PermissionsExt;
/// # let dir = std::env::temp_dir().join(format!("overlap-doc-dirbuilder-{}", std::process::id()));
/// overlap::block_on(async {
///     let deep = dir.join("a/b/c");
///     DirBuilder::new().recursive(true).mode(0o700).create(&deep).await?;
///     let mode = overlap::fs::metadata(&deep).await?.permissions().mode();
///     assert_eq!(mode & 0o077, 0, "no bits for group or others");
///     // Not recursive: the directory exists already.
///     let err = DirBuilder::new().create(&deep).await.unwrap_err();
///     assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
///     overlap::fs::remove_dir_all(&dir).await
/// })
/// .unwrap();
/// ```
#[derive(Clone, Debug, Default)]
pub struct DirBuilder {
    recursive: bool,
    /// `None`: std's default, `0o777`.
    mode: Option<u32>,
}

impl DirBuilder {
    /// Options that create one directory (its parent must exist), with mode `0o777` before
    /// the umask.
    pub fn new() -> DirBuilder {
        DirBuilder::default()
    }

    /// Whether [`create`](DirBuilder::create) also creates missing parents, and takes a
    /// directory that exists already as success. Off by default: a missing parent fails
    /// with [`NotFound`](io::ErrorKind::NotFound), an existing path with
    /// [`AlreadyExists`](io::ErrorKind::AlreadyExists). Recursive, it outlasts a
    /// concurrent removal of the chain, as [`create_dir_all`](crate::create_dir_all) does.
    pub fn recursive(&mut self, recursive: bool) -> &mut DirBuilder {
        self.recursive = recursive;
        self
    }

    /// The permission bits of each directory created, before the process's umask takes its
    /// bits away (as `mkdir(2)` does). Default `0o777`.
    pub fn mode(&mut self, mode: u32) -> &mut DirBuilder {
        self.mode = Some(mode);
        self
    }

    /// Creates the directory at `path` with these options, in one job. Errors keep std's
    /// kind and name the path: `failed to create directory /x/y: No such file or directory
    /// (os error 2)`.
    pub async fn create(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let mut builder = stdfs::DirBuilder::new();
        builder.recursive(self.recursive);
        if let Some(mode) = self.mode {
            builder.mode(mode);
        }
        let recursive = self.recursive;
        one_path(path.as_ref(), "create directory", move |p| {
            if recursive {
                create_recursive(&builder, p)
            } else {
                builder.create(p)
            }
        })
        .await
    }
}

/// How many times [`create_recursive`] starts again after an error a concurrent removal
/// can cause. Each such error means another removal came between two steps of the chain's
/// making; an error that is not from a race (a parent that is a file) comes back after
/// that many tries of a few syscalls each.
const RACE_RETRIES: usize = 16;

/// std's recursive `create` (`builder` has `recursive(true)`), started again when it fails
/// with [`NotFound`](io::ErrorKind::NotFound) or
/// [`AlreadyExists`](io::ErrorKind::AlreadyExists). Both come from a removal racing it: std
/// makes the parents, then the directory, which fails `NotFound` if a parent was removed in
/// between; or it finds the directory existing (`EEXIST`), then checks that it is a
/// directory, which fails if it was removed in between, and reports `EEXIST`.
pub(crate) fn create_recursive(builder: &stdfs::DirBuilder, path: &Path) -> io::Result<()> {
    let mut tries = 0;
    loop {
        match builder.create(path) {
            Err(e) if tries < RACE_RETRIES && lost_to_a_removal(&e) => tries += 1,
            other => return other,
        }
    }
}

/// Whether `err` is one a removal racing a recursive create can cause.
fn lost_to_a_removal(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::AlreadyExists
    )
}
