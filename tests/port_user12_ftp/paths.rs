//! The session's view of the disk: a virtual path (`/`, `/docs/a.txt`) under the server's
//! root, resolved lexically (`..` above `/` refused) and then confined (a symlink leading
//! out of the root refused), and `LIST`'s `ls -l`-style lines.

use std::io;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use overlap::fs;
use overlap::stream::wrappers::ReadDirStream;
use overlap::stream::StreamExt;

/// Why a path was refused: each is a 550 to the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// `..` past the root, or a path that leads out of it through a link.
    OutsideRoot,
    /// A NUL byte or an empty name.
    BadName,
}

/// `arg` taken from `cwd` (a virtual path starting with `/`): the virtual path it names,
/// `.` and `..` applied, or `OutsideRoot` if `..` climbs above `/`.
pub fn virtual_path(cwd: &str, arg: &str) -> Result<String, Refused> {
    if arg.contains('\0') {
        return Err(Refused::BadName);
    }
    let mut parts: Vec<&str> = if arg.starts_with('/') {
        Vec::new()
    } else {
        cwd.split('/').filter(|p| !p.is_empty()).collect()
    };
    for part in arg.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(Refused::OutsideRoot);
                }
            }
            name => parts.push(name),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// The real path of the virtual `path` under `root` (itself canonical), checked to stay
/// inside it: what exists of it is canonicalized (the whole path, or its parent for a
/// name yet to be made) and must be under `root`.
pub async fn real_path(root: &Path, path: &str) -> Result<PathBuf, Refused> {
    let real = root.join(path.trim_start_matches('/'));
    let existing = if fs::symlink_metadata(&real).await.is_ok() {
        real.clone()
    } else {
        real.parent().unwrap_or(root).to_path_buf()
    };
    match fs::canonicalize(&existing).await {
        Ok(c) if c.starts_with(root) => Ok(real),
        Ok(_) => Err(Refused::OutsideRoot),
        // A parent that does not exist: the command itself fails on it with its own 550.
        Err(_) => Ok(real),
    }
}

/// The listing of `dir`, one `ls -l` line per entry (sorted by name), CRLF-terminated.
pub async fn list(dir: &Path) -> io::Result<String> {
    let mut entries = ReadDirStream::new(fs::read_dir(dir).await?);
    let mut lines = Vec::new();
    while let Some(entry) = entries.next().await {
        let entry = entry?;
        let meta = entry.metadata().await?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = if meta.is_dir() { 'd' } else { '-' };
        let secs = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let line = format!(
            "{kind}rw-r--r-- 1 ftp ftp {:>12} {} {name}\r\n",
            meta.len(),
            ls_date(secs)
        );
        lines.push((name, line));
    }
    lines.sort();
    Ok(lines.into_iter().map(|(_, l)| l).collect())
}

/// `Mon DD HH:MM` of a Unix time (UTC), as `ls -l` shows a recent file.
fn ls_date(secs: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, for the month and day.
    let z = days as i64 + 719_468;
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    format!(
        "{} {day:>2} {:02}:{:02}",
        MONTHS[month as usize - 1],
        rest / 3600,
        rest % 3600 / 60
    )
}

#[test]
fn virtual_paths_stay_under_the_root() {
    assert_eq!(virtual_path("/", "a/b").unwrap(), "/a/b");
    assert_eq!(virtual_path("/a", "../b/./c").unwrap(), "/b/c");
    assert_eq!(virtual_path("/a/b", "/x").unwrap(), "/x");
    assert_eq!(virtual_path("/a", "..").unwrap(), "/");
    assert_eq!(virtual_path("/", ".."), Err(Refused::OutsideRoot));
    assert_eq!(virtual_path("/a", "../../etc"), Err(Refused::OutsideRoot));
    assert_eq!(
        virtual_path("/", "/../etc/passwd"),
        Err(Refused::OutsideRoot)
    );
    assert_eq!(virtual_path("/", "a\0b"), Err(Refused::BadName));
    assert_eq!(ls_date(0), "Jan  1 00:00");
    assert_eq!(ls_date(951_782_400 + 3_661), "Feb 29 01:01");
}
