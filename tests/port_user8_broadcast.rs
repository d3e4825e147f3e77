//! A user's WebSocket-style broadcast server, sketched as one would for tokio with
//! tokio-util's `CancellationToken` and `TaskTracker`, then written for overlap
//! (`port_user8_broadcast/server.rs`, the frames in `frame.rs`, the tests' client in
//! `client.rs`). A client upgrades with a minimal HTTP/1.1 `GET` carrying `Upgrade:
//! overlap-frames` (answered `101` with its id, or `400` with an `X-Reason`); then frames,
//! a kind byte and a `u32` length: text, ping, pong, close with a reason, and a lag notice.
//! Every message published (by the admin, or a client's text) goes to every client through
//! a `broadcast` channel, whose capacity is each client's bounded outbound queue.
//!
//! The tokio version:
//!
//! ```text
//! loop {
//!     tokio::select! {
//!         _ = token.cancelled() => break,
//!         Ok((stream, _)) = listener.accept() => {
//!             let conn = token.child_token();          // kept by id for the admin's kick
//!             let rx = tx.subscribe();
//!             tracker.spawn(serve(stream, rx, conn));
//!         }
//!     }
//! }
//! // serve: upgrade, then the reader in a task of its own (a frame read is not
//! // cancel-safe) telling the writer how the client ended, and the writer's loop:
//! //   select! { _ = conn.cancelled() => "going away" / "kicked",
//! //             m = rx.recv() => Ok(m) | Err(Lagged(n)) => a lag notice,
//! //             _ = sleep_until(idle) => ping, or "ping timeout" }
//! //   then timeout(write_timeout, wr.write_all(&frame)) or cut the client as too slow;
//! //   last: the close frame, shutdown, a lingering drain, all under the flush deadline.
//! token.cancel(); tracker.close();
//! timeout(limit, tracker.wait()).await;
//! ```
//!
//! A slow consumer lags while its writer waits on a full socket (a lag notice saying how
//! many messages it missed, then it reads on from the oldest held), and is cut once one
//! write takes longer than the write timeout; a shutdown cuts a write short at the flush
//! deadline.
//!
//! The tests check that fifty clients each get every message in order; that a client that
//! stops reading (a small `SO_RCVBUF`) leaves the others whole and gets exactly the frames
//! the server wrote whole to it: messages from the first, one lag notice whose count is
//! exactly the gap, then the queue's last messages; or, with a short write timeout, is cut
//! with exactly the whole frames the server counted; that kicking one client through its
//! child token ends only it; that a shutdown with clients mid-message gives each "going
//! away" then the end of the stream, a wedged one cut at the flush deadline, the tracker's
//! `wait` ready, and no task or fd left; that garbage (a bad head, an unknown frame kind, a
//! frame over the limit) gets a clear reason and disturbs no one; and that a client not
//! answering pings is closed with "ping timeout" while one answering stays.
//!
//! What the port changed, against tokio: `tokio::select!` is futures' (`accept().fuse()`,
//! `rx.recv().fuse()`; `token.cancelled()` goes in as it is, fused already, but is ready
//! on every poll after the cancel, so a loop that must see it once wraps it in `fuse()`);
//! `Rc` and `Cell` replace `Arc` and atomics, the tasks needing no `Send` (so
//! `tracker.spawn` where tokio needs `spawn_local` for such tasks); the reader is a future
//! raced beside the writer rather than a task, as a `JoinHandle` dropped does not abort; the
//! listener takes a small `SO_SNDBUF` through `TcpSocket` (accepted sockets inherit it) so
//! a slow consumer's socket fills soon. A frame's write is not a `select!` branch against
//! the token (a "going away" could land inside a half-written frame): it finishes, or times
//! out, before the token is looked at, and a shutdown cuts its limit to the flush deadline.
//! The first draft of the tests read each client's "going away" only after `shutdown`
//! returned, and every shutdown took the whole flush deadline: the server's lingering drain
//! waits for the client to close its side, so the clients now read (and answer the close)
//! while the server shuts down, as real ones would.
//!
//! What overlap changed for it: `TaskTracker` gained tokio-util's `spawn_local`, `spawn_on`,
//! `spawn_blocking_on` and `ptr_eq`, and `CancellationToken` its
//! `run_until_cancelled_owned`; a `TrackedFuture` is fused when what it wraps is; a cancel
//! (or a tracker's close) reaches every wait and child even behind a waker that panics; and
//! `broadcast::Receiver::len`'s docs say it never counts what a lag lost (tokio's does), so
//! this server reads a lag from `recv`'s `Lagged`, never from `len`.

