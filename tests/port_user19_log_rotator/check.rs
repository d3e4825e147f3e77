//! The tests' side: clients that send lines, and a reader of everything the daemon wrote
//! (`@<seq>.s` decompressed with std's `gzip -dc`, `@<seq>.u` as is, then `current`),
//! which checks each file's lines as it goes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use overlap::io::AsyncWriteExt;
use overlap::net::{UdpSocket, UnixStream};

use super::current::{parse_rotated, CURRENT};
use super::daemon::{Daemon, Stats};

/// One line as written: its number, its time and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The daemon's line counter.
    pub n: u64,
    /// The time since the daemon started, `secs.millis`.
    pub time: String,
    /// What the client sent.
    pub body: String,
}

/// The lines of one file, and the file's size (decompressed).
#[derive(Debug)]
pub struct FileLines {
    /// `@000001.s`, `@000002.u`, `current`.
    pub name: String,
    /// Its bytes, decompressed.
    pub size: usize,
    /// Its lines.
    pub entries: Vec<Entry>,
}

/// Reads every file the daemon left in `dir`, rotated ones in sequence order, `current`
/// last. Panics on a line without the prefix, or a file not ending in a newline.
pub fn read_all(dir: &Path) -> Vec<FileLines> {
    let mut rotated = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some((seq, ext)) = parse_rotated(&name) {
            assert!(ext == "s" || ext == "u", "a stray file: {name}");
            assert!(
                rotated.insert(seq, name.clone()).is_none(),
                "{seq} twice: {name}"
            );
        }
    }
    let mut files: Vec<String> = rotated.into_values().collect();
    if dir.join(CURRENT).exists() {
        files.push(CURRENT.into());
    }
    files
        .into_iter()
        .map(|name| {
            let path = dir.join(&name);
            let bytes = if name.ends_with(".s") {
                let out = std::process::Command::new("gzip")
                    .arg("-dc")
                    .arg(&path)
                    .output()
                    .unwrap();
                assert!(out.status.success(), "gzip -dc {name}: {out:?}");
                out.stdout
            } else {
                std::fs::read(&path).unwrap()
            };
            let text = String::from_utf8(bytes).unwrap();
            assert!(
                text.is_empty() || text.ends_with('\n'),
                "{name} ends mid-line"
            );
            let entries = text.lines().map(parse_entry).collect();
            FileLines {
                name,
                size: text.len(),
                entries,
            }
        })
        .collect()
}

fn parse_entry(line: &str) -> Entry {
    let mut parts = line.splitn(3, ' ');
    let (n, time, body) = (parts.next(), parts.next(), parts.next());
    Entry {
        n: n.and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no number: {line:?}")),
        time: time.unwrap_or_else(|| panic!("no time: {line:?}")).into(),
        body: body.unwrap_or_else(|| panic!("no body: {line:?}")).into(),
    }
}

/// Every body in the order written, checking that the line numbers only grow.
pub fn bodies(files: &[FileLines]) -> Vec<String> {
    let all: Vec<&Entry> = files.iter().flat_map(|f| &f.entries).collect();
    for pair in all.windows(2) {
        assert!(pair[0].n < pair[1].n, "out of order: {pair:?}");
    }
    all.into_iter().map(|e| e.body.clone()).collect()
}

/// Sends `lines` over one Unix stream connection, each with its newline, and closes it.
pub async fn unix_client(path: &Path, lines: Vec<String>) {
    let mut stream = UnixStream::connect(path).await.unwrap();
    for line in lines {
        stream
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
    }
    stream.close().await.unwrap();
}

/// Sends each of `lines` as a datagram.
pub async fn udp_client(to: SocketAddr, lines: Vec<String>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for line in lines {
        socket.send_to(line.as_bytes(), to).await.unwrap();
    }
}

/// Waits until `cond` holds for the daemon's stats, looking every 5 ms (on a paused clock
/// too), panicking with `what` after 120 s.
pub async fn wait_for(daemon: &Daemon, what: &str, cond: impl Fn(&Stats) -> bool) {
    super::support::within(
        Duration::from_secs(120),
        async {
            while !cond(&daemon.stats()) {
                overlap::time::sleep(Duration::from_millis(5)).await;
            }
        },
        what,
    )
    .await
}
