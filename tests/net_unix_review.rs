//! An adversarial review of `UnixListener`, `UnixStream` and `UnixSocket`: what the other
//! Unix tests leave out. Abstract names whose bytes go on past a NUL (inside or at the end)
//! reach only the socket of exactly that name and come back whole from every address call;
//! paths that are no UTF-8 come back byte for byte; a relative path binds under the working
//! directory, even one whose absolute path no socket address could hold; a bind into a
//! missing directory names the path (the kernel's words named none); a listener whose
//! directory is removed still serves what it queued and keeps its name; a write to a peer
//! that is gone fails, through every write call, with no `SIGPIPE`; `peer_cred` names the
//! other process that connected; and a client bound at a 108-byte path (which the kernel
//! takes, though no `sun_path` NUL fits) is named in full by `accept`.
//! The datagram half of the review is in `net_unix_review_datagram.rs`.

mod support;

use std::ffi::{OsStr, OsString};
use std::io::{self, ErrorKind, IoSlice};
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{UnixDatagram, UnixListener, UnixSocket, UnixStream};
use support::{run_in_child, within, TempDir};

const HANG: Duration = Duration::from_secs(20);

/// The address of the abstract name `name` (the bytes after the leading NUL).
fn abstract_addr(name: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(&[&[0u8][..], name].concat()))
}

/// An abstract name unique to this process and `what`, followed by `tail`.
fn abstract_name(what: &str, tail: &[u8]) -> Vec<u8> {
    let mut name = format!("overlap-net-unix-review-{}-{what}", std::process::id()).into_bytes();
    name.extend_from_slice(tail);
    name
}

/// A name whose bytes go on after a NUL is another name than its prefix: a connect to the
/// name cut at a NUL, or with one trailing NUL less or more, is refused, and the exact name
/// connects. The listener's, the client's and the accepted addresses all give the bytes
/// back whole, for a client name of the longest length (107 bytes) that ends in NULs too.
#[overlap::test]
async fn abstract_names_with_inner_and_trailing_nuls_reach_only_their_exact_socket() {
    let name = abstract_name("listener", b"\0in\0\0");
    let listener = UnixListener::bind(abstract_addr(&name)).unwrap();
    assert_eq!(
        listener.local_addr().unwrap().as_abstract_name(),
        Some(&name[..])
    );

    let cut_at_nul = &name[..name.iter().position(|&b| b == 0).unwrap()];
    let one_nul_less = &name[..name.len() - 1];
    let one_nul_more = [&name[..], b"\0"].concat();
    for other in [cut_at_nul, one_nul_less, &one_nul_more[..]] {
        let err = within(HANG, UnixStream::connect(abstract_addr(other)), "connect")
            .await
            .expect_err("a connect to another name");
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{other:?}: {err}");
    }

    let mut client = UnixStream::connect(abstract_addr(&name)).await.unwrap();
    assert_eq!(
        client.peer_addr().unwrap().as_abstract_name(),
        Some(&name[..])
    );
    let (_server, from) = support::unix_accept_and_echo(&listener, &mut client).await;
    assert!(from.is_unnamed(), "{from:?}");

    // A bound client whose name fills `sun_path` and ends in NULs: none of them is cut.
    let mut longest = abstract_name("client", b"\0c");
    longest.resize(107, 0);
    let sock = UnixSocket::new_stream().unwrap();
    sock.bind(abstract_addr(&longest)).unwrap();
    let mut client = sock.connect(abstract_addr(&name)).await.unwrap();
    assert_eq!(
        client.local_addr().unwrap().as_abstract_name(),
        Some(&longest[..])
    );
    let (server, from) = support::unix_accept_and_echo(&listener, &mut client).await;
    assert_eq!(from.as_abstract_name(), Some(&longest[..]));
    assert_eq!(
        server.peer_addr().unwrap().as_abstract_name(),
        Some(&longest[..])
    );
}

