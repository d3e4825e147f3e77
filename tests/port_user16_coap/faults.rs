//! The fault and limit tests: RSTs for a ping, a malformed CON and an unknown token;
//! malformed datagrams reported one by one while exchanges go on; NSTART bounding the
//! requests outstanding; a cancelled request; a lossy proxy in the middle; a server
//! restart; and nothing left behind.

use super::*;

#[overlap::test(start_paused = true)]
async fn rst_answers_a_ping_a_malformed_con_and_an_unknown_token() {
    let server = serve("127.0.0.1", ServerConfig::default()).await;
    let peer = RawPeer::bind("127.0.0.1").await;
    // A CoAP ping: an empty CON, answered with RST.
    peer.send(&Message::empty(Type::Con, 500), server.addr)
        .await;
    assert_eq!(peer.recv().await.0, Message::empty(Type::Rst, 500));
    // A CON whose options are broken: RST with its id. A NON the same: dropped.
    peer.send_bytes(&[0x40, 0x01, 0x01, 0xf5, 0xf1, 0], server.addr)
        .await;
    peer.send_bytes(&[0x50, 0x01, 0x01, 0xf6, 0xf1, 0], server.addr)
        .await;
    assert_eq!(peer.recv().await.0, Message::empty(Type::Rst, 0x01f5));
    // An ACK and an RST for nothing of the server's: ignored.
    peer.send(&Message::empty(Type::Ack, 9), server.addr).await;
    peer.send(&Message::empty(Type::Rst, 9), server.addr).await;
    until(|| server.stats().unmatched == 2, "the stray ACK and RST").await;
    assert!(!peer.has_datagram());
    let s = server.stats();
    assert_eq!((s.rsts_sent, s.malformed.len()), (2, 2), "{s:?}");
    server.stop().await;
    // The client resets a response whose token nobody is waiting for, CON or NON, and
    // acknowledges nothing.
    let fake = RawPeer::bind("127.0.0.1").await;
    let client = client_of(fake.addr, ClientConfig::default()).await;
    for (t, mid) in [(Type::Con, 40), (Type::Non, 41)] {
        let stray = Message::new(t, code::CONTENT, mid, b"tok").with_payload(b"?");
        fake.send(&stray, client.local).await;
        assert_eq!(fake.recv().await.0, Message::empty(Type::Rst, mid));
    }
    // From anyone but its server, nothing is answered at all.
    let stranger = RawPeer::bind("127.0.0.1").await;
    stranger
        .send(
            &Message::new(Type::Con, code::CONTENT, 42, b"t"),
            client.local,
        )
        .await;
    until(|| client.stats().strangers == 1, "the stranger seen").await;
    assert_eq!(client.stats().rsts_sent, 2);
    assert!(!stranger.has_datagram() && !fake.has_datagram());
}

#[overlap::test(start_paused = true)]
async fn malformed_datagrams_are_reported_each_while_exchanges_go_on() {
    let server = serve("127.0.0.1", ServerConfig::default()).await;
    let client = client_of(server.addr, ClientConfig::default()).await;
    let junk = RawPeer::bind("127.0.0.1").await;
    let bad: Vec<Vec<u8>> = vec![
        vec![0x80, 0x01, 0, 1], // version 2: ignored, no RST
        vec![0x49, 0x01, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9], // token length 9
        vec![0x40, 0x01, 0, 3, 0xb9, b's', b'h'], // Uri-Path claiming 9 bytes, 2 there
        vec![0x40, 0x01, 0, 4, 0xf0], // delta 15
        vec![0x40, 0x01, 0, 5, 0xff], // a marker and no payload
        vec![0x40, 0x01],       // short
        vec![],                 // empty: never seen (see below)
    ];
    let work = async {
        let mut answers = Vec::new();
        for i in 0..20u32 {
            let body = format!("request {i}");
            answers.push(
                client
                    .post("echo", body.as_bytes(), true)
                    .await
                    .unwrap()
                    .payload,
            );
        }
        answers
    };
    let noise = async {
        for d in &bad {
            junk.send_bytes(d, server.addr).await;
            overlap::yield_now().await;
        }
    };
    let (answers, ()) = overlap::join!(work, noise);
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(a, format!("request {i}").as_bytes());
    }
    let s = server.stats();
    let faults: Vec<(SocketAddr, Fault)> = s.malformed.iter().map(|(p, e)| (*p, e.fault)).collect();
    let want = [
        Fault::BadVersion(2),
        Fault::TokenTooLong(9),
        Fault::TruncatedOption,
        Fault::ReservedDelta,
        Fault::EmptyPayload,
        Fault::Short,
    ];
    assert_eq!(
        faults,
        want.map(|f| (junk.addr, f)),
        "each reported, with its sender"
    );
    // The four whose header parsed as a CON were reset, by id.
    let mut rsts = Vec::new();
    for _ in 0..4 {
        rsts.push(junk.recv().await.0);
    }
    assert_eq!(rsts, [2, 3, 4, 5].map(|mid| Message::empty(Type::Rst, mid)));
    settle().await;
    assert!(!junk.has_datagram());
    assert_eq!(
        (client.stats().retransmissions, s.runs.get("echo")),
        (0, Some(&20))
    );
    server.stop().await;
}

