//! The results cache on disk, through `overlap::fs` (tokio's `tokio::fs`): one file per
//! job, named by a hash of the op and payload, holding a magic, the length and an FNV-1a
//! checksum before the bytes. Written to a temporary file and renamed over the entry, so a
//! reader sees the old entry or the new one, never half of one; an entry that fails its
//! checks (a torn write from another program, a flipped bit) is reported as corrupt,
//! removed, and the job computed again.

use std::cell::Cell;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};

use overlap::fs;

use super::work::fnv1a;

const MAGIC: &[u8; 4] = b"RFC1";
const HEADER: usize = 4 + 4 + 8;

/// What a lookup found.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    Hit(Vec<u8>),
    Miss,
    /// An entry was there but bad (it is gone now): why.
    Corrupt(String),
}

pub struct Cache {
    dir: PathBuf,
    next_tmp: Cell<u64>,
}

/// The cache key of a job.
pub fn key(op: &str, payload: &[u8]) -> String {
    let mut bytes = op.as_bytes().to_vec();
    bytes.push(0);
    bytes.extend_from_slice(payload);
    format!("{:016x}", fnv1a(&bytes))
}

/// An entry's bytes for `data`.
pub fn encode_entry(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(&fnv1a(data).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// An entry's data, or why it is bad.
fn decode_entry(entry: &[u8]) -> Result<Vec<u8>, String> {
    if entry.len() < HEADER {
        return Err(format!("{} bytes, shorter than a header", entry.len()));
    }
    if &entry[..4] != MAGIC {
        return Err("bad magic".into());
    }
    let len = u32::from_be_bytes(entry[4..8].try_into().unwrap()) as usize;
    let sum = u64::from_be_bytes(entry[8..16].try_into().unwrap());
    let data = &entry[HEADER..];
    if data.len() != len {
        return Err(format!(
            "{} bytes of data, the header says {len}",
            data.len()
        ));
    }
    if fnv1a(data) != sum {
        return Err("checksum mismatch".into());
    }
    Ok(data.to_vec())
}

impl Cache {
    /// A cache in `dir`, created if need be.
    pub async fn open(dir: &Path) -> io::Result<Cache> {
        fs::create_dir_all(dir).await?;
        Ok(Cache {
            dir: dir.to_path_buf(),
            next_tmp: Cell::new(0),
        })
    }

    pub fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.res"))
    }

    pub async fn get(&self, key: &str) -> io::Result<Lookup> {
        let path = self.path(key);
        let entry = match fs::read(&path).await {
            Ok(entry) => entry,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Lookup::Miss),
            Err(e) => return Err(e),
        };
        match decode_entry(&entry) {
            Ok(data) => Ok(Lookup::Hit(data)),
            Err(why) => {
                // Another job may have replaced it meanwhile; gone either way is fine.
                match fs::remove_file(&path).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                Ok(Lookup::Corrupt(why))
            }
        }
    }

    /// Stores `data` under `key`: a temporary file, then a rename over the entry.
    pub async fn put(&self, key: &str, data: &[u8]) -> io::Result<()> {
        let n = self.next_tmp.get();
        self.next_tmp.set(n + 1);
        let tmp = self.dir.join(format!("{key}.tmp{n}"));
        if let Err(e) = fs::write(&tmp, encode_entry(data)).await {
            let _ = fs::remove_file(&tmp).await;
            return Err(e);
        }
        fs::rename(&tmp, self.path(key)).await
    }
}