/// Paths of bytes that are no UTF-8 bind, connect and come back unchanged from
/// `local_addr`, `peer_addr` and `accept`; the errors that name a path show its bytes.
#[overlap::test]
async fn paths_that_are_no_utf8_come_back_byte_for_byte() {
    let dir = TempDir::new("unix-review-bytes");
    let at = |bytes: &[u8]| dir.path().join(OsString::from_vec(bytes.to_vec()));
    let listen_path = at(b"l-\xff\xfe.sock");
    let client_path = at(b"c-\x80\xc0.sock");
    assert!(listen_path.to_str().is_none() && client_path.to_str().is_none());

    let listener = UnixListener::bind(&listen_path).unwrap();
    assert_eq!(
        listener.local_addr().unwrap().as_pathname(),
        Some(listen_path.as_path())
    );
    let sock = UnixSocket::new_stream().unwrap();
    sock.bind(&client_path).unwrap();
    let mut client = sock.connect(&listen_path).await.unwrap();
    assert_eq!(
        client.peer_addr().unwrap().as_pathname(),
        Some(listen_path.as_path())
    );
    assert_eq!(
        client.local_addr().unwrap().as_pathname(),
        Some(client_path.as_path())
    );
    let (server, from) = support::unix_accept_and_echo(&listener, &mut client).await;
    assert_eq!(from.as_pathname(), Some(client_path.as_path()));
    assert_eq!(
        server.peer_addr().unwrap().as_pathname(),
        Some(client_path.as_path())
    );

    let shown = format!("{listen_path:?}");
    assert!(shown.contains(r"\xFF\xFE"), "{shown}");
    let err = UnixListener::bind(&listen_path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err}");
    assert!(err.to_string().contains(&shown), "{err}");
    let missing = at(b"gone-\xff.sock");
    let err = UnixStream::connect(&missing).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains(&format!("{missing:?}")), "{err}");
}

/// A relative path is the kernel's to resolve, under the working directory: it binds and
/// connects where the absolute path, over 107 bytes, is refused, and `local_addr` gives it
/// back as it was written. From another directory it names another file. Run in a child
/// process: the working directory is the process's.
#[test]
fn a_relative_path_binds_under_the_working_directory_even_when_the_absolute_one_is_too_long() {
    run_in_child(
        "a_relative_path_binds_under_the_working_directory_even_when_the_absolute_one_is_too_long",
        || {
            let dir = TempDir::new("unix-review-relative");
            let outer = dir.path().join("a".repeat(60));
            let deep = outer.join("b".repeat(60));
            std::fs::create_dir_all(&deep).unwrap();
            std::env::set_current_dir(&deep).unwrap();
            let absolute = deep.join("s.sock");
            assert!(absolute.as_os_str().len() > 107);
            overlap::block_on(async {
                let listener = UnixListener::bind("s.sock").unwrap();
                assert_eq!(
                    listener.local_addr().unwrap().as_pathname(),
                    Some(Path::new("s.sock"))
                );
                let file = std::fs::symlink_metadata(&absolute).unwrap();
                assert!(file.file_type().is_socket());
                let err = UnixStream::connect(&absolute).await.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");

                let mut client = UnixStream::connect("s.sock").await.unwrap();
                assert_eq!(
                    client.peer_addr().unwrap().as_pathname(),
                    Some(Path::new("s.sock"))
                );
                support::unix_accept_and_echo(&listener, &mut client).await;

                // One level up, "s.sock" is another (missing) file; the way down reaches it.
                std::env::set_current_dir(&outer).unwrap();
                let err = UnixStream::connect("s.sock").await.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
                let down = Path::new(&"b".repeat(60)).join("s.sock");
                let mut client = UnixStream::connect(&down).await.unwrap();
                support::unix_accept_and_echo(&listener, &mut client).await;
            });
            std::env::set_current_dir("/").unwrap();
        },
    );
}

/// A bind into a directory that does not exist, or under a file, fails with the kernel's
/// kind and code, and names the path: a program binding several sockets could not tell
/// which one failed from the kernel's bare "No such file or directory".
#[overlap::test]
async fn a_bind_where_the_directory_is_missing_names_the_path() {
    let dir = TempDir::new("unix-review-missing-dir");
    let file = dir.join("plain-file");
    std::fs::write(&file, "").unwrap();
    let cases = [
        (
            dir.join("missing").join("x.sock"),
            libc::ENOENT,
            "does not exist",
        ),
        (file.join("x.sock"), libc::ENOTDIR, "not a directory"),
    ];
    for (path, errno, why) in cases {
        let binds = [
            ("UnixListener::bind", UnixListener::bind(&path).map(drop)),
            ("UnixDatagram::bind", UnixDatagram::bind(&path).map(drop)),
            (
                "UnixSocket::bind",
                UnixSocket::new_stream().unwrap().bind(&path),
            ),
        ];
        for (call, res) in binds {
            let err = res.expect_err(call);
            assert_eq!(
                err.kind(),
                io::Error::from_raw_os_error(errno).kind(),
                "{call}: {err}"
            );
            assert_eq!(overlap::io::raw_os_error(&err), Some(errno), "{call}");
            let msg = err.to_string();
            assert!(msg.contains(&format!("{path:?}")), "{call}: {msg}");
            assert!(msg.contains(why), "{call}: {msg}");
        }
    }
}

