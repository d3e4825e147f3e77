//! Temp dirs, test bytes, waiting for a condition.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A fresh directory under the system temp dir, removed (with its contents) on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "overlap-test-{}-{}-{}",
            name,
            std::process::id(),
            n
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Removes every [`TempDir`] that the (finished) process `pid` left behind: one whose own
/// clean-up a fault filter refused, or one a child exiting without unwinding never dropped.
pub fn remove_temp_dirs_of(pid: u32) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("overlap-test-")) else {
            continue;
        };
        // `overlap-test-{name}-{pid}-{n}`: the pid is the second field from the end.
        let mut fields = rest.rsplit('-');
        let (_n, owner) = (fields.next(), fields.next());
        if owner == Some(pid.to_string().as_str()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Deterministic test bytes (see [`pattern_seeded`](super::pattern_seeded)) with seed 0.
pub fn pattern(len: usize) -> Vec<u8> {
    super::pattern_seeded(len, 0)
}

/// Polls `cond` until it holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    cond()
}

/// Whether the tests run as root (which bypasses permission bits).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
