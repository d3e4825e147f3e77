//! Content-defined chunking with a gear rolling hash, and the chunks' 128-bit content hash
//! (two FNV-1a passes with different bases, each finished by a splitmix64 mix).
//!
//! The gear hash shifts left one bit per byte and adds a per-byte random constant, so a
//! byte's influence leaves the hash after 64 bytes: a cut depends only on the last 64
//! bytes, and an edit moves at most the cuts just after it. A cut is made where the hash's
//! top `bits` bits are all zero (one chance in `2^bits`), never before `min` bytes and
//! always at `max`.

use std::fmt;

/// The chunker's sizes: no chunk is shorter than `min` (but a file's last one), none longer
/// than `max`, and on random data they average about `min + 2^bits`.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub min: usize,
    pub bits: u32,
    pub max: usize,
}

impl Params {
    /// 2 KiB .. 64 KiB, about 10 KiB on average.
    pub const DEFAULT: Params = Params {
        min: 2 * 1024,
        bits: 13,
        max: 64 * 1024,
    };
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The gear table: one random 64-bit constant per byte value.
fn gear() -> &'static [u64; 256] {
    static GEAR: std::sync::OnceLock<[u64; 256]> = std::sync::OnceLock::new();
    GEAR.get_or_init(|| std::array::from_fn(|i| splitmix(0x6765_6172 ^ i as u64)))
}

/// Where the first chunk of `data` ends, if `data` holds a whole one: a cut, or `max`
/// bytes. At the end of the input (`eof`), whatever is left is the last chunk.
pub fn next_cut(data: &[u8], p: Params, eof: bool) -> Option<usize> {
    let table = gear();
    let mask = !0u64 << (64 - p.bits);
    let mut h = 0u64;
    let end = data.len().min(p.max);
    // The hash needs only the 64 bytes before the earliest cut.
    let start = p.min.saturating_sub(64);
    for (i, &b) in data[..end].iter().enumerate().skip(start) {
        h = (h << 1).wrapping_add(table[b as usize]);
        if i + 1 >= p.min && h & mask == 0 {
            return Some(i + 1);
        }
    }
    if end == p.max || (eof && !data.is_empty()) {
        Some(end)
    } else {
        None
    }
}

/// All the cuts of a whole buffer, as chunk lengths (none for empty input).
pub fn chunk_lengths(mut data: &[u8], p: Params) -> Vec<usize> {
    let mut out = Vec::new();
    while let Some(n) = next_cut(data, p, true) {
        out.push(n);
        data = &data[n..];
    }
    out
}

/// A chunk's content hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkId(pub [u64; 2]);

impl ChunkId {
    pub fn of(data: &[u8]) -> ChunkId {
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let (mut a, mut b) = (
            0xcbf2_9ce4_8422_2325u64,
            0x8422_2325_cbf2_9ce4u64 ^ data.len() as u64,
        );
        for &x in data {
            a = (a ^ x as u64).wrapping_mul(PRIME);
            b = (b ^ (x as u64).wrapping_add(0x5b)).wrapping_mul(PRIME);
        }
        ChunkId([splitmix(a), splitmix(b ^ a.rotate_left(17))])
    }

    pub fn parse(s: &str) -> Option<ChunkId> {
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let hi = u64::from_str_radix(&s[..16], 16).ok()?;
        let lo = u64::from_str_radix(&s[16..], 16).ok()?;
        Some(ChunkId([hi, lo]))
    }
}

impl fmt::Display for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}{:016x}", self.0[0], self.0[1])
    }
}

impl fmt::Debug for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// The chunker's own test, beside it.
#[test]
fn the_chunker_cuts_within_bounds_and_by_content() {
    let p = Params::DEFAULT;
    let data = (0..2 << 20).map(|i| splitmix(i) as u8).collect::<Vec<u8>>();
    let lens = chunk_lengths(&data, p);
    assert_eq!(lens.iter().sum::<usize>(), data.len());
    let (last, rest) = lens.split_last().unwrap();
    assert!(
        rest.iter().all(|&n| (p.min..=p.max).contains(&n)),
        "{lens:?}"
    );
    assert!(*last <= p.max);
    let mean = data.len() / lens.len();
    assert!((6 << 10..16 << 10).contains(&mean), "mean chunk {mean}");
    // Three bytes inserted near the start: the cuts after the first few are the same.
    let mut edited = data[..5000].to_vec();
    edited.extend_from_slice(b"new");
    edited.extend_from_slice(&data[5000..]);
    let after = chunk_lengths(&edited, p);
    let common = lens
        .iter()
        .rev()
        .zip(after.iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    assert!(
        common >= lens.len() - 2,
        "only {common} of {} cuts kept",
        lens.len()
    );
    // All zeros (no cut ever found): chunks of exactly `max`.
    assert_eq!(
        chunk_lengths(&vec![0; 200 << 10], p),
        [64 << 10, 64 << 10, 64 << 10, 8 << 10]
    );
    assert!(chunk_lengths(&[], p).is_empty());
    // The id: 32 hex digits, parsed back; the content decides it.
    let id = ChunkId::of(b"chunk");
    assert_eq!(ChunkId::parse(&id.to_string()), Some(id));
    assert_ne!(ChunkId::of(b"chunk"), ChunkId::of(b"chunK"));
    assert_ne!(ChunkId::of(b""), ChunkId::of(b"\0"));
    assert_eq!(ChunkId::parse("xyz"), None);
}
