//! A user's authoritative DNS server (a small hickory-dns-like one), sketched as one would
//! for tokio with tokio-util's `UdpFramed` and `Framed`, then written for overlap by
//! changing `tokio::` and `tokio_util::` to `overlap::`: the RFC 1035 wire format with name
//! compression (`port_user17_dns_authority/wire.rs`), the codec for `UdpFramed`
//! (`codec.rs`), the zone file and the authoritative answer (`zone.rs`), the rate limiter
//! (`limit.rs`), the server's UDP and TCP sides and its reload (`server.rs`), the stub
//! resolver (`client.rs`), the tests' zone and raw helpers (`rig.rs`); the tests without
//! sockets (`offline.rs`), of the rate limiter and the resolver (`rate_and_resolver.rs`),
//! and of TCP, reload and shutdown (`tcp_and_reload.rs`), the others here.
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! use std::sync::Arc;
//! use arc_swap::ArcSwap;
//! use futures::{SinkExt, StreamExt};
//! use tokio::net::{TcpListener, UdpSocket};
//! use tokio::sync::Semaphore;
//! use tokio_util::codec::{Framed, LengthDelimitedCodec};
//! use tokio_util::udp::UdpFramed;
//!
//! // The zone, swapped whole on SIGHUP.
//! let zone = Arc::new(ArcSwap::from_pointee(Zone::parse(&fs::read_to_string(&path).await?)?));
//! let mut hup = tokio::signal::unix::signal(SignalKind::hangup())?;
//! tokio::spawn(async move { while hup.recv().await.is_some() {
//!     match Zone::parse(&tokio::fs::read_to_string(&path).await?) {
//!         Ok(z) => zone.store(Arc::new(z)), Err(e) => log(e),   // the old zone stays
//!     }
//! }});
//! // UDP: one message per datagram through the codec (Item = Message, Error: From<io::Error>).
//! let udp = UdpSocket::bind(addr).await?;
//! let tcp = TcpListener::bind(udp.local_addr()?).await?;  // the same port number
//! let mut frames = UdpFramed::new(udp, DnsCodec);
//! while let Some(item) = frames.next().await {
//!     match item {
//!         Ok((q, from)) if !q.qr => {
//!             match limiter.check(from) {                       // token bucket per source
//!                 Verdict::Drop => continue,
//!                 Verdict::Slip => frames.send((truncated(answer(&zone.load(), &q)), from)).await?,
//!                 Verdict::Answer => frames.send((encode_within(answer(..), limit(&q)), from)).await?,
//!             }
//!         }
//!         Ok(_) => {}                                           // a response: never answered
//!         Err(DnsError::Malformed(m)) => { /* FORMERR to... whom? tokio's error has no
//!                                             address: the codec must return Ok(Err(..)) */ }
//!         Err(DnsError::Io(_)) => {}
//!     }
//! }
//! // TCP: a 2-byte length before each message; a cap on clients, an idle timeout.
//! let slots = Arc::new(Semaphore::new(max_clients));
//! let (stream, _) = tcp.accept().await?;
//! let Ok(permit) = slots.clone().try_acquire_owned() else { drop(stream); continue };
//! tokio::spawn(async move {
//!     let mut frames = LengthDelimitedCodec::builder().length_field_length(2).new_framed(stream);
//!     while let Ok(Some(Ok(frame))) = tokio::time::timeout(idle, frames.next()).await {
//!         frames.send(encode(&answer(&zone.load(), &decode(&frame)?))).await?;
//!     }
//!     drop(permit);
//! });
//! // The stub resolver: UDP with retries and a doubling timeout, TCP when TC is set.
//! sock.send_to(&q, server).await?;
//! match tokio::time::timeout(wait, answer_to(&sock, id)).await { .. }
//! ```
//!
//! The tests check, over real sockets on 127.0.0.1 (and ::1 once) with the paused clock:
//! the zone file parsed and its errors named by line; names compressed on encode (the
//! answer's owner a pointer to the question's) and round-tripping, and the decoder refusing
//! a pointer to itself, a two-pointer loop, cut messages and trailing bytes
//! (`offline.rs`); A, AAAA, MX
//! (its exchange's addresses in the additional section) and TXT answers with AA set;
//! NXDOMAIN and NODATA (an empty non-terminal too) with the SOA, its TTL capped at the
//! minimum, in the authority section; CNAMEs chased through two hops, an out-of-zone
//! target left to the resolver, a CNAME loop SERVFAIL; REFUSED outside the zone and for
//! class CH; a 1.4 KB answer truncated (TC, no records, under 512 bytes) without EDNS and
//! fetched whole over TCP by the resolver, whole over UDP with EDNS 4096 (OPT echoed),
//! still truncated at 1232, and a size under 512 read as 512; malformed datagrams (too
//! short for an id, a cut header, two questions, a pointer loop, trailing bytes, QR set,
//! empty, opcode UPDATE) answered FORMERR or NOTIMP, or not at all, in exact order, the
//! server going on (here); the rate limiter answering the burst, then slipping every second
//! query and dropping the rest, refilling on the clock, another source untouched; the
//! resolver carried past a dropped query and a slip to TCP; its retries (three datagrams,
//! the same bytes) against a silent server, and forged answers ignored
//! (`rate_and_resolver.rs`); the TCP side's idle timeout, its client cap, a peer
//! vanishing inside a message, FORMERR over TCP on a connection that goes on; a reload
//! while a task keeps querying (every answer wholly old or wholly new, never old after
//! new), a connection from before it seeing the new zone, and a broken file keeping the
//! zone; and over ::1 a shutdown ending every task and closing the sockets
//! (`tcp_and_reload.rs`).
//!
//! What porting it found missing: no gap in the library; these differed from tokio or
//! were awkward.
//!
//! - `UdpFramed`'s decode error carries no address, as tokio-util's does not: the FORMERR
//!   answer to a malformed query needs the sender, and overlap's `last_sender()` (which
//!   tokio-util lacks) gives it, where under tokio the codec would have to turn every
//!   malformed datagram into an `Ok` item. The answer also needs the query's id, which the
//!   codec's own error type (an enum with `From<io::Error>`) carries, as it would for tokio.
//! - An empty datagram never reaches the codec, as documented (and as with tokio): the
//!   server cannot count it. Harmless for DNS (nothing to answer) but invisible in stats.
//! - One `UdpFramed` is both the stream and the sink here, the reply sent with
//!   `SinkExt::send` before the next receive; a busier server would split it over an
//!   `Rc<UdpSocket>` into a receiving and a sending `UdpFramed` (as the swim port does).
//! - The UDP size limit depends on the query (EDNS), and `UdpFramed` passes the codec no
//!   per-destination context (nor does tokio-util's), so the server encodes and the
//!   encoder takes the bytes.
//! - No `arc-swap` needed: the tasks share one thread, so a `RefCell<Rc<Zone>>` replaced in
//!   one assignment swaps the zone atomically. SIGHUP through `overlap::signal` would fit,
//!   but a signal reaches every test in the process, so a channel stands in for it.
//! - A test client writing two TCP messages without an answer between them stalled on
//!   Nagle's algorithm while the paused clock ran on to the server's idle timeout: the
//!   behaviour the README documents for auto-advance (it does not wait for sockets, as
//!   tokio's does not); `set_nodelay(true)` on that client, as the README says.
//! - Otherwise `UdpSocket`, `TcpListener`, `Framed` with
//!   `LengthDelimitedCodec::builder().length_field_length(2)` (an EOF inside a frame an
//!   error, as tokio-util's), `Semaphore::try_acquire_owned` (on an `Rc`),
//!   `CancellationToken::run_until_cancelled`, `TaskTracker`, `timeout`, `select!`, `fs`
//!   and the paused clock behaved as tokio's would.

