//! The TCP side (idle timeout, client cap, a peer vanishing inside a message, FORMERR on a
//! connection that goes on), the zone's reload while queries fly, and a clean shutdown
//! over ::1.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::TcpStream;
use overlap::sync::oneshot;
use overlap::time;

use crate::client::{exchange_tcp, Resolver};
use crate::rig::{query, zone_text, Rig, HANG};
use crate::server::Config;
use crate::support::{until, within};
use crate::wire::{self, rcode, ty, Message, RData};

async fn ask_tcp(stream: &mut TcpStream, id: u16, name: &str, qtype: u16) -> Message {
    let raw = exchange_tcp(stream, &wire::encode(&query(id, name, qtype, None)))
        .await
        .unwrap();
    let m = wire::decode(&raw).unwrap();
    assert_eq!(m.id, id);
    m
}

fn version_of(m: &Message) -> u8 {
    match &m.answers.last().expect("an answer").data {
        RData::A(ip) => ip.octets()[3],
        RData::Txt(s) => s[0][1] - b'0',
        other => panic!("{other:?}"),
    }
}

#[overlap::test(start_paused = true)]
async fn a_tcp_client_is_closed_after_the_idle_timeout() {
    within(
        HANG,
        async {
            let cfg = Config {
                tcp_idle: Duration::from_secs(10),
                ..Config::default()
            };
            let rig = Rig::start("127.0.0.1", cfg).await;
            let mut c = TcpStream::connect(rig.addr()).await.unwrap();
            // Each query restarts the idle timer: 6 s apart, twice, still served.
            for id in 1..=3 {
                let m = ask_tcp(&mut c, id, "web.example.test", ty::A).await;
                assert_eq!(m.answers.len(), 1);
                time::advance(Duration::from_secs(6)).await;
            }
            let start = time::Instant::now();
            let mut buf = [0; 16];
            assert_eq!(c.read(&mut buf).await.unwrap(), 0, "closed by the server");
            assert_eq!(time::Instant::now() - start, Duration::from_secs(4));
            // One that never says anything: closed the same way.
            let mut silent = TcpStream::connect(rig.addr()).await.unwrap();
            assert_eq!(silent.read(&mut buf).await.unwrap(), 0);
            let stats = rig.server.stats.borrow().clone();
            assert_eq!(
                (stats.tcp_idle_closed, stats.tcp_live, stats.tcp_queries),
                (2, 0, 3)
            );
            rig.server.shutdown().await;
        },
        "idle",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn tcp_clients_over_the_cap_are_closed_at_once() {
    within(
        HANG,
        async {
            let cfg = Config {
                max_tcp_clients: 2,
                ..Config::default()
            };
            let rig = Rig::start("127.0.0.1", cfg).await;
            let mut c1 = TcpStream::connect(rig.addr()).await.unwrap();
            let mut c2 = TcpStream::connect(rig.addr()).await.unwrap();
            ask_tcp(&mut c1, 1, "web.example.test", ty::A).await;
            ask_tcp(&mut c2, 2, "web.example.test", ty::A).await;
            let mut c3 = TcpStream::connect(rig.addr()).await.unwrap();
            let mut buf = [0; 16];
            assert_eq!(
                c3.read(&mut buf).await.unwrap(),
                0,
                "refused: closed unread"
            );
            assert_eq!(rig.server.stats.borrow().tcp_refused, 1);
            // One leaves: its slot is free again.
            drop(c1);
            let stats = rig.server.stats.clone();
            until(|| stats.borrow().tcp_live == 1, "c1's task to end").await;
            let mut c4 = TcpStream::connect(rig.addr()).await.unwrap();
            let m = ask_tcp(&mut c4, 4, "www.example.test", ty::A).await;
            assert_eq!(m.answers.len(), 2);
            ask_tcp(&mut c2, 5, "web.example.test", ty::AAAA).await;
            let stats = rig.server.shutdown().await;
            assert_eq!(
                (stats.tcp_accepted, stats.tcp_refused, stats.tcp_live),
                (3, 1, 0)
            );
        },
        "cap",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn a_peer_vanishing_mid_message_and_garbage_over_tcp() {
    within(
        HANG,
        async {
            let rig = Rig::start("127.0.0.1", Config::default()).await;
            // 100 bytes announced, 10 sent, then gone.
            let mut cut = TcpStream::connect(rig.addr()).await.unwrap();
            cut.write_all(&[0, 100]).await.unwrap();
            cut.write_all(&[0xab; 10]).await.unwrap();
            drop(cut);
            let stats = rig.server.stats.clone();
            until(|| stats.borrow().tcp_cut == 1, "the cut to be seen").await;
            // Garbage with an id: FORMERR, and the connection goes on.
            let mut c = TcpStream::connect(rig.addr()).await.unwrap();
            // Two writes with no answer between: without this, Nagle holds the second
            // back for the delayed ACK, and the paused clock reaches the idle timeout.
            c.set_nodelay(true).unwrap();
            let mut looped = wire::encode(&query(0x0c01, "x", ty::A, None))[..12].to_vec();
            looped.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
            let m = wire::decode(&exchange_tcp(&mut c, &looped).await.unwrap()).unwrap();
            assert_eq!((m.id, m.rcode, m.qr), (0x0c01, rcode::FORMERR, true));
            // A response sent to the server: not answered; the next query is.
            let mut response = query(0x0c02, "web.example.test", ty::A, None);
            response.qr = true;
            let bytes = wire::encode(&response);
            let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&bytes);
            c.write_all(&framed).await.unwrap();
            let m = ask_tcp(&mut c, 0x0c03, "big.example.test", ty::TXT).await;
            assert_eq!((m.tc, m.answers.len()), (false, 12));
            let stats = rig.server.shutdown().await;
            assert_eq!(
                (stats.tcp_cut, stats.formerr, stats.responses_ignored),
                (1, 1, 1)
            );
            assert_eq!((stats.tcp_queries, stats.tcp_live), (1, 0));
        },
        "vanishing",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn a_reload_swaps_the_zone_whole_while_queries_fly() {
    within(
        HANG,
        async {
            let rig = Rig::start("127.0.0.1", Config::default()).await;
            let mut before = TcpStream::connect(rig.addr()).await.unwrap();
            let m = ask_tcp(&mut before, 1, "version.example.test", ty::TXT).await;
            assert_eq!(version_of(&m), 1);
            // A task querying all along: the answer's address is the zone's version.
            let seen = Rc::new(RefCell::new(Vec::new()));
            let (started, go) = oneshot::channel();
            let querier = {
                let (seen, addr) = (seen.clone(), rig.addr());
                overlap::spawn(async move {
                    let r = Resolver::new(addr).await.unwrap();
                    let mut started = Some(started);
                    for i in 0..60 {
                        let m = r.query("www.example.test", ty::A).await.unwrap();
                        assert_eq!((m.rcode, m.answers.len()), (rcode::NOERROR, 2));
                        seen.borrow_mut().push(version_of(&m));
                        if i == 5 {
                            let _ = started.take().unwrap().send(());
                        }
                    }
                })
            };
            go.await.unwrap();
            rig.write_zone(&zone_text(2, 2));
            assert_eq!(rig.server.reload().await, Ok(2));
            // Once reloaded, every query sees the new zone, a connection from before too.
            let m = ask_tcp(&mut before, 2, "version.example.test", ty::TXT).await;
            assert_eq!(version_of(&m), 2);
            querier.await.unwrap();
            let seen = seen.borrow().clone();
            assert_eq!(seen.len(), 60);
            let switch = seen
                .iter()
                .position(|&v| v == 2)
                .expect("the new zone seen");
            assert!(switch >= 6, "{seen:?}");
            assert!(seen[..switch].iter().all(|&v| v == 1), "{seen:?}");
            assert!(
                seen[switch..].iter().all(|&v| v == 2),
                "never old after new: {seen:?}"
            );
            // A broken file, then a missing one: the zone stays, the error says where.
            rig.write_zone(&(zone_text(3, 3) + "oops IN A 300.1.1.1\n"));
            let err = rig.server.reload().await.unwrap_err();
            let line = zone_text(3, 3).lines().count() + 1;
            assert!(err.contains(&format!("line {line}: bad IPv4")), "{err}");
            std::fs::remove_file(rig.dir.join("example.test.zone")).unwrap();
            assert!(rig.server.reload().await.is_err());
            let m = ask_tcp(&mut before, 3, "version.example.test", ty::TXT).await;
            assert_eq!(version_of(&m), 2);
            rig.write_zone(&zone_text(4, 4));
            assert_eq!(rig.server.reload().await, Ok(4));
            let m = ask_tcp(&mut before, 4, "web.example.test", ty::A).await;
            assert_eq!(version_of(&m), 4);
            let stats = rig.server.shutdown().await;
            assert_eq!((stats.reloads, stats.reload_failures), (2, 2));
        },
        "reload",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn over_ipv6_a_shutdown_ends_every_task_and_closes_the_sockets() {
    within(
        HANG,
        async {
            let rig = Rig::start("::1", Config::default()).await;
            assert!(rig.addr().is_ipv6());
            let r = Resolver::new(rig.addr()).await.unwrap();
            let m = r.query("web.example.test", ty::AAAA).await.unwrap();
            assert_eq!(m.answers.len(), 1);
            let m = r.query("big.example.test", ty::TXT).await.unwrap();
            assert_eq!((m.answers.len(), r.stats().tcp_fallbacks), (12, 1));
            // A client connected and silent when the server stops.
            let mut idle = TcpStream::connect(rig.addr()).await.unwrap();
            let stats = rig.server.stats.clone();
            let accepted = || {
                let s = stats.borrow();
                (s.tcp_accepted, s.tcp_live) == (2, 1)
            };
            until(accepted, "the idle client accepted, the fallback's gone").await;
            let (udp, listener) = (rig.server.udp.clone(), rig.server.listener.clone());
            let Rig { dir, server } = rig;
            let stats = server.shutdown().await;
            assert_eq!((stats.tcp_live, stats.tcp_accepted), (0, 2));
            assert!(
                udp.upgrade().is_none() && listener.upgrade().is_none(),
                "sockets closed"
            );
            let mut buf = [0; 4];
            assert_eq!(idle.read(&mut buf).await.unwrap(), 0);
            // Nothing listens on the port any more.
            assert!(TcpStream::connect(r.server).await.is_err());
            let path = dir.path().to_path_buf();
            drop(dir);
            assert!(!path.exists());
        },
        "ipv6",
    )
    .await;
}
