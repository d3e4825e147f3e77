//! The storage directory: an index of its files and their ETags, the disk quota shared by
//! every upload in progress, and uploads streamed into temp files that are synced, renamed
//! into place and made durable with an fsync of the directory, or removed.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use overlap::fs::{self, File, OpenOptions};
use overlap::io::{self, AsyncReadExt, AsyncWriteExt};
use overlap::sync::RwLock;

use super::names::{decode_name, Fnv};

/// The uploads' temp files live here, inside the storage directory (so a rename is atomic)
/// and under a name no client may use (names cannot start with `.`).
pub const UPLOADS: &str = ".uploads";

/// A stored file, as the index knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub etag: String,
    pub len: u64,
}

/// A request's precondition on the file it changes (RFC 9110 13.1.1, 13.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    None,
    /// `If-None-Match: *`: only if there is no such file.
    Absent,
    /// `If-Match`: only if the file's ETag is one of these (`*`: any file).
    Matches(Vec<String>),
}

impl Precondition {
    fn holds(&self, current: Option<&Entry>) -> bool {
        match (self, current) {
            (Precondition::None, _) => true,
            (Precondition::Absent, cur) => cur.is_none(),
            (Precondition::Matches(_), None) => false,
            (Precondition::Matches(tags), Some(e)) => tags.iter().any(|t| t == "*" || *t == e.etag),
        }
    }
}

/// Why an upload or a delete did not happen, short of an I/O error.
#[derive(Debug)]
pub enum Refused {
    /// 412.
    Precondition,
    /// Over the per-upload limit: 413.
    TooLarge,
    /// Over the quota: 507.
    Quota,
    /// 404 (delete).
    Missing,
    Io(io::Error),
}

impl From<io::Error> for Refused {
    fn from(e: io::Error) -> Refused {
        Refused::Io(e)
    }
}

pub struct Store {
    pub dir: PathBuf,
    uploads: PathBuf,
    pub max_upload: u64,
    pub quota: u64,
    index: RefCell<HashMap<String, Entry>>,
    /// Stored bytes plus what uploads in progress hold back.
    used: Cell<u64>,
    next_temp: Cell<u64>,
    /// Commits and deletes write; opening a file to read it reads: a GET never sees one
    /// file's bytes under another's ETag.
    lock: RwLock<()>,
    /// Temp files removed at startup.
    pub stale_removed: usize,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dir", &self.dir).finish()
    }
}

impl Store {
    /// Opens the storage directory `dir` (made if missing): leftover temp files from a
    /// crash are removed, and every stored file is hashed into the index.
    pub async fn open(dir: &Path, max_upload: u64, quota: u64) -> io::Result<Rc<Store>> {
        let uploads = dir.join(UPLOADS);
        fs::create_dir_all(&uploads).await?;
        let mut stale_removed = 0;
        let mut leftovers = fs::read_dir(&uploads).await?;
        while let Some(e) = leftovers.next_entry().await? {
            fs::remove_file(e.path()).await?;
            stale_removed += 1;
        }
        let mut index = HashMap::new();
        let mut used = 0;
        let mut entries = fs::read_dir(dir).await?;
        while let Some(e) = entries.next_entry().await? {
            let Some(name) = e.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if decode_name(&name).as_deref() != Ok(name.as_str()) || name.contains('%') {
                continue;
            }
            if !e.file_type().await?.is_file() {
                continue;
            }
            let entry = hash_file(&e.path()).await?;
            used += entry.len;
            index.insert(name, entry);
        }
        Ok(Rc::new(Store {
            dir: dir.to_owned(),
            uploads,
            max_upload,
            quota,
            index: RefCell::new(index),
            used: Cell::new(used),
            next_temp: Cell::new(0),
            lock: RwLock::new(()),
            stale_removed,
        }))
    }

    pub fn used(&self) -> u64 {
        self.used.get()
    }

    pub fn entry(&self, name: &str) -> Option<Entry> {
        self.index.borrow().get(name).cloned()
    }

