//! The repository on disk: `packs/NNNNNN.pack` (chunks back to back, append-only),
//! `index` (where each chunk is), `snapshots/NNNNNN.snap` (manifests), each small file
//! replaced whole through a temporary file, synced, then renamed over the old one.
//!
//! ```text
//! index:    overlap-backup-index v1
//!           <chunk id, 32 hex> <pack> <offset> <len>     one line per chunk
//!           end <count>
//! ```

use std::cell::Cell;
use std::collections::HashMap;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};

use overlap::fs::{self, OpenOptions, PositionalFile};
use overlap::io::AsyncWriteExt;

use super::chunker::ChunkId;

const INDEX_HEADER: &str = "overlap-backup-index v1";

/// Where a chunk lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loc {
    pub pack: u32,
    pub offset: u64,
    pub len: u32,
}

pub type Index = HashMap<ChunkId, Loc>;

#[derive(Clone, Debug)]
pub struct Repo {
    root: PathBuf,
}

impl Repo {
    /// Creates the repository's directories (if missing).
    pub async fn init(root: &Path) -> io::Result<Repo> {
        fs::create_dir_all(root.join("packs")).await?;
        fs::create_dir_all(root.join("snapshots")).await?;
        Ok(Repo {
            root: root.to_path_buf(),
        })
    }

    pub fn pack_path(&self, id: u32) -> PathBuf {
        self.root.join("packs").join(format!("{id:06}.pack"))
    }

    pub fn snapshot_path(&self, id: u32) -> PathBuf {
        self.root.join("snapshots").join(format!("{id:06}.snap"))
    }

    pub fn index_path(&self) -> PathBuf {
        self.root.join("index")
    }

    /// The ids of the pack files present, sorted (those the index names and any orphans a
    /// cancelled backup left).
    pub async fn pack_ids(&self) -> io::Result<Vec<u32>> {
        numbered_files(&self.root.join("packs"), ".pack").await
    }

    pub async fn snapshot_ids(&self) -> io::Result<Vec<u32>> {
        numbered_files(&self.root.join("snapshots"), ".snap").await
    }

    /// The next pack's id: past every pack file present, orphans included, so that a
    /// write a cancelled backup left in flight can never land in a new pack.
    pub async fn next_pack_id(&self) -> io::Result<u32> {
        Ok(self.pack_ids().await?.last().map_or(1, |last| last + 1))
    }

    /// A new, empty pack file, refused if it exists.
    pub async fn create_pack(&self, id: u32) -> io::Result<PositionalFile> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open_positional(self.pack_path(id))
            .await
    }

    pub async fn load_index(&self) -> io::Result<Index> {
        let text = match fs::read_to_string(self.index_path()).await {
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Index::new()),
            other => other?,
        };
        parse_index(&text).map_err(|msg| {
            let path = self.index_path();
            io::Error::new(ErrorKind::InvalidData, format!("{}: {msg}", path.display()))
        })
    }

    pub async fn save_index(&self, index: &Index) -> io::Result<()> {
        let mut rows: Vec<_> = index.iter().collect();
        rows.sort_by_key(|(_, loc)| (loc.pack, loc.offset));
        let mut text = format!("{INDEX_HEADER}\n");
        for (id, l) in &rows {
            text += &format!("{id} {} {} {}\n", l.pack, l.offset, l.len);
        }
        text += &format!("end {}\n", rows.len());
        write_atomically(&self.index_path(), text.as_bytes()).await
    }
}

fn parse_index(text: &str) -> Result<Index, String> {
    let mut lines = text.lines().enumerate();
    if lines.next().map(|(_, l)| l) != Some(INDEX_HEADER) {
        return Err("not an index (bad header)".into());
    }
    let mut index = Index::new();
    for (n, line) in lines {
        if let Some(count) = line.strip_prefix("end ") {
            return match count.parse::<usize>() {
                Ok(c) if c == index.len() => Ok(index),
                _ => Err(format!("line {}: count {count:?} does not match", n + 1)),
            };
        }
        let bad = || format!("line {}: malformed entry {line:?}", n + 1);
        let f: Vec<&str> = line.split(' ').collect();
        let [id, pack, offset, len] = f[..] else {
            return Err(bad());
        };
        let id = ChunkId::parse(id).ok_or_else(bad)?;
        let loc = Loc {
            pack: pack.parse().map_err(|_| bad())?,
            offset: offset.parse().map_err(|_| bad())?,
            len: len.parse().map_err(|_| bad())?,
        };
        if index.insert(id, loc).is_some() {
            return Err(format!("line {}: chunk {id} listed twice", n + 1));
        }
    }
    Err("truncated (no end line)".into())
}

/// The numbers of the files named `NNNNNN{suffix}` in `dir`, sorted; others are ignored.
async fn numbered_files(dir: &Path, suffix: &str) -> io::Result<Vec<u32>> {
    let mut ids = Vec::new();
    let mut entries = fs::read_dir(dir).await?;
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(id) = name.strip_suffix(suffix).and_then(|n| n.parse().ok()) {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Replaces `path` with `bytes` so that a crash leaves either the old file or the new:
/// written to `path.tmp`, synced, renamed over `path`, and the directory synced.
pub async fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = fs::File::create(&tmp).await?;
    file.write_all(bytes).await?;
    file.sync_all().await?;
    drop(file);
    fs::rename(&tmp, path).await?;
    let dir = path.parent().expect("a file in a directory");
    fs::File::open(dir).await?.sync_all().await
}

/// A pack being written by several tasks at once: each reserves an extent, then writes
/// its chunk there through its own clone of the one `PositionalFile`.
#[derive(Debug)]
pub struct PackWriter {
    pub id: u32,
    pub file: PositionalFile,
    end: Cell<u64>,
}

impl PackWriter {
    pub fn new(id: u32, file: PositionalFile) -> PackWriter {
        PackWriter {
            id,
            file,
            end: Cell::new(0),
        }
    }

    /// Reserves `len` bytes at the end (no await: single-threaded tasks cannot race).
    pub fn reserve(&self, len: usize) -> Loc {
        let offset = self.end.get();
        self.end.set(offset + len as u64);
        Loc {
            pack: self.id,
            offset,
            len: len as u32,
        }
    }

    /// The bytes reserved so far.
    pub fn len(&self) -> u64 {
        self.end.get()
    }
}

/// Reads a chunk back and checks it against its id; `what` names the file it belongs to.
pub async fn read_chunk(
    pack: &PositionalFile,
    id: ChunkId,
    loc: Loc,
    what: &Path,
) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; loc.len as usize];
    let at = format!(
        "chunk {id} of {} (pack {} at {})",
        what.display(),
        loc.pack,
        loc.offset
    );
    pack.read_exact_at(&mut buf, loc.offset)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("{at}: {e}")))?;
    if ChunkId::of(&buf) != id {
        let msg = format!("{at}: hash mismatch, the pack is corrupt");
        return Err(io::Error::new(ErrorKind::InvalidData, msg));
    }
    Ok(buf)
}
