//! The filters and the file outputs: each output's records wait in a batch (a `BytesMut`)
//! that its writer task appends to the file with `write_all_buf` on an interval, when the
//! batch passes a size, on a `rotate` and at shutdown; files rotate by size (`x.log` to
//! `x.log.1`, `.1` to `.2`, up to `keep`), never cutting a line, through `fs::rename`.

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use overlap::codec::BytesMut;
use overlap::fs::{File, OpenOptions};
use overlap::io::{AsyncWriteBufExt, AsyncWriteExt};
use overlap::sync::{oneshot, CancellationToken, Notify};
use overlap::time::{interval_at, Instant, MissedTickBehavior};

use super::parse::Record;

/// Which records an output takes: facilities (all if `None`), severities up to a level
/// (0 emergency .. 7 debug), an app name (all if `None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub facilities: Option<Vec<u8>>,
    pub max_severity: u8,
    pub app: Option<String>,
}

impl Filter {
    pub fn all() -> Filter {
        Filter {
            facilities: None,
            max_severity: 7,
            app: None,
        }
    }

    pub fn matches(&self, r: &Record) -> bool {
        self.facilities
            .as_ref()
            .is_none_or(|f| f.contains(&r.facility))
            && r.severity <= self.max_severity
            && self
                .app
                .as_ref()
                .is_none_or(|a| r.app.as_deref() == Some(a.as_str()))
    }

    /// `*`, or words `facility=4,10`, `severity<=3`, `app=sshd` in any order.
    pub fn parse(text: &str) -> Result<Filter, String> {
        let mut filter = Filter::all();
        for word in text.split_whitespace() {
            if word == "*" {
                continue;
            }
            if let Some(list) = word.strip_prefix("facility=") {
                let parsed: Result<Vec<u8>, _> = list.split(',').map(str::parse).collect();
                match parsed {
                    Ok(f) if f.iter().all(|&f| f < 24) => filter.facilities = Some(f),
                    _ => return Err(format!("bad facility list: {list}")),
                }
            } else if let Some(level) = word.strip_prefix("severity<=") {
                match level.parse() {
                    Ok(s) if s < 8 => filter.max_severity = s,
                    _ => return Err(format!("bad severity: {level}")),
                }
            } else if let Some(app) = word.strip_prefix("app=") {
                filter.app = Some(app.to_string());
            } else {
                return Err(format!("bad filter word: {word}"));
            }
        }
        Ok(filter)
    }
}

#[derive(Clone, Debug)]
pub struct FileConfig {
    pub name: String,
    pub path: PathBuf,
    pub filter: Filter,
    /// A file past this many bytes is rotated before the next line (a longer line alone
    /// still gets a file).
    pub max_bytes: u64,
    /// Rotated files kept: `.1` (the newest) to `.keep`.
    pub keep: usize,
}

/// One file output, shared by the router (which fills its batch) and its writer.
pub struct FileOut {
    pub config: FileConfig,
    pub filter: RefCell<Filter>,
    pub batch: RefCell<BytesMut>,
    pub wake: Notify,
    pub rotate_requests: RefCell<Vec<oneshot::Sender<()>>>,
    pub lines: Cell<u64>,
    pub rotations: Cell<u64>,
    pub write_errors: Cell<u64>,
}

impl FileOut {
    pub fn new(config: FileConfig) -> FileOut {
        FileOut {
            filter: RefCell::new(config.filter.clone()),
            config,
            batch: RefCell::default(),
            wake: Notify::new(),
            rotate_requests: RefCell::default(),
            lines: Cell::new(0),
            rotations: Cell::new(0),
            write_errors: Cell::new(0),
        }
    }

    /// Takes `r` if the filter does; wakes the writer once the batch passes `batch_bytes`.
    pub fn offer(&self, r: &Record, line: &str, batch_bytes: usize) {
        if !self.filter.borrow().matches(r) {
            return;
        }
        let mut batch = self.batch.borrow_mut();
        batch.extend_from_slice(line.as_bytes());
        if batch.len() >= batch_bytes {
            self.wake.notify_one();
        }
    }

    /// A rotation now, answered once done.
    pub fn request_rotation(&self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.rotate_requests.borrow_mut().push(tx);
        self.wake.notify_one();
        rx
    }
}

async fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .await
}

fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// `x.log.{keep-1}` to `.{keep}` ... `x.log` to `.1`; a rename over the oldest drops it.
async fn shift(path: &Path, keep: usize) -> std::io::Result<()> {
    if keep == 0 {
        return overlap::fs::remove_file(path).await;
    }
    for n in (1..keep).rev() {
        match overlap::fs::rename(numbered(path, n), numbered(path, n + 1)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    overlap::fs::rename(path, numbered(path, 1)).await
}

struct Writer {
    out: Rc<FileOut>,
    file: File,
    size: u64,
}

impl Writer {
    async fn rotate(&mut self) -> std::io::Result<()> {
        self.file.flush().await?;
        shift(&self.out.config.path, self.out.config.keep).await?;
        self.file = open_append(&self.out.config.path).await?;
        self.size = 0;
        self.out.rotations.set(self.out.rotations.get() + 1);
        Ok(())
    }

    /// Writes the batch, whole lines at a time, rotating before a line that would take
    /// the file past its maximum. Lines are counted once flushed: a `File` write is
    /// write-behind, so until the flush another reader of the path may not see them.
    async fn flush(&mut self) -> std::io::Result<()> {
        let requests = std::mem::take(&mut *self.out.rotate_requests.borrow_mut());
        let mut batch = self.out.batch.borrow_mut().split();
        let max = self.out.config.max_bytes;
        let mut written = 0;
        while !batch.is_empty() {
            let room = max.saturating_sub(self.size) as usize;
            let mut cut = batch[..room.min(batch.len())]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            if cut == 0 {
                if self.size > 0 {
                    self.rotate().await?;
                    continue;
                }
                cut = batch
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(batch.len(), |i| i + 1);
            }
            let mut part = batch.split_to(cut);
            let lines = part.iter().filter(|&&b| b == b'\n').count() as u64;
            self.file.write_all_buf(&mut part).await?;
            self.size += cut as u64;
            written += lines;
        }
        self.file.flush().await?;
        self.out.lines.set(self.out.lines.get() + written);
        if !requests.is_empty() {
            self.rotate().await?;
            for r in requests {
                let _ = r.send(());
            }
        }
        Ok(())
    }
}

/// The writer task of one file output: flushes every `every`, when woken, and a last
/// time when `token` is cancelled.
pub async fn writer(out: Rc<FileOut>, every: Duration, token: CancellationToken) {
    let file = match open_append(&out.config.path).await {
        Ok(f) => f,
        Err(_) => {
            out.write_errors.set(out.write_errors.get() + 1);
            return;
        }
    };
    let size = file.metadata().await.map_or(0, |m| m.len());
    let mut w = Writer { out, file, size };
    // The first flush a whole period after the start (`interval`'s first tick is at once).
    let mut tick = interval_at(Instant::now() + every, every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let last = overlap::select! {
            _ = tick.tick() => false,
            _ = w.out.wake.notified() => false,
            _ = token.cancelled() => true,
        };
        if w.flush().await.is_err() {
            w.out.write_errors.set(w.out.write_errors.get() + 1);
        }
        if last {
            break;
        }
    }
    let _ = w.file.sync_all().await;
}
