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
