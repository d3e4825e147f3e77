//! A user's CoAP-style service and client (RFC 7252, simplified, with RFC 7641's Observe
//! and RFC 7959's Block2), sketched first as one would for tokio with tokio-util's
//! `UdpFramed`, then written for overlap with `overlap::udp::UdpFramed`: the messages
//! (`port_user16_coap/message.rs`), the binary codec (`codec.rs`), the transmission
//! parameters and the seeded generator (`transmission.rs`), the service (`server.rs`), the
//! client (`client.rs`), and the tests' lossy proxy (`proxy.rs`) and hand-driven peer
//! (`raw_peer.rs`); the codec's tests are in `codec_tests.rs`, the fault tests in
//! `faults.rs`.
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! use std::sync::{Arc, Mutex as StdMutex};
//! use bytes::BytesMut;
//! use futures::{SinkExt, StreamExt};
//! use tokio::net::UdpSocket;
//! use tokio::sync::{mpsc, oneshot, Mutex, Semaphore};
//! use tokio::time::{sleep, timeout, Instant};
//! use tokio_util::codec::{Decoder, Encoder};
//! use tokio_util::udp::UdpFramed;
//!
//! // The codec: one whole message per datagram, no state kept between them.
//! impl Decoder for CoapCodec {
//!     type Item = Message;
//!     type Error = CoapError;                       // Format(FormatError) | Io(io::Error)
//!     fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, CoapError> {
//!         if src.is_empty() { return Ok(None) }
//!         parse(&src.split()).map(Some).map_err(CoapError::Format)  // header, token,
//!     }                                             // options (13/14 forms, 15 reserved), 0xFF
//! }
//! impl Encoder<Message> for CoapCodec { .. }        // options sorted, token <= 8
//!
//! // The server: one socket, a receiving and a sending half.
//! let sock = Arc::new(UdpSocket::bind(addr).await?);
//! let mut inbox = UdpFramed::new(sock.clone(), Reporting);   // Item = Result<Message, FormatError>
//! let outbox = Arc::new(Mutex::new(UdpFramed::new(sock, Reporting)));
//! let mut later = JoinSet::new();                   // separate responses, aborted with us
//! loop { tokio::select! {
//!     Some(got) = inbox.next() => match got {
//!         Ok((Ok(msg), peer)) => handle(msg, peer).await,   // dedup by (peer, mid),
//!         Ok((Err(bad), peer)) => rst_if_con(bad, peer).await,  // route, piggyback or
//!         Err(_) => {}                              // empty ACK + later.spawn(CON response)
//!     },
//!     Some(_) = later.join_next() => {}
//! } }
//! // A CON of ours (separate response, CON notification): until ACK or RST.
//! waiting.lock().unwrap().insert((peer, mid), tx);
//! for _ in 0..=MAX_RETRANSMIT {
//!     outbox.lock().await.send((msg.clone(), peer)).await?;
//!     match timeout(wait, &mut rx).await { Ok(Ok(Type::Ack)) => return Acked, Ok(_) => return Reset,
//!                                          Err(_) => wait *= 2 }
//! }
//!
//! // The client: a reader task routing by message id (ACK/RST) and token (responses,
//! // notifications), RST for a token nobody waits for; requests limited by NSTART.
//! let _permit = nstart.acquire().await?;
//! let mut wait = ACK_TIMEOUT.mul_f64(1.0 + rng.gen::<f64>() * 0.5);   // seeded StdRng
//! exchanges.lock().unwrap().insert(token.clone(), tx);
//! let _guard = ExchangeGuard { .. };                // a dropped request forgets its token
//! loop {
//!     outbox.lock().await.send((req.clone(), server)).await?;
//!     match timeout(wait, rx.recv()).await {
//!         Ok(Some(Event::Response(m))) => return Ok(m),       // piggybacked
//!         Ok(Some(Event::Acked)) => break,                    // then the separate response
//!         Ok(Some(Event::Reset)) => return Err(Reset),
//!         Err(_) if sent > MAX_RETRANSMIT => return Err(Timeout { mid, transmissions }),
//!         Err(_) => wait *= 2,
//!     }
//! }
//! // Block2: GET with Block2 (num, szx 6) until a block without `more`;
//! // Observe: GET with Observe 0, the token kept in `observations` until dropped.
//! ```
//!
//! The tests check, over real UDP sockets on 127.0.0.1 and ::1 and on the paused clock
//! (which moves only when no socket has anything to read, so a retransmission timer never
//! fires ahead of a datagram in flight): the codec writing every option form byte for
//! byte (the 13 and 14 extensions of delta and length, an option number over 269, a
//! repeated option kept in order, minimal uints, Block2's fields) and reading it back;
//! twelve malformed forms each named (short, version 2, token length 9, a token cut short,
//! delta 15, length 15, three truncated options, an option number over 65535, a marker
//! with no payload, an empty message with a body) and a 9-byte token refused by the
//! `UdpFramed` sink once, the next items sent (`codec_tests.rs`); piggybacked answers,
//! 4.04, 4.02 for an unknown critical option and an unknown elective one ignored, over
//! both families; a CON to a silent peer sent at exactly 0, t0, 3 t0, 7 t0 and 15 t0 (t0
//! the seeded generator's first timeout, three seeds) under one message id and given up at
//! 31 t0 with `Timeout`; an ACK on the third sending ending the retransmissions, a wrong
//! token's and a duplicate ACK unmatched, the server's junk counted apart from a
//! stranger's; a separate response at exactly the server's delay after an empty ACK, and
//! NON requests answered NON and never retransmitted; a CON sent three times answered with
//! the same ACK bytes and the handler run once, the same id from another peer a new
//! exchange, and the id remembered until exactly `EXCHANGE_LIFETIME` (247 s); sixty
//! concurrent requests, forty of them answered separately in the reverse order of asking,
//! each matched by its token; 300 KiB + 123 bytes through Block2 in 301 blocks, Size2 on
//! block 0, 4.00 past the end; Observe notifications NON and CON in sequence, a full
//! server answering without registering, a dropped observation deregistered by the RST its
//! next notification gets, and a vanished client's observation removed when a CON
//! notification times out (`port_user16_coap.rs`); RST for a ping, for a malformed CON
//! (not a NON, not a bad version) and for a response whose token nobody waits for, stray
//! ACKs and RSTs ignored; six malformed datagrams reported each with their sender while
//! twenty exchanges go on; NSTART 4 bounding 24 requests to six rounds; a request
//! cancelled after its empty ACK (its late CON answer reset by the client) and one
//! cancelled mid-retransmission (a late ACK unmatched); a 25%-loss proxy both ways for
//! three seeds (one over ::1), thirty counted requests in order with the handler run
//! exactly thirty times while the server answered duplicates from its cache, a separate
//! response and a Block2 transfer through it; a request outliving a server restart on the
//! same port; and no task, registered fd or bound port left (`faults.rs`).
//!
//! What porting it found missing in overlap, or different from tokio:
//!
//! - A decode error from `UdpFramed` carries no address (tokio-util's neither), and
//!   overlap's clears the datagram when it reports the error (tokio-util's keeps it in the
//!   read buffer and reports it again on every poll), so neither the sender nor the bytes
//!   were to be had: the server could not answer a malformed CON with RST, nor the client
//!   tell its server's junk from a stranger's. The server's way round, which works with
//!   tokio too, is a codec whose item is `Result<Message, FormatError>` (`Reporting`), the
//!   fault then coming with the address. For the client it is fixed in the library:
//!   `UdpFramed::last_sender()`, the sender of the last datagram received (`None` before
//!   the first and after a socket error), in its own commit with a test in
//!   `tests/net_udp_framed.rs`.
//! - An empty datagram never reaches the program: `decode_eof` on no bytes gives no frame
//!   and `UdpFramed` moves on, so a server cannot count one (tokio-util's alike).
//! - A retransmission goes through the codec again (the `Sink` takes items, not bytes), so
//!   the message is cloned and encoded at each sending, or the program bypasses the framing
//!   with `get_ref().send_to` (tokio-util's alike).
//! - Several tasks sending need the sending `UdpFramed` behind a `Mutex` (tokio: the same,
//!   or an `Arc<Mutex<SplitSink>>`); with an `Rc<UdpSocket>` a `UdpFramed` per sender would
//!   do as well, since one allocates nothing until it receives.
//! - `SinkExt::flush` needed no type annotation here: the codec has one `Encoder` impl. It
//!   does with `LinesCodec`, whose `Encoder<T: AsRef<str>>` leaves the item type open (as
//!   with tokio-util).
//! - Nothing else: `UdpFramed` over an `Rc<UdpSocket>` for both halves, `JoinSet` aborting
//!   its tasks when dropped, `oneshot` awaited by `&mut` under `timeout`, `mpsc`,
//!   `Semaphore`, `Mutex`, `select!` with `Some(..) =` patterns, `future::join_all` and
//!   the paused clock all have tokio's names and behaved as tokio's would; a send's error
//!   (a 9-byte token) was reported once, the next items going out.
//!
//! What the port changed, against tokio: the imports (`overlap::udp::UdpFramed`,
//! `overlap::codec`, `overlap::{sink::SinkExt, stream::StreamExt}`); `Rc` with
//! `RefCell` where tokio's `spawn` needs `Arc` and locks; `rand`'s seeded `StdRng` is a
//! splitmix64 of the program's own (no new dependency).
//!
//! What the port got wrong at first, and would with tokio too: the client drew its first
//! message id and token from the same generator as its timeouts, so the test computing t0
//! from the seed was off by two draws (they now have generators of their own); and a
//! duplicate ACK arriving in the same batch as the first still found the message id
//! registered, since the request forgot it only when it next ran: the reader now forgets
//! the id as soon as an ACK or RST ends the transmission.
//!
//! Broken on purpose, one fault at a time, each made a test fail: no deduplication (the
//! cached-answer test, and the proxy's count going to 2 on its first request); no backoff
//! (the instants test: 2.24, 4.48, 6.72 s instead of 2.24, 6.72, 15.68 s); and the client
//! not acknowledging again a separate response it had already taken (through the proxy,
//! a lost ACK then made the server's retransmission meet an RST).

