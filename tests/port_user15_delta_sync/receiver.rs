//! The receiver: sends the signatures of its old copy of the target, then rebuilds the
//! new version into a temp file next to the target (old blocks read back with seek +
//! `read_exact`), fsyncs it, renames it over the target and fsyncs the directory. On any
//! error, and when its future is dropped, the temp file goes and the target stays as it
//! was.

use std::cell::Cell;
use std::io::{self, ErrorKind, SeekFrom};
use std::path::{Path, PathBuf};

use overlap::fs::{self, File, OpenOptions};
use overlap::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use crate::checksum::{strong, weak, Fnv};
use crate::proto::{invalid, read_instr, write_signatures, BlockSig, Instr, Signatures};

/// What the receiver applied, counted as it goes (so a test can read how far a cancelled
/// transfer got).
#[derive(Debug, Default)]
pub struct RecvStats {
    pub copies: Cell<u64>,
    pub literal_bytes: Cell<u64>,
}

/// The temp file's path for `target`: `.NAME.delta-tmp` in the same directory.
pub fn temp_path(target: &Path) -> PathBuf {
    let name = target.file_name().unwrap().to_string_lossy();
    target.with_file_name(format!(".{name}.delta-tmp"))
}

/// Removes the temp file when dropped, unless disarmed after the rename.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            // In a drop there is no awaiting: std's call, as a tokio program would make.
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Reads until `buf` is full or the file ends; the count read.
async fn read_full<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]).await? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// The signatures of `old` (an absent file counts as empty) and the file, opened.
async fn signatures(old: &Path, block_size: u32) -> io::Result<(Signatures, Option<File>)> {
    let file = match File::open(old).await {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let sigs = Signatures {
                block_size,
                old_len: 0,
                blocks: Vec::new(),
            };
            return Ok((sigs, None));
        }
        Err(e) => return Err(e),
    };
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let mut block = vec![0u8; block_size as usize];
    let (mut blocks, mut old_len) = (Vec::new(), 0u64);
    loop {
        let n = read_full(&mut reader, &mut block).await?;
        if n == 0 {
            break;
        }
        old_len += n as u64;
        blocks.push(BlockSig {
            weak: weak(&block[..n]),
            strong: strong(&block[..n]),
        });
        if n < block.len() {
            break;
        }
    }
    let mut file = reader.into_inner();
    file.rewind().await?;
    Ok((
        Signatures {
            block_size,
            old_len,
            blocks,
        },
        Some(file),
    ))
}

/// Brings `target` up to the sender's version over `stream`, with blocks of `block_size`.
pub async fn receive<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    target: &Path,
    block_size: u32,
    stats: &RecvStats,
) -> io::Result<()> {
    let (sigs, mut old) = signatures(target, block_size).await?;
    write_signatures(&mut stream, &sigs).await?;
    let mut input = BufReader::with_capacity(64 * 1024, stream);

    let tmp = temp_path(target);
    // Named before it exists, so a cancellation from here on removes it.
    let mut guard = TempGuard(Some(tmp.clone()));
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .await?;
    let mut block = vec![0u8; block_size as usize];
    // Where the old file's cursor is: consecutive COPYs need no seek.
    let mut old_pos = 0u64;
    let (mut written, mut fnv) = (0u64, Fnv::new());
    loop {
        match read_instr(&mut input).await? {
            Instr::Copy(index) => {
                let i = index as usize;
                let (Some(file), true) = (old.as_mut(), i < sigs.blocks.len()) else {
                    return Err(invalid(format!(
                        "COPY of block {index}, the old file has {} blocks",
                        sigs.blocks.len()
                    )));
                };
                let start = index as u64 * block_size as u64;
                if start != old_pos {
                    file.seek(SeekFrom::Start(start)).await?;
                }
                let len = sigs.block_len(i);
                file.read_exact(&mut block[..len]).await?;
                old_pos = start + len as u64;
                out.write_all(&block[..len]).await?;
                fnv.update(&block[..len]);
                written += len as u64;
                stats.copies.set(stats.copies.get() + 1);
            }
            Instr::Literal(bytes) => {
                out.write_all(&bytes).await?;
                fnv.update(&bytes);
                written += bytes.len() as u64;
                stats
                    .literal_bytes
                    .set(stats.literal_bytes.get() + bytes.len() as u64);
            }
            Instr::End { len, fnv: want } => {
                if len != written || want != fnv.finish() {
                    return Err(invalid(format!(
                        "rebuilt {written} bytes (fnv {:016x}), the sender's file has {len} (fnv {want:016x})",
                        fnv.finish()
                    )));
                }
                break;
            }
        }
    }
    out.flush().await?;
    out.sync_all().await?;
    drop(out);
    drop(old);
    fs::rename(&tmp, target).await?;
    guard.0 = None;
    let dir = target.parent().unwrap_or(Path::new("."));
    File::open(dir).await?.sync_all().await?;
    Ok(())
}
