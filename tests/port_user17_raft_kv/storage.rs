//! A node's files: the log (checksummed records appended and `sync_data`'d before any
//! reply; a torn tail found on open is cut off), the term and vote (`meta`), and the
//! snapshot, both written whole to a temp file, synced and renamed over the old one.

use std::io;
use std::path::{Path, PathBuf};

use overlap::fs::{self, File, OpenOptions};

use crate::wire::{bad, checksum, decode_entry, encode_entry, put_u64, Entry, Reader};

/// The state at a snapshot's last index.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub last_index: u64,
    pub last_term: u64,
    pub data: Vec<u8>,
}

/// What a node finds on disk when it starts.
#[derive(Debug, Default)]
pub struct Loaded {
    pub term: u64,
    pub vote: Option<u8>,
    pub snapshot: Snapshot,
    /// The entries after the snapshot's last index, in order.
    pub entries: Vec<Entry>,
    /// Bytes cut off the log's end: a record torn by a crash, or one failing its checksum.
    pub torn_bytes: u64,
}

pub struct Storage {
    dir: PathBuf,
    log: File,
    /// The log file's length: where the next record goes.
    end: u64,
    /// The file offset of each entry held in memory (those after the snapshot).
    offsets: Vec<u64>,
}

/// One log record: `[u32 length][u32 checksum][u64 index][entry]`.
pub fn record(index: u64, e: &Entry) -> Vec<u8> {
    let mut payload = Vec::new();
    put_u64(&mut payload, index);
    encode_entry(&mut payload, e);
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&checksum(&payload).to_be_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Parses a log file's bytes: the records that are whole and pass their checksum, each with
/// its offset, and the offset where the good part ends.
pub fn parse_log(bytes: &[u8]) -> (Vec<(u64, u64, Entry)>, u64) {
    let mut out = Vec::new();
    let mut at = 0usize;
    while bytes.len() - at >= 8 {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let sum = u32::from_be_bytes(bytes[at + 4..at + 8].try_into().unwrap());
        let Some(payload) = bytes.get(at + 8..at + 8 + len) else {
            break;
        };
        if checksum(payload) != sum {
            break;
        }
        let mut r = Reader(payload);
        let Ok((index, entry)) = r.u64().and_then(|i| Ok((i, decode_entry(&mut r)?))) else {
            break;
        };
        if r.end().is_err() {
            break;
        }
        out.push((at as u64, index, entry));
        at += 8 + len;
    }
    (out, at as u64)
}

/// Writes `bytes` to `path` so that a crash leaves the old file or the new one, whole.
async fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = File::create(&tmp).await?;
    f.write_all_at(bytes, 0).await?;
    f.sync_data().await?;
    drop(f);
    fs::rename(&tmp, dir.join(name)).await?;
    File::open(dir).await?.sync_all().await
}

fn sealed(mut body: Vec<u8>) -> Vec<u8> {
    let sum = checksum(&body);
    body.extend_from_slice(&sum.to_be_bytes());
    body
}

fn unseal<'a>(bytes: &'a [u8], what: &str) -> io::Result<&'a [u8]> {
    let Some(split) = bytes.len().checked_sub(4) else {
        return Err(bad(format!("{what}: {} bytes", bytes.len())));
    };
    let (body, sum) = bytes.split_at(split);
    if checksum(body).to_be_bytes() != sum {
        return Err(bad(format!("{what}: bad checksum")));
    }
    Ok(body)
}

async fn read_if_there(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path).await {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

async fn open_log(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .await
}

impl Storage {
    /// Opens (or creates) the node's files in `dir` and replays them.
    pub async fn open(dir: &Path) -> io::Result<(Storage, Loaded)> {
        fs::create_dir_all(dir).await?;
        let mut loaded = Loaded::default();
        if let Some(bytes) = read_if_there(&dir.join("meta")).await? {
            let mut r = Reader(unseal(&bytes, "meta")?);
            loaded.term = r.u64()?;
            loaded.vote = match r.u8()? {
                255 => None,
                v => Some(v),
            };
        }
        if let Some(bytes) = read_if_there(&dir.join("snapshot")).await? {
            let mut r = Reader(unseal(&bytes, "snapshot")?);
            loaded.snapshot = Snapshot {
                last_index: r.u64()?,
                last_term: r.u64()?,
                data: r.bytes()?,
            };
        }
        let path = dir.join("log");
        let bytes = read_if_there(&path).await?.unwrap_or_default();
        let (records, good) = parse_log(&bytes);
        let mut log = open_log(&path).await?;
        if good < bytes.len() as u64 {
            loaded.torn_bytes = bytes.len() as u64 - good;
            log.set_len(good).await?;
            log.sync_data().await?;
        }
        let mut offsets = Vec::new();
        let mut next = loaded.snapshot.last_index + 1;
        for (off, index, entry) in records {
            // Entries the snapshot covers (a crash between the snapshot and the log's
            // rewrite leaves them) are skipped; a gap would be a bug, so it is an error.
            if index < next {
                continue;
            }
            if index != next {
                return Err(bad(format!("log: index {index} where {next} was due")));
            }
            offsets.push(off);
            loaded.entries.push(entry);
            next += 1;
        }
        let st = Storage {
            dir: dir.to_path_buf(),
            log,
            end: good,
            offsets,
        };
        Ok((st, loaded))
    }

    /// Appends entries (the first at `first_index`) and syncs them.
    pub async fn append(&mut self, first_index: u64, entries: &[Entry]) -> io::Result<()> {
        let mut buf = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            self.offsets.push(self.end + buf.len() as u64);
            buf.extend_from_slice(&record(first_index + i as u64, e));
        }
        self.log.write_all_at(&buf, self.end).await?;
        self.log.sync_data().await?;
        self.end += buf.len() as u64;
        Ok(())
    }

    /// Drops the entries from position `pos` (among those after the snapshot) on.
    pub async fn truncate(&mut self, pos: usize) -> io::Result<()> {
        let Some(&off) = self.offsets.get(pos) else {
            return Ok(());
        };
        self.offsets.truncate(pos);
        self.log.set_len(off).await?;
        self.log.sync_data().await?;
        self.end = off;
        Ok(())
    }

    pub async fn save_meta(&self, term: u64, vote: Option<u8>) -> io::Result<()> {
        let mut body = Vec::new();
        put_u64(&mut body, term);
        body.push(vote.unwrap_or(255));
        write_atomically(&self.dir, "meta", &sealed(body)).await
    }

    /// Saves `snap`, then rewrites the log with only `kept`, the entries after it.
    pub async fn save_snapshot(&mut self, snap: &Snapshot, kept: &[Entry]) -> io::Result<()> {
        let mut body = Vec::new();
        put_u64(&mut body, snap.last_index);
        put_u64(&mut body, snap.last_term);
        body.extend_from_slice(&(snap.data.len() as u32).to_be_bytes());
        body.extend_from_slice(&snap.data);
        write_atomically(&self.dir, "snapshot", &sealed(body)).await?;
        let mut buf = Vec::new();
        self.offsets.clear();
        for (i, e) in kept.iter().enumerate() {
            self.offsets.push(buf.len() as u64);
            buf.extend_from_slice(&record(snap.last_index + 1 + i as u64, e));
        }
        write_atomically(&self.dir, "log", &buf).await?;
        self.log = open_log(&self.dir.join("log")).await?;
        self.end = buf.len() as u64;
        Ok(())
    }
}
