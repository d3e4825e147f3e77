//! async-io's `tests/async.rs` (TCP, UDP and Unix sockets through `Async<T>`), ported to
//! overlap's sockets. A smol user writes `Async::<TcpStream>::connect(addr)`; here it is
//! `overlap::net::TcpStream::connect(addr)`, and `stream.get_ref().peer_addr()` is
//! `stream.peer_addr()`. `Async<UdpSocket>::get_ref().connect(..)` (std's, blocking) is
//! `UdpSocket::connect(..).await`. `tcp_duplex` is in `port_async_io_shared.rs`.
//!
//! Where async-io's hang-up tests only check that the loop ends, these also check how: the
//! error a writer gets, and the empty read a reader gets.

mod support;

use std::io::ErrorKind;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream};
use overlap::stream::StreamExt;
use support::{within, TempDir};

const HANG: Duration = Duration::from_secs(20);

const LOREM_IPSUM: &[u8] = b"
Lorem ipsum dolor sit amet, consectetur adipiscing elit.
Donec pretium ante erat, vitae sodales mi varius quis.
Etiam vestibulum lorem vel urna tempor, eu fermentum odio aliquam.
Aliquam consequat urna vitae ipsum pulvinar, in blandit purus eleifend.
";

// async-io: async.rs tcp_connect
#[overlap::test]
async fn tcp_connect_pairs_the_addresses_and_is_refused_once_the_listener_is_gone() {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = overlap::spawn(async move { listener.accept().await });
    let stream2 = TcpStream::connect(addr).await.unwrap();
    let stream1 = task.await.unwrap().unwrap().0;
    assert_eq!(stream1.peer_addr().unwrap(), stream2.local_addr().unwrap());
    assert_eq!(stream2.peer_addr().unwrap(), stream1.local_addr().unwrap());

    // The task that owned the listener has ended, dropping it.
    let err = TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}

// async-io: async.rs tcp_peek_read (through `incoming()`)
#[overlap::test]
async fn tcp_peek_then_read_see_the_same_bytes() {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let mut stream = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    stream.write_all(LOREM_IPSUM).await.unwrap();

    let mut buf = [0; 1024];
    let mut incoming = listener.incoming();
    let mut stream = incoming.next().await.unwrap().unwrap();
    let n = stream.peek(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], LOREM_IPSUM);
    let n = stream.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], LOREM_IPSUM);
}

/// Writes until a write fails, while another task drops the peer; the error.
async fn write_until_the_reader_hangs_up<S, P>(mut writer: S, peer: P) -> std::io::Error
where
    S: AsyncWriteExt + Unpin,
    P: 'static,
{
    let dropper = overlap::spawn(async move {
        overlap::time::sleep(Duration::from_millis(50)).await;
        drop(peer);
    });
    let err = within(
        HANG,
        async {
            loop {
                if let Err(e) = writer.write_all(LOREM_IPSUM).await {
                    return e;
                }
            }
        },
        "a writer never heard that its reader was gone",
    )
    .await;
    dropper.await.unwrap();
    err
}

/// Reads to end of file while another task drops the silent peer: no bytes, then EOF.
async fn read_to_eof_while_the_writer_hangs_up<S, P>(mut reader: S, peer: P)
where
    S: AsyncReadExt + Unpin,
    P: 'static,
{
    let dropper = overlap::spawn(async move {
        overlap::time::sleep(Duration::from_millis(50)).await;
        drop(peer);
    });
    let mut v = vec![];
    within(HANG, reader.read_to_end(&mut v), "no EOF")
        .await
        .unwrap();
    assert!(v.is_empty());
    dropper.await.unwrap();
}

// async-io: async.rs tcp_reader_hangup. The peer closes with unread bytes, so Linux resets
// the connection: the writer sees a reset, or a broken pipe (never a SIGPIPE).
#[overlap::test]
async fn tcp_writer_fails_once_its_reader_hangs_up() {
    let (a, b) = support::tcp_pair().await;
    let err = write_until_the_reader_hangs_up(a, b).await;
    assert!(
        matches!(
            err.kind(),
            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
        ),
        "{err:?}"
    );
}

// async-io: async.rs tcp_writer_hangup
#[overlap::test]
async fn tcp_reader_gets_eof_once_its_writer_hangs_up() {
    let (a, b) = support::tcp_pair().await;
    read_to_eof_while_the_writer_hangs_up(a, b).await;
}

