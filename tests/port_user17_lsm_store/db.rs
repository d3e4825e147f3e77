//! The store: the memtable and the one being flushed, the current `Version` (the tables
//! of L0, newest first, and of L1, in key order, each an `Rc<Table>`), opening and
//! recovery, the flusher and compactor tasks, snapshots and closing. A snapshot or a read
//! in progress holds the `Rc<Version>` it started with, so a compaction's old tables stay
//! open and on disk until the last of them lets go.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use overlap::fs;
use overlap::sync::{mpsc, oneshot, CancellationToken, Mutex, Notify};

use super::snapshot::Snapshot;
use overlap::task::JoinHandle;

use super::format::{Key, MemTable, Value};
use super::manifest::Manifest;
use super::sst::{table_name, write_table, BlockCache, Table};
use super::wal::{committer, log_name, replay, Log, WriteReq};

#[derive(Clone, Debug)]
pub struct Options {
    /// The memtable is flushed to an L0 table once its entries take this many bytes.
    pub memtable_bytes: usize,
    pub block_bytes: usize,
    /// A compaction starts once L0 has this many tables.
    pub l0_trigger: usize,
    /// L1 tables are cut at about this size.
    pub l1_table_bytes: usize,
    pub cache_blocks: usize,
    /// Writes per group commit at most.
    pub max_batch: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            memtable_bytes: 64 * 1024,
            block_bytes: 4096,
            l0_trigger: 4,
            l1_table_bytes: 256 * 1024,
            cache_blocks: 64,
            max_batch: 256,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub batches_written: u64,
    pub syncs: u64,
    pub records: u64,
    pub stalls: u64,
    pub flushes: u64,
    pub compactions: u64,
    pub compaction_errors: Vec<String>,
    pub tables_deleted: u64,
    pub logs_deleted: u64,
    pub garbage_removed: u64,
    /// Logs replayed on open.
    pub replayed: Vec<Replay>,
}

/// A log replayed on open: its records, and the length it was cut from and to if torn.
#[derive(Clone, Debug)]
pub struct Replay {
    pub log: u64,
    pub records: usize,
    pub cut: Option<(u64, u64)>,
}

#[derive(Debug, Default)]
pub struct Version {
    pub l0: Vec<Rc<Table>>,
    pub l1: Vec<Rc<Table>>,
}

pub struct Inner {
    pub dir: PathBuf,
    pub opts: Options,
    mem: RefCell<Rc<MemTable>>,
    mem_bytes: Cell<usize>,
    pub imm: RefCell<Option<Rc<MemTable>>>,
    /// The log started when `imm` was handed over: the first one the flush leaves needed.
    imm_log: Cell<u64>,
    manifest_log: Cell<u64>,
    live_logs: RefCell<Vec<u64>>,
    version: RefCell<Rc<Version>>,
    next_id: Cell<u64>,
    seq: Cell<u64>,
    pub stats: RefCell<Stats>,
    poison: RefCell<Option<(io::ErrorKind, String)>>,
    /// Woken after each flush, done or failed.
    pub flushed: Notify,
    flush_wanted: Notify,
    compact_wanted: Notify,
    force_compact: Cell<bool>,
    pub compacting: Cell<bool>,
    /// The L0 a compaction failed on: not tried again until L0 changes (or asked for).
    failed_l0: RefCell<Vec<u64>>,
    /// A fault for the crash test: the committer writes its next batch, then hangs
    /// before the sync.
    pub stall_before_sync: Cell<bool>,
    manifest_lock: Mutex<()>,
    pub cache: Rc<BlockCache>,
    deleter_tx: RefCell<Option<mpsc::UnboundedSender<PathBuf>>>,
    wal_tx: RefCell<Option<mpsc::Sender<WriteReq>>>,
    token: CancellationToken,
    tasks: RefCell<Vec<JoinHandle<()>>>,
    deleter: RefCell<Option<JoinHandle<()>>>,
}

