//! Sorted string tables: written once with `PositionalFile::write_vec_at` (every data
//! block in flight at once, then the index, bloom filter and footer, then `sync_all`),
//! read back with `read_vec_at` by any number of tasks at once through the table's one
//! handle, through a small block cache shared by all tables. A table marked obsolete by a
//! compaction asks the deleter to remove its file when its last reference goes.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use overlap::fs::{OpenOptions, PositionalFile};
use overlap::sync::mpsc::UnboundedSender;

use super::format::{
    decode_index, encode_entry, encode_index, fnv32, open_block, seal_block, Bloom, Footer,
    IndexEntry, Key, Value, FOOTER,
};

/// A data block, decoded: its entries in key order.
type Block = Rc<Vec<(Key, Value)>>;

pub fn table_name(id: u64) -> String {
    format!("{id:06}.sst")
}

/// Shows a key for an error message: printable ASCII as is, other bytes escaped.
pub fn show(key: &[u8]) -> String {
    key.escape_ascii().to_string()
}

fn corrupt(path: &Path, what: String) -> io::Error {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("table {name} is corrupt: {what}"),
    )
}

/// Writes `entries` (sorted, unique keys) as table `id` in `dir`, in blocks of about
/// `block_bytes`. The file is durable when this returns; its directory entry is made
/// durable by the MANIFEST's directory sync that installs it.
pub async fn write_table(
    dir: &Path,
    id: u64,
    entries: impl IntoIterator<Item = (Key, Value)>,
    block_bytes: usize,
) -> io::Result<u64> {
    let path = dir.join(table_name(id));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open_positional(&path)
        .await?;
    let mut blocks: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut index = Vec::new();
    let mut keys: Vec<Key> = Vec::new();
    let (mut block, mut first, mut offset) = (Vec::new(), None::<Key>, 0u64);
    let mut seal = |block: &mut Vec<u8>, first: &mut Option<Key>, last: &Key| {
        let sealed = seal_block(std::mem::take(block));
        index.push(IndexEntry {
            first: first.take().unwrap(),
            last: last.clone(),
            offset,
            len: sealed.len() as u32,
        });
        blocks.push((offset, sealed));
        offset += blocks.last().unwrap().1.len() as u64;
    };
    for (key, value) in entries {
        first.get_or_insert_with(|| key.clone());
        encode_entry(&mut block, &key, &value);
        keys.push(key);
        if block.len() >= block_bytes {
            seal(&mut block, &mut first, keys.last().unwrap());
        }
    }
    if !block.is_empty() {
        seal(&mut block, &mut first, keys.last().unwrap());
    }
    // Every block in flight at once: each write moves its Vec to the pool, no copy.
    let writes = blocks
        .into_iter()
        .map(|(at, bytes)| file.write_vec_at(bytes, at));
    for r in overlap::future::join_all(writes).await {
        r?;
    }
    let index_bytes = encode_index(&index);
    let bloom = Bloom::build(keys.iter().map(|k| &k[..]), 10).encode();
    let footer = Footer {
        index_off: offset,
        index_len: index_bytes.len() as u32,
        bloom_off: offset + index_bytes.len() as u64,
        bloom_len: bloom.len() as u32,
        index_sum: fnv32(&index_bytes),
        bloom_sum: fnv32(&bloom),
    };
    let mut tail = index_bytes;
    tail.extend_from_slice(&bloom);
    tail.extend_from_slice(&footer.encode());
    let size = offset + tail.len() as u64;
    file.write_vec_at(tail, offset).await?;
    file.sync_all().await?;
    Ok(size)
}

/// Decoded blocks of every table, by (table id, block number), least recently used first
/// out; hits, misses and evictions counted.
#[derive(Debug, Default)]
pub struct BlockCache {
    cap: usize,
    map: RefCell<HashMap<(u64, usize), Block>>,
    order: RefCell<VecDeque<(u64, usize)>>,
    pub hits: Cell<u64>,
    pub misses: Cell<u64>,
}

