//! A pack: one large file that blobs are appended into, each at an extent the pack's
//! allocator hands out, so that many tasks write different blobs into it at once through
//! clones of one `PositionalFile`. An extent not committed (its client vanished, its blob
//! was already there) goes back to the allocator if it is the last one, else it is counted
//! as garbage for compaction.

use std::cell::Cell;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use overlap::fs::{OpenOptions, PositionalFile};
use overlap::sync::Notify;

use super::log::Loc;

pub fn pack_name(id: u32) -> String {
    format!("pack-{id:05}.blob")
}

/// The pack id in a file name, if it is a pack's.
pub fn pack_id(name: &str) -> Option<u32> {
    name.strip_prefix("pack-")?
        .strip_suffix(".blob")?
        .parse()
        .ok()
}

#[derive(Debug)]
pub struct Pack {
    pub id: u32,
    pub path: PathBuf,
    /// Shared by every request on the pack; each task clones it as it likes.
    pub file: PositionalFile,
    next: Cell<u64>,
    garbage: Cell<u64>,
    writers: Cell<usize>,
    idle: Notify,
}

impl Pack {
    /// Opens pack `id` in `dir`, created if missing; new extents start at its end.
    pub async fn open(dir: &Path, id: u32) -> io::Result<Rc<Pack>> {
        let path = dir.join(pack_name(id));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .await?;
        let file = PositionalFile::from_file(file).await?;
        let end = file.metadata().await?.len();
        Ok(Rc::new(Pack {
            id,
            path,
            file,
            next: Cell::new(end),
            garbage: Cell::new(0),
            writers: Cell::new(0),
            idle: Notify::new(),
        }))
    }

    /// Hands out the next `len` bytes.
    pub fn allocate(self: &Rc<Self>, len: u64) -> Extent {
        let offset = self.next.get();
        self.next.set(offset + len);
        self.writers.set(self.writers.get() + 1);
        Extent {
            pack: self.clone(),
            offset,
            len,
            committed: false,
        }
    }

    /// Where the next extent starts: the bytes handed out so far.
    pub fn end(&self) -> u64 {
        self.next.get()
    }

    /// Bytes of extents given up that were not the last (compaction drops them).
    pub fn garbage(&self) -> u64 {
        self.garbage.get()
    }

    /// Waits until no extent of this pack is being written.
    pub async fn writers_done(&self) {
        while self.writers.get() > 0 {
            // One thread: nothing runs between the check and this first poll.
            self.idle.notified().await;
        }
    }
}

/// An extent being written; dropped uncommitted, it is given back.
#[derive(Debug)]
pub struct Extent {
    pub pack: Rc<Pack>,
    pub offset: u64,
    pub len: u64,
    committed: bool,
}

impl Extent {
    pub fn loc(&self) -> Loc {
        Loc {
            pack: self.pack.id,
            offset: self.offset,
            len: self.len,
        }
    }

    /// The blob is indexed: the extent stays.
    pub fn commit(mut self) -> Loc {
        self.committed = true;
        self.loc()
    }
}

impl Drop for Extent {
    fn drop(&mut self) {
        let p = &self.pack;
        if !self.committed {
            if p.next.get() == self.offset + self.len {
                p.next.set(self.offset);
            } else {
                p.garbage.set(p.garbage.get() + self.len);
            }
        }
        p.writers.set(p.writers.get() - 1);
        if p.writers.get() == 0 {
            p.idle.notify_waiters();
        }
    }
}