#[overlap::test(start_paused = true)]
async fn a_cancelled_request_is_forgotten_and_its_late_answer_reset() {
    let server = serve("127.0.0.1", ServerConfig::default()).await;
    let client = client_of(server.addr, ClientConfig::default()).await;
    let gave_up = time::timeout(Duration::from_secs(1), client.get("slow")).await;
    assert!(
        gave_up.is_err(),
        "cut off after the empty ACK, before the answer"
    );
    assert_eq!(client.outstanding(), (0, 0));
    // At 5 s the server's CON answer finds no one: the client resets it, the server stops.
    until(|| server.stats().separate_reset == 1, "the answer reset").await;
    let (c, s) = (client.stats(), server.stats());
    assert_eq!(
        (
            c.rsts_sent,
            c.acks_sent,
            s.separate_acked,
            s.separate_timed_out
        ),
        (1, 0, 0, 0)
    );
    // A request cancelled while retransmitting: its id forgotten, a late ACK unmatched.
    let dead = RawPeer::bind("127.0.0.1").await;
    let client = client_of(dead.addr, ClientConfig::default()).await;
    assert!(time::timeout(Duration::from_secs(10), client.get("x"))
        .await
        .is_err());
    let (first, from, _) = dead.recv().await;
    dead.send(&Message::empty(Type::Ack, first.mid), from).await;
    until(|| client.stats().unmatched == 1, "the late ACK").await;
    assert_eq!(client.outstanding(), (0, 0));
    server.stop().await;
}

#[overlap::test(start_paused = true)]
async fn through_a_lossy_proxy_every_exchange_completes_and_each_handler_runs_once() {
    for (seed, host) in [(1, "127.0.0.1"), (2, "127.0.0.1"), (3, "::1")] {
        let big = Rc::new(pattern_seeded(40 * 1024 + 5, seed as u32));
        let tx = Transmission {
            max_retransmit: 8,
            ..Transmission::default()
        };
        let cfg = ServerConfig {
            big: big.clone(),
            tx: tx.clone(),
            ..ServerConfig::default()
        };
        let server = serve(host, cfg).await;
        let proxy = Proxy::start(server.addr, seed, 25).await;
        let client = client_of(
            proxy.addr,
            ClientConfig {
                tx,
                seed,
                nstart: 1,
            },
        )
        .await;
        for i in 1..=30 {
            let resp = client.post("count", b"", true).await.unwrap();
            assert_eq!(
                text(&resp),
                i.to_string(),
                "seed {seed}: in order, each counted once"
            );
        }
        // A separate answer, its CON retransmitted by the server as needed.
        assert_eq!(text(&client.get("slow").await.unwrap()), "done slowly");
        let (body, blocks) = client.get_blockwise("big").await.unwrap();
        assert!(body == *big && blocks == 41, "seed {seed}");
        let (p, c, s) = (proxy.stats(), client.stats(), server.stats());
        assert!(
            p.dropped_to_server > 5 && p.dropped_to_client > 5,
            "seed {seed}: {p:?}"
        );
        assert!(c.retransmissions > 0, "seed {seed}: {c:?}");
        // Lost ACKs made the client send again; the server answered from its cache.
        assert!(s.duplicates > 0, "seed {seed}: {s:?}");
        assert_eq!(s.runs.get("count"), Some(&30), "seed {seed}");
        assert_eq!((s.separate_acked, s.malformed.len()), (1, 0));
        proxy.stop().await;
        server.stop().await;
    }
}

