//! A user's file tool, sketched as one would for tokio (walk a tree with `fs::read_dir`, hash
//! the files concurrently under a `Semaphore` limit in a `JoinSet`, write a report through a
//! `BufWriter<fs::File>` to a temporary name and `fs::rename` it into place) and then written
//! for overlap. The test checks the report line by line against hashes computed with std,
//! that no more files were open at once than the limit allows, that an unreadable entry
//! (a dangling symlink) is reported and not fatal, and that a reader never sees a half
//! written report: the old one stays in place until the rename.

mod support;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use overlap::fs;
use overlap::io::{self, AsyncReadExt, AsyncWriteExt, BufWriter};
use overlap::sync::Semaphore;
use overlap::task::JoinSet;
use support::{within, TempDir};

const HANG: Duration = Duration::from_secs(10);

/// FNV-1a, 64 bits: enough to tell files apart, with no crate needed.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Every regular file under `root`, depth first, with symlinks listed as they are (not
/// followed); directories are read one at a time, as tokio's examples do.
async fn walk(root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut dirs = vec![root.to_path_buf()];
    let mut files = Vec::new();
    while let Some(dir) = dirs.pop() {
        let mut entries = fs::read_dir(&dir).await?;
        while let Some(entry) = entries.next_entry().await? {
            let kind = entry.file_type().await?;
            if kind.is_dir() {
                dirs.push(entry.path());
            } else {
                // Regular files and symlinks alike: a dangling link fails at open.
                files.push(entry.path());
            }
        }
    }
    files.sort();
    Ok(files)
}

/// How many hash jobs hold a file open now, and the most that ever did.
#[derive(Default)]
struct Gauge {
    now: Cell<usize>,
    peak: Cell<usize>,
}

async fn hash_file(path: &Path, gauge: &Gauge) -> io::Result<(u64, u64)> {
    gauge.now.set(gauge.now.get() + 1);
    gauge.peak.set(gauge.peak.get().max(gauge.now.get()));
    let result = async {
        let mut file = fs::File::open(path).await?;
        let mut hash = Fnv::new();
        let mut len = 0u64;
        let mut buf = vec![0u8; 8192];
        loop {
            let n = file.read(&mut buf).await?;
            if n == 0 {
                return Ok((hash.0, len));
            }
            hash.update(&buf[..n]);
            len += n as u64;
        }
    }
    .await;
    gauge.now.set(gauge.now.get() - 1);
    result
}

/// One line per file, `hash  len  relative/path` or `ERROR  kind  relative/path`, sorted by
/// path.
async fn build_report(root: &Path, limit: usize, gauge: Rc<Gauge>) -> io::Result<String> {
    let files = walk(root).await?;
    let permits = Rc::new(Semaphore::new(limit));
    let mut set = JoinSet::new();
    for path in files {
        let permits = permits.clone();
        let gauge = gauge.clone();
        set.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("never closed");
            let result = hash_file(&path, &gauge).await;
            (path, result)
        });
    }
    let mut lines = BTreeMap::new();
    while let Some(done) = set.join_next().await {
        let (path, result) = done.expect("a hash task panicked");
        let rel = path.strip_prefix(root).unwrap().display().to_string();
        let line = match result {
            Ok((hash, len)) => format!("{hash:016x}  {len}  {rel}"),
            Err(e) => format!("ERROR  {:?}  {rel}", e.kind()),
        };
        lines.insert(rel, line);
    }
    let mut report = String::new();
    for line in lines.values() {
        report.push_str(line);
        report.push('\n');
    }
    Ok(report)
}

/// Writes `report` next to `dest` and renames it over `dest`, so a reader sees the old
/// report or the new one, never a part of it.
async fn publish(report: &str, dest: &Path) -> io::Result<()> {
    let tmp = dest.with_extension("tmp");
    let file = fs::File::create(&tmp).await?;
    let mut out = BufWriter::new(file);
    for line in report.lines() {
        out.write_all(line.as_bytes()).await?;
        out.write_all(b"\n").await?;
    }
    // tokio: `out.flush().await?; out.get_mut().sync_all().await?`; the same here (File's
    // `sync_all` takes `&mut self`, so `get_mut`, not `get_ref`).
    out.flush().await?;
    out.get_mut().sync_all().await?;
    drop(out);
    fs::rename(&tmp, dest).await
}

/// The tree: nested dirs, an empty file, a big file spanning many reads, a dangling link.
fn make_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut expect = BTreeMap::new();
    for (i, rel) in [
        "a.txt",
        "sub/b.txt",
        "sub/deeper/c.bin",
        "sub/deeper/d",
        "z/empty",
    ]
    .iter()
    .enumerate()
    {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let bytes = if rel.ends_with("empty") {
            Vec::new()
        } else {
            support::pattern_seeded(1000 * (i + 1) * (i + 1) * 37, i as u32)
        };
        std::fs::write(&path, &bytes).unwrap();
        expect.insert(rel.to_string(), bytes);
    }
    for n in 0..20 {
        let rel = format!("many/f{n:02}");
        let bytes = format!("file number {n}\n").into_bytes();
        std::fs::create_dir_all(root.join("many")).unwrap();
        std::fs::write(root.join(&rel), &bytes).unwrap();
        expect.insert(rel, bytes);
    }
    std::os::unix::fs::symlink(root.join("nowhere"), root.join("sub/dangling")).unwrap();
    expect
}

#[overlap::test]
async fn the_report_lists_every_file_with_its_hash_and_replaces_the_old_one_whole() {
    let tree = TempDir::new("user2-hash-tree");
    let out = TempDir::new("user2-hash-out");
    let expect = make_tree(tree.path());
    let dest = out.join("report.txt");
    std::fs::write(&dest, "old report\n").unwrap();

    let gauge = Rc::new(Gauge::default());
    let report = within(HANG, build_report(tree.path(), 3, gauge.clone()), "report")
        .await
        .unwrap();
    // Until the rename, readers see the old report.
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "old report\n");
    within(HANG, publish(&report, &dest), "publish")
        .await
        .unwrap();

    let written = fs::read_to_string(&dest).await.unwrap();
    assert_eq!(written, report);
    assert!(
        !out.join("report.tmp").exists(),
        "the temporary file was renamed away"
    );
    let mut want = BTreeMap::new();
    for (rel, bytes) in &expect {
        let mut h = Fnv::new();
        h.update(bytes);
        want.insert(rel.clone(), format!("{:016x}  {}  {rel}", h.0, bytes.len()));
    }
    want.insert(
        "sub/dangling".into(),
        "ERROR  NotFound  sub/dangling".into(),
    );
    let want: Vec<&str> = want.values().map(String::as_str).collect();
    let got: Vec<&str> = written.lines().collect();
    assert_eq!(got, want);
    assert!(
        (1..=3).contains(&gauge.peak.get()),
        "at most 3 files open at once, saw {}",
        gauge.peak.get()
    );
}

#[overlap::test]
async fn a_missing_root_fails_the_walk_with_not_found() {
    let dir = TempDir::new("user2-hash-missing");
    let err = walk(&dir.join("absent")).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    // The message names the path (a deliberate difference from tokio, whose errors are
    // std's bare OS errors), so the code is read through `raw_os_error`.
    assert!(err.to_string().contains("absent"), "{err}");
    assert_eq!(io::raw_os_error(&err), Some(libc::ENOENT));
}
