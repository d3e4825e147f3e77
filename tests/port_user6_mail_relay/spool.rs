//! The spool: each message's body streamed to a file under `tmp/` while it arrives
//! (`overlap::fs::File`), synced and renamed into `queue/` once whole, so the delivery task
//! never sees half a message; a message refused or cut off is removed from `tmp/`.
//!
//! A spool file is the envelope, one line each (`FROM <addr>`, then `TO <addr>` per
//! recipient), an empty line, then the body exactly as the client meant it (unstuffed).

use std::cell::Cell;
use std::io;
use std::path::{Path, PathBuf};

use overlap::fs::{self, File};
use overlap::io::AsyncWriteExt;
use overlap::sync::Notify;

pub struct Spool {
    pub tmp: PathBuf,
    pub queue: PathBuf,
    /// Names messages: a per-spool counter (the tests run many spools in one process).
    next: Cell<u64>,
    /// Told of each message renamed into `queue/`.
    pub arrived: Notify,
}

impl Spool {
    pub async fn create(root: &Path) -> io::Result<Spool> {
        let (tmp, queue) = (root.join("tmp"), root.join("queue"));
        fs::create_dir_all(&tmp).await?;
        fs::create_dir_all(&queue).await?;
        // Leftovers of a run that ended mid-message go, as an MTA's spool sweeps them: a
        // draft's `Drop` cannot cover a `create_new` cancelled mid-flight, whose pool job
        // still makes the file.
        for stale in queued(&tmp).await? {
            fs::remove_file(&stale).await?;
        }
        Ok(Spool {
            tmp,
            queue,
            next: Cell::new(0),
            arrived: Notify::new(),
        })
    }

    /// A new message's file in `tmp/`, its envelope written.
    pub async fn begin(&self, from: &str, rcpts: &[String]) -> io::Result<Draft> {
        let n = self.next.get();
        self.next.set(n + 1);
        // Unique across restarts (a name reused would rename over a message still queued),
        // and sorting by arrival.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let name = format!("{:020}-{}-{n:08}.msg", now.as_nanos(), std::process::id());
        let path = self.tmp.join(&name);
        let file = File::create_new(&path).await?;
        let mut envelope = format!("FROM {from}\n");
        for rcpt in rcpts {
            envelope.push_str(&format!("TO {rcpt}\n"));
        }
        envelope.push('\n');
        let mut draft = Draft {
            file: Some(file),
            path,
            name,
        };
        // A failed write drops the draft, which removes the file.
        draft.write(envelope.as_bytes()).await?;
        Ok(draft)
    }
}

/// A message being spooled: removed from `tmp/` unless committed, also when dropped (a
/// session cut off by its deadline, a relay shut down mid-message).
pub struct Draft {
    file: Option<File>,
    path: PathBuf,
    name: String,
}

impl Draft {
    /// The spool file, for `io::copy` into it.
    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("a live draft")
    }

    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file
            .as_mut()
            .expect("a live draft")
            .write_all(bytes)
            .await
    }

    /// Synced and renamed into `queue/`: the delivery task may take it from now on.
    pub async fn commit(mut self, spool: &Spool) -> io::Result<PathBuf> {
        let mut file = self.file.take().expect("a live draft");
        // `sync_all` writes the buffered bytes out first (overlap's takes `&mut self`).
        file.sync_all().await?;
        drop(file);
        let to = spool.queue.join(&self.name);
        fs::rename(&self.path, &to).await?;
        self.path = PathBuf::new();
        spool.arrived.notify_one();
        Ok(to)
    }

    /// Removed, now.
    pub async fn discard(mut self) -> io::Result<()> {
        drop(self.file.take());
        let path = std::mem::take(&mut self.path);
        fs::remove_file(&path).await
    }
}

impl Drop for Draft {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            // No `.await` in a drop: std's call, as a tokio user would make it too.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The names in `queue/`, oldest first.
pub async fn queued(queue: &Path) -> io::Result<Vec<PathBuf>> {
    let mut dir = fs::read_dir(queue).await?;
    let mut names = Vec::new();
    while let Some(entry) = dir.next_entry().await? {
        names.push(entry.path());
    }
    names.sort();
    Ok(names)
}

/// A spool file taken apart: sender, recipients, body.
pub fn parse(bytes: &[u8]) -> io::Result<(String, Vec<String>, &[u8])> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "a bad spool file");
    let end = bytes
        .windows(2)
        .position(|w| w == b"\n\n")
        .ok_or_else(bad)?;
    let head = std::str::from_utf8(&bytes[..end]).map_err(|_| bad())?;
    let mut from = None;
    let mut to = Vec::new();
    for line in head.lines() {
        match line.split_once(' ') {
            Some(("FROM", addr)) => from = Some(addr.to_string()),
            Some(("TO", addr)) => to.push(addr.to_string()),
            _ => return Err(bad()),
        }
    }
    Ok((from.ok_or_else(bad)?, to, &bytes[end + 2..]))
}
