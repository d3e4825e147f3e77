//! The aggregator against a backend that comes and goes, under load, at shutdown, over
//! IPv6, and what a run leaves behind.

use std::collections::BTreeMap;

use overlap::net::TcpListener;

use super::backend::CHUNK;
use super::client::{send, sender, split, Admin, Backend, Graphite};
use super::server::{Config, Server};
use super::support::{open_fds, run_in_child, until, within};
use super::{expect, flush, received, Rig, HANG};

#[overlap::test(start_paused = true)]
async fn a_backend_down_then_up_gets_the_held_lines_bounded_with_drops_counted() {
    within(
        HANG,
        async {
            // A port nothing listens on, for now.
            let addr = Backend::bind("127.0.0.1:0").await.addr;
            let mut config = Config::new(addr);
            config.outbox = 5;
            let server = Server::start(config).await.unwrap();
            let s = sender().await;
            // Three windows of three lines each while the backend is down: nine lines, five
            // kept, the four oldest dropped.
            for w in 1..=3 {
                send(&s, server.udp, format!("w{w}a:1|c\nw{w}b:1|c\nw{w}c:1|c")).await;
                received(&server, w).await;
                flush(&server).await;
            }
            let mut admin = Admin::connect(server.admin).await;
            let st = admin.stats().await;
            assert_eq!((st["buffered"], st["dropped"], st["connects"]), (5, 4, 0));
            assert!(st["connect_failures"] >= 1);
            // Up again: the retry (with backoff) connects and delivers the five kept.
            let backend = TcpListener::bind(addr).await.unwrap();
            let (stream, _) = backend.accept().await.unwrap();
            let mut graphite = Graphite::new(stream);
            let got = graphite.read(5).await;
            let names: Vec<&str> = got.keys().map(|k| k.as_str()).collect();
            assert_eq!(
                names,
                [
                    "counters.w2b",
                    "counters.w2c",
                    "counters.w3a",
                    "counters.w3b",
                    "counters.w3c"
                ]
            );
            let st = admin.stats().await;
            assert_eq!((st["buffered"], st["dropped"], st["connects"]), (0, 4, 1));
            assert!(server.shutdown().await);
            assert!(graphite.rest().await.is_empty());
        },
        "the backend coming up",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn a_backend_closing_mid_flush_gets_the_cut_chunk_again() {
    within(
        HANG,
        async {
            let backend = Backend::with_small_window().await;
            let mut rig = Rig::start_with(backend, |c| c.send_buffer = Some(4096)).await;
            let s = sender().await;
            // Eight thousand counters: a flush of about 200 KB, in many chunks, far more
            // than the socket buffers hold.
            const N: usize = 8000;
            for d in 0..(N / 50) {
                let lines: Vec<String> =
                    (0..50).map(|i| format!("m{:05}:1|c", d * 50 + i)).collect();
                send(&s, rig.server.udp, lines.join("\n")).await;
                rig.received(d as u64 + 1).await;
            }
            rig.flush().await;
            // A real clock while the bulk moves: with a window this small the kernel may
            // hold a window update back for its delayed-ACK timer, real milliseconds
            // during which a paused clock would jump to the hang guard.
            overlap::time::resume();
            // The backend reads a few lines and goes, with the rest unread.
            for _ in 0..10 {
                rig.graphite.line().await.unwrap();
            }
            drop(rig.graphite);
            let mut again = rig.backend.accept().await;
            // The second connection carries everything from where the first was cut to the
            // last counter, each line whole.
            let mut seen = BTreeMap::new();
            let mut first = None;
            while !seen.contains_key(&format!("counters.m{:05}", N - 1)) {
                let line = again.line().await.expect("the rest of the flush");
                let (name, value) = split(&line);
                assert_eq!(value, 1.0, "{line}");
                first.get_or_insert(name.clone());
                seen.insert(name, value);
            }
            let first: usize = first.unwrap()["counters.m".len()..].parse().unwrap();
            // A chunk is taken off only once written whole: the second connection starts
            // at a chunk's first line (the lines read first may come again: at least once).
            assert_eq!(first % CHUNK, 0, "{first}");
            assert_eq!(seen.len(), N - first, "from {first} on, each once");
            let mut admin = Admin::connect(rig.server.admin).await;
            let st = admin.stats().await;
            assert_eq!(
                (st["connects"], st["lost_connections"], st["buffered"]),
                (2, 1, 0)
            );
            // The next flush goes out on the new connection.
            overlap::time::pause();
            send(&s, rig.server.udp, "after:1|c").await;
            received(&rig.server, (N / 50) as u64 + 1).await;
            flush(&rig.server).await;
            assert_eq!(again.read(1).await, expect(&[("counters.after", 1.0)]));
            assert!(rig.server.shutdown().await);
        },
        "the backend closing",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn three_thousand_datagrams_from_five_sockets_are_all_counted() {
    within(
        HANG,
        async {
            let mut rig = Rig::start(|_| {}).await;
            let mut senders = Vec::new();
            for _ in 0..5 {
                senders.push(sender().await);
            }
            // In rounds, each within the receive buffer: UDP drops past a full one.
            const ROUNDS: u64 = 60;
            const EACH: u64 = 10;
            for round in 0..ROUNDS {
                for (i, s) in senders.iter().enumerate() {
                    for n in 0..EACH {
                        let d = format!("c{i}:1|c\nall:2|c\nlat:{n}|ms\nu:{}|s", round % 7);
                        send(s, rig.server.udp, d).await;
                    }
                }
                rig.received((round + 1) * 5 * EACH).await;
            }
            rig.flush().await;
            let got = rig.graphite.read(5 + 4 + 1 + 1).await;
            let total = (ROUNDS * 5 * EACH) as f64;
            for i in 0..5 {
                assert_eq!(got[&format!("counters.c{i}")], total / 5.0);
            }
            assert_eq!(got["counters.all"], 2.0 * total);
            assert_eq!(got["timers.lat.count"], total);
            assert_eq!(got["timers.lat.mean"], 4.5);
            assert_eq!(got["timers.lat.p90"], 8.0);
            assert_eq!(got["timers.lat.upper"], 9.0);
            assert_eq!(got["sets.u.count"], 7.0);
            assert_eq!(rig.server.stats().bad_lines.get(), 0);
            assert!(rig.server.shutdown().await);
        },
        "the load",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn a_shutdown_flushes_the_last_window_and_ends_every_task() {
    within(
        HANG,
        async {
            let mut rig = Rig::start(|_| {}).await;
            let s = sender().await;
            send(&s, rig.server.udp, "last:3|c\nlevel:9|g").await;
            rig.received(1).await;
            let mut admin = Admin::connect(rig.server.admin).await;
            assert_eq!(admin.ask("counters").await, ["last 3"]);
            // No window has passed: only the shutdown's flush sends them.
            assert!(rig.server.shutdown().await);
            let rest = rig.graphite.rest().await;
            let got: BTreeMap<String, f64> = rest.iter().map(|l| split(l)).collect();
            assert_eq!(
                got,
                expect(&[("counters.last", 3.0), ("gauges.level", 9.0)])
            );
            assert!(admin.ended().await);
            assert_eq!(rig.server.stats().flushes.get(), 1);
        },
        "the shutdown",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn the_same_over_ipv6_loopback() {
    within(
        HANG,
        async {
            let backend = Backend::bind("[::1]:0").await;
            let server = Server::start(Config::new(backend.addr)).await.unwrap();
            assert!(server.udp.is_ipv6() && server.admin.is_ipv6());
            let mut graphite = backend.accept().await;
            let s = overlap::net::UdpSocket::bind("[::1]:0").await.unwrap();
            send(&s, server.udp, "v6:1|c").await;
            until(|| server.stats().datagrams.get() == 1, "the datagram").await;
            let mut admin = Admin::connect(server.admin).await;
            assert_eq!(admin.ask("counters").await, ["v6 1"]);
            assert!(server.shutdown().await);
            assert_eq!(graphite.read(1).await, expect(&[("counters.v6", 1.0)]));
        },
        "IPv6",
    )
    .await;
}

#[test]
fn a_whole_run_leaves_no_fd_and_no_task() {
    const NAME: &str = "traffic::a_whole_run_leaves_no_fd_and_no_task";
    run_in_child(NAME, || {
        overlap::block_on(within(
            HANG,
            async {
                overlap::time::pause();
                let fds = open_fds();
                let tasks = overlap::metrics().tasks_alive;
                let mut rig = Rig::start(|c| c.outbox = 3).await;
                let s = sender().await;
                send(&s, rig.server.udp, "a:1|c\nbad\nb:1|ms").await;
                rig.received(1).await;
                let mut admin = Admin::connect(rig.server.admin).await;
                assert_eq!(admin.ask("counters").await, ["a 1"]);
                rig.flush().await;
                // Five lines into an outbox of three: the two oldest dropped.
                rig.graphite.read(3).await;
                // The backend goes; the next window waits in the outbox.
                drop(rig.graphite);
                send(&s, rig.server.udp, "c:1|c").await;
                received(&rig.server, 2).await;
                flush(&rig.server).await;
                let mut again = rig.backend.accept().await;
                assert_eq!(again.read(1).await, expect(&[("counters.c", 1.0)]));
                assert!(rig.server.shutdown().await);
                assert!(again.rest().await.is_empty());
                assert!(admin.ended().await);
                drop((rig.server, rig.backend, again, admin, s));
                until(|| overlap::metrics().tasks_alive == tasks, "the tasks gone").await;
                until(|| open_fds() == fds, "the fds back").await;
            },
            "the whole run",
        ));
    });
}
