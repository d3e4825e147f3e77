//! The torrent's file: one `overlap::fs::PositionalFile`, pre-sized, shared by clone with
//! every connection task, which write received blocks at their offsets concurrently
//! (`write_all_at`), read pieces back for their checksums (`read_exact_at`), and send
//! blocks straight from the file to a socket (`send_to`). Every offset is checked against
//! the torrent first: nothing is ever written outside the file's range.

use std::io;
use std::path::Path;
use std::rc::Rc;

use overlap::fs::{OpenOptions, PositionalFile};
use overlap::net::TcpStream;

use super::wire::{fnv1a64, Block, Meta};

#[derive(Clone)]
pub struct Storage {
    pub file: PositionalFile,
    meta: Rc<Meta>,
}

impl Storage {
    /// Opens (or creates) the file at `path`, sized to the torrent, and checks every piece
    /// already in it: the pieces held.
    pub async fn open(path: &Path, meta: Rc<Meta>) -> io::Result<(Storage, Vec<bool>)> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open_positional(path)
            .await?;
        if file.metadata().await?.len() != meta.total_len {
            file.set_len(meta.total_len).await?;
        }
        let storage = Storage { file, meta };
        let mut have = Vec::with_capacity(storage.meta.pieces());
        for i in 0..storage.meta.pieces() as u32 {
            have.push(storage.verify(i).await?);
        }
        Ok((storage, have))
    }

    fn check(&self, b: Block) -> io::Result<u64> {
        if !self.meta.is_block(b) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{b:?} is not a block of the torrent"),
            ));
        }
        Ok(self.meta.offset(b))
    }

    /// Writes a received block at its offset; done when the kernel has it.
    pub async fn write_block(&self, b: Block, data: &[u8]) -> io::Result<()> {
        debug_assert_eq!(b.len as usize, data.len());
        let at = self.check(b)?;
        self.file.write_all_at(data, at).await
    }

    /// Reads `b`, to upload it from memory.
    pub async fn read_block(&self, b: Block) -> io::Result<Vec<u8>> {
        let at = self.check(b)?;
        let mut buf = vec![0u8; b.len as usize];
        self.file.read_exact_at(&mut buf, at).await?;
        Ok(buf)
    }

    /// Sends `b`'s bytes from the file to `to` (the piece header already written).
    pub async fn send_block(&self, b: Block, to: &TcpStream) -> io::Result<()> {
        let at = self.check(b)?;
        let sent = self.file.send_to(to, at, b.len as u64).await?;
        if sent != b.len as u64 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shorter than the torrent",
            ));
        }
        Ok(())
    }

    /// Whether piece `index` as it is in the file matches its checksum.
    pub async fn verify(&self, index: u32) -> io::Result<bool> {
        let mut buf = vec![0u8; self.meta.piece_size(index) as usize];
        self.file
            .read_exact_at(&mut buf, self.meta.piece_offset(index))
            .await?;
        Ok(fnv1a64(&buf) == self.meta.hashes[index as usize])
    }
}
