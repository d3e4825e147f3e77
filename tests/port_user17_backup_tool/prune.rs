//! Forgetting snapshots and pruning: chunks no snapshot refers to leave the repository. A
//! pack with none of them is kept as it is, one with only them is deleted, and one with
//! both is rewritten: its live chunks copied (each checked) into a new pack, then the index
//! replaced, then the old pack deleted, so a crash at any point leaves a usable repository.
//! Pack files the index never named (a cancelled backup's) are deleted too.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;

use overlap::fs::{self, PositionalFile};
use overlap::task::JoinSet;

use super::chunker::ChunkId;
use super::manifest::{self, Kind};
use super::repo::{read_chunk, Loc, PackWriter, Repo};

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub chunks_removed: usize,
    pub packs_rewritten: usize,
    pub packs_deleted: usize,
    pub orphan_packs_deleted: usize,
    /// The size of the packs before, minus after.
    pub bytes_freed: u64,
}

pub async fn forget(repo: &Repo, snapshot: u32) -> io::Result<()> {
    fs::remove_file(repo.snapshot_path(snapshot)).await
}

pub async fn prune(repo: &Repo) -> io::Result<Report> {
    let mut live = HashSet::new();
    for id in repo.snapshot_ids().await? {
        for e in manifest::load(repo, id).await? {
            if let Kind::File { chunks, .. } = e.kind {
                live.extend(chunks);
            }
        }
    }
    let mut index = repo.load_index().await?;
    let mut by_pack: BTreeMap<u32, Vec<(ChunkId, Loc)>> = BTreeMap::new();
    for (&id, &loc) in &index {
        by_pack.entry(loc.pack).or_default().push((id, loc));
    }
    let before = packs_size(repo).await?;
    let mut report = Report::default();
    let mut old_packs = Vec::new();
    let mut keep: Vec<(ChunkId, Loc)> = Vec::new();
    for (&pack, chunks) in &by_pack {
        let dead = chunks.iter().filter(|(id, _)| !live.contains(id)).count();
        if dead == 0 {
            continue;
        }
        report.chunks_removed += dead;
        old_packs.push(pack);
        for (id, _) in chunks {
            index.remove(id);
        }
        if dead == chunks.len() {
            report.packs_deleted += 1;
        } else {
            report.packs_rewritten += 1;
            keep.extend(chunks.iter().filter(|(id, _)| live.contains(id)));
        }
    }
    if !keep.is_empty() {
        let id = repo.next_pack_id().await?;
        let new = PackWriter::new(id, repo.create_pack(id).await?);
        keep.sort_by_key(|(_, loc)| (loc.pack, loc.offset));
        let mut copies = JoinSet::new();
        let mut sources = HashMap::new();
        for (chunk, loc) in keep {
            let to = new.reserve(loc.len as usize);
            index.insert(chunk, to);
            if let Entry::Vacant(slot) = sources.entry(loc.pack) {
                slot.insert(PositionalFile::open(repo.pack_path(loc.pack)).await?);
            }
            let from: PositionalFile = sources[&loc.pack].clone();
            let dest = new.file.clone();
            copies.spawn(async move {
                let what = format!("pack {}", loc.pack);
                let bytes = read_chunk(&from, chunk, loc, what.as_ref()).await?;
                dest.write_all_at(&bytes, to.offset).await
            });
        }
        while let Some(joined) = copies.join_next().await {
            joined.map_err(io::Error::other)??;
        }
        new.file.sync_all().await?;
    }
    repo.save_index(&index).await?;
    let named: HashSet<u32> = index.values().map(|loc| loc.pack).collect();
    for pack in repo.pack_ids().await? {
        if !named.contains(&pack) {
            fs::remove_file(repo.pack_path(pack)).await?;
            if !old_packs.contains(&pack) {
                report.orphan_packs_deleted += 1;
            }
        }
    }
    report.bytes_freed = before - packs_size(repo).await?;
    Ok(report)
}

async fn packs_size(repo: &Repo) -> io::Result<u64> {
    let mut total = 0;
    for id in repo.pack_ids().await? {
        total += fs::metadata(repo.pack_path(id)).await?.len();
    }
    Ok(total)
}
