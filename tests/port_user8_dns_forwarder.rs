//! A user's caching DNS forwarder (a tiny dnsmasq), sketched as one would for tokio and then
//! written for overlap (`port_user8_dns_forwarder/forwarder.rs`), against fake upstreams on
//! other loopback addresses (`upstream.rs`: 127.0.0.2, 127.0.0.3, ::1), with a hand-written
//! parser for the header, the one question and the answers' TTLs (`wire.rs`).
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! let udp = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
//! let tcp = TcpListener::bind(("127.0.0.1", udp.local_addr()?.port())).await?;
//! let mut buf = [0u8; 513]; // one byte past the EDNS-less limit tells an oversized query
//! loop {
//!     let (n, client) = udp.recv_from(&mut buf).await?;
//!     let query = match wire::parse(&buf[..n], false) {
//!         Ok(q) => q,
//!         Err(Short) => continue,
//!         Err(_) => { udp.send_to(&wire::formerr(&buf[..n]), client).await?; continue }
//!     };
//!     let Some(slot) = fwd.slot(client) else { /* REFUSED */ continue };
//!     tokio::spawn(async move {
//!         let mut reply = fwd.answer(&query).await; // cache, in-flight map, upstreams
//!         if reply.len() > 512 { reply = wire::truncated(&reply, query.question_end) }
//!         udp.send_to(&reply, client).await
//!     });
//! }
//! // one try upstream:
//! let sock = UdpSocket::bind("127.0.0.1:0").await?;
//! sock.connect(upstream).await?;            // ICMP unreachable → ConnectionRefused
//! sock.send(&wire::query(id, &q)).await?;
//! loop {
//!     let (n, from) = timeout_at(deadline, sock.recv_from(&mut buf)).await??;
//!     if from != upstream || id_of(&buf[..n]) != id { continue } // spoofed or late
//!     if tc_bit(&buf[..n]) { /* TcpStream::connect(upstream), 2-byte length frames */ }
//! }
//! // in flight: HashMap<Question, Vec<oneshot::Sender<Option<Arc<Vec<u8>>>>>> behind a Mutex
//! // TCP: per connection, timeout(t, read_exact(&mut len)), timeout(t, read_exact(&mut msg))
//! ```
//!
//! The tests check: answers byte-exact under each client's id (IPv4 and IPv6); a big answer
//! TC over UDP and whole over TCP, the upstream's own TC answered by a retry over TCP;
//! replies with the wrong id or from the wrong address ignored, over connected and
//! unconnected sockets; a dead upstream (ICMP unreachable, or silence) passed over for the
//! next; one upstream query for a cached name until its TTL runs out on a paused clock;
//! two clients asking at once answered from one upstream query; malformed queries dropped
//! or answered FORMERR; a client gone before its answer disturbing no one; a client past
//! its in-flight limit REFUSED; a TCP client stalling after its length prefix timed out
//! while another is served; and no fd or task left.
//!
//! What the port changed, against tokio: `Arc`/`Mutex` became `Rc`/`RefCell` (the in-flight
//! map is read and written only between awaits), `tokio::spawn` a `JoinSet` per server loop
//! so a dropped server aborts every query and connection with it. The rest is tokio's line
//! for line, and overlap behaved as tokio does; the paused clock jumped only when every
//! task waited, never ahead of a loopback answer already sent. Two things the docs did not
//! say, and now do: `UdpSocket::connect` filters what arrives after it only, so an answer
//! spoofed between the query socket's bind and its connect still comes out of `recv` (the
//! forwarder checks the source and id of every answer, connected or not); and `recv_from`
//! cuts a datagram longer than its buffer to `buf.len()` bytes, as one that fits exactly,
//! so answers are read into one byte more than the largest taken. Probing `UnixDatagram`
//! the same way found a send to a socket connected elsewhere failing with a bare
//! "Operation not permitted", now named (see `net_datagram_faults.rs`).

mod support;