fn file_id(name: &str, ext: &str) -> Option<u64> {
    name.strip_suffix(ext)?.parse().ok()
}

impl Inner {
    pub fn poisoned(&self) -> Option<io::Error> {
        let p = self.poison.borrow();
        p.as_ref()
            .map(|(kind, msg)| io::Error::new(*kind, msg.clone()))
    }

    pub fn poison(&self, e: &io::Error) {
        let mut p = self.poison.borrow_mut();
        p.get_or_insert_with(|| (e.kind(), format!("store failed: {e}")));
    }

    pub fn alloc_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    /// Applies a durable batch to the memtable; the first write's sequence number.
    pub fn apply<'a>(&self, batch: impl Iterator<Item = (&'a Key, &'a Value)>) -> u64 {
        let first = self.seq.get();
        let mut mem = self.mem.borrow_mut();
        let mem = Rc::make_mut(&mut mem);
        for (k, v) in batch {
            let size = k.len() + v.as_ref().map_or(0, Vec::len) + 16;
            mem.insert(k.clone(), v.clone());
            self.mem_bytes.set(self.mem_bytes.get() + size);
            self.seq.set(self.seq.get() + 1);
        }
        self.stats.borrow_mut().records = self.seq.get();
        first
    }

    pub fn memtable_full(&self) -> bool {
        self.mem_bytes.get() >= self.opts.memtable_bytes
    }

    /// Hands the memtable to the flusher; `log` is the one its writes go to from now on.
    pub fn start_flush(&self, log: u64) {
        let full = std::mem::take(&mut *self.mem.borrow_mut());
        self.mem_bytes.set(0);
        *self.imm.borrow_mut() = Some(full);
        self.imm_log.set(log);
        self.live_logs.borrow_mut().push(log);
        self.flush_wanted.notify_one();
    }

    /// Whether L0 is due a compaction the compactor has not failed on already.
    fn compaction_due(&self) -> bool {
        let l0: Vec<u64> = self.version().l0.iter().map(|t| t.id).collect();
        l0.len() >= self.opts.l0_trigger && l0 != *self.failed_l0.borrow()
    }

    fn version(&self) -> Rc<Version> {
        self.version.borrow().clone()
    }

    fn manifest(&self, v: &Version) -> Manifest {
        Manifest {
            next_id: self.next_id.get(),
            log: self.manifest_log.get(),
            l0: v.l0.iter().map(|t| t.id).collect(),
            l1: v.l1.iter().map(|t| t.id).collect(),
        }
    }

    async fn open_table(&self, id: u64) -> io::Result<Rc<Table>> {
        let tx = self.deleter_tx.borrow().clone().expect("the store is open");
        Ok(Rc::new(
            Table::open(&self.dir, id, self.cache.clone(), tx).await?,
        ))
    }
}

async fn flusher(inner: Rc<Inner>) {
    loop {
        overlap::select! {
            _ = inner.token.cancelled() => break,
            _ = inner.flush_wanted.notified() => {}
        }
        let Some(imm) = inner.imm.borrow().clone() else {
            continue;
        };
        if let Err(e) = flush(&inner, &imm).await {
            inner.poison(&io::Error::new(e.kind(), format!("flush: {e}")));
        }
        inner.flushed.notify_waiters();
    }
}

