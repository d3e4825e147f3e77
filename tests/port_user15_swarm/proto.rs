//! The wire: the torrent's metadata with its FNV-1a 64 checksums, the 21-byte handshake,
//! and the length-prefixed messages (choke .. cancel) with their checks.

/// Every request is for one block of this size (the last block of the last piece is
/// shorter).
pub const BLOCK: u32 = 4096;
pub const MAGIC: &[u8; 4] = b"SWRM";
pub const VERSION: u8 = 1;
/// Magic, version, info-hash, peer id.
pub const HANDSHAKE_LEN: usize = 4 + 1 + 8 + 8;
/// The largest frame a peer accepts: a piece message of one block and its header.
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

/// What a ".torrent" holds: the sizes and a checksum per piece.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    pub piece_len: u32,
    pub total_len: u64,
    pub hashes: Vec<u64>,
}

impl Meta {
    /// The metadata of `data` cut into pieces of `piece_len` bytes (a multiple of
    /// [`BLOCK`]).
    pub fn of(data: &[u8], piece_len: u32) -> Meta {
        assert!(piece_len > 0 && piece_len % BLOCK == 0);
        Meta {
            piece_len,
            total_len: data.len() as u64,
            hashes: data.chunks(piece_len as usize).map(fnv1a64).collect(),
        }
    }

    /// The torrent's identity: a checksum over the sizes and the piece checksums.
    pub fn info_hash(&self) -> u64 {
        let mut bytes = Vec::with_capacity(12 + 8 * self.hashes.len());
        bytes.extend_from_slice(&self.piece_len.to_be_bytes());
        bytes.extend_from_slice(&self.total_len.to_be_bytes());
        for h in &self.hashes {
            bytes.extend_from_slice(&h.to_be_bytes());
        }
        fnv1a64(&bytes)
    }

    pub fn pieces(&self) -> usize {
        self.hashes.len()
    }

    pub fn piece_offset(&self, index: u32) -> u64 {
        index as u64 * self.piece_len as u64
    }

    pub fn piece_size(&self, index: u32) -> u32 {
        let rest = self.total_len - self.piece_offset(index);
        rest.min(self.piece_len as u64) as u32
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

    /// Whether `b` is one of the torrent's blocks exactly (requests and pieces must be).
    pub fn is_block(&self, b: Block) -> bool {
        (b.index as usize) < self.pieces()
            && b.begin % BLOCK == 0
            && b.begin < self.piece_size(b.index)
            && self.block(b.index, b.begin / BLOCK) == b
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
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    Have(u32),
    Bitfield(Vec<u8>),
    Request(Block),
    Piece {
        index: u32,
        begin: u32,
        data: Vec<u8>,
    },
    Cancel(Block),
}

/// Why a frame was refused; the connection it came on is closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Malformed {
    UnknownId(u8),
    BadLength { id: u8, len: usize },
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().unwrap())
}

fn block_of(b: &[u8]) -> Block {
    Block {
        index: be32(b),
        begin: be32(&b[4..]),
        len: be32(&b[8..]),
    }
}

impl Msg {
    /// The frame's body (the codec writes the length before it).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let block = |out: &mut Vec<u8>, id: u8, b: &Block| {
            out.push(id);
            for v in [b.index, b.begin, b.len] {
                out.extend_from_slice(&v.to_be_bytes());
            }
        };
        match self {
            Msg::KeepAlive => {}
            Msg::Choke => out.push(0),
            Msg::Unchoke => out.push(1),
            Msg::Interested => out.push(2),
            Msg::NotInterested => out.push(3),
            Msg::Have(i) => {
                out.push(4);
                out.extend_from_slice(&i.to_be_bytes());
            }
            Msg::Bitfield(bits) => {
                out.push(5);
                out.extend_from_slice(bits);
            }
            Msg::Request(b) => block(&mut out, 6, b),
            Msg::Piece { index, begin, data } => {
                out.push(7);
                out.extend_from_slice(&index.to_be_bytes());
                out.extend_from_slice(&begin.to_be_bytes());
                out.extend_from_slice(data);
            }
            Msg::Cancel(b) => block(&mut out, 8, b),
        }
        out
    }

    /// A frame's body back into a message; the sizes are checked here, the indexes
    /// against the torrent by the connection.
    pub fn decode(frame: &[u8]) -> Result<Msg, Malformed> {
        let Some((&id, body)) = frame.split_first() else {
            return Ok(Msg::KeepAlive);
        };
        let want = |ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(Malformed::BadLength {
                    id,
                    len: body.len(),
                })
            }
        };
        Ok(match id {
            0..=3 => {
                want(body.is_empty())?;
                [
                    Msg::Choke,
                    Msg::Unchoke,
                    Msg::Interested,
                    Msg::NotInterested,
                ][id as usize]
                    .clone()
            }
            4 => {
                want(body.len() == 4)?;
                Msg::Have(be32(body))
            }
            5 => {
                want(!body.is_empty())?;
                Msg::Bitfield(body.to_vec())
            }
            6 | 8 => {
                want(body.len() == 12)?;
                if id == 6 {
                    Msg::Request(block_of(body))
                } else {
                    Msg::Cancel(block_of(body))
                }
            }
            7 => {
                want(body.len() > 8)?;
                Msg::Piece {
                    index: be32(body),
                    begin: be32(&body[4..]),
                    data: body[8..].to_vec(),
                }
            }
            other => return Err(Malformed::UnknownId(other)),
        })
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

pub fn handshake(info_hash: u64, peer_id: u64) -> [u8; HANDSHAKE_LEN] {
    let mut out = [0u8; HANDSHAKE_LEN];
    out[..4].copy_from_slice(MAGIC);
    out[4] = VERSION;
    out[5..13].copy_from_slice(&info_hash.to_be_bytes());
    out[13..].copy_from_slice(&peer_id.to_be_bytes());
    out
}

/// A handshake's info-hash and peer id, or what is wrong with it.
pub fn parse_handshake(hs: &[u8; HANDSHAKE_LEN]) -> Result<(u64, u64), &'static str> {
    if &hs[..4] != MAGIC {
        return Err("bad magic");
    }
    if hs[4] != VERSION {
        return Err("bad version");
    }
    let info = u64::from_be_bytes(hs[5..13].try_into().unwrap());
    let peer = u64::from_be_bytes(hs[13..].try_into().unwrap());
    Ok((info, peer))
}
