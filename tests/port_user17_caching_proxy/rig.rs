//! The tests' set-up: a temp dir for the cache, the origin and the proxy started together,
//! and the checks at the end that nothing is left (no task, no fd on the cache's files).

use std::path::Path;
use std::time::Duration;

use crate::origin::Origin;
use crate::proxy::{Config, Proxy};
use crate::support::TempDir;

pub struct Rig {
    pub dir: TempDir,
    pub origin: Origin,
    pub proxy: Proxy,
    tasks_before: u64,
}

pub const MIB: usize = 1 << 20;

pub async fn rig(name: &str, cap: u64) -> Rig {
    let tasks_before = overlap::metrics().tasks_alive;
    let dir = TempDir::new(name);
    let origin = Origin::start().await;
    let proxy = Proxy::start(Config {
        origin: origin.addr,
        dir: dir.path().to_path_buf(),
        cap,
        origin_idle: Duration::from_secs(30),
    })
    .await
    .unwrap();
    Rig {
        dir,
        origin,
        proxy,
        tasks_before,
    }
}

impl Rig {
    /// The body files in the cache dir, sorted.
    pub fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Stops the proxy and the origin; then no task of theirs is alive and no fd is open
    /// on the cache's files (unlinked ones included). Gives back the dir, still there.
    pub async fn finish(self) -> TempDir {
        let Rig {
            dir,
            origin,
            proxy,
            tasks_before,
        } = self;
        proxy.stop().await;
        origin.stop().await;
        assert_eq!(overlap::metrics().tasks_alive, tasks_before, "tasks left");
        // A `send_to` run cut by the stop may still hold its fd for a moment.
        crate::support::until(|| fds_in(dir.path()) == 0, "the cache's fds closed").await;
        dir
    }
}

/// How many of this process's fds are open on files in `dir` (unlinked ones show as
/// `<path> (deleted)`, still under `dir`): other tests' files live elsewhere.
pub fn fds_in(dir: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|target| target.starts_with(dir))
        .count()
}

/// How many of them are on unlinked files: blocks the file system cannot free yet.
pub fn deleted_fds_in(dir: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|t| t.starts_with(dir) && t.to_string_lossy().ends_with(" (deleted)"))
        .count()
}