async fn flush(inner: &Rc<Inner>, imm: &MemTable) -> io::Result<()> {
    let id = inner.alloc_id();
    let entries = imm.iter().map(|(k, v)| (k.clone(), v.clone()));
    write_table(&inner.dir, id, entries, inner.opts.block_bytes).await?;
    let table = inner.open_table(id).await?;
    let guard = inner.manifest_lock.lock().await;
    let cur = inner.version();
    let mut l0 = vec![table];
    l0.extend(cur.l0.iter().cloned());
    let new = Version {
        l0,
        l1: cur.l1.clone(),
    };
    let log = inner.imm_log.get();
    let mut m = inner.manifest(&new);
    m.log = log;
    m.store(&inner.dir).await?;
    inner.manifest_log.set(log);
    *inner.version.borrow_mut() = Rc::new(new);
    *inner.imm.borrow_mut() = None;
    inner.stats.borrow_mut().flushes += 1;
    drop(guard);
    let old: Vec<u64> = inner
        .live_logs
        .borrow()
        .iter()
        .copied()
        .filter(|&l| l < log)
        .collect();
    inner.live_logs.borrow_mut().retain(|&l| l >= log);
    for l in old {
        fs::remove_file(inner.dir.join(log_name(l))).await?;
        inner.stats.borrow_mut().logs_deleted += 1;
    }
    if inner.version().l0.len() >= inner.opts.l0_trigger {
        inner.compact_wanted.notify_one();
    }
    Ok(())
}

async fn compactor(inner: Rc<Inner>) {
    loop {
        overlap::select! {
            _ = inner.token.cancelled() => break,
            _ = inner.compact_wanted.notified() => {}
        }
        let forced = inner.force_compact.take();
        if inner.version().l0.is_empty() || !(forced || inner.compaction_due()) {
            continue;
        }
        inner.compacting.set(true);
        let l0: Vec<u64> = inner.version().l0.iter().map(|t| t.id).collect();
        if let Err(e) = compact(&inner).await {
            inner
                .stats
                .borrow_mut()
                .compaction_errors
                .push(e.to_string());
            *inner.failed_l0.borrow_mut() = l0;
        }
        inner.compacting.set(false);
        inner.flushed.notify_waiters();
    }
}

/// Merges every L0 table and every L1 table into new L1 tables; L1 being the last level,
/// tombstones go.
async fn compact(inner: &Rc<Inner>) -> io::Result<()> {
    let v = inner.version();
    let mut merged = BTreeMap::new();
    // Oldest first, so that a newer entry replaces an older one.
    for t in v.l1.iter().chain(v.l0.iter().rev()) {
        merged.extend(t.range(b"", Bound::Unbounded, false).await?);
    }
    let mut outputs = Vec::new();
    let mut part: Vec<(Key, Value)> = Vec::new();
    let mut size = 0;
    let mut live = merged.into_iter().filter(|(_, v)| v.is_some()).peekable();
    while let Some((k, val)) = live.next() {
        size += k.len() + val.as_ref().map_or(0, Vec::len) + 9;
        part.push((k, val));
        if size >= inner.opts.l1_table_bytes || live.peek().is_none() {
            let id = inner.alloc_id();
            let block = inner.opts.block_bytes;
            write_table(&inner.dir, id, std::mem::take(&mut part), block).await?;
            outputs.push(inner.open_table(id).await?);
            size = 0;
        }
    }
    let _guard = inner.manifest_lock.lock().await;
    let cur = inner.version();
    let gone = |t: &Rc<Table>| v.l0.iter().any(|i| i.id == t.id);
    let new = Version {
        l0: cur.l0.iter().filter(|t| !gone(t)).cloned().collect(),
        l1: outputs,
    };
    inner.manifest(&new).store(&inner.dir).await?;
    *inner.version.borrow_mut() = Rc::new(new);
    for t in v.l0.iter().chain(v.l1.iter()) {
        t.obsolete.set(true);
    }
    inner.stats.borrow_mut().compactions += 1;
    Ok(())
}

async fn deleter(inner: std::rc::Weak<Inner>, mut rx: mpsc::UnboundedReceiver<PathBuf>) {
    while let Some(path) = rx.recv().await {
        let removed = fs::remove_file(&path).await.is_ok();
        if let Some(inner) = inner.upgrade().filter(|_| removed) {
            inner.stats.borrow_mut().tables_deleted += 1;
        }
    }
}

/// A handle to the store; clones share it.
#[derive(Clone)]
pub struct Db(Rc<Inner>);

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the store is closed")
}

