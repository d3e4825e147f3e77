//! Connected loopback sockets and fresh files made through overlap, for tests on a runtime.

use std::path::Path;

use std::net::SocketAddr;

use overlap::fs::{File, OpenOptions};
use overlap::net::{TcpListener, TcpStream, UdpSocket};

/// Two connected TCP streams over 127.0.0.1.
pub async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (b, _) = listener.accept().await.unwrap();
    (a, b)
}

/// `path` opened for reading and writing, created or truncated.
pub async fn open_fresh(path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .await
        .unwrap()
}

/// `path`, an existing file, opened for reading and writing.
pub async fn open_read_write(path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .await
        .unwrap()
}

/// The `i`th test datagram: 1 to 1,200 bytes, its contents derived from `i`.
pub fn datagram(i: usize) -> Vec<u8> {
    let len = 1 + (i * 37) % 1200;
    (0..len).map(|j| (i + j) as u8).collect()
}

/// A receiver and two senders on 127.0.0.1, with the senders' addresses.
pub async fn udp_trio() -> (UdpSocket, (UdpSocket, SocketAddr), (UdpSocket, SocketAddr)) {
    let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    (rx, (a, a_addr), (b, b_addr))
}

/// Writes with `try_write` until `stream`'s send buffer takes no more; the bytes written.
pub fn fill_send_buffer(stream: &TcpStream) -> usize {
    let chunk = vec![7u8; 256 * 1024];
    let mut total = 0;
    loop {
        match stream.try_write(&chunk) {
            Ok(n) => total += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return total,
            Err(e) => panic!("try_write: {e}"),
        }
    }
}

/// A Unix socket of `kind` (`SOCK_STREAM`, `SOCK_DGRAM`) bound at `path` with every byte of
/// `sun_path` used, no NUL after it: the kernel takes a 108-byte path so (it adds the NUL
/// itself), as a C program passing `sizeof(struct sockaddr_un)` binds it, where overlap's
/// and std's calls, which take a path, refuse one.
pub fn unix_bound_at_108_bytes(path: &std::path::Path, kind: libc::c_int) -> std::os::fd::OwnedFd {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: socket takes only integers.
    let fd = unsafe { libc::socket(libc::AF_UNIX, kind | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "{}", std::io::Error::last_os_error());
    // SAFETY: `fd` was just created and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_un is plain old data; all zeroes is a valid value.
    let mut un: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    un.sun_family = libc::AF_UNIX as libc::sa_family_t;
    assert_eq!(bytes.len(), un.sun_path.len());
    for (dst, &src) in un.sun_path.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: `un` is a valid sockaddr_un of `len` bytes, only read by the kernel.
    let res = unsafe { libc::bind(fd.as_raw_fd(), (&raw const un).cast(), len) };
    assert_eq!(res, 0, "{}", std::io::Error::last_os_error());
    fd
}

/// Accepts one connection on `listener` (from `client`) and checks that bytes go both ways
/// ("ping", "pong"); returns the server's end and the address `accept` gave. Each step has
/// 20 s.
pub async fn unix_accept_and_echo(
    listener: &overlap::net::UnixListener,
    client: &mut overlap::net::UnixStream,
) -> (overlap::net::UnixStream, std::os::unix::net::SocketAddr) {
    use overlap::io::{AsyncReadExt, AsyncWriteExt};
    let hang = std::time::Duration::from_secs(20);
    let (mut server, from) = super::within(hang, listener.accept(), "accept")
        .await
        .unwrap();
    client.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    super::within(hang, server.read_exact(&mut buf), "server read")
        .await
        .unwrap();
    assert_eq!(&buf, b"ping");
    server.write_all(b"pong").await.unwrap();
    super::within(hang, client.read_exact(&mut buf), "client read")
        .await
        .unwrap();
    assert_eq!(&buf, b"pong");
    (server, from)
}

/// A loopback connection whose peer has sent `before`, one urgent byte (`!`) and `after`,
/// all delivered before it returns: (the peer, our end). A `recv` stops at the urgent mark.
pub async fn conn_with_urgent_mark(
    before: &[u8],
    after: &[u8],
) -> (std::net::TcpStream, TcpStream) {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (conn, _) = listener.accept().await.unwrap();
    peer.write_all(before).unwrap();
    super::send_urgent(peer.as_raw_fd(), b'!');
    peer.write_all(after).unwrap();
    // Loopback delivers during the writes; the pause only makes that certain.
    std::thread::sleep(std::time::Duration::from_millis(50));
    (peer, conn)
}