impl BlockCache {
    pub fn new(cap: usize) -> BlockCache {
        BlockCache {
            cap,
            ..BlockCache::default()
        }
    }

    fn get(&self, at: (u64, usize)) -> Option<Block> {
        let hit = self.map.borrow().get(&at).cloned()?;
        let mut order = self.order.borrow_mut();
        order.retain(|k| *k != at);
        order.push_back(at);
        self.hits.set(self.hits.get() + 1);
        Some(hit)
    }

    fn insert(&self, at: (u64, usize), block: Block) {
        if self.cap == 0 || self.map.borrow_mut().insert(at, block).is_some() {
            return;
        }
        let mut order = self.order.borrow_mut();
        order.push_back(at);
        while order.len() > self.cap {
            let old = order.pop_front().unwrap();
            self.map.borrow_mut().remove(&old);
        }
    }

    /// Drops a deleted table's blocks.
    fn forget(&self, id: u64) {
        self.map.borrow_mut().retain(|k, _| k.0 != id);
        self.order.borrow_mut().retain(|k| k.0 != id);
    }

    pub fn len(&self) -> usize {
        self.map.borrow().len()
    }
}

/// An open table: its one `PositionalFile` (shared by every read), its index and bloom
/// filter in memory.
#[derive(Debug)]
pub struct Table {
    pub id: u64,
    pub path: PathBuf,
    file: PositionalFile,
    index: Vec<IndexEntry>,
    bloom: Bloom,
    cache: Rc<BlockCache>,
    /// Set by the compaction that replaced it: the file goes with the last reference.
    pub obsolete: Cell<bool>,
    deleter: UnboundedSender<PathBuf>,
    /// Data blocks read from the file (cache misses and compaction reads).
    pub block_reads: Cell<u64>,
}

impl Table {
    pub async fn open(
        dir: &Path,
        id: u64,
        cache: Rc<BlockCache>,
        deleter: UnboundedSender<PathBuf>,
    ) -> io::Result<Table> {
        let path = dir.join(table_name(id));
        let file = PositionalFile::open(&path).await?;
        let size = file.metadata().await?.len();
        let bad = |what: &str| corrupt(&path, what.to_string());
        if size < FOOTER as u64 {
            return Err(bad("it is shorter than a footer"));
        }
        let raw = file.read_vec_at(FOOTER, size - FOOTER as u64).await?;
        let f = Footer::decode(&raw).map_err(|e| bad(&format!("it {e}")))?;
        // Checked sums: a footer is checksummed, but not proof against a crafted file.
        let index_end = f.index_off.checked_add(f.index_len as u64);
        let meta_end = f.bloom_off.checked_add(f.bloom_len as u64);
        if index_end != Some(f.bloom_off)
            || meta_end.and_then(|e| e.checked_add(FOOTER as u64)) != Some(size)
        {
            return Err(bad("its footer points outside the file"));
        }
        let meta_end = meta_end.unwrap();
        let meta = file
            .read_vec_at((meta_end - f.index_off) as usize, f.index_off)
            .await?;
        let (index_bytes, bloom_bytes) = meta.split_at(f.index_len as usize);
        if fnv32(index_bytes) != f.index_sum {
            return Err(bad("its index fails its checksum"));
        }
        if fnv32(bloom_bytes) != f.bloom_sum {
            return Err(bad("its bloom filter fails its checksum"));
        }
        let index = decode_index(index_bytes).ok_or_else(|| bad("its index is malformed"))?;
        let bloom =
            Bloom::decode(bloom_bytes).ok_or_else(|| bad("its bloom filter is malformed"))?;
        if index.is_empty() {
            return Err(bad("it has no blocks"));
        }
        let mut at = 0;
        for e in &index {
            if e.offset != at || e.first > e.last {
                return Err(bad("its index does not describe its blocks"));
            }
            at += e.len as u64;
        }
        if at != f.index_off {
            return Err(bad("its index does not describe its blocks"));
        }
        Ok(Table {
            id,
            path,
            file,
            index,
            bloom,
            cache,
            obsolete: Cell::new(false),
            deleter,
            block_reads: Cell::new(0),
        })
    }