impl Db {
    pub async fn open(dir: &Path, opts: Options) -> io::Result<Db> {
        fs::create_dir_all(dir).await?;
        let m = Manifest::load(dir).await?.unwrap_or(Manifest {
            next_id: 1,
            ..Manifest::default()
        });
        let (dtx, drx) = mpsc::unbounded_channel();
        let cache = Rc::new(BlockCache::new(opts.cache_blocks));
        let inner = Rc::new(Inner {
            dir: dir.to_path_buf(),
            opts,
            mem: RefCell::default(),
            mem_bytes: Cell::new(0),
            imm: RefCell::new(None),
            imm_log: Cell::new(0),
            manifest_log: Cell::new(m.log),
            live_logs: RefCell::default(),
            version: RefCell::default(),
            next_id: Cell::new(m.next_id),
            seq: Cell::new(0),
            stats: RefCell::default(),
            poison: RefCell::new(None),
            flushed: Notify::new(),
            flush_wanted: Notify::new(),
            compact_wanted: Notify::new(),
            force_compact: Cell::new(false),
            compacting: Cell::new(false),
            failed_l0: RefCell::default(),
            stall_before_sync: Cell::new(false),
            manifest_lock: Mutex::new(()),
            cache,
            deleter_tx: RefCell::new(Some(dtx)),
            wal_tx: RefCell::new(None),
            token: CancellationToken::new(),
            tasks: RefCell::default(),
            deleter: RefCell::new(None),
        });
        let db = Db(inner);
        let (l0, l1) = (db.open_level(&m.l0).await?, db.open_level(&m.l1).await?);
        let inner = &db.0;
        *inner.version.borrow_mut() = Rc::new(Version { l0, l1 });

        // Files no manifest names: a compaction's or flush's output cut short by a crash,
        // logs already in tables, a manifest never renamed. Logs still needed are replayed.
        let mut logs = Vec::new();
        let mut max_id = 0;
        let mut entries = fs::read_dir(dir).await?;
        while let Some(e) = entries.next_entry().await? {
            let name = e.file_name().to_string_lossy().into_owned();
            let named = m.l0.iter().chain(&m.l1).any(|&id| name == table_name(id));
            let garbage = match (file_id(&name, ".sst"), file_id(&name, ".log")) {
                (Some(id), _) => {
                    max_id = max_id.max(id);
                    !named
                }
                (_, Some(id)) => {
                    max_id = max_id.max(id);
                    if id >= m.log {
                        logs.push(id);
                    }
                    id < m.log
                }
                _ => name == "MANIFEST.tmp",
            };
            if garbage {
                fs::remove_file(e.path()).await?;
                inner.stats.borrow_mut().garbage_removed += 1;
            }
        }
        inner.next_id.set(inner.next_id.get().max(max_id + 1));
        logs.sort_unstable();
        for &id in &logs {
            let r = replay(dir, id).await?;
            inner.apply(r.records.iter().map(|(k, v)| (k, v)));
            let replayed = Replay {
                log: id,
                records: r.records.len(),
                cut: r.cut,
            };
            inner.stats.borrow_mut().replayed.push(replayed);
        }
        let log = Log::create(dir, inner.alloc_id()).await?;
        logs.push(log.id);
        *inner.live_logs.borrow_mut() = logs;

        let (tx, rx) = mpsc::channel(1024);
        *inner.wal_tx.borrow_mut() = Some(tx);
        let weak = Rc::downgrade(inner);
        *inner.deleter.borrow_mut() = Some(overlap::spawn(deleter(weak, drx)));
        inner.tasks.borrow_mut().extend([
            overlap::spawn(committer(inner.clone(), rx, log)),
            overlap::spawn(flusher(inner.clone())),
            overlap::spawn(compactor(inner.clone())),
        ]);
        Ok(db)
    }