#[path = "port_user8_dns_forwarder/forwarder.rs"]
mod forwarder;
#[path = "port_user8_dns_forwarder/upstream.rs"]
mod upstream;
#[path = "port_user8_dns_forwarder/wire.rs"]
mod wire;

use std::net::SocketAddr;
use std::time::Duration;

use forwarder::{read_frame, write_frame, Config, Server};
use overlap::net::{TcpStream, UdpSocket};
use overlap::time::{self, Instant};
use support::{open_fds, run_in_child, settle, within};
use upstream::{expected, Upstream};
use wire::{Malformed, Question};

const HANG: Duration = Duration::from_secs(5);

async fn forwarder(ip: &str, upstreams: &[&Upstream], config: Config) -> Server {
    let config = Config {
        upstreams: upstreams.iter().map(|u| u.addr).collect(),
        ..config
    };
    Server::start(ip, config).await
}

/// A client socket on `server`'s family.
async fn client(server: SocketAddr) -> UdpSocket {
    let local = if server.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    };
    UdpSocket::bind(local).await.unwrap()
}

async fn ask_udp(sock: &UdpSocket, server: SocketAddr, msg: &[u8]) -> Vec<u8> {
    sock.send_to(msg, server).await.unwrap();
    recv(sock).await
}

async fn recv(sock: &UdpSocket) -> Vec<u8> {
    let mut buf = [0u8; 4096];
    let (n, _) = within(HANG, sock.recv_from(&mut buf), "an answer over UDP")
        .await
        .unwrap();
    buf[..n].to_vec()
}

async fn ask_tcp(server: SocketAddr, msg: &[u8]) -> Vec<u8> {
    let mut conn = TcpStream::connect(server).await.unwrap();
    write_frame(&mut conn, msg).await.unwrap();
    within(HANG, read_frame(&mut conn), "an answer over TCP")
        .await
        .unwrap()
}

fn flags(msg: &[u8]) -> u16 {
    u16::from_be_bytes([msg[2], msg[3]])
}

#[overlap::test]
async fn answers_are_the_upstreams_bytes_under_each_clients_id() {
    for (ip, up_ip) in [("127.0.0.1", "127.0.0.2"), ("::1", "::1")] {
        let up = Upstream::start(up_ip, 2).await;
        let server = forwarder(ip, &[&up], Config::default()).await;
        let q = Question::a("www.example.org");
        let sock = client(server.addr).await;
        for id in [0xBEEF, 0x0001] {
            let reply = ask_udp(&sock, server.addr, &wire::query(id, &q)).await;
            assert_eq!(reply, expected(2, id, &q), "over UDP from {ip}");
            let reply = ask_tcp(server.addr, &wire::query(id ^ 0xFF, &q)).await;
            assert_eq!(reply, expected(2, id ^ 0xFF, &q), "over TCP from {ip}");
        }
        // The first asked upstream; the rest came from the cache.
        assert_eq!((up.udp_queries.get(), up.tcp_queries.get()), (1, 0));
        assert_eq!(server.fwd.stats.cache_hits.get(), 3);
        // NXDOMAIN has no record to take a TTL from: asked each time.
        let nx = Question::a("nx.example.org");
        for id in [7, 8] {
            let reply = ask_udp(&sock, server.addr, &wire::query(id, &nx)).await;
            assert_eq!(reply, expected(2, id, &nx));
        }
        assert_eq!(up.udp_queries.get(), 3);
    }
}

