//! The tests' fixtures: random bytes, a source tree with every kind of entry, a tree's
//! contents and attributes to compare, fds open under a directory, and giving up root.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use super::backup::{back_up, Options};
use super::manifest;
use super::repo::{Index, Loc, Repo};
use super::support::{Rng, TempDir};

pub const KIB: usize = 1024;
pub const MIB: usize = 1024 * 1024;

/// Random bytes (for which the chunker's sizes hold on average), from a seed.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9) | 1);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn set_mtime(path: &Path, secs: u64, nanos: u32) {
    let file = std::fs::File::open(path).unwrap();
    file.set_modified(UNIX_EPOCH + Duration::new(secs, nanos))
        .unwrap();
}

pub fn write_file(path: &Path, bytes: &[u8], mode: u32, secs: u64) {
    std::fs::write(path, bytes).unwrap();
    set_mtime(path, secs, 123_456_789);
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A tree with every kind of thing a backup meets.
pub fn make_tree(src: &Path) {
    std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
    std::fs::create_dir(src.join("empty-dir")).unwrap();
    write_file(&src.join("a.txt"), b"hello\n", 0o644, 1_000_000_000);
    write_file(&src.join("empty"), b"", 0o600, 1_100_000_000);
    let big = random_bytes(3 * MIB, 1);
    write_file(&src.join("big.bin"), &big, 0o640, 1_200_000_000);
    write_file(&src.join("sub/copy-of-big.bin"), &big, 0o444, 1_300_000_000);
    write_file(
        &src.join("sub/deeper/run.sh"),
        b"#!/bin/sh\necho hi\n",
        0o755,
        1_400_000_000,
    );
    write_file(&src.join("odd\nname\t x"), b"odd", 0o604, 1_500_000_000);
    write_file(
        &src.join(OsStr::from_bytes(b"caf\xe9")),
        b"latin-1",
        0o644,
        1_600_000_000,
    );
    symlink("../a.txt", src.join("sub/link-to-a")).unwrap();
    symlink("nowhere", src.join("dangling")).unwrap();
    symlink("/etc/passwd", src.join("absolute")).unwrap();
    symlink("sub", src.join("link-to-dir")).unwrap();
    std::fs::set_permissions(src.join("sub"), std::fs::Permissions::from_mode(0o750)).unwrap();
    for (dir, secs) in [
        ("sub/deeper", 900_000_000),
        ("sub", 910_000_000),
        ("empty-dir", 920_000_000),
    ] {
        set_mtime(&src.join(dir), secs, 5);
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    Dir {
        mode: u32,
        mtime: (i64, i64),
    },
    File {
        mode: u32,
        mtime: (i64, i64),
        bytes: Vec<u8>,
    },
    Link(PathBuf),
}

/// Everything under `root` (not `root` itself), by relative path, symlinks not followed.
pub fn tree(root: &Path) -> BTreeMap<PathBuf, Seen> {
    fn visit(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, Seen>) {
        for e in std::fs::read_dir(root.join(rel)).unwrap() {
            let rel = rel.join(e.unwrap().file_name());
            let path = root.join(&rel);
            let m = std::fs::symlink_metadata(&path).unwrap();
            let (mode, mtime) = (m.mode() & 0o7777, (m.mtime(), m.mtime_nsec()));
            let seen = if m.file_type().is_symlink() {
                Seen::Link(std::fs::read_link(&path).unwrap())
            } else if m.is_dir() {
                visit(root, &rel, out);
                Seen::Dir { mode, mtime }
            } else {
                Seen::File {
                    mode,
                    mtime,
                    bytes: std::fs::read(&path).unwrap(),
                }
            };
            out.insert(rel, seen);
        }
    }
    let mut out = BTreeMap::new();
    visit(root, Path::new(""), &mut out);
    out
}

/// This process's fds open on something under `dir` (unique to one test, so no other
/// test's fds are counted).
pub fn fds_under(dir: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.starts_with(dir))
        .count()
}

/// Asserts that `pack`'s chunks in `index` lie back to back from 0, no gap and no
/// overlap, to exactly `len` bytes.
pub fn assert_tiles(index: &Index, pack: u32, len: u64) {
    let mut extents: Vec<_> = index.values().filter(|l| l.pack == pack).collect();
    extents.sort_unstable_by_key(|l| l.offset);
    let mut end = 0;
    for l in extents {
        assert_eq!(l.offset, end, "pack {pack}");
        end += l.len as u64;
    }
    assert_eq!(end, len, "pack {pack}");
}

pub fn pack_len(repo: &Repo, id: u32) -> u64 {
    std::fs::metadata(repo.pack_path(id)).unwrap().len()
}

/// Gives up root for this (child) process, becoming uid and gid 65534; false if refused.
pub fn become_nobody() -> bool {
    // SAFETY: setgid and setuid take no pointers; glibc applies them to every thread.
    unsafe { libc::setgid(65534) == 0 && libc::setuid(65534) == 0 }
}

pub fn mtime_of(path: &Path) -> (i64, u32) {
    let m = std::fs::symlink_metadata(path).unwrap();
    (m.mtime(), m.mtime_nsec() as u32)
}

/// Backs up a tree of three files, then returns the repository and the extent of the
/// first chunk of `victim`.
pub async fn backed_up_three_files(tmp: &TempDir) -> (Repo, Loc) {
    let src = tmp.join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("alpha"), random_bytes(100 * KIB, 21)).unwrap();
    std::fs::write(src.join("victim"), random_bytes(200 * KIB, 22)).unwrap();
    std::fs::write(src.join("zulu"), random_bytes(50 * KIB, 23)).unwrap();
    let repo = Repo::init(&tmp.join("repo")).await.unwrap();
    back_up(&repo, &src, Options::default()).await.unwrap();
    let entries = manifest::load(&repo, 1).await.unwrap();
    let victim = entries
        .iter()
        .find(|e| e.path == Path::new("victim"))
        .unwrap();
    let manifest::Kind::File { chunks, .. } = &victim.kind else {
        panic!()
    };
    let loc = repo.load_index().await.unwrap()[&chunks[0]];
    (repo, loc)
}
