//! The wire format: the peers' RPCs (RequestVote, AppendEntries with a batch of entries,
//! InstallSnapshot) and their replies as length-prefixed binary frames, a `Decoder` and
//! `Encoder` for `overlap::codec::Framed`, and the checksum the files use.

use std::collections::BTreeMap;
use std::io;

use overlap::codec::{BytesMut, Decoder, Encoder};

/// The largest frame body a peer accepts (a snapshot of the tests' state fits easily).
pub const MAX_FRAME: usize = 1 << 20;

/// What a log entry does to the state machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// A new leader's first entry, committing everything before it.
    Noop,
    Put(String, String),
    /// A read: answered when applied, so it sees every write committed before it.
    Get(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub term: u64,
    pub cmd: Command,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Vote {
        term: u64,
        candidate: u8,
        last_index: u64,
        last_term: u64,
    },
    Append {
        term: u64,
        leader: u8,
        prev_index: u64,
        prev_term: u64,
        entries: Vec<Entry>,
        commit: u64,
    },
    Snapshot {
        term: u64,
        leader: u8,
        last_index: u64,
        last_term: u64,
        data: Vec<u8>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    Vote {
        term: u64,
        granted: bool,
    },
    /// `index`: on success the last index matched; on failure the follower's hint (the
    /// index before the first one the leader should try next).
    Append {
        term: u64,
        success: bool,
        index: u64,
    },
    Snapshot {
        term: u64,
        last_index: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    Req(Request),
    Resp(Response),
}

const VOTE: u8 = 1;
const APPEND: u8 = 2;
const SNAPSHOT: u8 = 3;
const VOTE_R: u8 = 11;
const APPEND_R: u8 = 12;
const SNAPSHOT_R: u8 = 13;

/// FNV-1a, 32 bits: the checksum of log records, the meta file and snapshots.
pub fn checksum(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in bytes {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

pub fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// Reads numbers and strings from a slice, every read checked.
pub struct Reader<'a>(pub &'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.0.len() < n {
            return Err(bad(format!("{n} bytes wanted, {} left", self.0.len())));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    pub fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }
    pub fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }
    pub fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }
    pub fn bytes(&mut self) -> io::Result<Vec<u8>> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    pub fn string(&mut self) -> io::Result<String> {
        String::from_utf8(self.bytes()?).map_err(|_| bad("a string not UTF-8"))
    }
    pub fn end(&self) -> io::Result<()> {
        match self.0.len() {
            0 => Ok(()),
            n => Err(bad(format!("{n} bytes after the end"))),
        }
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

pub fn put_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&n.to_be_bytes());
}

pub fn encode_entry(out: &mut Vec<u8>, e: &Entry) {
    put_u64(out, e.term);
    match &e.cmd {
        Command::Noop => out.push(0),
        Command::Put(k, v) => {
            out.push(1);
            put_bytes(out, k.as_bytes());
            put_bytes(out, v.as_bytes());
        }
        Command::Get(k) => {
            out.push(2);
            put_bytes(out, k.as_bytes());
        }
    }
}

pub fn decode_entry(r: &mut Reader) -> io::Result<Entry> {
    let term = r.u64()?;
    let cmd = match r.u8()? {
        0 => Command::Noop,
        1 => Command::Put(r.string()?, r.string()?),
        2 => Command::Get(r.string()?),
        t => return Err(bad(format!("command type {t}"))),
    };
    Ok(Entry { term, cmd })
}

/// The state machine as a snapshot's bytes.
pub fn encode_state(state: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(state.len() as u32).to_be_bytes());
    for (k, v) in state {
        put_bytes(&mut out, k.as_bytes());
        put_bytes(&mut out, v.as_bytes());
    }
    out
}

pub fn decode_state(bytes: &[u8]) -> io::Result<BTreeMap<String, String>> {
    let mut r = Reader(bytes);
    let n = r.u32()?;
    let mut state = BTreeMap::new();
    for _ in 0..n {
        state.insert(r.string()?, r.string()?);
    }
    r.end()?;
    Ok(state)
}

