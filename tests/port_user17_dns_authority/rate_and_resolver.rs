//! The rate limiter over UDP (the burst answered, then every second query over the rate
//! slipped and the rest dropped, the bucket refilled on the paused clock), and the stub
//! resolver against it (past a drop and a slip, through TCP) and against a silent server
//! (its retries, and forged answers ignored).

use std::io::ErrorKind;
use std::time::Duration;

use overlap::time;

use crate::client::{ClientStats, Resolver};
use crate::limit::RateLimit;
use crate::rig::{query, raw_exchange, raw_socket, recv_raw, Rig, HANG};
use crate::server::Config;
use crate::support::within;
use crate::wire::{self, rcode, ty, Message};

#[overlap::test(start_paused = true)]
async fn over_the_rate_every_second_query_slips_and_the_rest_are_dropped() {
    within(
        HANG,
        async {
            let cfg = Config {
                rate: Some(RateLimit {
                    per_second: 5,
                    burst: 5,
                }),
                ..Config::default()
            };
            let rig = Rig::start("127.0.0.1", cfg).await;
            let (sock, to) = (raw_socket(rig.addr()).await, rig.addr());
            let send = |id: u16| wire::encode(&query(id, "web.example.test", ty::A, None));
            for id in 1..=10 {
                sock.send_to(&send(id), to).await.unwrap();
            }
            // No time passes while they are sent: five answered, then 7 and 9 slip.
            let mut got = Vec::new();
            while let Ok(raw) = time::timeout(Duration::from_secs(1), recv_raw(&sock)).await {
                let m = wire::decode(&raw).unwrap();
                got.push((m.id, m.tc, m.answers.len()));
            }
            assert_eq!(
                got,
                vec![
                    (1, false, 1),
                    (2, false, 1),
                    (3, false, 1),
                    (4, false, 1),
                    (5, false, 1),
                    (7, true, 0),
                    (9, true, 0)
                ]
            );
            // The timeout's second refilled five tokens.
            for id in 11..=16 {
                sock.send_to(&send(id), to).await.unwrap();
            }
            let mut ids = Vec::new();
            while let Ok(raw) = time::timeout(Duration::from_secs(1), recv_raw(&sock)).await {
                ids.push(wire::decode(&raw).unwrap().id);
            }
            assert_eq!(
                ids,
                vec![11, 12, 13, 14, 15, 16],
                "16: the sixth over-limit query slips"
            );
            // Another source has its own bucket.
            let other = raw_socket(to).await;
            let m = wire::decode(&raw_exchange(&other, to, &send(99)).await).unwrap();
            assert_eq!((m.id, m.tc), (99, false));
            let stats = rig.server.shutdown().await;
            assert_eq!(
                (stats.udp_queries, stats.rate_dropped, stats.rate_slipped),
                (17, 3, 3)
            );
        },
        "rate",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn the_resolver_gets_past_a_drop_and_a_slip_through_tcp() {
    within(
        HANG,
        async {
            let cfg = Config {
                rate: Some(RateLimit {
                    per_second: 1,
                    burst: 1,
                }),
                ..Config::default()
            };
            let rig = Rig::start("127.0.0.1", cfg).await;
            let mut r = Resolver::new(rig.addr()).await.unwrap();
            r.timeout = Duration::from_millis(100);
            assert_eq!(
                r.query("web.example.test", ty::A)
                    .await
                    .unwrap()
                    .answers
                    .len(),
                1
            );
            // Over the rate: dropped, the retry 100 ms later slips, TCP answers.
            let m = r.query("www.example.test", ty::A).await.unwrap();
            assert_eq!((m.tc, m.answers.len()), (false, 2));
            assert_eq!(
                r.stats(),
                ClientStats {
                    udp_sent: 3,
                    udp_timeouts: 1,
                    tcp_fallbacks: 1,
                    ignored: 0
                }
            );
            let stats = rig.server.shutdown().await;
            assert_eq!(
                (stats.rate_dropped, stats.rate_slipped, stats.tcp_queries),
                (1, 1, 1)
            );
        },
        "resolver past the limiter",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn the_resolver_retries_a_silent_server_and_ignores_forgeries() {
    within(
        HANG,
        async {
            let silent = raw_socket("127.0.0.1:53".parse().unwrap()).await;
            let r = Resolver::new(silent.local_addr().unwrap()).await.unwrap();
            let start = time::Instant::now();
            let (res, sent) = overlap::join!(r.query("web.example.test", ty::A), async {
                let mut sent = Vec::new();
                for _ in 0..3 {
                    sent.push(recv_raw(&silent).await);
                }
                sent
            });
            assert_eq!(res.unwrap_err().kind(), ErrorKind::TimedOut);
            assert!(
                sent.iter().all(|d| *d == sent[0]),
                "the same query each time"
            );
            assert_eq!(
                time::Instant::now() - start,
                Duration::from_secs(1 + 2 + 4),
                "virtual"
            );
            assert_eq!(
                r.stats(),
                ClientStats {
                    udp_sent: 3,
                    udp_timeouts: 3,
                    ..ClientStats::default()
                }
            );
            // Forged answers: a stranger with the right id, the server with the wrong one,
            // then the real answer.
            let stranger = raw_socket(r.server).await;
            let (res, ()) = overlap::join!(r.query("web.example.test", ty::A), async {
                let q = wire::decode(&recv_raw(&silent).await).unwrap();
                let reply = |id, rcode| {
                    wire::encode(&Message {
                        id,
                        qr: true,
                        rcode,
                        questions: q.questions.clone(),
                        ..Message::default()
                    })
                };
                stranger
                    .send_to(&reply(q.id, rcode::REFUSED), r.local_addr())
                    .await
                    .unwrap();
                silent
                    .send_to(&reply(q.id ^ 1, rcode::REFUSED), r.local_addr())
                    .await
                    .unwrap();
                silent.send_to(b"\x00", r.local_addr()).await.unwrap();
                silent
                    .send_to(&reply(q.id, rcode::NXDOMAIN), r.local_addr())
                    .await
                    .unwrap();
            });
            assert_eq!(res.unwrap().rcode, rcode::NXDOMAIN);
            assert_eq!(r.stats().ignored, 3);
        },
        "silent",
    )
    .await;
}
