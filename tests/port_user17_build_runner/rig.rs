//! The tests' rig: a build dir in a fresh temp dir, the build file written into it, files
//! read back, mtimes set by hand, and the checks on processes (reaped, ended).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use overlap::sync::CancellationToken;

use super::runner::{self, BuildError, Options, Report};
use super::support::{until, TempDir};

/// A fixed base for the mtimes tests set (2001-09-09), far behind any real "now".
pub const T0: u64 = 1_000_000_000;

pub struct Rig {
    dir: TempDir,
}

impl Rig {
    pub fn new(name: &str) -> Rig {
        Rig {
            dir: TempDir::new(&format!("build-runner-{name}")),
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn build_file(&self, text: &str) {
        file(&self.path(runner::BUILD_FILE), text.as_bytes());
    }

    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    pub fn read_string(&self, name: &str) -> String {
        String::from_utf8(self.read(name)).unwrap()
    }

    /// Sets each named file's mtime to `T0 + secs`, through overlap's `File::set_modified`.
    pub async fn set_mtimes(&self, times: &[(&str, u64)]) {
        for (name, secs) in times {
            let mut f = overlap::fs::File::open(self.path(name)).await.unwrap();
            let t = SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + secs);
            f.set_modified(t).await.unwrap();
        }
    }
}

pub fn opts(jobs: usize) -> Options {
    Options {
        jobs,
        ..Options::default()
    }
}

pub async fn build(rig: &Rig, opts: &Options) -> Result<Report, BuildError> {
    runner::build(rig.dir(), opts, CancellationToken::new()).await
}

pub fn file(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

/// The pid a job wrote to `name` (waiting until it is there, newline and all).
pub async fn wait_pid(rig: &Rig, name: &str) -> u32 {
    let path = rig.path(name);
    let done = || std::fs::read_to_string(&path).is_ok_and(|s| s.ends_with('\n'));
    until(done, &format!("{name} written")).await;
    rig.read_string(name).trim().parse().unwrap()
}

/// Whether our child `pid` was reaped: no /proc entry (a zombie keeps one).
pub fn reaped(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether process `pid` (a grandchild, not ours to reap) has ended: no /proc entry, or a
/// zombie left to init.
pub fn ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}
