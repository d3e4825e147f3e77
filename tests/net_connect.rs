//! Non-blocking connect: refused ports, several addresses, host names, cancellation.

use std::future::Future;
use std::net::SocketAddr;

use overlap::net::{TcpListener, TcpSocket, TcpStream};

/// A loopback port with nothing listening on it (bound, then closed).
async fn dead_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

#[test]
fn refused_port_gives_connection_refused() {
    overlap::block_on(async {
        let addr = dead_port().await;
        let before = overlap::metrics().registered_fds;
        let err = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
        assert_eq!(overlap::metrics().registered_fds, before);

        let err = TcpSocket::new_v4()
            .unwrap()
            .connect(addr)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    });
}

#[test]
fn each_address_is_tried_in_turn() {
    overlap::block_on(async {
        let dead = dead_port().await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let live = listener.local_addr().unwrap();
        let addrs = [dead, live];
        let conn = TcpStream::connect(&addrs[..]).await.unwrap();
        assert_eq!(conn.peer_addr().unwrap(), live);

        let err = TcpStream::connect(&[dead, dead][..]).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
        let none: [SocketAddr; 0] = [];
        let err = TcpStream::connect(&none[..]).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    });
}

#[test]
fn host_name_is_resolved_on_the_blocking_pool() {
    overlap::block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // "localhost" may resolve to ::1 first (refused: nothing listens there), then
        // 127.0.0.1, which works.
        let conn = TcpStream::connect(("localhost", port)).await.unwrap();
        assert_eq!(conn.peer_addr().unwrap().port(), port);
        let conn = TcpStream::connect(format!("localhost:{port}"))
            .await
            .unwrap();
        assert_eq!(conn.peer_addr().unwrap().port(), port);
        let (accepted, _) = listener.accept().await.unwrap();
        assert_eq!(accepted.local_addr().unwrap().port(), port);
    });
}

#[test]
fn lookup_host_parses_literals_and_resolves_names_off_the_loop() {
    overlap::block_on(async {
        let addrs: Vec<SocketAddr> = overlap::net::lookup_host("127.0.0.1:9")
            .await
            .unwrap()
            .collect();
        assert_eq!(addrs, ["127.0.0.1:9".parse::<SocketAddr>().unwrap()]);
        let addrs: Vec<SocketAddr> = overlap::net::lookup_host(("localhost", 4242))
            .await
            .unwrap()
            .collect();
        assert!(!addrs.is_empty(), "localhost resolves");
        for a in addrs {
            assert!(a.ip().is_loopback() && a.port() == 4242, "{a}");
        }
        let err = overlap::net::lookup_host("no port here")
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
    });
}

#[test]
fn ipv6_loopback_when_available() {
    overlap::block_on(async {
        let listener = match TcpListener::bind("[::1]:0").await {
            Ok(l) => l,
            // No IPv6 on this host (some containers): nothing to test.
            Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => return,
            Err(e) => panic!("bind [::1]:0: {e}"),
        };
        let addr = listener.local_addr().unwrap();
        assert!(addr.is_ipv6());
        let conn = TcpStream::connect(addr).await.unwrap();
        let (accepted, peer) = listener.accept().await.unwrap();
        assert_eq!(peer, conn.local_addr().unwrap());
        assert_eq!(accepted.peer_addr().unwrap(), peer);
        let conn6 = TcpSocket::new_v6().unwrap().connect(addr).await.unwrap();
        assert_eq!(conn6.peer_addr().unwrap(), addr);
    });
}

/// A listener whose backlog is full (a backlog of 1 holds two connections waiting for
/// `accept`) does not refuse the next connect: the kernel drops its SYN and the connect
/// waits for the retransmit, a second later, as `TcpSocket::listen`'s docs say; a connect
/// storm under a short timeout sees timeouts, not `ConnectionRefused`.
#[test]
fn a_connect_past_a_full_backlog_waits_instead_of_being_refused() {
    overlap::block_on(async {
        let sock = TcpSocket::new_v4().unwrap();
        sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = sock.listen(1).unwrap();
        let addr = listener.local_addr().unwrap();
        let _queued = [
            TcpStream::connect(addr).await.unwrap(),
            TcpStream::connect(addr).await.unwrap(),
        ];
        let mut late = Box::pin(TcpStream::connect(addr));
        for _ in 0..8 {
            let polled = std::future::poll_fn(|cx| {
                std::task::Poll::Ready(late.as_mut().poll(cx).map(|r| r.map(drop)))
            })
            .await;
            assert!(polled.is_pending(), "{polled:?}");
            overlap::yield_now().await; // the loop looks at its fds
        }
    });
}
