//! The search for a chunk's delimiter that `LinesCodec` and `AnyDelimiterCodec` share:
//! bytes already searched are not searched again, and a chunk past the maximum is an
//! error after which the rest of it, up to its delimiter, is dropped.

use super::BytesMut;

/// Where a search for the next delimiter stands.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct DelimiterScan {
    /// Where to look for the delimiter next: the bytes before it were searched already.
    next_index: usize,
    pub(crate) max_length: usize,
    /// Past a too-long chunk: dropping bytes up to its delimiter.
    is_discarding: bool,
}

/// What a scan found.
pub(crate) enum Found {
    /// A chunk of this many bytes, its delimiter right after it.
    Chunk(usize),
    /// A chunk past the maximum: the caller reports it; the scan drops the rest of it.
    TooLong,
    /// No delimiter yet: more bytes are needed.
    Nothing,
}

impl DelimiterScan {
    pub(crate) fn new(max_length: usize) -> DelimiterScan {
        DelimiterScan {
            next_index: 0,
            max_length,
            is_discarding: false,
        }
    }

    /// Searches `buf` with `find` (the offset of the first delimiter in a slice, if any),
    /// dropping what a too-long chunk left. A found chunk stays in `buf` for the caller to
    /// take, with its delimiter.
    pub(crate) fn scan(
        &mut self,
        buf: &mut BytesMut,
        find: impl Fn(&[u8]) -> Option<usize>,
    ) -> Found {
        loop {
            // Search no further than one byte past the maximum: that much without a
            // delimiter is too long already.
            let read_to = self.max_length.saturating_add(1).min(buf.len());
            let found = find(&buf[self.next_index..read_to]);
            match (self.is_discarding, found) {
                (true, Some(offset)) => {
                    buf.advance(self.next_index + offset + 1);
                    self.is_discarding = false;
                    self.next_index = 0;
                }
                (true, None) => {
                    buf.advance(read_to);
                    self.next_index = 0;
                    if buf.is_empty() {
                        return Found::Nothing;
                    }
                }
                (false, Some(offset)) => {
                    let end = self.next_index + offset;
                    self.next_index = 0;
                    return Found::Chunk(end);
                }
                (false, None) if buf.len() > self.max_length => {
                    self.is_discarding = true;
                    return Found::TooLong;
                }
                (false, None) => {
                    self.next_index = read_to;
                    return Found::Nothing;
                }
            }
        }
    }

    /// Forgets what was searched (at the end of the input).
    pub(crate) fn reset(&mut self) {
        self.next_index = 0;
    }
}

/// The offset of the first `needle` in `haystack`: eight bytes at a time (a word whose
/// bytes are all unlike `needle` is skipped with one test), where a byte-by-byte search
/// made short lines cost three times tokio-util's `memchr`.
pub(crate) fn find_byte(needle: u8, haystack: &[u8]) -> Option<usize> {
    const LOW: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let repeated = u64::from_ne_bytes([needle; 8]);
    let mut words = haystack.chunks_exact(8);
    let mut at = 0;
    for word in &mut words {
        let bytes: [u8; 8] = word.try_into().expect("chunks_exact gives 8 bytes");
        // A byte of `x` is zero where the word holds `needle`; this is nonzero then.
        let x = u64::from_ne_bytes(bytes) ^ repeated;
        if x.wrapping_sub(LOW) & !x & HIGH != 0 {
            return word.iter().position(|&b| b == needle).map(|i| at + i);
        }
        at += 8;
    }
    let rest = words.remainder();
    rest.iter().position(|&b| b == needle).map(|i| at + i)
}

#[cfg(test)]
mod tests {
    use super::find_byte;

    #[test]
    fn find_byte_agrees_with_a_plain_search_at_every_offset_and_length() {
        let hay: Vec<u8> = (0..200u32).map(|i| (i * 37 % 251) as u8).collect();
        for len in 0..hay.len() {
            for needle in [b'\n', 0, 0x80, 0xff, hay[len / 2]] {
                let slice = &hay[..len];
                assert_eq!(
                    find_byte(needle, slice),
                    slice.iter().position(|&b| b == needle),
                    "needle {needle} in {len} bytes"
                );
            }
        }
    }
}