mod support;

#[path = "port_user8_broadcast/client.rs"]
mod client;
#[path = "port_user8_broadcast/frame.rs"]
mod frame;
#[path = "port_user8_broadcast/server.rs"]
mod server;

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use client::{connect, connect_raw, read_head, Client};
use frame::{Frame, ReadEnd};
use overlap::io::{AsyncWriteExt, BufReader};
use overlap::net::TcpSocket;
use overlap::sync::mpsc;
use overlap::task::JoinHandle;
use server::{Config, End, Ended, Server};
use support::{open_fds, run_in_child, within};

const HANG: Duration = Duration::from_secs(20);

fn config() -> Config {
    Config {
        queue: 128,
        write_timeout: HANG,
        idle: HANG,
        flush_deadline: Duration::from_secs(2),
    }
}

/// A server on loopback with its accept loop running.
fn start(config: Config) -> (Rc<Server>, SocketAddr, JoinHandle<()>) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(16 * 1024).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1024).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(config);
    let accept = overlap::spawn(server.clone().run(listener));
    (server, addr, accept)
}

/// How the connection `id` ended, once it has.
async fn ended(server: &Server, id: u64) -> Ended {
    let mut rx = server.ended.subscribe();
    let list = rx.wait_for(|v| v.iter().any(|e| e.id == id)).await.unwrap();
    list.iter().find(|e| e.id == id).unwrap().clone()
}

fn texts(range: std::ops::Range<usize>, size: usize) -> Vec<String> {
    range.map(|i| message(i, size)).collect()
}

/// Message `i`, `size` bytes long (at least its number).
fn message(i: usize, size: usize) -> String {
    let mut m = format!("m{i}:");
    m.extend(std::iter::repeat_n('x', size.saturating_sub(m.len())));
    m
}

/// A going-away close, then the end of the stream.
async fn says_going_away(client: &mut Client) {
    let rest = client.rest().await;
    let going = Frame::Close("going away".into());
    assert_eq!(rest, (vec![going], ReadEnd::Eof), "client {}", client.id);
}

#[test]
fn fifty_clients_each_get_every_message_in_order() {
    overlap::block_on(within(
        HANG,
        async {
            let (server, addr, accept) = start(config());
            let mut readers = Vec::new();
            for _ in 0..50 {
                let mut c = connect(addr, None).await;
                readers.push(overlap::spawn(async move {
                    let got = c.texts(100).await;
                    (c, got)
                }));
            }
            for i in 0..100 {
                assert_eq!(server.publish(message(i, 20).as_bytes()), 50);
            }
            let mut closing = Vec::new();
            for r in readers {
                let (mut c, got) = r.await.unwrap();
                assert_eq!(got, texts(0..100, 20), "client {}", c.id);
                closing.push(overlap::spawn(async move { says_going_away(&mut c).await }));
            }
            assert!(server.shutdown(HANG).await);
            accept.await.unwrap();
            for c in closing {
                c.await.unwrap();
            }
        },
        "fifty clients",
    ));
}

