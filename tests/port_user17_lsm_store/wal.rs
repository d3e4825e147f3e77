//! The write-ahead log and its group commit: one committer task takes every write waiting
//! in the channel (up to a batch's limit), appends the batch to the log through an
//! `overlap::fs::File`, makes it durable with one `sync_data`, applies it to the memtable,
//! and only then answers the batch's writers. A memtable grown past its limit is handed
//! to the flusher, and a fresh log started, between batches.

use std::io;
use std::path::Path;
use std::rc::Rc;

use overlap::fs::{self, File, OpenOptions};
use overlap::io::AsyncWriteExt;
use overlap::sync::{mpsc, oneshot};

use super::db::Inner;
use super::format::{decode_records, encode_record, Key, Value};
use super::manifest::sync_dir;

pub fn log_name(id: u64) -> String {
    format!("{id:06}.log")
}

/// A write waiting for its batch: answered with its sequence number once durable.
pub struct WriteReq {
    pub key: Key,
    pub value: Value,
    pub done: oneshot::Sender<io::Result<u64>>,
}

pub struct Log {
    pub id: u64,
    file: File,
}

impl Log {
    /// Creates log `id` and makes its directory entry durable before any write is acked.
    pub async fn create(dir: &Path, id: u64) -> io::Result<Log> {
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(dir.join(log_name(id)))
            .await?;
        sync_dir(dir).await?;
        Ok(Log { id, file })
    }
}

/// What replaying a log found: its whole records, and the length it was cut from and to
/// when its tail was torn.
pub struct Replayed {
    pub records: Vec<(Key, Value)>,
    pub cut: Option<(u64, u64)>,
}

/// Reads log `id`'s whole, checked records; a torn or corrupt tail is cut off the file
/// (and the cut made durable), so that later logs follow only whole records.
pub async fn replay(dir: &Path, id: u64) -> io::Result<Replayed> {
    let path = dir.join(log_name(id));
    let bytes = fs::read(&path).await?;
    let (records, good) = decode_records(&bytes);
    let mut cut = None;
    if good < bytes.len() {
        let mut file = OpenOptions::new().write(true).open(&path).await?;
        file.set_len(good as u64).await?;
        file.sync_all().await?;
        cut = Some((bytes.len() as u64, good as u64));
    }
    Ok(Replayed { records, cut })
}

/// A copy of `e` for each writer of a failed batch (`io::Error` is not `Clone`).
fn copy(e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), e.to_string())
}

/// The committer task: runs until every sender is gone (the store closing).
pub async fn committer(inner: Rc<Inner>, mut rx: mpsc::Receiver<WriteReq>, mut log: Log) {
    let mut batch = Vec::new();
    let mut buf = Vec::new();
    loop {
        batch.clear();
        if rx.recv_many(&mut batch, inner.opts.max_batch).await == 0 {
            break;
        }
        if let Some(e) = inner.poisoned() {
            for w in batch.drain(..) {
                let _ = w.done.send(Err(copy(&e)));
            }
            continue;
        }
        buf.clear();
        for w in &batch {
            encode_record(&mut buf, &w.key, &w.value);
        }
        match commit(&inner, &mut log, &buf).await {
            Ok(()) => {
                let first = inner.apply(batch.iter().map(|w| (&w.key, &w.value)));
                for (i, w) in batch.drain(..).enumerate() {
                    // A writer that gave up waiting still had its write made durable.
                    let _ = w.done.send(Ok(first + i as u64));
                }
            }
            Err(e) => {
                let e = io::Error::new(e.kind(), format!("write-ahead log: {e}"));
                inner.poison(&e);
                for w in batch.drain(..) {
                    let _ = w.done.send(Err(copy(&e)));
                }
            }
        }
        if inner.memtable_full() {
            match rotate(&inner).await {
                Ok(next) => log = next,
                Err(e) => inner.poison(&io::Error::new(e.kind(), format!("new log: {e}"))),
            }
        }
    }
}

/// Appends one batch and syncs it: one `write_all`, one `flush` (the `File` buffers),
/// one `sync_data`.
async fn commit(inner: &Inner, log: &mut Log, bytes: &[u8]) -> io::Result<()> {
    log.file.write_all(bytes).await?;
    log.file.flush().await?;
    inner.stats.borrow_mut().batches_written += 1;
    if inner.stall_before_sync.get() {
        // The fault the crash test wants: the batch written, never synced nor acked.
        std::future::pending::<()>().await;
    }
    log.file.sync_data().await?;
    inner.stats.borrow_mut().syncs += 1;
    Ok(())
}

/// Hands the full memtable to the flusher (waiting while the previous one is still being
/// flushed: a write stall) and starts a fresh log for the next one.
async fn rotate(inner: &Rc<Inner>) -> io::Result<Log> {
    while inner.imm.borrow().is_some() {
        if let Some(e) = inner.poisoned() {
            return Err(e);
        }
        inner.stats.borrow_mut().stalls += 1;
        inner.flushed.notified().await;
    }
    let id = inner.alloc_id();
    let log = Log::create(&inner.dir, id).await?;
    inner.start_flush(id);
    Ok(log)
}
