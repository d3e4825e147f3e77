//! The page cache: a bounded LRU of pages with dirty tracking. Clean pages are evicted,
//! least recently used first; dirty pages (the open transaction's) stay until a commit
//! makes them clean or a rollback drops them.

use std::collections::{BTreeMap, HashMap};

use super::page::Page;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
}

struct Slot {
    page: Page,
    dirty: bool,
    /// When it was last used: its key in `lru`.
    tick: u64,
}

pub struct Cache {
    capacity: usize,
    slots: HashMap<u32, Slot>,
    /// Use order: tick → page number, oldest first.
    lru: BTreeMap<u64, u32>,
    tick: u64,
    pub stats: CacheStats,
}

impl Cache {
    pub fn new(capacity: usize) -> Cache {
        assert!(capacity > 0);
        Cache {
            capacity,
            slots: HashMap::new(),
            lru: BTreeMap::new(),
            tick: 0,
            stats: CacheStats::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn dirty_count(&self) -> usize {
        self.slots.values().filter(|s| s.dirty).count()
    }

    pub fn is_dirty(&self, id: u32) -> bool {
        self.slots.get(&id).is_some_and(|s| s.dirty)
    }

    fn touch(&mut self, id: u32) {
        self.tick += 1;
        let slot = self.slots.get_mut(&id).unwrap();
        self.lru.remove(&slot.tick);
        slot.tick = self.tick;
        self.lru.insert(self.tick, id);
    }

    /// The cached page `id`, now the most recently used; counts a hit or a miss.
    pub fn get(&mut self, id: u32) -> Option<&Page> {
        if !self.slots.contains_key(&id) {
            self.stats.misses += 1;
            return None;
        }
        self.stats.hits += 1;
        self.touch(id);
        Some(&self.slots[&id].page)
    }

    /// Caches a page read from the file, clean, evicting if the cache is over capacity.
    pub fn insert_clean(&mut self, page: Page) {
        let id = page.id();
        assert!(!self.is_dirty(id), "a clean copy over a dirty page {id}");
        self.put(page, false);
    }

    /// Puts a changed page, dirty: it stays until [`mark_clean`](Cache::mark_clean) or
    /// [`drop_dirty`](Cache::drop_dirty).
    pub fn insert_dirty(&mut self, page: Page) {
        self.put(page, true);
    }

    fn put(&mut self, page: Page, dirty: bool) {
        let id = page.id();
        if let Some(old) = self.slots.insert(
            id,
            Slot {
                page,
                dirty,
                tick: 0,
            },
        ) {
            self.lru.remove(&old.tick);
        }
        self.tick += 1;
        self.slots.get_mut(&id).unwrap().tick = self.tick;
        self.lru.insert(self.tick, id);
        self.evict();
    }

    /// Drops the least recently used clean pages while over capacity; dirty ones stay.
    fn evict(&mut self) {
        if self.slots.len() <= self.capacity {
            return;
        }
        let over = self.slots.len() - self.capacity;
        let victims: Vec<(u64, u32)> = self
            .lru
            .iter()
            .filter(|(_, id)| !self.slots[id].dirty)
            .take(over)
            .map(|(&t, &id)| (t, id))
            .collect();
        for (tick, id) in victims {
            self.lru.remove(&tick);
            self.slots.remove(&id);
            self.stats.evictions += 1;
        }
    }

    /// The dirty pages, by page number.
    pub fn dirty_pages(&self) -> Vec<&Page> {
        let mut pages: Vec<&Page> = self
            .slots
            .values()
            .filter(|s| s.dirty)
            .map(|s| &s.page)
            .collect();
        pages.sort_by_key(|p| p.id());
        pages
    }

    /// After a commit: every page is clean, and the cache back within its capacity.
    pub fn mark_clean(&mut self) {
        for slot in self.slots.values_mut() {
            slot.dirty = false;
        }
        self.evict();
    }

    /// A rollback: the dirty pages go, to be read again from the file.
    pub fn drop_dirty(&mut self) {
        let dirty: Vec<u32> = self
            .slots
            .iter()
            .filter(|(_, s)| s.dirty)
            .map(|(&id, _)| id)
            .collect();
        for id in dirty {
            let slot = self.slots.remove(&id).unwrap();
            self.lru.remove(&slot.tick);
        }
    }

    /// The cached page numbers, least recently used first.
    pub fn lru_order(&self) -> Vec<u32> {
        self.lru.values().copied().collect()
    }
}
