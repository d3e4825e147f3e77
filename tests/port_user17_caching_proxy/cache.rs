//! The cache's index: entries by URL (a list of variants when the origin says `Vary`), each
//! with its body file, its fill's progress on a `watch` channel, and its freshness; what
//! the proxy may store (admission), and the size cap kept by evicting the least recently
//! used complete entries (unlinked: readers still streaming one keep its open file).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use overlap::fs::PositionalFile;
use overlap::sync::watch;
use overlap::time::Instant;

use crate::http::{self, header, Response};

/// Where an entry's fill is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum State {
    /// The origin's head has not come yet: requests wait for it (coalesced).
    Waiting,
    /// The head is known; `written` body bytes are in the file.
    Filling,
    Complete,
    /// The origin failed mid-body (or the fill was stopped): the entry is gone.
    Failed,
    /// The origin's response may not be stored: waiters fetch for themselves.
    Uncacheable,
}

/// An entry's fill, as its readers follow it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    pub state: State,
    pub written: u64,
}

/// A stored response: its head, its body's file and length, and its freshness.
#[derive(Clone)]
pub struct Stored {
    pub headers: Vec<(String, String)>,
    pub len: u64,
    pub file: PositionalFile,
    pub path: PathBuf,
    pub stored_at: Instant,
    pub lifetime: Duration,
    /// The header the origin varies on, lowercased, and this variant's value of it.
    pub vary: Option<(String, Option<String>)>,
}

impl Stored {
    pub fn age(&self) -> Duration {
        Instant::now().saturating_duration_since(self.stored_at)
    }

    pub fn is_fresh(&self) -> bool {
        self.age() < self.lifetime
    }

    /// Whether the origin gave a validator, so a stale entry can be revalidated.
    pub fn has_validator(&self) -> bool {
        header(&self.headers, "etag").is_some() || header(&self.headers, "last-modified").is_some()
    }
}

/// One cached response (or one being fetched).
pub struct Entry {
    pub id: u64,
    pub url: String,
    pub stored: RefCell<Option<Stored>>,
    pub progress: watch::Sender<Progress>,
    last_used: Cell<u64>,
    readers: Cell<usize>,
}

impl Entry {
    pub fn stored(&self) -> Option<Stored> {
        self.stored.borrow().clone()
    }

    pub fn state(&self) -> State {
        self.progress.borrow().state
    }

    /// Whether this entry answers a request with `headers` (one whose head is not known
    /// yet might: the request waits and asks again).
    pub fn matches(&self, headers: &[(String, String)]) -> bool {
        match &*self.stored.borrow() {
            Some(Stored {
                vary: Some((name, value)),
                ..
            }) => header(headers, name) == value.as_deref(),
            _ => true,
        }
    }

    /// Counts a reader until the guard is dropped.
    pub fn reader(self: &Rc<Self>) -> Reader {
        self.readers.set(self.readers.get() + 1);
        Reader(self.clone())
    }
}

/// A reader of an entry: counted while it lives.
pub struct Reader(Rc<Entry>);

impl Drop for Reader {
    fn drop(&mut self) {
        self.0.readers.set(self.0.readers.get() - 1);
    }
}

/// What the proxy counts.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stats {
    pub hits: u64,
    pub misses: u64,
    pub coalesced: u64,
    pub revalidated: u64,
    pub passes: u64,
    pub evictions: u64,
    pub failed_fills: u64,
    pub bad_requests: u64,
}

/// Why a response is stored, and for how long it is fresh.
pub struct Admit {
    pub len: u64,
    pub lifetime: Duration,
    pub vary: Option<(String, Option<String>)>,
}

/// The freshness lifetime `headers` give (RFC 9111 4.2.1): `no-cache` is none, then
/// `max-age`, then `Expires` minus `Date` (an `Expires` that does not parse is in the past).
pub fn lifetime(headers: &[(String, String)]) -> Duration {
    let cc = http::cache_control(headers);
    let secs = if cc.no_cache {
        0
    } else if let Some(age) = cc.max_age {
        age
    } else if let Some(expires) = header(headers, "expires") {
        let date = header(headers, "date").and_then(http::parse_http_date);
        match (http::parse_http_date(expires), date) {
            (Some(e), Some(d)) => e.saturating_sub(d),
            _ => 0,
        }
    } else {
        0
    };
    Duration::from_secs(secs)
}

/// The index and the cap.
pub struct Cache {
    pub dir: PathBuf,
    pub cap: u64,
    index: RefCell<HashMap<String, Vec<Rc<Entry>>>>,
    used: Cell<u64>,
    tick: Cell<u64>,
    next_id: Cell<u64>,
    pub stats: RefCell<Stats>,
}

impl Cache {
    pub fn new(dir: &Path, cap: u64) -> Cache {
        Cache {
            dir: dir.to_path_buf(),
            cap,
            index: RefCell::default(),
            used: Cell::new(0),
            tick: Cell::new(0),
            next_id: Cell::new(1),
            stats: RefCell::default(),
        }
    }

