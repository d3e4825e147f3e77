//! The store: packs, the index (hash to pack, offset, length) rebuilt from its log on open,
//! puts streamed into an allocated extent, chunked reads, tombstones, compaction into a new
//! pack while reads go on, and a verify pass.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use overlap::io::{AsyncRead, AsyncReadExt};

use super::hash::{self, Hasher};
use super::log::{IndexLog, Loc, Record};
use super::pack::{pack_id, Pack};

/// The most bytes one read or write of a blob moves.
pub const CHUNK: usize = 64 * 1024;

/// What an open found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    pub records: usize,
    pub torn: bool,
    /// Index entries whose pack is gone (a compaction cut short after its swap).
    pub missing_pack: usize,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Compacted {
    pub moved: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub packs_removed: usize,
}

#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    log: IndexLog,
    index: RefCell<HashMap<u64, Loc>>,
    /// Hashes whose put is between its last byte and its log record.
    pending: RefCell<HashSet<u64>>,
    packs: RefCell<BTreeMap<u32, Rc<Pack>>>,
    active: RefCell<Rc<Pack>>,
    compacting: Cell<bool>,
    pub dedups: Cell<u64>,
}

impl Store {
    pub async fn open(dir: &Path) -> io::Result<(Rc<Store>, Recovery)> {
        overlap::fs::create_dir_all(dir).await?;
        let (log, replay) = IndexLog::open(&dir.join("index.log")).await?;
        let mut packs = BTreeMap::new();
        let mut entries = overlap::fs::read_dir(dir).await?;
        while let Some(e) = entries.next_entry().await? {
            if let Some(id) = e.file_name().to_str().and_then(pack_id) {
                packs.insert(id, Pack::open(dir, id).await?);
            }
        }
        if packs.is_empty() {
            packs.insert(0, Pack::open(dir, 0).await?);
        }
        let mut index = HashMap::new();
        for r in &replay.records {
            match *r {
                Record::Put { hash, loc } => index.insert(hash, loc),
                Record::Delete { hash } => index.remove(&hash),
            };
        }
        let before = index.len();
        index.retain(|_, loc| packs.contains_key(&loc.pack));
        let recovery = Recovery {
            records: replay.records.len(),
            torn: replay.torn,
            missing_pack: before - index.len(),
        };
        let active = packs.values().next_back().unwrap().clone();
        let store = Store {
            dir: dir.to_owned(),
            log,
            index: RefCell::new(index),
            pending: RefCell::default(),
            packs: RefCell::new(packs),
            active: RefCell::new(active),
            compacting: Cell::new(false),
            dedups: Cell::new(0),
        };
        Ok((Rc::new(store), recovery))
    }

    pub fn lookup(&self, hash: u64) -> Option<(Rc<Pack>, Loc)> {
        let loc = *self.index.borrow().get(&hash)?;
        let pack = self.packs.borrow().get(&loc.pack)?.clone();
        Some((pack, loc))
    }

    pub fn len(&self) -> usize {
        self.index.borrow().len()
    }

    pub fn hashes(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.index.borrow().keys().copied().collect();
        v.sort_unstable();
        v
    }

    pub fn active(&self) -> Rc<Pack> {
        self.active.borrow().clone()
    }

    pub fn pack_ids(&self) -> Vec<u32> {
        self.packs.borrow().keys().copied().collect()
    }

    pub fn log_max_jobs(&self) -> usize {
        self.log.max_jobs()
    }

    /// Streams `len` bytes from `src` into a new extent of the active pack, hashing them
    /// as they go; once all are there and synced, logs and indexes the blob. A source that
    /// ends first (a client gone) or a write refused gives the extent back, unindexed.
    pub async fn put_from<R: AsyncRead + Unpin>(&self, src: &mut R, len: u64) -> io::Result<u64> {
        let extent = self.active().allocate(len);
        let file = extent.pack.file.clone();
        let mut hasher = Hasher::new();
        let mut buf = vec![0u8; CHUNK.min(len as usize)];
        let mut pos = 0u64;
        let mut refused = None;
        while pos < len {
            let n = CHUNK.min((len - pos) as usize);
            src.read_exact(&mut buf[..n]).await?;
            hasher.update(&buf[..n]);
            // A write refused (a full disk, a size limit): the rest of the body is still
            // read, so the connection stays in step, and the error comes at its end.
            if refused.is_none() {
                if let Err(e) = file.write_all_at(&buf[..n], extent.offset + pos).await {
                    refused = Some(e);
                }
            }
            pos += n as u64;
        }
        if let Some(e) = refused {
            return Err(e);
        }
        let h = hasher.finish();
        if self.index.borrow().contains_key(&h) || !self.pending.borrow_mut().insert(h) {
            self.dedups.set(self.dedups.get() + 1);
            return Ok(h);
        }
        let res = async {
            file.sync_data().await?;
            self.log
                .append(&Record::Put {
                    hash: h,
                    loc: extent.loc(),
                })
                .await
        }
        .await;
        self.pending.borrow_mut().remove(&h);
        res?;
        self.index.borrow_mut().insert(h, extent.commit());
        Ok(h)
    }

