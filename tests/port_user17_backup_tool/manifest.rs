//! A snapshot's manifest: what the walk found, in walk order (a directory before its
//! contents), with each file's chunk list. Paths are stored as hex of their bytes, so any
//! name (spaces, newlines, non-UTF-8) survives.
//!
//! ```text
//! overlap-backup-manifest v1
//! D <mode octal> <mtime s>.<ns> <path hex>
//! F <mode octal> <mtime s>.<ns> <size> <path hex> <chunk id>,<chunk id>,...   ("-": none)
//! L <path hex> <target hex>
//! end <entries>
//! ```

use std::ffi::OsStr;
use std::io::{self, ErrorKind};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::chunker::ChunkId;
use super::repo::{write_atomically, Repo};

const HEADER: &str = "overlap-backup-manifest v1";

/// Seconds and nanoseconds since the epoch.
pub type Mtime = (i64, u32);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir {
        mode: u32,
        mtime: Mtime,
    },
    File {
        mode: u32,
        mtime: Mtime,
        size: u64,
        chunks: Vec<ChunkId>,
    },
    Symlink {
        target: PathBuf,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the backed-up directory.
    pub path: PathBuf,
    pub kind: Kind,
}

pub fn encode(entries: &[Entry]) -> String {
    let mut out = format!("{HEADER}\n");
    for e in entries {
        let path = hex(e.path.as_os_str().as_bytes());
        out += &match &e.kind {
            Kind::Dir { mode, mtime } => format!("D {mode:o} {}.{} {path}\n", mtime.0, mtime.1),
            Kind::File {
                mode,
                mtime,
                size,
                chunks,
            } => {
                let list: Vec<String> = chunks.iter().map(|c| c.to_string()).collect();
                let list = if list.is_empty() {
                    "-".into()
                } else {
                    list.join(",")
                };
                format!("F {mode:o} {}.{} {size} {path} {list}\n", mtime.0, mtime.1)
            }
            Kind::Symlink { target } => {
                format!("L {path} {}\n", hex(target.as_os_str().as_bytes()))
            }
        };
    }
    out + &format!("end {}\n", entries.len())
}

pub fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let mut lines = text.lines().enumerate();
    if lines.next().map(|(_, l)| l) != Some(HEADER) {
        return Err("not a manifest (bad header)".into());
    }
    let mut entries = Vec::new();
    for (n, line) in lines {
        if let Some(count) = line.strip_prefix("end ") {
            return match count.parse::<usize>() {
                Ok(c) if c == entries.len() => Ok(entries),
                _ => Err(format!("line {}: count {count:?} does not match", n + 1)),
            };
        }
        let entry =
            parse_entry(line).ok_or_else(|| format!("line {}: malformed {line:?}", n + 1))?;
        entries.push(entry);
    }
    Err("truncated (no end line)".into())
}

fn parse_entry(line: &str) -> Option<Entry> {
    let f: Vec<&str> = line.split(' ').collect();
    let (path, kind) = match f[..] {
        ["D", mode, mtime, path] => (
            path,
            Kind::Dir {
                mode: octal(mode)?,
                mtime: time(mtime)?,
            },
        ),
        ["F", mode, mtime, size, path, list] => {
            let chunks = match list {
                "-" => Vec::new(),
                _ => list.split(',').map(ChunkId::parse).collect::<Option<_>>()?,
            };
            let (mode, mtime, size) = (octal(mode)?, time(mtime)?, size.parse().ok()?);
            (
                path,
                Kind::File {
                    mode,
                    mtime,
                    size,
                    chunks,
                },
            )
        }
        ["L", path, target] => (
            path,
            Kind::Symlink {
                target: unhex(target)?,
            },
        ),
        _ => return None,
    };
    let path = unhex(path)?;
    // A manifest must not restore outside the destination.
    let safe = path
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    (safe && !path.as_os_str().is_empty()).then_some(Entry { path, kind })
}

fn octal(s: &str) -> Option<u32> {
    u32::from_str_radix(s, 8).ok().filter(|m| *m <= 0o7777)
}

fn time(s: &str) -> Option<Mtime> {
    let (secs, nanos) = s.split_once('.')?;
    Some((
        secs.parse().ok()?,
        nanos.parse().ok().filter(|n| *n < 1_000_000_000)?,
    ))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<PathBuf> {
    if s.len() % 2 != 0 || s.is_empty() {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    Some(PathBuf::from(OsStr::from_bytes(&bytes?)))
}

pub async fn save(repo: &Repo, id: u32, entries: &[Entry]) -> io::Result<()> {
    write_atomically(&repo.snapshot_path(id), encode(entries).as_bytes()).await
}

pub async fn load(repo: &Repo, id: u32) -> io::Result<Vec<Entry>> {
    let path = repo.snapshot_path(id);
    let text = overlap::fs::read_to_string(&path).await?;
    parse(&text).map_err(|msg| invalid(&path, &msg))
}

fn invalid(path: &Path, msg: &str) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, format!("{}: {msg}", path.display()))
}

/// The parser's own test, beside it: each malformed line refused naming it, and a round
/// trip of names no line format would survive unescaped.
#[test]
fn malformed_manifests_are_refused_naming_the_line() {
    let id = ChunkId::of(b"x");
    let file = |list: &str| format!("F 644 1.0 1 61 {list}\nend 1\n");
    let (bad_id, no_chunks) = (file(&id.to_string()[1..]), file(""));
    let cases: [(&str, &str); 12] = [
        ("", "truncated (no end line)"),
        ("D 755 1.0 61\n", "truncated (no end line)"),
        (
            "D 755 1.0 61\nend 2\n",
            "line 3: count \"2\" does not match",
        ),
        ("X 1 2\nend 1\n", "line 2: malformed \"X 1 2\""),
        ("D 955 1.0 61\nend 1\n", "line 2: malformed"),
        ("D 755 1.2000000000 61\nend 1\n", "line 2: malformed"),
        (&bad_id, "line 2: malformed"),
        (&no_chunks, "line 2: malformed"),
        ("L 6 61\nend 1\n", "line 2: malformed"),
        // Paths that would leave the destination: "..", "/etc", "a/../..".
        ("L 2e2e 61\nend 1\n", "line 2: malformed"),
        ("D 755 1.0 2f657463\nend 1\n", "line 2: malformed"),
        ("D 755 1.0 612f2e2e2f2e2e\nend 1\n", "line 2: malformed"),
    ];
    for (i, (body, expected)) in cases.iter().enumerate() {
        let err = parse(&format!("{HEADER}\n{body}")).unwrap_err();
        assert!(err.starts_with(expected), "case {i}: {err}");
    }
    assert_eq!(
        parse("D 755 1.0 61\nend 1\n").unwrap_err(),
        "not a manifest (bad header)"
    );
    let entries = vec![Entry {
        path: PathBuf::from(OsStr::from_bytes(b"new\nline\ttab \xff")),
        kind: Kind::File {
            mode: 0o4755,
            mtime: (-5, 7),
            size: 3,
            chunks: vec![id, id],
        },
    }];
    assert_eq!(parse(&encode(&entries)), Ok(entries));
}