#[overlap::test]
async fn a_big_answer_is_truncated_over_udp_and_whole_over_tcp() {
    let up = Upstream::start("127.0.0.2", 2).await;
    let server = forwarder("127.0.0.1", &[&up], Config::default()).await;
    let q = Question::a("big.example.org");
    let full = expected(2, 0x1111, &q);
    assert!(full.len() > wire::UDP_LIMIT);
    let sock = client(server.addr).await;
    let query = wire::query(0x1111, &q);
    let cut = ask_udp(&sock, server.addr, &query).await;
    // The upstream's UDP answer was cut too (TC): the forwarder asked again over TCP.
    assert_eq!((up.udp_queries.get(), up.tcp_queries.get()), (1, 1));
    assert_eq!(server.fwd.stats.tcp_retries.get(), 1);
    let q_end = wire::parse(&full, true).unwrap().question_end;
    assert_eq!(cut, wire::truncated(&full, q_end));
    assert_ne!(flags(&cut) & wire::TC, 0);
    // The client asks again over TCP, as TC tells it to, and gets it whole (from the cache).
    assert_eq!(ask_tcp(server.addr, &query).await, full);
    assert_eq!((up.udp_queries.get(), up.tcp_queries.get()), (1, 1));

    // A small answer the upstream cut anyway: the forwarder's retry over TCP gets it whole,
    // and it fits the client's UDP answer.
    let q = Question::a("tc.example.org");
    let reply = ask_udp(&sock, server.addr, &wire::query(0x2222, &q)).await;
    assert_eq!(reply, expected(2, 0x2222, &q));
    assert_eq!((up.udp_queries.get(), up.tcp_queries.get()), (2, 2));
}

#[overlap::test]
async fn replies_with_the_wrong_id_or_from_the_wrong_address_are_ignored() {
    for connected in [true, false] {
        let up = Upstream::start("127.0.0.2", 2).await;
        up.spoof.set(true);
        let config = Config {
            connected,
            ..Config::default()
        };
        let server = forwarder("127.0.0.1", &[&up], config).await;
        let q = Question::a("spoofed.example.org");
        let sock = client(server.addr).await;
        let reply = ask_udp(&sock, server.addr, &wire::query(0x3333, &q)).await;
        assert_eq!(reply, expected(2, 0x3333, &q), "connected: {connected}");
        // A connected socket never sees the other address's datagram: the kernel drops it.
        let ignored = if connected { 1 } else { 2 };
        assert_eq!(server.fwd.stats.ignored_replies.get(), ignored);
    }
}

#[overlap::test(start_paused = true)]
async fn a_dead_or_silent_upstream_is_passed_over_for_the_next() {
    for connected in [true, false] {
        // Connected, the try at the dead port ends on the kernel's ICMP error, which loopback
        // may hand over a moment after the send (from ksoftirqd, under load): on a paused
        // clock the idle runtime would jump to the try's deadline first, and count a
        // timeout (seen once in CI). So that variant runs on the real clock, briefly.
        if connected {
            time::resume();
        } else {
            time::pause();
        }
        // A port whose socket is gone (ICMP port unreachable), one that never answers; on
        // an address no other test here binds, so that no parallel test's socket takes it.
        let dead = UdpSocket::bind("127.0.0.66:0").await.unwrap();
        let dead_addr = dead.local_addr().unwrap();
        drop(dead);
        let silent = UdpSocket::bind("127.0.0.3:0").await.unwrap();
        let good = Upstream::start("127.0.0.2", 2).await;
        let try_timeout = Duration::from_millis(if connected { 300 } else { 2000 });
        let config = Config {
            upstreams: vec![dead_addr, silent.local_addr().unwrap(), good.addr],
            try_timeout,
            connected,
            ..Config::default()
        };
        let server = Server::start("127.0.0.1", config).await;
        let q = Question::a("www.example.org");
        let sock = client(server.addr).await;
        let start = Instant::now();
        let reply = ask_udp(&sock, server.addr, &wire::query(0x4444, &q)).await;
        assert_eq!(reply, expected(2, 0x4444, &q), "connected: {connected}");
        let s = &server.fwd.stats;
        // Connected, the dead port's ICMP error ends its try at once; unconnected, the
        // kernel does not tell, and it costs a timeout as silence does.
        let (refused, timeouts) = if connected { (1, 1) } else { (0, 2) };
        assert_eq!(
            (s.refused_by_upstream.get(), s.try_timeouts.get()),
            (refused, timeouts)
        );
        if connected {
            assert!(
                start.elapsed() >= try_timeout,
                "the silent upstream's try was cut"
            );
        } else {
            assert_eq!(start.elapsed(), try_timeout * timeouts as u32);
        }
        // The silent upstream got its query; nobody answered it.
        let mut buf = [0u8; 512];
        let (n, _) = silent.try_recv_from(&mut buf).unwrap();
        assert_eq!(wire::parse(&buf[..n], false).unwrap().question, q);
    }
}

