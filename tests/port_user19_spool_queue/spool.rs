//! The spool: a directory of segment files, the writer task that appends producers'
//! messages in batches and acks them after one `sync_data` per batch (group commit), reads
//! by offset, consumer groups' commits, and retention: whole old segments deleted, the
//! consumed front of the segment still in use punched out.

use std::cell::{Cell, RefCell};
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use overlap::sync::{mpsc, oneshot, watch, Mutex};
use overlap::task::JoinHandle;

use super::groups::{self, Groups};
use super::record;
use super::segment::{self, Segment};

/// How the spool cuts its log.
#[derive(Clone)]
pub struct Config {
    /// A batch goes to a new segment once the current one holds this many bytes.
    pub roll_bytes: u64,
    /// The longest message.
    pub max_payload: usize,
    /// Messages waiting for the writer at most; a producer waits for room beyond.
    pub queue: usize,
    /// Messages written (and synced) together at most.
    pub batch: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            roll_bytes: 1 << 20,
            max_payload: 64 << 10,
            queue: 1024,
            batch: 512,
        }
    }
}

/// What the spool did, counted.
#[derive(Default)]
pub struct Stats {
    /// `sync_data` calls made on segments.
    pub fsyncs: Cell<u64>,
    /// Messages acked as stored.
    pub acks: Cell<u64>,
    /// The most messages one sync covered.
    pub largest_batch: Cell<usize>,
    /// Bytes given back by `punch_hole`.
    pub punched: Cell<u64>,
    /// Segment files deleted by retention.
    pub deleted: Cell<u64>,
    /// Retention found the file system without holes (`Unsupported`).
    pub holes_unsupported: Cell<bool>,
}

/// A message waiting for the writer.
struct Publish {
    payload: Vec<u8>,
    stored: oneshot::Sender<io::Result<u64>>,
}

/// The spool of one directory.
pub struct Spool {
    dir: PathBuf,
    config: Config,
    segments: RefCell<Vec<Segment>>,
    /// The offset after the last synced record: what consumers may read up to.
    end: watch::Sender<u64>,
    /// Offsets below this are gone (retention).
    oldest: Cell<u64>,
    queue: RefCell<Option<mpsc::Sender<Publish>>>,
    writer: RefCell<Option<JoinHandle<()>>>,
    /// Commits and retention, one at a time.
    groups: Mutex<Groups>,
    /// What recovery and retention did, a line each.
    pub log: RefCell<Vec<String>>,
    pub stats: Stats,
}

