//! TCP data transfer: exact bytes both ways, half-close, split halves, many connections,
//! peer reset during a large write.

mod support;

use std::net::Shutdown;
use std::time::Duration;

use futures_util::future::join_all;
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream};
use support::{echo_server, pass_through, pattern_seeded, raise_nofile};

#[test]
fn echo_one_mib_exact_bytes() {
    overlap::block_on(async {
        let addr = echo_server().await;
        let stream = TcpStream::connect(addr).await.unwrap();
        let data = pattern_seeded(1 << 20, 1);
        let (mut rd, wr) = stream.into_split();
        pass_through(wr, &mut rd, &data, "the echo").await;
    });
}

#[test]
fn full_duplex_one_mib_each_way() {
    overlap::block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let to_server = pattern_seeded(1 << 20, 2);
        let to_client = pattern_seeded(1 << 20, 3);

        let (s_in, s_out) = (to_server.clone(), to_client.clone());
        let server = overlap::spawn(async move {
            let (conn, _) = listener.accept().await.unwrap();
            let (mut rd, mut wr) = conn.into_split();
            let w = overlap::spawn(async move {
                wr.write_all(&s_out).await.unwrap();
            });
            let mut got = Vec::new();
            rd.read_to_end(&mut got).await.unwrap();
            w.await.unwrap();
            assert!(got == s_in, "server received different bytes");
        });

        let conn = TcpStream::connect(addr).await.unwrap();
        let (mut rd, mut wr) = conn.into_split();
        let w = overlap::spawn(async move {
            wr.write_all(&to_server).await.unwrap();
            // Dropping the owned write half shuts down the write side.
        });
        let mut got = vec![0u8; to_client.len()];
        rd.read_exact(&mut got).await.unwrap();
        assert!(got == to_client, "client received different bytes");
        w.await.unwrap();
        server.await.unwrap();
    });
}

#[test]
fn half_close_both_ways() {
    overlap::block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = overlap::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut req = Vec::new();
            conn.read_to_end(&mut req).await.unwrap();
            assert_eq!(req, b"request");
            // EOF again, and again: EPOLLRDHUP is sticky, no wait.
            let mut buf = [0u8; 8];
            assert_eq!(conn.read(&mut buf).await.unwrap(), 0);
            assert_eq!(conn.read(&mut buf).await.unwrap(), 0);
            // The peer shut its write side; ours still works.
            conn.write_all(b"response").await.unwrap();
            conn.shutdown(Shutdown::Write).unwrap();
            // Wait for the client's full close.
            assert_eq!(conn.read(&mut buf).await.unwrap(), 0);
        });

        let mut conn = TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"request").await.unwrap();
        conn.close().await.unwrap(); // poll_close = shutdown(Write)
        let mut resp = Vec::new();
        conn.read_to_end(&mut resp).await.unwrap();
        assert_eq!(resp, b"response");
        let mut buf = [0u8; 8];
        assert_eq!(conn.read(&mut buf).await.unwrap(), 0);
        drop(conn);
        server.await.unwrap();
    });
}

#[test]
fn split_halves_from_two_tasks() {
    overlap::block_on(async {
        let addr = echo_server().await;
        let (mut rd, mut wr) = TcpStream::connect(addr).await.unwrap().into_split();
        let writer = overlap::spawn(async move {
            for i in 0..100u32 {
                wr.write_all(&i.to_be_bytes()).await.unwrap();
                overlap::yield_now().await;
            }
            wr
        });
        let reader = overlap::spawn(async move {
            for i in 0..100u32 {
                let mut b = [0u8; 4];
                rd.read_exact(&mut b).await.unwrap();
                assert_eq!(u32::from_be_bytes(b), i);
            }
            rd
        });
        let wr = writer.await.unwrap();
        let rd = reader.await.unwrap();
        let stream = rd.reunite(wr).unwrap();
        assert_eq!(stream.peer_addr().unwrap(), addr);

        // Borrowed halves in one task. (With `AsyncReadExt` in scope, `stream.split()` would
        // pick futures' by-value `split`, so name ours.)
        let mut stream = stream;
        let (mut r, mut w) = TcpStream::split(&mut stream);
        let (a, b) = futures_util::join!(w.write_all(b"borrowed"), async {
            let mut buf = [0u8; 8];
            r.read_exact(&mut buf).await.map(|_| buf)
        });
        a.unwrap();
        assert_eq!(&b.unwrap(), b"borrowed");
    });
}

#[test]
fn reunite_rejects_halves_of_different_streams() {
    overlap::block_on(async {
        let addr = echo_server().await;
        let (r1, _w1) = TcpStream::connect(addr).await.unwrap().into_split();
        let (_r2, w2) = TcpStream::connect(addr).await.unwrap().into_split();
        assert!(r1.reunite(w2).is_err());
    });
}