#[overlap::test(start_paused = true)]
async fn a_cached_answer_is_served_until_its_ttl_and_asked_again_after() {
    let up = Upstream::start("127.0.0.2", 2).await;
    let server = forwarder("127.0.0.1", &[&up], Config::default()).await;
    let q = Question::a("ttl.example.org");
    let sock = client(server.addr).await;
    let ask = |id| {
        let msg = wire::query(id, &q);
        let sock = &sock;
        async move { ask_udp(sock, server.addr, &msg).await }
    };
    assert_eq!(ask(1).await, expected(2, 1, &q));
    time::advance(Duration::from_secs(upstream::TTL as u64 - 1)).await;
    assert_eq!(ask(2).await, expected(2, 2, &q));
    assert_eq!(up.udp_queries.get(), 1, "a hit within the TTL");
    time::advance(Duration::from_secs(1)).await;
    assert_eq!(ask(3).await, expected(2, 3, &q));
    assert_eq!(up.udp_queries.get(), 2, "asked again once the TTL ran out");
    assert_eq!(server.fwd.stats.cache_hits.get(), 1);
}

#[overlap::test(start_paused = true)]
async fn two_clients_asking_at_once_share_one_upstream_query() {
    let up = Upstream::start("127.0.0.2", 2).await;
    let server = forwarder("127.0.0.1", &[&up], Config::default()).await;
    let q = Question::a("slow.example.org");
    let (a, b) = (client(server.addr).await, client(server.addr).await);
    a.send_to(&wire::query(0xAAAA, &q), server.addr)
        .await
        .unwrap();
    b.send_to(&wire::query(0xBBBB, &q), server.addr)
        .await
        .unwrap();
    let (ra, rb) = overlap::join!(recv(&a), recv(&b));
    assert_eq!(ra, expected(2, 0xAAAA, &q));
    assert_eq!(rb, expected(2, 0xBBBB, &q));
    assert_eq!(up.udp_queries.get(), 1);
    assert_eq!(server.fwd.stats.deduped.get(), 1);
}

#[overlap::test(start_paused = true)]
async fn a_client_gone_before_its_answer_disturbs_no_one() {
    for ip in ["127.0.0.1", "::1"] {
        let up = Upstream::start(ip, 2).await;
        let server = forwarder(ip, &[&up], Config::default()).await;
        let q = Question::a("slow.example.org");
        let gone = client(server.addr).await;
        gone.send_to(&wire::query(1, &q), server.addr)
            .await
            .unwrap();
        drop(gone);
        // Its answer goes to a closed port (an ICMP error the unconnected server socket is
        // not told of); the next client is served as before.
        time::sleep(upstream::SLOW * 2).await;
        let sock = client(server.addr).await;
        let reply = ask_udp(&sock, server.addr, &wire::query(2, &q)).await;
        assert_eq!(reply, expected(2, 2, &q), "on {ip}");
        assert_eq!(server.fwd.stats.cache_hits.get(), 1);
    }
}