#[overlap::test(start_paused = true)]
async fn a_request_outlives_a_server_restart() {
    let server = serve("127.0.0.1", ServerConfig::default()).await;
    let addr = server.addr;
    let client = client_of(addr, ClientConfig::default()).await;
    assert_eq!(text(&client.post("count", b"", true).await.unwrap()), "1");
    let down_at = time::now();
    server.stop().await;
    let (resp, restarted) = overlap::join!(client.post("count", b"", true), async {
        // Down for 4 s: the first sending and a retransmission or two go nowhere.
        time::sleep(Duration::from_secs(4)).await;
        // The same port again (UDP has no TIME_WAIT): the old socket is closed.
        Server::start(addr, ServerConfig::default()).await.unwrap()
    });
    let resp = resp.unwrap();
    assert_eq!(restarted.addr, addr);
    // A fresh server: its own count, its own empty cache.
    assert_eq!(text(&resp), "1");
    let c = client.stats();
    assert!(c.retransmissions >= 1 && c.retransmissions <= 2, "{c:?}");
    assert!(time::now() - down_at > Duration::from_secs(4));
    assert_eq!(restarted.stats().duplicates, 0);
    restarted.stop().await;
}

#[overlap::test(start_paused = true)]
async fn nothing_is_left_behind() {
    let m0 = overlap::metrics();
    let big = Rc::new(pattern_seeded(8 * 1024, 4));
    let server = serve(
        "::1",
        ServerConfig {
            big,
            ..ServerConfig::default()
        },
    )
    .await;
    let proxy = Proxy::start(server.addr, 9, 10).await;
    let client = client_of(proxy.addr, ClientConfig::default()).await;
    let local = client.local;
    let obs = client.observe("obs").await.unwrap();
    assert_eq!(client.get_blockwise("big").await.unwrap().1, 8);
    // Something in flight everywhere when it all stops: a separate answer pending at the
    // server, a request waiting at the client.
    let pending = time::timeout(Duration::from_secs(1), client.get("slow")).await;
    assert!(pending.is_err());
    assert_eq!(server.observers(), 1);
    drop(obs);
    drop(client);
    let addr = server.addr;
    server.stop().await;
    proxy.stop().await;
    until(
        || overlap::metrics().tasks_alive == m0.tasks_alive,
        "the tasks gone",
    )
    .await;
    let m = overlap::metrics();
    assert_eq!(
        m.registered_fds, m0.registered_fds,
        "every socket deregistered"
    );
    // Each port can be bound again: each socket closed.
    for a in [addr, local] {
        UdpSocket::bind(a).await.unwrap();
    }
}

#[overlap::test(start_paused = true)]
async fn nstart_bounds_the_requests_outstanding() {
    let server = serve("127.0.0.1", ServerConfig::default()).await;
    let cfg = ClientConfig {
        nstart: 4,
        ..ClientConfig::default()
    };
    let client = client_of(server.addr, cfg).await;
    let start = time::now();
    let reqs = (0..24).map(|i| {
        let req = Message::request(Type::Con, code::POST, "wait/100", &[]);
        client.request(req.with_payload(&[i]))
    });
    let answers = overlap::future::join_all(reqs).await;
    for (i, a) in answers.into_iter().enumerate() {
        assert_eq!(a.unwrap().payload, [i as u8]);
    }
    assert_eq!(server.stats().max_separate_pending, 4);
    assert_eq!(
        time::now() - start,
        Duration::from_millis(600),
        "six rounds of four"
    );
    server.stop().await;
}
