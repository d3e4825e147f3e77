//! `SO_LINGER` with a time: the kernel's `close` then waits for the peer to take unsent
//! data, even on a non-blocking socket, so dropping such a stream must not stall the event
//! loop; and a time under a second lingers for a second rather than resetting. With a
//! zero time, a stream split into owned halves resets when they drop, with no FIN first.

mod support;

use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream};
use overlap::time::timeout;
use support::within;

const HANG: Duration = Duration::from_secs(30);

/// A connected pair whose server end never reads, and a client whose send buffer is full.
async fn stuck_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while timeout(Duration::from_millis(100), client.write(&chunk))
        .await
        .is_ok()
    {}
    (client, server)
}

#[overlap::test]
async fn dropping_a_lingering_stream_does_not_stall_the_loop() {
    let (client, server) = stuck_pair().await;
    client.set_linger(Some(Duration::from_secs(60))).unwrap();
    // A hang guard, not a speed check: a close on this thread would wait the full minute
    // (the peer never reads); handed to the pool, the drop takes microseconds.
    let start = std::time::Instant::now();
    drop(client);
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "drop stalled the loop for {took:?}"
    );
    // The peer going away ends the lingering close on the pool thread.
    drop(server);
}

/// Neither a fraction of a second nor a time past the kernel's limit (`Duration::MAX`, which
/// overflowed when rounded up) may turn into a zero linger, which resets the connection.
#[overlap::test]
async fn odd_linger_times_are_rounded_or_clamped_never_turned_into_a_reset() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let limit = Duration::from_secs(i32::MAX as u64);
    for (asked, kept) in [
        (Duration::from_millis(500), Duration::from_secs(1)),
        (Duration::MAX, limit),
        (limit + Duration::from_nanos(1), limit),
    ] {
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        client.set_linger(Some(asked)).unwrap();
        assert_eq!(client.linger().unwrap(), Some(kept), "asked for {asked:?}");
        client.write_all(b"important").await.unwrap();
        drop(client);
        let mut got = Vec::new();
        within(HANG, server.read_to_end(&mut got), "read hung")
            .await
            .unwrap_or_else(|e| panic!("linger {asked:?}: the peer saw {e}"));
        assert_eq!(got, b"important");
    }
}

/// A runtime dropped with a lingering stream still owned by a task: the runtime drops its
/// tasks after shutting its pool, and the close must not wait there either.
#[test]
fn dropping_a_runtime_with_a_lingering_stream_returns_at_once() {
    let rt = overlap::Runtime::new().unwrap();
    let server = rt.block_on(async {
        let (client, server) = stuck_pair().await;
        client.set_linger(Some(Duration::from_secs(60))).unwrap();
        overlap::spawn(async move {
            let _client = client;
            std::future::pending::<()>().await
        });
        overlap::yield_now().await;
        server.into_std().unwrap()
    });
    let start = std::time::Instant::now();
    drop(rt);
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "drop(Runtime) took {took:?}"
    );
    drop(server);
}

/// Outside any runtime no loop can stall, so a lingering socket closes before its drop
/// returns, as a std socket does: the peer sees the end at once.
#[test]
fn outside_a_runtime_a_lingering_stream_is_closed_when_drop_returns() {
    use std::io::Read;
    for _ in 0..20 {
        let (client, mut server) = overlap::block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let client = TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let (server, _) = listener.accept().await.unwrap();
            client.set_linger(Some(Duration::from_secs(5))).unwrap();
            (client, server.into_std().unwrap())
        });
        drop(client);
        server.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(server.read(&mut buf).unwrap(), 0, "no end of file yet");
    }
}

/// A zero-linger stream split into owned halves: the write half's drop sends no FIN (the
/// peer has nothing to read, not a clean end of file), and the read half's drop then
/// resets the connection. Where the write half shut the write side down on drop, a peer
/// parked in a read woke to a clean end of file before the reset came: a mux's reader
/// took a connection its owner aborted mid-transfer for one closed in good order.
#[overlap::test]
async fn zero_linger_owned_halves_reset_with_no_fin_first() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (conn, _) = listener.accept().await.unwrap();
    conn.set_zero_linger().unwrap();
    let (rd, wr) = conn.into_split();
    drop(wr);
    support::settle().await;
    let mut buf = [0u8; 8];
    let early = peer.try_read(&mut buf).map_err(|e| e.kind());
    assert_eq!(
        early,
        Err(std::io::ErrorKind::WouldBlock),
        "the write half's drop sent a FIN"
    );
    drop(rd);
    let mut peer = peer;
    let err = within(HANG, peer.read(&mut buf), "the reset")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
}
