//! The walk of [`remove_dir_all`](crate::remove_dir_all), with a bounded number of open fds.
//!
//! std's `remove_dir_all` keeps one directory open per level it has gone down, so a tree
//! deeper than the open-file limit (1,024 by default) fails with `EMFILE` half-emptied.
//! This walk keeps two at most: it goes down into a subdirectory with `openat` (no symlink
//! followed, as std), and back up through its `..`, checked to be the directory it came
//! from (by device and inode: a directory moved meanwhile stops the walk with an error
//! rather than remove what is now elsewhere). Back in a directory, its listing starts
//! again from the beginning: what was removed is no longer in it.

use std::ffi::CString;
use std::fs as stdfs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::sys::{Dir, Kind};

/// Removes the directory at `path` and everything in it, as [`std::fs::remove_dir_all`]
/// does (a symlink at `path` is removed, not followed; an entry already gone is no error;
/// the first other error ends the walk), without one open fd per level.
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    if stdfs::symlink_metadata(path)?.file_type().is_symlink() {
        return stdfs::remove_file(path);
    }
    let top = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "unexpected NUL byte"))?;
    let mut dir = Dir::open(None, &top)?;
    // The directories gone down into, top first: each one's (device, inode), and below
    // the top the name it has in the one above.
    let mut ids = vec![dir.id()?];
    let mut names: Vec<CString> = Vec::new();
    loop {
        match first_subdirectory(&mut dir)? {
            Some(name) => match Dir::open(Some(&dir), &name) {
                Ok(sub) => {
                    ids.push(sub.id()?);
                    names.push(name);
                    dir = sub;
                }
                // No longer a directory since the listing, or of a kind the listing did
                // not give: removed as a file.
                Err(e) if not_a_dir(&e) => missing_ok(dir.unlink(&name, false))?,
                // Gone since the listing.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            },
            None => {
                // `dir` is empty: go up, and remove it there.
                let Some(name) = names.pop() else { break };
                ids.pop();
                let parent = Dir::open(Some(&dir), c"..")?;
                if Some(&parent.id()?) != ids.last() {
                    return Err(io::Error::other(
                        "a directory was moved out of the tree while the tree was being removed",
                    ));
                }
                dir = parent;
                missing_ok(dir.unlink(&name, true))?;
            }
        }
    }
    drop(dir);
    missing_ok(stdfs::remove_dir(path))
}

/// Lists `dir` until its first subdirectory (or an entry of unknown kind), removing every
/// other entry on the way; `None` once the listing ends.
fn first_subdirectory(dir: &mut Dir) -> io::Result<Option<CString>> {
    while let Some(entry) = dir.next_entry() {
        let (name, kind) = entry?;
        match kind {
            Kind::NotDir => missing_ok(dir.unlink(&name, false))?,
            Kind::Dir | Kind::Unknown => return Ok(Some(name)),
        }
    }
    Ok(None)
}

/// `ENOTDIR`, or `ELOOP` (a symlink refused by `O_NOFOLLOW`).
fn not_a_dir(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOTDIR | libc::ELOOP))
}

/// `Ok` for an entry that is already gone.
fn missing_ok(res: io::Result<()>) -> io::Result<()> {
    match res {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}