#[test]
fn thousand_concurrent_connections_echo() {
    let limit = raise_nofile();
    assert!(limit >= 2100, "RLIMIT_NOFILE hard limit too low: {limit}");
    overlap::block_on(async {
        let addr = echo_server().await;
        let clients = (0..1000u32).map(|i| {
            overlap::spawn(async move {
                let mut conn = TcpStream::connect(addr).await.unwrap();
                let msg = pattern_seeded(64 + (i as usize % 200), i);
                for _ in 0..3 {
                    conn.write_all(&msg).await.unwrap();
                    let mut back = vec![0u8; msg.len()];
                    conn.read_exact(&mut back).await.unwrap();
                    assert_eq!(back, msg);
                }
            })
        });
        for res in join_all(clients).await {
            res.unwrap();
        }
    });
}

#[test]
fn peer_reset_during_large_write_is_an_error() {
    overlap::block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = overlap::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 64 * 1024];
            conn.read_exact(&mut buf).await.unwrap();
            // Linger 0: close sends RST instead of FIN.
            conn.set_linger(Some(Duration::ZERO)).unwrap();
            assert_eq!(conn.linger().unwrap(), Some(Duration::ZERO));
        });
        let mut conn = TcpStream::connect(addr).await.unwrap();
        let big = vec![7u8; 64 << 20];
        let err = conn.write_all(&big).await.unwrap_err();
        assert!(
            matches!(
                err.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            ),
            "unexpected error: {err:?}"
        );
        server.await.unwrap();
        // Still alive (no SIGPIPE), and the socket keeps failing rather than hanging.
        assert!(conn.write_all(b"more").await.is_err());
    });
}

#[test]
fn peek_does_not_consume() {
    overlap::block_on(async {
        let addr = echo_server().await;
        let mut conn = TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"peekaboo").await.unwrap();
        let mut buf = [0u8; 8];
        let mut n = 0;
        while n < 8 {
            n = conn.peek(&mut buf).await.unwrap();
        }
        assert_eq!(&buf, b"peekaboo");
        let mut again = [0u8; 8];
        conn.read_exact(&mut again).await.unwrap();
        assert_eq!(&again, b"peekaboo");
    });
}

#[test]
fn vectored_write_sends_all_slices_in_order() {
    overlap::block_on(async {
        let addr = echo_server().await;
        let mut conn = TcpStream::connect(addr).await.unwrap();
        let bufs = [
            std::io::IoSlice::new(b"one "),
            std::io::IoSlice::new(b"two "),
            std::io::IoSlice::new(b"three"),
        ];
        let n = conn.write_vectored(&bufs).await.unwrap();
        assert_eq!(n, 13, "a loopback socket takes 13 bytes at once");
        let mut back = [0u8; 13];
        conn.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"one two three");
        // More empty slices than one sendmsg takes (1024), then data: not a write of 0.
        let mut many = vec![std::io::IoSlice::new(b""); 2000];
        many.push(std::io::IoSlice::new(b"late"));
        let n = conn.write_vectored(&many).await.unwrap();
        assert_eq!(n, 4);
        let mut back = [0u8; 4];
        conn.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"late");
    });
}

#[test]
fn options_round_trip() {
    overlap::block_on(async {
        let addr = echo_server().await;
        let conn = TcpStream::connect(addr).await.unwrap();
        conn.set_nodelay(true).unwrap();
        assert!(conn.nodelay().unwrap());
        conn.set_keepalive(true).unwrap();
        assert!(conn.keepalive().unwrap());
        conn.set_ttl(42).unwrap();
        assert_eq!(conn.ttl().unwrap(), 42);
        assert_eq!(conn.peer_addr().unwrap(), addr);
        assert_eq!(conn.local_addr().unwrap().ip(), addr.ip());
        assert!(conn.take_error().unwrap().is_none());

        // Round trip through std and back.
        let std_stream = conn.into_std().unwrap();
        let conn = TcpStream::from_std(std_stream).unwrap();
        assert_eq!(conn.peer_addr().unwrap(), addr);
    });
}

#[test]
fn incoming_yields_each_connection() {
    use futures_util::StreamExt;
    overlap::block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let clients = overlap::spawn(async move {
            let mut v = Vec::new();
            for _ in 0..3 {
                v.push(TcpStream::connect(addr).await.unwrap());
            }
            v
        });
        let mut incoming = listener.incoming();
        let mut peers = Vec::new();
        for _ in 0..3 {
            let s = incoming.next().await.unwrap().unwrap();
            peers.push(s.peer_addr().unwrap());
        }
        let clients = clients.await.unwrap();
        let mut locals: Vec<_> = clients.iter().map(|c| c.local_addr().unwrap()).collect();
        peers.sort();
        locals.sort();
        assert_eq!(peers, locals);
    });
}
