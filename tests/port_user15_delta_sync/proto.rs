//! The wire format, big-endian throughout.
//!
//! Receiver to sender, once: the signatures of the old file,
//! `"DSG1" block_size:u32 count:u32 old_len:u64`, then per block `weak:u32 strong:u64`
//! (every block `block_size` long but the last, which may be shorter).
//!
//! Sender to receiver, a stream of instructions: `0x01 index:u32` (COPY an old block),
//! `0x02 len:u32 bytes` (LITERAL, 1 to [`MAX_LITERAL`] bytes), and last
//! `0x03 new_len:u64 fnv:u64` (END, with the whole new file's length and FNV-1a 64).

use std::io::{self, ErrorKind};

use overlap::io::{AsyncRead, AsyncReadExt, AsyncReadIntExt, AsyncWrite, AsyncWriteExt};

pub const MAGIC: &[u8; 4] = b"DSG1";
pub const TAG_COPY: u8 = 0x01;
pub const TAG_LITERAL: u8 = 0x02;
pub const TAG_END: u8 = 0x03;
/// The longest LITERAL the sender sends and the receiver accepts.
pub const MAX_LITERAL: usize = 64 * 1024;
/// The largest block size either side accepts.
pub const MAX_BLOCK: u32 = 1 << 20;
/// The most blocks a signature list may announce (what the sender agrees to hold).
pub const MAX_BLOCKS: u32 = 1 << 20;

/// The signature of one old block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockSig {
    pub weak: u32,
    pub strong: u64,
}

/// The old file's signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signatures {
    pub block_size: u32,
    pub old_len: u64,
    pub blocks: Vec<BlockSig>,
}

impl Signatures {
    /// The length of old block `index` (the last may be short).
    pub fn block_len(&self, index: usize) -> usize {
        let start = index as u64 * self.block_size as u64;
        (self.old_len - start).min(self.block_size as u64) as usize
    }
}

/// One instruction of the sender's stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Instr {
    Copy(u32),
    Literal(Vec<u8>),
    End { len: u64, fnv: u64 },
}

pub fn invalid(msg: String) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, msg)
}

pub async fn write_signatures<W: AsyncWrite + Unpin>(
    w: &mut W,
    sigs: &Signatures,
) -> io::Result<()> {
    let mut out = Vec::with_capacity(20 + sigs.blocks.len() * 12);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&sigs.block_size.to_be_bytes());
    out.extend_from_slice(&(sigs.blocks.len() as u32).to_be_bytes());
    out.extend_from_slice(&sigs.old_len.to_be_bytes());
    for b in &sigs.blocks {
        out.extend_from_slice(&b.weak.to_be_bytes());
        out.extend_from_slice(&b.strong.to_be_bytes());
    }
    w.write_all(&out).await?;
    w.flush().await
}

pub async fn read_signatures<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Signatures> {
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic).await?;
    if &magic != MAGIC {
        return Err(invalid(format!("bad signature magic {magic:02x?}")));
    }
    let block_size = r.read_u32().await?;
    let count = r.read_u32().await?;
    let old_len = r.read_u64().await?;
    if block_size == 0 || block_size > MAX_BLOCK {
        return Err(invalid(format!("block size {block_size} out of range")));
    }
    if count > MAX_BLOCKS {
        return Err(invalid(format!(
            "{count} blocks announced, at most {MAX_BLOCKS} taken"
        )));
    }
    if old_len.div_ceil(block_size as u64) != count as u64 {
        return Err(invalid(format!(
            "{count} blocks of {block_size} bytes cannot make {old_len} bytes"
        )));
    }
    let mut blocks = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let weak = r.read_u32().await?;
        let strong = r.read_u64().await?;
        blocks.push(BlockSig { weak, strong });
    }
    Ok(Signatures {
        block_size,
        old_len,
        blocks,
    })
}

/// Appends `instr`'s encoding to `out`.
pub fn encode(instr: &Instr, out: &mut Vec<u8>) {
    match instr {
        Instr::Copy(index) => {
            out.push(TAG_COPY);
            out.extend_from_slice(&index.to_be_bytes());
        }
        Instr::Literal(bytes) => {
            out.push(TAG_LITERAL);
            out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            out.extend_from_slice(bytes);
        }
        Instr::End { len, fnv } => {
            out.push(TAG_END);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&fnv.to_be_bytes());
        }
    }
}

/// Reads one instruction. A stream ending before END is `UnexpectedEof`, whether between
/// instructions or inside one.
pub async fn read_instr<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Instr> {
    let tag = match r.read_u8().await {
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                "the sender went away before END",
            ))
        }
        other => other?,
    };
    match tag {
        TAG_COPY => Ok(Instr::Copy(r.read_u32().await?)),
        TAG_LITERAL => {
            let len = r.read_u32().await? as usize;
            if len == 0 || len > MAX_LITERAL {
                return Err(invalid(format!(
                    "LITERAL of {len} bytes (1 to {MAX_LITERAL} allowed)"
                )));
            }
            let mut bytes = vec![0u8; len];
            r.read_exact(&mut bytes).await?;
            Ok(Instr::Literal(bytes))
        }
        TAG_END => Ok(Instr::End {
            len: r.read_u64().await?,
            fnv: r.read_u64().await?,
        }),
        other => Err(invalid(format!("unknown instruction tag {other:#04x}"))),
    }
}
