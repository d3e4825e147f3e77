//! A backup: the walk (`read_dir` recursively, symlinks recorded, never followed), then the
//! store, where worker tasks read the files, cut them into chunks, and write each chunk
//! not yet in the repository once, at an extent reserved in this backup's one new pack,
//! through their clones of its `PositionalFile`. Then the pack is synced, and the index and
//! the manifest replaced atomically: a backup stopped before that leaves no snapshot.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use overlap::fs::{self, Metadata, PositionalFile};
use overlap::io::AsyncReadExt;
use overlap::task::JoinSet;

use super::chunker::{next_cut, ChunkId, Params};
use super::manifest::{self, Entry, Kind, Mtime};
use super::repo::{Index, PackWriter, Repo};

/// What the walk found: entries in walk order (files without chunks yet), and what it
/// could not look at.
#[derive(Debug, Default)]
pub struct Plan {
    pub entries: Vec<Entry>,
    pub skipped: Vec<Skipped>,
}

/// A path left out of the snapshot, and why.
#[derive(Debug)]
pub struct Skipped {
    pub path: PathBuf,
    pub error: io::Error,
}

#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Worker tasks reading files at once.
    pub workers: usize,
    pub chunking: Params,
    /// A pause after each new chunk is written (a bandwidth cap).
    pub pace: Option<Duration>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            workers: 4,
            chunking: Params::DEFAULT,
            pace: None,
        }
    }
}

#[derive(Debug)]
pub struct Report {
    pub snapshot: u32,
    /// The pack this backup wrote, if it stored anything.
    pub pack: Option<u32>,
    pub files: usize,
    pub chunks: usize,
    pub new_chunks: usize,
    pub new_bytes: u64,
    pub skipped: Vec<Skipped>,
}

fn mtime_of(m: &Metadata) -> Mtime {
    (m.mtime(), m.mtime_nsec() as u32)
}

/// Walks `src`, recording what it cannot list or look at as skipped.
pub async fn walk(src: &Path) -> io::Result<Plan> {
    let mut plan = Plan::default();
    // Only the source itself missing or unreadable fails the backup.
    fs::read_dir(src).await?;
    walk_dir(src, PathBuf::new(), &mut plan).await;
    Ok(plan)
}

fn walk_dir<'a>(
    src: &'a Path,
    rel: PathBuf,
    plan: &'a mut Plan,
) -> Pin<Box<dyn Future<Output = ()> + 'a>> {
    Box::pin(async move {
        let mut names = Vec::new();
        let listed = async {
            let mut dir = fs::read_dir(src.join(&rel)).await?;
            while let Some(entry) = dir.next_entry().await? {
                names.push(entry.file_name());
            }
            io::Result::Ok(())
        };
        if let Err(error) = listed.await {
            plan.skipped.push(Skipped { path: rel, error });
            return;
        }
        names.sort();
        for name in names {
            let rel = rel.join(name);
            let meta = match fs::symlink_metadata(src.join(&rel)).await {
                Ok(m) => m,
                Err(error) => {
                    plan.skipped.push(Skipped { path: rel, error });
                    continue;
                }
            };
            let mode = meta.permissions().mode() & 0o7777;
            let kind = if meta.file_type().is_symlink() {
                match fs::read_link(src.join(&rel)).await {
                    Ok(target) => Kind::Symlink { target },
                    Err(error) => {
                        plan.skipped.push(Skipped { path: rel, error });
                        continue;
                    }
                }
            } else if meta.is_dir() {
                Kind::Dir {
                    mode,
                    mtime: mtime_of(&meta),
                }
            } else if meta.is_file() {
                let (mtime, size) = (mtime_of(&meta), meta.len());
                Kind::File {
                    mode,
                    mtime,
                    size,
                    chunks: Vec::new(),
                }
            } else {
                let error = io::Error::other("not a regular file, directory or symlink");
                plan.skipped.push(Skipped { path: rel, error });
                continue;
            };
            let is_dir = matches!(kind, Kind::Dir { .. });
            plan.entries.push(Entry {
                path: rel.clone(),
                kind,
            });
            if is_dir {
                walk_dir(src, rel, plan).await;
            }
        }
    })
}

/// A file's chunks and the size read, or why it was skipped.
type FileOutcome = io::Result<(Vec<ChunkId>, u64)>;

/// What the workers share.
struct Store {
    src: PathBuf,
    opts: Options,
    pack: PackWriter,
    /// The repository's chunks, and this backup's as soon as their extent is reserved (a
    /// second task finding the same chunk meanwhile refers to it, never stores it again).
    index: RefCell<Index>,
    new_chunks: RefCell<usize>,
    chunks: RefCell<usize>,
    /// Files not yet taken by a worker: their place in the plan.
    queue: RefCell<VecDeque<usize>>,
    /// Each file's outcome: its chunks and the size read, or why it was skipped.
    done: RefCell<Vec<(usize, FileOutcome)>>,
}

