//! The on-disk encodings: the FNV-1a hashes used as checksums, the bloom filter, the
//! write-ahead log's records, an SST's data blocks, index entries and footer. Decoding
//! never panics on bad bytes: it gives `None`, and the caller names the file.

use std::collections::BTreeMap;

pub type Key = Vec<u8>;
/// `None` is a tombstone (a deletion).
pub type Value = Option<Vec<u8>>;
pub type MemTable = BTreeMap<Key, Value>;

/// FNV-1a, 32 bits: the checksum of every record, block, index, bloom filter and footer.
pub fn fnv32(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in bytes {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// FNV-1a, 64 bits: the bloom filter's two hashes are its halves.
pub fn fnv64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A bloom filter by double hashing, `k` probes over `bits`.
#[derive(Debug)]
pub struct Bloom {
    bits: Vec<u8>,
    k: u8,
}

impl Bloom {
    pub fn build<'a>(keys: impl ExactSizeIterator<Item = &'a [u8]>, bits_per_key: usize) -> Bloom {
        let nbits = (keys.len() * bits_per_key).max(64);
        let k = ((bits_per_key as f64 * 0.69) as u8).clamp(1, 30);
        let mut bloom = Bloom {
            bits: vec![0; nbits.div_ceil(8)],
            k,
        };
        for key in keys {
            for bit in bloom.probes(key) {
                bloom.bits[bit / 8] |= 1 << (bit % 8);
            }
        }
        bloom
    }

    fn probes(&self, key: &[u8]) -> impl Iterator<Item = usize> {
        let h = fnv64(key);
        let (h1, h2) = (h as u32, ((h >> 32) as u32) | 1);
        let nbits = self.bits.len() * 8;
        (0..self.k as u32).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) as usize) % nbits)
    }

    pub fn may_contain(&self, key: &[u8]) -> bool {
        self.probes(key)
            .all(|bit| self.bits[bit / 8] & (1 << (bit % 8)) != 0)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.k];
        out.extend_from_slice(&self.bits);
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Bloom> {
        let (&k, bits) = bytes.split_first()?;
        (k > 0 && !bits.is_empty()).then(|| Bloom {
            bits: bits.to_vec(),
            k,
        })
    }
}

/// A cursor over bytes that gives `None` instead of panicking when they run out.
pub struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    pub fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
    }
    pub fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
    }
    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

// ---- The write-ahead log: [len u32][fnv32 of payload][payload], payload
// [op u8: 1 put, 2 delete][key][value], key and value length-prefixed.

pub const RECORD_HEADER: usize = 8;

pub fn encode_record(out: &mut Vec<u8>, key: &[u8], value: &Value) {
    let mut payload = Vec::with_capacity(key.len() + 16);
    payload.push(if value.is_some() { 1 } else { 2 });
    put_bytes(&mut payload, key);
    put_bytes(&mut payload, value.as_deref().unwrap_or_default());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&fnv32(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
}

/// The records at the front of `log` that are whole and check, and the length they take:
/// the log is cut there (a torn or corrupt tail is what a crash mid-write leaves).
pub fn decode_records(log: &[u8]) -> (Vec<(Key, Value)>, usize) {
    let mut out = Vec::new();
    let mut good = 0;
    let mut r = Reader(log);
    while let Some((len, sum)) = r.u32().zip(r.u32()) {
        let Some(payload) = r.take(len as usize) else {
            break;
        };
        if fnv32(payload) != sum {
            break;
        }
        let mut p = Reader(payload);
        let rec = (|| {
            let op = p.u8()?;
            let key = p.bytes()?.to_vec();
            let val = p.bytes()?.to_vec();
            match (op, p.is_empty()) {
                (1, true) => Some((key, Some(val))),
                (2, true) => Some((key, None)),
                _ => None,
            }
        })();
        let Some(rec) = rec else { break };
        out.push(rec);
        good += RECORD_HEADER + len as usize;
    }
    (out, good)
}

// ---- SST data blocks: entries [key][tag u8: 1 put, 2 delete][value], then fnv32 of them.

pub fn encode_entry(out: &mut Vec<u8>, key: &[u8], value: &Value) {
    put_bytes(out, key);
    out.push(if value.is_some() { 1 } else { 2 });
    put_bytes(out, value.as_deref().unwrap_or_default());
}

pub fn seal_block(mut block: Vec<u8>) -> Vec<u8> {
    let sum = fnv32(&block);
    block.extend_from_slice(&sum.to_le_bytes());
    block
}

/// A block as read from disk: its checksum checked, its entries decoded (in order).
pub fn open_block(raw: &[u8]) -> Result<Vec<(Key, Value)>, &'static str> {
    let body_len = raw
        .len()
        .checked_sub(4)
        .ok_or("shorter than its checksum")?;
    let (body, sum) = raw.split_at(body_len);
    if fnv32(body) != u32::from_le_bytes(sum.try_into().unwrap()) {
        return Err("fails its checksum");
    }
    let mut r = Reader(body);
    let mut out: Vec<(Key, Value)> = Vec::new();
    while !r.is_empty() {
        let key = r.bytes().ok_or("an entry is cut short")?.to_vec();
        let tag = r.u8().ok_or("an entry is cut short")?;
        let val = r.bytes().ok_or("an entry is cut short")?.to_vec();
        if out.last().is_some_and(|(k, _)| *k >= key) {
            return Err("its keys are out of order");
        }
        out.push(match tag {
            1 => (key, Some(val)),
            2 => (key, None),
            _ => return Err("an entry has a bad tag"),
        });
    }
    Ok(out)
}

