//! Consumer groups' committed offsets: one small text file (`groups`, a line
//! `name offset` per group), replaced atomically on every commit: written whole to
//! `groups.tmp`, synced, renamed over the old one. A crash leaves either file, never half
//! of one.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use overlap::io::AsyncWriteExt;

/// The file's name in the spool's directory.
pub const FILE: &str = "groups";

/// The groups and their committed offsets (the next offset each will read).
pub struct Groups {
    path: PathBuf,
    committed: BTreeMap<String, u64>,
    /// How many times the file was replaced.
    pub writes: u64,
}

impl Groups {
    /// Loads `dir`'s groups file; none is no group yet.
    pub async fn load(dir: &Path) -> io::Result<Groups> {
        let path = dir.join(FILE);
        let mut committed = BTreeMap::new();
        match overlap::fs::read_to_string(&path).await {
            Ok(text) => {
                for line in text.lines() {
                    let bad = || io::Error::new(io::ErrorKind::InvalidData, format!("{line:?}"));
                    let (name, offset) = line.rsplit_once(' ').ok_or_else(bad)?;
                    let offset = offset.parse().map_err(|_| bad())?;
                    committed.insert(name.to_string(), offset);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(Groups {
            path,
            committed,
            writes: 0,
        })
    }

    /// The group's committed offset, if it has one.
    pub fn get(&self, name: &str) -> Option<u64> {
        self.committed.get(name).copied()
    }

    /// The lowest committed offset of all groups: what every group has read past.
    pub fn min(&self) -> Option<u64> {
        self.committed.values().min().copied()
    }

    /// Sets `name`'s committed offset: gives the file's new text, to write out.
    pub fn set(&mut self, name: &str, offset: u64) -> String {
        self.committed.insert(name.to_string(), offset);
        self.committed
            .iter()
            .map(|(name, offset)| format!("{name} {offset}\n"))
            .collect()
    }

    /// Where the snapshots go.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Replaces `path` with `text` atomically: a temporary file, synced, renamed over it.
pub async fn replace_atomically(path: &Path, text: &str) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = overlap::fs::File::create(&tmp).await?;
    file.write_all(text.as_bytes()).await?;
    file.sync_all().await?;
    drop(file);
    overlap::fs::rename(&tmp, path).await
}
