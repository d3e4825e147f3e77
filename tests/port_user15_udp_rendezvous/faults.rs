//! The server's limits and faults: the relay's size limit and rate, spoofed and malformed
//! datagrams, a server that never answers, two hundred peers at once, a room on ::1, and
//! a shutdown's fds and tasks.

use std::io::ErrorKind;
use std::time::Duration;

use overlap::net::UdpSocket;
use overlap::time;

use super::peer::{Peer, PeerConfig};
use super::proto::{encode_addr, Kind, Packet, MAX_DATAGRAM};
use super::server::{Config, Stats};
use super::support::{open_fds, run_in_child, settle, until, within};
use super::{joined, start_server, HANG, TOKEN};

#[overlap::test(start_paused = true)]
async fn the_relay_forwards_exact_bytes_and_drops_oversized_datagrams() {
    within(
        HANG,
        async {
            let server = start_server("127.0.0.1", Config::default()).await;
            let (a, _ad) = joined(&server, "relay").await;
            let (b, _bd) = joined(&server, "relay").await;
            let overhead = Packet::new(Kind::Relay, TOKEN, "relay", vec![])
                .encode()
                .len();
            let fits: Vec<u8> = (0..MAX_DATAGRAM - overhead).map(|i| i as u8).collect();
            a.relay(b"small").await.unwrap();
            a.relay(&fits).await.unwrap();
            // One byte over: cut to 1,201 by the server's buffer, so seen and dropped.
            a.relay(&[7; MAX_DATAGRAM + 1 - 12]).await.unwrap();
            // Far over: cut the same, dropped the same.
            a.relay(&[9; 4000]).await.unwrap();
            a.relay(b"after").await.unwrap();
            assert_eq!(b.next_relayed().await.unwrap(), b"small");
            // The relayed datagram's header is the same length: it fits b's buffer whole.
            assert_eq!(b.next_relayed().await.unwrap(), fits);
            assert_eq!(b.next_relayed().await.unwrap(), b"after");
            settle().await;
            assert!(b.try_relayed().is_none());
            assert!(a.try_relayed().is_none(), "not echoed to the sender");
            let s = server.shutdown().await;
            assert_eq!((s.relayed, s.oversized, s.malformed), (3, 2, 0));
        },
        "relay sizes",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn the_relay_rate_is_limited_per_room_and_refills_with_time() {
    within(
        HANG,
        async {
            let cfg = Config {
                relay_per_sec: 5,
                relay_burst: 10,
                ..Config::default()
            };
            let server = start_server("127.0.0.1", cfg).await;
            let (a, _ad) = joined(&server, "busy").await;
            let (b, _bd) = joined(&server, "busy").await;
            let (c, _cd) = joined(&server, "calm").await;
            let (d, _dd) = joined(&server, "calm").await;
            // The clock stands still while the burst goes: exactly the burst passes.
            for i in 0..25u8 {
                a.relay(&[i]).await.unwrap();
            }
            settle().await;
            let mut got = vec![];
            while let Some(p) = b.try_relayed() {
                got.extend(p);
            }
            assert_eq!(got, (0..10).collect::<Vec<u8>>());
            assert_eq!(server.stats().rate_limited, 15);
            // Another room has its own bucket.
            c.relay(b"calm room").await.unwrap();
            assert_eq!(d.next_relayed().await.unwrap(), b"calm room");
            // A second on: five more.
            time::advance(Duration::from_secs(1)).await;
            for i in 100..110u8 {
                a.relay(&[i]).await.unwrap();
            }
            settle().await;
            let mut got = vec![];
            while let Some(p) = b.try_relayed() {
                got.extend(p);
            }
            assert_eq!(got, [100, 101, 102, 103, 104]);
            let s = server.shutdown().await;
            assert_eq!((s.relayed, s.rate_limited), (16, 20));
        },
        "rate",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn spoofed_and_malformed_datagrams_are_counted_and_ignored() {
    within(
        HANG,
        async {
            let server = start_server("127.0.0.1", Config::default()).await;
            let (a, _ad) = joined(&server, "room").await;
            let (b, _bd) = joined(&server, "room").await;
            let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let send = |d: Vec<u8>| {
                let (s, to) = (&stranger, server.addr);
                async move { s.send_to(&d, to).await.unwrap() }
            };
            let port = 0u16.to_be_bytes().to_vec();
            // Malformed: empty, short, a bad magic byte, no room name, a room name cut
            // short, a name too long, not UTF-8, a register without its port, a keepalive
            // with a body, an intro with a bad address.
            let mut bad_magic = Packet::new(Kind::Keepalive, TOKEN, "room", vec![]).encode();
            bad_magic[0] = 0x5A;
            let mut not_utf8 = Packet::new(Kind::Keepalive, TOKEN, "ro", vec![]).encode();
            not_utf8[7] = 0xFF;
            let mut cut_name = Packet::new(Kind::Keepalive, TOKEN, "room", vec![]).encode();
            cut_name.truncate(9);
            let malformed = vec![
                vec![],
                vec![0xA5, 1, 0],
                bad_magic,
                Packet::new(Kind::Keepalive, TOKEN, "", vec![]).encode(),
                cut_name,
                Packet::new(Kind::Register, TOKEN, &"x".repeat(33), port.clone()).encode(),
                not_utf8,
                Packet::new(Kind::Register, TOKEN, "room", vec![]).encode(),
                Packet::new(Kind::Keepalive, TOKEN, "room", vec![1]).encode(),
                Packet::new(Kind::Intro, TOKEN, "room", vec![5, 1, 2]).encode(),
            ];
            let n_malformed = malformed.len() as u64;
            for d in malformed {
                send(d).await;
            }
            // Unknown kinds.
            for kind in [0u8, 4, 99, 255] {
                let mut d = Packet::new(Kind::Keepalive, TOKEN, "room", vec![]).encode();
                d[1] = kind;
                send(d).await;
            }
            // A wrong token: a registration refused; a keepalive and a relay from a member
            // with a wrong token, and from a stranger with the right one; a server's own
            // kinds sent to it.
            send(Packet::new(Kind::Register, TOKEN + 1, "room", port.clone()).encode()).await;
            a.socket
                .send(&Packet::new(Kind::Relay, TOKEN + 1, "room", b"x".to_vec()).encode())
                .await
                .unwrap();
            send(Packet::new(Kind::Keepalive, TOKEN, "room", vec![]).encode()).await;
            send(Packet::new(Kind::Relay, TOKEN, "room", b"spoof".to_vec()).encode()).await;
            send(Packet::new(Kind::Relay, TOKEN, "nowhere", b"spoof".to_vec()).encode()).await;
            let intro = encode_addr(stranger.local_addr().unwrap());
            send(Packet::new(Kind::Intro, TOKEN, "room", intro).encode()).await;
            // The room goes on: a relay from a gets to b, and nothing else did.
            a.relay(b"real").await.unwrap();
            assert_eq!(b.next_relayed().await.unwrap(), b"real");
            settle().await;
            assert!(b.try_relayed().is_none() && b.try_intro().is_some());
            assert!(b.try_intro().is_none(), "b was introduced to a only");
            assert_eq!(server.members("room").len(), 2);
            let s = server.shutdown().await;
            let want = Stats {
                registered: 2,
                intros_sent: 2,
                relayed: 1,
                malformed: n_malformed,
                unknown_kind: 4,
                bad_token: 1,
                spoofed: 5,
                ..Stats::default()
            };
            assert_eq!(s, want);
        },
        "spoofed and malformed",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn a_server_that_never_answers_times_the_registration_out() {
    within(
        HANG,
        async {
            let mute = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let cfg = PeerConfig::default();
            let start = time::now();
            let err = Peer::join(mute.local_addr().unwrap(), "r", TOKEN, 0, cfg.clone())
                .await
                .err()
                .unwrap();
            assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
            assert_eq!(time::now() - start, cfg.retry * cfg.attempts);
            let mut buf = [0u8; 64];
            for _ in 0..cfg.attempts {
                let (n, _) = mute.recv_from(&mut buf).await.unwrap();
                assert_eq!(buf[1], Kind::Register as u8, "{:?}", &buf[..n]);
            }
            assert!(
                mute.try_recv_from(&mut buf).is_err(),
                "exactly the attempts"
            );
            // A join given up from outside (a timeout around it) takes its task along.
            let tasks = overlap::metrics().tasks_alive;
            let cut = time::timeout(
                Duration::from_millis(1500),
                Peer::join(mute.local_addr().unwrap(), "r", TOKEN, 0, cfg),
            )
            .await;
            assert!(cut.is_err());
            until(|| overlap::metrics().tasks_alive == tasks, "the task gone").await;
        },
        "mute server",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn a_room_on_ipv6_loopback() {
    within(
        HANG,
        async {
            let server = start_server("::1", Config::default()).await;
            let (a, a_direct) = joined(&server, "v6").await;
            let (b, b_direct) = joined(&server, "v6").await;
            let b_addr = a.next_intro().await.unwrap();
            assert!(b_addr.is_ipv6());
            assert_eq!(b_addr, b_direct.local_addr().unwrap());
            assert_eq!(b.next_intro().await, Some(a_direct.local_addr().unwrap()));
            a_direct.connect(b_addr).await.unwrap();
            b_direct
                .connect(a_direct.local_addr().unwrap())
                .await
                .unwrap();
            a_direct.send(b"over ::1").await.unwrap();
            let mut buf = [0u8; 32];
            let n = b_direct.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"over ::1");
            // An IPv4 address for the IPv6 socket is refused, not sent.
            let err = a_direct.connect("127.0.0.1:9").await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
            b.relay(b"relayed over ::1").await.unwrap();
            assert_eq!(a.next_relayed().await.unwrap(), b"relayed over ::1");
            let s = server.shutdown().await;
            assert_eq!((s.registered, s.intros_sent, s.relayed), (2, 2, 1));
        },
        "::1",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn two_hundred_peers_register_at_once_in_a_hundred_rooms() {
    within(
        HANG,
        async {
            let server = start_server("127.0.0.1", Config::default()).await;
            let addr = server.addr;
            let joins: Vec<_> = (0..200)
                .map(|i| async move {
                    let room = format!("room-{}", i / 2);
                    Peer::join(addr, &room, TOKEN + i / 2, 0, PeerConfig::default()).await
                })
                .collect();
            let peers: Vec<Peer> = futures_util::future::join_all(joins)
                .await
                .into_iter()
                .map(Result::unwrap)
                .collect();
            settle().await;
            // A lost answer is a registration sent again: counted, never a second member.
            let s = server.stats();
            assert_eq!((s.registered, s.intros_sent), (200, 200));
            assert_eq!(server.rooms(), 100);
            for pair in peers.chunks(2) {
                let (a, b) = (&pair[0], &pair[1]);
                assert_eq!(a.try_intro(), Some(b.socket.local_addr().unwrap()));
                assert_eq!(b.try_intro(), Some(a.socket.local_addr().unwrap()));
                assert!(a.try_intro().is_none() && b.try_intro().is_none());
            }
            drop(peers);
            server.shutdown().await;
        },
        "two hundred",
    )
    .await;
}

#[test]
fn a_shutdown_leaves_no_fd_and_no_task() {
    run_in_child("faults::a_shutdown_leaves_no_fd_and_no_task", || {
        let fds = open_fds();
        let rt = overlap::Runtime::builder()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let tasks = overlap::metrics().tasks_alive;
            let server = start_server("127.0.0.1", Config::default()).await;
            let (a, a_direct) = joined(&server, "bye").await;
            let (b, b_direct) = joined(&server, "bye").await;
            let b_addr = a.next_intro().await.unwrap();
            a_direct.connect(b_addr).await.unwrap();
            a_direct.send(b"last words").await.unwrap();
            a.relay(b"relayed").await.unwrap();
            assert_eq!(b.next_relayed().await.unwrap(), b"relayed");
            time::sleep(Duration::from_secs(30)).await;
            let s = server.shutdown().await;
            assert!(s.keepalives >= 18, "{s:?}");
            // The server's socket is closed: the peers' next keepalives are refused.
            until(|| a.stats.server_refused.get() > 0, "a refused").await;
            drop((a, b, a_direct, b_direct));
            settle().await;
            assert_eq!(overlap::metrics().tasks_alive, tasks);
        });
        drop(rt);
        assert_eq!(open_fds(), fds, "every socket and the runtime's own fds");
    });
}
