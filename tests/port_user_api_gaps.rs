//! The small gaps a tokio user hit while writing the `port_user_*` programs, each checked
//! where it was filled: `TryFrom` from the std socket types, `io::split` for any stream, a
//! `Default` `watch::Sender`, and `broadcast`'s `same_channel` and `Receiver::is_closed`.

mod support;

use std::os::unix::net as std_unix;

use overlap::io::{self, AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream};
use overlap::sync::watch;

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

/// tokio's `io::split`: halves of any stream for two tasks, and `unsplit` to join them.
#[overlap::test]
async fn io_split_gives_halves_of_any_stream_for_two_tasks() -> io::Result<()> {
    let (near, far) = io::duplex(64);
    let (mut far_read, mut far_write) = io::split(far);
    // An echo on the far side, its read and write halves in two tasks joined by a channel.
    let (tx, mut rx) = overlap::sync::mpsc::channel::<Vec<u8>>(4);
    let reader = overlap::spawn(async move {
        let mut buf = [0u8; 16];
        loop {
            let n = far_read.read(&mut buf).await?;
            if n == 0 || tx.send(buf[..n].to_vec()).await.is_err() {
                return io::Result::Ok(far_read);
            }
        }
    });
    let writer = overlap::spawn(async move {
        while let Some(chunk) = rx.recv().await {
            far_write.write_all(&chunk).await?;
        }
        io::Result::Ok(far_write)
    });

    let (mut near_read, mut near_write) = io::split(near);
    let body: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    let sent = body.clone();
    let send = overlap::spawn(async move {
        near_write.write_all(&sent).await?;
        near_write.close().await?;
        io::Result::Ok(near_write)
    });
    let mut back = vec![0u8; body.len()];
    near_read.read_exact(&mut back).await?;
    assert_eq!(back, body);

    let near_write = send.await??;
    let far = reader
        .await??
        .reunite(writer.await??)
        .expect("halves of one stream");
    drop(far);
    let mut near = near_read.reunite(near_write).expect("halves of one stream");
    let mut rest = Vec::new();
    near.read_to_end(&mut rest).await?;
    assert!(rest.is_empty());
    Ok(())
}

/// tokio's `watch::Sender` is `Default` for a `Default` value (a sender with no receivers,
/// which `subscribe` gives out later).
#[overlap::test]
async fn a_default_watch_sender_starts_from_the_default_value() {
    let config: watch::Sender<Vec<&str>> = Default::default();
    let mut rx = config.subscribe();
    assert!(rx.borrow().is_empty());
    assert!(!rx.has_changed().unwrap());
    config.send_modify(|v| v.push("verbose"));
    rx.changed().await.unwrap();
    assert_eq!(*rx.borrow_and_update(), ["verbose"]);
}

/// tokio's `broadcast` ends tell whether two share a channel, and a receiver whether its
/// senders are gone (to prune a room nobody can speak in any more).
#[overlap::test]
async fn broadcast_ends_compare_channels_and_see_the_senders_go() {
    use overlap::sync::broadcast::{self, error::RecvError};

    let (lobby, mut in_lobby) = broadcast::channel::<&str>(4);
    let (garden, in_garden) = broadcast::channel::<&str>(4);
    assert!(lobby.same_channel(&lobby.clone()));
    assert!(!lobby.same_channel(&garden));
    assert!(in_lobby.same_channel(&lobby.subscribe()));
    assert!(in_lobby.same_channel(&in_lobby.resubscribe()));
    assert!(!in_lobby.same_channel(&in_garden));

    lobby.send("closing time").unwrap();
    let second = lobby.clone();
    drop(lobby);
    assert!(!in_lobby.is_closed(), "a clone still sends");
    drop(second);
    assert!(in_lobby.is_closed());
    assert!(!in_garden.is_closed());
    // What was sent is still read before the close shows.
    assert_eq!(in_lobby.recv().await, Ok("closing time"));
    assert_eq!(in_lobby.recv().await, Err(RecvError::Closed));
    drop(garden);
}
