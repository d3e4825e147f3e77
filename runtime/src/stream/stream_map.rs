//! `StreamMap`: many streams polled as one, each item tagged with its stream's key.

use std::borrow::Borrow;
use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::future::poll_fn;
use std::hash::{BuildHasher, Hash, Hasher};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::stream::Stream;

/// Streams under keys, polled as one stream of `(key, item)` (tokio-stream's `StreamMap`):
/// a chat server's clients by name, the subscriptions of one connection by topic. A stream
/// that ends is removed, and the map's stream ends when it holds none (it yields `None` when
/// empty, and yields again once a stream is inserted: put it in a `select!` branch with a
/// pattern such as `Some((key, item)) = map.next()` so an empty map only disables that
/// branch).
///
/// Each poll starts at a random stream, so one busy stream cannot starve the others, and
/// polls the streams in turn until one has an item: a poll costs time in the number of
/// streams, as tokio-stream's does; for thousands of streams that are mostly idle, a
/// [`SelectAll`](futures_util::stream::SelectAll) polls only the ones woken. Keys are
/// compared with `==`; inserting under a key already present replaces that stream.
///
/// ```
/// use overlap::stream::{self, StreamExt, StreamMap};
///
/// overlap::block_on(async {
///     let mut map = StreamMap::new();
///     map.insert("evens", stream::iter(vec![0, 2]));
///     map.insert("odds", stream::iter(vec![1]));
///     let mut got = Vec::new();
///     while let Some((key, n)) = map.next().await {
///         got.push((key, n));
///     }
///     got.sort();
///     assert_eq!(got, [("evens", 0), ("evens", 2), ("odds", 1)]);
///     assert!(map.is_empty(), "ended streams are removed");
/// });
/// ```
#[derive(Debug)]
pub struct StreamMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> StreamMap<K, V> {
    /// An empty map.
    pub fn new() -> StreamMap<K, V> {
        StreamMap {
            entries: Vec::new(),
        }
    }

    /// An empty map with room for `capacity` streams.
    pub fn with_capacity(capacity: usize) -> StreamMap<K, V> {
        StreamMap {
            entries: Vec::with_capacity(capacity),
        }
    }

    /// The keys and streams, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &(K, V)> {
        self.entries.iter()
    }

    /// The keys and streams, the streams mutable, in no particular order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut (K, V)> {
        self.entries.iter_mut()
    }

    /// The keys, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.entries.iter().map(|(k, _)| k)
    }

    /// The streams, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }

    /// The streams, mutable, in no particular order.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.entries.iter_mut().map(|(_, v)| v)
    }

    /// How many streams the map has room for without reallocating.
    pub fn capacity(&self) -> usize {
        self.entries.capacity()
    }

    /// How many streams the map holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map holds no stream.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops every stream.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Adds `stream` under `key`, returning the stream it replaces if `key` was present.
    pub fn insert(&mut self, key: K, stream: V) -> Option<V>
    where
        K: Hash + Eq,
    {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some((_, old)) => Some(std::mem::replace(old, stream)),
            None => {
                self.entries.push((key, stream));
                None
            }
        }
    }

    /// Removes the stream under `key` and returns it.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let at = self.entries.iter().position(|(k, _)| k.borrow() == key)?;
        Some(self.entries.swap_remove(at).1)
    }

    /// Whether a stream is under `key`.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.iter().any(|(k, _)| k.borrow() == key)
    }
}

impl<K, V> Default for StreamMap<K, V> {
    fn default() -> StreamMap<K, V> {
        StreamMap::new()
    }
}

impl<K: Hash + Eq, V> FromIterator<(K, V)> for StreamMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> StreamMap<K, V> {
        let mut map = StreamMap::new();
        map.extend(iter);
        map
    }
}

impl<K: Hash + Eq, V> Extend<(K, V)> for StreamMap<K, V> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (key, stream) in iter {
            self.insert(key, stream);
        }
    }
}

