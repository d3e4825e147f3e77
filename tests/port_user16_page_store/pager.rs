//! The page store: the data file read and written by page with `read_exact_at` and
//! `write_all_at`, through the page cache; the free list; transactions, committed by
//! appending their page images to the log (`sync_data`) and then checkpointing them into
//! the data file (`sync_all`); recovery on open; readers on `try_clone`d handles.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use overlap::fs::{self, File, OpenOptions};
use overlap::sync::RwLock;

use super::cache::Cache;
use super::page::{corrupt, Header, Kind, Page, PAGE};
use super::wal::{self, encode_txn, Wal};

pub const DATA: &str = "pages.db";
pub const LOG: &str = "pages.wal";
/// Where a new data file is made before it is renamed into place.
pub const NEW_DATA: &str = "pages.db.new";

#[derive(Clone, Debug)]
pub struct Options {
    /// The cache's capacity, in pages; also the most pages one transaction may change.
    pub cache_pages: usize,
    /// The log is emptied after a checkpoint once it is longer than this.
    pub log_limit: u64,
    pub read_only: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            cache_pages: 64,
            log_limit: 256 * 1024,
            read_only: false,
        }
    }
}

/// The steps of a commit, for the crash tests' hook (called with the transaction's id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// The data file has room for the new pages; nothing logged.
    Grown,
    /// Half the log record is written (a crash here tears it).
    LogHalfWritten,
    /// The log record is durable: the transaction is committed.
    LogSynced,
    /// Half the pages are back in the data file.
    CheckpointHalf,
    /// All of them, synced; the log not yet emptied.
    Checkpointed,
}

pub const STAGES: [Stage; 5] = [
    Stage::Grown,
    Stage::LogHalfWritten,
    Stage::LogSynced,
    Stage::CheckpointHalf,
    Stage::Checkpointed,
];

/// Called at each [`Stage`]; an error stops the commit there, as a crash would, leaving
/// the files as they are.
pub type Hook = Box<dyn FnMut(u64, Stage) -> io::Result<()>>;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub commits: u64,
    pub rollbacks: u64,
    /// Committed transactions found in the log on open and written into the data file
    /// (again, for those whose checkpoint had finished: that changes nothing).
    pub replayed: u64,
    /// Log bytes after the last commit frame on open (torn or uncommitted), cut off.
    pub torn_log_bytes: u64,
    pub log_resets: u64,
}

pub struct PageStore {
    dir: PathBuf,
    pub(super) data: File,
    data_len: u64,
    /// `None` when read-only.
    pub(super) wal: Option<Wal>,
    /// With the open transaction's changes.
    pub(super) header: Header,
    committed: Header,
    pub(super) cache: Cache,
    opts: Options,
    /// Readers hold it shared while they read; a checkpoint holds it exclusive.
    lock: Rc<RwLock<()>>,
    broken: Option<String>,
    /// Set while a commit runs: still set afterwards if its future was dropped part way.
    committing: bool,
    hook: Option<Hook>,
    pub stats: Stats,
}

async fn read_page(file: &mut File, id: u32) -> io::Result<Page> {
    let mut buf = vec![0u8; PAGE];
    file.read_exact_at(&mut buf, id as u64 * PAGE as u64)
        .await?;
    let page = Page::from_bytes(&buf);
    page.verify(id)?;
    Ok(page)
}

/// Reads and checks the header page of a data file of `len` bytes.
pub(super) async fn read_header(file: &mut File, len: u64) -> io::Result<Header> {
    if len < PAGE as u64 {
        return Err(corrupt(format!(
            "the data file is {len} bytes, shorter than its header page"
        )));
    }
    let mut buf = vec![0u8; PAGE];
    file.read_exact_at(&mut buf, 0).await?;
    Header::from_page(&Page::from_bytes(&buf), len)
}

/// A fresh store: header and empty index directory, written to a new file, synced, and
/// renamed into place (a crash leaves no half-made store, only a `NEW_DATA` file).
async fn create(dir: &Path) -> io::Result<()> {
    let tmp = dir.join(NEW_DATA);
    let mut file = File::create(&tmp).await?;
    let header = Header {
        page_count: 2,
        free_head: 0,
        root: 1,
        seq: 0,
        entries: 0,
    };
    for mut page in [header.to_page(), Page::new(1, Kind::Directory)] {
        page.seal();
        file.write_all_at(page.bytes(), page.id() as u64 * PAGE as u64)
            .await?;
    }
    file.sync_all().await?;
    drop(file);
    fs::rename(&tmp, dir.join(DATA)).await?;
    File::open(dir).await?.sync_all().await
}

