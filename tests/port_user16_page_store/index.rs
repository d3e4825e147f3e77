//! The key → value index over the pages: a hash table whose directory page holds 256
//! bucket heads, each bucket a chain of pages packed with entries. `put`, `get` and
//! `delete` on the store (inside its open transaction), `get`s on a reader (committed
//! state), and a full check of the pages (`fsck`): every page is the directory, in exactly
//! one chain, or on the free list.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use super::page::{corrupt, fnv1a, Header, Kind, Page, BODY};
use super::pager::{PageStore, Reader};

pub const BUCKETS: usize = 256;
pub const MAX_KEY: usize = 255;
pub const MAX_VALUE: usize = 1024;
/// Pages one `put` or `delete` may change: header, directory, two bucket pages, one more.
const PAGES_PER_OP: usize = 5;
/// A bucket page's body: next page, entry count, bytes used, then the entries.
const ENTRIES_AT: usize = 8;
const ROOM: usize = BODY - ENTRIES_AT;

type Entries = Vec<(Vec<u8>, Vec<u8>)>;

pub fn bucket_of(key: &[u8]) -> usize {
    fnv1a(key) as usize % BUCKETS
}

/// A bucket page's next link and entries, each length checked against the page.
pub fn decode_bucket(page: &Page) -> io::Result<(u32, Entries)> {
    page.expect(Kind::Bucket)?;
    let (next, count, used) = (page.u32_at(0), page.u16_at(4), page.u16_at(6) as usize);
    let bad = |what: &str| corrupt(format!("page {}: bad bucket page: {what}", page.id()));
    if used > ROOM {
        return Err(bad("used past the page"));
    }
    let area = &page.body()[ENTRIES_AT..ENTRIES_AT + used];
    let mut entries = Vec::with_capacity(count as usize);
    let mut at = 0;
    for _ in 0..count {
        if area.len() - at < 4 {
            return Err(bad("an entry head past the used bytes"));
        }
        let klen = u16::from_le_bytes([area[at], area[at + 1]]) as usize;
        let vlen = u16::from_le_bytes([area[at + 2], area[at + 3]]) as usize;
        at += 4;
        if area.len() - at < klen + vlen {
            return Err(bad("an entry past the used bytes"));
        }
        let key = area[at..at + klen].to_vec();
        let value = area[at + klen..at + klen + vlen].to_vec();
        entries.push((key, value));
        at += klen + vlen;
    }
    if at != used {
        return Err(bad("used bytes left over"));
    }
    Ok((next, entries))
}

fn used(entries: &Entries) -> usize {
    entries.iter().map(|(k, v)| 4 + k.len() + v.len()).sum()
}

fn encode_bucket(page: &mut Page, next: u32, entries: &Entries) {
    page.reset(Kind::Bucket);
    page.set_u32(0, next);
    page.set_u16(4, entries.len() as u16);
    page.set_u16(6, used(entries) as u16);
    let mut at = ENTRIES_AT;
    for (k, v) in entries {
        let body = page.body_mut();
        body[at..at + 2].copy_from_slice(&(k.len() as u16).to_le_bytes());
        body[at + 2..at + 4].copy_from_slice(&(v.len() as u16).to_le_bytes());
        body[at + 4..at + 4 + k.len()].copy_from_slice(k);
        body[at + 4 + k.len()..at + 4 + k.len() + v.len()].copy_from_slice(v);
        at += 4 + k.len() + v.len();
    }
}

/// Where pages come from: the store (its cache and open transaction) or a reader.
#[allow(async_fn_in_trait)]
pub trait PageSource {
    async fn fetch(&mut self, id: u32) -> io::Result<Page>;
}

impl PageSource for PageStore {
    async fn fetch(&mut self, id: u32) -> io::Result<Page> {
        self.page(id).await
    }
}

impl PageSource for Reader {
    async fn fetch(&mut self, id: u32) -> io::Result<Page> {
        self.read_page(id).await
    }
}

/// Follows `key`'s bucket chain to its value.
pub async fn lookup<S: PageSource>(
    src: &mut S,
    header: &Header,
    key: &[u8],
) -> io::Result<Option<Vec<u8>>> {
    let dir = src.fetch(header.root).await?;
    dir.expect(Kind::Directory)?;
    let mut id = dir.u32_at(4 * bucket_of(key));
    let mut hops = 0;
    while id != 0 {
        hops += 1;
        if hops > header.page_count {
            return Err(corrupt(format!("bucket {} has a loop", bucket_of(key))));
        }
        let (next, entries) = decode_bucket(&src.fetch(id).await?)?;
        if let Some((_, v)) = entries.into_iter().find(|(k, _)| k == key) {
            return Ok(Some(v));
        }
        id = next;
    }
    Ok(None)
}

/// A bucket chain as (page, next, entries), first page first.
async fn chain(store: &mut PageStore, head: u32) -> io::Result<Vec<(Page, u32, Entries)>> {
    let mut out = Vec::new();
    let mut id = head;
    while id != 0 {
        if out.len() as u32 > store.header().page_count {
            return Err(corrupt(format!("page {head}: its bucket chain has a loop")));
        }
        let page = store.page(id).await?;
        let (next, entries) = decode_bucket(&page)?;
        id = next;
        out.push((page, next, entries));
    }
    Ok(out)
}

impl PageStore {
    pub async fn get(&mut self, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        let header = self.header();
        lookup(self, &header, key).await
    }