mod support;

#[path = "port_user16_coap/client.rs"]
mod client;
#[path = "port_user16_coap/codec.rs"]
mod codec;
#[path = "port_user16_coap/codec_tests.rs"]
mod codec_tests;
#[path = "port_user16_coap/faults.rs"]
mod faults;
#[path = "port_user16_coap/message.rs"]
mod message;
#[path = "port_user16_coap/proxy.rs"]
mod proxy;
#[path = "port_user16_coap/raw_peer.rs"]
mod raw_peer;
#[path = "port_user16_coap/server.rs"]
mod server;
#[path = "port_user16_coap/transmission.rs"]
mod transmission;

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use client::{Client, ClientConfig, ClientError};
use codec::{parse, CoapCodec, CoapError, Fault, FormatError};
use message::{code, opt, Block, Message, Type};
use overlap::codec::BytesMut;
use overlap::net::UdpSocket;
use overlap::sink::SinkExt;
use overlap::time;
use overlap::udp::UdpFramed;
use proxy::Proxy;
use raw_peer::{encode, RawPeer};
use server::{Confirmed, Server, ServerConfig};
use support::{pattern_seeded, settle, until, within};
use transmission::{Prng, Transmission};

/// A hang guard only, on the paused clock (virtual time: room for every backoff).
const HANG: Duration = Duration::from_secs(24 * 3600);

