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

    /// Searches `buf` for a byte that `is_delimiter`, dropping what a too-long chunk left.
    /// A found chunk stays in `buf` for the caller to take, with its delimiter.
    pub(crate) fn scan(&mut self, buf: &mut BytesMut, is_delimiter: impl Fn(u8) -> bool) -> Found {
        loop {
            // Search no further than one byte past the maximum: that much without a
            // delimiter is too long already.
            let read_to = self.max_length.saturating_add(1).min(buf.len());
            let found = buf[self.next_index..read_to]
                .iter()
                .position(|&b| is_delimiter(b));
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
