//! Behaviours checked by mio's listener tests (`tcp_listener.rs`, `tcp.rs`:
//! `listen_then_close`, `bind_twice_bad`) and async-io's `tcp_connect`, ported to overlap's
//! `TcpListener` and `TcpSocket` on loopback: the accept queue at its edges (two queued
//! connections on one edge, one reset before it was accepted, one full), a listener shared
//! by a dup, and what a client sees when the listener goes away. Each test names the test it
//! follows. The stream-side tests are in `port_mio_tcp.rs`.

mod support;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream};
use support::{poll_once, settle, within};

const HANG: Duration = Duration::from_secs(10);
const DATA: &[u8] = b"Hello world!";

// async-io: async.rs tcp_connect (the peer addresses match; connect fails once the
// listener is gone)
#[overlap::test]
async fn connect_after_the_listener_is_dropped_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (accepted, client) = overlap::join!(listener.accept(), TcpStream::connect(addr));
    let ((server, peer), client) = (accepted.unwrap(), client.unwrap());
    assert_eq!(peer, client.local_addr().unwrap());
    assert_eq!(server.peer_addr().unwrap(), client.local_addr().unwrap());
    assert_eq!(client.peer_addr().unwrap(), server.local_addr().unwrap());
    drop(listener);
    let err = within(HANG, TcpStream::connect(addr), "connect hung")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    // The accepted connection outlives its listener.
    (&server).write_all(DATA).await.unwrap();
    let mut buf = [0u8; DATA.len()];
    (&client).read_exact(&mut buf).await.unwrap();
}

// mio: tcp.rs listen_then_close, in the kernel's terms: a connection the listener never
// accepted is reset when the listener goes, and its waiting reader must hear of it.
#[overlap::test]
async fn a_connection_left_in_the_backlog_is_reset_when_the_listener_drops() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = TcpStream::connect(addr).await.unwrap(); // completed by the kernel
    let reader = overlap::spawn(async move {
        let mut buf = [0u8; 16];
        (&client).read(&mut buf).await
    });
    settle().await;
    drop(listener);
    let res = within(HANG, reader, "the dropped listener's reset was never seen")
        .await
        .unwrap();
    match res {
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset),
        Ok(n) => assert_eq!(n, 0, "data from nowhere"),
    }
}

// mio: tcp.rs bind_twice_bad
#[overlap::test]
async fn binding_a_bound_address_is_addr_in_use() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let err = TcpListener::bind(addr).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    // The first listener is unharmed.
    let (a, b) = overlap::join!(listener.accept(), TcpStream::connect(addr));
    a.unwrap();
    b.unwrap();
}

// mio: tcp_listener.rs set_get_ttl, get_ttl_without_previous_set; tcp_stream.rs ttl
#[overlap::test]
async fn listener_and_stream_ttl_round_trip() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let default = listener.ttl().unwrap();
    assert!(default > 0, "{default}");
    listener.set_ttl(17).unwrap();
    assert_eq!(listener.ttl().unwrap(), 17);
    assert!(listener.take_error().unwrap().is_none());
    let addr: SocketAddr = listener.local_addr().unwrap();
    let client = TcpStream::connect(addr).await.unwrap();
    let (server, _) = listener.accept().await.unwrap();
    assert_eq!(
        server.ttl().unwrap(),
        17,
        "an accepted socket inherits the ttl"
    );
    client.set_ttl(10).unwrap();
    assert_eq!(client.ttl().unwrap(), 10);
    client.set_nodelay(true).unwrap();
    assert!(client.nodelay().unwrap());
    client.set_nodelay(false).unwrap();
    assert!(!client.nodelay().unwrap());
    assert!(client.take_error().unwrap().is_none());
}

// mio: tcp_listener.rs tcp_listener_two_streams (one readiness edge, two queued
// connections: both must be accepted, the second without a new edge)
#[overlap::test]
async fn two_queued_connections_are_both_accepted() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let c1 = std::net::TcpStream::connect(addr).unwrap();
    let c2 = std::net::TcpStream::connect(addr).unwrap();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let (_, peer) = within(HANG, listener.accept(), "a queued connection was lost")
            .await
            .unwrap();
        seen.push(peer);
    }
    seen.sort();
    let mut want = vec![c1.local_addr().unwrap(), c2.local_addr().unwrap()];
    want.sort();
    assert_eq!(seen, want);
}

