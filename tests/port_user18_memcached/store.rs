//! The cache: items in a hash map, kept in least-recently-used order under a memory limit
//! (a key's and value's bytes plus [`ITEM_OVERHEAD`] each), with CAS uniques, expiry on
//! overlap's clock (checked lazily on access and by [`Store::sweep`]), `flush_all` with a
//! delay, and the counters `stats` shows.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::Duration;

use overlap::time::Instant;

use super::proto::StoreOp;

/// What an item costs beyond its key and value (memcached's item header is about this).
pub const ITEM_OVERHEAD: usize = 48;

/// memcached's rule: an exptime above 30 days is an absolute unix time.
const REALTIME_MAXDELTA: i64 = 60 * 60 * 24 * 30;

/// When an item stops being served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Never,
    At(Instant),
    /// A negative exptime, or an absolute time already past.
    Already,
}

/// The server's clock: overlap's `Instant` (paused in tests), anchored to a unix time so
/// absolute exptimes can be read against it.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub started: Instant,
    /// The unix time, in seconds, at `started`.
    pub epoch: i64,
}

impl Clock {
    /// The unix time now, in whole seconds.
    pub fn unix_now(&self) -> i64 {
        self.epoch + self.started.elapsed().as_secs() as i64
    }

    /// Reads an exptime as memcached does: 0 never, negative at once, up to 30 days
    /// relative seconds, beyond that an absolute unix time.
    pub fn expiry(&self, exptime: i64) -> Expiry {
        let now = Instant::now();
        match exptime {
            0 => Expiry::Never,
            e if e < 0 => Expiry::Already,
            e if e <= REALTIME_MAXDELTA => Expiry::At(now + Duration::from_secs(e as u64)),
            e => {
                let at = self.started + Duration::from_secs((e - self.epoch).max(0) as u64);
                if at <= now {
                    Expiry::Already
                } else {
                    Expiry::At(at)
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Item {
    pub flags: u32,
    pub value: Rc<[u8]>,
    pub cas: u64,
    expiry: Expiry,
    stored: Instant,
    /// This item's place in `Store::lru`.
    tick: u64,
}

/// The counters of `stats` that belong to the cache.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    pub cmd_get: u64,
    pub cmd_set: u64,
    pub cmd_touch: u64,
    pub cmd_flush: u64,
    pub get_hits: u64,
    pub get_misses: u64,
    pub delete_hits: u64,
    pub delete_misses: u64,
    pub incr_hits: u64,
    pub incr_misses: u64,
    pub decr_hits: u64,
    pub decr_misses: u64,
    pub cas_hits: u64,
    pub cas_misses: u64,
    pub cas_badval: u64,
    pub touch_hits: u64,
    pub touch_misses: u64,
    pub total_items: u64,
    /// Live items pushed out to make room.
    pub evictions: u64,
    /// Expired or flushed items removed, on access or by the sweeper.
    pub reclaimed: u64,
}

/// A storage command's outcome, as the reply line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Stored,
    NotStored,
    Exists,
    NotFound,
    NoMemory,
}

/// incr/decr's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arith {
    Value(u64),
    NotFound,
    NonNumeric,
}

pub struct Store {
    map: HashMap<Vec<u8>, Item>,
    /// Keys by last use, oldest first.
    lru: BTreeMap<u64, Vec<u8>>,
    tick: u64,
    next_cas: u64,
    bytes: usize,
    limit: usize,
    /// A delayed `flush_all`'s moment: items stored before it are gone once it has come.
    flush_at: Option<Instant>,
    pub clock: Clock,
    pub counters: Counters,
}

fn cost(key: &[u8], value: &[u8]) -> usize {
    key.len() + value.len() + ITEM_OVERHEAD
}

impl Store {
    pub fn new(limit: usize, clock: Clock) -> Store {
        Store {
            map: HashMap::new(),
            lru: BTreeMap::new(),
            tick: 0,
            next_cas: 1,
            bytes: 0,
            limit,
            flush_at: None,
            clock,
            counters: Counters::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    fn dead(&self, item: &Item, now: Instant) -> bool {
        let expired = match item.expiry {
            Expiry::Never => false,
            Expiry::At(at) => at <= now,
            Expiry::Already => true,
        };
        let flushed = self
            .flush_at
            .is_some_and(|at| at <= now && item.stored < at);
        expired || flushed
    }

    fn unlink(&mut self, key: &[u8]) -> Option<Item> {
        let item = self.map.remove(key)?;
        self.lru.remove(&item.tick);
        self.bytes -= cost(key, &item.value);
        Some(item)
    }

    /// The live item under `key`, marked as just used; a dead one is removed on the way.
    fn live(&mut self, key: &[u8]) -> Option<&mut Item> {
        let now = Instant::now();
        if self.dead(self.map.get(key)?, now) {
            self.unlink(key);
            self.counters.reclaimed += 1;
            return None;
        }
        self.tick += 1;
        let tick = self.tick;
        let item = self.map.get_mut(key)?;
        let old = std::mem::replace(&mut item.tick, tick);
        let k = self.lru.remove(&old).expect("every item is in the LRU");
        self.lru.insert(tick, k);
        self.map.get_mut(key)
    }

    /// Looks `key` up for get/gets/gat (counting the hit or miss), moving its expiry
    /// first for gat.
    pub fn get(&mut self, key: &[u8], touch: Option<Expiry>) -> Option<Item> {
        self.counters.cmd_get += 1;
        if touch.is_some() {
            self.counters.cmd_touch += 1;
        }
        let found = match (self.live(key), touch) {
            (Some(item), Some(expiry)) => {
                item.expiry = expiry;
                Some(item.clone())
            }
            (found, _) => found.map(|i| i.clone()),
        };
        match (&found, touch) {
            (Some(_), Some(_)) => self.counters.touch_hits += 1,
            (None, Some(_)) => self.counters.touch_misses += 1,
            _ => {}
        }
        match found {
            // A gat to a past time answers with the item, then it is gone.
            Some(item) if touch == Some(Expiry::Already) => {
                self.counters.get_hits += 1;
                self.unlink(key);
                Some(item)
            }
            Some(item) => {
                self.counters.get_hits += 1;
                Some(item)
            }
            None => {
                self.counters.get_misses += 1;
                None
            }
        }
    }

    /// A storage command with its data block.
    pub fn store(
        &mut self,
        op: StoreOp,
        key: &[u8],
        flags: u32,
        expiry: Expiry,
        data: &[u8],
        unique: u64,
    ) -> Outcome {
        self.counters.cmd_set += 1;
        let existing = self
            .live(key)
            .map(|i| (i.cas, i.flags, i.expiry, i.value.clone()));
        let (flags, expiry, value): (u32, Expiry, Rc<[u8]>) = match (op, existing) {
            (StoreOp::Add, Some(_)) => return Outcome::NotStored,
            (StoreOp::Replace | StoreOp::Append | StoreOp::Prepend, None) => {
                return Outcome::NotStored
            }
            (StoreOp::Cas, None) => {
                self.counters.cas_misses += 1;
                return Outcome::NotFound;
            }
            (StoreOp::Cas, Some((cas, ..))) if cas != unique => {
                self.counters.cas_badval += 1;
                return Outcome::Exists;
            }
            // Appending keeps the item's flags and expiry, whatever the line said.
            (StoreOp::Append, Some((_, f, e, old))) => (f, e, [&old[..], data].concat().into()),
            (StoreOp::Prepend, Some((_, f, e, old))) => (f, e, [data, &old[..]].concat().into()),
            (op, _) => {
                if op == StoreOp::Cas {
                    self.counters.cas_hits += 1;
                }
                (flags, expiry, data.into())
            }
        };
        self.put(key, flags, expiry, value)
    }

    /// Stores `value` under `key`, making room by evicting the least recently used.
    fn put(&mut self, key: &[u8], flags: u32, expiry: Expiry, value: Rc<[u8]>) -> Outcome {
        self.unlink(key);
        if expiry == Expiry::Already {
            // Stored and at once expired: nothing is kept, and the old value is gone.
            return Outcome::Stored;
        }
        let need = cost(key, &value);
        if need > self.limit {
            return Outcome::NoMemory;
        }
        let now = Instant::now();
        while self.bytes + need > self.limit {
            let (_, oldest) = self.lru.first_key_value().expect("bytes are held by items");
            let oldest = oldest.clone();
            let item = self.unlink(&oldest).expect("the LRU names live keys");
            if self.dead(&item, now) {
                self.counters.reclaimed += 1;
            } else {
                self.counters.evictions += 1;
            }
        }
        self.tick += 1;
        self.next_cas += 1;
        self.bytes += need;
        self.counters.total_items += 1;
        self.lru.insert(self.tick, key.to_vec());
        let item = Item {
            flags,
            value,
            cas: self.next_cas - 1,
            expiry,
            stored: now,
            tick: self.tick,
        };
        self.map.insert(key.to_vec(), item);
        Outcome::Stored
    }

    /// A `set` refused for its size still removes the old value, as memcached does, so a
    /// stale one is not served after a failed update.
    pub fn drop_stale(&mut self, key: &[u8]) {
        self.unlink(key);
    }

    pub fn delete(&mut self, key: &[u8]) -> bool {
        let hit = self.live(key).is_some() && self.unlink(key).is_some();
        match hit {
            true => self.counters.delete_hits += 1,
            false => self.counters.delete_misses += 1,
        }
        hit
    }

    /// incr (wrapping at 2^64, as memcached) or decr (stopping at 0).
    pub fn arith(&mut self, key: &[u8], incr: bool, delta: u64) -> Arith {
        let Some(item) = self.live(key).map(|i| i.clone()) else {
            match incr {
                true => self.counters.incr_misses += 1,
                false => self.counters.decr_misses += 1,
            }
            return Arith::NotFound;
        };
        // memcached's strtoull: digits, which a decr may have left space-padded.
        let digits = std::str::from_utf8(&item.value).map(|s| s.trim_end_matches(' '));
        let Some(n) = digits.ok().and_then(|d| {
            (d.len() <= 20 && d.bytes().all(|b| b.is_ascii_digit()))
                .then(|| d.parse::<u64>().ok())
                .flatten()
        }) else {
            return Arith::NonNumeric;
        };
        let n = if incr {
            self.counters.incr_hits += 1;
            n.wrapping_add(delta)
        } else {
            self.counters.decr_hits += 1;
            n.saturating_sub(delta)
        };
        let (flags, expiry) = (item.flags, item.expiry);
        self.put(key, flags, expiry, n.to_string().into_bytes().into());
        Arith::Value(n)
    }

    pub fn touch(&mut self, key: &[u8], expiry: Expiry) -> bool {
        self.counters.cmd_touch += 1;
        let Some(item) = self.live(key) else {
            self.counters.touch_misses += 1;
            return false;
        };
        item.expiry = expiry;
        self.counters.touch_hits += 1;
        if expiry == Expiry::Already {
            self.unlink(key);
        }
        true
    }

    /// `flush_all [delay]`: everything stored until the moment `delay` names is gone from
    /// then on (now, for no delay, when the items are dropped at once).
    pub fn flush_all(&mut self, delay: i64) {
        self.counters.cmd_flush += 1;
        match self.clock.expiry(delay) {
            Expiry::At(at) => self.flush_at = Some(at),
            Expiry::Never | Expiry::Already => {
                // Everything goes now; what is stored after, even at this instant, stays.
                self.flush_at = None;
                self.counters.reclaimed += self.map.len() as u64;
                self.map.clear();
                self.lru.clear();
                self.bytes = 0;
            }
        }
    }

    /// Removes every expired or flushed item; how many went.
    pub fn sweep(&mut self) -> usize {
        let now = Instant::now();
        let dead: Vec<Vec<u8>> = self
            .map
            .iter()
            .filter(|(_, item)| self.dead(item, now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in &dead {
            self.unlink(key);
        }
        self.counters.reclaimed += dead.len() as u64;
        dead.len()
    }
}
