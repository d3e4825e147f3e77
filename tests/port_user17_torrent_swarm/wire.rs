//! The wire: the torrent's metadata with its FNV-1a 64 piece checksums, and the peer
//! messages with their own length-prefixed binary codec (`WireCodec`, an
//! `overlap::codec::{Decoder, Encoder}`): a 4-byte big-endian length, then an id byte and
//! the body. The handshake is the first frame each way.

use std::io;

use overlap::codec::{BytesMut, Decoder, Encoder};

/// Every request is for one block of this size (the last block of the file is shorter).
pub const BLOCK: u32 = 16 * 1024;
pub const PIECE: u32 = 64 * 1024;
/// The largest frame body: a piece message (id, index, begin) with one block.
pub const MAX_FRAME: usize = 9 + BLOCK as usize;

/// FNV-1a, 64 bits.
pub fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// What a ".torrent" holds: the length and a checksum per piece.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    pub total_len: u64,
    pub hashes: Vec<u64>,
}

impl Meta {
    pub fn of(data: &[u8]) -> Meta {
        Meta {
            total_len: data.len() as u64,
            hashes: data.chunks(PIECE as usize).map(fnv1a64).collect(),
        }
    }

    /// The torrent's identity: a checksum over the length and the piece checksums.
    pub fn info_hash(&self) -> u64 {
        let mut bytes = self.total_len.to_be_bytes().to_vec();
        for h in &self.hashes {
            bytes.extend_from_slice(&h.to_be_bytes());
        }
        fnv1a64(&bytes)
    }

    pub fn pieces(&self) -> usize {
        self.hashes.len()
    }

    pub fn piece_offset(&self, index: u32) -> u64 {
        index as u64 * PIECE as u64
    }

    pub fn piece_size(&self, index: u32) -> u32 {
        (self.total_len - self.piece_offset(index)).min(PIECE as u64) as u32
    }

    pub fn blocks_in(&self, index: u32) -> u32 {
        self.piece_size(index).div_ceil(BLOCK)
    }

    pub fn total_blocks(&self) -> u64 {
        (0..self.pieces() as u32)
            .map(|i| self.blocks_in(i) as u64)
            .sum()
    }

    /// The `n`th block of piece `index`.
    pub fn block(&self, index: u32, n: u32) -> Block {
        let begin = n * BLOCK;
        let len = (self.piece_size(index) - begin).min(BLOCK);
        Block { index, begin, len }
    }

    /// Whether `b` is exactly one of the torrent's blocks (requests and pieces must be).
    pub fn is_block(&self, b: Block) -> bool {
        (b.index as usize) < self.pieces()
            && b.begin % BLOCK == 0
            && b.begin < self.piece_size(b.index)
            && self.block(b.index, b.begin / BLOCK) == b
    }

    /// Where `b` lies in the file.
    pub fn offset(&self, b: Block) -> u64 {
        self.piece_offset(b.index) + b.begin as u64
    }
}

/// One block of a piece: what a request, a cancel and a piece message name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Block {
    pub index: u32,
    pub begin: u32,
    pub len: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    KeepAlive,
    Handshake {
        info_hash: u64,
        peer_id: u64,
    },
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    Have(u32),
    Bitfield(Vec<u8>),
    Request(Block),
    /// A whole piece message, as received (or sent from memory).
    Piece {
        index: u32,
        begin: u32,
        data: Vec<u8>,
    },
    /// A piece message's length, id, index and begin only: its `len` payload bytes follow
    /// outside the codec (`PositionalFile::send_to`).
    PieceHeader(Block),
    Cancel(Block),
}

const CHOKE: u8 = 0;
const UNCHOKE: u8 = 1;
const INTERESTED: u8 = 2;
const NOT_INTERESTED: u8 = 3;
const HAVE: u8 = 4;
const BITFIELD: u8 = 5;
const REQUEST: u8 = 6;
const PIECE_ID: u8 = 7;
const CANCEL: u8 = 8;
const HANDSHAKE: u8 = 20;

/// The codec of every frame; a decoding error is `InvalidData` naming what was wrong,
/// and ends the connection (and only it).
#[derive(Debug, Default)]
pub struct WireCodec;

