//! Cancel safety of the sockets' async calls: each is polled by hand until it waits, then
//! dropped (as a `select!` branch that lost, or a `timeout`, drops it), and what arrives
//! next is checked to be whole: the bytes a dropped read did not return, the datagram a
//! dropped `recv` did not take, the connection a dropped `accept` did not accept. Waits
//! made by the `async fn`s own their waiter entry, so a dropped one must leave no waker
//! behind; a dropped `write` must have sent nothing, and a dropped `write_all` (documented
//! as not cancel-safe) must leave a stream that still works, having sent a prefix.

mod support;

use std::io::ErrorKind;
use std::time::Duration;

use overlap::io::Interest;
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{
    RecvBatch, TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream,
};
use support::{
    abandon, abandon_slot, pattern, tcp_pair, udp_trio, wait_on, within, ManualTask, TempDir,
};

const HANG: Duration = Duration::from_secs(10);

/// Reads exactly `n` bytes from `from`, under the hang guard.
async fn read_n(from: &mut (impl AsyncReadExt + Unpin), n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    within(HANG, from.read_exact(&mut buf), "bytes lost")
        .await
        .unwrap();
    buf
}

#[overlap::test]
async fn tcp_dropped_reads_and_waits_lose_no_byte() {
    let (mut a, mut b) = tcp_pair().await;
    let mut buf = [0u8; 16];
    abandon_slot(b.read(&mut buf)); // futures-io's read: the shared per-direction slot
    abandon(b.peek(&mut buf));
    abandon(b.readable());
    abandon(b.ready(Interest::READABLE));
    a.write_all(b"first").await.unwrap();
    within(HANG, b.readable(), "no read edge").await.unwrap();
    assert_eq!(read_n(&mut b, 5).await, b"first");

    // The halves, borrowed and owned.
    let (mut rd, _wr) = TcpStream::split(&mut b);
    abandon_slot(rd.read(&mut buf));
    abandon(rd.peek(&mut buf));
    abandon(rd.readable());
    a.write_all(b"second").await.unwrap();
    assert_eq!(read_n(&mut rd, 6).await, b"second");
    let (mut rd, _wr) = b.into_split();
    abandon_slot(rd.read(&mut buf));
    abandon(rd.peek(&mut buf));
    a.write_all(b"third").await.unwrap();
    assert_eq!(read_n(&mut rd, 5).await, b"third");
}

#[overlap::test]
async fn tcp_dropped_accept_loses_no_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    abandon(listener.accept());

    // Two accepts wait; the one an edge woke is dropped: the other takes the connection.
    let (ta, tb) = (ManualTask::default(), ManualTask::default());
    let mut first = Box::pin(listener.accept());
    let mut second = Box::pin(listener.accept());
    wait_on(&ta, first.as_mut());
    wait_on(&tb, second.as_mut());
    let client = TcpStream::connect(addr).await.unwrap();
    let edge = async {
        while !ta.is_woken() {
            overlap::yield_now().await; // the loop polls epoll
        }
    };
    within(HANG, edge, "the connection woke nobody").await;
    drop(first);
    assert_eq!(ta.wakers_held(), 0);
    let (served, peer) = within(HANG, second, "the connection was lost")
        .await
        .unwrap();
    assert_eq!(peer, client.local_addr().unwrap());
    assert_eq!(served.peer_addr().unwrap(), client.local_addr().unwrap());
}