/// The name belongs to the file: once the listener's directory is removed, the listener
/// still accepts the connection it had queued, and still reports its path, but nothing
/// new reaches it; a new listener at the recreated path gets the new connections.
#[overlap::test]
async fn a_listener_whose_directory_is_removed_serves_its_queue_and_keeps_its_name() {
    let dir = TempDir::new("unix-review-dir-gone");
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let path = sub.join("l.sock");
    let old = UnixListener::bind(&path).unwrap();
    let mut queued = UnixStream::connect(&path).await.unwrap();
    std::fs::remove_dir_all(&sub).unwrap();

    support::unix_accept_and_echo(&old, &mut queued).await;
    assert_eq!(
        old.local_addr().unwrap().as_pathname(),
        Some(path.as_path())
    );
    let err = UnixStream::connect(&path).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    std::fs::create_dir(&sub).unwrap();
    let new = UnixListener::bind(&path).unwrap();
    let mut client = UnixStream::connect(&path).await.unwrap();
    let mut accepted = std::pin::pin!(old.accept());
    assert!(
        support::poll_once(accepted.as_mut()).await.is_pending(),
        "the old listener got a connection made to the new file"
    );
    support::unix_accept_and_echo(&new, &mut client).await;
}

/// Every write call on a stream whose peer is gone fails with `BrokenPipe`, with the
/// default `SIGPIPE` action in place (which kills the process on a write without
/// `MSG_NOSIGNAL`; Rust programs ignore it, so only a child that restores it can tell). A
/// 16 MiB `write_all` whose reader leaves after 1 MiB ends the same way instead of
/// waiting; so do writes after the writer's own `shutdown(Write)`, on a stream and on a
/// datagram socket.
#[test]
fn every_write_to_a_vanished_peer_fails_without_sigpipe() {
    run_in_child(
        "every_write_to_a_vanished_peer_fails_without_sigpipe",
        || {
            // SAFETY: `signal` with SIG_DFL installs no handler; nothing else in this child
            // process sets the SIGPIPE action.
            let old = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
            assert_ne!(old, libc::SIG_ERR);
            overlap::block_on(async {
                let (mut writer, mut reader) = UnixStream::pair().unwrap();
                let big = vec![7u8; 16 << 20];
                let leaves = overlap::spawn(async move {
                    let mut first = vec![0u8; 1 << 20];
                    reader.read_exact(&mut first).await.unwrap();
                    assert!(first.iter().all(|&b| b == 7));
                });
                let err = within(
                    HANG,
                    writer.write_all(&big),
                    "write_all to a reader that left",
                )
                .await
                .expect_err("16 MiB went to a reader that read 1");
                leaves.await.unwrap();
                assert_broken("write_all", err);

                let dead_pair = || {
                    let (a, b) = UnixStream::pair().unwrap();
                    drop(b);
                    a
                };
                let file = std::fs::File::open("/dev/null").unwrap();
                let mut a = dead_pair();
                assert_broken("write", a.write(b"x").await.unwrap_err());
                let slices = [IoSlice::new(b"a"), IoSlice::new(b"b")];
                assert_broken(
                    "write_vectored",
                    a.write_vectored(&slices).await.unwrap_err(),
                );
                let a = dead_pair();
                a.writable().await.unwrap();
                assert_broken("try_write", a.try_write(b"x").unwrap_err());
                let a = dead_pair();
                a.writable().await.unwrap();
                let err = a.try_write_vectored(&slices).unwrap_err();
                assert_broken("try_write_vectored", err);
                let a = dead_pair();
                let err = a.send_with_fds(b"x", &[file.as_fd()]).await.unwrap_err();
                assert_broken("send_with_fds", err);
                let a = dead_pair();
                a.writable().await.unwrap();
                let err = a.try_send_with_fds(b"x", &[file.as_fd()]).unwrap_err();
                assert_broken("try_send_with_fds", err);
                let (_rd, mut wr) = dead_pair().into_split();
                assert_broken("OwnedWriteHalf", wr.write(b"x").await.unwrap_err());

                let (mut a, _b) = UnixStream::pair().unwrap();
                a.shutdown(Shutdown::Write).unwrap();
                assert_broken("write after shutdown", a.write(b"x").await.unwrap_err());
                let (d, _e) = UnixDatagram::pair().unwrap();
                d.shutdown(Shutdown::Write).unwrap();
                let err = d.send(b"x").await.unwrap_err();
                assert_broken("datagram send after shutdown", err);
            });
        },
    );
}

