//! One segment file: records of consecutive offsets, appended at its end with
//! `write_vec_at`, read back with `read_vec_at`, its consumed front punched out with
//! `punch_hole`. The file is named by the offset of its first record
//! (`00000000000000001000.seg`), so a directory listing sorted by name is the log in order.

use std::io;
use std::path::{Path, PathBuf};

use overlap::fs::{OpenOptions, PositionalFile};

use super::record::{self, Scanned};

/// A segment file and its index, in memory.
pub struct Segment {
    /// The offset in its name: its first record's when it was written.
    pub base: u64,
    pub path: PathBuf,
    pub file: PositionalFile,
    /// The offset of `positions[0]`.
    pub index_base: u64,
    /// Where each record from `index_base` on begins.
    pub positions: Vec<u64>,
    /// The end of its last synced record.
    pub len: u64,
    /// The bytes before this are a hole (punched by retention).
    pub punched: u64,
}

/// The file name of the segment whose first offset is `base`.
pub fn file_name(base: u64) -> String {
    format!("{base:020}.seg")
}

/// The base offset a segment file's name gives, if it is one.
pub fn base_of(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    (digits.len() == 20).then(|| digits.parse().ok())?
}

impl Segment {
    /// A new, empty segment for offsets from `base` on.
    pub async fn create(dir: &Path, base: u64) -> io::Result<Segment> {
        let path = dir.join(file_name(base));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open_positional(&path)
            .await?;
        Ok(Segment {
            base,
            path,
            file,
            index_base: base,
            positions: Vec::new(),
            len: 0,
            punched: 0,
        })
    }

    /// Opens the segment at `path` and indexes its records, cutting off a torn or corrupt
    /// tail (a line in `log` says what and where).
    pub async fn recover(
        path: &Path,
        base: u64,
        max_payload: usize,
        log: &mut Vec<String>,
    ) -> io::Result<Segment> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open_positional(path)
            .await?;
        let size = file.metadata().await?.len();
        let bytes = file.read_vec_at(size as usize, 0).await?;
        let Scanned {
            first,
            positions,
            good_len,
            problem,
        } = record::scan(&bytes, base, max_payload);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let punched = positions.first().copied().unwrap_or(good_len);
        if let Some(why) = problem.filter(|_| good_len < size) {
            let offset = first + positions.len() as u64;
            log.push(format!(
                "recovery: {name}: {why} at byte {good_len} (offset {offset}); \
                 cut {} bytes, the log ends at offset {offset}",
                size - good_len
            ));
            file.set_len(good_len).await?;
            file.sync_all().await?;
        }
        Ok(Segment {
            base,
            path: path.to_path_buf(),
            file,
            index_base: first,
            positions,
            len: good_len,
            punched,
        })
    }

    /// The offset after its last record.
    pub fn end(&self) -> u64 {
        self.index_base + self.positions.len() as u64
    }

    /// Where the record of `offset` lies (start, length), if this segment indexes it.
    pub fn locate(&self, offset: u64) -> Option<(u64, u64)> {
        let i = usize::try_from(offset.checked_sub(self.index_base)?).ok()?;
        let start = *self.positions.get(i)?;
        let end = self.positions.get(i + 1).copied().unwrap_or(self.len);
        Some((start, end - start))
    }
}