    pub fn first(&self) -> &[u8] {
        &self.index[0].first
    }

    pub fn last(&self) -> &[u8] {
        &self.index.last().unwrap().last
    }

    /// Block `i`'s index entry: its keys and where it lies.
    pub fn block_info(&self, i: usize) -> &IndexEntry {
        &self.index[i]
    }

    pub fn blocks(&self) -> usize {
        self.index.len()
    }

    /// Block `i`, from the cache or the file (`fill`: keep it in the cache).
    async fn block(&self, i: usize, fill: bool) -> io::Result<Block> {
        if let Some(hit) = self.cache.get((self.id, i)) {
            return Ok(hit);
        }
        self.cache.misses.set(self.cache.misses.get() + 1);
        let e = &self.index[i];
        let raw = self.file.read_vec_at(e.len as usize, e.offset).await?;
        self.block_reads.set(self.block_reads.get() + 1);
        let what = |why: &str| {
            let (first, last) = (show(&e.first), show(&e.last));
            let n = self.index.len();
            let at = e.offset;
            corrupt(
                &self.path,
                format!("block {i} of {n} (keys \"{first}\" to \"{last}\", at offset {at}) {why}"),
            )
        };
        if raw.len() != e.len as usize {
            return Err(what("is cut short"));
        }
        let entries = open_block(&raw).map_err(what)?;
        let fits = |(k, _): &(Key, Value)| *k >= e.first && *k <= e.last;
        if entries.is_empty() || !entries.iter().all(fits) {
            return Err(what("holds keys its index entry does not"));
        }
        let block = Rc::new(entries);
        if fill {
            self.cache.insert((self.id, i), block.clone());
        }
        Ok(block)
    }

    /// The key's entry in this table (`Some(None)`: a tombstone), `None` if it has none.
    pub async fn get(&self, key: &[u8]) -> io::Result<Option<Value>> {
        if key < self.first() || key > self.last() || !self.bloom.may_contain(key) {
            return Ok(None);
        }
        let i = self.index.partition_point(|e| e.last.as_slice() < key);
        if i == self.index.len() || key < self.index[i].first.as_slice() {
            return Ok(None);
        }
        let block = self.block(i, true).await?;
        Ok(block
            .binary_search_by(|(k, _)| k.as_slice().cmp(key))
            .ok()
            .map(|at| block[at].1.clone()))
    }

    /// The entries with keys in `[start, end)`, tombstones included, in order; `fill`
    /// keeps the blocks read in the cache (a compaction's reads do not).
    pub async fn range(
        &self,
        start: &[u8],
        end: Bound<&[u8]>,
        fill: bool,
    ) -> io::Result<Vec<(Key, Value)>> {
        let below_end = |k: &[u8]| match end {
            Bound::Excluded(e) => k < e,
            Bound::Included(e) => k <= e,
            Bound::Unbounded => true,
        };
        let wanted: Vec<usize> = (0..self.index.len())
            .filter(|&i| self.index[i].last.as_slice() >= start && below_end(&self.index[i].first))
            .collect();
        // The blocks read side by side, each through the table's one handle.
        let reads = wanted.iter().map(|&i| self.block(i, fill));
        let mut out = Vec::new();
        for block in overlap::future::join_all(reads).await {
            let block = block?;
            let keep = block
                .iter()
                .filter(|(k, _)| k.as_slice() >= start && below_end(k));
            out.extend(keep.cloned());
        }
        Ok(out)
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        self.cache.forget(self.id);
        if self.obsolete.get() {
            // The deleter is gone only once the store has closed; nothing to do then.
            let _ = self.deleter.send(self.path.clone());
        }
    }
}
