//! The user's synchroniser: one pass over a source tree, making a destination tree match it.
//!
//! Directories are walked with an explicit stack of relative paths; each source directory is
//! listed with `fs::read_dir`, its destination twin created (`create_dir_all`) and cleared of
//! names the source no longer has (`remove_file`, `remove_dir_all`), and each file or symlink
//! handed to a task in a `JoinSet`, at most `limit` at once (a `Semaphore`). A file whose
//! size and mtime match is left alone; a changed one is copied to a temporary name beside
//! it (`fs::copy`, or `File` and `io::copy` for a large one), given the source's mode and
//! mtime, and renamed over the old one. Errors are collected, each naming its path, and the
//! rest goes on.

use std::cell::RefCell;
use std::collections::HashSet;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use overlap::fs::{self, File, Metadata};
use overlap::sync::{mpsc, oneshot, Semaphore};
use overlap::task::JoinSet;

/// Files at least this big are streamed through `File`s, smaller ones go by `fs::copy`.
const STREAMED: u64 = 1 << 20;

/// What one run did, by path relative to the roots.
#[derive(Debug, Default)]
pub struct Report {
    pub copied: Vec<PathBuf>,
    pub linked: Vec<PathBuf>,
    pub deleted: Vec<PathBuf>,
    pub errors: Vec<io::Error>,
}

/// How a run goes.
pub struct Options {
    /// File operations at once.
    pub limit: usize,
    /// Told of each source directory once listed (relative path); the run waits for the
    /// reply before acting on its entries.
    pub listed: Option<mpsc::Sender<(PathBuf, oneshot::Sender<()>)>>,
}

type Shared = Rc<RefCell<Report>>;

/// Makes `dst` match `src`.
pub async fn sync(src: &Path, dst: &Path, opts: &Options) -> Report {
    let report: Shared = Rc::default();
    let limit = Rc::new(Semaphore::new(opts.limit));
    let mut tasks = JoinSet::new();
    let mut dirs = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let (s, d) = (src.join(&rel), dst.join(&rel));
        let listing = match list(&s).await {
            Ok(listing) => listing,
            Err(e) => {
                report.borrow_mut().errors.push(e);
                continue;
            }
        };
        if let Some(listed) = &opts.listed {
            let (tx, rx) = oneshot::channel();
            if listed.send((rel.clone(), tx)).await.is_ok() {
                let _ = rx.await;
            }
        }
        if let Err(e) = make_dir(&d).await {
            report.borrow_mut().errors.push(e);
            continue;
        }
        match fs::metadata(&s).await {
            Ok(m) => dirs.push((d.clone(), m.permissions())),
            Err(e) => report.borrow_mut().errors.push(e),
        }
        let names: HashSet<OsString> = listing.iter().map(|(name, _)| name.clone()).collect();
        match list(&d).await {
            Ok(there) => {
                for (name, ty) in there.into_iter().filter(|(n, _)| !names.contains(n)) {
                    let (path, rel) = (d.join(&name), rel.join(&name));
                    let report = report.clone();
                    let permit = limit.clone().acquire_owned().await.unwrap();
                    tasks.spawn(async move {
                        let _permit = permit;
                        let res = if ty.is_dir() {
                            fs::remove_dir_all(&path).await
                        } else {
                            fs::remove_file(&path).await
                        };
                        let mut report = report.borrow_mut();
                        match res {
                            Ok(()) => report.deleted.push(rel),
                            Err(e) => report.errors.push(e),
                        }
                    });
                }
            }
            Err(e) => report.borrow_mut().errors.push(e),
        }
        for (name, ty) in listing {
            let rel = rel.join(&name);
            if ty.is_dir() {
                stack.push(rel);
                continue;
            }
            if !(ty.is_file() || ty.is_symlink()) {
                continue; // FIFOs, sockets, devices: not synchronised
            }
            let (s, d) = (src.join(&rel), dst.join(&rel));
            let report = report.clone();
            let permit = limit.clone().acquire_owned().await.unwrap();
            tasks.spawn(async move {
                let _permit = permit;
                let res = if ty.is_symlink() {
                    sync_link(&s, &d).await.map(|done| (done, true))
                } else {
                    sync_file(&s, &d).await.map(|done| (done, false))
                };
                let mut report = report.borrow_mut();
                match res {
                    Ok((false, _)) => {}
                    Ok((true, false)) => report.copied.push(rel),
                    Ok((true, true)) => report.linked.push(rel),
                    Err(e) => report.errors.push(e),
                }
            });
        }
    }
    while tasks.join_next().await.is_some() {}
    // Modes of directories last: a read-only one was still written into above.
    for (d, perm) in dirs.into_iter().rev() {
        if let Err(e) = fs::set_permissions(&d, perm).await {
            report.borrow_mut().errors.push(e);
        }
    }
    Rc::try_unwrap(report).unwrap().into_inner()
}

