//! `examples/tcp_proxy.rs` with an upstream that accepts and never reads: the client fills
//! every buffer on the way, then resets its connection (`SO_LINGER` {on, 0} and close).
//! Nothing then waits to read from the client (the proxy is stuck writing upstream, and
//! waiting for upstream's answer), yet the proxy must notice the reset and close both
//! connections instead of holding them, and their descriptors, for ever. And the same the
//! other way: a client that never reads, and an upstream that resets. And a reset from
//! either side reaches the other as a reset, not as an end of file.

mod support;
#[allow(dead_code)]
#[path = "../examples/tcp_proxy.rs"]
mod tcp_proxy;

use std::io::ErrorKind;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream};
use overlap::task::JoinHandle;
use support::within;

const HANG: Duration = Duration::from_secs(10);

/// Writes to `conn` until the kernel has taken all it will: several rounds of
/// `WouldBlock`, with a pause between them for the bytes to move along the chain.
async fn fill(conn: &TcpStream) -> usize {
    let chunk = vec![0x5a_u8; 64 * 1024];
    let mut total = 0;
    let mut stalls = 0;
    while stalls < 5 {
        match conn.try_write(&chunk) {
            Ok(n) => {
                total += n;
                stalls = 0;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                stalls += 1;
                overlap::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("write: {e}"),
        }
    }
    total
}

/// Reads `conn` to the end: what the far side sees once the proxy let its connection go
/// (end of file after what was forwarded, or a reset).
async fn drain(mut conn: TcpStream) -> ErrorKind {
    let mut sink = Vec::new();
    match conn.read_to_end(&mut sink).await {
        Ok(_) => ErrorKind::UnexpectedEof,
        Err(e) => e.kind(),
    }
}

/// A client connected through the example's proxy to an upstream: `(client, the
/// upstream's end, the proxy task)`.
async fn connect_through_proxy() -> (
    TcpStream,
    TcpStream,
    JoinHandle<std::io::Result<(u64, u64)>>,
) {
    let up = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = up.local_addr().unwrap();
    let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = front.local_addr().unwrap();
    let proxy = overlap::spawn(async move {
        let (client, _) = front.accept().await.unwrap();
        tcp_proxy::proxy(client, upstream).await
    });
    let client = TcpStream::connect(addr).await.unwrap();
    let (server, _) = up.accept().await.unwrap();
    (client, server, proxy)
}

#[test]
fn a_client_reset_while_the_upstream_stalls_closes_both_connections() {
    overlap::block_on(async {
        // The upstream takes the connection and never reads from it.
        let (client, server, proxy) = connect_through_proxy().await;

        let sent = fill(&client).await;
        assert!(sent > 0);
        assert!(
            !proxy.is_finished(),
            "the proxy gave up on a live connection"
        );

        client.set_linger(Some(Duration::ZERO)).unwrap();
        drop(client);
        let res = within(HANG, proxy, "the proxy kept a reset client's connection")
            .await
            .unwrap();
        let err = res.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
        // The proxy closed the upstream connection too.
        let seen = within(HANG, drain(server), "the upstream connection stayed open").await;
        assert!(
            matches!(seen, ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset),
            "{seen:?}"
        );
    });
}

#[test]
fn an_upstream_reset_while_the_client_stalls_closes_both_connections() {
    overlap::block_on(async {
        // The client never reads; the upstream answers until everything is full.
        let (client, server, proxy) = connect_through_proxy().await;
        assert!(fill(&server).await > 0);
        assert!(!proxy.is_finished());

        server.set_linger(Some(Duration::ZERO)).unwrap();
        drop(server);
        let res = within(HANG, proxy, "the proxy kept a reset upstream's connection")
            .await
            .unwrap();
        assert_eq!(res.unwrap_err().kind(), ErrorKind::ConnectionReset);
        let seen = within(HANG, drain(client), "the client connection stayed open").await;
        assert!(
            matches!(seen, ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset),
            "{seen:?}"
        );
    });
}

/// Once bytes went through, writes more on `from`, then resets its connection; the far
/// side, reading through the proxy, must see the reset too: a clean end of file would pass
/// the cut stream off as whole (the proxy used to close the other connection gracefully).
async fn a_reset_reaches_the_other_side(mut from: TcpStream, mut to: TcpStream) {
    // The proxy forwards by now (its connect to the upstream is done).
    from.write_all(b"ping").await.unwrap();
    let mut got = [0u8; 4];
    within(HANG, to.read_exact(&mut got), "forwarding")
        .await
        .unwrap();
    from.write_all(&[7u8; 1000]).await.unwrap();
    from.set_linger(Some(Duration::ZERO)).unwrap();
    drop(from);
    let seen = within(HANG, drain(to), "the other connection stayed open").await;
    assert_eq!(seen, ErrorKind::ConnectionReset);
}

#[test]
fn an_upstream_reset_mid_stream_reaches_the_client_as_a_reset() {
    overlap::block_on(async {
        let (client, server, proxy) = connect_through_proxy().await;
        a_reset_reaches_the_other_side(server, client).await;
        let res = within(HANG, proxy, "the proxy").await.unwrap();
        assert_eq!(res.unwrap_err().kind(), ErrorKind::ConnectionReset);
    });
}

#[test]
fn a_client_reset_mid_stream_reaches_the_upstream_as_a_reset() {
    overlap::block_on(async {
        let (client, server, proxy) = connect_through_proxy().await;
        a_reset_reaches_the_other_side(client, server).await;
        let res = within(HANG, proxy, "the proxy").await.unwrap();
        assert_eq!(res.unwrap_err().kind(), ErrorKind::ConnectionReset);
    });
}
