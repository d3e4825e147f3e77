//! A user's stream multiplexer (a small yamux / HTTP/2-style mux: many logical streams
//! over one TCP connection), sketched as one would for tokio and then written for overlap.
//! Frames (`port_user9_mux/frame.rs`): a stream id, flags SYN/ACK/FIN/RST, and data,
//! window updates, pings and go-away; a session (`session.rs`) splits the `TcpStream`
//! into owned halves, a reader task demultiplexing frames into per-stream state and a
//! writer task draining the frame queue (an mpsc) in batches with vectored writes, a
//! keepalive task pinging with a `DelayQueue` of unanswered pings, and a `Semaphore`
//! capping the open streams; each logical stream (`stream.rs`) is a futures-io
//! `AsyncRead + AsyncWrite` with its wakers kept in the shared state, a 256 KiB receive
//! window credited back as the application reads and a send window the peer's updates
//! refill, FIN for a half-close and RST when dropped unfinished, or idle too long (a
//! reaper task on a second `DelayQueue`, the streams' entries moved on at each frame).
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! let (rd, wr) = tcp.into_split();
//! tokio::spawn(async move {                       // the writer: batches, writev
//!     while rx.recv_many(&mut batch, 64).await > 0 {
//!         let mut slices = headers_and_payloads(&batch);
//!         let mut rest = &mut slices[..];
//!         while !rest.is_empty() {
//!             let n = wr.write_vectored(rest).await?;
//!             IoSlice::advance_slices(&mut rest, n);
//!         }
//!     }
//!     wr.shutdown().await
//! });
//! tokio::spawn(async move {                       // the reader: demultiplexes
//!     while let Some(f) = Frame::read(&mut BufReader::new(rd)).await? {
//!         let mut streams = shared.streams.lock().unwrap();
//!         // data into the stream's buffer, window updates into its credit, FIN, RST,
//!         // and wake the stream's stored read or write waker
//!     }
//! });
//! impl AsyncRead for Stream { fn poll_read(..) { /* buffered bytes, or store the waker;
//!     credit the window back in halves */ } }
//! impl AsyncWrite for Stream { fn poll_write(..) { /* up to the send credit, or store
//!     the waker */ } fn poll_shutdown(..) { /* FIN */ } }
//! impl Drop for Stream { fn drop(..) { /* RST unless both sides finished */ } }
//! // keepalive: tokio::select! { _ = tick.tick() => ping, Some(p) = pings.next() => end }
//! ```
//!
//! The tests check: 100 streams at once each echoing 256 KiB byte-exact both ways with
//! windows smaller than the data (flow control engaging); a stream whose reader stalls
//! stopping only itself while another stream's bytes flow; half-close per stream; a
//! dropped stream resetting the peer's reads and writes; the connection reset
//! mid-transfer failing every logical stream (none hangs); go-away refusing new streams
//! while the open ones drain; the stream cap refusing a peer's extra stream; a peer that
//! answers no ping torn down by the keepalive; idle streams reset, also one opened after
//! the reaper's queue ran empty; garbage from the peer ending the session with the reason;
//! and no fd, task, timer or registration left at the end.
//!
//! What the port changed, against tokio: `Arc<Mutex<..>>` became `Rc` with `RefCell`s,
//! `tokio::spawn` `overlap::spawn` (nothing needs `Send`), `tokio::io::split`
//! `overlap::io::split`; `AsyncRead`/`AsyncWrite` are
//! futures-io's (`poll_close` for `poll_shutdown`, `&mut [u8]` for `ReadBuf`);
//! `write_vectored` is `poll_write_vectored` through `poll_fn` (futures' `AsyncWriteExt`
//! has `write_vectored`, and `write_all_vectored` only behind a feature);
//! `tokio_util::time::DelayQueue` is `overlap::time::DelayQueue`, polled with
//! `poll_expired` through the `RefCell` the reader shares (its `None` on an empty queue,
//! as tokio-util's, is mapped to `Pending` in the `select!`); `tokio::select!` is
//! `overlap::select!` with `.fuse()`; `Semaphore::acquire_owned` takes an `Rc`; the
//! queue's `Key` is at `overlap::time::delay_queue::Key`, tokio-util's path.
//!
//! What the port got wrong at first was the user's, as it would be under tokio: a stream
//! read after the session ended failed with the session's error before giving the bytes
//! and FIN that came before it (a go-away drain lost its last echoes); an `open` waiting
//! for a slot waited on after the session ended (the `Semaphore` is now closed then); the
//! writer shut the connection down gracefully on an abort too; and a writer stuck on a
//! peer that read nothing outlived the session that gave up on it (it is aborted now,
//! but for a graceful close). Two things were
//! overlap's, and are fixed: a `DelayQueue` whose value had expired (its timer spent) was
//! not woken by an insert from another task once it had seen the queue empty, so the idle
//! reaper slept through every stream opened after the first one reaped (pinned in
//! `time_delay_queue.rs`); and a zero-linger connection's `OwnedWriteHalf` sent a FIN on
//! drop ahead of the reset, so the peer's reader, parked in a read, took a session dropped
//! mid-transfer for one closed in good order (`net_tcp_linger.rs`; tokio's half does so
//! too, README's tokio table says how overlap's differs).

