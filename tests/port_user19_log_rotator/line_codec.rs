//! The framing of a Unix stream client's bytes into log lines: a tokio-util `Decoder`
//! that cuts a line at `max` bytes instead of buffering it whole, as `svlogd` does. The
//! cut line is given out at once (flagged `cut`); the rest of it, up to its newline, is
//! read and thrown away without being held, so a client sending a mebibyte without a
//! newline costs the daemon `max` bytes, not a mebibyte.

use overlap::codec::{BytesMut, Decoder};

/// One line of a client, without its newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The line's bytes (at most the codec's `max`).
    pub bytes: Vec<u8>,
    /// Whether the line was longer than `max` and cut there.
    pub cut: bool,
}

/// Splits a byte stream at `\n`, cutting lines at `max` bytes.
#[derive(Debug)]
pub struct LogLineCodec {
    max: usize,
    /// Inside the tail of a cut line: bytes are dropped up to the next newline.
    discarding: bool,
}

impl LogLineCodec {
    /// A codec cutting lines at `max` bytes (`max > 0`).
    pub fn new(max: usize) -> LogLineCodec {
        assert!(max > 0);
        LogLineCodec {
            max,
            discarding: false,
        }
    }
}

impl Decoder for LogLineCodec {
    type Item = Line;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> std::io::Result<Option<Line>> {
        loop {
            let newline = src.chunk().iter().position(|&b| b == b'\n');
            if self.discarding {
                match newline {
                    Some(at) => {
                        src.advance(at + 1);
                        self.discarding = false;
                    }
                    None => {
                        // The whole buffer is the cut line's tail: dropped, not kept.
                        src.clear();
                        return Ok(None);
                    }
                }
                continue;
            }
            return Ok(match newline {
                Some(at) if at <= self.max => {
                    let line = src.split_to(at).to_vec();
                    src.advance(1);
                    Some(Line {
                        bytes: line,
                        cut: false,
                    })
                }
                // Longer than `max`, with or without its newline in sight yet.
                _ if src.len() > self.max => {
                    let line = src.split_to(self.max).to_vec();
                    self.discarding = true;
                    Some(Line {
                        bytes: line,
                        cut: true,
                    })
                }
                _ => None,
            });
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> std::io::Result<Option<Line>> {
        if let Some(line) = self.decode(src)? {
            return Ok(Some(line));
        }
        // A last line without its newline still counts (the client closed mid-line).
        if src.is_empty() || self.discarding {
            src.clear();
            return Ok(None);
        }
        let line = src.split().to_vec();
        Ok(Some(Line {
            bytes: line,
            cut: false,
        }))
    }
}
