//! A Unix socket address that cannot be made is refused with `InvalidInput` in our own
//! words, saying what the limit is and what was given, by every call that takes one:
//! `UnixListener::bind`, `UnixStream::connect`, `UnixDatagram::bind`, `connect`,
//! `send_to`, `try_send_to`, and `UnixSocket::bind`. A path holds at most 107 bytes (and its
//! terminating NUL fills `sun_path`), an abstract name 107 bytes after its leading NUL, and a
//! path has no NUL inside. The refusal used to be std's "path must be shorter than
//! SUN_LEN", naming neither. The longest path and name still bind. A bind to a path taken,
//! and a connect or send to a path with no socket there (none, or a file left behind), name
//! the path too.

mod support;

use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::time::Duration;

use overlap::net::{UnixDatagram, UnixListener, UnixSocket, UnixStream};
use support::{within, TempDir};

/// Every call that takes a Unix address, given `addr`, with what each said.
async fn every_call(addr: &Path) -> Vec<(&'static str, io::Result<()>)> {
    let hang = Duration::from_secs(10);
    let dgram = UnixDatagram::unbound().unwrap();
    let socket = UnixSocket::new_stream().unwrap();
    vec![
        ("UnixListener::bind", UnixListener::bind(addr).map(drop)),
        (
            "UnixStream::connect",
            within(hang, UnixStream::connect(addr), "connect")
                .await
                .map(drop),
        ),
        ("UnixDatagram::bind", UnixDatagram::bind(addr).map(drop)),
        ("UnixDatagram::connect", dgram.connect(addr)),
        (
            "UnixDatagram::send_to",
            within(hang, dgram.send_to(b"x", addr), "send_to")
                .await
                .map(drop),
        ),
        (
            "UnixDatagram::try_send_to",
            dgram.try_send_to(b"x", addr).map(drop),
        ),
        ("UnixSocket::bind", socket.bind(addr)),
    ]
}

async fn all_refused(addr: &Path, words: &[&str]) {
    for (call, res) in every_call(addr).await {
        let err = res.expect_err(call);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{call}: {err}");
        let msg = err.to_string();
        for w in words {
            assert!(msg.contains(w), "{call}: {msg:?} does not say {w:?}");
        }
    }
}

/// A path under `dir` of exactly `len` bytes.
fn path_of_len(dir: &TempDir, len: usize) -> PathBuf {
    let base = dir.path().as_os_str().len() + 1;
    dir.join(&"p".repeat(len - base))
}

#[overlap::test]
async fn addresses_too_long_or_with_a_nul_are_refused_saying_so() {
    let dir = TempDir::new("review-unix-paths");
    all_refused(&path_of_len(&dir, 108), &["107", "108"]).await;
    all_refused(&path_of_len(&dir, 300), &["107", "300"]).await;
    all_refused(&dir.join("a\0b"), &["NUL"]).await;
    let name = format!("\0{}", "n".repeat(108));
    all_refused(Path::new(&name), &["abstract", "107", "108"]).await;

    // The longest of each still binds, and is reached.
    let longest = path_of_len(&dir, 107);
    let listener = UnixListener::bind(&longest).unwrap();
    let _client = UnixStream::connect(&longest).await.unwrap();
    listener.accept().await.unwrap();
    let name = format!("\0{}-{}", std::process::id(), "n".repeat(200));
    let name = &name[..108];
    let rx = UnixDatagram::bind(name).unwrap();
    UnixDatagram::unbound()
        .unwrap()
        .send_to(b"hi", name)
        .await
        .unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(rx.recv(&mut buf).await.unwrap(), 2);
}

