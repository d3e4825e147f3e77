//! The free functions: async twins of `std::fs`'s, each one job on the blocking pool.
//!
//! Every function here moves its arguments into a single job that makes the whole std call
//! (for [`read`]: open, `fstat` for the size, read, close), so it costs one trip to the pool
//! however big the file. Errors keep std's [`io::ErrorKind`] and name the path.
//!
//! Dropping one of these futures before it completes does not stop the job: it finishes on
//! its pool thread and the result is discarded. A dropped [`write`] may therefore still
//! create and fill the file.

use std::fs::{self as stdfs, Metadata, Permissions};
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{with_path, with_paths};
use crate::job::run;

/// Reads the whole file at `path` into a vector, in one job (the file's size, from `fstat`,
/// sizes the buffer up front).
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("overlap-doc-read-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// overlap::block_on(async {
///     let path = dir.join("greeting");
///     overlap::fs::write(&path, b"hello").await?;
///     assert_eq!(overlap::fs::read(&path).await?, b"hello");
///     # std::fs::remove_dir_all(&dir)?;
///     Ok::<_, std::io::Error>(())
/// }).unwrap();
/// ```
pub async fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let path = path.as_ref().to_owned();
    run(move || stdfs::read(&path).map_err(|e| with_path(e, "read", &path))).await
}

/// Reads the whole file at `path` into a string; invalid UTF-8 is an
/// [`InvalidData`](io::ErrorKind::InvalidData) error.
pub async fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    let path = path.as_ref().to_owned();
    run(move || stdfs::read_to_string(&path).map_err(|e| with_path(e, "read", &path))).await
}

/// Creates or truncates the file at `path` and writes all of `contents`, in one job.
///
/// Takes anything that views as bytes, as `std::fs::write` does (`&vec`, `"text"`, a
/// `String`, …); the bytes are copied into the job, which outlives any borrow.
pub async fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    let contents = contents.as_ref().to_vec();
    run(move || stdfs::write(&path, contents).map_err(|e| with_path(e, "write", &path))).await
}

/// Copies the contents and permission bits of `from` to `to` (created or truncated), in one
/// job; returns the number of bytes copied. The kernel copies (`copy_file_range`) where it
/// can. An error names both paths and, for a failed open, which side it was: `failed to copy
/// a to b: failed to open a: Permission denied`, or `...: failed to create b: ...`. A setuid
/// or setgid bit is kept, where `std::fs::copy` run by an ordinary user loses it (the kernel
/// clears it on the copy's writes, which std makes after setting the mode).
///
/// Two cases where [`std::fs::copy`] does harm are refused with
/// [`InvalidInput`](io::ErrorKind::InvalidInput) before anything is opened:
///
/// - `from` and `to` are the same file (the same path, a hard link or a symlink to it):
///   std would truncate it to 0 bytes;
/// - `from` is not a regular file (or a symlink to one), such as a FIFO: std would first
///   open it, which for a FIFO waits (on a pool thread) until a writer comes, only to refuse
///   it then.
pub async fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<u64> {
    let (from, to) = (from.as_ref().to_owned(), to.as_ref().to_owned());
    run(move || copy_file(&from, &to).map_err(|e| with_paths(e, "copy", &from, &to))).await
}

/// [`std::fs::copy`]'s steps, after checking (with `stat`, which never blocks) that `from`
/// is a regular file and that `to` is not that same file. A file swapped in between the
/// check and the copy is not caught; a careless caller's mistake is. Made here rather than
/// by calling std, so that an error says which side failed (`failed to open` the source,
/// `failed to create` the destination) under the caller's `failed to copy A to B`.
fn copy_file(from: &Path, to: &Path) -> io::Result<u64> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
    let src = stdfs::metadata(from).map_err(|e| with_path(e, "open", from))?;
    if !src.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the source is not a regular file (nor a symlink to one)",
        ));
    }
    // A missing destination (or one that cannot be looked at) is left to the open below.
    if let Ok(dst) = stdfs::metadata(to) {
        if (dst.dev(), dst.ino()) == (src.dev(), src.ino()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the source and destination are the same file",
            ));
        }
    }
    // As std does: the destination gets the source's mode before the bytes go in (so an
    // existing, more open destination is closed first), also when it existed already (when
    // it is a regular file: not, say, /dev/null).
    let mut reader = stdfs::File::open(from).map_err(|e| with_path(e, "open", from))?;
    let perm = reader
        .metadata()
        .map_err(|e| with_path(e, "stat", from))?
        .permissions();
    let mut writer = stdfs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(perm.mode())
        .open(to)
        .map_err(|e| with_path(e, "create", to))?;
    let dst = writer.metadata().map_err(|e| with_path(e, "stat", to))?;
    if dst.is_file() {
        writer
            .set_permissions(perm.clone())
            .map_err(|e| with_path(e, "set permissions of", to))?;
    }
    // std's `io::copy` between two files uses `copy_file_range` (or `sendfile`) where it can,
    // as `std::fs::copy` does.
    let copied = io::copy(&mut reader, &mut writer)?;
    // The kernel clears setuid and setgid on those writes (for a process without
    // `CAP_FSETID`): set them again, or the copy of a setuid file is not one.
    if dst.is_file() && perm.mode() & 0o6000 != 0 {
        writer
            .set_permissions(perm)
            .map_err(|e| with_path(e, "set permissions of", to))?;
    }
    Ok(copied)
}