fn any(host: &str) -> SocketAddr {
    let ip: std::net::IpAddr = host.parse().unwrap();
    SocketAddr::new(ip, 0)
}

async fn serve(host: &str, cfg: ServerConfig) -> Server {
    Server::start(any(host), cfg).await.unwrap()
}

async fn client_of(server: SocketAddr, cfg: ClientConfig) -> Client {
    let local = if server.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    };
    Client::bind(local, server, cfg).await.unwrap()
}

fn text(m: &Message) -> &str {
    std::str::from_utf8(&m.payload).unwrap()
}

#[overlap::test(start_paused = true)]
async fn piggybacked_answers_over_v4_and_v6() {
    for host in ["127.0.0.1", "::1"] {
        let server = serve(host, ServerConfig::default()).await;
        let client = client_of(server.addr, ClientConfig::default()).await;
        let hello = client.get("hello").await.unwrap();
        assert_eq!(
            (hello.mtype, hello.code, text(&hello)),
            (Type::Ack, code::CONTENT, "world")
        );
        let echo = client.post("echo", b"\x00\xffbytes", true).await.unwrap();
        assert_eq!(echo.payload, b"\x00\xffbytes");
        let missing = client.get("nope/deeper").await.unwrap();
        assert_eq!(code::dotted(missing.code), "4.04");
        // An unknown critical option is refused; an unknown elective one is ignored.
        let req = Message::request(Type::Con, code::GET, "hello", &[]).with_option(2049, vec![1]);
        let refused = client.request(req).await.unwrap();
        assert_eq!(
            (code::dotted(refused.code), text(&refused)),
            ("4.02".into(), "option 2049")
        );
        let req = Message::request(Type::Con, code::GET, "hello", &[]).with_option(2048, vec![1]);
        assert_eq!(client.request(req).await.unwrap().code, code::CONTENT);
        let (c, s) = (client.stats(), server.stats());
        assert_eq!((c.transmissions, c.retransmissions, c.unmatched), (5, 0, 0));
        assert_eq!(s.runs.get("hello"), Some(&3), "{s:?}");
        assert_eq!((s.duplicates, s.rsts_sent, s.malformed.len()), (0, 0, 0));
        assert_eq!(client.outstanding(), (0, 0));
        server.stop().await;
    }
}