    pub fn count(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut self.stats.borrow_mut());
    }

    /// Bytes of the entries in the index (not counting unlinked files still read).
    pub fn used(&self) -> u64 {
        self.used.get()
    }

    /// The entry answering `url` with these request headers, touched for the LRU; one
    /// whose fill goes on (or waits for its head) counts too.
    pub fn lookup(&self, url: &str, headers: &[(String, String)]) -> Option<Rc<Entry>> {
        let index = self.index.borrow();
        let found = index.get(url)?.iter().find(|e| e.matches(headers))?.clone();
        self.tick.set(self.tick.get() + 1);
        found.last_used.set(self.tick.get());
        Some(found)
    }

    /// A new entry for `url`, waiting for the origin's head, in the index at once so that
    /// requests for it meanwhile wait for this fetch.
    pub fn insert_waiting(&self, url: &str) -> Rc<Entry> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        self.tick.set(self.tick.get() + 1);
        let entry = Rc::new(Entry {
            id,
            url: url.to_string(),
            stored: RefCell::new(None),
            progress: watch::Sender::new(Progress {
                state: State::Waiting,
                written: 0,
            }),
            last_used: Cell::new(self.tick.get()),
            readers: Cell::new(0),
        });
        let mut index = self.index.borrow_mut();
        index
            .entry(url.to_string())
            .or_default()
            .push(entry.clone());
        entry
    }

    /// The body file for entry `id`.
    pub fn body_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id}.body"))
    }

    /// Whether (and how) `resp`, the answer to a request with `req_headers`, may be stored.
    pub fn admit(
        &self,
        resp: &Response,
        req_headers: &[(String, String)],
    ) -> Result<Admit, &'static str> {
        if resp.status != 200 {
            return Err("not a 200");
        }
        let cc = http::cache_control(&resp.headers);
        if cc.no_store || cc.private {
            return Err("no-store or private");
        }
        let len = match http::content_length(&resp.headers) {
            Ok(Some(len)) => len,
            _ => return Err("no Content-Length"),
        };
        if len > self.cap {
            return Err("larger than the cache");
        }
        let vary = match header(&resp.headers, "vary").map(str::trim) {
            None => None,
            Some(v) if v == "*" || v.contains(',') => return Err("Vary on more than one header"),
            Some(name) => {
                let name = name.to_ascii_lowercase();
                let value = header(req_headers, &name).map(str::to_string);
                Some((name, value))
            }
        };
        let lifetime = lifetime(&resp.headers);
        let validator = header(&resp.headers, "etag").is_some()
            || header(&resp.headers, "last-modified").is_some();
        if lifetime.is_zero() && !validator {
            return Err("never fresh and no validator");
        }
        Ok(Admit {
            len,
            lifetime,
            vary,
        })
    }

    /// Gives `entry` its head and file, and makes room for its `len` bytes by evicting
    /// the least recently used complete entries (never one still filling).
    pub fn publish(&self, entry: &Rc<Entry>, stored: Stored) {
        let len = stored.len;
        *entry.stored.borrow_mut() = Some(stored);
        entry.progress.send_modify(|p| p.state = State::Filling);
        self.used.set(self.used.get() + len);
        while self.used.get() > self.cap {
            let victim = self
                .index
                .borrow()
                .values()
                .flatten()
                .filter(|e| e.state() == State::Complete)
                .min_by_key(|e| e.last_used.get())
                .cloned();
            let Some(victim) = victim else { break };
            self.remove(&victim);
            self.count(|s| s.evictions += 1);
        }
    }

    /// Takes `entry` out of the index and unlinks its file: readers with the file open read
    /// on; the blocks are freed when the last of them closes it.
    pub fn remove(&self, entry: &Rc<Entry>) {
        let mut index = self.index.borrow_mut();
        let Some(list) = index.get_mut(&entry.url) else {
            return;
        };
        let before = list.len();
        list.retain(|e| !Rc::ptr_eq(e, entry));
        if list.len() == before {
            return;
        }
        if list.is_empty() {
            index.remove(&entry.url);
        }
        if let Some(stored) = &*entry.stored.borrow() {
            self.used.set(self.used.get() - stored.len);
            // An unlink is a metadata operation; from sync code (eviction inside `publish`,
            // a fill's drop guard) std's is the one to call.
            let _ = std::fs::remove_file(&stored.path);
        }
    }

    /// Ends `entry` with `state` (`Failed` or `Uncacheable`): out of the index, its file
    /// unlinked, its waiters and readers told.
    pub fn end(&self, entry: &Rc<Entry>, state: State) {
        self.remove(entry);
        entry.progress.send_modify(|p| p.state = state);
    }

    /// Entries in the index, by URL, with their readers (for the tests).
    pub fn entries(&self) -> Vec<(String, State, usize)> {
        let mut all: Vec<_> = self
            .index
            .borrow()
            .values()
            .flatten()
            .map(|e| (e.url.clone(), e.state(), e.readers.get()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}
