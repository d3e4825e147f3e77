//! The record as it lies in a segment file, and the scan that finds the records of a
//! segment's bytes again at recovery.
//!
//! A record is a 20-byte header and its payload:
//!
//! ```text
//! magic "SPQ1" | len: u32 LE | crc32: u32 LE | offset: u64 LE | payload (len bytes)
//! ```
//!
//! The CRC (IEEE, as zlib's) covers the offset's 8 bytes and the payload, so a record
//! copied to the wrong place fails as surely as a torn one. The magic starts with a byte
//! that is not zero: a hole punched by retention reads as zeros, and the first byte that is
//! not zero after it is where the first record kept begins.

/// What every record starts with.
pub const MAGIC: [u8; 4] = *b"SPQ1";
/// The header's length: magic, payload length, CRC, offset.
pub const HEADER: usize = 20;

/// CRC-32 (IEEE 802.3, reflected, as zlib's `crc32`), table-driven.
pub fn crc32(parts: &[&[u8]]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut crc = !0u32;
    for part in parts {
        for &b in *part {
            crc = TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
        }
    }
    !crc
}

/// Appends the record of `payload` at `offset` to `out`.
pub fn encode(offset: u64, payload: &[u8], out: &mut Vec<u8>) {
    let off = offset.to_le_bytes();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32(&[&off, payload]).to_le_bytes());
    out.extend_from_slice(&off);
    out.extend_from_slice(payload);
}

/// Checks the record at the start of `bytes`, which must be the one of `offset` and no
/// longer than `max_payload`: its payload, or why it is not a record.
pub fn decode(bytes: &[u8], offset: u64, max_payload: usize) -> Result<&[u8], String> {
    if bytes.len() < HEADER {
        return Err(format!("a torn header ({} of {HEADER} bytes)", bytes.len()));
    }
    if bytes[..4] != MAGIC {
        return Err(format!("no record magic (found {:02x?})", &bytes[..4]));
    }
    let len = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
    let crc = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
    let at = u64::from_le_bytes(bytes[12..20].try_into().unwrap());
    if len == 0 || len > max_payload {
        return Err(format!("a payload length of {len} bytes"));
    }
    if bytes.len() < HEADER + len {
        let have = bytes.len() - HEADER;
        return Err(format!("a torn payload ({have} of {len} bytes)"));
    }
    let payload = &bytes[HEADER..HEADER + len];
    if crc32(&[&bytes[12..20], payload]) != crc {
        return Err("a CRC mismatch".to_string());
    }
    if at != offset {
        return Err(format!("offset {at} where {offset} was due"));
    }
    Ok(payload)
}

/// What a segment's bytes hold, as [`scan`] found it.
#[derive(Debug, PartialEq)]
pub struct Scanned {
    /// The offset of the first record kept (after a punched hole, the first one found).
    pub first: u64,
    /// Where each record from `first` on begins.
    pub positions: Vec<u64>,
    /// Where the last whole record ends: what the file is cut back to.
    pub good_len: u64,
    /// Why the bytes from `good_len` on are no record, if there are any.
    pub problem: Option<String>,
}

/// Scans a segment's bytes whose records start at offset `base` (or later, after a hole
/// at its start): the records up to the first one that is torn or corrupt.
pub fn scan(bytes: &[u8], base: u64, max_payload: usize) -> Scanned {
    // Retention punched the consumed front: zeros up to the first record kept. A segment
    // of zeros only has no record left (retention always keeps the newest one).
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let mut pos = start;
    let mut positions = Vec::new();
    let mut first = base;
    let mut problem = None;
    // The first record kept names its own offset; from then on they must follow it.
    if bytes.len() - start >= HEADER && bytes[start..start + 4] == MAGIC {
        let named = u64::from_le_bytes(bytes[start + 12..start + 20].try_into().unwrap());
        if named >= base && decode(&bytes[start..], named, max_payload).is_ok() {
            first = named;
        }
    }
    while pos < bytes.len() {
        let offset = first + positions.len() as u64;
        match decode(&bytes[pos..], offset, max_payload) {
            Ok(payload) => {
                positions.push(pos as u64);
                pos += HEADER + payload.len();
            }
            Err(why) => {
                problem = Some(why);
                break;
            }
        }
    }
    if positions.is_empty() && start > 0 && problem.is_none() {
        // Nothing but a hole: keep it as it is.
        pos = bytes.len();
    }
    Scanned {
        first,
        positions,
        good_len: pos as u64,
        problem,
    }
}
