//! One request's work on the export's file: the checks the protocol asks for (flags,
//! bounds, read-only), then READ (`read_vec_at`: the pool job's buffer is the reply's
//! data), WRITE (`write_vec_at`: the payload moved, not copied), FLUSH, TRIM and
//! WRITE_ZEROES (`punch_hole`, or zeros written where the file system has no holes or the
//! client said NO_HOLE), and FUA as a `sync_data` before the reply.
//!
//! FLUSH must make durable every write *completed* (answered) before the FLUSH was
//! received; writes still in flight then need not be. A write is answered only after its
//! `pwrite` returned, and `fdatasync` covers every `pwrite` that returned before it was
//! called (on any fd of the file: so NBD_FLAG_CAN_MULTI_CONN holds too), so one
//! `sync_data` per FLUSH, started after the FLUSH was read, is enough; it waits for no
//! write still in flight.

use std::io;
use std::rc::Rc;

use overlap::fs::PositionalFile;

use super::proto::*;
use super::server::Shared;

/// A connection's export: its file (shared by every request task), its size as
/// negotiated, and whether writes are refused.
pub struct Device {
    pub file: PositionalFile,
    pub size: u64,
    pub read_only: bool,
    pub shared: Rc<Shared>,
}

/// Zeros are written in pieces of this much, where no hole can be punched.
const ZERO_CHUNK: u64 = 1 << 20;

/// The protocol's error for a failed file operation.
fn errno(e: &io::Error) -> u32 {
    match overlap::io::raw_os_error(e) {
        Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG) => ENOSPC,
        Some(libc::EPERM | libc::EACCES | libc::EROFS) => EPERM,
        _ => EIO,
    }
}

impl Device {
    /// The reply's data (a READ's bytes, else empty) or its error.
    pub async fn run(&self, req: Request, payload: Vec<u8>) -> Result<Vec<u8>, u32> {
        if req.flags & !(CMD_FLAG_FUA | CMD_FLAG_NO_HOLE) != 0 {
            return Err(EINVAL);
        }
        if req.flags & CMD_FLAG_NO_HOLE != 0 && req.ty != CMD_WRITE_ZEROES {
            return Err(EINVAL);
        }
        let (off, len) = (req.offset, req.len as u64);
        let past_end = off.checked_add(len).is_none_or(|end| end > self.size);
        let writes = matches!(req.ty, CMD_WRITE | CMD_TRIM | CMD_WRITE_ZEROES);
        if writes && self.read_only {
            return Err(EPERM);
        }
        if req.ty != CMD_FLUSH && len == 0 {
            return Err(EINVAL);
        }
        let max = self.shared.cfg.max_payload as u64;
        match req.ty {
            CMD_READ if len > max || past_end => Err(EINVAL),
            CMD_READ => {
                let data = self.file.read_vec_at(len as usize, off).await;
                match data.map_err(|e| errno(&e))? {
                    // The file shrank under us: no bytes to make up.
                    short if short.len() as u64 != len => Err(EIO),
                    data => Ok(data),
                }
            }
            // The protocol: ENOSPC for writes past the end, EINVAL for reads and trims.
            CMD_WRITE | CMD_WRITE_ZEROES if past_end => Err(ENOSPC),
            CMD_TRIM if past_end => Err(EINVAL),
            CMD_WRITE => {
                self.file
                    .write_vec_at(payload, off)
                    .await
                    .map_err(|e| errno(&e))?;
                self.written(req).await
            }
            CMD_TRIM => {
                match self.file.punch_hole(off, len).await {
                    // TRIM is advisory: without holes, there is nothing to give back.
                    Err(e) if e.kind() == io::ErrorKind::Unsupported => {}
                    r => r.map_err(|e| errno(&e))?,
                }
                self.written(req).await
            }
            CMD_WRITE_ZEROES => {
                let punched = if req.flags & CMD_FLAG_NO_HOLE != 0 {
                    false
                } else {
                    match self.file.punch_hole(off, len).await {
                        Ok(()) => true,
                        Err(e) if e.kind() == io::ErrorKind::Unsupported => false,
                        Err(e) => return Err(errno(&e)),
                    }
                };
                if !punched {
                    self.write_zeros(off, len).await.map_err(|e| errno(&e))?;
                }
                self.written(req).await
            }
            CMD_FLUSH => self.sync("flush").await.map(|()| Vec::new()),
            _ => Err(EINVAL),
        }
    }

    /// Counts a write done, then makes it durable before its reply if it asked (FUA).
    async fn written(&self, req: Request) -> Result<Vec<u8>, u32> {
        let done = &self.shared.stats.writes_done;
        done.set(done.get() + 1);
        if req.flags & CMD_FLAG_FUA != 0 {
            self.sync("fua").await?;
        }
        Ok(Vec::new())
    }

    /// `fdatasync`, noting why and how many writes were done when it started.
    pub async fn sync(&self, why: &'static str) -> Result<(), u32> {
        let stats = &self.shared.stats;
        stats
            .syncs
            .borrow_mut()
            .push((why, stats.writes_done.get()));
        self.file.sync_data().await.map_err(|e| errno(&e))
    }

    async fn write_zeros(&self, off: u64, len: u64) -> io::Result<()> {
        let mut buf = vec![0u8; len.min(ZERO_CHUNK) as usize];
        let mut at = off;
        while at < off + len {
            let n = (off + len - at).min(ZERO_CHUNK) as usize;
            buf.truncate(n);
            buf = self.file.write_vec_at(buf, at).await?;
            at += n as u64;
        }
        Ok(())
    }
}