fn assert_broken(what: &str, err: io::Error) {
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{what}: {err}");
}

/// The variable that makes a copy of this test binary the client of
/// [`peer_cred_names_the_child_process_that_connected`], connecting to the path it holds.
const CONNECT_TO: &str = "OVERLAP_NET_UNIX_REVIEW_CONNECT_TO";

/// `peer_cred` names the process at the other end as it was when it connected: a child
/// process's pid (the one it reports itself), not ours, and still once it has exited.
#[test]
fn peer_cred_names_the_child_process_that_connected() {
    if let Some(path) = std::env::var_os(CONNECT_TO) {
        overlap::block_on(async {
            let mut conn = UnixStream::connect(&path).await.unwrap();
            conn.write_all(&std::process::id().to_le_bytes())
                .await
                .unwrap();
            let mut rest = Vec::new();
            conn.read_to_end(&mut rest).await.unwrap();
        });
        return;
    }
    let dir = TempDir::new("unix-review-cred");
    let path = dir.join("parent.sock");
    overlap::block_on(async {
        let listener = UnixListener::bind(&path).unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "peer_cred_names_the_child_process_that_connected",
                "--exact",
                "--test-threads=1",
            ])
            .env(CONNECT_TO, &path)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let (mut conn, _) = within(HANG, listener.accept(), "the child's connect")
            .await
            .unwrap();
        let mut reported = [0u8; 4];
        within(HANG, conn.read_exact(&mut reported), "the child's pid")
            .await
            .unwrap();
        assert_eq!(u32::from_le_bytes(reported), child.id());
        // SAFETY: geteuid and getegid take no arguments and cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let want = (Some(child.id() as i32), uid, gid);
        let cred = conn.peer_cred().unwrap();
        assert_eq!((cred.pid(), cred.uid(), cred.gid()), want);
        assert_ne!(cred.pid, std::process::id() as i32);

        conn.close().await.unwrap();
        let mut end = Vec::new();
        within(HANG, conn.read_to_end(&mut end), "the child's exit")
            .await
            .unwrap();
        assert!(child.wait().unwrap().success());
        let cred = conn.peer_cred().unwrap();
        assert_eq!((cred.pid(), cred.uid(), cred.gid()), want);
    });
}

/// A stream socket bound at `path` with every byte of `sun_path` used, no NUL after it:
/// the kernel takes a 108-byte path so (it adds the NUL itself), as a C program passing
/// `sizeof(struct sockaddr_un)` binds it; overlap's own calls refuse one.
fn stream_bound_at_108_bytes(path: &Path) -> UnixSocket {
    UnixSocket::from(support::unix_bound_at_108_bytes(path, libc::SOCK_STREAM))
}

/// A client bound at a 108-byte path: `accept`, the server's `peer_addr` and the
/// client's `local_addr` all name it whole (std's address type holds it, though
/// overlap's calls cannot bind it), not cut by a byte nor refused.
#[overlap::test]
async fn a_client_bound_at_a_108_byte_path_is_named_in_full_by_accept() {
    let dir = TempDir::new("unix-review-108");
    let listen_path = dir.join("l.sock");
    let listener = UnixListener::bind(&listen_path).unwrap();
    let base = dir.path().as_os_str().len() + 1;
    let long = dir.join(&"q".repeat(108 - base));
    assert_eq!(long.as_os_str().len(), 108);
    assert_eq!(
        UnixListener::bind(&long).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );

    let mut client = stream_bound_at_108_bytes(&long)
        .connect(&listen_path)
        .await
        .unwrap();
    assert_eq!(
        client.local_addr().unwrap().as_pathname(),
        Some(long.as_path())
    );
    let (server, from) = support::unix_accept_and_echo(&listener, &mut client).await;
    assert_eq!(from.as_pathname(), Some(long.as_path()));
    assert_eq!(
        server.peer_addr().unwrap().as_pathname(),
        Some(long.as_path())
    );
}
