//! A node's disk: the log as segment files of `SEGMENT` entries each (`seg-<first>.log`,
//! records appended with `OpenOptions::append`, `write_all` then `sync_data` before a write
//! is acknowledged), and a metadata file (term, vote, and where compaction cut the log)
//! replaced atomically: temp file, `sync_all`, `rename`, the directory fsynced.
//!
//! A record is `len u32 | crc32 u32 | term u64 | index u64 | data`, `len` counting from
//! `term` and the crc covering the same bytes. Recovery reads every segment in order and
//! cuts a torn last record (short, or its crc wrong) with `set_len`; compaction removes
//! whole segments below an index every node holds, after writing the new base to the
//! metadata, so a crash between the two leaves segments that the next recovery removes.

use std::io;
use std::path::{Path, PathBuf};

use overlap::fs::{self, File, OpenOptions};
use overlap::io::AsyncWriteExt;

use crate::msg::{crc32, Entry};

/// Entries per segment: a segment holds indexes `k * SEGMENT + 1 ..= (k + 1) * SEGMENT`,
/// so every node cuts its log at the same places and identical logs are identical files.
pub const SEGMENT: u64 = 64;
const HEADER: usize = 8;
const META: &str = "meta";
const META_TMP: &str = "meta.tmp";

/// What must survive a restart beside the entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    pub term: u64,
    pub voted_for: Option<u64>,
    /// The entries up to here are compacted away; `base_term` is the last one's term.
    pub base_index: u64,
    pub base_term: u64,
}

impl Meta {
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(37);
        b.extend_from_slice(&self.term.to_be_bytes());
        b.extend_from_slice(&self.voted_for.map_or(u64::MAX, |v| v).to_be_bytes());
        b.extend_from_slice(&self.base_index.to_be_bytes());
        b.extend_from_slice(&self.base_term.to_be_bytes());
        let crc = crc32(&b);
        b.extend_from_slice(&crc.to_be_bytes());
        b
    }

    fn decode(b: &[u8]) -> io::Result<Meta> {
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "bad metadata file");
        if b.len() != 36 || crc32(&b[..32]).to_be_bytes() != b[32..] {
            return Err(bad());
        }
        let n = |i: usize| u64::from_be_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
        Ok(Meta {
            term: n(0),
            voted_for: (n(1) != u64::MAX).then(|| n(1)),
            base_index: n(2),
            base_term: n(3),
        })
    }
}

/// What recovery found.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Bytes cut from the end of the last segment (a torn record).
    pub torn_bytes: u64,
    /// Segments removed as compacted (a crash between the metadata and the removal).
    pub stale_segments: usize,
}

pub fn segment_of(index: u64) -> u64 {
    (index - 1) / SEGMENT * SEGMENT + 1
}

fn segment_name(first: u64) -> String {
    format!("seg-{first:020}.log")
}

/// The first index of a segment file's name, if it is one.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    name.strip_prefix("seg-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

pub fn encode_record(index: u64, e: &Entry, out: &mut Vec<u8>) {
    let len = 16 + e.data.len();
    let start = out.len() + HEADER;
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&e.term.to_be_bytes());
    out.extend_from_slice(&index.to_be_bytes());
    out.extend_from_slice(&e.data);
    let crc = crc32(&out[start..]);
    out[start - 4..start].copy_from_slice(&crc.to_be_bytes());
}

/// The log: entries after `meta.base_index` in memory and on disk.
pub struct Log {
    dir: PathBuf,
    meta: Meta,
    entries: Vec<Entry>,
    /// Each entry's byte offset in its segment.
    pos: Vec<u64>,
    /// The segment appended to, its first index, and its length.
    current: Option<(u64, File, u64)>,
}

