//! The store: records and their CRC32, recovery on open, the group-committing writer
//! task, reads by offset from a second handle, and compaction.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use overlap::fs::{self, File, OpenOptions};
use overlap::io::{AsyncReadExt, AsyncReadIntExt, AsyncWriteExt, BufReader};
use overlap::sync::{mpsc, oneshot, Mutex};
use overlap::task::JoinHandle;

/// The log's name in the store's directory, and the compaction's temp file.
pub const LOG: &str = "wal.log";
pub const TMP: &str = "wal.log.compact";

pub const OP_SET: u8 = 1;
pub const OP_DEL: u8 = 2;
/// `[len u32][crc32 u32]`, both little-endian; `len` counts what follows them.
pub const HEADER: usize = 8;
/// A record longer than this is taken for garbage (a length field gone bad).
const MAX_RECORD: u32 = 1 << 20;
/// The most client writes one batch takes.
const BATCH: usize = 512;

/// CRC-32 (IEEE 802.3, reflected, as zlib's), a table built at compile time.
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut c = !0u32;
    for &b in data {
        c = TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// One record: `[len][crc][op u8][key len u16][key][value]`, the CRC over the op to the
/// end (the key's length is needed to split key from value; the user's format had it).
pub fn encode(op: u8, key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(3 + key.len() + value.len());
    body.push(op);
    body.extend_from_slice(&(key.len() as u16).to_le_bytes());
    body.extend_from_slice(key);
    body.extend_from_slice(value);
    let mut rec = Vec::with_capacity(HEADER + body.len());
    rec.extend_from_slice(&(body.len() as u32).to_le_bytes());
    rec.extend_from_slice(&crc32(&body).to_le_bytes());
    rec.extend_from_slice(&body);
    rec
}

/// A checked record body: (op, key, value), or `None` if the CRC or the layout is wrong.
pub fn decode_body(crc: u32, body: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    if crc32(body) != crc || body.len() < 3 {
        return None;
    }
    let klen = u16::from_le_bytes([body[1], body[2]]) as usize;
    let op = body[0];
    if body.len() < 3 + klen || !(op == OP_SET || op == OP_DEL) {
        return None;
    }
    Some((op, &body[3..3 + klen], &body[3 + klen..]))
}

/// A record found by [`scan`]: (offset, op, key, value).
pub type Scanned = (u64, u8, Vec<u8>, Vec<u8>);

/// Scans a whole log image: its records with their offsets, and the end of the last good
/// one (where a torn or corrupt record, if any, begins).
pub fn scan(bytes: &[u8]) -> (Vec<Scanned>, u64) {
    let (mut out, mut at) = (Vec::new(), 0usize);
    while bytes.len() - at >= HEADER {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap());
        let end = at + HEADER + len as usize;
        if len > MAX_RECORD || end > bytes.len() {
            break;
        }
        match decode_body(crc, &bytes[at + HEADER..end]) {
            Some((op, k, v)) => out.push((at as u64, op, k.to_vec(), v.to_vec())),
            None => break,
        }
        at = end;
    }
    (out, at as u64)
}

#[derive(Default, Debug)]
pub struct Stats {
    /// `sync_data` calls of the writer: one per batch.
    pub syncs: Cell<u64>,
    pub records: Cell<u64>,
    pub largest_batch: Cell<usize>,
    pub compactions: Cell<u64>,
    /// Bytes cut from the log's tail on open.
    pub cut_on_open: Cell<u64>,
    pub recovered: Cell<u64>,
}

/// A write waiting for its batch: key, value (`None`: a delete), ack.
type Pending = (
    Vec<u8>,
    Option<Vec<u8>>,
    oneshot::Sender<Result<u64, String>>,
);

enum Cmd {
    Put(
        Vec<u8>,
        Option<Vec<u8>>,
        oneshot::Sender<Result<u64, String>>,
    ),
    Compact(oneshot::Sender<Result<(u64, u64), String>>),
}

pub struct Store {
    dir: PathBuf,
    path: PathBuf,
    /// key → (record offset, record length)
    index: RefCell<HashMap<Vec<u8>, (u64, u32)>>,
    /// The second handle, for reads by offset.
    reader: Mutex<File>,
    tx: RefCell<Option<mpsc::Sender<Cmd>>>,
    writer: RefCell<Option<JoinHandle<()>>>,
    pub stats: Stats,
}

fn msg(e: io::Error) -> String {
    e.to_string()
}