fn bad(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

fn block_of(body: &mut BytesMut) -> Block {
    Block {
        index: body.get_u32(),
        begin: body.get_u32(),
        len: body.get_u32(),
    }
}

impl Decoder for WireCodec {
    type Item = Msg;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Msg>> {
        if src.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes(src.chunk()[..4].try_into().unwrap()) as usize;
        if len > MAX_FRAME {
            return Err(bad(format!("frame of {len} bytes")));
        }
        if src.len() < 4 + len {
            src.reserve(4 + len - src.len());
            return Ok(None);
        }
        src.advance(4);
        let mut body = src.split_to(len);
        if len == 0 {
            return Ok(Some(Msg::KeepAlive));
        }
        let id = body.get_u8();
        let want = |ok: bool| match ok {
            true => Ok(()),
            false => Err(bad(format!("message {id} with a {}-byte body", len - 1))),
        };
        let rest = body.len();
        Ok(Some(match id {
            CHOKE | UNCHOKE | INTERESTED | NOT_INTERESTED => {
                want(rest == 0)?;
                [
                    Msg::Choke,
                    Msg::Unchoke,
                    Msg::Interested,
                    Msg::NotInterested,
                ][id as usize]
                    .clone()
            }
            HAVE => {
                want(rest == 4)?;
                Msg::Have(body.get_u32())
            }
            BITFIELD => {
                want(rest > 0)?;
                Msg::Bitfield(body.to_vec())
            }
            REQUEST | CANCEL => {
                want(rest == 12)?;
                let b = block_of(&mut body);
                if id == REQUEST {
                    Msg::Request(b)
                } else {
                    Msg::Cancel(b)
                }
            }
            PIECE_ID => {
                want(rest > 8)?;
                let (index, begin) = (body.get_u32(), body.get_u32());
                Msg::Piece {
                    index,
                    begin,
                    data: body.to_vec(),
                }
            }
            HANDSHAKE => {
                want(rest == 16)?;
                Msg::Handshake {
                    info_hash: body.get_u64(),
                    peer_id: body.get_u64(),
                }
            }
            other => return Err(bad(format!("unknown message id {other}"))),
        }))
    }
}

impl Encoder<Msg> for WireCodec {
    type Error = io::Error;

    fn encode(&mut self, msg: Msg, dst: &mut BytesMut) -> io::Result<()> {
        let block = |dst: &mut BytesMut, id: u8, b: &Block| {
            dst.put_u32(13);
            dst.put_u8(id);
            for v in [b.index, b.begin, b.len] {
                dst.put_u32(v);
            }
        };
        let bare = |dst: &mut BytesMut, id: u8| {
            dst.put_u32(1);
            dst.put_u8(id);
        };
        match msg {
            Msg::KeepAlive => dst.put_u32(0),
            Msg::Handshake { info_hash, peer_id } => {
                dst.put_u32(17);
                dst.put_u8(HANDSHAKE);
                dst.put_u64(info_hash);
                dst.put_u64(peer_id);
            }
            Msg::Choke => bare(dst, CHOKE),
            Msg::Unchoke => bare(dst, UNCHOKE),
            Msg::Interested => bare(dst, INTERESTED),
            Msg::NotInterested => bare(dst, NOT_INTERESTED),
            Msg::Have(i) => {
                dst.put_u32(5);
                dst.put_u8(HAVE);
                dst.put_u32(i);
            }
            Msg::Bitfield(bits) => {
                dst.put_u32(1 + bits.len() as u32);
                dst.put_u8(BITFIELD);
                dst.put_slice(&bits);
            }
            Msg::Request(b) => block(dst, REQUEST, &b),
            Msg::Cancel(b) => block(dst, CANCEL, &b),
            Msg::Piece { index, begin, data } => {
                dst.put_u32(9 + data.len() as u32);
                dst.put_u8(PIECE_ID);
                dst.put_u32(index);
                dst.put_u32(begin);
                dst.put_slice(&data);
            }
            Msg::PieceHeader(b) => {
                dst.put_u32(9 + b.len);
                dst.put_u8(PIECE_ID);
                dst.put_u32(b.index);
                dst.put_u32(b.begin);
            }
        }
        Ok(())
    }
}

/// The pieces held, as a bitfield message carries them (the first piece in the high bit).
pub fn to_bitfield(have: &[bool]) -> Vec<u8> {
    let mut out = vec![0u8; have.len().div_ceil(8)];
    for (i, _) in have.iter().enumerate().filter(|(_, h)| **h) {
        out[i / 8] |= 0x80 >> (i % 8);
    }
    out
}

/// A bitfield for `n` pieces back into flags: `None` if its length is wrong or a spare
/// bit past the last piece is set.
pub fn from_bitfield(bits: &[u8], n: usize) -> Option<Vec<bool>> {
    if bits.len() != n.div_ceil(8) {
        return None;
    }
    let flags: Vec<bool> = (0..bits.len() * 8)
        .map(|i| bits[i / 8] & (0x80 >> (i % 8)) != 0)
        .collect();
    if flags[n..].iter().any(|&f| f) {
        return None;
    }
    Some(flags[..n].to_vec())
}
