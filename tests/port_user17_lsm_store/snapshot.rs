//! A snapshot: the memtables as they were when it was taken (an `Rc` of each; a write
//! after it copies the live one first) and the `Version` of that moment, whose tables it
//! keeps open, and on disk, however many compactions replace them meanwhile.

use std::collections::BTreeMap;
use std::io;
use std::ops::Bound;
use std::rc::Rc;

use super::db::Version;
use super::format::{Key, MemTable, Value};

pub struct Snapshot {
    pub(super) mem: Rc<MemTable>,
    pub(super) imm: Option<Rc<MemTable>>,
    pub(super) version: Rc<Version>,
}

impl Snapshot {
    pub async fn get(&self, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        if let Some(v) = self.mem.get(key) {
            return Ok(v.clone());
        }
        if let Some(v) = self.imm.as_ref().and_then(|imm| imm.get(key)) {
            return Ok(v.clone());
        }
        for t in &self.version.l0 {
            if let Some(v) = t.get(key).await? {
                return Ok(v);
            }
        }
        let l1 = &self.version.l1;
        let i = l1.partition_point(|t| t.last() < key);
        match l1.get(i) {
            Some(t) => Ok(t.get(key).await?.flatten()),
            None => Ok(None),
        }
    }

    /// Up to `limit` live entries in `[start, end)`, as of the snapshot.
    pub async fn scan(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> io::Result<Vec<(Key, Vec<u8>)>> {
        if end.is_some_and(|e| e <= start) || limit == 0 {
            return Ok(Vec::new());
        }
        let end = end.map_or(Bound::Unbounded, Bound::Excluded);
        let mut merged: BTreeMap<Key, Value> = BTreeMap::new();
        let overlaps = |first: &[u8], last: &[u8]| {
            last >= start
                && match end {
                    Bound::Excluded(e) => first < e,
                    _ => true,
                }
        };
        // Oldest first: L1, L0 from its oldest table, then the memtables.
        let v = &self.version;
        for t in v.l1.iter().chain(v.l0.iter().rev()) {
            if overlaps(t.first(), t.last()) {
                merged.extend(t.range(start, end, true).await?);
            }
        }
        let range = (Bound::Included(start.to_vec()), end.map(|e| e.to_vec()));
        for mem in self.imm.iter().chain([&self.mem]) {
            merged.extend(
                mem.range(range.clone())
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
        }
        Ok(merged
            .into_iter()
            .filter_map(|(k, v)| Some((k, v?)))
            .take(limit)
            .collect())
    }
}