/// A data block's place in its table, and the keys it holds.
#[derive(Clone, Debug)]
pub struct IndexEntry {
    pub first: Key,
    pub last: Key,
    pub offset: u64,
    pub len: u32,
}

pub fn encode_index(entries: &[IndexEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        put_bytes(&mut out, &e.first);
        put_bytes(&mut out, &e.last);
        out.extend_from_slice(&e.offset.to_le_bytes());
        out.extend_from_slice(&e.len.to_le_bytes());
    }
    out
}

pub fn decode_index(bytes: &[u8]) -> Option<Vec<IndexEntry>> {
    let mut r = Reader(bytes);
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(IndexEntry {
            first: r.bytes()?.to_vec(),
            last: r.bytes()?.to_vec(),
            offset: r.u64()?,
            len: r.u32()?,
        });
    }
    Some(out)
}

/// The last 40 bytes of a table: where its index and bloom filter are, their checksums,
/// a magic number and the footer's own checksum.
pub const FOOTER: usize = 40;
const MAGIC: u32 = u32::from_le_bytes(*b"LSM1");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footer {
    pub index_off: u64,
    pub index_len: u32,
    pub bloom_off: u64,
    pub bloom_len: u32,
    pub index_sum: u32,
    pub bloom_sum: u32,
}

impl Footer {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FOOTER);
        out.extend_from_slice(&self.index_off.to_le_bytes());
        out.extend_from_slice(&self.index_len.to_le_bytes());
        out.extend_from_slice(&self.bloom_off.to_le_bytes());
        out.extend_from_slice(&self.bloom_len.to_le_bytes());
        out.extend_from_slice(&self.index_sum.to_le_bytes());
        out.extend_from_slice(&self.bloom_sum.to_le_bytes());
        out.extend_from_slice(&MAGIC.to_le_bytes());
        let sum = fnv32(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Footer, &'static str> {
        if bytes.len() != FOOTER {
            return Err("is too short for a footer");
        }
        let (body, sum) = bytes.split_at(FOOTER - 4);
        let mut r = Reader(body);
        let f = Footer {
            index_off: r.u64().unwrap(),
            index_len: r.u32().unwrap(),
            bloom_off: r.u64().unwrap(),
            bloom_len: r.u32().unwrap(),
            index_sum: r.u32().unwrap(),
            bloom_sum: r.u32().unwrap(),
        };
        if r.u32() != Some(MAGIC) {
            return Err("has no table footer (bad magic)");
        }
        if fnv32(body) != u32::from_le_bytes(sum.try_into().unwrap()) {
            return Err("has a footer that fails its checksum");
        }
        Ok(f)
    }
}
