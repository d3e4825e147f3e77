//! The walk of [`remove_dir_all`](crate::remove_dir_all), with a bounded number of open fds.
//!
//! std's `remove_dir_all` keeps one directory open per level it has gone down, so a tree
//! deeper than the open-file limit (1,024 by default) fails with `EMFILE` half-emptied.
//! This walk keeps the [`OPEN_LEVELS`] deepest levels open, as std does, so a directory's
//! listing goes on where it stopped once its subdirectory is removed (a wide tree costs
//! what std's walk costs); a level above those is closed, and opened again through the
//! `..` of the one below it when the walk comes back up, checked to be the directory it
//! left (by device and inode: a directory moved meanwhile stops the walk with an error
//! rather than remove what is now elsewhere). An opened-again directory is listed from the
//! beginning: what was removed is no longer in it.
//!
//! Every directory is opened with `openat` inside its parent, without following a symlink.

use std::collections::VecDeque;
use std::ffi::CString;
use std::fs as stdfs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::sys::{Dir, Kind};

/// How many levels of the tree, the deepest ones, the walk keeps open (each one fd).
pub(crate) const OPEN_LEVELS: usize = 16;

/// A directory the walk has gone down into.
struct Level {
    /// Its device and inode numbers, to check it when it is opened again through `..`.
    id: (u64, u64),
    /// Its name in the level above (none for the top).
    name: Option<CString>,
    /// Open, with its listing where the walk left it; `None` once closed to bound the fds.
    dir: Option<Dir>,
}

/// Removes the directory at `path` and everything in it, as [`std::fs::remove_dir_all`]
/// does (a symlink at `path` is removed, not followed; an entry already gone is no error;
/// the first other error ends the walk), with [`OPEN_LEVELS`] fds at most.
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    if stdfs::symlink_metadata(path)?.file_type().is_symlink() {
        return stdfs::remove_file(path);
    }
    let top = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "unexpected NUL byte"))?;
    let dir = Dir::open(None, &top)?;
    // Top first; the last one is the directory being emptied, always open.
    let mut levels = vec![Level {
        id: dir.id()?,
        name: None,
        dir: Some(dir),
    }];
    // Indices of the open levels, the highest first.
    let mut open: VecDeque<usize> = VecDeque::from([0]);
    loop {
        let current = levels.last_mut().expect("the top level is never popped");
        let dir = current.dir.as_mut().expect("the deepest level is open");
        match first_subdirectory(dir)? {
            Some(name) => match Dir::open(Some(dir), &name) {
                Ok(sub) => {
                    levels.push(Level {
                        id: sub.id()?,
                        name: Some(name),
                        dir: Some(sub),
                    });
                    open.push_back(levels.len() - 1);
                    if open.len() > OPEN_LEVELS {
                        let highest = open.pop_front().expect("more than one is open");
                        levels[highest].dir = None;
                    }
                }
                // No longer a directory since the listing, or of a kind the listing did
                // not give: removed as a file.
                Err(e) if not_a_dir(&e) => missing_ok(dir.unlink(&name, false))?,
                // Gone since the listing.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            },
            None => {
                // The deepest level is empty: go up, and remove it there.
                if levels.len() == 1 {
                    break;
                }
                let done = levels.pop().expect("more than one level");
                open.pop_back();
                let parent_index = levels.len() - 1;
                let parent = &mut levels[parent_index];
                if parent.dir.is_none() {
                    let dir = done.dir.as_ref().expect("the deepest level is open");
                    let up = Dir::open(Some(dir), c"..")?;
                    if up.id()? != parent.id {
                        return Err(io::Error::other(
                            "a directory was moved out of the tree while the tree was being removed",
                        ));
                    }
                    parent.dir = Some(up);
                    open.push_back(parent_index);
                }
                drop(done.dir);
                let name = done.name.expect("below the top");
                let dir = parent.dir.as_ref().expect("just opened");
                missing_ok(dir.unlink(&name, true))?;
            }
        }
    }
    drop(levels);
    missing_ok(stdfs::remove_dir(path))
}

/// Lists `dir` until its next subdirectory (or an entry of unknown kind), removing every
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