// async-io: async.rs udp_send_recv
#[overlap::test]
async fn udp_peek_and_recv_on_connected_and_unconnected_sockets() {
    let socket1 = UdpSocket::bind(("127.0.0.1", 0)).await.unwrap();
    let socket2 = UdpSocket::bind(("127.0.0.1", 0)).await.unwrap();
    socket1
        .connect(socket2.local_addr().unwrap())
        .await
        .unwrap();
    let mut buf = [0u8; 1024];

    socket1.send(LOREM_IPSUM).await.unwrap();
    let n = socket2.peek(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], LOREM_IPSUM);
    let n = socket2.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], LOREM_IPSUM);

    socket2
        .send_to(LOREM_IPSUM, socket1.local_addr().unwrap())
        .await
        .unwrap();
    let (n, from) = socket1.peek_from(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], LOREM_IPSUM);
    assert_eq!(from, socket2.local_addr().unwrap());
    let (n, from) = socket1.recv_from(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], LOREM_IPSUM);
    assert_eq!(from, socket2.local_addr().unwrap());
}

// async-io: async.rs udp_connect (despite its name, a Unix stream through `incoming()`)
// and uds_connect
#[overlap::test]
async fn uds_connect_pairs_the_paths_and_is_refused_once_the_listener_is_gone() {
    let dir = TempDir::new("port-smol-uds");
    let path = dir.join("socket");
    let listener = UnixListener::bind(&path).unwrap();
    let mut stream = UnixStream::connect(&path).await.unwrap();
    stream.write_all(LOREM_IPSUM).await.unwrap();
    let mut buf = [0; 1024];
    let mut accepted = listener.incoming().next().await.unwrap().unwrap();
    let n = accepted.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], LOREM_IPSUM);

    assert_eq!(
        accepted.peer_addr().unwrap().as_pathname(),
        stream.local_addr().unwrap().as_pathname(),
    );
    assert_eq!(
        stream.peer_addr().unwrap().as_pathname(),
        Some(path.as_path())
    );
    assert_eq!(
        accepted.local_addr().unwrap().as_pathname(),
        Some(path.as_path())
    );

    drop(listener);
    // The socket file stays, with nobody listening behind it.
    let err = UnixStream::connect(&path).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}

// async-io: async.rs uds_send_recv and uds_send_to_recv_from
#[overlap::test]
async fn unix_datagrams_through_a_pair_and_from_an_unbound_socket() {
    let (socket1, socket2) = UnixDatagram::pair().unwrap();
    socket1.send(LOREM_IPSUM).await.unwrap();
    let mut buf = [0; 1024];
    let n = socket2.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], LOREM_IPSUM);

    let dir = TempDir::new("port-smol-dgram");
    let path = dir.join("socket");
    let bound = UnixDatagram::bind(&path).unwrap();
    let unbound = UnixDatagram::unbound().unwrap();
    unbound.send_to(LOREM_IPSUM, &path).await.unwrap();
    let (n, from) = bound.recv_from(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], LOREM_IPSUM);
    assert!(from.is_unnamed(), "{from:?}");
}

// async-io: async.rs uds_reader_hangup. A Unix stream's peer gone: a broken pipe.
#[overlap::test]
async fn uds_writer_fails_once_its_reader_hangs_up() {
    let (a, b) = UnixStream::pair().unwrap();
    let err = write_until_the_reader_hangs_up(a, b).await;
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err:?}");
}

// async-io: async.rs uds_writer_hangup
#[overlap::test]
async fn uds_reader_gets_eof_once_its_writer_hangs_up() {
    let (a, b) = UnixStream::pair().unwrap();
    read_to_eof_while_the_writer_hangs_up(a, b).await;
}

// async-io: async.rs shutdown (`try_zip(accept, connect)`, then the writer's
// `shutdown(Write)` lets the reader's `read_to_end` finish)
#[overlap::test]
async fn shutting_down_the_write_side_ends_the_peers_read_to_end() {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let ((mut reader, _), writer) =
        overlap::try_join!(listener.accept(), TcpStream::connect(addr)).unwrap();
    let mut buf = Vec::new();
    overlap::try_join!(reader.read_to_end(&mut buf), async {
        writer.shutdown(std::net::Shutdown::Write)
    })
    .unwrap();
    assert!(buf.is_empty());
}
