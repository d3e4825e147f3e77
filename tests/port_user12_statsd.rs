//! A user's StatsD-style metrics aggregator, sketched as one would for tokio with
//! tokio-util's `LinesCodec`, `CancellationToken` and `TaskTracker`, then written for
//! overlap by changing `tokio::` to `overlap::` and `tokio_util::` to `overlap::`: StatsD's
//! line format (`port_user12_statsd/parse.rs`), a flush window's aggregates rendered as
//! Graphite plaintext (`aggregate.rs`), the backend connection with its bounded outbox and
//! reconnects (`backend.rs`), the management port (`admin.rs`), the tasks that tie them
//! (`server.rs`), and the tests' backend, management client and senders (`client.rs`).
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! use futures::{SinkExt, StreamExt};
//! use tokio::time::{interval_at, Instant, MissedTickBehavior};
//! use tokio_util::codec::{Framed, LinesCodec, LinesCodecError};
//! use tokio_util::{sync::CancellationToken, task::TaskTracker};
//!
//! async fn receive(socket: UdpSocket, state: Rc<State>, max: usize, token: CancellationToken) {
//!     let mut buf = vec![0u8; max + 1];             // a datagram that fills it was cut
//!     loop {
//!         let n = tokio::select! {
//!             _ = token.cancelled() => return,
//!             r = socket.recv_from(&mut buf) => match r { Ok((n, _)) => n, Err(_) => continue },
//!         };
//!         if n > max { state.stats.oversized += 1; continue }
//!         let (samples, bad) = parse_datagram(&buf[..n]);   // bad lines counted, skipped
//!         for s in samples { state.metrics.borrow_mut().record(s) }
//!     }
//! }
//! async fn flush_loop(state: Rc<State>, every: Duration, token: CancellationToken) {
//!     let mut tick = interval_at(Instant::now() + every, every);
//!     tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
//!     loop {
//!         tokio::select! {
//!             _ = tick.tick() => flush(&state),
//!             _ = token.cancelled() => break,
//!         }
//!     }
//!     flush(&state);                                 // the last window goes out too
//!     state.link.outbox.borrow_mut().closing = true;
//!     state.link.wake.notify_one();
//! }
//! // the backend writer: connect with backoff, then write chunks of the outbox, each
//! // taken off once written whole, while a read watches for the backend going away
//! tokio::select! {
//!     r = wr.write_all(chunk.as_bytes()) => match r {
//!         Ok(()) => outbox.written(end),
//!         Err(_) => break,
//!     },
//!     n = rd.read(&mut peek) => if matches!(n, Ok(0) | Err(_)) { break },
//! }
//! // a management session
//! let mut lines = Framed::new(stream, LinesCodec::new_with_max_length(256));
//! match lines.next().await {
//!     Some(Err(LinesCodecError::MaxLineLengthExceeded)) => lines.send("ERROR too long").await?,
//!     Some(Ok(cmd)) => for line in answer(&state, &cmd) { lines.feed(line).await? },
//!     ..
//! }
//! // the server
//! tracker.spawn(receive(..)); tracker.spawn(flush_loop(..)); tracker.spawn(writer(..));
//! token.cancel(); tracker.close();
//! tokio::time::timeout(drain, tracker.wait()).await
//! ```
//!
//! The tests check, on a paused clock (each flush an `advance` of one window; the sockets
//! are real, on loopback): a known batch's exact aggregates (counters summed, gauges set
//! and moved by signed deltas, timers' count, mean, p90 and upper, sets' distinct members),
//! several metrics a datagram; sample rates scaling counters and timer counts; malformed
//! lines counted and skipped beside good ones in the same datagram, datagrams over the
//! maximum dropped whole (up to the largest IPv4 carries), no panic; a clock jump of five
//! windows flushing once (`MissedTickBehavior::Delay`); management commands and bad input
//! (an unknown command, `delete` without a name or of an unknown one, an empty line, a line
//! over the maximum, the session going on after each); a backend down at the start, then
//! up: the lines held meanwhile delivered, at most the outbox's bound, the oldest dropped
//! and counted; a backend closing in the middle of a large flush, the chunk cut resent
//! whole on the next connection; three thousand datagrams from five sockets, every one
//! counted; a shutdown flushing the last window to the backend and ending every task; the
//! same over `::1`; and no fd or task left after a run.
//!
//! What porting it found missing in overlap: nothing. Every call the tokio version makes
//! has an overlap counterpart under the same name: `UdpSocket::recv_from`/`send_to`,
//! `interval_at` with `MissedTickBehavior::Delay`, `select!`, `Notify`, `TcpStream`'s
//! `into_split`, `TcpSocket` with `set_send_buffer_size` (and `set_recv_buffer_size` for
//! the tests' backend), `Framed`/`FramedRead` with `LinesCodec` and its `LinesCodecError`
//! (an error's one `None` included), `CancellationToken`, `TaskTracker`, `timeout`, and
//! `time::pause`/`resume`/`advance` for the tests (`start_paused = true`). Not used here,
//! and so left alone: tokio's `UdpSocket::recv_buf_from` (into a `BufMut`) has no overlap
//! counterpart, a receiver reading into a `BytesMut` would call `recv_from` on a slice as
//! this one does.
//!
//! What the port changed, against tokio: the imports (`futures::{SinkExt, StreamExt}` are
//! `overlap::sink::SinkExt` and `overlap::stream::StreamExt`, tokio-util's codec and sync
//! types are under `overlap::codec`, `overlap::sync` and `overlap::task`); the shared state
//! is `Rc` with `Cell`s where tokio's `spawn` needs `Arc` and atomics (overlap's tasks
//! need not be `Send`); the writer closes its half with `close().await` (futures-io) where
//! tokio's calls `shutdown().await`; and, as with tokio-util, flushing a `Framed` over
//! `LinesCodec` names the item type (`SinkExt::<String>::flush`).
//!
//! What the port got wrong at first was the user's, and would be in tokio. The management
//! session ended at a line over the maximum: after `MaxLineLengthExceeded` a `Framed` gives
//! one `None` before it reads on (tokio-util's `FramedImpl` does the same), and the session
//! took that `None` for the client gone; it now goes on after an error's `None`. The
//! backend closing mid-flush lost lines: on loopback the kernel took a whole flush (500 KB,
//! twenty thousand counters) into the socket buffers before the backend had read ten lines,
//! the outbox was empty by then, and what the backend never read was gone (the second
//! connection got nothing, and the test waited for it); the writer now sets a small
//! `SO_SNDBUF` when asked (`Config::send_buffer`, through `TcpSocket`), so an unread
//! backend leaves the lines in the outbox, bounded and counted, and a chunk cut short goes
//! again whole (at least once). That test also resumes the clock while the bulk moves, as a
//! precaution rather than a failure seen: with a 4 KiB receive window the kernel may hold a
//! window update back for its delayed-ACK timer, real milliseconds during which a paused
//! clock would jump to the hang guard (the README's row on `pause` warns of the same for
//! Nagle's algorithm).