impl Log {
    /// Opens (or creates) the log in `dir`, recovering what a crash left.
    pub async fn open(dir: &Path) -> io::Result<(Log, Recovery)> {
        fs::create_dir_all(dir).await?;
        let meta = match fs::read(dir.join(META)).await {
            Ok(b) => Meta::decode(&b)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Meta::default(),
            Err(e) => return Err(e),
        };
        let mut segments = Vec::new();
        let mut rd = fs::read_dir(dir).await?;
        while let Some(entry) = rd.next_entry().await? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == META_TMP {
                fs::remove_file(entry.path()).await?; // a save cut short
            } else if let Some(first) = parse_segment_name(&name) {
                segments.push(first);
            }
        }
        segments.sort_unstable();
        let mut log = Log {
            dir: dir.to_path_buf(),
            meta,
            entries: Vec::new(),
            pos: Vec::new(),
            current: None,
        };
        let mut rec = Recovery::default();
        let count = segments.len();
        for (i, first) in segments.into_iter().enumerate() {
            let path = log.segment_path(first);
            if first + SEGMENT - 1 <= meta.base_index {
                fs::remove_file(&path).await?;
                rec.stale_segments += 1;
                continue;
            }
            let bytes = fs::read(&path).await?;
            let good = log.load_segment(first, &bytes)?;
            if good < bytes.len() as u64 {
                if i + 1 != count {
                    let why = format!("{} is torn but not the last segment", path.display());
                    return Err(io::Error::new(io::ErrorKind::InvalidData, why));
                }
                let mut f = OpenOptions::new().write(true).open(&path).await?;
                f.set_len(good).await?;
                f.sync_all().await?;
                rec.torn_bytes = bytes.len() as u64 - good;
            }
            let file = OpenOptions::new().append(true).open(&path).await?;
            log.current = Some((first, file, good));
        }
        Ok((log, rec))
    }

    /// Reads a segment's records into memory; gives the length of its good part.
    fn load_segment(&mut self, first: u64, bytes: &[u8]) -> io::Result<u64> {
        let mut at = 0usize;
        while bytes.len() - at >= HEADER {
            let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            let crc = u32::from_be_bytes(bytes[at + 4..at + 8].try_into().unwrap());
            let body = &bytes[at + HEADER..];
            if len < 16 || body.len() < len || crc32(&body[..len]) != crc {
                break; // torn
            }
            let term = u64::from_be_bytes(body[..8].try_into().unwrap());
            let index = u64::from_be_bytes(body[8..16].try_into().unwrap());
            if index != self.last_index() + 1 || segment_of(index) != first {
                let why = format!("segment {first}: record {index} out of place");
                return Err(io::Error::new(io::ErrorKind::InvalidData, why));
            }
            self.entries.push(Entry {
                term,
                data: body[16..len].to_vec(),
            });
            self.pos.push(at as u64);
            at += HEADER + len;
        }
        Ok(at as u64)
    }

    pub fn meta(&self) -> Meta {
        self.meta
    }

    pub fn base(&self) -> u64 {
        self.meta.base_index
    }

    pub fn last_index(&self) -> u64 {
        self.meta.base_index + self.entries.len() as u64
    }

    pub fn last_term(&self) -> u64 {
        self.term_at(self.last_index()).unwrap()
    }

    /// The term of entry `index`, if the log still has it (0 for index 0).
    pub fn term_at(&self, index: u64) -> Option<u64> {
        match index {
            0 => Some(0),
            i if i == self.meta.base_index => Some(self.meta.base_term),
            i if i < self.meta.base_index || i > self.last_index() => None,
            i => Some(self.entries[(i - self.meta.base_index - 1) as usize].term),
        }
    }

    /// Up to `max` entries from `index` on.
    pub fn entries_from(&self, index: u64, max: usize) -> Vec<Entry> {
        let start = (index - self.meta.base_index - 1) as usize;
        let end = self.entries.len().min(start + max);
        self.entries[start.min(end)..end].to_vec()
    }

    fn segment_path(&self, first: u64) -> PathBuf {
        self.dir.join(segment_name(first))
    }

    /// Appends `entries` after the last one, durably: each segment's bytes in one
    /// `write_all`, then `sync_data`, a new segment's directory entry synced too.
    pub async fn append(&mut self, entries: Vec<Entry>) -> io::Result<()> {
        let mut buf = Vec::new();
        for e in entries {
            let index = self.last_index() + 1;
            let seg = segment_of(index);
            if self.current.as_ref().map(|c| c.0) != Some(seg) {
                self.write_out(&mut buf).await?;
                let path = self.segment_path(seg);
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .await?;
                self.current = Some((seg, file, 0));
                sync_dir(&self.dir).await?;
            }
            let (_, _, len) = self.current.as_mut().unwrap();
            self.pos.push(*len + buf.len() as u64);
            encode_record(index, &e, &mut buf);
            self.entries.push(e);
        }
        self.write_out(&mut buf).await
    }

    async fn write_out(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        if let Some((_, file, len)) = self.current.as_mut() {
            if !buf.is_empty() {
                file.write_all(buf).await?;
                file.sync_data().await?;
                *len += buf.len() as u64;
                buf.clear();
            }
        }
        Ok(())
    }

    /// Removes the entries from `index` on (a leader's log disagreed with ours there):
    /// later segments go with `remove_file`, the one holding `index` is cut with `set_len`.
    pub async fn truncate_from(&mut self, index: u64) -> io::Result<()> {
        assert!(index > self.meta.base_index, "truncating a compacted entry");
        if index > self.last_index() {
            return Ok(());
        }
        let keep = (index - self.meta.base_index - 1) as usize;
        let cut = self.pos[keep];
        let seg = segment_of(index);
        self.current = None;
        for first in self.segment_firsts().await? {
            if first > seg {
                fs::remove_file(self.segment_path(first)).await?;
            }
        }
        let mut file = OpenOptions::new()
            .append(true)
            .open(self.segment_path(seg))
            .await?;
        file.set_len(cut).await?;
        file.sync_all().await?;
        sync_dir(&self.dir).await?;
        self.current = Some((seg, file, cut));
        self.entries.truncate(keep);
        self.pos.truncate(keep);
        Ok(())
    }

    /// Drops the whole segments at or below `upto` (and below the last entry), the new
    /// base written to the metadata first.
    pub async fn compact(&mut self, upto: u64) -> io::Result<bool> {
        let upto = upto.min(self.last_index().saturating_sub(1));
        let base = upto / SEGMENT * SEGMENT;
        if base <= self.meta.base_index {
            return Ok(false);
        }
        let meta = Meta {
            base_index: base,
            base_term: self.term_at(base).unwrap(),
            ..self.meta
        };
        let drop = (base - self.meta.base_index) as usize;
        self.save_meta(meta).await?;
        self.entries.drain(..drop);
        self.pos.drain(..drop);
        for first in self.segment_firsts().await? {
            if first + SEGMENT - 1 <= base {
                fs::remove_file(self.segment_path(first)).await?;
            }
        }
        Ok(true)
    }

    /// The first indexes of the segments on disk, in order (`read_dir`).
    pub async fn segment_firsts(&self) -> io::Result<Vec<u64>> {
        let mut firsts = Vec::new();
        let mut rd = fs::read_dir(&self.dir).await?;
        while let Some(e) = rd.next_entry().await? {
            if let Some(first) = parse_segment_name(&e.file_name().to_string_lossy()) {
                firsts.push(first);
            }
        }
        firsts.sort_unstable();
        Ok(firsts)
    }

    /// Records a new term and vote durably before they are acted on.
    pub async fn set_vote(&mut self, term: u64, voted_for: Option<u64>) -> io::Result<()> {
        if (term, voted_for) == (self.meta.term, self.meta.voted_for) {
            return Ok(());
        }
        let meta = Meta {
            term,
            voted_for,
            ..self.meta
        };
        self.save_meta(meta).await
    }

    async fn save_meta(&mut self, meta: Meta) -> io::Result<()> {
        let tmp = self.dir.join(META_TMP);
        let mut f = File::create(&tmp).await?;
        f.write_all(&meta.encode()).await?;
        f.sync_all().await?;
        drop(f);
        fs::rename(&tmp, self.dir.join(META)).await?;
        sync_dir(&self.dir).await?;
        self.meta = meta;
        Ok(())
    }
}

