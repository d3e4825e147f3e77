//! The store's content hash and its records' checksum: 64-bit FNV-1a, written here (a
//! build cache keyed by it trusts its peers; a registry facing strangers would use SHA-256),
//! and the hashes' 16-digit hex form on the wire.

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// An FNV-1a hash fed in pieces, as a blob streams in.
#[derive(Clone, Copy, Debug)]
pub struct Hasher(u64);

impl Hasher {
    pub fn new() -> Hasher {
        Hasher(OFFSET)
    }

    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(PRIME);
        }
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// The hash of `bytes` in one go.
pub fn hash(bytes: &[u8]) -> u64 {
    let mut h = Hasher::new();
    h.update(bytes);
    h.finish()
}

/// A hash as the protocol writes it: 16 lowercase hex digits.
pub fn to_hex(h: u64) -> String {
    format!("{h:016x}")
}

/// A hash as the protocol reads it; `None` unless exactly 16 hex digits.
pub fn from_hex(s: &str) -> Option<u64> {
    if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}