    /// Sets `key` to `value` in the open transaction.
    pub async fn put(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        if key.is_empty() || key.len() > MAX_KEY {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a key of {} bytes: keys have 1 to {MAX_KEY}", key.len()),
            ));
        }
        if value.len() > MAX_VALUE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a value of {} bytes: values have at most {MAX_VALUE}",
                    value.len()
                ),
            ));
        }
        self.reserve(PAGES_PER_OP)?;
        let mut dir = self.page(self.header().root).await?;
        dir.expect(Kind::Directory)?;
        let slot = 4 * bucket_of(key);
        let head = dir.u32_at(slot);
        let mut pages = chain(self, head).await?;
        let mut changed = BTreeSet::new();
        let mut existed = false;
        for (i, (_, _, entries)) in pages.iter_mut().enumerate() {
            if let Some(at) = entries.iter().position(|(k, _)| k == key) {
                entries.remove(at);
                changed.insert(i);
                existed = true;
            }
        }
        let need = 4 + key.len() + value.len();
        let entry = (key.to_vec(), value.to_vec());
        match pages.iter().position(|(_, _, e)| used(e) + need <= ROOM) {
            Some(i) => {
                pages[i].2.push(entry);
                changed.insert(i);
            }
            None => {
                let mut page = self.allocate(Kind::Bucket).await?;
                encode_bucket(&mut page, head, &vec![entry]);
                dir.set_u32(slot, page.id());
                self.write_page(page);
                self.write_page(dir);
            }
        }
        for i in changed {
            let (page, next, entries) = &mut pages[i];
            encode_bucket(page, *next, entries);
            self.write_page(page.clone());
        }
        if !existed {
            self.header.entries += 1;
        }
        Ok(())
    }

    /// Removes `key` in the open transaction; whether it was there. A bucket page left
    /// empty goes to the free list.
    pub async fn delete(&mut self, key: &[u8]) -> io::Result<bool> {
        self.reserve(PAGES_PER_OP)?;
        let mut dir = self.page(self.header().root).await?;
        dir.expect(Kind::Directory)?;
        let slot = 4 * bucket_of(key);
        let mut pages = chain(self, dir.u32_at(slot)).await?;
        let Some(i) = pages
            .iter()
            .position(|(_, _, e)| e.iter().any(|(k, _)| k == key))
        else {
            return Ok(false);
        };
        pages[i].2.retain(|(k, _)| k != key);
        self.header.entries -= 1;
        let (page, next, entries) = &mut pages[i];
        if !entries.is_empty() {
            encode_bucket(page, *next, entries);
            self.write_page(page.clone());
            return Ok(true);
        }
        let (id, next) = (page.id(), *next);
        if i == 0 {
            dir.set_u32(slot, next);
            self.write_page(dir);
        } else {
            let (prev, _, prev_entries) = &mut pages[i - 1];
            encode_bucket(prev, next, prev_entries);
            self.write_page(prev.clone());
        }
        self.free(id);
        Ok(true)
    }
}

impl Reader {
    /// The committed values of `keys`, all from one commit, and that commit's id.
    pub async fn get_many(&mut self, keys: &[&[u8]]) -> io::Result<(u64, Vec<Option<Vec<u8>>>)> {
        let lock = self.lock.clone();
        let _shared = lock.read().await;
        let header = self.header().await?;
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            values.push(lookup(self, &header, key).await?);
        }
        Ok((header.seq, values))
    }

    pub async fn get(&mut self, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        Ok(self.get_many(&[key]).await?.1.pop().unwrap())
    }
}

/// What [`fsck`] found.
#[derive(Debug, PartialEq, Eq)]
pub struct Fsck {
    pub map: BTreeMap<Vec<u8>, Vec<u8>>,
    pub bucket_pages: usize,
    pub free_pages: usize,
}

/// Reads every page the index and the free list reach, through `src`: fails unless each
/// page past the header is the directory, in exactly one chain, or free, every key is in
/// its own bucket once, and the header's entry count is right.
pub async fn fsck<S: PageSource>(src: &mut S, header: &Header) -> io::Result<Fsck> {
    let mut seen = BTreeSet::from([0, header.root]);
    let mut claim = |id: u32, what: &str| {
        if id >= header.page_count || !seen.insert(id) {
            Err(corrupt(format!(
                "page {id} ({what}) is out of range or reached twice"
            )))
        } else {
            Ok(())
        }
    };
    let dir = src.fetch(header.root).await?;
    dir.expect(Kind::Directory)?;
    let mut map = BTreeMap::new();
    let mut bucket_pages = 0;
    for b in 0..BUCKETS {
        let mut id = dir.u32_at(4 * b);
        while id != 0 {
            claim(id, "bucket")?;
            bucket_pages += 1;
            let (next, entries) = decode_bucket(&src.fetch(id).await?)?;
            for (k, v) in entries {
                if bucket_of(&k) != b || map.insert(k, v).is_some() {
                    return Err(corrupt(format!(
                        "page {id}: a key in the wrong bucket or twice"
                    )));
                }
            }
            id = next;
        }
    }
    let mut free_pages = 0;
    let mut id = header.free_head;
    while id != 0 {
        claim(id, "free")?;
        free_pages += 1;
        let page = src.fetch(id).await?;
        page.expect(Kind::Free)?;
        id = page.u32_at(0);
    }
    if seen.len() != header.page_count as usize {
        return Err(corrupt(format!(
            "{} of {} pages are reachable: the others leaked",
            seen.len(),
            header.page_count
        )));
    }
    if map.len() as u64 != header.entries {
        return Err(corrupt(format!(
            "the header counts {} keys, the index has {}",
            header.entries,
            map.len()
        )));
    }
    Ok(Fsck {
        map,
        bucket_pages,
        free_pages,
    })
}