#[overlap::test(start_paused = true)]
async fn a_client_past_its_in_flight_limit_is_refused() {
    let up = Upstream::start("127.0.0.2", 2).await;
    let config = Config {
        per_client: 2,
        ..Config::default()
    };
    let server = forwarder("127.0.0.1", &[&up], config).await;
    let sock = client(server.addr).await;
    let names = ["slow.a.org", "slow.b.org", "slow.c.org"];
    for (id, name) in names.iter().enumerate() {
        let msg = wire::query(id as u16, &Question::a(name));
        sock.send_to(&msg, server.addr).await.unwrap();
    }
    // The third is refused at once, the first two answered after the upstream's delay.
    let third = wire::parse(&wire::query(2, &Question::a(names[2])), false).unwrap();
    assert_eq!(recv(&sock).await, wire::error(&third, wire::REFUSED));
    let mut rest = vec![recv(&sock).await, recv(&sock).await];
    rest.sort();
    let q = |i: usize| Question::a(names[i]);
    assert_eq!(rest, vec![expected(2, 0, &q(0)), expected(2, 1, &q(1))]);
    assert_eq!(server.fwd.stats.limited.get(), 1);
    // Its slots came back: another client-sized burst is served.
    let msg = wire::query(9, &q(2));
    assert_eq!(
        ask_udp(&sock, server.addr, &msg).await,
        expected(2, 9, &q(2))
    );
}

/// Malformed queries, each with what the forwarder must do: `Some(FORMERR)` or `None`
/// (dropped), and the parser's verdict.
fn malformed() -> Vec<(&'static str, Vec<u8>, Malformed)> {
    let head = |qd: u8| vec![0x12, 0x34, 0x01, 0x00, 0, qd, 0, 0, 0, 0, 0, 0];
    let with = |tail: &[u8]| [head(1), tail.to_vec()].concat();
    vec![
        ("short", vec![0x12, 0x34, 0x01], Malformed::Short),
        (
            "bad label",
            with(&[0x41, b'a', 0, 0, 1, 0, 1]),
            Malformed::BadLabel,
        ),
        (
            "label past the end",
            with(&[9, b'a', b'b']),
            Malformed::Short,
        ),
        (
            "self pointer",
            with(&[0xC0, 12, 0, 1, 0, 1]),
            Malformed::Loop,
        ),
        (
            "pointer pair",
            with(&[1, b'a', 0xC0, 16, 0xC0, 12]),
            Malformed::Loop,
        ),
        (
            "two questions",
            [head(2), vec![0, 0, 1, 0, 1]].concat(),
            Malformed::NotOneQuestion,
        ),
        ("no type", with(&[1, b'a', 0, 0]), Malformed::Short),
        (
            "a response",
            vec![
                0x12, 0x34, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1,
            ],
            Malformed::WrongDirection,
        ),
    ]
}

#[overlap::test]
async fn malformed_queries_are_dropped_or_answered_formerr() {
    let up = Upstream::start("127.0.0.2", 2).await;
    let server = forwarder("127.0.0.1", &[&up], Config::default()).await;
    let sock = client(server.addr).await;
    let q = Question::a("www.example.org");
    let mut formerr = 0;
    for (what, msg, verdict) in malformed() {
        assert_eq!(wire::parse(&msg, false).unwrap_err(), verdict, "{what}");
        sock.send_to(&msg, server.addr).await.unwrap();
        // A good query after each: its answer comes next, or the FORMERR before it.
        let good = wire::query(0x5555, &q);
        sock.send_to(&good, server.addr).await.unwrap();
        let first = recv(&sock).await;
        if matches!(verdict, Malformed::Short | Malformed::WrongDirection) {
            assert_eq!(first, expected(2, 0x5555, &q), "{what}: dropped");
            continue;
        }
        formerr += 1;
        assert_eq!(Some(first), wire::formerr(&msg), "{what}");
        assert_eq!(recv(&sock).await, expected(2, 0x5555, &q), "{what}");
        // Over TCP the same, on a connection that goes on serving.
        let mut conn = TcpStream::connect(server.addr).await.unwrap();
        write_frame(&mut conn, &msg).await.unwrap();
        write_frame(&mut conn, &good).await.unwrap();
        let got = within(HANG, read_frame(&mut conn), "FORMERR over TCP").await;
        assert_eq!(got.ok(), wire::formerr(&msg), "{what} over TCP");
        let got = within(HANG, read_frame(&mut conn), "an answer over TCP").await;
        assert_eq!(got.unwrap(), expected(2, 0x5555, &q), "{what} over TCP");
    }
    // A query past 512 bytes over UDP is dropped too.
    sock.send_to(&[0u8; 600], server.addr).await.unwrap();
    let good = wire::query(0x6666, &q);
    assert_eq!(
        ask_udp(&sock, server.addr, &good).await,
        expected(2, 0x6666, &q)
    );
    assert_eq!(server.fwd.stats.formerr.get(), 2 * formerr);
    assert_eq!(server.fwd.stats.dropped.get(), 5);
}