mod support;

#[path = "port_user17_dns_authority/client.rs"]
mod client;
#[path = "port_user17_dns_authority/codec.rs"]
mod codec;
#[path = "port_user17_dns_authority/limit.rs"]
mod limit;
#[path = "port_user17_dns_authority/offline.rs"]
mod offline;
#[path = "port_user17_dns_authority/rate_and_resolver.rs"]
mod rate_and_resolver;
#[path = "port_user17_dns_authority/rig.rs"]
mod rig;
#[path = "port_user17_dns_authority/server.rs"]
mod server;
#[path = "port_user17_dns_authority/tcp_and_reload.rs"]
mod tcp_and_reload;
#[path = "port_user17_dns_authority/wire.rs"]
mod wire;
#[path = "port_user17_dns_authority/zone.rs"]
mod zone;

use std::net::{Ipv4Addr, Ipv6Addr};

use client::{ClientStats, Resolver};
use rig::{query, raw_exchange, raw_socket, recv_raw, zone_text, Rig, HANG};
use server::Config;
use support::within;
use wire::{rcode, ty, RData, Record};

fn a(name: &str, ttl: u32, ip: [u8; 4]) -> Record {
    Record {
        name: name.into(),
        ttl,
        data: RData::A(Ipv4Addr::from(ip)),
    }
}

