//! Restoring a snapshot into a new directory: directories and symlinks first, then the
//! files, several at once up to a semaphore's permits, each chunk read back from its pack
//! with `read_exact_at` and checked against its id; last, the directories' modes and
//! mtimes, deepest first (creating their contents moved the mtimes).

use std::cell::Cell;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::io::{self, ErrorKind};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use overlap::fs::{self, OpenOptions, Permissions, PositionalFile};
use overlap::io::AsyncWriteExt;
use overlap::sync::Semaphore;
use overlap::task::JoinSet;

use super::chunker::ChunkId;
use super::manifest::{self, Kind, Mtime};
use super::repo::{read_chunk, Index, Repo};

#[derive(Debug, Default)]
pub struct Report {
    pub files: usize,
    pub bytes: u64,
    /// The most files that were being restored at once.
    pub most_at_once: usize,
}

fn system_time((secs, nanos): Mtime) -> SystemTime {
    UNIX_EPOCH + Duration::new(secs as u64, nanos)
}

/// Restores snapshot `id` into `dest` (created; it must not exist), `parallel` files at
/// once. A file that cannot be restored (a chunk missing or corrupt) is removed and the
/// others finish; the restore then fails with the first such error by path.
pub async fn restore(repo: &Repo, id: u32, dest: &Path, parallel: usize) -> io::Result<Report> {
    let entries = manifest::load(repo, id).await?;
    let index = Rc::new(repo.load_index().await?);
    fs::create_dir(dest).await?;
    for e in &entries {
        match &e.kind {
            Kind::Dir { .. } => fs::create_dir(dest.join(&e.path)).await?,
            Kind::Symlink { target } => fs::symlink(target, dest.join(&e.path)).await?,
            Kind::File { .. } => {}
        }
    }

    // One read-only handle per pack, shared (cloned) by every file's task.
    let mut packs = HashMap::new();
    for e in &entries {
        if let Kind::File { chunks, .. } = &e.kind {
            for c in chunks {
                let Some(loc) = index.get(c) else { continue };
                if let Entry::Vacant(slot) = packs.entry(loc.pack) {
                    slot.insert(PositionalFile::open(repo.pack_path(loc.pack)).await?);
                }
            }
        }
    }

    let permits = Rc::new(Semaphore::new(parallel.max(1)));
    let (now, most) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let mut tasks = JoinSet::new();
    for e in &entries {
        let Kind::File {
            mode,
            mtime,
            size,
            chunks,
        } = e.kind.clone()
        else {
            continue;
        };
        let (path, rel) = (dest.join(&e.path), e.path.clone());
        let (index, packs, permits) = (index.clone(), packs.clone(), permits.clone());
        let (now, most) = (now.clone(), most.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("never closed");
            now.set(now.get() + 1);
            most.set(most.get().max(now.get()));
            let file = FileToRestore {
                path: &path,
                rel: &rel,
                mode,
                mtime,
                size,
            };
            let res = file.restore(&chunks, &index, &packs).await;
            now.set(now.get() - 1);
            if res.is_err() {
                let _ = fs::remove_file(&path).await;
            }
            res.map(|()| (rel, size))
        });
    }
    let (mut report, mut failed) = (Report::default(), Vec::new());
    while let Some(joined) = tasks.join_next().await {
        match joined.map_err(io::Error::other)? {
            Ok((_, size)) => (report.files, report.bytes) = (report.files + 1, report.bytes + size),
            Err(e) => failed.push(e),
        }
    }
    report.most_at_once = most.get();
    if !failed.is_empty() {
        failed.sort_by_key(|e| e.to_string());
        let n = failed.len();
        let first = failed.swap_remove(0);
        let msg = format!("restore of snapshot {id}: {n} file(s) failed; first: {first}");
        return Err(io::Error::new(first.kind(), msg));
    }

    for e in entries.iter().rev() {
        if let Kind::Dir { mode, mtime } = e.kind {
            let path = dest.join(&e.path);
            fs::File::open(&path)
                .await?
                .set_modified(system_time(mtime))
                .await?;
            fs::set_permissions(&path, Permissions::from_mode(mode)).await?;
        }
    }
    Ok(report)
}

struct FileToRestore<'a> {
    path: &'a Path,
    rel: &'a PathBuf,
    mode: u32,
    mtime: Mtime,
    size: u64,
}

impl FileToRestore<'_> {
    async fn restore(
        &self,
        chunks: &[ChunkId],
        index: &Index,
        packs: &HashMap<u32, PositionalFile>,
    ) -> io::Result<()> {
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(self.path)
            .await?;
        let mut written = 0u64;
        for &id in chunks {
            let Some(&loc) = index.get(&id) else {
                let msg = format!("chunk {id} of {} is in no pack", self.rel.display());
                return Err(io::Error::new(ErrorKind::NotFound, msg));
            };
            let bytes = read_chunk(&packs[&loc.pack], id, loc, self.rel).await?;
            out.write_all(&bytes).await?;
            written += bytes.len() as u64;
        }
        if written != self.size {
            let msg = format!(
                "{}: {written} bytes restored, {} recorded",
                self.rel.display(),
                self.size
            );
            return Err(io::Error::new(ErrorKind::InvalidData, msg));
        }
        out.flush().await?;
        out.set_modified(system_time(self.mtime)).await?;
        out.set_permissions(Permissions::from_mode(self.mode)).await
    }
}
