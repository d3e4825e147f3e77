//! The datagram half of the adversarial review of overlap's Unix sockets (the stream half
//! is `net_unix_review.rs`): every receive that names the sender (`recv_from`,
//! `recv_from_with_fds`, `recv_from_with_cred`) gives back an abstract name with NULs in
//! it and at its end, and a path that is no UTF-8, byte for byte, and a reply to that
//! address arrives; an unbound socket that asks for credentials is given an abstract
//! address by the kernel, which then names it and can be answered; a receive after the
//! peer closed takes what is queued (an empty datagram included, which is no end of file)
//! and then waits; a `send_to` waiting for a full receiver ends when the receiver goes, or
//! reaches the socket bound at the path next; a sender bound at a 108-byte path is named
//! in full.

mod support;

use std::ffi::{OsStr, OsString};
use std::io::ErrorKind;
use std::os::fd::AsFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use overlap::net::UnixDatagram;
use support::{within, TempDir};

const HANG: Duration = Duration::from_secs(20);

/// The address of the abstract name `name` (the bytes after the leading NUL).
fn abstract_addr(name: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(&[&[0u8][..], name].concat()))
}

/// An abstract name unique to this process and `what`, followed by `tail`.
fn abstract_name(what: &str, tail: &[u8]) -> Vec<u8> {
    let mut name = format!(
        "overlap-net-unix-review-dgram-{}-{what}",
        std::process::id()
    )
    .into_bytes();
    name.extend_from_slice(tail);
    name
}

/// Sends three datagrams from `tx` to `rx` (at `rx_addr`), the second with an fd, and
/// receives them with `recv_from`, `recv_from_with_fds` and `recv_from_with_cred`: the
/// sender's address each gave, in that order.
async fn three_receives(tx: &UnixDatagram, rx: &UnixDatagram, rx_addr: &Path) -> [SocketAddr; 3] {
    rx.set_passcred(true).unwrap();
    let file = std::fs::File::open("/dev/null").unwrap();
    tx.send_to(b"one", rx_addr).await.unwrap();
    tx.send_to_with_fds(b"two", &[file.as_fd()], rx_addr)
        .await
        .unwrap();
    tx.send_to(b"three", rx_addr).await.unwrap();
    let mut buf = [0u8; 8];
    let (n, first) = within(HANG, rx.recv_from(&mut buf), "recv_from")
        .await
        .unwrap();
    assert_eq!(&buf[..n], b"one");
    let mut fds = Vec::new();
    let (n, second) = within(HANG, rx.recv_from_with_fds(&mut buf, &mut fds), "with fds")
        .await
        .unwrap();
    assert_eq!((&buf[..n], fds.len()), (&b"two"[..], 1));
    let (n, third, cred) = within(HANG, rx.recv_from_with_cred(&mut buf), "with cred")
        .await
        .unwrap();
    assert_eq!(&buf[..n], b"three");
    assert_eq!(cred.unwrap().pid, std::process::id() as i32);
    [first, second, third]
}

/// Receives one datagram on `rx`: its bytes.
async fn recv_one(rx: &UnixDatagram) -> Vec<u8> {
    let mut buf = [0u8; 64];
    let n = within(HANG, rx.recv(&mut buf), "recv").await.unwrap();
    buf[..n].to_vec()
}