/// Three clients that read, paced by the publisher (each message waits until all three
/// have it), and one with a small receive buffer that reads nothing: publishes `count`
/// messages of `size` bytes and gives the readers' clients back.
async fn publish_past_a_stalled_client(
    server: &Server,
    addr: SocketAddr,
    count: usize,
    size: usize,
) -> (Client, Vec<Client>) {
    let stalled = connect(addr, Some(4096)).await;
    let (ack, mut acks) = mpsc::unbounded_channel();
    let mut readers = Vec::new();
    for _ in 0..3 {
        let mut c = connect(addr, None).await;
        let ack = ack.clone();
        readers.push(overlap::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..count {
                got.extend(c.texts(1).await);
                ack.send(()).unwrap();
            }
            assert_eq!(got, texts(0..count, size), "client {}", c.id);
            c
        }));
    }
    for i in 0..count {
        // Four, until the stalled client is cut (under a short write timeout).
        let cut = server.ended.borrow().len();
        assert_eq!(server.publish(message(i, size).as_bytes()), 4 - cut);
        for _ in 0..3 {
            acks.recv().await.unwrap();
        }
    }
    let mut readers_back = Vec::new();
    for r in readers {
        readers_back.push(r.await.unwrap());
    }
    (stalled, readers_back)
}