/// A bind to a path something is at already says which path, and that a socket's file
/// outlives the socket, where the kernel's "Address already in use" named neither: a
/// supervisor restarted after a crash found its control socket's and notify sockets' files
/// left, and could not tell which bind failed. The kind stays `AddrInUse` and the code
/// `EADDRINUSE`.
#[overlap::test]
async fn a_bind_to_a_path_taken_names_it() {
    let dir = TempDir::new("unix-path-taken");
    let stale = dir.join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap()); // its file stays
    let file = dir.join("plain-file");
    std::fs::write(&file, "").unwrap();
    for path in [&stale, &file] {
        let binds = [
            ("UnixListener::bind", UnixListener::bind(path).map(drop)),
            ("UnixDatagram::bind", UnixDatagram::bind(path).map(drop)),
            (
                "UnixSocket::bind",
                UnixSocket::new_datagram().unwrap().bind(path),
            ),
        ];
        for (call, res) in binds {
            let err = res.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::AddrInUse, "{call}: {err}");
            assert_eq!(
                overlap::io::raw_os_error(&err),
                Some(libc::EADDRINUSE),
                "{call}"
            );
            let msg = err.to_string();
            assert!(msg.contains(&format!("{path:?}")), "{call}: {msg}");
            assert!(
                msg.contains("stays after the socket is dropped"),
                "{call}: {msg}"
            );
        }
    }
    // An abstract name bound twice is named too.
    let name = format!("\0overlap-taken-{}", std::process::id());
    let _first = UnixDatagram::bind(&name).unwrap();
    let err = UnixDatagram::bind(&name).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err}");
    let want = format!(
        "the abstract Unix socket name \"overlap-taken-{}\" is bound already",
        std::process::id()
    );
    assert_eq!(err.to_string(), want);
}

/// Every call that reaches for the socket at `addr`, with what each said.
async fn every_reach(addr: &Path) -> Vec<(&'static str, io::Error)> {
    let hang = Duration::from_secs(10);
    let dgram = UnixDatagram::unbound().unwrap();
    let socket = UnixSocket::new_stream().unwrap();
    vec![
        (
            "UnixStream::connect",
            within(hang, UnixStream::connect(addr), "connect")
                .await
                .unwrap_err(),
        ),
        (
            "UnixSocket::connect",
            within(hang, socket.connect(addr), "connect")
                .await
                .unwrap_err(),
        ),
        ("UnixDatagram::connect", dgram.connect(addr).unwrap_err()),
        (
            "UnixDatagram::send_to",
            within(hang, dgram.send_to(b"x", addr), "send_to")
                .await
                .unwrap_err(),
        ),
        (
            "UnixDatagram::try_send_to",
            dgram.try_send_to(b"x", addr).unwrap_err(),
        ),
    ]
}

/// A connect or send to a path with nothing there, or with a socket's file left behind by
/// a socket since dropped, says which path and what that means, where the kernel's "No such
/// file or directory" and "Connection refused" named neither: a client with a typo in its
/// socket path, or one whose server had crashed, could not tell which of its sockets failed.
/// Kinds (`NotFound`, `ConnectionRefused`) and codes stay.
#[overlap::test]
async fn a_connect_to_a_missing_or_stale_path_names_it() {
    let dir = TempDir::new("unix-path-reach");
    let missing = dir.join("no-such.sock");
    for (call, err) in every_reach(&missing).await {
        assert_eq!(err.kind(), ErrorKind::NotFound, "{call}: {err}");
        assert_eq!(
            overlap::io::raw_os_error(&err),
            Some(libc::ENOENT),
            "{call}"
        );
        let msg = err.to_string();
        assert!(msg.contains(&format!("{missing:?}")), "{call}: {msg}");
    }
    let stale = dir.join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap()); // its file stays
    for (call, err) in every_reach(&stale).await {
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{call}: {err}");
        assert_eq!(
            overlap::io::raw_os_error(&err),
            Some(libc::ECONNREFUSED),
            "{call}"
        );
        let msg = err.to_string();
        assert!(msg.contains(&format!("{stale:?}")), "{call}: {msg}");
        assert!(msg.contains("no socket"), "{call}: {msg}");
    }
    let name = format!("\0overlap-nobody-{}", std::process::id());
    for (call, err) in every_reach(Path::new(&name)).await {
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{call}: {err}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("overlap-nobody-{}", std::process::id())),
            "{call}: {msg}"
        );
    }
}
