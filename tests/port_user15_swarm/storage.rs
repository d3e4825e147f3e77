//! The downloaded file: blocks written at their offsets and pieces read back for their
//! checksums, through one `overlap::fs::File` behind an async mutex (there is no
//! positional `write_at`/`read_at`, in overlap as in tokio, so each access is a seek and a
//! write or read that must not interleave with another task's).

use std::io::{self, SeekFrom};
use std::path::Path;
use std::rc::Rc;

use overlap::fs::{File, OpenOptions};
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::sync::Mutex;

use super::proto::{fnv1a64, Block, Meta};

pub struct Storage {
    file: Mutex<File>,
    meta: Rc<Meta>,
}

impl Storage {
    /// Opens (or creates) the file at `path`, sized to the torrent, and checks every piece
    /// already in it: the pieces held, for a resumed download.
    pub async fn open(path: &Path, meta: Rc<Meta>) -> io::Result<(Storage, Vec<bool>)> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .await?;
        if file.metadata().await?.len() != meta.total_len {
            file.set_len(meta.total_len).await?;
        }
        let storage = Storage {
            file: Mutex::new(file),
            meta,
        };
        let mut have = Vec::with_capacity(storage.meta.pieces());
        for i in 0..storage.meta.pieces() as u32 {
            have.push(storage.verify(i).await?);
        }
        Ok((storage, have))
    }

    /// Writes a received block at its offset (and waits until the kernel has it, so that a
    /// write error is this call's).
    pub async fn write_block(&self, b: Block, data: &[u8]) -> io::Result<()> {
        let mut file = self.file.lock().await;
        file.seek(SeekFrom::Start(
            self.meta.piece_offset(b.index) + b.begin as u64,
        ))
        .await?;
        file.write_all(data).await?;
        file.flush().await
    }

    /// Reads `b` back, to upload it.
    pub async fn read_block(&self, b: Block) -> io::Result<Vec<u8>> {
        self.read_at(
            self.meta.piece_offset(b.index) + b.begin as u64,
            b.len as usize,
        )
        .await
    }

    async fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut file = self.file.lock().await;
        // The seek also drops any bytes read ahead before a block was written over them.
        file.seek(SeekFrom::Start(offset)).await?;
        let mut buf = vec![0u8; len];
        file.read_exact(&mut buf).await?;
        Ok(buf)
    }

    /// Whether piece `index` as it is in the file matches its checksum.
    pub async fn verify(&self, index: u32) -> io::Result<bool> {
        let bytes = self
            .read_at(
                self.meta.piece_offset(index),
                self.meta.piece_size(index) as usize,
            )
            .await?;
        Ok(fnv1a64(&bytes) == self.meta.hashes[index as usize])
    }
}
