//! The open-file cache: one shared `PositionalFile` per path, up to a bound, least
//! recently used evicted first. An evicted handle's clones (sends in flight) keep the fd
//! open; a path whose file changed (another inode, length or mtime: replaced by rename,
//! rewritten) is opened again, while the old handle serves those who had it.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use overlap::fs::PositionalFile;

/// A file as served: its handle and the validators taken from that handle's own `fstat`.
#[derive(Clone, Debug)]
pub struct Opened {
    pub file: PositionalFile,
    pub len: u64,
    pub mtime_ns: i128,
    pub mtime_secs: i64,
    ino: u64,
    dev: u64,
}

#[derive(Debug)]
struct Entry {
    opened: Opened,
    last_use: u64,
}

/// The cache; `opens` (handles kept), `evictions` and `raced` are for the tests.
#[derive(Debug)]
pub struct FileCache {
    cap: usize,
    map: RefCell<HashMap<PathBuf, Entry>>,
    tick: Cell<u64>,
    pub opens: Cell<usize>,
    pub evictions: Cell<usize>,
    /// Handles opened at once with another for the same file, and closed at once.
    pub raced: Cell<usize>,
}

impl FileCache {
    pub fn new(cap: usize) -> FileCache {
        FileCache {
            cap: cap.max(1),
            map: RefCell::new(HashMap::new()),
            tick: Cell::new(0),
            opens: Cell::new(0),
            evictions: Cell::new(0),
            raced: Cell::new(0),
        }
    }

    /// Handles held now.
    pub fn len(&self) -> usize {
        self.map.borrow().len()
    }

    /// The handle for `path` (a regular file, `meta` its `stat`), from the cache if the
    /// file there is still the one cached.
    pub async fn get(&self, path: &Path, meta: &std::fs::Metadata) -> io::Result<Opened> {
        self.tick.set(self.tick.get() + 1);
        let now = self.tick.get();
        if let Some(e) = self.map.borrow_mut().get_mut(path) {
            let o = &e.opened;
            if (o.dev, o.ino, o.len, o.mtime_ns)
                == (meta.dev(), meta.ino(), meta.len(), mtime_ns(meta))
            {
                e.last_use = now;
                return Ok(o.clone());
            }
        }
        let file = PositionalFile::open(path).await?;
        let m = file.metadata().await?;
        // Many connections asking for a file at once all miss and open it: the first to
        // get here keeps its handle, the others take it and close theirs.
        if let Some(e) = self.map.borrow_mut().get_mut(path) {
            let o = &e.opened;
            if (o.dev, o.ino, o.len, o.mtime_ns) == (m.dev(), m.ino(), m.len(), mtime_ns(&m)) {
                e.last_use = now;
                self.raced.set(self.raced.get() + 1);
                return Ok(o.clone());
            }
        }
        self.opens.set(self.opens.get() + 1);
        let opened = Opened {
            file,
            len: m.len(),
            mtime_ns: mtime_ns(&m),
            mtime_secs: m.mtime(),
            ino: m.ino(),
            dev: m.dev(),
        };
        let mut map = self.map.borrow_mut();
        let entry = Entry {
            opened: opened.clone(),
            last_use: now,
        };
        if map.insert(path.to_path_buf(), entry).is_some() {
            // The path's old file: its handle goes, its clones serve on.
            self.evictions.set(self.evictions.get() + 1);
        }
        while map.len() > self.cap {
            let oldest = map
                .iter()
                .min_by_key(|(_, e)| e.last_use)
                .map(|(p, _)| p.clone())
                .unwrap();
            map.remove(&oldest);
            self.evictions.set(self.evictions.get() + 1);
        }
        Ok(opened)
    }
}

fn mtime_ns(m: &std::fs::Metadata) -> i128 {
    i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec())
}