fn encode_body(frame: &Frame, out: &mut Vec<u8>) {
    match frame {
        Frame::Req(Request::Vote {
            term,
            candidate,
            last_index,
            last_term,
        }) => {
            out.push(VOTE);
            put_u64(out, *term);
            out.push(*candidate);
            put_u64(out, *last_index);
            put_u64(out, *last_term);
        }
        Frame::Req(Request::Append {
            term,
            leader,
            prev_index,
            prev_term,
            entries,
            commit,
        }) => {
            out.push(APPEND);
            put_u64(out, *term);
            out.push(*leader);
            put_u64(out, *prev_index);
            put_u64(out, *prev_term);
            put_u64(out, *commit);
            out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
            for e in entries {
                encode_entry(out, e);
            }
        }
        Frame::Req(Request::Snapshot {
            term,
            leader,
            last_index,
            last_term,
            data,
        }) => {
            out.push(SNAPSHOT);
            put_u64(out, *term);
            out.push(*leader);
            put_u64(out, *last_index);
            put_u64(out, *last_term);
            put_bytes(out, data);
        }
        Frame::Resp(Response::Vote { term, granted }) => {
            out.push(VOTE_R);
            put_u64(out, *term);
            out.push(*granted as u8);
        }
        Frame::Resp(Response::Append {
            term,
            success,
            index,
        }) => {
            out.push(APPEND_R);
            put_u64(out, *term);
            out.push(*success as u8);
            put_u64(out, *index);
        }
        Frame::Resp(Response::Snapshot { term, last_index }) => {
            out.push(SNAPSHOT_R);
            put_u64(out, *term);
            put_u64(out, *last_index);
        }
    }
}

fn flag(r: &mut Reader) -> io::Result<bool> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        b => Err(bad(format!("flag {b}"))),
    }
}

pub fn decode_body(body: &[u8]) -> io::Result<Frame> {
    let mut r = Reader(body);
    let frame = match r.u8()? {
        VOTE => Frame::Req(Request::Vote {
            term: r.u64()?,
            candidate: r.u8()?,
            last_index: r.u64()?,
            last_term: r.u64()?,
        }),
        APPEND => {
            let (term, leader, prev_index, prev_term, commit) =
                (r.u64()?, r.u8()?, r.u64()?, r.u64()?, r.u64()?);
            let n = r.u32()? as usize;
            if n > body.len() {
                return Err(bad(format!("{n} entries in {} bytes", body.len())));
            }
            let entries = (0..n)
                .map(|_| decode_entry(&mut r))
                .collect::<io::Result<_>>()?;
            Frame::Req(Request::Append {
                term,
                leader,
                prev_index,
                prev_term,
                entries,
                commit,
            })
        }
        SNAPSHOT => Frame::Req(Request::Snapshot {
            term: r.u64()?,
            leader: r.u8()?,
            last_index: r.u64()?,
            last_term: r.u64()?,
            data: r.bytes()?,
        }),
        VOTE_R => Frame::Resp(Response::Vote {
            term: r.u64()?,
            granted: flag(&mut r)?,
        }),
        APPEND_R => Frame::Resp(Response::Append {
            term: r.u64()?,
            success: flag(&mut r)?,
            index: r.u64()?,
        }),
        SNAPSHOT_R => Frame::Resp(Response::Snapshot {
            term: r.u64()?,
            last_index: r.u64()?,
        }),
        t => return Err(bad(format!("frame type {t}"))),
    };
    r.end()?;
    Ok(frame)
}

/// `[u32 length][body]`, the body a type byte and the fields, all big-endian.
#[derive(Debug, Default)]
pub struct RaftCodec;

impl Decoder for RaftCodec {
    type Item = Frame;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Frame>> {
        if src.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes(src[..4].try_into().unwrap()) as usize;
        if len == 0 || len > MAX_FRAME {
            return Err(bad(format!("frame length {len}")));
        }
        if src.len() < 4 + len {
            src.reserve(4 + len - src.len());
            return Ok(None);
        }
        src.advance(4);
        let body = src.split_to(len);
        decode_body(&body).map(Some)
    }
}

impl Encoder<Frame> for RaftCodec {
    type Error = io::Error;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> io::Result<()> {
        let mut body = Vec::new();
        encode_body(&frame, &mut body);
        dst.extend_from_slice(&(body.len() as u32).to_be_bytes());
        dst.extend_from_slice(&body);
        Ok(())
    }
}

/// A frame's bytes, for tests that write frames by hand.
pub fn frame_bytes(frame: &Frame) -> Vec<u8> {
    let mut dst = BytesMut::new();
    RaftCodec.encode(frame.clone(), &mut dst).unwrap();
    dst.to_vec()
}
