//! The watched tree: a watch on every directory under the root that is not ignored, new
//! directories watched as they appear (and what was already put in them reported), the
//! ignore rules, and inotify's records turned into changed paths.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};

use super::inotify::{Inotify, RawEvent, WATCH_MASK};

/// What is never a reason to run: files whose names end with one of `suffixes` (editor
/// backups and swap files), and whole directories named one of `dirs` (build output),
/// which are not watched at all.
#[derive(Clone, Debug)]
pub struct Ignore {
    pub suffixes: Vec<String>,
    pub dirs: Vec<String>,
}

impl Default for Ignore {
    fn default() -> Ignore {
        Ignore {
            suffixes: ["~", ".swp", ".swx"].map(String::from).to_vec(),
            dirs: ["target", ".git"].map(String::from).to_vec(),
        }
    }
}

impl Ignore {
    /// Whether `rel` (relative to the root) is ignored: any of its directories is one of
    /// `dirs`, or its name ends with one of `suffixes`.
    pub fn ignores(&self, rel: &Path, is_dir: bool) -> bool {
        let parts: Vec<_> = rel.iter().filter_map(|p| p.to_str()).collect();
        let Some((last, above)) = parts.split_last() else {
            return false;
        };
        if above.iter().any(|p| self.dirs.iter().any(|d| d == p)) {
            return true;
        }
        // A file named `target` is a file like any other.
        if is_dir && self.dirs.iter().any(|d| d == last) {
            return true;
        }
        self.suffixes.iter().any(|s| last.ends_with(s.as_str()))
    }
}

/// A change, as the runner is told of it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// A path under the root (relative to it) was created, written, moved or removed.
    Path(String),
    /// The kernel's queue overflowed (`IN_Q_OVERFLOW`): events were lost, so anything may
    /// have changed; the tree has been scanned again for new directories.
    Overflow,
}

/// What one wake of the watcher found.
#[derive(Debug, Default)]
pub struct Batch {
    pub changes: BTreeSet<Change>,
    /// Records read in all.
    pub records: u64,
    /// Records about ignored paths.
    pub ignored: u64,
    /// Directories newly watched.
    pub watched: Vec<String>,
}

/// The inotify instance and what its watch descriptors stand for.
#[derive(Debug)]
pub struct Watcher {
    inotify: Inotify,
    root: PathBuf,
    ignore: Ignore,
    dirs: HashMap<i32, PathBuf>,
    buf: Vec<u8>,
}

impl Watcher {
    /// Watches `root` and every directory under it that is not ignored.
    pub fn new(root: &Path, ignore: Ignore) -> io::Result<Watcher> {
        let mut w = Watcher {
            inotify: Inotify::new()?,
            root: root.to_owned(),
            ignore,
            dirs: HashMap::new(),
            // Room for many records; at least one of the longest name (16 + NAME_MAX + 1).
            buf: vec![0; 16 << 10],
        };
        let mut found = Batch::default();
        w.watch_tree(root, &mut found, false)?;
        Ok(w)
    }

    /// How many directories are watched.
    pub fn watches(&self) -> usize {
        self.dirs.len()
    }

    fn rel(&self, path: &Path) -> String {
        let rel = path.strip_prefix(&self.root).unwrap_or(path);
        rel.to_string_lossy().into_owned()
    }

    /// Watches `dir` and the directories under it (each only once: a directory watched
    /// already keeps its descriptor). With `report`, every file and directory found is a
    /// change: it was made before its directory's watch was, so no event told of it.
    fn watch_tree(&mut self, dir: &Path, batch: &mut Batch, report: bool) -> io::Result<()> {
        let wd = match self.inotify.add_watch(dir, WATCH_MASK) {
            Ok(wd) => wd,
            // Gone (or no longer a directory) already: its removal is reported by its parent.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                return Ok(())
            }
            Err(e) => return Err(e),
        };
        if self.dirs.insert(wd, dir.to_owned()).is_none() && dir != self.root {
            batch.watched.push(self.rel(dir));
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if self.ignore.ignores(Path::new(&self.rel(&path)), is_dir) {
                continue;
            }
            if report {
                batch.changes.insert(Change::Path(self.rel(&path)));
            }
            if is_dir {
                self.watch_tree(&path, batch, report)?;
            }
        }
        Ok(())
    }

    /// Waits for events and reads every record queued by then: one batch. Cancel-safe, as
    /// `read_events` is; what follows the wait does not wait. (The buffer stays in `self`
    /// throughout: taken out for the wait, it was lost whenever `select!` dropped this
    /// future, and the next read, into an empty buffer, failed with `EINVAL`.)
    pub async fn next_batch(&mut self) -> io::Result<Batch> {
        let records = self.inotify.read_events(&mut self.buf).await?;
        self.drain(records)
    }

    /// Reads what is queued now, without waiting (an empty batch if nothing is).
    pub fn try_batch(&mut self) -> io::Result<Batch> {
        match self.inotify.try_read_events(&mut self.buf)? {
            Some(records) => self.drain(records),
            None => Ok(Batch::default()),
        }
    }

    /// Handles `records` and every record queued after them.
    fn drain(&mut self, mut records: Vec<RawEvent>) -> io::Result<Batch> {
        let mut batch = Batch::default();
        loop {
            for ev in records {
                self.handle(ev, &mut batch)?;
            }
            match self.inotify.try_read_events(&mut self.buf)? {
                Some(more) => records = more,
                None => return Ok(batch),
            }
        }
    }

    fn handle(&mut self, ev: RawEvent, batch: &mut Batch) -> io::Result<()> {
        batch.records += 1;
        if ev.is(libc::IN_Q_OVERFLOW) {
            batch.changes.insert(Change::Overflow);
            // Directories made while events were lost have no watch yet.
            let root = self.root.clone();
            return self.watch_tree(&root, batch, false);
        }
        if ev.is(libc::IN_IGNORED) {
            // The watch is gone (its directory removed).
            self.dirs.remove(&ev.wd);
            return Ok(());
        }
        let Some(dir) = self.dirs.get(&ev.wd) else {
            return Ok(()); // a watch removed since
        };
        let path = match &ev.name {
            Some(name) => dir.join(name),
            None if ev.is(libc::IN_DELETE_SELF) => dir.clone(),
            None => return Ok(()), // the directory's own attributes
        };
        let rel = self.rel(&path);
        let is_dir = ev.is(libc::IN_ISDIR);
        if self.ignore.ignores(Path::new(&rel), is_dir) {
            batch.ignored += 1;
            return Ok(());
        }
        batch.changes.insert(Change::Path(rel));
        if is_dir && ev.is(libc::IN_CREATE | libc::IN_MOVED_TO) {
            self.watch_tree(&path, batch, true)?;
        }
        Ok(())
    }
}