impl PageStore {
    pub async fn open(dir: &Path, opts: Options) -> io::Result<PageStore> {
        assert!(opts.cache_pages >= 8);
        let (data_path, log_path) = (dir.join(DATA), dir.join(LOG));
        let mut stats = Stats::default();
        if opts.read_only {
            if fs::try_exists(&log_path).await? {
                let n = wal::scan(&fs::read(&log_path).await?).txns.len();
                if n > 0 {
                    return Err(io::Error::other(format!(
                        "{}: {n} committed transactions are not yet in the data file: open \
                         the store read-write once to recover them",
                        log_path.display()
                    )));
                }
            }
            let mut data = File::open(&data_path).await?;
            let data_len = data.metadata().await?.len();
            let header = read_header(&mut data, data_len).await?;
            return Ok(PageStore::new(
                dir, data, data_len, None, header, opts, stats,
            ));
        }
        if fs::try_exists(dir.join(NEW_DATA)).await? {
            fs::remove_file(dir.join(NEW_DATA)).await?;
        }
        if !fs::try_exists(&data_path).await? {
            create(dir).await?;
        }
        let mut data = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&data_path)
            .await?;
        let mut data_len = data.metadata().await?.len();
        let (mut wal, log) = Wal::open(&log_path, true).await?;
        let scan = wal::scan(&log);
        stats.torn_log_bytes = (log.len() - scan.good) as u64;
        if let Some(last) = scan.txns.last() {
            // Replay: the last image of each page, in the order the log has them.
            let need = last.page_count as u64 * PAGE as u64;
            if data_len < need {
                data.set_len(need).await?;
                data_len = need;
            }
            let mut latest = BTreeMap::new();
            for txn in &scan.txns {
                for page in &txn.pages {
                    latest.insert(page.id(), page);
                }
            }
            for (id, page) in latest {
                data.write_all_at(page.bytes(), id as u64 * PAGE as u64)
                    .await?;
            }
            data.sync_all().await?;
            stats.replayed = scan.txns.len() as u64;
        }
        if !log.is_empty() {
            wal.cut(0).await?;
        }
        let header = read_header(&mut data, data_len).await?;
        Ok(PageStore::new(
            dir,
            data,
            data_len,
            Some(wal),
            header,
            opts,
            stats,
        ))
    }

    fn new(
        dir: &Path,
        data: File,
        data_len: u64,
        wal: Option<Wal>,
        header: Header,
        opts: Options,
        stats: Stats,
    ) -> PageStore {
        PageStore {
            dir: dir.to_path_buf(),
            data,
            data_len,
            wal,
            header,
            committed: header,
            cache: Cache::new(opts.cache_pages),
            opts,
            lock: Rc::new(RwLock::new(())),
            broken: None,
            committing: false,
            hook: None,
            stats,
        }
    }

    pub fn set_hook(&mut self, hook: Hook) {
        self.hook = Some(hook);
    }

    /// The header with the open transaction's changes.
    pub fn header(&self) -> Header {
        self.header
    }

    pub fn committed(&self) -> Header {
        self.committed
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    pub fn data_len(&self) -> u64 {
        self.data_len
    }

    /// Fails if the store may not be used: broken by a failure after a log write, or by
    /// a commit whose future was dropped part way.
    pub fn usable(&mut self) -> io::Result<()> {
        if self.committing {
            self.committing = false;
            self.broken = Some(
                "a commit was cancelled part way: whether it is in the log is known only \
                 after a reopen"
                    .into(),
            );
        }
        match &self.broken {
            Some(why) => Err(io::Error::other(format!(
                "{}: the store is unusable: {why}",
                self.dir.display()
            ))),
            None => Ok(()),
        }
    }

    fn writable(&mut self) -> io::Result<()> {
        if self.opts.read_only {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{}: the store is open read-only", self.dir.display()),
            ));
        }
        self.usable()
    }

    /// Makes sure the open transaction may change `more` pages.
    pub fn reserve(&mut self, more: usize) -> io::Result<()> {
        self.writable()?;
        let dirty = self.cache.dirty_count();
        if dirty + more > self.opts.cache_pages {
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!(
                    "transaction too large: {dirty} pages changed, {more} more would pass \
                     the cache's {} pages: commit or roll back first",
                    self.opts.cache_pages
                ),
            ));
        }
        Ok(())
    }

    /// Page `id`, from the cache or the data file (checked), with the open transaction's
    /// changes.
    pub async fn page(&mut self, id: u32) -> io::Result<Page> {
        self.usable()?;
        if id == 0 || id >= self.header.page_count {
            return Err(corrupt(format!(
                "page {id} is not a data page (the store has {})",
                self.header.page_count
            )));
        }
        if let Some(page) = self.cache.get(id) {
            return Ok(page.clone());
        }
        let page = read_page(&mut self.data, id).await?;
        self.cache.insert_clean(page.clone());
        Ok(page)
    }

    /// Puts a changed page in the open transaction.
    pub fn write_page(&mut self, page: Page) {
        assert!(page.id() != 0 && page.id() < self.header.page_count);
        self.cache.insert_dirty(page);
    }

    /// A page for new contents: the free list's first, or a new one at the end.
    pub async fn allocate(&mut self, kind: Kind) -> io::Result<Page> {
        let id = self.header.free_head;
        if id == 0 {
            self.header.page_count += 1;
            return Ok(Page::new(self.header.page_count - 1, kind));
        }
        let mut page = self.page(id).await?;
        page.expect(Kind::Free)?;
        self.header.free_head = page.u32_at(0);
        page.reset(kind);
        Ok(page)
    }

    /// Puts page `id` on the free list.
    pub fn free(&mut self, id: u32) {
        let mut page = Page::new(id, Kind::Free);
        page.set_u32(0, self.header.free_head);
        self.header.free_head = id;
        self.write_page(page);
    }

    /// Drops the open transaction's changes.
    pub fn rollback(&mut self) {
        self.cache.drop_dirty();
        self.header = self.committed;
        self.stats.rollbacks += 1;
    }

    fn at_stage(&mut self, txid: u64, stage: Stage) -> io::Result<()> {
        let Some(hook) = &mut self.hook else {
            return Ok(());
        };
        hook(txid, stage).inspect_err(|e| {
            self.broken = Some(format!("stopped at {stage:?} of transaction {txid}: {e}"));
        })
    }

    /// Commits the open transaction; returns its id (the last one's if nothing changed).
    ///
    /// An error before the log record is durable rolls the transaction back and leaves
    /// the store usable. An error after it (the checkpoint) leaves the transaction
    /// committed and the store unusable until a reopen, which finishes the checkpoint.
    pub async fn commit(&mut self) -> io::Result<u64> {
        self.writable()?;
        if self.cache.dirty_count() == 0 && self.header == self.committed {
            return Ok(self.committed.seq);
        }
        self.committing = true;
        let res = self.commit_inner().await;
        self.committing = false;
        res
    }

    async fn commit_inner(&mut self) -> io::Result<u64> {
        let txid = self.committed.seq + 1;
        self.header.seq = txid;
        self.cache.insert_dirty(self.header.to_page());
        let mut pages: Vec<Page> = self.cache.dirty_pages().into_iter().cloned().collect();
        pages.iter_mut().for_each(Page::seal);

        // Room for the new pages first: a full disk or a file size limit refuses the
        // transaction here, before anything is logged.
        let need = self.header.page_count as u64 * PAGE as u64;
        if need > self.data_len {
            if let Err(e) = self.data.set_len(need).await {
                self.rollback();
                return Err(e);
            }
            self.data_len = need;
        }
        self.at_stage(txid, Stage::Grown)?;

        let refs: Vec<&Page> = pages.iter().collect();
        let record = encode_txn(txid, &refs, self.header.page_count);
        let at = self.wal.as_ref().unwrap().len;
        if let Err(e) = self.append_log(txid, &record, at).await {
            if self.broken.is_some() {
                return Err(e);
            }
            // Not durable: cut the record off, and the transaction never happened.
            return match self.wal.as_mut().unwrap().cut(at).await {
                Ok(()) => {
                    self.rollback();
                    Err(e)
                }
                Err(cut) => Err(self.break_after(txid, e, &format!("and the log: {cut}"))),
            };
        }
        self.wal.as_mut().unwrap().len = at + record.len() as u64;
        self.at_stage(txid, Stage::LogSynced)?;

        // Committed. The checkpoint, with the readers kept out.
        let lock = self.lock.clone();
        let guard = lock.write().await;
        for (i, page) in pages.iter().enumerate() {
            if i == pages.len() / 2 {
                self.at_stage(txid, Stage::CheckpointHalf)?;
            }
            let off = page.id() as u64 * PAGE as u64;
            if let Err(e) = self.data.write_all_at(page.bytes(), off).await {
                return Err(self.break_after(txid, e, "in the checkpoint"));
            }
        }
        if let Err(e) = self.data.sync_all().await {
            return Err(self.break_after(txid, e, "syncing the data file"));
        }
        drop(guard);
        self.at_stage(txid, Stage::Checkpointed)?;

        self.committed = self.header;
        self.cache.mark_clean();
        self.stats.commits += 1;
        let wal = self.wal.as_mut().unwrap();
        if wal.len > self.opts.log_limit {
            if let Err(e) = wal.cut(0).await {
                self.broken = Some(format!("emptying the log failed: {e}"));
            } else {
                self.stats.log_resets += 1;
            }
        }
        Ok(txid)
    }

    async fn append_log(&mut self, txid: u64, record: &[u8], at: u64) -> io::Result<()> {
        let file = &mut self.wal.as_mut().unwrap().file;
        if self.hook.is_some() {
            let half = record.len() / 2;
            file.write_all_at(&record[..half], at).await?;
            self.at_stage(txid, Stage::LogHalfWritten)?;
            let file = &mut self.wal.as_mut().unwrap().file;
            file.write_all_at(&record[half..], at + half as u64).await?;
            file.sync_data().await
        } else {
            file.write_all_at(record, at).await?;
            file.sync_data().await
        }
    }

    /// A failure after the log record was durable: the store stops until a reopen.
    fn break_after(&mut self, txid: u64, e: io::Error, what: &str) -> io::Error {
        let why = format!(
            "transaction {txid} is committed in the log, but failed {what}: {e}; reopen the \
             store to finish it"
        );
        self.broken = Some(why.clone());
        io::Error::new(e.kind(), why)
    }

    /// A reader on a handle of its own (`try_clone`), seeing committed pages only.
    pub async fn reader(&mut self) -> io::Result<Reader> {
        Ok(Reader {
            file: self.data.try_clone().await?,
            lock: self.lock.clone(),
            pages_read: 0,
        })
    }

    /// Closes the store: the open transaction is dropped, and the log, every transaction
    /// in it checkpointed, is emptied (so a read-only open finds nothing to recover).
    /// Waits for the files' jobs (one a dropped commit left running, say), reporting a
    /// write that failed in the background. A broken store's log is left for a reopen.
    pub async fn close(mut self) -> io::Result<()> {
        if self.usable().is_ok() {
            if let Some(wal) = self.wal.as_mut().filter(|w| w.len > 0) {
                wal.cut(0).await?;
            }
        }
        self.data.into_std().await?;
        if let Some(wal) = self.wal {
            wal.file.into_std().await?;
        }
        Ok(())
    }
}

/// Reads committed pages straight from the data file, on its own handle, so that many
/// readers' `read_exact_at` calls run at once; a checkpoint waits for them, and they for
/// it, so a reader sees each commit whole or not at all.
pub struct Reader {
    pub(super) file: File,
    pub(super) lock: Rc<RwLock<()>>,
    pub pages_read: u64,
}

impl Reader {
    pub(super) async fn read_page(&mut self, id: u32) -> io::Result<Page> {
        self.pages_read += 1;
        read_page(&mut self.file, id).await
    }

    pub(super) async fn header(&mut self) -> io::Result<Header> {
        let len = self.file.metadata().await?.len();
        self.pages_read += 1;
        read_header(&mut self.file, len).await
    }
}
