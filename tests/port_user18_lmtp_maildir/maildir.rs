//! A Maildir (`tmp/`, `new/`, `cur/`) and the crash-safe way into it: each message is
//! written to `tmp/<unique>`, `sync_all`ed, renamed into `new/`, and then `new/` itself is
//! fsynced (a directory opened with `fs::File::open` and `sync_all`ed, as with tokio), so a
//! crash leaves either no message or a whole one, never half of one in `new/`. A draft that
//! is not committed (refused, cut off, its client gone) is removed from `tmp/`.
//!
//! The "maildir reader" at the end is the mail user agent's side, used by the tests: list
//! `new/`, read each message, move it to `cur/` with the `:2,S` (seen) flags.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use overlap::fs::{self, File};
use overlap::io::AsyncWriteExt;

/// Numbers the deliveries of this process: the `seq` of `time.pid_seq.host`. Process-wide,
/// since many servers (and runtimes) of one process may deliver into the same Maildir.
static SEQ: AtomicU64 = AtomicU64::new(0);

/// One Maildir on disk.
#[derive(Clone, Debug)]
pub struct Maildir {
    root: PathBuf,
}

impl Maildir {
    /// Creates `root` with its `tmp/`, `new/` and `cur/` (those that exist are kept).
    pub async fn create(root: &Path) -> io::Result<Maildir> {
        for sub in ["tmp", "new", "cur"] {
            fs::create_dir_all(root.join(sub)).await?;
        }
        Ok(Maildir::at(root))
    }

    /// A Maildir at `root`, as it is on disk (nothing is checked or made).
    pub fn at(root: &Path) -> Maildir {
        Maildir {
            root: root.to_path_buf(),
        }
    }

    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub fn new_dir(&self) -> PathBuf {
        self.root.join("new")
    }

    pub fn cur(&self) -> PathBuf {
        self.root.join("cur")
    }

    /// A new message file in `tmp/`, named `time.pid_seq.host` (the Maildir convention:
    /// unique for this host, as long as the pid is not reused within one second).
    pub async fn begin(&self, host: &str) -> io::Result<Draft> {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let name = format!("{secs}.{}_{seq}.{host}", std::process::id());
        let path = self.tmp().join(&name);
        // `create_new`: a name that exists already is a bug, not a file to overwrite.
        let file = File::create_new(&path).await?;
        Ok(Draft {
            file: Some(file),
            path,
            name,
            size: 0,
        })
    }

    /// The bytes the mailbox holds: the sizes of the files in `cur/` and `new/` (`read_dir`
    /// and `metadata`), what a quota counts. `tmp/` holds no delivered mail and is not
    /// counted.
    pub async fn size(&self) -> io::Result<u64> {
        let mut total = 0;
        for dir in [self.cur(), self.new_dir()] {
            let mut entries = fs::read_dir(&dir).await?;
            while let Some(entry) = entries.next_entry().await? {
                let meta = entry.metadata().await?;
                if meta.is_file() {
                    total += meta.len();
                }
            }
        }
        Ok(total)
    }
}

/// The host part of unique names: the kernel's host name, with `/` and `:` written as
/// `\057` and `\072`, as the Maildir convention asks (neither may appear in a name).
pub async fn host_name() -> String {
    let raw = fs::read_to_string("/proc/sys/kernel/hostname")
        .await
        .unwrap_or_else(|_| "localhost".into());
    raw.trim().replace('/', "\\057").replace(':', "\\072")
}

/// A message being written into `tmp/`: committed into `new/`, or removed (also when
/// dropped: a session timed out, cut off, or its client gone).
pub struct Draft {
    file: Option<File>,
    path: PathBuf,
    name: String,
    size: u64,
}

impl Draft {
    /// Its name, in `tmp/` now and in `new/` once committed.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let file = self.file.as_mut().expect("a live draft");
        file.write_all(bytes).await?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// Durable in `new/`: the file synced (its buffered bytes written out first), renamed,
    /// and the directory synced so the rename itself survives a crash. On an error before
    /// the rename, the file is removed from `tmp/`; one after it (the directory's fsync)
    /// leaves the message in `new/` while the caller reports a failure: it may then be
    /// delivered twice on a retry, never lost.
    pub async fn commit(mut self, maildir: &Maildir) -> io::Result<PathBuf> {
        let mut file = self.file.take().expect("a live draft");
        // overlap's `sync_all` takes `&mut self` (it writes out its buffer first).
        file.sync_all().await?;
        drop(file);
        let to = maildir.new_dir().join(&self.name);
        fs::rename(&self.path, &to).await?;
        // Renamed: nothing is left in `tmp/` for `Drop` to remove.
        self.path = PathBuf::new();
        // tokio: `File::open(dir).await?.sync_all().await?` — the same here.
        File::open(maildir.new_dir()).await?.sync_all().await?;
        Ok(to)
    }

    /// Removed from `tmp/`, now.
    pub async fn discard(mut self) -> io::Result<()> {
        drop(self.file.take());
        let path = std::mem::take(&mut self.path);
        fs::remove_file(&path).await
    }
}

impl Drop for Draft {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            // No `.await` in a drop: std's call, as a tokio user would make it too. The
            // file's own write job, if one is in flight, finishes on the unlinked inode.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// One message as the reader found it in `new/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its unique name (without flags).
    pub name: String,
    pub bytes: Vec<u8>,
}

/// The reader's side: the messages in `new/`, by name, each read and then moved to `cur/`
/// as `<name>:2,S` (seen), so a second call finds none of them again.
pub async fn take_new(maildir: &Maildir) -> io::Result<Vec<Message>> {
    let mut names = Vec::new();
    let mut entries = fs::read_dir(maildir.new_dir()).await?;
    while let Some(entry) = entries.next_entry().await? {
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    let mut messages = Vec::new();
    for name in names {
        let from = maildir.new_dir().join(&name);
        let bytes = fs::read(&from).await?;
        fs::rename(&from, maildir.cur().join(format!("{name}:2,S"))).await?;
        messages.push(Message { name, bytes });
    }
    Ok(messages)
}

/// The names in `dir` (for `tmp/`, `new/`, `cur/`), sorted.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