mod support;

#[path = "port_user12_statsd/admin.rs"]
mod admin;
#[path = "port_user12_statsd/aggregate.rs"]
mod aggregate;
#[path = "port_user12_statsd/backend.rs"]
mod backend;
#[path = "port_user12_statsd/client.rs"]
mod client;
#[path = "port_user12_statsd/parse.rs"]
mod parse;
#[path = "port_user12_statsd/server.rs"]
mod server;
#[path = "port_user12_statsd/traffic.rs"]
mod traffic;

use std::collections::BTreeMap;
use std::time::Duration;

use client::{send, sender, Admin, Backend, Graphite};
use parse::{parse_datagram, parse_line, BadLine, Kind};
use server::{Config, Server};
use support::{until, within};

/// A hang guard only (on the paused clock, it passes at once when nothing can happen).
const HANG: Duration = Duration::from_secs(600);

/// A backend, a server sending to it, and the backend's side of the first connection.
struct Rig {
    backend: Backend,
    server: Server,
    graphite: Graphite,
}

impl Rig {
    async fn start(tweak: impl FnOnce(&mut Config)) -> Rig {
        Rig::start_with(Backend::bind("127.0.0.1:0").await, tweak).await
    }

    async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Rig {
        let mut config = Config::new(backend.addr);
        tweak(&mut config);
        let server = Server::start(config).await.unwrap();
        let graphite = backend.accept().await;
        Rig {
            backend,
            server,
            graphite,
        }
    }

    async fn received(&self, n: u64) {
        received(&self.server, n).await
    }

    async fn flush(&self) {
        flush(&self.server).await
    }
}

/// Waits until the receiver has taken `n` datagrams in all.
async fn received(server: &Server, n: u64) {
    until(|| server.stats().datagrams.get() == n, "the datagrams").await;
}

/// Moves the clock one window on and waits for that flush.
async fn flush(server: &Server) {
    let flushes = server.stats().flushes.get();
    overlap::time::advance(Duration::from_secs(10)).await;
    until(|| server.stats().flushes.get() > flushes, "a flush").await;
}

fn expect(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|&(k, v)| (k.to_string(), v)).collect()
}

