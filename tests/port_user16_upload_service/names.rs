//! What a stored file may be called, and the running hash its ETag is made of.

/// The longest name, in bytes after percent-decoding (most file systems' limit).
pub const MAX_NAME: usize = 255;

/// Why a name was refused (each a 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadName {
    Empty,
    TooLong,
    /// `%` not followed by two hex digits.
    BadEscape,
    /// `/` (also escaped as `%2F`), `..`, `.`, or a leading `.` (the uploads directory
    /// and other hidden files are not the clients').
    Traversal,
    /// NUL or another control character, or bytes that are not UTF-8.
    BadByte,
}

/// The file name that the path segment `raw` (what follows `/files/`) decodes to, checked
/// so that joining it to the storage directory can only name a file directly inside it.
pub fn decode_name(raw: &str) -> Result<String, BadName> {
    // A query is not part of the name.
    let raw = raw.split('?').next().unwrap().as_bytes();
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hex = raw.get(i + 1..i + 3).ok_or(BadName::BadEscape)?;
            let hex = std::str::from_utf8(hex).map_err(|_| BadName::BadEscape)?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(BadName::BadEscape);
            }
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    if out.is_empty() {
        return Err(BadName::Empty);
    }
    if out.len() > MAX_NAME {
        return Err(BadName::TooLong);
    }
    if out.contains(&b'/') || out[0] == b'.' {
        return Err(BadName::Traversal);
    }
    if out.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(BadName::BadByte);
    }
    String::from_utf8(out).map_err(|_| BadName::BadByte)
}

/// FNV-1a, 64 bits, fed as the bytes stream through.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(pub u64);

impl Fnv {
    pub const START: Fnv = Fnv(0xcbf2_9ce4_8422_2325);

    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// The hash as a strong entity tag, quotes included.
    pub fn etag(self) -> String {
        format!("\"{:016x}\"", self.0)
    }
}

/// The ETag of `bytes` at once (for the tests).
pub fn etag_of(bytes: &[u8]) -> String {
    let mut h = Fnv::START;
    h.update(bytes);
    h.etag()
}