/// Abstract names with NULs inside and at the end, the sender's of the longest length
/// (107 bytes): every receive gives the sender's name whole, a reply to it arrives, and a
/// send to the receiver's name with a trailing NUL less reaches nothing.
#[overlap::test]
async fn abstract_names_with_nuls_come_back_whole_from_every_receive() {
    let rx_name = abstract_name("rx", b"\0r\0\0");
    let mut tx_name = abstract_name("tx", b"\0t");
    tx_name.resize(107, 0);
    let rx = UnixDatagram::bind(abstract_addr(&rx_name)).unwrap();
    let tx = UnixDatagram::bind(abstract_addr(&tx_name)).unwrap();
    assert_eq!(
        tx.local_addr().unwrap().as_abstract_name(),
        Some(&tx_name[..])
    );

    for from in three_receives(&tx, &rx, &abstract_addr(&rx_name)).await {
        assert_eq!(from.as_abstract_name(), Some(&tx_name[..]), "{from:?}");
    }
    rx.send_to(b"back", abstract_addr(&tx_name)).await.unwrap();
    assert_eq!(recv_one(&tx).await, b"back");

    let shorter = &rx_name[..rx_name.len() - 1];
    let err = tx.send_to(b"x", abstract_addr(shorter)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");

    tx.connect(abstract_addr(&rx_name)).unwrap();
    assert_eq!(
        tx.peer_addr().unwrap().as_abstract_name(),
        Some(&rx_name[..])
    );
    tx.send(b"connected").await.unwrap();
    assert_eq!(recv_one(&rx).await, b"connected");
}

/// Paths that are no UTF-8: every receive gives the sender's path byte for byte, and a
/// reply to it arrives.
#[overlap::test]
async fn paths_that_are_no_utf8_come_back_byte_for_byte_from_every_receive() {
    let dir = TempDir::new("unix-review-dgram-bytes");
    let at = |bytes: &[u8]| dir.path().join(OsString::from_vec(bytes.to_vec()));
    let rx_path = at(b"rx-\xff.sock");
    let tx_path = at(b"tx-\xfe\x80.sock");
    let rx = UnixDatagram::bind(&rx_path).unwrap();
    let tx = UnixDatagram::bind(&tx_path).unwrap();
    for from in three_receives(&tx, &rx, &rx_path).await {
        assert_eq!(from.as_pathname(), Some(tx_path.as_path()), "{from:?}");
    }
    rx.send_to(b"back", &tx_path).await.unwrap();
    assert_eq!(recv_one(&tx).await, b"back");
}

/// `UnixDatagram::unbound` has no address, so nothing can answer it; but once it asks for
/// credentials, the kernel gives it an abstract name of five hex digits when it sends
/// (autobind): the receiver sees that name, by every receive, and its reply arrives.
#[overlap::test]
async fn an_unbound_socket_asking_for_credentials_gets_a_name_that_can_be_answered() {
    let rx_name = abstract_name("autobind-rx", b"");
    let rx = UnixDatagram::bind(abstract_addr(&rx_name)).unwrap();
    let tx = UnixDatagram::unbound().unwrap();
    tx.send_to(b"anon", abstract_addr(&rx_name)).await.unwrap();
    let mut buf = [0u8; 8];
    let (_, from) = rx.recv_from(&mut buf).await.unwrap();
    assert!(from.is_unnamed(), "{from:?}");
    assert!(tx.local_addr().unwrap().is_unnamed());

    tx.set_passcred(true).unwrap();
    let froms = three_receives(&tx, &rx, &abstract_addr(&rx_name)).await;
    let local = tx.local_addr().unwrap();
    let name = local.as_abstract_name().expect("an abstract name").to_vec();
    assert_eq!(name.len(), 5, "{local:?}");
    assert!(name.iter().all(u8::is_ascii_hexdigit), "{local:?}");
    for from in froms {
        assert_eq!(from.as_abstract_name(), Some(&name[..]), "{from:?}");
    }
    rx.send_to(b"answer", abstract_addr(&name)).await.unwrap();
    assert_eq!(recv_one(&tx).await, b"answer");
}

/// A datagram socket has no end of file: when its peer closes, a receive still takes
/// every datagram queued, an empty one as 0 bytes between the others, and then waits (an
/// hour of the paused clock); only a send learns the peer is gone.
#[overlap::test(start_paused = true)]
async fn a_receive_after_the_peer_closed_takes_the_queue_then_waits() {
    let (a, b) = UnixDatagram::pair().unwrap();
    for dgram in [&b"1"[..], b"", b"2"] {
        a.send(dgram).await.unwrap();
    }
    drop(a);
    for want in [&b"1"[..], b"", b"2"] {
        assert_eq!(recv_one(&b).await, want);
    }
    let mut buf = [0u8; 8];
    let waited = overlap::time::timeout(Duration::from_secs(3600), b.recv(&mut buf)).await;
    assert!(
        waited.is_err(),
        "a receive after the queue ran out: {waited:?}"
    );
    assert_eq!(
        b.try_recv(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    let err = b.send(b"x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    let err = b.send(b"x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected, "{err}");
}

/// Fills the receive queue of the socket at `path` from std sockets: those sockets, kept
/// so that their datagrams stay queued.
fn fill(path: &Path) -> Vec<std::os::unix::net::UnixDatagram> {
    let mut fillers = Vec::new();
    loop {
        let s = std::os::unix::net::UnixDatagram::unbound().unwrap();
        s.set_nonblocking(true).unwrap();
        let mut sent = 0;
        while s.send_to(b"filler", path).is_ok() {
            sent += 1;
        }
        fillers.push(s);
        if sent == 0 {
            return fillers;
        }
    }
}

/// A `send_to` backing off from a full receiver (the kernel sends it no wake-up) ends
/// with `ConnectionRefused`, naming the path, once the receiver is dropped; and when a new
/// socket is bound at the path meanwhile, the datagram goes to that one, as a `send_to`
/// names a path, not a socket.
#[overlap::test(start_paused = true)]
async fn a_send_to_waiting_on_a_full_receiver_follows_the_path() {
    let dir = TempDir::new("unix-review-dgram-full");
    let path = dir.join("rx.sock");
    let tx = std::rc::Rc::new(UnixDatagram::unbound().unwrap());
    let send_later = |what: &'static [u8]| {
        let (tx, path) = (tx.clone(), path.clone());
        overlap::spawn(async move { tx.send_to(what, &path).await })
    };

    let rx = UnixDatagram::bind(&path).unwrap();
    let _fillers = fill(&path);
    let send = send_later(b"lost");
    overlap::time::sleep(Duration::from_secs(1)).await;
    assert!(!send.is_finished(), "the queue was not full");
    drop(rx);
    let err = within(HANG, send, "a send_to whose receiver went")
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    assert!(err.to_string().contains(&format!("{path:?}")), "{err}");

    std::fs::remove_file(&path).unwrap();
    let rx = UnixDatagram::bind(&path).unwrap();
    let _fillers = fill(&path);
    let send = send_later(b"moved");
    overlap::time::sleep(Duration::from_secs(1)).await;
    assert!(!send.is_finished(), "the queue was not full");
    drop(rx);
    std::fs::remove_file(&path).unwrap();
    let next = UnixDatagram::bind(&path).unwrap();
    assert_eq!(within(HANG, send, "moved").await.unwrap().unwrap(), 5);
    assert_eq!(recv_one(&next).await, b"moved");
}

/// A datagram socket bound at `path` with every byte of `sun_path` used, no NUL after it,
/// as a C program passing `sizeof(struct sockaddr_un)` binds a 108-byte path (the kernel
/// adds the NUL itself); overlap's own calls refuse one.
fn datagram_bound_at_108_bytes(path: &Path) -> std::os::unix::net::UnixDatagram {
    std::os::unix::net::UnixDatagram::from(support::unix_bound_at_108_bytes(path, libc::SOCK_DGRAM))
}

/// A sender bound at a 108-byte path is named whole by `recv_from`, not cut by a byte; a
/// reply to that path is refused with `InvalidInput`, as a bind to it is (overlap's calls
/// take a path, which must leave room for its NUL).
#[overlap::test]
async fn a_sender_bound_at_a_108_byte_path_is_named_in_full() {
    let dir = TempDir::new("unix-review-dgram-108");
    let rx_path = dir.join("rx.sock");
    let rx = UnixDatagram::bind(&rx_path).unwrap();
    let base = dir.path().as_os_str().len() + 1;
    let long = dir.join(&"q".repeat(108 - base));
    let tx = datagram_bound_at_108_bytes(&long);
    tx.send_to(b"long", &rx_path).unwrap();
    let mut buf = [0u8; 8];
    let (n, from) = within(HANG, rx.recv_from(&mut buf), "recv_from")
        .await
        .unwrap();
    assert_eq!(&buf[..n], b"long");
    assert_eq!(from.as_pathname(), Some(long.as_path()));
    assert_eq!(from.as_pathname().unwrap().as_os_str().len(), 108);
    let err = rx.send_to(b"x", &long).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}
