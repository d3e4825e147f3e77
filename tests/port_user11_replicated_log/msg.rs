//! The wire messages, encoded by hand into the frames of a `LengthDelimitedCodec`, and the
//! crc32 (IEEE, written out as a tokio user without a crc crate would) that guards each
//! record on disk.

use std::io;

use overlap::codec::BytesMut;

/// A log entry: the term it was made in and the client's bytes. Its index is its place in
/// the log (the first entry is 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub term: u64,
    pub data: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    VoteReq {
        term: u64,
        candidate: u64,
        last_index: u64,
        last_term: u64,
    },
    VoteResp {
        term: u64,
        granted: bool,
    },
    AppendReq {
        term: u64,
        leader: u64,
        prev_index: u64,
        prev_term: u64,
        commit: u64,
        /// Every node holds the entries up to here: segments below it may go.
        compact_to: u64,
        entries: Vec<Entry>,
    },
    AppendResp {
        term: u64,
        success: bool,
        /// On success the follower's last index; on failure where to try next.
        index: u64,
    },
}

const VOTE_REQ: u8 = 1;
const VOTE_RESP: u8 = 2;
const APPEND_REQ: u8 = 3;
const APPEND_RESP: u8 = 4;

impl Msg {
    pub fn encode(&self) -> BytesMut {
        let mut b = BytesMut::with_capacity(64);
        match self {
            Msg::VoteReq {
                term,
                candidate,
                last_index,
                last_term,
            } => {
                b.put_u8(VOTE_REQ);
                for n in [term, candidate, last_index, last_term] {
                    b.put_u64(*n);
                }
            }
            Msg::VoteResp { term, granted } => {
                b.put_u8(VOTE_RESP);
                b.put_u64(*term);
                b.put_u8(*granted as u8);
            }
            Msg::AppendReq {
                term,
                leader,
                prev_index,
                prev_term,
                commit,
                compact_to,
                entries,
            } => {
                b.put_u8(APPEND_REQ);
                for n in [term, leader, prev_index, prev_term, commit, compact_to] {
                    b.put_u64(*n);
                }
                b.put_u32(entries.len() as u32);
                for e in entries {
                    b.put_u64(e.term);
                    b.put_u32(e.data.len() as u32);
                    b.put_slice(&e.data);
                }
            }
            Msg::AppendResp {
                term,
                success,
                index,
            } => {
                b.put_u8(APPEND_RESP);
                b.put_u64(*term);
                b.put_u8(*success as u8);
                b.put_u64(*index);
            }
        }
        b
    }

    /// Decodes one frame; a short frame is an error (bytes' `try_get_*`, which say how
    /// many bytes were asked for and how many were left), never a panic as `get_*`'s.
    pub fn decode(mut b: BytesMut) -> io::Result<Msg> {
        let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
        let msg = match b.try_get_u8()? {
            VOTE_REQ => Msg::VoteReq {
                term: b.try_get_u64()?,
                candidate: b.try_get_u64()?,
                last_index: b.try_get_u64()?,
                last_term: b.try_get_u64()?,
            },
            VOTE_RESP => Msg::VoteResp {
                term: b.try_get_u64()?,
                granted: b.try_get_u8()? != 0,
            },
            APPEND_REQ => {
                let (term, leader) = (b.try_get_u64()?, b.try_get_u64()?);
                let (prev_index, prev_term) = (b.try_get_u64()?, b.try_get_u64()?);
                let (commit, compact_to) = (b.try_get_u64()?, b.try_get_u64()?);
                let count = b.try_get_u32()? as usize;
                let mut entries = Vec::with_capacity(count.min(1024));
                for _ in 0..count {
                    let term = b.try_get_u64()?;
                    let len = b.try_get_u32()? as usize;
                    if b.remaining() < len {
                        return Err(bad("short entry"));
                    }
                    entries.push(Entry {
                        term,
                        data: b.copy_to_bytes(len),
                    });
                }
                Msg::AppendReq {
                    term,
                    leader,
                    prev_index,
                    prev_term,
                    commit,
                    compact_to,
                    entries,
                }
            }
            APPEND_RESP => Msg::AppendResp {
                term: b.try_get_u64()?,
                success: b.try_get_u8()? != 0,
                index: b.try_get_u64()?,
            },
            _ => return Err(bad("unknown message")),
        };
        if b.has_remaining() {
            return Err(bad("trailing bytes"));
        }
        Ok(msg)
    }
}

/// crc32 (IEEE 802.3, reflected, as zlib's), one byte at a time over a table made once.
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32_update(0, bytes)
}

/// Continues a crc32 over more bytes.
pub fn crc32_update(crc: u32, bytes: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, slot) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *slot = c;
        }
        t
    });
    let mut c = !crc;
    for &byte in bytes {
        c = table[((c ^ byte as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}
