//! The small gaps a tokio user hit while writing the `port_user_*` programs, each checked
//! where it was filled: `TryFrom` from the std socket types.

mod support;

use std::os::unix::net as std_unix;

use overlap::io::{self, AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream};

/// tokio (and smol) take a std socket with `try_from` as well as `from_std`.
#[overlap::test]
async fn std_tcp_and_udp_sockets_convert_with_try_from() -> io::Result<()> {
    let listener = TcpListener::try_from(std::net::TcpListener::bind("127.0.0.1:0")?)?;
    let addr = listener.local_addr()?;
    let mut client = TcpStream::try_from(std::net::TcpStream::connect(addr)?)?;
    let (mut server, _) = listener.accept().await?;
    client.write_all(b"over tcp").await?;
    let mut buf = [0u8; 8];
    server.read_exact(&mut buf).await?;
    assert_eq!(&buf, b"over tcp");

    let a = UdpSocket::try_from(std::net::UdpSocket::bind("127.0.0.1:0")?)?;
    let b = UdpSocket::try_from(std::net::UdpSocket::bind("127.0.0.1:0")?)?;
    a.send_to(b"over udp", b.local_addr()?).await?;
    let (n, from) = b.recv_from(&mut buf).await?;
    assert_eq!((&buf[..n], from), (&b"over udp"[..], a.local_addr()?));
    Ok(())
}

#[overlap::test]
async fn std_unix_sockets_convert_with_try_from() -> io::Result<()> {
    let dir = support::TempDir::new("port-user-try-from");
    let path = dir.join("sock");
    let listener = UnixListener::try_from(std_unix::UnixListener::bind(&path)?)?;
    let mut client = UnixStream::try_from(std_unix::UnixStream::connect(&path)?)?;
    let (mut server, _) = listener.accept().await?;
    client.write_all(b"stream").await?;
    let mut buf = [0u8; 6];
    server.read_exact(&mut buf).await?;
    assert_eq!(&buf, b"stream");

    let (a, b) = std_unix::UnixDatagram::pair()?;
    let (a, b) = (UnixDatagram::try_from(a)?, UnixDatagram::try_from(b)?);
    a.send(b"gram").await?;
    let n = b.recv(&mut buf).await?;
    assert_eq!(&buf[..n], b"gram");
    Ok(())
}