/// fsyncs a directory, so a file made, renamed or removed in it survives a crash; a file
/// system that cannot (`EINVAL`) is let be.
pub async fn sync_dir(dir: &Path) -> io::Result<()> {
    // tokio's form, on a temporary: `sync_all` takes `&mut self` here, which a temporary
    // gives as well.
    match File::open(dir).await?.sync_all().await {
        Err(e) if overlap::io::raw_os_error(&e) == Some(libc::EINVAL) => Ok(()),
        other => other,
    }
}

/// crc32 over a whole segment file, on the blocking pool (`spawn_blocking`).
pub async fn checksum(path: PathBuf) -> io::Result<u32> {
    overlap::spawn_blocking(move || {
        let bytes = std::fs::read(&path)?;
        let mut crc = 0;
        for chunk in bytes.chunks(4096) {
            crc = crate::msg::crc32_update(crc, chunk);
        }
        Ok(crc)
    })
    .await? // a JoinError converts into an io::Error, as tokio's does
}

impl Log {
    /// The first indexes of the segment files in `dir`, in order (for a test looking at
    /// a stopped node's files).
    pub fn open_firsts(dir: &Path) -> Vec<u64> {
        let mut firsts: Vec<u64> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| parse_segment_name(&e.unwrap().file_name().to_string_lossy()))
            .collect();
        firsts.sort_unstable();
        firsts
    }
}
