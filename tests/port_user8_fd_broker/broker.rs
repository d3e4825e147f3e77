//! The privileged side: owns a directory and a TCP listener, and answers a worker's
//! requests on a Unix stream with status lines that carry file descriptors.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use overlap::io::AsyncWriteExt;
use overlap::net::{TcpListener, UnixStream};

/// The longest request line the broker reads; a longer one is garbage.
pub const MAX_LINE: usize = 4096;

/// What the broker counted, for the tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests answered (OK or ERR).
    pub answered: usize,
    /// Fds that came with a request, closed unused.
    pub unsolicited_fds: usize,
}

/// Serves one worker until it closes the stream, sends garbage, or closes mid-line.
pub async fn serve(root: &Path, listener: &TcpListener, mut conn: UnixStream) -> Stats {
    let root = root.canonicalize().unwrap();
    let mut stats = Stats::default();
    let mut line = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let mut fds = Vec::new();
        let n = match conn.recv_with_fds(&mut buf, &mut fds).await {
            Ok(n) => n,
            Err(_) => return stats, // fds lost by the kernel: the stream is broken
        };
        // A worker may send fds nobody asked for: dropping them closes them.
        stats.unsolicited_fds += fds.len();
        drop(fds);
        if n == 0 {
            return stats; // closed, perhaps mid-line: a partial request is not answered
        }
        line.extend_from_slice(&buf[..n]);
        while let Some(end) = line.iter().position(|&b| b == b'\n') {
            let req: Vec<u8> = line.drain(..=end).collect();
            let req = String::from_utf8_lossy(&req[..end]).into_owned();
            if answer(&root, listener, &conn, &req).await.is_err() {
                return stats;
            }
            stats.answered += 1;
        }
        if line.len() > MAX_LINE {
            let _ = conn.write_all(b"ERR request line too long\n").await;
            return stats;
        }
    }
}

/// Answers one request line: `OK n` with n fds attached, or `ERR reason`.
async fn answer(
    root: &Path,
    listener: &TcpListener,
    conn: &UnixStream,
    req: &str,
) -> io::Result<()> {
    let mut held: Vec<OwnedFd> = Vec::new();
    let mut err = None;
    // "A; B; C" is a batch: every part's fds in one message, or one error for all.
    for part in req.split(';').map(str::trim) {
        if let Err(e) = one(root, listener, part, &mut held).await {
            err = Some(format!("{part}: {e}"));
            break;
        }
    }
    let status = match &err {
        Some(e) => format!("ERR {e}\n"),
        None => format!("OK {}\n", held.len()),
    };
    let borrowed: Vec<BorrowedFd<'_>> = match err {
        Some(_) => Vec::new(),
        None => held.iter().map(|f| f.as_fd()).collect(),
    };
    let sent = match conn.send_with_fds(status.as_bytes(), &borrowed).await {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
            let msg = format!("ERR {e}\n");
            return conn.send_with_fds(msg.as_bytes(), &[]).await.map(drop);
        }
        Err(e) => return Err(e),
    };
    // A short write: the fds went with the first bytes; the rest is plain.
    let mut writer = conn;
    writer.write_all(&status.as_bytes()[sent..]).await
}

async fn one(
    root: &Path,
    listener: &TcpListener,
    req: &str,
    out: &mut Vec<OwnedFd>,
) -> io::Result<()> {
    let mut words = req.split(' ');
    match (words.next(), words.next(), words.next(), words.next()) {
        (Some("OPEN"), Some(path), Some(mode), None) => out.push(open(root, path, mode)?),
        (Some("ACCEPT"), None, ..) => {
            let (stream, _) = listener.accept().await?;
            // The worker gets its own copy; ours closes (and leaves the reactor) here.
            out.push(OwnedFd::from(stream.into_std()?));
        }
        (Some("PIPE"), None, ..) => {
            let (r, w) = crate::support::pipe();
            out.push(r);
            out.push(w);
        }
        (Some("NULLS"), Some(n), None, ..) => {
            let n: usize = n.parse().map_err(|_| bad("NULLS takes a count"))?;
            let null = std::fs::File::open("/dev/null")?;
            for _ in 0..n {
                out.push(null.as_fd().try_clone_to_owned()?);
            }
        }
        _ => return Err(bad("unknown request")),
    }
    Ok(())
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

/// Opens `path` under `root`: relative, no `..`, no symlink anywhere on the way out.
fn open(root: &Path, path: &str, mode: &str) -> io::Result<OwnedFd> {
    let rel = Path::new(path);
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "outside the allowed dir",
        ));
    }
    let full: PathBuf = root.join(rel);
    let parent = full.parent().unwrap().canonicalize()?;
    if !parent.starts_with(root) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "outside the allowed dir",
        ));
    }
    let mut opts = std::fs::OpenOptions::new();
    match mode {
        "r" => opts.read(true),
        "w" => opts.write(true).create(true).truncate(true),
        "a" => opts.append(true).create(true),
        _ => return Err(bad("mode is r, w or a")),
    };
    // O_NOFOLLOW: a symlink as the last component is refused (ELOOP), wherever it points.
    let file = opts
        .custom_flags(libc::O_NOFOLLOW)
        .open(parent.join(full.file_name().unwrap()))?;
    Ok(file.into())
}
