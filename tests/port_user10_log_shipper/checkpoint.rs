//! The checkpoint: for each source, the file (by inode) and the offset just past its last
//! acked line, and the sequence number its next line takes. Written whole to a temp file,
//! synced, renamed over the old one and the directory synced, so a crash leaves either the
//! old checkpoint or the new one, never half of each.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use overlap::fs::{self, File};
use overlap::io::AsyncWriteExt;

const HEADER: &str = "logship-checkpoint v1";

/// Where a source stands: its next line starts at `offset` in the file with `inode` and
/// takes sequence number `seq` (a UDP source has no file: inode and offset are 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mark {
    pub inode: u64,
    pub offset: u64,
    pub seq: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checkpoint {
    pub marks: BTreeMap<String, Mark>,
}

impl Checkpoint {
    pub fn encode(&self) -> String {
        let mut out = format!("{HEADER}\n");
        for (source, m) in &self.marks {
            out.push_str(&format!("{source} {} {} {}\n", m.inode, m.offset, m.seq));
        }
        out
    }

    pub fn decode(text: &str) -> io::Result<Checkpoint> {
        let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(bad("not a checkpoint"));
        }
        let mut marks = BTreeMap::new();
        for line in lines {
            let f: Vec<&str> = line.split(' ').collect();
            let [source, inode, offset, seq] = f[..] else {
                return Err(bad("a mark has four fields"));
            };
            let num = |s: &str| s.parse::<u64>().map_err(|_| bad("not a number"));
            let mark = Mark {
                inode: num(inode)?,
                offset: num(offset)?,
                seq: num(seq)?,
            };
            marks.insert(source.to_string(), mark);
        }
        Ok(Checkpoint { marks })
    }

    /// The checkpoint at `path`, or an empty one if there is none yet.
    pub async fn load(path: &Path) -> io::Result<Checkpoint> {
        match fs::read_to_string(path).await {
            Ok(text) => Checkpoint::decode(&text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Checkpoint::default()),
            Err(e) => Err(e),
        }
    }

    /// Replaces the checkpoint at `path` atomically: temp file, `sync_all`, rename, and the
    /// directory synced so the rename itself survives a crash.
    pub async fn save(&self, path: &Path) -> io::Result<()> {
        let tmp = temp_path(path);
        let mut file = File::create(&tmp).await?;
        file.write_all(self.encode().as_bytes()).await?;
        file.sync_all().await?;
        drop(file);
        fs::rename(&tmp, path).await?;
        let dir = path.parent().unwrap_or(Path::new("."));
        File::open(dir).await?.sync_all().await
    }
}

/// A temp file of its own for each save: a save dropped mid-way (a shipper killed, its
/// file's write job finishing on the pool) must not write into the next one's temp file.
fn temp_path(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp.{}", NEXT.fetch_add(1, Ordering::Relaxed)));
    path.with_file_name(name)
}