#[overlap::test(start_paused = true)]
async fn a_con_is_retransmitted_at_the_seeded_instants_then_times_out() {
    for seed in [1u64, 2, 3] {
        let dead = RawPeer::bind("127.0.0.1").await;
        let tx = Transmission::default();
        let client = client_of(
            dead.addr,
            ClientConfig {
                seed,
                ..ClientConfig::default()
            },
        )
        .await;
        // The same generator, the same first draw: the first timeout.
        let t0 = tx.initial_timeout(&mut Prng::new(seed));
        assert!(
            t0 >= Duration::from_secs(2) && t0 <= Duration::from_secs(3),
            "{t0:?}"
        );
        let start = time::now();
        let (res, arrivals) = overlap::join!(client.get("hello"), async {
            let mut got = Vec::new();
            for _ in 0..5 {
                let (m, _, at) = dead.recv().await;
                got.push((m.mid, at - start));
            }
            got
        });
        let mid = arrivals[0].0;
        let want: Vec<(u16, Duration)> = [0, 1, 3, 7, 15].iter().map(|k| (mid, t0 * *k)).collect();
        assert_eq!(arrivals, want, "seed {seed}: one mid, the gaps doubling");
        match res {
            Err(ClientError::Timeout {
                mid: m,
                transmissions: 5,
            }) if m == mid => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(
            time::now() - start,
            t0 * 31,
            "given up at the fifth timeout"
        );
        assert!(!dead.has_datagram(), "nothing after giving up");
        assert_eq!(client.stats().transmissions, 5);
        assert_eq!(client.outstanding(), (0, 0));
    }
}

#[overlap::test(start_paused = true)]
async fn an_ack_stops_the_retransmissions_and_a_late_one_is_ignored() {
    let peer = RawPeer::bind("127.0.0.1").await;
    let client = client_of(peer.addr, ClientConfig::default()).await;
    let (res, ()) = overlap::join!(client.post("echo", b"third time", true), async {
        let (first, from, _) = peer.recv().await;
        let (second, ..) = peer.recv().await;
        assert_eq!(encode(&first), encode(&second), "the same bytes again");
        // Junk from the server's address: the client's codec fails it, once.
        peer.send_bytes(&[0x40, 0x45, 0, 0, 0xbf], from).await;
        peer.send_bytes(&[0x40], from).await;
        // From a stranger: told apart by `UdpFramed::last_sender`, the error having no address.
        let stranger = RawPeer::bind("127.0.0.1").await;
        stranger.send_bytes(&[0x40], from).await;
        let (third, ..) = peer.recv().await;
        // A piggybacked answer with the wrong token does not count.
        let mut wrong = Message::new(Type::Ack, code::CONTENT, third.mid, b"nope");
        wrong.payload = b"not yours".to_vec();
        peer.send(&wrong, from).await;
        let answer = Message::new(Type::Ack, code::CONTENT, third.mid, &third.token)
            .with_payload(&third.payload);
        peer.send(&answer, from).await;
        peer.send(&answer, from).await; // a duplicate ACK
    });
    assert_eq!(res.unwrap().payload, b"third time");
    settle().await;
    let s = client.stats();
    assert_eq!(
        (s.transmissions, s.malformed, s.strangers),
        (3, 2, 1),
        "{s:?}"
    );
    assert_eq!(s.unmatched, 2, "the wrong token and the duplicate: {s:?}");
    time::sleep(Duration::from_secs(600)).await;
    assert!(!peer.has_datagram(), "no retransmission after the ACK");
}

#[overlap::test(start_paused = true)]
async fn a_separate_response_comes_after_an_empty_ack() {
    let cfg = ServerConfig {
        separate_delay: Duration::from_secs(5),
        ..ServerConfig::default()
    };
    let server = serve("127.0.0.1", cfg).await;
    let client = client_of(server.addr, ClientConfig::default()).await;
    let start = time::now();
    let resp = client.get("slow").await.unwrap();
    assert_eq!(time::now() - start, Duration::from_secs(5));
    assert_eq!((resp.mtype, text(&resp)), (Type::Con, "done slowly"));
    settle().await;
    let (c, s) = (client.stats(), server.stats());
    assert_eq!(
        (c.transmissions, c.retransmissions, c.acks_sent),
        (1, 0, 1),
        "{c:?}"
    );
    assert_eq!(
        (s.separate_acked, s.separate_reset, s.separate_timed_out),
        (1, 0, 0)
    );
    // A NON request gets a NON answer, separate too, and is sent once.
    let resp = client.post("count", b"", false).await.unwrap();
    assert_eq!(
        (resp.mtype, code::dotted(resp.code), text(&resp)),
        (Type::Non, "2.04".into(), "1")
    );
    let req = Message::request(Type::Non, code::POST, "wait/1500", &[]).with_payload(b"n");
    let resp = client.request(req).await.unwrap();
    assert_eq!((resp.mtype, text(&resp)), (Type::Non, "n"));
    assert_eq!(client.stats().transmissions, 3);
    server.stop().await;
    // A NON to nobody: one datagram, then no answer after the wait.
    let dead = RawPeer::bind("127.0.0.1").await;
    let client = client_of(dead.addr, ClientConfig::default()).await;
    let start = time::now();
    assert!(matches!(
        client.post("count", b"", false).await,
        Err(ClientError::NoResponse)
    ));
    assert_eq!(time::now() - start, Transmission::default().response_wait);
    dead.recv().await;
    assert!(!dead.has_datagram());
}

#[overlap::test(start_paused = true)]
async fn a_retransmitted_con_gets_the_cached_answer_and_the_handler_runs_once() {
    let server = serve("127.0.0.1", ServerConfig::default()).await;
    let (a, b) = (
        RawPeer::bind("127.0.0.1").await,
        RawPeer::bind("127.0.0.1").await,
    );
    let req = Message::request(Type::Con, code::POST, "count", &[7, 7]).with_payload(b"+1");
    let mut req = req;
    req.mid = 77;
    let mut answers = Vec::new();
    for _ in 0..3 {
        a.send(&req, server.addr).await;
        answers.push(a.recv_bytes().await.0);
    }
    let first = parse(&answers[0]).unwrap();
    assert_eq!(
        (first.mtype, first.mid, &first.token[..], text(&first)),
        (Type::Ack, 77, &[7, 7][..], "1")
    );
    assert!(
        answers.iter().all(|x| *x == answers[0]),
        "the same ACK, byte for byte"
    );
    // The same id from another peer is another exchange.
    b.send(&req, server.addr).await;
    assert_eq!(text(&b.recv().await.0), "2");
    let s = server.stats();
    assert_eq!(
        (s.runs.get("count"), s.duplicates, server.cached()),
        (Some(&2), 2, 2)
    );
    // Just before the exchange lifetime ends it is still a duplicate; after, a new request.
    let lifetime = Transmission::default().exchange_lifetime();
    assert_eq!(lifetime, Duration::from_secs(247));
    time::sleep(lifetime - Duration::from_millis(1)).await;
    a.send(&req, server.addr).await;
    assert_eq!(text(&a.recv().await.0), "1");
    time::sleep(Duration::from_millis(1)).await;
    a.send(&req, server.addr).await;
    assert_eq!(text(&a.recv().await.0), "3", "the handler ran again");
    let s = server.stats();
    assert_eq!(
        (s.runs.get("count"), s.duplicates, server.cached()),
        (Some(&3), 3, 1)
    );
    server.stop().await;
}

#[overlap::test(start_paused = true)]
async fn many_concurrent_requests_are_matched_by_token() {
    let server = serve("127.0.0.1", ServerConfig::default()).await;
    let client = Rc::new(client_of(server.addr, ClientConfig::default()).await);
    let mut tasks = Vec::new();
    for i in 0..60u64 {
        let client = client.clone();
        tasks.push(overlap::spawn(async move {
            let body = format!("#{i}");
            // Separate answers in the reverse order of asking, piggybacked ones between.
            let resp = if i % 3 == 0 {
                client.post("echo", body.as_bytes(), true).await
            } else {
                let req = Message::request(
                    Type::Con,
                    code::POST,
                    &format!("wait/{}", 6000 - i * 50),
                    &[],
                );
                client.request(req.with_payload(body.as_bytes())).await
            };
            let resp = resp.unwrap();
            (
                i,
                resp.token.clone(),
                String::from_utf8(resp.payload).unwrap(),
                time::now(),
            )
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(within(HANG, t, "a request").await.unwrap());
    }
    let mut tokens: Vec<Vec<u8>> = results.iter().map(|r| r.1.clone()).collect();
    for (i, _, body, _) in &results {
        assert_eq!(*body, format!("#{i}"), "each answer to its own request");
    }
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 60, "sixty tokens");
    // The separate ones came back latest-asked first.
    let mut late: Vec<_> = results.iter().filter(|r| r.0 % 3 != 0).collect();
    late.sort_by_key(|r| r.3);
    assert_eq!(late.first().unwrap().0, 59);
    assert_eq!(late.last().unwrap().0, 1);
    settle().await;
    let (c, s) = (client.stats(), server.stats());
    assert_eq!(
        (c.transmissions, c.retransmissions, c.acks_sent, c.unmatched),
        (60, 0, 40, 0)
    );
    assert_eq!((s.separate_acked, s.max_separate_pending), (40, 40));
    assert_eq!(client.outstanding(), (0, 0));
    server.stop().await;
}

#[overlap::test(start_paused = true)]
async fn block2_moves_three_hundred_kib_in_one_kib_blocks() {
    let big = Rc::new(pattern_seeded(300 * 1024 + 123, 16));
    let cfg = ServerConfig {
        big: big.clone(),
        ..ServerConfig::default()
    };
    let server = serve("127.0.0.1", cfg).await;
    let client = client_of(server.addr, ClientConfig::default()).await;
    let (body, blocks) = client.get_blockwise("big").await.unwrap();
    assert!(body == *big, "{} bytes of {}", body.len(), big.len());
    assert_eq!(blocks, 301);
    assert_eq!(server.stats().runs.get("big"), Some(&301));
    // Block 0 without asking: 1 KiB, more to come, and the total in Size2.
    let first = client.get("big").await.unwrap();
    assert_eq!(
        first.block2(),
        Some(Block {
            num: 0,
            more: true,
            szx: 6
        })
    );
    assert_eq!(
        (first.payload.len(), first.uint(opt::SIZE2)),
        (1024, Some(big.len() as u32))
    );
    // The last block: 123 bytes, no more; past it, 4.00.
    let ask = |num| {
        Message::request(Type::Con, code::GET, "big", &[]).with_uint(
            opt::BLOCK2,
            Block {
                num,
                more: false,
                szx: 6,
            }
            .to_uint(),
        )
    };
    let last = client.request(ask(300)).await.unwrap();
    assert_eq!(
        (last.payload.len(), last.block2().unwrap().more),
        (123, false)
    );
    assert_eq!(
        client.request(ask(301)).await.unwrap().code,
        code::BAD_REQUEST
    );
    assert_eq!(client.stats().retransmissions, 0);
    server.stop().await;
}

#[overlap::test(start_paused = true)]
async fn observers_are_notified_and_an_rst_deregisters() {
    let cfg = ServerConfig {
        max_observers: 2,
        ..ServerConfig::default()
    };
    let server = serve("127.0.0.1", cfg).await;
    let client = client_of(server.addr, ClientConfig::default()).await;
    let mut obs = client.observe("obs").await.unwrap();
    let first = obs.next().await.unwrap();
    assert_eq!((first.seq, &first.payload[..]), (1, &b"initial"[..]));
    assert_eq!(server.observers(), 1);
    for (i, v) in ["one", "two", "three"].iter().enumerate() {
        assert!(server.notify(v.as_bytes(), false).await.is_empty());
        let n = obs.next().await.unwrap();
        assert_eq!((n.seq, &n.payload[..]), (i as u32 + 2, v.as_bytes()));
    }
    // A CON notification: acknowledged by the client.
    assert_eq!(server.notify(b"four", true).await, [Confirmed::Acked]);
    assert_eq!(obs.next().await.unwrap().payload, b"four");
    // A second observer fits, a third does not (answered, not registered).
    let second = client.observe("obs").await.unwrap();
    let third = client.observe("obs").await.unwrap();
    assert!(second.registered() && !third.registered());
    assert_eq!(server.observers(), 2);
    // Dropped: the next notification to it is reset, and it is no longer an observer.
    drop(obs);
    drop(third);
    assert!(server.notify(b"five", false).await.is_empty());
    until(|| server.observers() == 1, "the RST's deregistration").await;
    let (c, s) = (client.stats(), server.stats());
    assert_eq!((c.rsts_sent, s.deregistered, s.notifications), (1, 1, 6));
    // The client goes away altogether: a CON notification to it times out, and it too is
    // removed (an RST would do it sooner; nobody is left to send one).
    drop(second);
    drop(client);
    let start = time::now();
    assert_eq!(server.notify(b"six", true).await, [Confirmed::TimedOut]);
    assert!(time::now() - start >= Duration::from_secs(2 * 31));
    assert_eq!(server.observers(), 0);
    server.stop().await;
}