mod support;

#[path = "port_user9_mux/frame.rs"]
mod frame;
#[path = "port_user9_mux/session.rs"]
mod session;
#[path = "port_user9_mux/stream.rs"]
mod stream;

use std::io;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use session::{Config, Session};
use stream::Stream;
use support::{tcp_pair, within};

const LONG: Duration = Duration::from_secs(20);

/// A client and a server session over a loopback connection.
async fn pair(client: Config, server: Config) -> (Session, Session) {
    let (conn, accepted) = tcp_pair().await;
    (
        Session::new(conn, true, client),
        Session::new(accepted, false, server),
    )
}

fn small_windows() -> Config {
    Config {
        window: 32 * 1024,
        ..Config::default()
    }
}

/// Echoes every accepted stream until its FIN, then finishes it.
fn serve_echo(server: std::rc::Rc<Session>) -> overlap::JoinHandle<()> {
    overlap::spawn(async move {
        while let Some(s) = server.accept().await {
            overlap::spawn(echo(s));
        }
    })
}

async fn echo(s: Stream) {
    let (r, mut w) = overlap::io::split(s);
    let res = overlap::io::copy(r, &mut w).await;
    if res.is_ok() {
        let _ = w.close().await;
    }
    // Read to the end and closed: both FINs seen, so the drop sends no RST.
}

/// `len` bytes that differ between seeds and positions (a stream's bytes landing on
/// another, or shifted, fail the comparison).
fn pattern(seed: usize, len: usize) -> Vec<u8> {
    thread_local!(static BASE: Vec<u8> = (0..(1 << 20) + 4096).map(|i: usize| (i * 31 + i / 251) as u8).collect());
    let mut data = BASE.with(|b| b[seed % 4096..][..len].to_vec());
    data[..8].copy_from_slice(&(seed as u64).to_be_bytes());
    data
}

/// Writes `data` and closes while reading the echo back to the end.
async fn round_trip(mut s: Stream, data: &[u8]) -> io::Result<Vec<u8>> {
    let (mut r, mut w) = (&mut s).split();
    let send = async {
        w.write_all(data).await?;
        w.close().await
    };
    let mut back = Vec::new();
    let recv = overlap::io::read_to_end(&mut r, &mut back);
    let (sent, got) = overlap::join!(send, recv);
    sent?;
    got?;
    Ok(back)
}

/// 100 streams at once, 256 KiB each way per stream through 32 KiB windows: every echo
/// comes back byte-exact, and the writers waited for window updates.
#[overlap::test]
async fn hundred_streams_echo_byte_exact_through_small_windows() {
    let (client, server) = pair(small_windows(), small_windows()).await;
    let server = std::rc::Rc::new(server);
    let acceptor = serve_echo(server.clone());
    let client = std::rc::Rc::new(client);
    let mut set = overlap::JoinSet::new();
    for i in 0..100 {
        let client = client.clone();
        set.spawn(async move {
            let s = client.open().await.unwrap();
            let data = pattern(i, 256 * 1024);
            let back = round_trip(s, &data).await.unwrap();
            assert!(back == data, "stream {i} echoed byte-exact");
        });
    }
    within(
        LONG,
        async {
            while let Some(r) = set.join_next().await {
                r.unwrap();
            }
        },
        "the echoes",
    )
    .await;
    // Each writer sends a window's worth at once and must then wait for the peer's update
    // (the echoing server may keep up with a prompt reader, so only the client's count).
    assert!(
        client.shared().window_waits.get() >= 100,
        "every client stream waited for its window"
    );
    assert!(client.shared().streams.borrow().is_empty());
    drop(client);
    within(LONG, acceptor, "the acceptor's end").await.unwrap();
}

