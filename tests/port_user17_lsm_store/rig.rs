//! The tests' side: small store settings that flush and compact often, a line client for
//! the TCP front, a byte flipped on disk, and the fds this process holds in a directory.

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::Path;

use overlap::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use overlap::net::TcpStream;

use super::db::Options;

/// Tiny memtables, blocks and tables: a few hundred writes make several flushes and
/// compactions.
pub fn small() -> Options {
    Options {
        memtable_bytes: 2048,
        block_bytes: 256,
        l0_trigger: 3,
        l1_table_bytes: 4096,
        cache_blocks: 16,
        ..Options::default()
    }
}

pub fn key(i: usize) -> Vec<u8> {
    format!("k{i:05}").into_bytes()
}

/// The model's view of a scan, as the store answers it.
pub fn model_scan(
    model: &BTreeMap<Vec<u8>, Vec<u8>>,
    start: &[u8],
    end: Option<&[u8]>,
    limit: usize,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    model
        .range(start.to_vec()..)
        .take_while(|(k, _)| end.is_none_or(|e| k.as_slice() < e))
        .take(limit)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Flips every bit of the byte at `offset` in `path`.
pub fn flip_byte(path: &Path, offset: u64) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, offset).unwrap();
    f.write_all_at(&[!b[0]], offset).unwrap();
}

/// How many of this process's fds are open on files in `dir` (or on `dir` itself): other
/// tests' files live elsewhere, so the count cannot race with them.
pub fn fds_in(dir: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|target| target.starts_with(dir))
        .count()
}

/// The `.sst` and `.log` files in `dir`, sorted.
pub fn files(dir: &Path, ext: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(ext))
        .collect();
    out.sort();
    out
}

/// A client of the TCP front: sends a line, reads the answer's lines.
pub struct Client {
    reader: BufReader<overlap::net::OwnedReadHalf>,
    writer: overlap::net::OwnedWriteHalf,
}

impl Client {
    pub async fn connect(addr: std::net::SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (r, writer) = stream.into_split();
        Client {
            reader: BufReader::new(r),
            writer,
        }
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.unwrap();
    }

    pub async fn line(&mut self) -> String {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).await.unwrap();
        assert!(n > 0, "the server closed the connection");
        line.trim_end_matches('\n').to_string()
    }

    /// One command, one answer line.
    pub async fn ask(&mut self, cmd: &str) -> String {
        self.send_raw(format!("{cmd}\n").as_bytes()).await;
        self.line().await
    }

    /// A SCAN's rows, up to its END line (included).
    pub async fn scan(&mut self, cmd: &str) -> Vec<String> {
        self.send_raw(format!("{cmd}\n").as_bytes()).await;
        let mut out = Vec::new();
        loop {
            let l = self.line().await;
            let done = l.starts_with("END") || l.starts_with("ERR");
            out.push(l);
            if done {
                return out;
            }
        }
    }

    pub async fn close(mut self) {
        self.writer.close().await.unwrap();
        let mut rest = String::new();
        let n = self.reader.read_line(&mut rest).await.unwrap();
        assert_eq!(n, 0, "unexpected {rest:?}");
    }
}