// mio: tcp_listener.rs (a connection that dies in the accept queue); the kernel still
// hands it out, and the accept must neither fail nor hang on it
#[overlap::test]
async fn a_connection_reset_before_it_is_accepted_is_accepted_and_reports_the_reset() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = TcpStream::connect(addr).await.unwrap();
    let client_addr = client.local_addr().unwrap();
    client.set_zero_linger().unwrap();
    drop(client); // a reset, to a connection nobody accepted yet
    let healthy = TcpStream::connect(addr).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..2 {
        match within(HANG, listener.accept(), "accept hung").await {
            Ok((conn, peer)) => seen.push((conn, peer)),
            Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionAborted, "{e:?}"),
        }
        if seen
            .iter()
            .any(|(_, p)| *p == healthy.local_addr().unwrap())
        {
            break;
        }
    }
    for (conn, peer) in &seen {
        let mut buf = [0u8; 4];
        if *peer == client_addr {
            let res = within(HANG, (&*conn).read(&mut buf), "read of a reset connection").await;
            match res {
                Ok(n) => assert_eq!(n, 0),
                Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e:?}"),
            }
        } else {
            assert_eq!(*peer, healthy.local_addr().unwrap());
            (&healthy).write_all(b"live").await.unwrap();
            within(HANG, (&*conn).read_exact(&mut buf), "the healthy one")
                .await
                .unwrap();
            assert_eq!(&buf, b"live");
        }
    }
    assert!(seen
        .iter()
        .any(|(_, p)| *p == healthy.local_addr().unwrap()));
}

// async-io: async.rs tcp_connect (a listener that goes away), while a connect waits on its
// full accept queue: the kernel drops the SYNs, and the retransmitted one after the drop
// is refused, which must end the wait
#[overlap::test]
async fn a_connect_waiting_on_a_full_accept_queue_fails_once_the_listener_drops() {
    let socket = overlap::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    let pending = loop {
        let mut connect = Box::pin(TcpStream::connect(addr));
        match poll_once(connect.as_mut()).await {
            std::task::Poll::Ready(conn) => queued.push(conn.unwrap()),
            std::task::Poll::Pending => {
                // Give the handshake time: a connect only in flight completes meanwhile,
                // one whose SYN the full queue dropped waits for the retransmit (a second).
                overlap::time::sleep(Duration::from_millis(50)).await;
                match poll_once(connect.as_mut()).await {
                    std::task::Poll::Ready(conn) => queued.push(conn.unwrap()),
                    std::task::Poll::Pending => break connect,
                }
            }
        }
        assert!(queued.len() < 1000, "the accept queue never filled");
    };
    drop(listener);
    let err = within(HANG, pending, "a connect to a gone listener waited on")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err:?}");
}

// mio: tcp_listener.rs try_clone_same_poll (a listener and its dup on one loop: both see
// the connection, one accepts it, the other's accept waits for the next)
#[overlap::test]
async fn a_listener_and_its_dup_on_one_runtime_share_the_queue() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let std_listener = listener.into_std().unwrap();
    let first = TcpListener::from_std(std_listener.try_clone().unwrap()).unwrap();
    let second = TcpListener::from_std(std_listener).unwrap();
    assert_eq!(second.local_addr().unwrap(), addr);
    let client = TcpStream::connect(addr).await.unwrap();
    let (conn, peer) = within(HANG, first.accept(), "the first listener")
        .await
        .unwrap();
    assert_eq!(peer, client.local_addr().unwrap());
    assert_eq!(conn.local_addr().unwrap(), addr);
    // The queue is empty now: the dup's accept waits, then takes the next connection.
    let mut accept = pin!(second.accept());
    assert!(
        poll_once(accept.as_mut()).await.is_pending(),
        "accepted a ghost"
    );
    let next = TcpStream::connect(addr).await.unwrap();
    let (_, peer) = within(HANG, accept, "the dup missed the next connection")
        .await
        .unwrap();
    assert_eq!(peer, next.local_addr().unwrap());
    assert!(first.take_error().unwrap().is_none() && second.take_error().unwrap().is_none());
}
