//! `UnixListener::accept` returns the peer's address that `accept4` wrote, as
//! `TcpListener::accept` does: it must not ask the kernel again with `getpeername`, which a
//! sandbox may refuse (an LSM's `getattr` rule, a seccomp profile). With that call refused,
//! each connection is still accepted, with the right address (unnamed, a path, an abstract
//! name, up to the longest `sun_path` holds), and serves; it used to be closed, and the
//! accept failed with the refusal.

mod support;

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use overlap::net::{UnixListener, UnixSocket, UnixStream};
use support::seccomp::{install, rule};
use support::{expect_errno, run_in_child, within, TempDir};

const HANG: Duration = Duration::from_secs(20);

/// An abstract name unique to this process, padded with `fill` to `len` bytes after the
/// leading NUL.
fn abstract_name(what: &str, len: usize, fill: char) -> String {
    let mut name = format!("overlap-review-unix-accept-{}-{what}-", std::process::id());
    while name.len() < len {
        name.push(fill);
    }
    format!("\0{name}")
}

/// A path in `dir` of exactly `len` bytes.
fn path_of_len(dir: &TempDir, len: usize) -> PathBuf {
    let base = dir.path().as_os_str().len() + 1;
    assert!(base < len, "the temp dir's path is too long for this test");
    dir.join(&"p".repeat(len - base))
}

/// Accepts one connection from `client`, checks the address with `check`, and that bytes
/// go both ways.
async fn accept_and_serve(
    listener: &UnixListener,
    mut client: UnixStream,
    check: impl FnOnce(&std::os::unix::net::SocketAddr),
) {
    let (_server, addr) = support::unix_accept_and_echo(listener, &mut client).await;
    check(&addr);
}

#[test]
fn accept_gives_each_peers_address_without_getpeername() {
    run_in_child(
        "accept_gives_each_peers_address_without_getpeername",
        || {
            let dir = TempDir::new("review-unix-accept");
            overlap::block_on(async {
                let listener = UnixListener::bind(abstract_name("listener", 40, 'l')).unwrap();
                let to = listener.local_addr().unwrap();
                let to = to.as_pathname().map(PathBuf::from).unwrap_or_else(|| {
                    use std::os::linux::net::SocketAddrExt;
                    let name = to.as_abstract_name().expect("an abstract listener");
                    PathBuf::from(std::ffi::OsStr::from_bytes(&[&[0u8][..], name].concat()))
                });

                install(&[rule(libc::SYS_getpeername, libc::EACCES)]);

                // An unbound client: its address is unnamed.
                let client = UnixStream::connect(&to).await.unwrap();
                expect_errno("getpeername", client.peer_addr(), libc::EACCES);
                accept_and_serve(&listener, client, |addr| {
                    assert!(addr.is_unnamed(), "{addr:?}");
                })
                .await;

                // Clients bound to paths, short and of the longest length a path can have (107
                // bytes and its NUL fill `sun_path`).
                for len in [dir.path().as_os_str().len() + 8, 107] {
                    let path = path_of_len(&dir, len);
                    let sock = UnixSocket::new_stream().unwrap();
                    sock.bind(&path).unwrap();
                    let client = sock.connect(&to).await.unwrap();
                    accept_and_serve(&listener, client, |addr| {
                        assert_eq!(addr.as_pathname(), Some(path.as_path()), "{len} bytes");
                    })
                    .await;
                }

                // Clients bound to abstract names, short and filling `sun_path`.
                for len in [50, 107] {
                    let name = abstract_name("client", len, 'c');
                    let sock = UnixSocket::new_stream().unwrap();
                    sock.bind(&name).unwrap();
                    let client = sock.connect(&to).await.unwrap();
                    accept_and_serve(&listener, client, |addr| {
                        use std::os::linux::net::SocketAddrExt;
                        assert_eq!(
                            addr.as_abstract_name(),
                            Some(&name.as_bytes()[1..]),
                            "{len} bytes"
                        );
                    })
                    .await;
                }
            });
        },
    );
}

/// Without a sandbox, the address `accept` gives is the one `peer_addr` asks for.
#[overlap::test]
async fn accept_gives_the_address_peer_addr_does() -> io::Result<()> {
    let dir = TempDir::new("review-unix-accept-same");
    let listener = UnixListener::bind(dir.join("listener"))?;
    let client_path = dir.join("client");
    let sock = UnixSocket::new_stream()?;
    sock.bind(&client_path)?;
    let _bound = sock.connect(dir.join("listener")).await?;
    let _unbound = UnixStream::connect(dir.join("listener")).await?;
    for _ in 0..2 {
        let (server, addr) = within(HANG, listener.accept(), "accept").await?;
        let asked = server.peer_addr()?;
        assert_eq!(
            (addr.as_pathname(), addr.is_unnamed()),
            (asked.as_pathname(), asked.is_unnamed())
        );
    }
    Ok(())
}