/// Stores `plan` (from [`walk`] of `src`) as a new snapshot.
pub async fn store(repo: &Repo, src: &Path, plan: Plan, opts: Options) -> io::Result<Report> {
    let index = repo.load_index().await?;
    let pack_id = repo.next_pack_id().await?;
    let pack = PackWriter::new(pack_id, repo.create_pack(pack_id).await?);
    let files = plan.entries.iter().enumerate();
    let queue = files
        .filter(|(_, e)| matches!(e.kind, Kind::File { .. }))
        .map(|(i, _)| i);
    let store = Rc::new(Store {
        src: src.to_path_buf(),
        opts,
        pack,
        index: RefCell::new(index),
        new_chunks: RefCell::new(0),
        chunks: RefCell::new(0),
        queue: RefCell::new(queue.collect()),
        done: RefCell::new(Vec::new()),
    });
    let plan = Rc::new(plan);
    // Dropped (the backup cancelled), the set aborts the workers.
    let mut workers = JoinSet::new();
    for _ in 0..opts.workers.max(1) {
        workers.spawn(worker(store.clone(), plan.clone()));
    }
    while let Some(joined) = workers.join_next().await {
        joined.map_err(io::Error::other)??;
    }
    drop(workers);
    let store = Rc::into_inner(store).expect("the workers are done");
    let Plan {
        mut entries,
        mut skipped,
    } = Rc::into_inner(plan).expect("the workers are done");

    let mut kept = vec![true; entries.len()];
    for (i, outcome) in store.done.into_inner() {
        match (outcome, &mut entries[i].kind) {
            (Ok((ids, len)), Kind::File { chunks, size, .. }) => (*chunks, *size) = (ids, len),
            (Err(error), _) => {
                kept[i] = false;
                skipped.push(Skipped {
                    path: entries[i].path.clone(),
                    error,
                });
            }
            _ => unreachable!("only files are queued"),
        }
    }
    let mut keep = kept.into_iter();
    entries.retain(|_| keep.next().unwrap());

    let pack_len = store.pack.len();
    let pack = (pack_len > 0).then_some(pack_id);
    if pack.is_some() {
        store.pack.file.sync_all().await?;
        repo.save_index(&store.index.into_inner()).await?;
    } else {
        fs::remove_file(repo.pack_path(pack_id)).await?;
    }
    let snapshot = repo.snapshot_ids().await?.last().map_or(1, |last| last + 1);
    manifest::save(repo, snapshot, &entries).await?;
    let new_chunks = store.new_chunks.into_inner();
    let files = entries
        .iter()
        .filter(|e| matches!(e.kind, Kind::File { .. }))
        .count();
    let chunks = store.chunks.into_inner();
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Report {
        snapshot,
        pack,
        files,
        chunks,
        new_chunks,
        new_bytes: pack_len,
        skipped,
    })
}

/// Takes files off the queue until it is empty. A source file that cannot be opened or
/// read is recorded as skipped; a pack that cannot be written ends the backup.
async fn worker(store: Rc<Store>, plan: Rc<Plan>) -> io::Result<()> {
    // Each worker writes through its own clone of the pack: one fd, one queue.
    let pack = store.pack.file.clone();
    loop {
        let Some(i) = store.queue.borrow_mut().pop_front() else {
            return Ok(());
        };
        let path = store.src.join(&plan.entries[i].path);
        let outcome = match fs::File::open(&path).await {
            Ok(file) => back_up_file(&store, &pack, file).await?,
            Err(e) => Err(e),
        };
        store.done.borrow_mut().push((i, outcome));
    }
}

/// The outer error is the pack's (fatal), the inner the source file's (skip it).
async fn back_up_file(
    store: &Store,
    pack: &PositionalFile,
    mut file: fs::File,
) -> io::Result<io::Result<(Vec<ChunkId>, u64)>> {
    let params = store.opts.chunking;
    let (mut ids, mut size) = (Vec::new(), 0u64);
    let mut pending: Vec<u8> = Vec::with_capacity(2 * params.max);
    let mut eof = false;
    loop {
        while !eof && pending.len() < params.max {
            let old = pending.len();
            pending.resize(old + params.max, 0);
            match file.read(&mut pending[old..]).await {
                Ok(n) => {
                    pending.truncate(old + n);
                    eof = n == 0;
                    size += n as u64;
                }
                Err(e) => return Ok(Err(e)),
            }
        }
        let Some(cut) = next_cut(&pending, params, eof) else {
            return Ok(Ok((ids, size)));
        };
        let chunk: Vec<u8> = pending.drain(..cut).collect();
        let id = ChunkId::of(&chunk);
        ids.push(id);
        *store.chunks.borrow_mut() += 1;
        if store.index.borrow().contains_key(&id) {
            continue;
        }
        let loc = store.pack.reserve(chunk.len());
        store.index.borrow_mut().insert(id, loc);
        *store.new_chunks.borrow_mut() += 1;
        pack.write_all_at(&chunk, loc.offset).await?;
        if let Some(pace) = store.opts.pace {
            overlap::time::sleep(pace).await;
        }
    }
}

/// Walks `src` and stores it: the whole backup.
pub async fn back_up(repo: &Repo, src: &Path, opts: Options) -> io::Result<Report> {
    let plan = walk(src).await?;
    store(repo, src, plan, opts).await
}