/// A directory's names and types (not following symlinks).
async fn list(dir: &Path) -> io::Result<Vec<(OsString, std::fs::FileType)>> {
    let mut entries = fs::read_dir(dir).await?;
    let mut out = Vec::new();
    while let Some(entry) = entries.next_entry().await? {
        out.push((entry.file_name(), entry.file_type().await?));
    }
    Ok(out)
}

/// Makes `d` a directory, replacing a file or link there.
async fn make_dir(d: &Path) -> io::Result<()> {
    match fs::symlink_metadata(d).await {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => fs::remove_file(d).await?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    fs::create_dir_all(d).await
}

/// Clears whatever is at `d` unless it is a regular file (which a rename replaces).
async fn clear_for(d: &Path, there: &Metadata) -> io::Result<()> {
    if there.is_dir() {
        fs::remove_dir_all(d).await
    } else {
        Ok(())
    }
}

/// Copies `s` to `d` unless size and mtime match; true if it copied.
async fn sync_file(s: &Path, d: &Path) -> io::Result<bool> {
    let meta = fs::symlink_metadata(s).await?;
    let mtime = meta.modified()?;
    match fs::symlink_metadata(d).await {
        Ok(there) if there.is_file() && there.len() == meta.len() && there.modified()? == mtime => {
            if there.permissions() != meta.permissions() {
                fs::set_permissions(d, meta.permissions()).await?;
            }
            return Ok(false);
        }
        Ok(there) => clear_for(d, &there).await?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let tmp = temp_name(d);
    let res = copy_to(s, &tmp, &meta).await;
    let res = match res {
        Ok(()) => fs::rename(&tmp, d).await,
        Err(e) => Err(e),
    };
    if res.is_err() {
        let _ = fs::remove_file(&tmp).await;
    }
    res.map(|()| true)
}

/// `.name.sync-tmp` beside `d`.
fn temp_name(d: &Path) -> PathBuf {
    let mut name = OsString::from(".");
    name.push(d.file_name().unwrap());
    name.push(".sync-tmp");
    d.with_file_name(name)
}

/// Copies the bytes, mode and mtime of `s` (whose metadata is `meta`) to a new `tmp`.
async fn copy_to(s: &Path, tmp: &Path, meta: &Metadata) -> io::Result<()> {
    let mut file = if meta.len() >= STREAMED {
        let mut from = File::open(s).await?;
        let mut to = File::create(tmp).await?;
        overlap::io::copy(&mut from, &mut to).await?;
        to.set_permissions(meta.permissions()).await?;
        to
    } else {
        fs::copy(s, tmp).await?; // mode included
        File::open(tmp).await?
    };
    // After the bytes still buffered, so no write moves it on again.
    file.set_modified(meta.modified()?).await
}

/// Makes `d` a symlink with the target of `s` unless it is one already; true if it made it.
async fn sync_link(s: &Path, d: &Path) -> io::Result<bool> {
    let target = fs::read_link(s).await?;
    match fs::symlink_metadata(d).await {
        Ok(there) if there.is_symlink() && fs::read_link(d).await? == target => return Ok(false),
        Ok(there) if there.is_dir() => fs::remove_dir_all(d).await?,
        Ok(_) => fs::remove_file(d).await?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    fs::symlink(&target, d).await?;
    Ok(true)
}