impl<K: Clone, V: Stream + Unpin> StreamMap<K, V> {
    /// Moves up to `limit` ready items into `buffer`, polling each stream at most once, from
    /// a random one; `Ready(n)` with how many it moved, `Ready(0)` only when the map is empty
    /// (or `limit` is 0), and `Pending` when no stream has an item.
    pub fn poll_next_many(
        &mut self,
        cx: &mut Context<'_>,
        buffer: &mut Vec<(K, V::Item)>,
        limit: usize,
    ) -> Poll<usize> {
        if limit == 0 || self.entries.is_empty() {
            return Poll::Ready(0);
        }
        let moved = self.poll_round(cx, limit, |key, item| buffer.push((key.clone(), item)));
        if moved == 0 && !self.entries.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(moved)
        }
    }

    /// Waits for ready items and moves up to `limit` of them into `buffer`: the number
    /// moved, 0 only when the map is empty (or `limit` is 0). Cancel-safe: an item is taken
    /// from its stream only as it is put in `buffer`.
    ///
    /// ```
    /// use overlap::stream::{self, StreamMap};
    ///
    /// overlap::block_on(async {
    ///     let mut map = StreamMap::new();
    ///     map.insert(1, stream::iter(vec!['a', 'b']));
    ///     map.insert(2, stream::iter(vec!['c']));
    ///     let mut buffer = Vec::new();
    ///     while map.next_many(&mut buffer, 10).await > 0 {}
    ///     buffer.sort();
    ///     assert_eq!(buffer, [(1, 'a'), (1, 'b'), (2, 'c')]);
    /// });
    /// ```
    pub async fn next_many(&mut self, buffer: &mut Vec<(K, V::Item)>, limit: usize) -> usize {
        poll_fn(|cx| self.poll_next_many(cx, buffer, limit)).await
    }

    /// Polls each stream at most once from a random one, handing each item to `take` until
    /// `limit` items; removes the streams that ended. Returns how many items it handed.
    fn poll_round(
        &mut self,
        cx: &mut Context<'_>,
        limit: usize,
        mut take: impl FnMut(&K, V::Item),
    ) -> usize {
        let len = self.entries.len();
        let start = random_below(len);
        let mut moved = 0;
        // The streams that ended, removed after the round so the indices stay put.
        let mut ended = Vec::new();
        let mut at = start;
        for _ in 0..len {
            let this = at;
            at = if at + 1 == len { 0 } else { at + 1 };
            let (key, stream) = &mut self.entries[this];
            match Pin::new(stream).poll_next(cx) {
                Poll::Ready(Some(item)) => {
                    take(key, item);
                    moved += 1;
                    if moved == limit {
                        break;
                    }
                }
                Poll::Ready(None) => ended.push(this),
                Poll::Pending => {}
            }
        }
        // From the highest index down, so each swap brings in an entry that stays.
        ended.sort_unstable_by(|a, b| b.cmp(a));
        for at in ended {
            self.entries.swap_remove(at);
        }
        moved
    }
}

impl<K: Clone + Unpin, V: Stream + Unpin> Stream for StreamMap<K, V> {
    type Item = (K, V::Item);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let mut out = None;
        this.poll_round(cx, 1, |key, item| out = Some((key.clone(), item)));
        match out {
            Some(item) => Poll::Ready(Some(item)),
            None if this.entries.is_empty() => Poll::Ready(None),
            None => Poll::Pending,
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.entries
            .iter()
            .map(|(_, stream)| stream.size_hint())
            .fold((0, Some(0)), |(low, high), (l, h)| {
                let high = high.zip(h).and_then(|(a, b)| a.checked_add(b));
                (low.saturating_add(l), high)
            })
    }
}

/// A number in `0..n` (0 when `n` is 0), from a per-thread xorshift seeded at random: where
/// `StreamMap` and `select!` start polling.
#[doc(hidden)]
pub fn random_below(n: usize) -> usize {
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let mut h = RandomState::new().build_hasher();
            h.write_u8(0);
            h.finish() | 1
        });
    }
    if n <= 1 {
        return 0;
    }
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        // The high 32 bits scaled into 0..n by a multiply, not a division (which costs a
        // map's poll more than the rest of its bookkeeping). Above u32::MAX entries the
        // start is only ever in the first 2^32 of them, which no map reaches.
        (((x >> 32) * n.min(u32::MAX as usize) as u64) >> 32) as usize
    })
}

#[cfg(test)]
mod tests {
    use super::random_below;

    #[test]
    fn random_below_stays_below_and_reaches_every_value() {
        for n in [0, 1, 2, 3, 7, 1000] {
            let mut seen = vec![false; n.max(1)];
            for _ in 0..100 * n.max(1) {
                let r = random_below(n);
                assert!(r < n.max(1), "{r} for {n}");
                seen[r] = true;
            }
            assert!(seen.iter().all(|&s| s), "not every value below {n} came");
        }
    }
}