    /// The temp files there are now.
    pub fn temp_files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&self.uploads)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    }

    /// Holds `n` more bytes of the quota back, unless that would pass it.
    fn reserve(&self, n: u64) -> Result<(), Refused> {
        let used = self.used.get();
        if used.checked_add(n).is_none_or(|total| total > self.quota) {
            return Err(Refused::Quota);
        }
        self.used.set(used + n);
        Ok(())
    }

    fn release(&self, n: u64) {
        self.used.set(self.used.get() - n);
    }

    /// Starts an upload to `name`: checks what can be checked before the body (the
    /// declared length against the limit and the quota, the precondition against the file
    /// as it is now; it is checked again at the commit) and creates the temp file.
    pub async fn begin(
        self: &Rc<Store>,
        name: &str,
        declared: Option<u64>,
        pre: &Precondition,
    ) -> Result<Upload, Refused> {
        if declared.is_some_and(|n| n > self.max_upload) {
            return Err(Refused::TooLarge);
        }
        if !pre.holds(self.entry(name).as_ref()) {
            return Err(Refused::Precondition);
        }
        let reserved = declared.unwrap_or(0);
        self.reserve(reserved)?;
        let n = self.next_temp.get();
        self.next_temp.set(n + 1);
        // The guard exists before the file does: from here on, however the upload ends,
        // its reservation is given back and its temp file removed.
        let mut upload = Upload {
            store: self.clone(),
            name: name.to_owned(),
            temp: self.uploads.join(format!("{n}.part")),
            file: None,
            hash: Fnv::START,
            written: 0,
            reserved,
            done: false,
        };
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&upload.temp)
            .await?;
        upload.file = Some(file);
        Ok(upload)
    }

    /// Opens `name` to read it, with its entry as of the same moment.
    pub async fn open_file(&self, name: &str) -> io::Result<Option<(File, Entry)>> {
        let _reading = self.lock.read().await;
        let Some(entry) = self.entry(name) else {
            return Ok(None);
        };
        let file = File::open(self.dir.join(name)).await?;
        Ok(Some((file, entry)))
    }

    /// Removes `name` if `pre` holds.
    pub async fn delete(&self, name: &str, pre: &Precondition) -> Result<(), Refused> {
        let _writing = self.lock.write().await;
        let Some(entry) = self.entry(name) else {
            return Err(Refused::Missing);
        };
        if !pre.holds(Some(&entry)) {
            return Err(Refused::Precondition);
        }
        fs::remove_file(self.dir.join(name)).await?;
        self.index.borrow_mut().remove(name);
        self.release(entry.len);
        self.sync_dir().await?;
        Ok(())
    }

    /// fsync of the directory itself, so that a rename or an unlink survives a crash.
    async fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir).await?.sync_all().await
    }
}

/// An upload in progress. Dropped before [`commit`](Upload::commit) succeeds (an error, a
/// refusal, the client gone, a timeout, the task aborted), it removes its temp file and
/// gives its part of the quota back.
pub struct Upload {
    store: Rc<Store>,
    name: String,
    pub temp: PathBuf,
    file: Option<File>,
    hash: Fnv,
    pub written: u64,
    reserved: u64,
    done: bool,
}

impl Upload {
    /// Appends `piece` to the temp file, checking the limit and the quota first.
    pub async fn write(&mut self, piece: &[u8]) -> Result<(), Refused> {
        let after = self.written + piece.len() as u64;
        if after > self.store.max_upload {
            return Err(Refused::TooLarge);
        }
        if after > self.reserved {
            self.store.reserve(after - self.reserved)?;
            self.reserved = after;
        }
        self.hash.update(piece);
        self.file.as_mut().unwrap().write_all(piece).await?;
        self.written = after;
        Ok(())
    }

    /// Makes the upload the file `name`, if `pre` still holds: the temp file synced, then
    /// renamed over `name`, then the directory synced. Gives the new entry, and whether
    /// there was no file before.
    pub async fn commit(mut self, pre: &Precondition) -> Result<(Entry, bool), Refused> {
        let mut file = self.file.take().unwrap();
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        let store = self.store.clone();
        let _writing = store.lock.write().await;
        let old = store.entry(&self.name);
        if !pre.holds(old.as_ref()) {
            return Err(Refused::Precondition);
        }
        fs::rename(&self.temp, store.dir.join(&self.name)).await?;
        self.done = true;
        let entry = Entry {
            etag: self.hash.etag(),
            len: self.written,
        };
        // The upload's reservation becomes the file's; the old file's bytes are free.
        store.release(self.reserved - self.written);
        self.reserved = 0;
        if let Some(old) = &old {
            store.release(old.len);
        }
        store
            .index
            .borrow_mut()
            .insert(self.name.clone(), entry.clone());
        store.sync_dir().await?;
        Ok((entry, old.is_none()))
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        self.store.release(self.reserved);
        if !self.done {
            // A sync unlink: quick, and a drop cannot await. The `File` may still have a
            // write job in flight; it finishes on the unlinked inode.
            match std::fs::remove_file(&self.temp) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => eprintln!("upload service: cannot remove {:?}: {e}", self.temp),
            }
        }
    }
}

/// A stored file's length and ETag, read through once.
async fn hash_file(path: &Path) -> io::Result<Entry> {
    let mut file = File::open(path).await?;
    let mut hash = Fnv::START;
    let mut len = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        len += n as u64;
    }
    Ok(Entry {
        etag: hash.etag(),
        len,
    })
}
