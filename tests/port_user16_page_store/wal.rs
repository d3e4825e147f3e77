//! The write-ahead log: a transaction is its pages' images, one frame each, then a commit
//! frame; every frame carries a CRC32, so a torn or damaged tail ends the scan, and the
//! transaction it belonged to, never committed, is left out. Appended with `write_all_at`
//! at the log's end and made durable with `sync_data`.

use std::io;
use std::path::Path;

use overlap::fs::{File, OpenOptions};

use super::page::{crc32, Page, PAGE};

/// A frame's head: CRC32 (of the rest of the frame), kind, 3 zero bytes, transaction,
/// page number (a page frame) or page count (a commit), frame count (a commit).
pub const FRAME_HEAD: usize = 24;
pub const PAGE_FRAME: usize = FRAME_HEAD + PAGE;
const KIND_PAGE: u8 = 1;
const KIND_COMMIT: u8 = 2;

fn frame(kind: u8, txid: u64, a: u32, b: u32, image: Option<&Page>) -> Vec<u8> {
    let mut f = Vec::with_capacity(PAGE_FRAME);
    f.extend_from_slice(&[0; 4]);
    f.extend_from_slice(&[kind, 0, 0, 0]);
    f.extend_from_slice(&txid.to_le_bytes());
    f.extend_from_slice(&a.to_le_bytes());
    f.extend_from_slice(&b.to_le_bytes());
    if let Some(page) = image {
        f.extend_from_slice(page.bytes());
    }
    let crc = crc32(&f[4..]);
    f[..4].copy_from_slice(&crc.to_le_bytes());
    f
}

/// A transaction's log record: a frame for each (sealed) page, then its commit frame,
/// which names the page count the transaction leaves.
pub fn encode_txn(txid: u64, pages: &[&Page], page_count: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(pages.len() * PAGE_FRAME + FRAME_HEAD);
    for page in pages {
        out.extend(frame(KIND_PAGE, txid, page.id(), 0, Some(page)));
    }
    out.extend(frame(
        KIND_COMMIT,
        txid,
        page_count,
        pages.len() as u32,
        None,
    ));
    out
}

/// A committed transaction found in the log.
#[derive(Debug)]
pub struct Txn {
    pub txid: u64,
    pub page_count: u32,
    pub pages: Vec<Page>,
}

/// What a scan of the log found.
#[derive(Debug)]
pub struct Scan {
    pub txns: Vec<Txn>,
    /// Where the last commit frame ends: what follows is torn, damaged or uncommitted.
    pub good: usize,
}

/// Reads `log` from the start: committed transactions, in order, each numbered one past
/// the one before. Stops at the first frame that is cut short, fails its checksum, is of
/// an unknown kind, or does not follow (a stale frame of an earlier log): the frames of an
/// uncommitted transaction before that point are dropped.
pub fn scan(log: &[u8]) -> Scan {
    let mut txns: Vec<Txn> = Vec::new();
    let mut good = 0;
    let mut pending: Vec<Page> = Vec::new();
    let mut pending_txid = None;
    let mut at = 0;
    while log.len() - at >= FRAME_HEAD {
        let head = &log[at..at + FRAME_HEAD];
        let kind = head[4];
        let len = match kind {
            KIND_PAGE => PAGE_FRAME,
            KIND_COMMIT => FRAME_HEAD,
            _ => break,
        };
        if log.len() - at < len {
            break;
        }
        let f = &log[at..at + len];
        let stored = u32::from_le_bytes(f[..4].try_into().unwrap());
        if stored != crc32(&f[4..]) || f[5..8] != [0, 0, 0] {
            break;
        }
        let txid = u64::from_le_bytes(f[8..16].try_into().unwrap());
        let a = u32::from_le_bytes(f[16..20].try_into().unwrap());
        let b = u32::from_le_bytes(f[20..24].try_into().unwrap());
        let follows = txns.last().is_none_or(|t| txid == t.txid + 1);
        if !follows || pending_txid.is_some_and(|p| p != txid) {
            break;
        }
        if kind == KIND_PAGE {
            let page = Page::from_bytes(&f[FRAME_HEAD..]);
            if page.id() != a || page.verify(a).is_err() {
                break;
            }
            pending_txid = Some(txid);
            pending.push(page);
        } else {
            if b as usize != pending.len() {
                break;
            }
            txns.push(Txn {
                txid,
                page_count: a,
                pages: std::mem::take(&mut pending),
            });
            pending_txid = None;
            good = at + len;
        }
        at += len;
    }
    Scan { txns, good }
}

/// The log file: appends at its end, positional.
pub struct Wal {
    pub file: File,
    pub len: u64,
}

impl Wal {
    /// Opens (creating) the log at `path` and reads it all.
    pub async fn open(path: &Path, create: bool) -> io::Result<(Wal, Vec<u8>)> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .open(path)
            .await?;
        let len = file.metadata().await?.len();
        let mut bytes = vec![0u8; len as usize];
        file.read_exact_at(&mut bytes, 0).await?;
        Ok((Wal { file, len }, bytes))
    }

    /// Cuts the log to `len` bytes and makes that durable.
    pub async fn cut(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len).await?;
        self.file.sync_data().await?;
        self.len = len;
        Ok(())
    }
}