    async fn open_level(&self, ids: &[u64]) -> io::Result<Vec<Rc<Table>>> {
        let mut out = Vec::new();
        for &id in ids {
            out.push(self.0.open_table(id).await?);
        }
        Ok(out)
    }
}

impl Db {
    async fn write(&self, key: &[u8], value: Value) -> io::Result<u64> {
        if let Some(e) = self.0.poisoned() {
            return Err(e);
        }
        let tx = self.0.wal_tx.borrow().clone().ok_or_else(closed)?;
        let (done, answer) = oneshot::channel();
        let key = key.to_vec();
        tx.send(WriteReq { key, value, done })
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Stores `value` under `key`; returns once durable, with the write's sequence number.
    pub async fn put(&self, key: &[u8], value: &[u8]) -> io::Result<u64> {
        self.write(key, Some(value.to_vec())).await
    }

    pub async fn delete(&self, key: &[u8]) -> io::Result<u64> {
        self.write(key, None).await
    }

    /// A consistent view: the memtables as they are now and the current tables, held.
    pub fn snapshot(&self) -> Snapshot {
        let inner = &self.0;
        Snapshot {
            mem: inner.mem.borrow().clone(),
            imm: inner.imm.borrow().clone(),
            version: inner.version(),
        }
    }

    pub async fn get(&self, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        self.snapshot().get(key).await
    }

    /// Up to `limit` live entries with keys from `start` up to `end` (excluded; `None`: to
    /// the last key).
    pub async fn scan(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> io::Result<Vec<(Key, Vec<u8>)>> {
        self.snapshot().scan(start, end, limit).await
    }

    pub fn stats(&self) -> Stats {
        self.0.stats.borrow().clone()
    }

    pub fn cache(&self) -> &BlockCache {
        &self.0.cache
    }

    pub fn dir(&self) -> &Path {
        &self.0.dir
    }

    /// The table ids of L0 (newest first) and L1 (in key order).
    pub fn levels(&self) -> (Vec<u64>, Vec<u64>) {
        let v = self.0.version();
        let ids = |l: &[Rc<Table>]| l.iter().map(|t| t.id).collect();
        (ids(&v.l0), ids(&v.l1))
    }

    pub fn poisoned(&self) -> Option<io::Error> {
        self.0.poisoned()
    }

    /// The crash test's fault: the next batch is written but never synced nor answered.
    pub fn stall_before_sync(&self) {
        self.0.stall_before_sync.set(true);
    }

    pub fn is_compacting(&self) -> bool {
        self.0.compacting.get()
    }

    /// Asks for a compaction of whatever L0 holds (none if it is empty).
    pub fn compact_soon(&self) {
        self.0.force_compact.set(true);
        self.0.compact_wanted.notify_one();
    }

    /// Waits until no flush nor compaction is running or wanted.
    pub async fn wait_idle(&self) {
        let inner = &self.0;
        loop {
            let wanted = inner.compaction_due() || inner.force_compact.get();
            let busy = inner.imm.borrow().is_some() || inner.compacting.get() || wanted;
            if !busy || inner.poisoned().is_some() {
                return;
            }
            overlap::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    /// Stops taking writes, lets the committer answer those queued, the flusher and the
    /// compactor finish what they are doing, closes every table and waits for the
    /// obsolete ones to be deleted. Snapshots must be dropped first.
    pub async fn close(self) {
        let inner = self.0;
        drop(inner.wal_tx.borrow_mut().take());
        let tasks = std::mem::take(&mut *inner.tasks.borrow_mut());
        let mut tasks = tasks.into_iter();
        if let Some(committer) = tasks.next() {
            let _ = committer.await;
        }
        inner.token.cancel();
        for t in tasks {
            let _ = t.await;
        }
        *inner.version.borrow_mut() = Rc::default();
        *inner.imm.borrow_mut() = None;
        drop(inner.deleter_tx.borrow_mut().take());
        let deleter = inner.deleter.borrow_mut().take();
        if let Some(d) = deleter {
            let _ = d.await;
        }
    }
}
