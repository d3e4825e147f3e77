//! A tailer: follows one log file by path, polling on an interval. Lines go out whole, a
//! partial last line held until its newline comes. Rotation by rename (a new inode at the
//! path) reads the old file to its end first; a copytruncate (the file shorter than what
//! was read) starts again from 0.

use std::cell::Cell;
use std::io::{self, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use overlap::fs::{self, File};
use overlap::future::FutureExt;
use overlap::io::AsyncReadExt;
use overlap::sync::mpsc::Sender;
use overlap::sync::CancellationToken;
use overlap::time::{interval, MissedTickBehavior};

use crate::checkpoint::Mark;

/// One line on its way: where it came from and where the next one starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub source: Rc<str>,
    pub seq: u64,
    /// The file it was read from and the offset just past its newline (0 and 0 for UDP).
    pub inode: u64,
    pub end: u64,
    pub text: String,
}

/// What the test looks at: bytes read, rotations and truncations seen.
#[derive(Default)]
pub struct TailStats {
    pub bytes_read: Cell<u64>,
    pub rotations: Cell<u32>,
    pub truncations: Cell<u32>,
}

pub struct Tailer {
    source: Rc<str>,
    path: PathBuf,
    /// The file being read, and its inode; `None` until the path exists.
    file: Option<(File, u64)>,
    /// How far `file` was read (the partial line included).
    offset: u64,
    partial: Vec<u8>,
    seq: u64,
    stats: Rc<TailStats>,
}

impl Tailer {
    /// A tailer for `path`, from `mark` if the checkpoint had one. If the path's inode is
    /// no longer the mark's (rotated while the shipper was down), the old file is looked for
    /// in the same directory by inode and read to its end first.
    pub async fn open(path: &Path, mark: Option<Mark>, stats: Rc<TailStats>) -> io::Result<Tailer> {
        let source: Rc<str> = path.file_name().unwrap().to_string_lossy().into();
        let mut t = Tailer {
            source,
            path: path.to_path_buf(),
            file: None,
            offset: 0,
            partial: Vec::new(),
            seq: mark.map_or(0, |m| m.seq),
            stats,
        };
        let Some(mark) = mark else { return Ok(t) };
        let found = match inode_at(path).await? {
            Some(ino) if ino == mark.inode => Some(path.to_path_buf()),
            _ => find_inode(path.parent().unwrap(), mark.inode).await?,
        };
        if let Some(at) = found {
            let mut file = File::open(&at).await?;
            file.seek(SeekFrom::Start(mark.offset)).await?;
            t.file = Some((file, mark.inode));
            t.offset = mark.offset;
        }
        Ok(t)
    }

    /// Reads what is new and sends its whole lines, following a rotation or a truncation.
    pub async fn step(&mut self, tx: &Sender<Line>) -> io::Result<()> {
        // What is at the path now, looked at before the old file is drained: whatever the
        // writer put in the old file before renaming it is in by then.
        let at_path = inode_at(&self.path).await?;
        if self.file.is_none() {
            if at_path.is_none() {
                return Ok(());
            }
            self.switch_to().await?;
        }
        let (file, _) = self.file.as_mut().unwrap();
        if file.metadata().await?.len() < self.offset {
            // copytruncate: the file was copied away and cut to 0; start again.
            file.seek(SeekFrom::Start(0)).await?;
            self.offset = 0;
            self.partial.clear();
            self.stats.truncations.set(self.stats.truncations.get() + 1);
        }
        self.drain(tx).await?;
        if at_path.is_some() && at_path != self.file.as_ref().map(|f| f.1) {
            // Renamed away and a new file made: the old one is read to its end; a last
            // line it never finished goes out as it is, as no more will come.
            if !self.partial.is_empty() {
                let rest = std::mem::take(&mut self.partial);
                self.send(tx, rest).await?;
            }
            self.switch_to().await?;
            self.stats.rotations.set(self.stats.rotations.get() + 1);
            self.drain(tx).await?;
        }
        Ok(())
    }

    async fn switch_to(&mut self) -> io::Result<()> {
        let file = File::open(&self.path).await?;
        // The path may have moved on again since the stat: take the inode of what was
        // opened.
        let ino = file.metadata().await?.ino();
        self.file = Some((file, ino));
        self.offset = 0;
        self.partial.clear();
        Ok(())
    }

    /// Reads to the end of the file, sending each whole line as it comes: a full channel
    /// stops the reading, so at most one chunk is held here.
    async fn drain(&mut self, tx: &Sender<Line>) -> io::Result<()> {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let (file, _) = self.file.as_mut().unwrap();
            let n = file.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            self.offset += n as u64;
            self.stats
                .bytes_read
                .set(self.stats.bytes_read.get() + n as u64);
            self.partial.extend_from_slice(&buf[..n]);
            while let Some(nl) = self.partial.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.partial.drain(..=nl).collect();
                line.pop();
                self.send(tx, line).await?;
            }
        }
    }

    async fn send(&mut self, tx: &Sender<Line>, text: Vec<u8>) -> io::Result<()> {
        let line = Line {
            source: self.source.clone(),
            seq: self.seq,
            inode: self.file.as_ref().map_or(0, |f| f.1),
            end: self.offset - self.partial.len() as u64,
            text: String::from_utf8_lossy(&text).into_owned(),
        };
        tx.send(line)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "shipper gone"))?;
        self.seq += 1;
        Ok(())
    }
}

/// Polls `tailer` every `period` until `token` is cancelled. A step cut by the
/// cancellation loses nothing for good: what it read and did not hand over was not
/// checkpointed, and a restarted shipper reads it again.
pub async fn run(
    mut tailer: Tailer,
    tx: Sender<Line>,
    token: CancellationToken,
    period: Duration,
) -> io::Result<()> {
    let mut tick = interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        overlap::select! {
            _ = token.cancelled() => return Ok(()),
            _ = tick.tick().fuse() => {}
        }
        overlap::select! {
            _ = token.cancelled() => return Ok(()),
            res = tailer.step(&tx).fuse() => res?,
        }
    }
}

async fn inode_at(path: &Path) -> io::Result<Option<u64>> {
    match fs::metadata(path).await {
        Ok(m) => Ok(Some(m.ino())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The file in `dir` with inode `ino`: where a rotated file went.
async fn find_inode(dir: &Path, ino: u64) -> io::Result<Option<PathBuf>> {
    let mut entries = fs::read_dir(dir).await?;
    while let Some(entry) = entries.next_entry().await? {
        if entry.ino() == ino {
            return Ok(Some(entry.path()));
        }
    }
    Ok(None)
}