#[overlap::test]
async fn tcp_dropped_write_sends_nothing() {
    let (a, mut b) = tcp_pair().await;
    // Fill the send and receive buffers, counting what was taken.
    let chunk = pattern(64 * 1024);
    let mut sent = 0;
    loop {
        match a.try_write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    let mut a = a;
    abandon(a.writable());
    let task = abandon_slot(a.write(b"never sent"));
    // The reader drains what was accepted; then the marker written next follows at once.
    let mut got = 0;
    let mut buf = vec![0u8; 64 * 1024];
    while got < sent {
        let n = within(HANG, b.read(&mut buf), "accepted bytes lost").await;
        got += n.unwrap();
    }
    assert_eq!(got, sent);
    assert!(task.wakers_held() <= 1);
    a.write_all(b"marker").await.unwrap();
    assert_eq!(
        read_n(&mut b, 6).await,
        b"marker",
        "the dropped write sent bytes"
    );
}

#[overlap::test]
async fn tcp_dropped_write_all_sends_a_prefix_and_the_stream_goes_on() {
    let (mut a, mut b) = tcp_pair().await;
    let data = pattern(8 << 20); // more than the socket buffers hold
    let task = ManualTask::default();
    let mut write_all = Box::pin(a.write_all(&data));
    wait_on(&task, write_all.as_mut());
    drop(write_all); // not cancel-safe: some prefix went out
    let mut got = Vec::new();
    let writer = async {
        a.write_all(b"tail").await.unwrap();
        a.shutdown(std::net::Shutdown::Write).unwrap();
    };
    let both = async { overlap::join!(writer, b.read_to_end(&mut got)).1 };
    within(HANG, both, "the stream stalled").await.unwrap();
    let prefix = got.len() - 4;
    assert!(prefix > 0 && prefix < data.len(), "{prefix} bytes sent");
    assert_eq!(&got[..prefix], &data[..prefix]);
    assert_eq!(&got[prefix..], b"tail");
}

#[overlap::test]
async fn udp_dropped_receives_take_no_datagram() {
    let (rx, (a, a_addr), _) = udp_trio().await;
    let to = rx.local_addr().unwrap();
    let mut buf = [0u8; 64];
    abandon(rx.recv_from(&mut buf));
    abandon(rx.peek_from(&mut buf));
    abandon(rx.peek_sender());
    abandon(rx.readable());
    a.send_to(b"one", to).await.unwrap();
    let (n, from) = within(HANG, rx.recv_from(&mut buf), "lost").await.unwrap();
    assert_eq!((&buf[..n], from), (&b"one"[..], a_addr));

    let mut batch = RecvBatch::new(8, 64);
    abandon(rx.recv_batch(&mut batch));
    for d in [&b"x"[..], b"yy", b"zzz"] {
        a.send_to(d, to).await.unwrap();
    }
    let mut lens = Vec::new();
    while lens.len() < 3 {
        let n = within(HANG, rx.recv_batch(&mut batch), "lost")
            .await
            .unwrap();
        lens.extend((0..n).map(|i| batch.get(i).unwrap().data.len()));
    }
    assert_eq!(lens, [1, 2, 3]);

    // Connected: recv and peek.
    let connected = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    connected.connect(a_addr).await.unwrap();
    abandon(connected.recv(&mut buf));
    abandon(connected.peek(&mut buf));
    a.send_to(b"two", connected.local_addr().unwrap())
        .await
        .unwrap();
    let n = within(HANG, connected.recv(&mut buf), "lost")
        .await
        .unwrap();
    assert_eq!(&buf[..n], b"two");
}

#[overlap::test]
async fn unix_dropped_reads_and_accepts_lose_nothing() {
    let dir = TempDir::new("cancel-unix");
    let path = dir.join("sock");
    let listener = UnixListener::bind(&path).unwrap();
    abandon(listener.accept());
    let mut client = UnixStream::connect(&path).await.unwrap();
    let (mut served, _) = within(HANG, listener.accept(), "connection lost")
        .await
        .unwrap();

    let mut buf = [0u8; 16];
    abandon_slot(served.read(&mut buf));
    abandon(served.peek(&mut buf));
    abandon(served.readable());
    client.write_all(b"hello").await.unwrap();
    assert_eq!(read_n(&mut served, 5).await, b"hello");
    let (mut rd, _wr) = served.into_split();
    abandon(rd.peek(&mut buf));
    abandon_slot(rd.read(&mut buf));
    client.write_all(b"again").await.unwrap();
    assert_eq!(read_n(&mut rd, 5).await, b"again");

    let (x, y) = UnixDatagram::pair().unwrap();
    abandon(y.recv(&mut buf));
    abandon(y.recv_from(&mut buf));
    abandon(y.peek(&mut buf));
    x.send(b"dgram").await.unwrap();
    let n = within(HANG, y.recv(&mut buf), "lost").await.unwrap();
    assert_eq!(&buf[..n], b"dgram");
}

#[overlap::test]
async fn dropped_lookup_leaves_the_resolver_usable() {
    abandon(overlap::net::lookup_host(("localhost", 80))); // its job runs on, unwanted
    let addrs: Vec<_> = within(
        HANG,
        overlap::net::lookup_host(("localhost", 80)),
        "stalled",
    )
    .await
    .unwrap()
    .collect();
    assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
}
