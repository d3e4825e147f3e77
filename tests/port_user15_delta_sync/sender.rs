//! The sender: reads the old file's signatures, streams the new file through a
//! `BufReader` over `overlap::fs::File`, and sends COPY for every window whose weak
//! checksum and strong hash match an old block, LITERAL for the bytes in between.

use std::collections::HashMap;
use std::io;
use std::path::Path;

use overlap::fs::File;
use overlap::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};

use crate::checksum::{strong, Fnv, Rolling};
use crate::proto::{encode, read_signatures, Instr, Signatures, MAX_LITERAL};

/// What the sender sent, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendStats {
    pub copies: u64,
    pub literal_bytes: u64,
    pub literal_frames: u64,
    /// Windows whose weak checksum matched a block the strong hash then told apart.
    pub false_matches: u64,
}

/// The old blocks by weak checksum.
struct Index<'a> {
    sigs: &'a Signatures,
    by_weak: HashMap<u32, Vec<u32>>,
}

impl Index<'_> {
    fn new(sigs: &Signatures) -> Index<'_> {
        let mut by_weak: HashMap<u32, Vec<u32>> = HashMap::new();
        for (i, b) in sigs.blocks.iter().enumerate() {
            by_weak.entry(b.weak).or_default().push(i as u32);
        }
        Index { sigs, by_weak }
    }

    /// The old block equal to `window` (weak digest `weak`), if any.
    fn find(&self, weak: u32, window: &[u8], stats: &mut SendStats) -> Option<u32> {
        let candidates = self.by_weak.get(&weak)?;
        let mut hash = None;
        for &i in candidates {
            if self.sigs.block_len(i as usize) != window.len() {
                continue;
            }
            let h = *hash.get_or_insert_with(|| strong(window));
            if self.sigs.blocks[i as usize].strong == h {
                return Some(i);
            }
        }
        if hash.is_some() {
            stats.false_matches += 1;
        }
        None
    }
}

/// The instruction stream, buffered, with its counts.
struct Out<W: AsyncWrite + Unpin> {
    w: BufWriter<W>,
    frame: Vec<u8>,
    stats: SendStats,
}

impl<W: AsyncWrite + Unpin> Out<W> {
    async fn send(&mut self, instr: Instr) -> io::Result<()> {
        match &instr {
            Instr::Copy(_) => self.stats.copies += 1,
            Instr::Literal(b) => {
                self.stats.literal_frames += 1;
                self.stats.literal_bytes += b.len() as u64;
            }
            Instr::End { .. } => {}
        }
        self.frame.clear();
        encode(&instr, &mut self.frame);
        self.w.write_all(&self.frame).await
    }

    async fn literal(&mut self, bytes: &[u8]) -> io::Result<()> {
        for chunk in bytes.chunks(MAX_LITERAL) {
            self.send(Instr::Literal(chunk.to_vec())).await?;
        }
        Ok(())
    }
}

/// Reads more of the new file onto `data`; 0 at its end.
async fn fill<R: AsyncRead + Unpin>(
    r: &mut R,
    data: &mut Vec<u8>,
    fnv: &mut Fnv,
) -> io::Result<usize> {
    let mut chunk = [0u8; 16 * 1024];
    let n = r.read(&mut chunk).await?;
    fnv.update(&chunk[..n]);
    data.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// Sends `new` to the receiver at the other end of `stream` as a delta against the
/// signatures it sends first.
pub async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    new: &Path,
) -> io::Result<SendStats> {
    let sigs = read_signatures(&mut stream).await?;
    let index = Index::new(&sigs);
    let bs = sigs.block_size as usize;
    let mut reader = BufReader::with_capacity(256 * 1024, File::open(new).await?);
    let mut out = Out {
        w: BufWriter::with_capacity(64 * 1024, &mut stream),
        frame: Vec::new(),
        stats: SendStats::default(),
    };
    let mut fnv = Fnv::new();
    // `data[lit..w]` is the literal pending, `data[w..w + bs]` the window.
    let (mut data, mut lit, mut w) = (Vec::new(), 0usize, 0usize);
    let mut eof = false;
    let mut roll: Option<Rolling> = None;
    let mut total = 0u64;
    loop {
        while !eof && data.len() < w + bs + 1 {
            let n = fill(&mut reader, &mut data, &mut fnv).await?;
            total += n as u64;
            eof = n == 0;
        }
        let avail = data.len() - w;
        if avail < bs {
            // The tail: only the old file's short last block can match it.
            if avail > 0 {
                let window = &data[w..];
                if let Some(i) = index.find(Rolling::new(window).digest(), window, &mut out.stats) {
                    out.literal(&data[lit..w]).await?;
                    out.send(Instr::Copy(i)).await?;
                    lit = data.len();
                }
            }
            break;
        }
        let r = roll.get_or_insert_with(|| Rolling::new(&data[w..w + bs]));
        if let Some(i) = index.find(r.digest(), &data[w..w + bs], &mut out.stats) {
            out.literal(&data[lit..w]).await?;
            out.send(Instr::Copy(i)).await?;
            w += bs;
            lit = w;
            roll = None;
        } else {
            if data.len() > w + bs {
                r.roll(data[w], data[w + bs]);
            } else {
                roll = None;
            }
            w += 1;
            if w - lit == MAX_LITERAL {
                out.literal(&data[lit..w]).await?;
                lit = w;
            }
        }
        if lit >= 1 << 20 {
            data.drain(..lit);
            w -= lit;
            lit = 0;
        }
    }
    out.literal(&data[lit..]).await?;
    let fnv = fnv.finish();
    out.send(Instr::End { len: total, fnv }).await?;
    out.w.flush().await?;
    let stats = out.stats;
    drop(out);
    stream.close().await?;
    Ok(stats)
}
