//! `examples/tcp_proxy.rs` on loopback: a client talks to the echo example through the
//! splice proxy, both directions and the half-close pass through, and many connections at
//! once keep their bytes apart.

mod support;
#[allow(dead_code)]
#[path = "../examples/tcp_echo.rs"]
mod tcp_echo;
#[allow(dead_code)]
#[path = "../examples/tcp_proxy.rs"]
mod tcp_proxy;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::future::join_all;
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream};

use support::{pattern_seeded, within};

/// Starts the echo server and the proxy in front of it; returns the proxy's address.
async fn echo_behind_proxy() -> SocketAddr {
    let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = echo.local_addr().unwrap();
    overlap::spawn(tcp_echo::serve(echo));
    let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = front.local_addr().unwrap();
    overlap::spawn(tcp_proxy::serve(front, upstream));
    addr
}

/// Sends `data` through the proxy, closes the write side, and reads the echo to the end.
async fn round_trip(addr: SocketAddr, data: &[u8]) -> Vec<u8> {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = TcpStream::split(&mut conn);
    let (sent, got) = futures_util::join!(
        async {
            wr.write_all(data).await?;
            // The half-close must reach the echo server through the proxy, and its own
            // close must come back: otherwise read_to_end never ends.
            wr.close().await
        },
        async {
            let mut got = Vec::with_capacity(data.len());
            rd.read_to_end(&mut got).await.map(|_| got)
        }
    );
    sent.unwrap();
    got.unwrap()
}

#[test]
fn four_mib_echo_through_the_splice_proxy() {
    overlap::block_on(async {
        let addr = echo_behind_proxy().await;
        let data = pattern_seeded(4 << 20, 11);
        let got = within(
            Duration::from_secs(30),
            round_trip(addr, &data),
            "the proxy hung",
        )
        .await;
        assert_eq!(got.len(), data.len());
        assert!(got == data, "bytes changed through the proxy");
    });
}

#[test]
fn fifty_connections_at_once_keep_their_bytes_apart() {
    overlap::block_on(async {
        let addr = echo_behind_proxy().await;
        let runs = (0..50u32).map(|i| async move {
            let data = pattern_seeded(64 * 1024 + i as usize, i);
            (round_trip(addr, &data).await, data)
        });
        let results = within(Duration::from_secs(30), join_all(runs), "the proxy hung").await;
        for (got, data) in results {
            assert!(got == data);
        }
    });
}

#[test]
fn a_dead_upstream_is_reported_and_the_client_is_closed() {
    overlap::block_on(async {
        // A port with no listener: bind one, note the address, close it.
        let upstream = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = front.local_addr().unwrap();
        let server = overlap::spawn(async move {
            let (client, _) = front.accept().await.unwrap();
            tcp_proxy::proxy(client, upstream).await
        });
        let mut conn = TcpStream::connect(addr).await.unwrap();
        let err = server.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
        // The proxy dropped the client connection: it reads end of file.
        let mut rest = Vec::new();
        conn.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    });
}