#[overlap::test(start_paused = true)]
async fn a_tcp_client_stalling_after_its_length_is_cut_and_others_are_served() {
    let up = Upstream::start("127.0.0.2", 2).await;
    let tcp_timeout = Duration::from_secs(5);
    let config = Config {
        tcp_timeout,
        ..Config::default()
    };
    let server = forwarder("127.0.0.1", &[&up], config).await;
    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    // A length of 40, then nothing.
    overlap::io::AsyncWriteExt::write_all(&mut stalled, &[0, 40, 1, 2])
        .await
        .unwrap();
    let q = Question::a("www.example.org");
    let reply = ask_tcp(server.addr, &wire::query(0x7777, &q)).await;
    assert_eq!(reply, expected(2, 0x7777, &q));
    let start = Instant::now();
    let mut buf = [0u8; 8];
    let n = within(
        tcp_timeout * 2,
        overlap::io::AsyncReadExt::read(&mut stalled, &mut buf),
        "the stalled client's end",
    )
    .await
    .unwrap();
    assert_eq!(n, 0, "closed with no answer");
    assert_eq!(start.elapsed(), tcp_timeout);
    assert_eq!(server.fwd.stats.tcp_timeouts.get(), 1);

    // A client that shuts its write side after two queries gets both answers, then the end.
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    write_frame(&mut conn, &wire::query(1, &q)).await.unwrap();
    write_frame(&mut conn, &wire::query(2, &q)).await.unwrap();
    conn.shutdown(std::net::Shutdown::Write).unwrap();
    for id in [1, 2] {
        let got = within(HANG, read_frame(&mut conn), "an answer").await;
        assert_eq!(got.unwrap(), expected(2, id, &q));
    }
    let end = within(HANG, read_frame(&mut conn), "the end").await;
    assert_eq!(end.unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
    assert_eq!(server.fwd.stats.tcp_timeouts.get(), 1);
}

#[test]
fn a_dropped_forwarder_leaves_no_fd_or_task() {
    run_in_child("a_dropped_forwarder_leaves_no_fd_or_task", || {
        overlap::block_on(async {
            let fds = open_fds();
            let tasks = overlap::metrics().tasks_alive;
            let up = Upstream::start("127.0.0.2", 2).await;
            let server = forwarder("127.0.0.1", &[&up], Config::default()).await;
            let sock = client(server.addr).await;
            let q = Question::a("www.example.org");
            let reply = ask_udp(&sock, server.addr, &wire::query(1, &q)).await;
            assert_eq!(reply, expected(2, 1, &q));
            // Mid-query (a slow name), and a TCP connection open, when it is dropped.
            let slow = wire::query(2, &Question::a("slow.example.org"));
            sock.send_to(&slow, server.addr).await.unwrap();
            let mut conn = TcpStream::connect(server.addr).await.unwrap();
            write_frame(&mut conn, &slow).await.unwrap();
            settle().await;
            drop(server);
            let mut buf = [0u8; 8];
            let n = within(
                HANG,
                overlap::io::AsyncReadExt::read(&mut conn, &mut buf),
                "the connection's end",
            )
            .await
            .unwrap();
            assert_eq!(n, 0);
            drop((conn, sock, up));
            settle().await;
            assert_eq!(overlap::metrics().tasks_alive, tasks, "tasks left");
            assert_eq!(open_fds(), fds, "fds left open");
        })
    });
}