#[overlap::test(start_paused = true)]
async fn a_known_batch_gives_exact_aggregates() {
    within(
        HANG,
        async {
            let mut rig = Rig::start(|_| {}).await;
            let to = rig.server.udp;
            let s = sender().await;
            send(&s, to, "hits:1|c\nhits:2|c\nhits:3|c").await;
            send(&s, to, "temp:20|g\ntemp:+5|g\ntemp:-3|g\nload:0.5|g").await;
            let times = (1..=10).map(|v| format!("db:{}|ms", v * 10));
            send(&s, to, times.collect::<Vec<_>>().join("\n")).await;
            send(&s, to, "users:alice|s\nusers:bob|s\nusers:alice|s\n").await;
            rig.received(4).await;
            rig.flush().await;
            assert_eq!(
                rig.graphite.read(8).await,
                expect(&[
                    ("counters.hits", 6.0),
                    ("gauges.temp", 22.0),
                    ("gauges.load", 0.5),
                    ("timers.db.count", 10.0),
                    ("timers.db.mean", 55.0),
                    ("timers.db.p90", 90.0),
                    ("timers.db.upper", 100.0),
                    ("sets.users.count", 2.0),
                ])
            );
            // The next window: counters start again, a gauge keeps its value for a delta.
            send(&s, to, "hits:4|c\ntemp:+1|g").await;
            rig.received(5).await;
            rig.flush().await;
            assert_eq!(
                rig.graphite.read(2).await,
                expect(&[("counters.hits", 4.0), ("gauges.temp", 23.0)])
            );
            assert!(rig.server.shutdown().await);
            assert!(rig.graphite.rest().await.is_empty(), "an empty last window");
        },
        "the known batch",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn sample_rates_scale_counters_and_timer_counts() {
    within(
        HANG,
        async {
            let mut rig = Rig::start(|_| {}).await;
            let s = sender().await;
            // Ten sampled at a tenth stand for a hundred; a timer at a half counts double.
            for _ in 0..10 {
                send(&s, rig.server.udp, "req:1|c|@0.1").await;
            }
            send(&s, rig.server.udp, "lat:30|ms|@0.5\nlat:10|ms|@0.5").await;
            send(&s, rig.server.udp, "once:1|c|@1").await;
            rig.received(12).await;
            rig.flush().await;
            assert_eq!(
                rig.graphite.read(6).await,
                expect(&[
                    ("counters.req", 100.0),
                    ("counters.once", 1.0),
                    ("timers.lat.count", 4.0),
                    ("timers.lat.mean", 20.0),
                    ("timers.lat.p90", 30.0),
                    ("timers.lat.upper", 30.0),
                ])
            );
            assert!(rig.server.shutdown().await);
        },
        "the sample rates",
    )
    .await;
}

#[test]
fn bad_lines_are_errors_never_panics() {
    assert_eq!(
        parse_line("a.b-c_d:1.5|c").unwrap().kind,
        Kind::Counter(1.5)
    );
    assert_eq!(
        parse_line("g:-4|g").unwrap().kind,
        Kind::Gauge {
            value: -4.0,
            delta: true
        }
    );
    for (line, why) in [
        ("novalue", BadLine::NoValue),
        (":1|c", BadLine::BadName),
        ("sp ace:1|c", BadLine::BadName),
        ("x:1", BadLine::NoType),
        ("x:abc|c", BadLine::BadValue),
        ("x:NaN|ms", BadLine::BadValue),
        ("x:inf|g", BadLine::BadValue),
        ("x:|s", BadLine::BadValue),
        ("x:1|h", BadLine::UnknownType("h".into())),
        ("x:1|c|@0", BadLine::BadRate),
        ("x:1|c|@1.5", BadLine::BadRate),
        ("x:1|c|0.5", BadLine::BadRate),
        ("x:1|c|@0.5|more", BadLine::BadRate),
    ] {
        assert_eq!(parse_line(line), Err(why), "{line}");
    }
    let (samples, bad) = parse_datagram(b"a:1|c\r\n\xff\xfe:1|c\n\n|||\nb:2|ms\n");
    assert_eq!((samples.len(), bad), (2, 2));
    // Whatever the bytes, an answer.
    let mut x = 7u32;
    for len in 0..2000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let bytes: Vec<u8> = (0..len % 97)
            .map(|i| b":|@.c0-g\n9sm+"[((x >> (i % 24)) as usize + i) % 13])
            .collect();
        parse_datagram(&bytes);
    }
}

#[overlap::test(start_paused = true)]
async fn malformed_and_oversized_datagrams_are_counted_and_skipped() {
    within(
        HANG,
        async {
            let mut rig = Rig::start(|c| c.max_datagram = 512).await;
            let to = rig.server.udp;
            let s = sender().await;
            send(&s, to, "ok:1|c\ngarbage\nok:2|c\nbad:x|c\nworse:1|q").await;
            send(&s, to, b"\xff\xff\xff").await;
            send(&s, to, "").await;
            // Over the maximum: dropped whole, its good lines too.
            send(&s, to, "big:1|c\n".repeat(100)).await;
            // The largest datagram IPv4 carries, cut to the buffer by the receive.
            send(&s, to, vec![b'x'; 65_507]).await;
            // Exactly the maximum passes.
            let line = "fit:1|c\n";
            let mut exact = line.repeat(512 / line.len());
            exact.push_str(&"\n".repeat(512 - exact.len()));
            assert_eq!(exact.len(), 512);
            send(&s, to, &exact).await;
            rig.received(6).await;
            let stats = rig.server.stats();
            assert_eq!((stats.bad_lines.get(), stats.oversized.get()), (4, 2));
            rig.flush().await;
            assert_eq!(
                rig.graphite.read(2).await,
                expect(&[("counters.ok", 3.0), ("counters.fit", 64.0)])
            );
            let mut admin = Admin::connect(rig.server.admin).await;
            let st = admin.stats().await;
            assert_eq!(
                (st["datagrams"], st["samples"], st["bad_lines"]),
                (6, 66, 4)
            );
            assert!(rig.server.shutdown().await);
        },
        "the bad datagrams",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn a_clock_jump_of_five_windows_flushes_once() {
    within(
        HANG,
        async {
            let mut rig = Rig::start(|_| {}).await;
            let s = sender().await;
            send(&s, rig.server.udp, "n:1|c").await;
            rig.received(1).await;
            let flushes = rig.server.stats().flushes.get();
            overlap::time::advance(Duration::from_secs(50)).await;
            until(|| rig.server.stats().flushes.get() > flushes, "a flush").await;
            assert_eq!(rig.server.stats().flushes.get(), flushes + 1);
            assert_eq!(rig.graphite.read(1).await, expect(&[("counters.n", 1.0)]));
            // Delay: the next window is a whole one from that flush.
            send(&s, rig.server.udp, "n:2|c").await;
            rig.received(2).await;
            overlap::time::advance(Duration::from_secs(9)).await;
            assert_eq!(rig.server.stats().flushes.get(), flushes + 1);
            overlap::time::advance(Duration::from_secs(1)).await;
            until(|| rig.server.stats().flushes.get() > flushes + 1, "a flush").await;
            assert_eq!(rig.graphite.read(1).await, expect(&[("counters.n", 2.0)]));
            assert!(rig.server.shutdown().await);
        },
        "the clock jump",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn management_commands_answer_and_bad_input_is_refused() {
    within(
        HANG,
        async {
            let mut rig = Rig::start(|_| {}).await;
            let s = sender().await;
            send(&s, rig.server.udp, "a:1|c\nb:2|c\ng:7|g\nt:1|ms").await;
            rig.received(1).await;
            let mut admin = Admin::connect(rig.server.admin).await;
            assert_eq!(admin.ask("counters").await, ["a 1", "b 2"]);
            assert_eq!(admin.ask("gauges").await, ["g 7"]);
            assert_eq!(admin.ask("delete a").await, ["deleted a"]);
            assert_eq!(admin.ask("delete t").await, ["deleted t"]);
            assert_eq!(admin.ask("delete a").await, ["ERROR no metric named a"]);
            assert_eq!(admin.ask("delete").await, ["ERROR usage: delete NAME"]);
            assert_eq!(admin.ask("delete a b").await, ["ERROR usage: delete NAME"]);
            assert_eq!(admin.ask("").await, ["ERROR empty command"]);
            assert_eq!(
                admin.ask("stats now").await,
                ["ERROR unknown command: stats now"]
            );
            assert_eq!(
                admin.ask("DROP TABLE").await[0],
                "ERROR unknown command: DROP TABLE"
            );
            admin.send_raw(&"x".repeat(10_000)).await;
            assert_eq!(admin.answer().await, ["ERROR line over 256 bytes"]);
            assert_eq!(admin.ask("counters").await, ["b 2"]);
            let st = admin.stats().await;
            assert_eq!((st["samples"], st["connects"], st["dropped"]), (4, 1, 0));
            admin.send_raw("quit").await;
            assert!(admin.ended().await);
            // The deleted metrics are gone from the flush too.
            rig.flush().await;
            assert_eq!(
                rig.graphite.read(2).await,
                expect(&[("counters.b", 2.0), ("gauges.g", 7.0)])
            );
            // A session open at shutdown is ended by it.
            let mut open = Admin::connect(rig.server.admin).await;
            assert_eq!(open.ask("gauges").await, ["g 7"]);
            assert!(rig.server.shutdown().await);
            assert!(open.ended().await);
        },
        "the management port",
    )
    .await;
}
