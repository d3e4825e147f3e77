//! A topic's log on disk: segment files of framed records (`len u32 LE | crc32 u32 LE |
//! payload`), named by their first offset, and their recovery after a crash.

use std::io;
use std::path::{Path, PathBuf};

use overlap::fs::OpenOptions;

/// The bytes before each payload: its length and its CRC-32.
pub const HEADER: u64 = 8;
/// The largest payload taken: a longer length read back is a torn or garbled header.
pub const MAX_PAYLOAD: u32 = 1 << 20;

/// CRC-32 (IEEE), bit by bit: records are small and few here.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Appends `payload`'s record to `out`.
pub fn frame(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// A record's header: the payload length, if the header is sane, and the CRC.
pub fn header(h: &[u8; HEADER as usize]) -> Option<(u32, u32)> {
    let len = u32::from_le_bytes(h[..4].try_into().unwrap());
    let crc = u32::from_le_bytes(h[4..].try_into().unwrap());
    (len <= MAX_PAYLOAD).then_some((len, crc))
}

/// One segment file: its first offset, its path, and what of it is committed.
#[derive(Clone, Debug)]
pub struct Segment {
    pub base: u64,
    pub path: PathBuf,
    /// Committed bytes (synced, or found whole at recovery).
    pub len: u64,
    pub records: u64,
}

impl Segment {
    pub fn end(&self) -> u64 {
        self.base + self.records
    }
}

pub fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.seg"))
}

/// The whole records at the start of `bytes`: how many, and where they end.
pub fn scan(bytes: &[u8]) -> (u64, u64) {
    let (mut pos, mut records) = (0usize, 0u64);
    while bytes.len() - pos >= HEADER as usize {
        let h: &[u8; 8] = bytes[pos..pos + 8].try_into().unwrap();
        let Some((len, crc)) = header(h) else { break };
        let end = pos + 8 + len as usize;
        if end > bytes.len() || crc32(&bytes[pos + 8..end]) != crc {
            break;
        }
        pos = end;
        records += 1;
    }
    (records, pos as u64)
}

/// Opens the log in `dir` (made if missing): every segment in offset order, each cut back
/// to its last whole record (`set_len`, then `sync_all`); returns them and how many torn
/// bytes were cut. A topic with no segment gets an empty one at offset 0.
pub async fn recover(dir: &Path) -> io::Result<(Vec<Segment>, u64)> {
    overlap::fs::create_dir_all(dir).await?;
    let mut bases = Vec::new();
    let mut entries = overlap::fs::read_dir(dir).await?;
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(base) = name
            .strip_suffix(".seg")
            .and_then(|b| b.parse::<u64>().ok())
        {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    let mut segments = Vec::new();
    let mut cut = 0;
    for base in bases {
        let path = segment_path(dir, base);
        let bytes = overlap::fs::read(&path).await?;
        let (records, len) = scan(&bytes);
        if len < bytes.len() as u64 {
            let mut file = OpenOptions::new().write(true).open(&path).await?;
            file.set_len(len).await?;
            file.sync_all().await?;
            cut += bytes.len() as u64 - len;
        }
        segments.push(Segment {
            base,
            path,
            len,
            records,
        });
    }
    if segments.is_empty() {
        let path = segment_path(dir, 0);
        OpenOptions::new()
            .write(true)
            .create(true)
            .open(&path)
            .await?;
        segments.push(Segment {
            base: 0,
            path,
            len: 0,
            records: 0,
        });
    }
    Ok((segments, cut))
}
