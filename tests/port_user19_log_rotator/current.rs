//! The file being written, `current`, through one write-behind `overlap::fs::File`: lines
//! get a prefix (a line counter and the time since the daemon started, on overlap's
//! clock), go out in batches, each batch flushed before its lines count as written, and
//! `current` is rotated at line boundaries: flushed, `sync_data`, renamed to `@<seq>.u`,
//! and a fresh `current` opened.
//!
//! The policy for a refused write (a full disk, a file size limit): the batch's lines are
//! dropped and counted, the error is kept in the stats (and printed) with the file's path,
//! and `current` is cut back to the last whole line, so no torn line is left behind. The
//! daemon goes on accepting lines; the next batch is tried again (a rotation, which starts
//! an empty file, may be what lets them through).

use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use overlap::fs::{self, File};
use overlap::io::AsyncWriteExt;
use overlap::time::Instant;

use super::daemon::{Reason, Rotation, Shared};

/// The name of the file being written.
pub const CURRENT: &str = "current";

/// The name of rotated file `seq` before (`.u`) or after (`.s`) compression.
pub fn rotated_name(seq: u64, ext: &str) -> String {
    format!("@{seq:06}.{ext}")
}

/// The sequence number in a rotated file's name (`@000012.s` gives 12), with its extension.
pub fn parse_rotated(name: &str) -> Option<(u64, &str)> {
    let (seq, ext) = name.strip_prefix('@')?.split_once('.')?;
    Some((seq.parse().ok()?, ext))
}

/// `current`, its known size, and the counters that name what comes next.
pub struct CurrentFile {
    dir: PathBuf,
    file: File,
    /// Bytes in `current` that were flushed: always a line boundary.
    size: u64,
    max_size: u64,
    /// The number the next line's prefix gets.
    next_line: u64,
    /// The last rotated file's sequence number.
    seq: u64,
    started: Instant,
    shared: Rc<Shared>,
}

async fn open_current(dir: &Path) -> io::Result<File> {
    File::options()
        .create(true)
        .append(true)
        .open(dir.join(CURRENT))
        .await
}

impl CurrentFile {
    /// Opens (or creates) `current` in `dir`, going on after the rotated files already
    /// there.
    pub async fn open(dir: &Path, max_size: u64, shared: Rc<Shared>) -> io::Result<CurrentFile> {
        let mut seq = 0;
        let mut entries = fs::read_dir(dir).await?;
        while let Some(entry) = entries.next_entry().await? {
            if let Some((s, _)) = parse_rotated(&entry.file_name().to_string_lossy()) {
                seq = seq.max(s);
            }
        }
        let file = open_current(dir).await?;
        let size = fs::metadata(dir.join(CURRENT)).await?.len();
        Ok(CurrentFile {
            dir: dir.to_owned(),
            file,
            size,
            max_size,
            next_line: 0,
            seq,
            started: Instant::now(),
            shared,
        })
    }

    /// The line as it goes into the file: `<n> <secs>.<millis> <body>\n`.
    fn format(&mut self, body: &[u8]) -> Vec<u8> {
        let t = self.started.elapsed();
        let mut line = format!(
            "{:08} {}.{:03} ",
            self.next_line,
            t.as_secs(),
            t.subsec_millis()
        )
        .into_bytes();
        self.next_line += 1;
        line.extend_from_slice(body);
        line.push(b'\n');
        line
    }

    /// Writes `bodies`, rotating first whenever the next line would take `current` past
    /// the size limit (so no line is split across two files).
    pub async fn append(&mut self, bodies: Vec<Vec<u8>>) {
        let mut batch = Vec::new();
        let mut lines = 0;
        for body in bodies {
            let line = self.format(&body);
            let pending = self.size + batch.len() as u64;
            if pending > 0 && pending + line.len() as u64 > self.max_size {
                self.commit(&std::mem::take(&mut batch), lines).await;
                lines = 0;
                self.rotate(Reason::Size).await;
            }
            batch.extend_from_slice(&line);
            lines += 1;
        }
        self.commit(&batch, lines).await;
    }

    /// Writes one batch and flushes it; on an error, drops its lines (see the module docs).
    async fn commit(&mut self, batch: &[u8], lines: u64) {
        if lines == 0 {
            return;
        }
        let wrote = async {
            self.file.write_all(batch).await?;
            self.file.flush().await
        }
        .await;
        match wrote {
            Ok(()) => {
                self.size += batch.len() as u64;
                self.shared.stats.borrow_mut().lines_written += lines;
            }
            Err(e) => {
                self.shared.stats.borrow_mut().lines_dropped += lines;
                self.shared
                    .report_write_error(e.kind(), format!("dropped {lines} lines: {e}"));
                // A prefix of the batch may have landed: cut it back to the last whole line.
                if let Err(e) = self.file.set_len(self.size).await {
                    self.shared
                        .report_write_error(e.kind(), format!("cannot cut back a torn line: {e}"));
                }
            }
        }
    }

    /// Rotates `current` unless it is empty; a failure is reported and writing goes on
    /// into the same file. Gives the rotated file's sequence number.
    pub async fn rotate(&mut self, reason: Reason) -> Option<u64> {
        if self.size == 0 {
            return None;
        }
        match self.try_rotate().await {
            Ok(seq) => {
                let at = self.started.elapsed();
                self.shared
                    .stats
                    .borrow_mut()
                    .rotations
                    .push(Rotation { seq, reason, at });
                // The compressor looks at every `.u` file there is (at most one runs).
                self.shared.compress.notify_one();
                Some(seq)
            }
            Err(e) => {
                self.shared
                    .report_write_error(e.kind(), format!("rotation failed: {e}"));
                None
            }
        }
    }

    async fn try_rotate(&mut self) -> io::Result<u64> {
        // Write-behind: a returned `write` only accepted its bytes. Flush before the rename,
        // so the compressor (another handle, in a child) reads all of them, and sync so a
        // crash does not leave a rotated file shorter than what the stats counted.
        self.file.flush().await?;
        self.file.sync_data().await?;
        let seq = self.seq + 1;
        let rotated = self.dir.join(rotated_name(seq, "u"));
        fs::rename(self.dir.join(CURRENT), &rotated).await?;
        self.seq = seq;
        match open_current(&self.dir).await {
            Ok(file) => {
                // The old `File` was flushed: dropping it loses nothing.
                self.file = file;
                self.size = 0;
                Ok(seq)
            }
            Err(e) => {
                // Keep writing through the old handle, into the rotated file's name back.
                fs::rename(&rotated, self.dir.join(CURRENT)).await?;
                self.seq = seq - 1;
                Err(io::Error::new(
                    e.kind(),
                    format!("cannot open a new {CURRENT}: {e}"),
                ))
            }
        }
    }

    /// Flushes and syncs what is left, at shutdown.
    pub async fn close(mut self) {
        let done = async {
            self.file.flush().await?;
            self.file.sync_data().await
        }
        .await;
        if let Err(e) = done {
            self.shared
                .report_write_error(e.kind(), format!("final flush failed: {e}"));
        }
    }
}
