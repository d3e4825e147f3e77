//! The tests' swarm: the torrent's bytes, nodes started on files in a temp dir, and the
//! checks made at the end (the file byte-identical and exactly the torrent's length, the
//! node's tasks gone and its file's fd closed).

use std::path::PathBuf;
use std::rc::Weak;

use super::node::{Config, Node, Shared};
use super::wire::{Meta, BLOCK, PIECE};
use crate::support::{pattern_seeded, until, TempDir};

pub struct Swarm {
    pub dir: TempDir,
    pub data: Vec<u8>,
    pub meta: Meta,
    pub host: &'static str,
}

/// Six pieces: five whole ones and a last of three blocks and a short one (24 blocks).
pub const LEN: usize = 5 * PIECE as usize + 3 * BLOCK as usize + 1234;
pub const SEED_ID: u64 = 0x5eed;

impl Swarm {
    pub fn new(name: &str, host: &'static str) -> Swarm {
        let data = pattern_seeded(LEN, 17);
        let meta = Meta::of(&data);
        Swarm {
            dir: TempDir::new(name),
            data,
            meta,
            host,
        }
    }

    pub fn path(&self, id: u64) -> PathBuf {
        self.dir.join(&format!("peer-{id:x}.bin"))
    }

    /// A node holding the whole file.
    pub async fn seed(&self, id: u64, cfg: Config) -> Node {
        std::fs::write(self.path(id), &self.data).unwrap();
        self.node(id, cfg).await
    }

    /// A node on a fresh (or existing) file.
    pub async fn node(&self, id: u64, cfg: Config) -> Node {
        Node::start(&self.path(id), self.meta.clone(), id, self.host, cfg)
            .await
            .unwrap()
    }

    /// The node's file is the torrent, byte for byte.
    pub fn assert_identical(&self, id: u64) {
        let got = std::fs::read(self.path(id)).unwrap();
        assert_eq!(got.len(), self.data.len(), "peer {id:x}'s file length");
        assert!(got == self.data, "peer {id:x}'s file differs");
    }
}

/// Shuts `node` down and checks that nothing of it is left: its shared state (and so every
/// `PositionalFile` clone) dropped, its file's fd closed.
pub async fn shut_down_clean(node: Node, path: PathBuf) {
    let fd = node.file_fd();
    let weak: Weak<Shared> = node.shutdown().await;
    assert!(
        weak.upgrade().is_none(),
        "a task of the node still holds its state"
    );
    // A pool job still running a dropped write holds the fd until it finishes.
    until(|| !fd_names(fd, &path), "the file's fd to close").await;
}

/// Whether `fd` is open on `path` (another test may have reused the number: not ours).
pub fn fd_names(fd: i32, path: &std::path::Path) -> bool {
    std::fs::read_link(format!("/proc/self/fd/{fd}")).is_ok_and(|p| p == path)
}