impl Store {
    /// Opens (or creates) the store in `dir`: recovery, then the writer task.
    pub async fn open(dir: &Path) -> io::Result<Rc<Store>> {
        let path = dir.join(LOG);
        // A compaction that died before its rename left this; the log is still whole.
        if fs::try_exists(dir.join(TMP)).await? {
            fs::remove_file(dir.join(TMP)).await?;
        }
        let mut log = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .await?;
        let stats = Stats::default();
        let mut index = HashMap::new();
        let file_len = log.metadata().await?.len();
        let good = {
            let mut rd = BufReader::new(&mut log);
            let mut at = 0u64;
            loop {
                let Some((len, crc)) = read_header(&mut rd).await? else {
                    break;
                };
                if len > MAX_RECORD || at + HEADER as u64 + len as u64 > file_len {
                    break;
                }
                let mut body = vec![0u8; len as usize];
                rd.read_exact(&mut body).await?;
                let Some((op, key, _)) = decode_body(crc, &body) else {
                    break;
                };
                if op == OP_SET {
                    index.insert(key.to_vec(), (at, HEADER as u32 + len));
                } else {
                    index.remove(key);
                }
                stats.recovered.set(stats.recovered.get() + 1);
                at += HEADER as u64 + len as u64;
            }
            at
        };
        if good < file_len {
            log.set_len(good).await?;
            log.sync_all().await?;
            stats.cut_on_open.set(file_len - good);
        }
        // Where the next record goes: the end, after the scan's read-ahead and the cut.
        let end = log.seek(SeekFrom::End(0)).await?;
        let reader = File::open(&path).await?;
        let (tx, rx) = mpsc::channel(4096);
        let store = Rc::new(Store {
            dir: dir.to_path_buf(),
            path,
            index: RefCell::new(index),
            reader: Mutex::new(reader),
            tx: RefCell::new(Some(tx)),
            writer: RefCell::new(None),
            stats,
        });
        let writer = overlap::spawn(store.clone().write_loop(log, end, rx));
        *store.writer.borrow_mut() = Some(writer);
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> usize {
        self.index.borrow().len()
    }

    pub fn keys(&self) -> Vec<Vec<u8>> {
        let mut keys: Vec<_> = self.index.borrow().keys().cloned().collect();
        keys.sort();
        keys
    }

    /// The index's entry for `key`, as the tests compare it with the file.
    pub fn entry(&self, key: &[u8]) -> Option<(u64, u32)> {
        self.index.borrow().get(key).copied()
    }

    async fn put(&self, key: &[u8], value: Option<&[u8]>) -> io::Result<u64> {
        let (ack, done) = oneshot::channel();
        let tx = self.tx.borrow().clone().ok_or_else(closed)?;
        let cmd = Cmd::Put(key.to_vec(), value.map(<[u8]>::to_vec), ack);
        tx.send(cmd).await.map_err(|_| closed())?;
        done.await.map_err(|_| closed())?.map_err(io::Error::other)
    }

    /// Sets `key`; returns once the record is on disk, with its offset.
    pub async fn set(&self, key: &[u8], value: &[u8]) -> io::Result<u64> {
        self.put(key, Some(value)).await
    }

    /// Deletes `key` (a tombstone); whether it was there.
    pub async fn del(&self, key: &[u8]) -> io::Result<bool> {
        let had = self.index.borrow().contains_key(key);
        self.put(key, None).await?;
        Ok(had)
    }

    /// Reads `key`'s value from the log at the offset the index has.
    pub async fn get(&self, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        let mut reader = self.reader.lock().await;
        // Looked up under the lock: a compaction swaps the file and the index together.
        let Some((off, len)) = self.entry(key) else {
            return Ok(None);
        };
        reader.seek(SeekFrom::Start(off)).await?;
        let mut rec = vec![0u8; len as usize];
        reader.read_exact(&mut rec).await?;
        let crc = u32::from_le_bytes(rec[4..8].try_into().unwrap());
        match decode_body(crc, &rec[HEADER..]) {
            Some((OP_SET, k, v)) if k == key => Ok(Some(v.to_vec())),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad record at {off} for {:?}", String::from_utf8_lossy(key)),
            )),
        }
    }

    /// Compacts the log; (bytes before, bytes after).
    pub async fn compact(&self) -> io::Result<(u64, u64)> {
        let (ack, done) = oneshot::channel();
        let tx = self.tx.borrow().clone().ok_or_else(closed)?;
        tx.send(Cmd::Compact(ack)).await.map_err(|_| closed())?;
        done.await.map_err(|_| closed())?.map_err(io::Error::other)
    }

    /// Stops taking writes and waits for the writer to write and sync what it has.
    pub async fn close(&self) {
        self.tx.borrow_mut().take();
        let writer = self.writer.borrow_mut().take();
        if let Some(w) = writer {
            w.await.unwrap();
        }
    }

    async fn write_loop(self: Rc<Self>, mut log: File, mut end: u64, mut rx: mpsc::Receiver<Cmd>) {
        let mut batch = Vec::new();
        let mut group = Vec::new();
        while rx.recv_many(&mut batch, BATCH).await > 0 {
            for cmd in batch.drain(..) {
                match cmd {
                    Cmd::Put(key, value, ack) => group.push((key, value, ack)),
                    Cmd::Compact(ack) => {
                        self.commit(&mut log, &mut end, &mut group).await;
                        let res = self.compact_now(&mut log, &mut end).await;
                        let _ = ack.send(res.map_err(msg));
                    }
                }
            }
            self.commit(&mut log, &mut end, &mut group).await;
        }
    }

    /// Writes a group with one `write_all`, makes it durable with one `sync_data`, then
    /// updates the index and acks each writer.
    async fn commit(&self, log: &mut File, end: &mut u64, group: &mut Vec<Pending>) {
        if group.is_empty() {
            return;
        }
        let mut buf = Vec::new();
        let mut placed = Vec::with_capacity(group.len());
        for (key, value, _) in group.iter() {
            let rec = match value {
                Some(v) => encode(OP_SET, key, v),
                None => encode(OP_DEL, key, b""),
            };
            placed.push((*end + buf.len() as u64, rec.len() as u32));
            buf.extend_from_slice(&rec);
        }
        let res = async {
            log.write_all(&buf).await?;
            log.sync_data().await
        }
        .await;
        self.stats.syncs.set(self.stats.syncs.get() + 1);
        let n = group.len();
        self.stats
            .largest_batch
            .set(self.stats.largest_batch.get().max(n));
        match res {
            Ok(()) => {
                *end += buf.len() as u64;
                self.stats.records.set(self.stats.records.get() + n as u64);
                let mut index = self.index.borrow_mut();
                for ((key, value, ack), (off, len)) in group.drain(..).zip(placed) {
                    match value {
                        Some(_) => index.insert(key, (off, len)),
                        None => index.remove(&key),
                    };
                    let _ = ack.send(Ok(off));
                }
            }
            Err(e) => {
                for (_, _, ack) in group.drain(..) {
                    let _ = ack.send(Err(e.to_string()));
                }
            }
        }
    }

    /// Copies the live records into the temp file, makes it durable, renames it over the
    /// log, fsyncs the directory, and switches both handles and the index to it.
    async fn compact_now(&self, log: &mut File, end: &mut u64) -> io::Result<(u64, u64)> {
        let mut reader = self.reader.lock().await;
        let before = *end;
        let mut live: Vec<(Vec<u8>, (u64, u32))> = self
            .index
            .borrow()
            .iter()
            .map(|(k, e)| (k.clone(), *e))
            .collect();
        live.sort_by_key(|(_, (off, _))| *off);
        let tmp_path = self.dir.join(TMP);
        let mut tmp = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp_path)
            .await?;
        let (mut buf, mut index) = (Vec::new(), HashMap::new());
        for (key, (off, len)) in live {
            reader.seek(SeekFrom::Start(off)).await?;
            let mut rec = vec![0u8; len as usize];
            reader.read_exact(&mut rec).await?;
            index.insert(key, (buf.len() as u64, len));
            buf.extend_from_slice(&rec);
        }
        tmp.write_all(&buf).await?;
        tmp.sync_all().await?;
        // Read back before it replaces the log: every record whole, as written.
        tmp.rewind().await?;
        let mut check = Vec::with_capacity(buf.len());
        tmp.read_to_end(&mut check).await?;
        if check != buf || scan(&check).1 != buf.len() as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the compacted log did not read back",
            ));
        }
        drop(tmp);
        fs::rename(&tmp_path, &self.path).await?;
        // The rename itself is durable once the directory is.
        File::open(&self.dir).await?.sync_all().await?;
        *log = OpenOptions::new().append(true).open(&self.path).await?;
        *reader = File::open(&self.path).await?;
        *self.index.borrow_mut() = index;
        *end = buf.len() as u64;
        self.stats.compactions.set(self.stats.compactions.get() + 1);
        Ok((before, *end))
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the store is closed")
}

/// A record's header, or `None` at the end of the file or inside a torn header.
async fn read_header<R: AsyncReadIntExt + AsyncReadExt + Unpin>(
    rd: &mut R,
) -> io::Result<Option<(u32, u32)>> {
    let len = match rd.read_u32_le().await {
        Ok(len) => len,
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    };
    match rd.read_u32_le().await {
        Ok(crc) => Ok(Some((len, crc))),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}
