//! The journal files on disk: opening (with startup recovery: the newest file scanned, a
//! torn or corrupt last entry cut off with `set_len`, the sequence numbers continued),
//! appending at the end offset with `PositionalFile::write_vec_at` (its buffer handed back
//! and reused), rotation at a size limit (the old file sealed with a footer) and retention
//! of the newest `keep` files.

use std::io;
use std::path::{Path, PathBuf};

use overlap::fs::{OpenOptions, PositionalFile};

use super::format::{self, Entry};

/// One retained journal file: its index, its first seq, its path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    pub index: u32,
    pub first_seq: u64,
    pub path: PathBuf,
}

pub fn path_of(dir: &Path, index: u32) -> PathBuf {
    dir.join(format!("journal-{index:06}.jnl"))
}

fn index_of(name: &str) -> Option<u32> {
    name.strip_prefix("journal-")?
        .strip_suffix(".jnl")?
        .parse()
        .ok()
}

/// What startup recovery did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Bytes cut off the newest file's end (a torn or corrupt last entry).
    pub truncated: u64,
    /// The newest file was sealed, so a new one was started.
    pub was_sealed: bool,
}

pub struct Journal {
    dir: PathBuf,
    max_file: u64,
    keep: usize,
    /// The file written now (`None` only while opening).
    file: Option<PositionalFile>,
    offset: u64,
    in_file: u64,
    next_seq: u64,
    files: Vec<FileInfo>,
    /// The write buffer, handed to `write_vec_at` and back.
    buf: Vec<u8>,
    pub rotations: u64,
    pub removed: u64,
}

impl Journal {
    /// Opens the journal in `dir`, recovering the newest file, or starts it.
    pub async fn open(dir: &Path, max_file: u64, keep: usize) -> io::Result<(Journal, Recovery)> {
        let mut indices = Vec::new();
        let mut rd = overlap::fs::read_dir(dir).await?;
        while let Some(entry) = rd.next_entry().await? {
            if let Some(i) = entry.file_name().to_str().and_then(index_of) {
                indices.push(i);
            }
        }
        indices.sort_unstable();
        let mut files = Vec::new();
        for &i in &indices {
            let path = path_of(dir, i);
            let head = PositionalFile::open(&path)
                .await?
                .read_vec_at(format::HEADER, 0)
                .await?;
            let (_, first_seq) = format::parse_header(&head).ok_or_else(|| bad(&path, "header"))?;
            files.push(FileInfo {
                index: i,
                first_seq,
                path,
            });
        }
        let mut recovery = Recovery::default();
        let mut j = Journal {
            dir: dir.to_owned(),
            max_file,
            keep,
            file: None,
            offset: 0,
            in_file: 0,
            next_seq: 1,
            files: Vec::new(),
            buf: Vec::new(),
            rotations: 0,
            removed: 0,
        };
        let Some(newest) = files.last().cloned() else {
            j.start_file(1).await?;
            return Ok((j, recovery));
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open_positional(&newest.path)
            .await?;
        let len = file.metadata().await?.len();
        let bytes = file.read_vec_at(len as usize, 0).await?;
        let scan = format::scan(&bytes).ok_or_else(|| bad(&newest.path, "header"))?;
        j.files = files;
        j.next_seq = scan
            .entries
            .last()
            .map_or(scan.first_seq, |(_, e)| e.seq + 1);
        if let Some((last, _)) = scan.footer {
            recovery.was_sealed = true;
            j.next_seq = last + 1;
            j.start_file(newest.index + 1).await?;
            return Ok((j, recovery));
        }
        if len > scan.good_end {
            file.set_len(scan.good_end).await?;
            file.sync_all().await?;
            recovery.truncated = len - scan.good_end;
        }
        j.file = Some(file);
        j.offset = scan.good_end;
        j.in_file = scan.entries.len() as u64;
        Ok((j, recovery))
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn files(&self) -> &[FileInfo] {
        &self.files
    }

    /// Appends an entry (its `seq` assigned here), rotating first if it would not fit
    /// with the footer; gives the entry as written and its record's bytes.
    pub async fn append(&mut self, mut e: Entry) -> io::Result<(Entry, Vec<u8>)> {
        e.seq = self.next_seq;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        format::encode_entry(&e, &mut buf);
        let len = buf.len() as u64;
        if self.in_file > 0 && self.offset + len + format::FOOTER as u64 > self.max_file {
            self.rotate().await?;
        }
        let record = buf.clone();
        self.buf = self.current().write_vec_at(buf, self.offset).await?;
        self.offset += len;
        self.in_file += 1;
        self.next_seq += 1;
        Ok((e, record))
    }

    /// Seals the current file with a footer and starts the next, deleting the oldest
    /// files past `keep`.
    pub async fn rotate(&mut self) -> io::Result<()> {
        let footer = format::footer(self.next_seq - 1, self.in_file);
        self.current().write_all_at(&footer, self.offset).await?;
        self.current().sync_data().await?;
        let next = self.files.last().map_or(1, |f| f.index + 1);
        self.start_file(next).await?;
        self.rotations += 1;
        while self.files.len() > self.keep {
            let old = self.files.remove(0);
            overlap::fs::remove_file(&old.path).await?;
            self.removed += 1;
        }
        Ok(())
    }

    async fn start_file(&mut self, index: u32) -> io::Result<()> {
        let path = path_of(&self.dir, index);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open_positional(&path)
            .await?;
        let header = format::header(index, self.next_seq);
        file.write_all_at(&header, 0).await?;
        self.file = Some(file);
        self.offset = header.len() as u64;
        self.in_file = 0;
        self.files.push(FileInfo {
            index,
            first_seq: self.next_seq,
            path,
        });
        Ok(())
    }

    /// The raw fd of the file written now (for the tests' fd checks).
    pub fn fd(&self) -> i32 {
        use std::os::fd::AsRawFd;
        self.current().as_raw_fd()
    }

    fn current(&self) -> &PositionalFile {
        self.file.as_ref().expect("a journal file is open")
    }
}

fn bad(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: bad journal {what}", path.display()),
    )
}