impl Spool {
    /// Opens (or starts) the spool in `dir`: every segment scanned, a torn or corrupt tail
    /// cut (and the segments after it removed), then the writer started.
    pub async fn open(dir: &Path, config: Config) -> io::Result<Rc<Spool>> {
        let mut names = Vec::new();
        let mut entries = overlap::fs::read_dir(dir).await?;
        while let Some(entry) = entries.next_entry().await? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(base) = segment::base_of(&name) {
                names.push((base, entry.path()));
            }
        }
        names.sort();
        let mut log = Vec::new();
        let mut segments: Vec<Segment> = Vec::new();
        for (base, path) in names {
            if let Some(last) = segments.last().filter(|s| s.end() != base) {
                let end = last.end();
                let name = path.file_name().unwrap().to_string_lossy();
                log.push(format!(
                    "recovery: {name} removed: the log ends at offset {end}"
                ));
                overlap::fs::remove_file(&path).await?;
                continue;
            }
            let seg = Segment::recover(&path, base, config.max_payload, &mut log).await?;
            segments.push(seg);
        }
        if segments.is_empty() {
            segments.push(Segment::create(dir, 0).await?);
        }
        let oldest = segments[0].index_base;
        let end = segments.last().unwrap().end();
        log.push(format!(
            "recovery: {} segment(s), offsets {oldest}..{end}",
            segments.len()
        ));
        let _ = overlap::fs::remove_file(dir.join(groups::FILE).with_extension("tmp")).await;
        let groups = Groups::load(dir).await?;
        let (tx, rx) = mpsc::channel(config.queue);
        let spool = Rc::new(Spool {
            dir: dir.to_path_buf(),
            config,
            segments: RefCell::new(segments),
            end: watch::Sender::new(end),
            oldest: Cell::new(oldest),
            queue: RefCell::new(Some(tx)),
            writer: RefCell::new(None),
            groups: Mutex::new(groups),
            log: RefCell::new(log),
            stats: Stats::default(),
        });
        let writer = overlap::spawn(write_batches(spool.clone(), rx));
        *spool.writer.borrow_mut() = Some(writer);
        Ok(spool)
    }

    /// Queues `payload` for the writer (waiting while the queue is full); the receiver
    /// gets its offset once it is synced, or the error that kept it from the disk.
    pub async fn publish(
        &self,
        payload: Vec<u8>,
    ) -> io::Result<oneshot::Receiver<io::Result<u64>>> {
        let closed = || io::Error::new(io::ErrorKind::BrokenPipe, "the spool is closed");
        let queue = self.queue.borrow().clone().ok_or_else(closed)?;
        let (stored, rx) = oneshot::channel();
        queue
            .send(Publish { payload, stored })
            .await
            .map_err(|_| closed())?;
        Ok(rx)
    }

    /// Stops the writer once it has written what was queued, and waits for it.
    pub async fn close(&self) {
        drop(self.queue.borrow_mut().take());
        let writer = self.writer.borrow_mut().take();
        if let Some(writer) = writer {
            let _ = writer.await;
        }
    }

    /// The offset after the last synced record.
    pub fn end(&self) -> u64 {
        *self.end.borrow()
    }

    /// Watches [`end`](Spool::end).
    pub fn watch_end(&self) -> watch::Receiver<u64> {
        self.end.subscribe()
    }

    /// The oldest offset kept.
    pub fn oldest(&self) -> u64 {
        self.oldest.get()
    }

    /// Whether a consumer may start at `from`: kept, and not past the end.
    pub fn check_start(&self, from: u64) -> io::Result<()> {
        let (oldest, end) = (self.oldest(), self.end());
        if from < oldest {
            let why =
                format!("offset {from} was removed by retention (the oldest kept is {oldest})");
            return Err(io::Error::new(io::ErrorKind::NotFound, why));
        }
        if from > end {
            let why = format!("offset {from} is past the end ({end})");
            return Err(io::Error::new(io::ErrorKind::InvalidInput, why));
        }
        Ok(())
    }

    /// The segment files, oldest first.
    pub fn segment_paths(&self) -> Vec<PathBuf> {
        self.segments
            .borrow()
            .iter()
            .map(|s| s.path.clone())
            .collect()
    }

    /// The payload of the record at `offset`, read from its segment and checked.
    pub async fn read(&self, offset: u64) -> io::Result<Vec<u8>> {
        let gone = |oldest| {
            let why =
                format!("offset {offset} was removed by retention (the oldest kept is {oldest})");
            io::Error::new(io::ErrorKind::NotFound, why)
        };
        if offset < self.oldest() {
            return Err(gone(self.oldest()));
        }
        let found = self.segments.borrow().iter().find_map(|s| {
            let (at, len) = s.locate(offset)?;
            Some((s.file.clone(), s.path.clone(), at, len))
        });
        let Some((file, path, at, len)) = found else {
            let why = format!("offset {offset} is past the end ({})", self.end());
            return Err(io::Error::new(io::ErrorKind::InvalidInput, why));
        };
        let mut bytes = file.read_vec_at(len as usize, at).await?;
        match record::decode(&bytes, offset, self.config.max_payload) {
            Ok(_) => {
                bytes.drain(..record::HEADER);
                Ok(bytes)
            }
            // Punched while it was being read.
            Err(_) if offset < self.oldest() => Err(gone(self.oldest())),
            Err(why) => {
                let why = format!("record {offset} at byte {at} of {}: {why}", path.display());
                Err(io::Error::new(io::ErrorKind::InvalidData, why))
            }
        }
    }

    /// The group's committed offset, if it has one.
    pub async fn committed(&self, group: &str) -> Option<u64> {
        self.groups.lock().await.get(group)
    }

    /// How many times the groups file was replaced.
    pub async fn group_writes(&self) -> u64 {
        self.groups.lock().await.writes
    }

    /// Commits `offset` (the next one it will read) for `group`, atomically on disk, then
    /// lets retention drop what every group has read past.
    pub async fn commit(&self, group: &str, offset: u64) -> io::Result<()> {
        if offset > self.end() {
            let why = format!("a commit of offset {offset}, past the end ({})", self.end());
            return Err(io::Error::new(io::ErrorKind::InvalidInput, why));
        }
        let mut groups = self.groups.lock().await;
        let text = groups.set(group, offset);
        groups::replace_atomically(groups.path(), &text).await?;
        groups.writes += 1;
        match groups.min() {
            Some(min) => self.retain(min).await,
            None => Ok(()),
        }
    }

    /// Drops the records below `upto`: segments holding only such records are deleted,
    /// and the front of the one holding `upto` is punched out (its size, and so every
    /// later record's position, stays). The newest record is always kept, so recovery
    /// learns from it where the offsets go on. Called under the groups' lock.
    async fn retain(&self, upto: u64) -> io::Result<()> {
        let upto = upto.min(self.end().saturating_sub(1));
        if upto <= self.oldest() {
            return Ok(());
        }
        loop {
            let victim = {
                let mut segments = self.segments.borrow_mut();
                let whole = segments.len() > 1 && segments[0].end() <= upto;
                whole.then(|| segments.remove(0))
            };
            let Some(seg) = victim else { break };
            overlap::fs::remove_file(&seg.path).await?;
            self.stats.deleted.set(self.stats.deleted.get() + 1);
            let name = seg.path.file_name().unwrap().to_string_lossy().into_owned();
            self.log_line(format!(
                "retention: deleted {name} (offsets {}..{})",
                seg.index_base,
                seg.end()
            ));
        }
        let front = {
            let segments = self.segments.borrow();
            let seg = &segments[0];
            seg.locate(upto)
                .map(|(at, _)| (seg.file.clone(), seg.base, seg.punched, at))
        };
        self.oldest.set(upto);
        let Some((file, base, from, to)) = front.filter(|f| f.3 > f.2) else {
            return Ok(());
        };
        match file.punch_hole(from, to - from).await {
            Ok(()) => {
                if let Some(seg) = self
                    .segments
                    .borrow_mut()
                    .iter_mut()
                    .find(|s| s.base == base)
                {
                    seg.punched = to;
                }
                self.stats
                    .punched
                    .set(self.stats.punched.get() + (to - from));
                self.log_line(format!(
                    "retention: punched bytes {from}..{to} of {} (offsets below {upto})",
                    segment::file_name(base)
                ));
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                // No holes here: the bytes stay until the whole segment goes.
                self.stats.holes_unsupported.set(true);
                self.log_line(format!("retention: no holes on this file system: {e}"));
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn log_line(&self, line: String) {
        eprintln!("spool: {line}");
        self.log.borrow_mut().push(line);
    }
}

/// The writer: takes what is queued (up to a batch), appends it to the last segment in
/// one write, syncs once, and only then acks every message of the batch and moves the end
/// consumers read up to. A failed write or sync acks nothing and cuts the bytes back.
async fn write_batches(spool: Rc<Spool>, mut queue: mpsc::Receiver<Publish>) {
    let mut batch = Vec::new();
    while queue.recv_many(&mut batch, spool.config.batch).await > 0 {
        let result = append(&spool, &batch).await;
        match result {
            Ok(first) => {
                let n = batch.len();
                let stats = &spool.stats;
                stats.acks.set(stats.acks.get() + n as u64);
                stats.largest_batch.set(stats.largest_batch.get().max(n));
                spool.end.send_replace(first + n as u64);
                for (i, p) in batch.drain(..).enumerate() {
                    let _ = p.stored.send(Ok(first + i as u64));
                }
            }
            Err(e) => {
                spool.log_line(format!(
                    "append failed, {} message(s) not stored: {e}",
                    batch.len()
                ));
                for p in batch.drain(..) {
                    let _ = p.stored.send(Err(io::Error::new(e.kind(), e.to_string())));
                }
            }
        }
    }
}

/// Appends `batch` to the log (in a new segment if the last one is full) and syncs it:
/// gives the first message's offset.
async fn append(spool: &Spool, batch: &[Publish]) -> io::Result<u64> {
    let full = spool.segments.borrow().last().unwrap().len >= spool.config.roll_bytes;
    if full {
        let seg = Segment::create(&spool.dir, spool.end()).await?;
        spool.segments.borrow_mut().push(seg);
    }
    let (file, at, first) = {
        let segments = spool.segments.borrow();
        let last = segments.last().unwrap();
        (last.file.clone(), last.len, last.end())
    };
    let mut bytes = Vec::new();
    let mut positions = Vec::with_capacity(batch.len());
    for (i, p) in batch.iter().enumerate() {
        positions.push(at + bytes.len() as u64);
        record::encode(first + i as u64, &p.payload, &mut bytes);
    }
    let len = bytes.len() as u64;
    let written = async {
        file.write_vec_at(bytes, at).await?;
        spool.stats.fsyncs.set(spool.stats.fsyncs.get() + 1);
        file.sync_data().await
    };
    if let Err(e) = written.await {
        let _ = file.set_len(at).await;
        return Err(e);
    }
    let mut segments = spool.segments.borrow_mut();
    let last = segments.last_mut().unwrap();
    last.positions.extend(positions);
    last.len += len;
    Ok(first)
}
