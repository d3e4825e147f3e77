//! A vector of slots with a free list: O(1) insert and remove by key.

/// Slots addressed by `usize` keys; freed keys are reused.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    entries: Vec<Entry<T>>,
    next_free: usize,
    len: usize,
}

#[derive(Debug)]
enum Entry<T> {
    Occupied(T),
    /// Holds the key of the next vacant entry (`usize::MAX`: none).
    Vacant(usize),
}

impl<T> Default for Slab<T> {
    fn default() -> Slab<T> {
        Slab::new()
    }
}

impl<T> Slab<T> {
    pub(crate) const fn new() -> Slab<T> {
        Slab {
            entries: Vec::new(),
            next_free: usize::MAX,
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Slots held, vacant or not.
    pub(crate) fn capacity(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn insert(&mut self, value: T) -> usize {
        self.len += 1;
        if self.next_free == usize::MAX {
            self.entries.push(Entry::Occupied(value));
            return self.entries.len() - 1;
        }
        let key = self.next_free;
        match std::mem::replace(&mut self.entries[key], Entry::Occupied(value)) {
            Entry::Vacant(next) => self.next_free = next,
            Entry::Occupied(_) => unreachable!("free list pointed at an occupied slot"),
        }
        key
    }

    pub(crate) fn remove(&mut self, key: usize) -> Option<T> {
        let entry = self.entries.get_mut(key)?;
        if let Entry::Vacant(_) = entry {
            return None;
        }
        let Entry::Occupied(v) = std::mem::replace(entry, Entry::Vacant(self.next_free)) else {
            unreachable!()
        };
        self.next_free = key;
        self.len -= 1;
        Some(v)
    }

    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        match self.entries.get_mut(key)? {
            Entry::Occupied(v) => Some(v),
            Entry::Vacant(_) => None,
        }
    }

    /// Every value, in key order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().filter_map(|e| match e {
            Entry::Occupied(v) => Some(v),
            Entry::Vacant(_) => None,
        })
    }

    /// Removes and returns every value.
    pub(crate) fn drain(&mut self) -> Vec<T> {
        let entries = std::mem::take(&mut self.entries);
        self.next_free = usize::MAX;
        self.len = 0;
        entries
            .into_iter()
            .filter_map(|e| match e {
                Entry::Occupied(v) => Some(v),
                Entry::Vacant(_) => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Slab;

    #[test]
    fn reuses_freed_keys_and_counts() {
        let mut s = Slab::new();
        let a = s.insert("a");
        s.insert("b");
        assert_eq!(s.remove(a), Some("a"));
        assert_eq!(s.remove(a), None);
        let c = s.insert("c");
        assert_eq!(c, a);
        assert_eq!(s.len(), 2);
        *s.get_mut(c).unwrap() = "c2";
        assert_eq!(s.get_mut(99), None);
        assert_eq!(s.values().count(), 2);
        let mut all = s.drain();
        all.sort();
        assert_eq!(all, ["b", "c2"]);
        assert_eq!(s.len(), 0);
    }
}
