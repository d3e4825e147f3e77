//! The index's append-only log: fixed-size records (a blob put at a place, or a tombstone),
//! each with its checksum, appended and `sync_data`ed before a request is answered, and
//! replayed on open up to the first record that is cut short or does not check out.

use std::cell::Cell;
use std::io;
use std::path::Path;

use overlap::fs::{OpenOptions, PositionalFile};

use super::hash;

/// Bytes in a record: kind, hash, pack, offset, length, checksum.
pub const RECORD: usize = 1 + 8 + 4 + 8 + 8 + 8;
const PUT: u8 = 1;
const DELETE: u8 = 2;

/// Where a blob's bytes are: a pack, and an extent in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loc {
    pub pack: u32,
    pub offset: u64,
    pub len: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    Put { hash: u64, loc: Loc },
    Delete { hash: u64 },
}

pub fn encode(r: &Record) -> [u8; RECORD] {
    let (kind, h, loc) = match *r {
        Record::Put { hash, loc } => (PUT, hash, loc),
        Record::Delete { hash } => (
            DELETE,
            hash,
            Loc {
                pack: 0,
                offset: 0,
                len: 0,
            },
        ),
    };
    let mut b = [0u8; RECORD];
    b[0] = kind;
    b[1..9].copy_from_slice(&h.to_le_bytes());
    b[9..13].copy_from_slice(&loc.pack.to_le_bytes());
    b[13..21].copy_from_slice(&loc.offset.to_le_bytes());
    b[21..29].copy_from_slice(&loc.len.to_le_bytes());
    let sum = hash::hash(&b[..29]);
    b[29..].copy_from_slice(&sum.to_le_bytes());
    b
}

/// One record back, if it is whole and checks out.
pub fn decode(b: &[u8]) -> Option<Record> {
    if b.len() != RECORD || hash::hash(&b[..29]).to_le_bytes() != b[29..] {
        return None;
    }
    let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
    let hash = u64_at(1);
    match b[0] {
        PUT => Some(Record::Put {
            hash,
            loc: Loc {
                pack: u32::from_le_bytes(b[9..13].try_into().unwrap()),
                offset: u64_at(13),
                len: u64_at(21),
            },
        }),
        DELETE if b[9..29].iter().all(|&x| x == 0) => Some(Record::Delete { hash }),
        _ => None,
    }
}

/// What a log's bytes hold: the records before the first bad one, how many bytes those
/// are, and whether anything followed them.
#[derive(Debug)]
pub struct Replay {
    pub records: Vec<Record>,
    pub good_len: u64,
    pub torn: bool,
}

pub fn replay(bytes: &[u8]) -> Replay {
    let mut records = Vec::new();
    for chunk in bytes.chunks(RECORD) {
        match decode(chunk) {
            Some(r) => records.push(r),
            None => break,
        }
    }
    let good_len = (records.len() * RECORD) as u64;
    Replay {
        torn: good_len < bytes.len() as u64,
        records,
        good_len,
    }
}

/// The open log: appends at the end it keeps, run one at a time in the order they were
/// made (`set_max_jobs(1)`, syncs included), so that a record synced means every record
/// before it is there too: replay stops at the first hole, and a later record's client
/// must not be answered while an earlier record could still be missing.
#[derive(Debug)]
pub struct IndexLog {
    file: PositionalFile,
    len: Cell<u64>,
    broken: Cell<bool>,
}

impl IndexLog {
    /// Opens (or creates) the log, replays it, and cuts a torn tail off so that new
    /// records follow the good ones.
    pub async fn open(path: &Path) -> io::Result<(IndexLog, Replay)> {
        let bytes = match overlap::fs::read(path).await {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let replay = replay(&bytes);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .await?;
        let file = PositionalFile::from_file(file).await?;
        file.set_max_jobs(1);
        if replay.torn {
            file.set_len(replay.good_len).await?;
            file.sync_data().await?;
        }
        let log = IndexLog {
            file,
            len: Cell::new(replay.good_len),
            broken: Cell::new(false),
        };
        Ok((log, replay))
    }

    /// Appends `r` and makes it durable.
    pub async fn append(&self, r: &Record) -> io::Result<()> {
        if self.broken.get() {
            return Err(io::Error::other(
                "the index log failed an append: reopen the store",
            ));
        }
        let at = self.len.get();
        self.len.set(at + RECORD as u64);
        // The write and its sync in one round: with one job, the sync runs after the
        // write (and after every append made before it).
        let rec = encode(r);
        let (written, synced) =
            overlap::join!(self.file.write_all_at(&rec, at), self.file.sync_data());
        let res = written.and(synced);
        if res.is_err() {
            // Records appended after it may sit past a hole: refuse more until a reopen
            // replays what is there.
            self.broken.set(true);
        }
        res
    }

    pub fn max_jobs(&self) -> usize {
        self.file.max_jobs()
    }
}
