//! A service on a fresh storage directory, for one test, and what the tests check after
//! each step: no temp file left, the files on disk as the index says.

use std::path::PathBuf;
use std::time::Duration;

use super::server::{Config, Server};
use super::support::TempDir;

pub const KIB: usize = 1 << 10;
pub const MIB: usize = 1 << 20;
/// A hang guard on the running clock.
pub const HANG: Duration = Duration::from_secs(120);

pub struct Rig {
    /// The test's own directory; the store is `store/` inside it, so that a file escaping
    /// the store would show up here.
    pub root: TempDir,
    pub server: Server,
}

impl Rig {
    pub async fn start(name: &str, host: &str, cfg: Config) -> Rig {
        Rig::start_in(TempDir::new(name), host, cfg).await
    }

    /// A service on `root/store`, which may hold files already.
    pub async fn start_in(root: TempDir, host: &str, cfg: Config) -> Rig {
        let server = Server::start(host, &root.join("store"), cfg).await;
        Rig { root, server }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr
    }

    pub fn stored(&self, name: &str) -> Option<Vec<u8>> {
        std::fs::read(self.root.join("store").join(name)).ok()
    }

    /// The entries of the test's own directory and of the store (the uploads directory
    /// included), sorted: what a test expects to find after its requests.
    pub fn listing(&self) -> Vec<String> {
        let mut names = Vec::new();
        for dir in [self.root.path().to_owned(), self.root.join("store")] {
            for e in std::fs::read_dir(&dir).unwrap() {
                names.push(e.unwrap().file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        names
    }

    /// Fails if an upload left its temp file.
    pub fn assert_no_temp_files(&self) {
        let temps: Vec<PathBuf> = self.server.store.temp_files();
        assert!(temps.is_empty(), "temp files left: {temps:?}");
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }
}