/// A stream whose reader stalls fills its window and stops there; another stream's
/// 256 KiB echo goes through meanwhile, and the stalled one delivers everything once read.
#[overlap::test]
async fn a_stalled_reader_stops_only_its_own_stream() {
    let (client, server) = pair(small_windows(), small_windows()).await;
    let mut stalled = client.open().await.unwrap();
    let flowing = client.open().await.unwrap();
    let mut stalled_at_server = server.accept().await.unwrap();
    overlap::spawn(echo(server.accept().await.unwrap()));
    let data = pattern(1, 256 * 1024);
    let sent = data.clone();
    let writer = overlap::spawn(async move {
        stalled.write_all(&sent).await.unwrap();
        stalled.close().await.unwrap();
        stalled
    });
    let other = pattern(2, 256 * 1024);
    let back = within(LONG, round_trip(flowing, &other), "the other stream").await;
    assert!(back.unwrap() == other, "the other stream echoed byte-exact");
    assert!(!writer.is_finished(), "the stalled stream's writer waits");
    let id = stalled_at_server.id();
    assert_eq!(server.shared().streams.borrow()[&id].recv.len(), 32 * 1024);
    let mut got = Vec::new();
    within(
        LONG,
        overlap::io::read_to_end(&mut stalled_at_server, &mut got),
        "the stalled data",
    )
    .await
    .unwrap();
    assert!(got == data, "the stalled stream's bytes, byte-exact");
    let _stalled = writer.await.unwrap();
}

/// A FIN closes one direction of one stream: the server reads the request to its end,
/// then answers on the same stream, while another stream works both ways.
#[overlap::test]
async fn half_close_per_stream() {
    let (client, server) = pair(Config::default(), Config::default()).await;
    let mut req = client.open().await.unwrap();
    req.write_all(b"request").await.unwrap();
    req.close().await.unwrap();
    let err = req.write_all(b"more").await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    let mut at_server = server.accept().await.unwrap();
    let mut got = Vec::new();
    at_server.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"request");
    // Another stream, opened now, is untouched by the first one's FIN.
    let other = client.open().await.unwrap();
    overlap::spawn(echo(server_accept_later(&server).await));
    let other_id = other.id();
    let echo_task = overlap::spawn(async move { round_trip(other, b"ping").await });
    at_server.write_all(b"reply").await.unwrap();
    at_server.close().await.unwrap();
    let mut reply = Vec::new();
    req.read_to_end(&mut reply).await.unwrap();
    assert_eq!(reply, b"reply");
    assert_eq!(
        echo_task.await.unwrap().unwrap(),
        b"ping",
        "stream {other_id}"
    );
}

async fn server_accept_later(server: &Session) -> Stream {
    within(LONG, server.accept(), "a stream").await.unwrap()
}