fn serial_of(r: &Record) -> u32 {
    match &r.data {
        RData::Soa(s) => s.serial,
        other => panic!("not a SOA: {other:?}"),
    }
}

#[overlap::test(start_paused = true)]
async fn a_aaaa_mx_and_txt_are_answered_with_authority() {
    within(
        HANG,
        async {
            let rig = Rig::start("127.0.0.1", Config::default()).await;
            let r = Resolver::new(rig.addr()).await.unwrap();
            let m = r.query("WEB.example.test", ty::A).await.unwrap();
            assert!(m.qr && m.aa && !m.tc && m.rd);
            assert_eq!(m.rcode, rcode::NOERROR);
            assert_eq!(m.answers, vec![a("WEB.example.test", 600, [192, 0, 2, 1])]);
            let m = r.query("web.example.test", ty::AAAA).await.unwrap();
            assert_eq!(
                m.answers[0].data,
                RData::Aaaa(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))
            );
            let m = r.query("example.test", ty::MX).await.unwrap();
            assert_eq!(m.answers[0].data, RData::Mx(10, "mail.example.test".into()));
            assert_eq!(
                m.additional[0],
                a("mail.example.test", 300, [192, 0, 2, 25])
            );
            assert_eq!(m.additional[1].data.rtype(), ty::AAAA);
            let m = r.query("txt.example.test", ty::TXT).await.unwrap();
            let want = vec![b"hello world".to_vec(), b"say \"hi\"".to_vec()];
            assert_eq!(m.answers[0].data, RData::Txt(want));
            let m = r.query("example.test", ty::NS).await.unwrap();
            assert_eq!(m.answers[0].data, RData::Ns("ns1.example.test".into()));
            assert_eq!(
                r.stats(),
                ClientStats {
                    udp_sent: 5,
                    ..ClientStats::default()
                }
            );
            let stats = rig.server.shutdown().await;
            assert_eq!(
                (stats.udp_queries, stats.udp_truncated, stats.formerr),
                (5, 0, 0)
            );
        },
        "answers",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn nxdomain_and_nodata_carry_the_soa() {
    within(
        HANG,
        async {
            let rig = Rig::start("127.0.0.1", Config::default()).await;
            let r = Resolver::new(rig.addr()).await.unwrap();
            let m = r.query("nothere.example.test", ty::A).await.unwrap();
            assert_eq!((m.rcode, m.aa, m.answers.len()), (rcode::NXDOMAIN, true, 0));
            assert_eq!(m.authority.len(), 1);
            assert_eq!(
                (m.authority[0].ttl, serial_of(&m.authority[0])),
                (60, 1),
                "TTL capped"
            );
            for (name, qtype) in [
                ("web.example.test", ty::TXT),
                ("b.deep.example.test", ty::A),
            ] {
                let m = r.query(name, qtype).await.unwrap();
                assert_eq!(
                    (m.rcode, m.answers.len(), m.authority.len()),
                    (rcode::NOERROR, 0, 1),
                    "{name}"
                );
                assert_eq!(m.authority[0].data.rtype(), ty::SOA);
            }
            let m = r.query("x.a.b.deep.example.test", ty::A).await.unwrap();
            assert_eq!(m.rcode, rcode::NXDOMAIN);
            rig.server.shutdown().await;
        },
        "negative",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn cnames_are_chased_within_the_zone() {
    within(
        HANG,
        async {
            let rig = Rig::start("127.0.0.1", Config::default()).await;
            let r = Resolver::new(rig.addr()).await.unwrap();
            let m = r.query("alias.example.test", ty::A).await.unwrap();
            let chain: Vec<(String, RData)> = m
                .answers
                .iter()
                .map(|r| (r.name.clone(), r.data.clone()))
                .collect();
            assert_eq!(
                chain,
                vec![
                    (
                        "alias.example.test".into(),
                        RData::Cname("www.example.test".into())
                    ),
                    (
                        "www.example.test".into(),
                        RData::Cname("web.example.test".into())
                    ),
                    (
                        "web.example.test".into(),
                        RData::A(Ipv4Addr::new(192, 0, 2, 1))
                    ),
                ]
            );
            // Asked for the CNAME itself: the first one only.
            let m = r.query("www.example.test", ty::CNAME).await.unwrap();
            assert_eq!(m.answers.len(), 1);
            // Out of the zone: the CNAME alone, NOERROR, the resolver goes on elsewhere.
            let m = r.query("out.example.test", ty::A).await.unwrap();
            assert_eq!((m.rcode, m.answers.len()), (rcode::NOERROR, 1));
            assert_eq!(m.answers[0].data, RData::Cname("elsewhere.invalid".into()));
            // A loop: SERVFAIL after the chain limit, not a hang.
            let m = r.query("loop1.example.test", ty::A).await.unwrap();
            assert_eq!((m.rcode, m.answers.len()), (rcode::SERVFAIL, 8));
            // The chain to a name that is not there: NXDOMAIN, the CNAME kept.
            rig.write_zone(&(zone_text(2, 1) + "dangling IN CNAME gone\n"));
            assert_eq!(rig.server.reload().await, Ok(2));
            let m = r.query("dangling.example.test", ty::A).await.unwrap();
            assert_eq!(
                (m.rcode, m.answers.len(), m.authority.len()),
                (rcode::NXDOMAIN, 1, 1)
            );
            rig.server.shutdown().await;
        },
        "cnames",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn names_outside_the_zone_and_other_classes_are_refused() {
    within(
        HANG,
        async {
            let rig = Rig::start("127.0.0.1", Config::default()).await;
            let r = Resolver::new(rig.addr()).await.unwrap();
            for name in ["other.test", "test", "example.test.evil", "xexample.test"] {
                let m = r.query(name, ty::A).await.unwrap();
                assert_eq!(
                    (m.rcode, m.aa, m.answers.len(), m.authority.len()),
                    (rcode::REFUSED, false, 0, 0),
                    "{name}"
                );
            }
            let sock = raw_socket(rig.addr()).await;
            let mut chaos = query(77, "web.example.test", ty::A, None);
            chaos.questions[0].qclass = 3;
            let m = wire::decode(&raw_exchange(&sock, rig.addr(), &wire::encode(&chaos)).await)
                .unwrap();
            assert_eq!((m.id, m.rcode), (77, rcode::REFUSED));
            rig.server.shutdown().await;
        },
        "refused",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn a_big_answer_is_truncated_over_udp_and_fetched_over_tcp() {
    within(
        HANG,
        async {
            let rig = Rig::start("127.0.0.1", Config::default()).await;
            let sock = raw_socket(rig.addr()).await;
            let raw = raw_exchange(
                &sock,
                rig.addr(),
                &wire::encode(&query(5, "big.example.test", ty::TXT, None)),
            )
            .await;
            assert!(raw.len() <= 512, "{} bytes", raw.len());
            let m = wire::decode(&raw).unwrap();
            assert!(m.tc && m.aa);
            assert_eq!(
                (m.answers.len(), m.questions[0].name.as_str()),
                (0, "big.example.test")
            );
            let r = Resolver::new(rig.addr()).await.unwrap();
            let m = r.query("big.example.test", ty::TXT).await.unwrap();
            assert!(!m.tc);
            assert_eq!(m.answers.len(), 12);
            for (i, rec) in m.answers.iter().enumerate() {
                let RData::Txt(s) = &rec.data else {
                    panic!("{rec:?}")
                };
                assert_eq!(s[0], format!("{i:02}{}", "x".repeat(98)).into_bytes());
            }
            assert!(wire::encode(&m).len() > 1232);
            assert_eq!(
                r.stats(),
                ClientStats {
                    udp_sent: 1,
                    tcp_fallbacks: 1,
                    ..ClientStats::default()
                }
            );
            let stats = rig.server.shutdown().await;
            assert_eq!(
                (stats.udp_truncated, stats.tcp_queries, stats.tcp_live),
                (2, 1, 0)
            );
        },
        "truncation",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn edns_raises_the_udp_limit() {
    within(
        HANG,
        async {
            let rig = Rig::start("127.0.0.1", Config::default()).await;
            let mut r = Resolver::new(rig.addr()).await.unwrap();
            r.edns = Some(4096);
            let m = r.query("big.example.test", ty::TXT).await.unwrap();
            assert_eq!(
                (m.tc, m.answers.len(), m.edns),
                (false, 12, Some(server::SERVER_EDNS))
            );
            assert_eq!(r.stats().tcp_fallbacks, 0);
            let sock = raw_socket(rig.addr()).await;
            for (size, tc) in [(1232, true), (100, true), (65535, false)] {
                let q = wire::encode(&query(size, "big.example.test", ty::TXT, Some(size)));
                let raw = raw_exchange(&sock, rig.addr(), &q).await;
                let m = wire::decode(&raw).unwrap();
                assert_eq!((m.id, m.tc, m.edns), (size, tc, Some(4096)), "{size}");
                assert!(
                    raw.len() <= (size as usize).clamp(512, 4096),
                    "{size}: {}",
                    raw.len()
                );
            }
            // A small answer to an EDNS query: the OPT is echoed, the records all there.
            let q = wire::encode(&query(3, "web.example.test", ty::A, Some(1232)));
            let m = wire::decode(&raw_exchange(&sock, rig.addr(), &q).await).unwrap();
            assert_eq!((m.answers.len(), m.edns), (1, Some(4096)));
            rig.server.shutdown().await;
        },
        "edns",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn malformed_datagrams_get_formerr_or_nothing_and_the_server_goes_on() {
    within(
        HANG,
        async {
            let rig = Rig::start("127.0.0.1", Config::default()).await;
            let (sock, to) = (raw_socket(rig.addr()).await, rig.addr());
            let good = |id| wire::encode(&query(id, "web.example.test", ty::A, None));
            let mut two = wire::encode(&query(0x0b02, "web.example.test", ty::A, None));
            two[5] = 2; // qdcount 2, one question there
            let mut two_whole = query(0x0b03, "web.example.test", ty::A, None);
            two_whole.questions.push(two_whole.questions[0].clone());
            let mut looped = good(0x0b04)[..12].to_vec();
            looped.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
            let mut trailing = good(0x0b05);
            trailing.extend_from_slice(b"junk");
            let mut response = good(0x0b06);
            response[2] |= 0x80;
            let mut update = good(0x0b07);
            update[2] |= 5 << 3;
            let sends: Vec<Vec<u8>> = vec![
                vec![0x0b, 0x00, 0x01],     // no room for flags: nothing
                good(0x0b01)[..7].to_vec(), // a cut header: FORMERR
                two,                        // FORMERR
                wire::encode(&two_whole),   // FORMERR (decodes, two questions)
                looped,                     // FORMERR
                trailing,                   // FORMERR
                response,                   // QR set: nothing
                Vec::new(),                 // empty: never reaches the codec
                update,                     // NOTIMP
                good(0x0b08),               // answered
            ];
            for d in &sends {
                sock.send_to(d, to).await.unwrap();
            }
            let mut got = Vec::new();
            for _ in 0..7 {
                let m = wire::decode(&recv_raw(&sock).await).unwrap();
                assert!(m.qr);
                got.push((m.id, m.rcode));
            }
            assert_eq!(
                got,
                vec![
                    (0x0b01, rcode::FORMERR),
                    (0x0b02, rcode::FORMERR),
                    (0x0b03, rcode::FORMERR),
                    (0x0b04, rcode::FORMERR),
                    (0x0b05, rcode::FORMERR),
                    (0x0b07, rcode::NOTIMP),
                    (0x0b08, rcode::NOERROR),
                ]
            );
            let stats = rig.server.shutdown().await;
            assert_eq!(
                (stats.formerr, stats.responses_ignored, stats.unanswerable),
                (5, 1, 1)
            );
        },
        "malformed",
    )
    .await;
}