/// Renames `from` to `to`, replacing `to` if it exists (see [`std::fs::rename`]).
pub async fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let (from, to) = (from.as_ref().to_owned(), to.as_ref().to_owned());
    run(move || stdfs::rename(&from, &to).map_err(|e| with_paths(e, "rename", &from, &to))).await
}

/// Runs a one-path std function in a job, naming the path in its error.
pub(crate) async fn one_path<T, F>(path: &Path, op: &'static str, f: F) -> io::Result<T>
where
    F: FnOnce(&Path) -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let path = path.to_owned();
    run(move || f(&path).map_err(|e| with_path(e, op, &path))).await
}

/// Removes the file (or symlink) at `path`.
pub async fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    one_path(path.as_ref(), "remove file", |p| stdfs::remove_file(p)).await
}

/// Removes the empty directory at `path`.
pub async fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    one_path(path.as_ref(), "remove directory", |p| stdfs::remove_dir(p)).await
}

/// Removes the directory at `path` and everything in it, in one job.
///
/// The walk holds 16 directories open at most, however deep the tree: std's holds one
/// per level, so a tree deeper than the open-file limit (1,024 by default) fails there
/// with "Too many open files", half-emptied. (Below 16 levels it walks as std's does;
/// deeper, a level it closed is opened again through the `..` of the one below.) An entry removed by someone else meanwhile is
/// no error; one added meanwhile may make a directory's removal fail with
/// [`DirectoryNotEmpty`](io::ErrorKind::DirectoryNotEmpty), as with std. A directory of
/// the tree moved elsewhere while the walk is in it stops the walk with an error, rather
/// than remove what is then outside the tree.
///
/// Symlinks are never followed: one inside the tree is removed, not what it points at, and
/// a `path` that is itself a symlink removes only the link. A symlink to a directory named
/// with a trailing `/` (or `/.`), such as `link/`, is refused with
/// [`NotADirectory`](io::ErrorKind::NotADirectory) before anything is removed: such a path
/// resolves to the link's target, which [`std::fs::remove_dir_all`] would empty before
/// failing to remove `link/` itself.
///
/// A path whose last component is `.` or `..` (`dir/.`, `dir/sub/..`, `.`, trailing
/// slashes or not) is refused with [`InvalidInput`](io::ErrorKind::InvalidInput) before
/// anything is removed, as `rm -r` refuses it: std would empty the directory it names and
/// then fail to remove it (or, for `dir/sub/..`, report success with `dir` emptied and
/// still there). Name the directory itself instead.
pub async fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    one_path(path.as_ref(), "remove directory", |p| {
        refuse_final_link_with_slash(p)?;
        refuse_final_dots(p)?;
        crate::remove_tree::remove_tree(p)
    })
    .await
}

/// Fails if `path` ends in `/` or `/.` after a component that is a symlink to a directory
/// (see [`remove_dir_all`]); a link to anything else is left to std's own error. An `lstat`
/// and a `stat`, for such paths only.
fn refuse_final_link_with_slash(path: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    if !(bytes.ends_with(b"/") || bytes.ends_with(b"/.")) {
        return Ok(());
    }
    // `components` drops trailing slashes and `.`s: what is left ends with the named entry.
    let named: PathBuf = path.components().collect();
    if named.file_name().is_some()
        && stdfs::symlink_metadata(&named).is_ok_and(|m| m.file_type().is_symlink())
        && stdfs::metadata(&named).is_ok_and(|m| m.is_dir())
    {
        return Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            "the path names a symlink with a trailing `/`: the link's target would be emptied \
             (remove the link without the `/`, or the target by its own path)",
        ));
    }
    Ok(())
}

