//! The tests' side: a logging client on an unbound Unix datagram socket, a follower
//! reading records off the follow socket, a child process logging (a python3 one-liner
//! through `overlap::process::Command`), and a reader of the journal files on disk.

use std::io;
use std::path::Path;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{UnixDatagram, UnixStream};

use super::format::{self, Entry, Record};
use super::journal::path_of;

pub struct Logger {
    sock: UnixDatagram,
    path: std::path::PathBuf,
}

impl Logger {
    pub fn new(path: &Path) -> Logger {
        Logger {
            sock: UnixDatagram::unbound().unwrap(),
            path: path.to_owned(),
        }
    }

    pub async fn raw(&self, bytes: &[u8]) {
        assert_eq!(
            self.sock.send_to(bytes, &self.path).await.unwrap(),
            bytes.len()
        );
    }

    pub async fn log(&self, prio: u8, msg: &str) {
        self.raw(format!("<{prio}>{msg}").as_bytes()).await;
    }
}

pub struct Follower {
    stream: UnixStream,
}

impl Follower {
    pub async fn start(path: &Path, from: u64) -> Follower {
        let mut stream = UnixStream::connect(path).await.unwrap();
        stream
            .write_all(format!("FOLLOW {from}\n").as_bytes())
            .await
            .unwrap();
        Follower { stream }
    }

    pub fn from_stream(stream: UnixStream) -> Follower {
        Follower { stream }
    }

    /// The next record, `None` at EOF.
    pub async fn next(&mut self) -> io::Result<Option<Record>> {
        let mut tag = [0u8; 1];
        if self.stream.read(&mut tag).await? == 0 {
            return Ok(None);
        }
        let mut rec = tag.to_vec();
        let rest = match tag[0] {
            b'E' => {
                let mut len = [0u8; 4];
                self.stream.read_exact(&mut len).await?;
                rec.extend_from_slice(&len);
                u32::from_le_bytes(len) as usize + 4
            }
            b'C' => format::MARKER - 1,
            _ => return Err(io::Error::other(format!("unknown record tag {}", tag[0]))),
        };
        let at = rec.len();
        rec.resize(at + rest, 0);
        self.stream.read_exact(&mut rec[at..]).await?;
        Ok(Some(format::decode(&rec)))
    }

    /// The next record, which must be an entry.
    pub async fn entry(&mut self) -> Entry {
        match self.next().await.unwrap() {
            Some(Record::Entry(e, _)) => e,
            other => panic!("an entry expected, got {other:?}"),
        }
    }

    pub async fn rest(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        self.stream.read_to_end(&mut rest).await.unwrap();
        rest
    }
}

/// Every entry in the journal files of `dir`, oldest first, and each file's index, whether
/// it is sealed, and its length.
pub fn read_journal(dir: &Path) -> (Vec<Entry>, Vec<(u32, bool, u64)>) {
    let mut indices: Vec<u32> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_prefix("journal-")?
                .strip_suffix(".jnl")?
                .parse()
                .ok()
        })
        .collect();
    indices.sort_unstable();
    let (mut entries, mut files) = (Vec::new(), Vec::new());
    for i in indices {
        let bytes = std::fs::read(path_of(dir, i)).unwrap();
        let scan = format::scan(&bytes).unwrap();
        assert!(!scan.torn, "file {i} has a torn tail");
        assert_eq!(scan.index, i);
        files.push((i, scan.footer.is_some(), bytes.len() as u64));
        entries.extend(scan.entries.into_iter().map(|(_, e)| e));
    }
    (entries, files)
}

/// The messages of `entries`, as strings.
pub fn messages(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| String::from_utf8(e.msg.clone()).unwrap())
        .collect()
}

/// Runs a python3 child that sends `count` records to `path`, the first claiming pid 1 in
/// its text; gives its pid.
pub async fn child_logs(path: &Path, count: u32) -> u32 {
    let script = "import socket,sys\n\
        s=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\n\
        for i in range(int(sys.argv[2])): s.sendto(b'<4>child says pid=1 #%d' % i, sys.argv[1])\n";
    let mut child = overlap::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .arg(count.to_string())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let status = child.wait().await.unwrap();
    assert!(status.success(), "{status:?}");
    pid
}

/// The effective uid and gid of this process.
pub fn ids() -> (u32, u32) {
    // SAFETY: geteuid and getegid have no preconditions and cannot fail.
    unsafe { (libc::geteuid(), libc::getegid()) }
}