    pub async fn put(&self, bytes: &[u8]) -> io::Result<u64> {
        self.put_from(&mut &bytes[..], bytes.len() as u64).await
    }

    /// Reads `buf.len()` bytes of the blob at `loc` from `pos` on.
    pub async fn read_chunk(pack: &Pack, loc: Loc, pos: u64, buf: &mut [u8]) -> io::Result<()> {
        assert!(pos + buf.len() as u64 <= loc.len);
        pack.file.read_exact_at(buf, loc.offset + pos).await
    }

    /// A whole blob, in chunks.
    pub async fn get(&self, hash: u64) -> io::Result<Option<Vec<u8>>> {
        let Some((pack, loc)) = self.lookup(hash) else {
            return Ok(None);
        };
        let mut out = vec![0u8; loc.len as usize];
        for (i, part) in out.chunks_mut(CHUNK).enumerate() {
            Store::read_chunk(&pack, loc, (i * CHUNK) as u64, part).await?;
        }
        Ok(Some(out))
    }

    /// Logs a tombstone; false if there was no such blob.
    pub async fn delete(&self, hash: u64) -> io::Result<bool> {
        if !self.index.borrow().contains_key(&hash) {
            return Ok(false);
        }
        self.log.append(&Record::Delete { hash }).await?;
        Ok(self.index.borrow_mut().remove(&hash).is_some())
    }

    /// The hashes of blobs whose bytes no longer hash to their name.
    pub async fn verify(&self) -> io::Result<Vec<u64>> {
        let mut bad = Vec::new();
        for h in self.hashes() {
            if let Some(bytes) = self.get(h).await? {
                if hash::hash(&bytes) != h {
                    bad.push(h);
                }
            }
        }
        Ok(bad)
    }

    /// Copies every live blob into a new pack, which new puts go to from the start, then
    /// swaps it in and removes the old packs. Reads go on all along: each holds its pack.
    pub async fn compact(&self) -> io::Result<Compacted> {
        if self.compacting.replace(true) {
            return Err(io::Error::other("a compaction is already running"));
        }
        let res = self.compact_inner().await;
        self.compacting.set(false);
        res
    }

    async fn compact_inner(&self) -> io::Result<Compacted> {
        let new_id = self.pack_ids().last().unwrap() + 1;
        let new = Pack::open(&self.dir, new_id).await?;
        let sealed: Vec<Rc<Pack>> = self.packs.borrow().values().cloned().collect();
        self.packs.borrow_mut().insert(new_id, new.clone());
        *self.active.borrow_mut() = new.clone();
        for p in &sealed {
            p.writers_done().await;
        }
        let mut report = Compacted {
            bytes_before: sealed.iter().map(|p| p.end()).sum(),
            ..Compacted::default()
        };
        let live: Vec<(u64, Loc)> = self
            .index
            .borrow()
            .iter()
            .filter(|(_, l)| l.pack != new_id)
            .map(|(h, l)| (*h, *l))
            .collect();
        let mut copied = Vec::new();
        let mut buf = vec![0u8; CHUNK];
        for (h, old) in live {
            let from = self.packs.borrow()[&old.pack].clone();
            let extent = new.allocate(old.len);
            let mut pos = 0;
            while pos < old.len {
                let n = CHUNK.min((old.len - pos) as usize);
                Store::read_chunk(&from, old, pos, &mut buf[..n]).await?;
                new.file
                    .write_all_at(&buf[..n], extent.offset + pos)
                    .await?;
                pos += n as u64;
            }
            copied.push((h, old, extent));
        }
        new.file.sync_data().await?;
        for (h, old, extent) in copied {
            // Deleted while it was copied: its copy is garbage in the new pack.
            if self.index.borrow().get(&h) != Some(&old) {
                continue;
            }
            let loc = extent.loc();
            self.log.append(&Record::Put { hash: h, loc }).await?;
            if self.index.borrow().get(&h) == Some(&old) {
                self.index.borrow_mut().insert(h, extent.commit());
                report.moved += 1;
            }
        }
        for p in sealed {
            self.packs.borrow_mut().remove(&p.id);
            overlap::fs::remove_file(&p.path).await?;
            report.packs_removed += 1;
        }
        report.bytes_after = new.end();
        Ok(report)
    }
}