/// A stream dropped before it finished resets: the peer's read gives what came before
/// the RST or fails `ConnectionReset`, and its write fails the same way.
#[overlap::test]
async fn a_dropped_stream_resets_the_peer() {
    let (client, server) = pair(Config::default(), Config::default()).await;
    let mut s = client.open().await.unwrap();
    s.write_all(b"partial").await.unwrap();
    drop(s);
    let mut at_server = server.accept().await.unwrap();
    let mut buf = [0u8; 64];
    let err = loop {
        match within(LONG, at_server.read(&mut buf), "the reset").await {
            Ok(0) => panic!("a reset stream read as a clean end"),
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
    let err = at_server.write_all(b"x").await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
    // The session itself lives on.
    let fresh = client.open().await.unwrap();
    overlap::spawn(echo(server_accept_later(&server).await));
    assert_eq!(round_trip(fresh, b"again").await.unwrap(), b"again");
}

/// The connection reset (the server's socket closed with a zero linger) while ten
/// streams move data: every logical stream's transfer ends with an error, none hangs.
#[overlap::test]
async fn a_connection_reset_fails_every_stream() {
    let (conn, accepted) = tcp_pair().await;
    accepted.set_zero_linger().unwrap();
    let client = std::rc::Rc::new(Session::new(conn, true, Config::default()));
    let server = Session::new(accepted, false, Config::default());
    let mut set = overlap::JoinSet::new();
    for i in 0..10 {
        let client = client.clone();
        set.spawn(async move {
            let s = client.open().await.unwrap();
            round_trip(s, &pattern(i, 1 << 20)).await
        });
    }
    // Each server stream takes some bytes and then the connection goes.
    let mut held = Vec::new();
    for _ in 0..10 {
        let mut s = server_accept_later(&server).await;
        let mut buf = [0u8; 1000];
        s.read_exact(&mut buf).await.unwrap();
        held.push(s);
    }
    drop(server);
    within(
        LONG,
        async {
            while let Some(r) = set.join_next().await {
                let err = r
                    .unwrap()
                    .expect_err("a stream of a reset connection failed");
                assert!(err.kind() == io::ErrorKind::ConnectionReset, "{err}");
            }
        },
        "every stream's end",
    )
    .await;
    let why = within(LONG, client.wait_ended(), "the session's end").await;
    assert!(client.ended().is_some(), "{why}");
    drop(held);
}

/// Go-away: the peer may open no new stream (refused with the reason), the open streams
/// finish their transfers, and `close` returns once they have, ending both sessions.
#[overlap::test]
async fn go_away_drains_the_open_streams() {
    let (client, server) = pair(small_windows(), small_windows()).await;
    let server = std::rc::Rc::new(server);
    let mut streams = Vec::new();
    for _ in 0..3 {
        streams.push(client.open().await.unwrap());
    }
    for _ in 0..3 {
        overlap::spawn(echo(server_accept_later(&server).await));
    }
    let closing = overlap::spawn({
        let server = server.clone();
        async move { server.close().await }
    });
    support::until(|| client.shared().go_away_received.get(), "the go-away").await;
    let err = client.open().await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
    assert!(!closing.is_finished(), "close waits for the open streams");
    let mut set = overlap::JoinSet::new();
    for (i, s) in streams.into_iter().enumerate() {
        set.spawn(async move { (i, round_trip(s, &pattern(i, 100_000)).await) });
    }
    while let Some(r) = within(LONG, set.join_next(), "a drained stream").await {
        let (i, back) = r.unwrap();
        assert!(
            back.unwrap() == pattern(i, 100_000),
            "stream {i} drained byte-exact"
        );
    }
    within(LONG, closing, "the close").await.unwrap();
    let why = within(LONG, client.wait_ended(), "the client's end").await;
    assert_eq!(why.kind(), io::ErrorKind::UnexpectedEof, "{why}");
}

/// The stream cap: a peer's stream past the server's cap is reset at once; a local
/// `open` past the client's cap waits for a slot, which a finished stream frees.
#[overlap::test]
async fn the_stream_cap_refuses_and_waits() {
    let capped = Config {
        max_streams: 2,
        ..Config::default()
    };
    let (client, server) = pair(Config::default(), capped.clone()).await;
    let a = client.open().await.unwrap();
    let b = client.open().await.unwrap();
    let mut c = client.open().await.unwrap();
    let mut buf = [0u8; 8];
    let err = within(LONG, c.read(&mut buf), "the refusal")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
    drop((a, b, c));
    drop(server);
    let (client, _server) = pair(capped, Config::default()).await;
    let a = client.open().await.unwrap();
    let _b = client.open().await.unwrap();
    let third = overlap::time::timeout(Duration::from_millis(20), client.open()).await;
    assert!(third.is_err(), "a third open waits while two are open");
    drop(a);
    let _c = within(LONG, client.open(), "the freed slot").await.unwrap();
    // An open waiting for a slot when the session ends fails rather than waiting on.
    let waiting = client.open();
    let ending = async {
        support::settle().await;
        client
            .shared()
            .end(io::ErrorKind::NotConnected, "ended by the test".into());
    };
    let (err, ()) = overlap::join!(waiting, ending);
    assert_eq!(err.unwrap_err().kind(), io::ErrorKind::NotConnected);
}

/// A peer that answers no ping (nor reads anything, its buffers full of a stream's bytes)
/// is given up after the ping timeout: the session ends `TimedOut`, an open stream's read
/// and the stalled write fail with it, and every task of the session ends, the writer
/// stuck in its write included.
#[overlap::test]
async fn unanswered_pings_end_the_session() {
    let (conn, _silent) = tcp_pair().await;
    let tasks = overlap::metrics().tasks_alive;
    let client = Session::new(
        conn,
        true,
        Config {
            window: 64 << 20,
            ping_every: Some(Duration::from_millis(5)),
            ping_timeout: Duration::from_millis(300),
            ..Config::default()
        },
    );
    let mut pushing = client.open().await.unwrap();
    let pusher = overlap::spawn(async move {
        let chunk = vec![7u8; 1 << 20];
        loop {
            if let Err(e) = pushing.write_all(&chunk).await {
                return e;
            }
            overlap::yield_now().await;
        }
    });
    let mut s = client.open().await.unwrap();
    let mut buf = [0u8; 8];
    let err = within(LONG, s.read(&mut buf), "the keepalive's verdict")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert_eq!(client.ended().unwrap().kind(), io::ErrorKind::TimedOut);
    let err = within(LONG, pusher, "the pusher's end").await.unwrap();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    support::until(
        || overlap::metrics().tasks_alive == tasks,
        "the session's tasks gone",
    )
    .await;
}

/// Answered pings keep a quiet session up.
#[overlap::test]
async fn answered_pings_keep_the_session() {
    let quick = Config {
        ping_every: Some(Duration::from_millis(2)),
        ping_timeout: Duration::from_millis(200),
        ..Config::default()
    };
    let (client, server) = pair(quick.clone(), quick).await;
    overlap::time::sleep(Duration::from_millis(30)).await;
    assert!(client.ended().is_none() && server.ended().is_none());
    let s = client.open().await.unwrap();
    overlap::spawn(echo(server_accept_later(&server).await));
    assert_eq!(round_trip(s, b"alive").await.unwrap(), b"alive");
}

/// After both sessions end, every fd and task they made is gone: the echo streams, a
/// stream dropped unfinished, the reader, writer and keepalive tasks.
#[test]
fn no_fd_or_task_left() {
    support::run_in_child("no_fd_or_task_left", || {
        overlap::block_on(async {
            let fds = support::open_fds();
            let before = overlap::metrics();
            let tasks = before.tasks_alive;
            {
                // Every timer on: pings, idle queues.
                let cfg = Config {
                    ping_every: Some(Duration::from_millis(2)),
                    idle_timeout: Some(Duration::from_secs(5)),
                    ..small_windows()
                };
                let (client, server) = pair(cfg.clone(), cfg).await;
                let server = std::rc::Rc::new(server);
                let acceptor = serve_echo(server.clone());
                let mut dropped = client.open().await.unwrap();
                dropped.write_all(b"unfinished").await.unwrap();
                drop(dropped);
                for i in 0..10 {
                    let s = client.open().await.unwrap();
                    let data = pattern(i, 64 * 1024);
                    assert!(round_trip(s, &data).await.unwrap() == data);
                }
                client.close().await;
                drop(client);
                within(LONG, acceptor, "the acceptor's end").await.unwrap();
                assert!(server.ended().is_some());
            }
            support::until(|| support::open_fds() == fds, "the fds back").await;
            support::until(|| overlap::metrics().tasks_alive == tasks, "the tasks gone").await;
            let now = overlap::metrics();
            assert_eq!(
                (now.timers_active, now.registered_fds),
                (before.timers_active, before.registered_fds),
                "no timer (pings, idle queues, intervals) or registration left"
            );
        });
    });
}

/// A stream with no traffic for the idle timeout is reset at both ends; a stream opened
/// after the first one's expiry (the idle queue empty then, its timer spent) is reaped as
/// well.
#[overlap::test]
async fn idle_streams_are_reset() {
    let idle = Config {
        idle_timeout: Some(Duration::from_millis(30)),
        ..Config::default()
    };
    let (client, server) = pair(idle, Config::default()).await;
    for round in 0..2 {
        let mut s = client.open().await.unwrap();
        let mut at_server = server_accept_later(&server).await;
        for (stream, what) in [
            (&mut s, "the idle reset"),
            (&mut at_server, "the peer's reset"),
        ] {
            let mut buf = [0u8; 8];
            let err = within(LONG, stream.read(&mut buf), what).await.unwrap_err();
            assert_eq!(
                err.kind(),
                io::ErrorKind::ConnectionReset,
                "round {round}: {err}"
            );
            if what == "the idle reset" {
                assert!(err.to_string().contains("idle"), "{err}");
            }
        }
        // The reaper sleeps on its empty queue now: the next stream's insert, made by this
        // task, must wake it.
        support::settle().await;
    }
}

/// A peer sending garbage (an unknown frame kind, then a data frame past the largest)
/// ends the session with `InvalidData` saying what was wrong; open streams fail with it.
#[overlap::test]
async fn garbage_from_the_peer_ends_the_session_with_the_reason() {
    for (bytes, says) in [
        (
            &[9u8, 0, 0, 0, 0, 1, 0, 0, 0, 0][..],
            "unknown frame kind 9",
        ),
        (
            &[0u8, 0, 0, 0, 0, 2, 0, 1, 0, 0][..],
            "data frame of 65536 bytes",
        ),
    ] {
        let (conn, mut raw) = tcp_pair().await;
        let client = Session::new(conn, true, Config::default());
        let mut s = client.open().await.unwrap();
        raw.write_all(bytes).await.unwrap();
        let mut buf = [0u8; 8];
        let err = within(LONG, s.read(&mut buf), "the verdict")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        assert!(err.to_string().contains(says), "{err}");
    }
}