/// Fails if the last component of `path` is `.` or `..` (see [`remove_dir_all`]), read
/// from the bytes: [`Path::components`] drops a `.` that is not first.
fn refuse_final_dots(path: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    let end = bytes.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    let trimmed = &bytes[..end];
    let last = trimmed.rsplit(|&b| b == b'/').next().unwrap_or(trimmed);
    if last == b"." || last == b".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path ends in `.` or `..`: its directory would be emptied and then not \
             removed (name the directory itself)",
        ));
    }
    Ok(())
}

/// Creates the directory at `path`; its parent must exist.
pub async fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    one_path(path.as_ref(), "create directory", |p| stdfs::create_dir(p)).await
}

/// Creates the directory at `path` and any missing parents, in one job. A directory that
/// exists already is success; the empty path is too, as with std.
///
/// A removal racing the call (another task's [`remove_dir_all`] of a parent, say) does not
/// make it fail: where [`std::fs::create_dir_all`] returns
/// [`NotFound`](io::ErrorKind::NotFound) (a parent it made was removed before the next
/// level was made) or [`AlreadyExists`](io::ErrorKind::AlreadyExists) (the directory it
/// found was removed before it checked that it is one), the chain is made again, up to 16
/// times. Success means the whole chain existed at one moment during the call.
pub async fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    one_path(path.as_ref(), "create directory", |p| {
        let mut builder = stdfs::DirBuilder::new();
        builder.recursive(true);
        crate::dir_builder::create_recursive(&builder, p)
    })
    .await
}

/// The metadata of `path`, following symlinks.
pub async fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    one_path(path.as_ref(), "stat", |p| stdfs::metadata(p)).await
}

/// The metadata of `path` itself, not following a final symlink.
pub async fn symlink_metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    one_path(path.as_ref(), "lstat", |p| stdfs::symlink_metadata(p)).await
}

/// The absolute path of `path` with every symlink, `.` and `..` resolved.
pub async fn canonicalize(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    one_path(path.as_ref(), "canonicalize", |p| stdfs::canonicalize(p)).await
}

/// Makes `link` a new hard link to the file `original`.
///
/// A symlink `original` is not followed (as with std on Linux): `link` becomes another name
/// for the symlink itself, dangling or not. A directory cannot be linked
/// ([`PermissionDenied`](io::ErrorKind::PermissionDenied), the kernel's `EPERM`), and an
/// existing `link` is not replaced ([`AlreadyExists`](io::ErrorKind::AlreadyExists)).
pub async fn hard_link(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let (from, to) = (original.as_ref().to_owned(), link.as_ref().to_owned());
    run(move || stdfs::hard_link(&from, &to).map_err(|e| with_paths(e, "link", &from, &to))).await
}

/// Makes `link` a symbolic link to `original` (which need not exist; a relative `original`
/// is read relative to the link's directory).
///
/// ```
/// overlap::block_on(async {
///     let dir = std::env::temp_dir().join(format!("overlap-symlink-doc-{}", std::process::id()));
///     overlap::fs::create_dir_all(&dir).await?;
///     overlap::fs::write(dir.join("target"), "hi").await?;
///     overlap::fs::symlink("target", dir.join("link")).await?;
///     assert_eq!(overlap::fs::read_to_string(dir.join("link")).await?, "hi");
///     assert_eq!(overlap::fs::read_link(dir.join("link")).await?, std::path::Path::new("target"));
///     overlap::fs::remove_dir_all(&dir).await
/// })
/// .unwrap();
/// ```
pub async fn symlink(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let (from, to) = (original.as_ref().to_owned(), link.as_ref().to_owned());
    run(move || {
        std::os::unix::fs::symlink(&from, &to).map_err(|e| with_paths(e, "symlink", &from, &to))
    })
    .await
}

/// The target a symlink points at.
pub async fn read_link(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    one_path(path.as_ref(), "read link", |p| stdfs::read_link(p)).await
}

/// Sets the permissions of `path` (following symlinks).
pub async fn set_permissions(path: impl AsRef<Path>, perm: Permissions) -> io::Result<()> {
    one_path(path.as_ref(), "set permissions of", move |p| {
        stdfs::set_permissions(p, perm)
    })
    .await
}

/// Whether `path` exists: `Ok(false)` for a missing path (or a broken symlink), an error when
/// existence cannot be decided (for example, a parent directory that cannot be searched).
pub async fn try_exists(path: impl AsRef<Path>) -> io::Result<bool> {
    one_path(path.as_ref(), "stat", |p| p.try_exists()).await
}
