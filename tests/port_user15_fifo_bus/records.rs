//! Cutting the control FIFO's byte stream into records: newline-terminated, at most
//! [`MAX_RECORD`] bytes. A longer one (a client writing more than `PIPE_BUF` at once, whose
//! write the kernel may split and mix with others) is skipped to its newline and reported
//! with its head, so that the stream goes on for everyone else. Memory stays bounded by
//! one record, whatever a client writes.

use super::proto::MAX_RECORD;

/// How much of an oversized record is kept, to find its reply FIFO.
const HEAD: usize = 256;

#[derive(Debug, PartialEq, Eq)]
pub enum Record {
    /// A whole record, without its newline.
    Line(Vec<u8>),
    /// A record over `MAX_RECORD` bytes, skipped; its first bytes.
    Oversized(Vec<u8>),
}

#[derive(Debug, Default)]
pub struct Records {
    buf: Vec<u8>,
    /// Skipping an oversized record to its newline: its head.
    skipping: Option<Vec<u8>>,
}

impl Records {
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<Record>) {
        while !bytes.is_empty() {
            match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let (line, rest) = (&bytes[..i], &bytes[i + 1..]);
                    bytes = rest;
                    if let Some(head) = self.skipping.take() {
                        out.push(Record::Oversized(head));
                    } else if self.buf.len() + line.len() + 1 > MAX_RECORD {
                        self.buf.extend_from_slice(line);
                        self.buf.truncate(HEAD);
                        out.push(Record::Oversized(std::mem::take(&mut self.buf)));
                    } else {
                        self.buf.extend_from_slice(line);
                        out.push(Record::Line(std::mem::take(&mut self.buf)));
                    }
                }
                None => {
                    if self.skipping.is_none() {
                        self.buf.extend_from_slice(bytes);
                        // MAX_RECORD bytes and no newline yet: too long whatever follows.
                        if self.buf.len() >= MAX_RECORD {
                            self.buf.truncate(HEAD);
                            self.skipping = Some(std::mem::take(&mut self.buf));
                        }
                    }
                    bytes = &[];
                }
            }
        }
    }

    /// Whether a record has begun and not ended.
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty() || self.skipping.is_some()
    }

    /// Drops a record begun and never ended (its writer gone); whether there was one.
    pub fn discard_partial(&mut self) -> bool {
        let had = self.has_partial();
        self.buf.clear();
        self.skipping = None;
        had
    }
}