/// The texts of `frames` must be message 0 on, with at most one lag notice whose count is
/// exactly the gap; gives how many texts there were and the lag.
fn check_lag_sequence(frames: &[Frame], size: usize) -> (usize, u64) {
    let (mut next, mut texts_seen, mut lag) = (0usize, 0, 0);
    for f in frames {
        match f {
            Frame::Text(t) => {
                assert_eq!(std::str::from_utf8(t).unwrap(), message(next, size));
                next += 1;
                texts_seen += 1;
            }
            Frame::Lagged(n) => {
                assert_eq!(lag, 0, "one lag notice: {frames:?}");
                lag = *n;
                next += *n as usize;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    (texts_seen, lag)
}

#[test]
fn a_client_that_stops_reading_lags_by_exactly_what_it_missed_and_reads_on() {
    overlap::block_on(within(
        HANG,
        async {
            let (server, addr, accept) = start(Config {
                queue: 16,
                ..config()
            });
            let (mut stalled, mut readers) =
                publish_past_a_stalled_client(&server, addr, 100, 4096).await;
            // Now it reads: the first messages (what its socket took, and the one its writer
            // held), one notice of exactly how many it missed, then the queue's last 16.
            let mut frames = Vec::new();
            while frames.last() != Some(&Frame::Text(message(99, 4096).into_bytes())) {
                frames.push(stalled.next().await.unwrap());
            }
            let lagged_at = frames.iter().position(|f| matches!(f, Frame::Lagged(_)));
            let lagged_at = lagged_at.expect("a lag notice");
            let (seen, lag) = check_lag_sequence(&frames, 4096);
            assert_eq!(
                frames.len() - lagged_at - 1,
                16,
                "the queue's last 16 after the notice"
            );
            assert_eq!(seen as u64 + lag, 100);
            assert!(server.ended.borrow().is_empty(), "nobody was cut");

            server.token.cancel();
            readers.push(stalled);
            for mut c in readers {
                says_going_away(&mut c).await;
            }
            assert!(server.shutdown(HANG).await);
            accept.await.unwrap();
        },
        "the lagging client",
    ));
}

#[test]
fn a_client_that_stops_reading_is_cut_at_the_write_timeout_with_what_was_written_whole() {
    overlap::block_on(within(
        HANG,
        async {
            let write_timeout = Duration::from_millis(100);
            let (server, addr, accept) = start(Config {
                queue: 16,
                write_timeout,
                ..config()
            });
            let (mut stalled, readers) =
                publish_past_a_stalled_client(&server, addr, 100, 4096).await;
            let cut = ended(&server, stalled.id).await;
            assert_eq!(cut.end, End::TooSlow);
            // Every frame written whole reaches it, then at most part of one, then the end.
            let (frames, end) = stalled.rest().await;
            assert!(end == ReadEnd::Cut || end == ReadEnd::Eof, "{end:?}");
            assert_eq!(frames.len() as u64, cut.frames);
            check_lag_sequence(&frames, 4096);
            // The others go on.
            assert_eq!(server.publish(b"after"), 3);
            for mut c in readers {
                assert_eq!(c.texts(1).await, ["after"]);
                c.wr.close().await.unwrap();
                assert_eq!(c.rest().await.1, ReadEnd::Eof);
            }
            assert!(server.shutdown(HANG).await);
            accept.await.unwrap();
        },
        "the client cut as too slow",
    ));
}

#[test]
fn kicking_one_client_through_its_token_ends_only_it() {
    overlap::block_on(within(
        HANG,
        async {
            let (server, addr, accept) = start(config());
            let mut clients = Vec::new();
            for _ in 0..5 {
                clients.push(connect(addr, None).await);
            }
            let mut kicked = clients.remove(2);
            assert!(server.kick(kicked.id));
            let rest = kicked.rest().await;
            assert_eq!(
                rest,
                (
                    vec![Frame::Close("kicked by the admin".into())],
                    ReadEnd::Eof
                )
            );
            assert_eq!(ended(&server, kicked.id).await.end, End::Kicked);
            assert!(!server.kick(kicked.id), "gone from the table");
            assert!(!server.token.is_cancelled());
            assert_eq!(server.publish(b"still on"), 4);
            for c in &mut clients {
                assert_eq!(c.texts(1).await, ["still on"]);
            }
            assert_eq!(server.ended.borrow().len(), 1);
            let closing: Vec<_> = clients
                .into_iter()
                .map(|mut c| overlap::spawn(async move { says_going_away(&mut c).await }))
                .collect();
            assert!(server.shutdown(HANG).await);
            for c in closing {
                c.await.unwrap();
            }
            accept.await.unwrap();
        },
        "the kick",
    ));
}

#[test]
fn a_shutdown_mid_message_says_going_away_to_each_client_and_leaves_nothing() {
    const NAME: &str = "a_shutdown_mid_message_says_going_away_to_each_client_and_leaves_nothing";
    run_in_child(NAME, || {
        overlap::block_on(within(
            HANG,
            async {
                let fds = open_fds();
                let tasks = overlap::metrics().tasks_alive;
                let flush_deadline = Duration::from_millis(200);
                let (server, addr, accept) = start(Config {
                    flush_deadline,
                    ..config()
                });
                let mut wedged = connect(addr, Some(4096)).await;
                let mut closing = Vec::new();
                for i in 0..12 {
                    let mut c = connect(addr, None).await;
                    if i % 2 == 0 {
                        // Mid-message: a text frame's head and half its payload.
                        let half = &frame::encode(frame::TEXT, b"0123456789")[..10];
                        c.wr.write_all(half).await.unwrap();
                    }
                    closing.push(overlap::spawn(async move {
                        let (frames, end) = c.rest().await;
                        assert_eq!(end, ReadEnd::Eof, "client {}", c.id);
                        let (last, texts_got) = frames.split_last().unwrap();
                        assert_eq!(last, &Frame::Close("going away".into()));
                        assert_eq!(check_lag_sequence(texts_got, 2048), (texts_got.len(), 0));
                    }));
                }
                for i in 0..50 {
                    assert_eq!(server.publish(message(i, 2048).as_bytes()), 13);
                }
                overlap::yield_now().await;
                assert!(
                    server.shutdown(HANG).await,
                    "tracker.wait() within its limit"
                );
                accept.await.unwrap();
                for c in closing {
                    c.await.unwrap();
                }
                // The wedged client's last write was cut at the flush deadline.
                let cut = ended(&server, wedged.id).await;
                assert_eq!(cut.end, End::TooSlow);
                let (frames, end) = wedged.rest().await;
                assert!(end == ReadEnd::Cut || end == ReadEnd::Eof, "{end:?}");
                assert_eq!(frames.len() as u64, cut.frames);
                check_lag_sequence(&frames, 2048);
                let ends = server.ended.borrow().clone();
                assert_eq!(ends.len(), 13);
                let away = ends.iter().filter(|e| e.end == End::GoingAway).count();
                assert_eq!(away, 12);
                assert!(server.tracker.is_empty());
                drop((server, wedged));
                assert_eq!(overlap::metrics().tasks_alive, tasks, "tasks left");
                assert_eq!(open_fds(), fds, "fds left");
            },
            "the shutdown",
        ));
    });
}

/// A raw connection's answer to `request`: the head's lines, and whether the stream then
/// ended.
async fn answer_to(addr: SocketAddr, request: &[u8]) -> (Vec<String>, bool) {
    let (rd, mut wr) = connect_raw(addr, None).await.into_split();
    wr.write_all(request).await.unwrap();
    let mut rd = BufReader::new(rd);
    let head = read_head(&mut rd).await;
    let mut rest = Vec::new();
    let ended = overlap::io::AsyncReadExt::read_to_end(&mut rd, &mut rest)
        .await
        .is_ok();
    (head, ended && rest.is_empty())
}

#[test]
fn garbage_gets_a_clear_reason_and_disturbs_no_one() {
    overlap::block_on(within(
        HANG,
        async {
            let (server, addr, accept) = start(config());
            let mut bystander = connect(addr, None).await;
            let bad = |reason: &str| {
                vec![
                    "HTTP/1.1 400 Bad Request".to_string(),
                    format!("X-Reason: {reason}"),
                ]
            };
            let answer = answer_to(addr, b"HELLO\r\n\r\n").await;
            assert_eq!(answer, (bad("not an HTTP/1.1 GET"), true));
            let answer = answer_to(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
            assert_eq!(answer, (bad("not an upgrade to overlap-frames"), true));
            let answer = answer_to(addr, &[b'G'; 5000]).await;
            assert_eq!(answer, (bad("a request head over 4096 bytes"), true));

            // An unknown kind, then junk the server drains before it closes (else the close
            // would reset the connection and could lose the reason).
            let mut c = connect(addr, None).await;
            c.wr.write_all(&[0x7f, 0, 0, 0, 1]).await.unwrap();
            c.wr.write_all(&vec![0xAA; 100_000]).await.unwrap();
            let reason = "protocol error: unknown frame kind 0x7f";
            assert_eq!(
                c.rest().await,
                (vec![Frame::Close(reason.into())], ReadEnd::Eof)
            );
            let mut c = connect(addr, None).await;
            c.wr.write_all(&[frame::TEXT, 0xff, 0xff, 0xff, 0xff])
                .await
                .unwrap();
            let reason = "protocol error: a frame of 4294967295 bytes, over the 65536 limit";
            assert_eq!(
                c.rest().await,
                (vec![Frame::Close(reason.into())], ReadEnd::Eof)
            );

            bystander.say("fine").await;
            assert_eq!(bystander.texts(1).await, ["fine"], "nothing else came");
            let refused = server
                .ended
                .borrow()
                .iter()
                .filter(|e| matches!(e.end, End::Refused(_)))
                .count();
            assert_eq!(refused, 5);
            assert_eq!(server.tracker.len(), 1);
            let closing = overlap::spawn(async move { says_going_away(&mut bystander).await });
            assert!(server.shutdown(HANG).await);
            closing.await.unwrap();
            accept.await.unwrap();
        },
        "garbage",
    ));
}

#[test]
fn a_client_not_answering_pings_is_closed_and_one_answering_stays() {
    overlap::block_on(within(
        HANG,
        async {
            let idle = Duration::from_millis(100);
            let (server, addr, accept) = start(Config { idle, ..config() });
            let mut answering = connect(addr, None).await;
            let mut silent = connect(addr, None).await;
            silent.answer_pings = false;
            let stays = overlap::spawn(async move {
                let got = answering.texts(1).await;
                (answering, got)
            });
            assert_eq!(silent.next().await, Ok(Frame::Ping));
            let rest = silent.rest().await;
            assert_eq!(
                rest,
                (vec![Frame::Close("ping timeout".into())], ReadEnd::Eof)
            );
            assert_eq!(ended(&server, silent.id).await.end, End::PingTimeout);
            assert_eq!(server.publish(b"ok"), 1);
            let (mut answering, got) = stays.await.unwrap();
            assert_eq!(got, ["ok"]);
            let closing = overlap::spawn(async move { says_going_away(&mut answering).await });
            assert!(server.shutdown(HANG).await);
            closing.await.unwrap();
            accept.await.unwrap();
        },
        "pings",
    ));
}
