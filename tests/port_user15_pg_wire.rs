//! A user's PostgreSQL-wire client library (a tiny tokio-postgres) and a fake server for
//! it, sketched as one would for tokio, then written for overlap by changing `tokio::` to
//! `overlap::`: the messages and their framing as `Decoder`s
//! (`port_user15_pg_wire/proto.rs`), the fake server with its sessions, cancel requests,
//! LISTEN/NOTIFY and COPY (`server.rs`), the client's calls (`client.rs`), the connection
//! task that owns the socket and pipelines the callers' requests (`connection.rs`), and a
//! pool (`pool.rs`); the tests of faults and cancellation are in `faults.rs`, those of
//! COPY and the pool in `copy_and_pool.rs`.
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! use tokio::net::TcpStream;
//! use tokio::sync::{mpsc, Semaphore};
//! use tokio_util::codec::{Decoder, FramedRead};
//! use futures::{stream, StreamExt};
//!
//! impl Decoder for BackendCodec {          // tag, u32 length, body; refused over max
//!     type Item = Backend;
//!     type Error = io::Error;
//!     fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Backend>> { .. }
//! }
//! // connect: startup, then AuthenticationOk, ParameterStatus*, BackendKeyData, ReadyForQuery
//! let (rd, mut wr) = TcpStream::connect(addr).await?.into_split();
//! wr.write_all(&startup).await?;
//! let mut frames = FramedRead::new(rd, BackendCodec { max });
//! let (requests, queue) = mpsc::channel(8);
//! tokio::spawn(connection(frames, wr, queue, shared.clone(), notes_tx));
//! // the connection task: reads and writes at once, answers matched in order
//! tokio::select! {
//!     e = read_loop(&mut frames, &pending, &notes) => fail_everyone(e),
//!     w = write_loop(wr, queue, &pending) => ..,   // Terminate once every Client is gone
//! }
//! // read_loop: a NotificationResponse goes to the subscriber; anything else to the
//! // oldest pending request, whose bounded channel makes the reading wait for a slow
//! // caller; a caller gone (its receiver dropped): the rest up to ReadyForQuery skipped.
//! match pending.front() { Some(p) => if p.reply.send(msg).await.is_err() { p.skipped = true } .. }
//! // write_loop: each request's bytes as it comes, a COPY IN's data pumped after them
//! while let Some(req) = queue.recv().await {
//!     pending.push_back(req.reply); wr.write_all(&req.bytes).await?;
//!     if let Some(mut data) = req.copy { while let Some(chunk) = data.recv().await { .. } }
//! }
//! // the calls: a request queued with its own channel, the answer read to ReadyForQuery
//! let rows = client.simple_query("rows 3").await?;
//! let rows = client.query("echo $1", &[Some("x")]).await?;         // Parse/Bind/Execute/Sync
//! let results = client.batch(&[(..), (..), (..)]).await?;          // one Sync; Skipped after an error
//! let mut rows = client.query_stream("rows 1000").await?;          // dropped part way: fine
//! let mut copy = client.copy_out("copy out 10000 400").await?;     // a Stream of chunks
//! let mut sink = client.copy_in("copy in t").await?;               // send(chunk), finish()
//! while let n = file.read(&mut buf).await? ... { sink.send(buf[..n].to_vec()).await?; }
//! client.cancel_token().cancel_query().await?;                     // CancelRequest, own socket
//! tokio::time::timeout(limit, client.simple_query("sleep 5000")).await;   // dropped: fine
//! // the pool: a Semaphore of max_size, a health check, a broken connection discarded
//! let permit = permits.clone().acquire_owned().await?;
//! tokio::time::timeout(checkout_timeout, pool.checkout()).await
//! ```
//!
//! The tests check: every message encoded and decoded back, split at every byte, with the
//! exact bytes of a few; the decoders refusing a length below 4, one over the limit from
//! the header alone (before its body), an unknown type, a body cut short, trailing bytes, a
//! bad value length, an unknown authentication, and the end inside a message
//! (`UnexpectedEof`), random bytes never panicking; the startup's BackendKeyData, several
//! statements in one Query, empty queries, a syntax error stopping the statements after it
//! and leaving the connection usable, parameters and NULLs through the extended protocol;
//! fifty tasks' queries pipelined on one connection, each answer exact; a batch whose
//! second statement fails, the third skipped by the server (never executed), and separate
//! pipelined requests where only the failing one fails; notifications arriving while a
//! query is in flight on the paused clock, in order, from the right pid, through
//! tokio-stream's `UnboundedReceiverStream`; the same over `::1` (this file). A cancel
//! request with a forged key or pid ignored and the real one ending the running query with
//! 57014 (the statement after it never run, a cancel with nothing running cancelling
//! nothing later); a query dropped by a `timeout` on the paused clock, a row stream dropped
//! after ten rows of a thousand and a query losing a `select!` mid-answer, the rest of
//! each answer skipped and the next answers exact, on the same session; queries dropped
//! after every number of polls from 0 to 39 (one never written, others read to their end);
//! a malformed and an oversized message failing every waiting caller with `InvalidData`
//! and each later call too, the connection task ended; the server vanishing between
//! messages and inside one (`UnexpectedEof` to every waiting caller) and stopping
//! altogether with a query running, then refusing connections (`faults.rs`). COPY OUT of 4
//! MiB to a consumer that pauses (the server held back at about a hundred rows by the
//! answer's queue and small socket buffers, then every row exact), a refused COPY OUT, and
//! a session killed while its writer is stalled on a full socket; COPY IN of a file read
//! through `overlap::fs`, stored byte for byte, a bad line 5001 refused with 22P04, a sink
//! dropped part way sending CopyFail, and a missing file (nothing stored); a pool of 3
//! serving 40 tasks with never more than 3 sessions; a checkout timing out at exactly its
//! virtual deadline, a waiter getting the connection given back, a killed idle connection
//! discarded by the health check and a killed checked-out one on its way back, and closing
//! the pool failing a waiting checkout at once; and, in a child process, a run of all of
//! it leaving no task, no registered fd and no open fd (`copy_and_pool.rs`).
//!
//! What the port got wrong at first was the user's, and would be in tokio: the server's
//! session, killed, ended its reader but then joined its writer, which a client not
//! reading a COPY OUT had stalled on a full socket, so the killed session never went; the
//! kill now drops both halves at once (the COPY OUT test's last part failed before). The
//! tests were also run against the program broken on purpose: the connection task taking
//! an answer as over once its caller had gone (instead of skipping to its ReadyForQuery)
//! failed four tests (the dropped-query, dropped-after-polls, COPY IN and leak tests, each
//! with a message routed to the wrong caller or to none); the server not skipping to Sync
//! after an error failed the batch test.
//!
//! What porting it found missing in overlap: nothing the program needed. Every call had
//! tokio's (or tokio-util's, tokio-stream's) name and behaved as tokio's would, among them
//! the ones the design leans on: `mpsc::Sender::send` failing as soon as the receiver is
//! dropped while it waits for room (the connection task, blocked handing rows to a slow
//! caller, learns so that the caller has gone and skips the rest of the answer), `is_closed`
//! on a sender whose receiver has gone (the pool's broken-connection check), `try_recv`
//! with `mpsc::error::TryRecvError` at tokio's path; `Notify::notify_waiters` storing no
//! permit (so a cancel request with nothing running cancels nothing later, as Postgres's
//! does); `select!` over `&mut` pinned futures and with `biased;` and a `Some(..) =`
//! pattern disabling a closed channel's branch; `TcpStream::into_split` (the socket
//! closed once both halves are dropped, so a session that ends mid-answer is an end of
//! file to the client); `TcpSocket::set_send_buffer_size` on a listener (inherited by its
//! sessions) and `set_recv_buffer_size` before `connect`; `FramedRead` over an
//! `OwnedReadHalf` with `BytesMut`'s `put_u32`/`put_i16`/`split_to` and indexing;
//! `AsyncReadIntExt::read_u32`;
//! `Semaphore::acquire_owned` (on an `Rc`) and `close` failing a waiting acquire at once;
//! `time::timeout`, `Instant` and `#[overlap::test(start_paused = true)]` over real sockets;
//! a `JoinSet` dropped with its task aborting every session; `fs::write`, `File::open` and
//! `read`; and `overlap::metrics()`'s `tasks_alive` and `registered_fds` for the leak check.
//!
//! Differences it felt, each already in the README's table or the item's docs: the write
//! half ends with `close()` (tokio: `shutdown()`); `Rc` with `Cell`/`RefCell` for `Arc` and
//! locks (the connection's queue of pending answers is never borrowed across an `.await`:
//! the reply sender is cloned out first); `mpsc::UnboundedReceiver` is the bounded
//! `Receiver`'s type, so `UnboundedReceiverStream` is `ReceiverStream` (it builds
//! unchanged). And one that is tokio-util's own and that overlap copies, documented on
//! `Decoder::decode_eof`: a peer gone inside a frame gives kind `Other` ("bytes remaining
//! on stream"), so a client that tells a server vanishing (`UnexpectedEof`) from a
//! malformed message overrides `decode_eof`, as `BackendCodec` does.

mod support;

#[path = "port_user15_pg_wire/client.rs"]
mod client;
#[path = "port_user15_pg_wire/connection.rs"]
mod connection;
#[path = "port_user15_pg_wire/copy_and_pool.rs"]
mod copy_and_pool;
#[path = "port_user15_pg_wire/faults.rs"]
mod faults;
#[path = "port_user15_pg_wire/pool.rs"]
mod pool;
#[path = "port_user15_pg_wire/proto.rs"]
mod proto;
#[path = "port_user15_pg_wire/server.rs"]
mod server;

use std::time::Duration;

use client::{Client, Config, Error, Notification};
use overlap::codec::{BytesMut, Decoder};
use overlap::stream::wrappers::UnboundedReceiverStream;
use overlap::stream::StreamExt;
use proto::{Backend, BackendCodec, Frontend, FrontendCodec, Hello};
use server::Server;
use support::within;

/// A hang guard only (virtual time in the tests on the paused clock).
const HANG: Duration = Duration::from_secs(24 * 3600);

/// A server on `host` and one client of it.
async fn start(
    host: &str,
) -> (
    Server,
    Client,
    overlap::sync::mpsc::UnboundedReceiver<Notification>,
) {
    let server = Server::start(host, server::Config::default())
        .await
        .unwrap();
    let (client, notes, _task) = Client::connect(server.addr, &Config::default())
        .await
        .unwrap();
    (server, client, notes)
}

fn rows(values: &[&str]) -> Vec<client::Row> {
    values.iter().map(|v| vec![Some(v.to_string())]).collect()
}

fn decode_all<D: Decoder<Error = std::io::Error>>(
    mut codec: D,
    chunks: &[&[u8]],
) -> std::io::Result<Vec<D::Item>> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Some(m) = codec.decode(&mut buf)? {
            out.push(m);
        }
    }
    while let Some(m) = codec.decode_eof(&mut buf)? {
        out.push(m);
    }
    Ok(out)
}

#[test]
fn messages_round_trip_split_at_every_byte() {
    let backend = vec![
        Backend::AuthOk,
        Backend::ParameterStatus("server_version".into(), "16".into()),
        Backend::KeyData {
            pid: 7,
            key: 0xdead_beef,
        },
        Backend::RowDescription(vec!["a".into(), "b".into()]),
        Backend::DataRow(vec![Some(b"1".to_vec()), None, Some(vec![])]),
        Backend::CommandComplete("SELECT 1".into()),
        Backend::EmptyQuery,
        Backend::Error {
            code: "42601".into(),
            message: "syntax".into(),
        },
        Backend::Notice("hm".into()),
        Backend::Notification {
            pid: 9,
            channel: "jobs".into(),
            payload: "x y".into(),
        },
        Backend::ParseComplete,
        Backend::BindComplete,
        Backend::CopyInResponse,
        Backend::CopyOutResponse,
        Backend::CopyData(vec![0, 1, 2, 255]),
        Backend::CopyDone,
        Backend::Ready(b'I'),
    ];
    let mut wire = BytesMut::new();
    backend.iter().for_each(|m| m.encode(&mut wire));
    // The exact bytes of two, as the protocol's docs draw them.
    let mut z = BytesMut::new();
    Backend::Ready(b'I').encode(&mut z);
    assert_eq!(&z[..], b"Z\0\0\0\x05I");
    let mut d = BytesMut::new();
    Backend::DataRow(vec![Some(b"ab".to_vec()), None]).encode(&mut d);
    assert_eq!(&d[..], b"D\0\0\0\x10\0\x02\0\0\0\x02ab\xff\xff\xff\xff");
    for cut in 0..=wire.len() {
        let got = decode_all(BackendCodec { max: 1024 }, &[&wire[..cut], &wire[cut..]]).unwrap();
        assert_eq!(got, backend, "cut at {cut}");
    }
    let bytes: Vec<&[u8]> = wire.chunks(1).collect();
    assert_eq!(
        decode_all(BackendCodec { max: 1024 }, &bytes).unwrap(),
        backend
    );

    let frontend = vec![
        Frontend::Query("echo a; rows 2".into()),
        Frontend::Parse("echo $1".into()),
        Frontend::Bind(vec![Some(b"x".to_vec()), None]),
        Frontend::Execute,
        Frontend::Sync,
        Frontend::CopyData(b"1\ta\n".to_vec()),
        Frontend::CopyDone,
        Frontend::CopyFail("why".into()),
        Frontend::Terminate,
    ];
    let mut wire = BytesMut::new();
    frontend.iter().for_each(|m| m.encode(&mut wire));
    for cut in 0..=wire.len() {
        let got = decode_all(FrontendCodec { max: 1024 }, &[&wire[..cut], &wire[cut..]]).unwrap();
        assert_eq!(got, frontend, "cut at {cut}");
    }
    for hello in [
        Hello::Startup { user: "app".into() },
        Hello::Cancel { pid: 1000, key: 42 },
    ] {
        let mut b = BytesMut::new();
        hello.encode(&mut b);
        assert_eq!(Hello::decode(&b).unwrap(), hello);
    }
    let mut cancel = BytesMut::new();
    Hello::Cancel { pid: 1, key: 2 }.encode(&mut cancel);
    assert_eq!(
        &cancel[..],
        [0, 0, 0, 16, 4, 0xd2, 0x16, 0x2e, 0, 0, 0, 1, 0, 0, 0, 2]
    );
}

#[test]
fn the_decoders_refuse_malformed_messages() {
    let refused = |chunks: &[&[u8]], why: &str| {
        let err = decode_all(BackendCodec { max: 100 }, chunks).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{chunks:?}");
        assert!(err.to_string().contains(why), "{chunks:?}: {err}");
    };
    refused(&[b"D\0\0\0\x02"], "length 2, below 4");
    // Over the limit: refused from the header alone, its body never waited for.
    refused(&[b"D\0\0\0\x69"], "101 bytes, over the limit of 100");
    refused(&[b"D\x40\0\0\0"], "over the limit of 100");
    refused(&[b"?\0\0\0\x04"], "unknown message type '?'");
    refused(&[b"Z\0\0\0\x04"], "body cut short");
    refused(&[b"Z\0\0\0\x06II"], "1 bytes after the message's fields");
    refused(&[b"C\0\0\0\x06ab"], "string without its NUL");
    refused(&[b"D\0\0\0\x0a\0\x01\xff\xff\xff\xfe"], "value length -2");
    refused(&[b"R\0\0\0\x08\0\0\0\x05"], "authentication method 5");
    // The end inside a message is not a message.
    let err = decode_all(BackendCodec { max: 100 }, &[b"Z\0\0\0"]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    assert_eq!(
        err.to_string(),
        "server closed the connection 4 bytes into a message"
    );
    let err = decode_all(FrontendCodec { max: 100 }, &[b"Q\0\0\0\x05x"]).unwrap_err();
    assert!(err.to_string().contains("NUL"), "{err}");
    assert!(
        Hello::decode(&[0, 0, 0, 8, 0, 2, 0, 0]).is_err(),
        "protocol 2.0"
    );
    assert!(
        Hello::decode(&[0, 0, 0, 9, 0, 3, 0, 0, 0]).is_err(),
        "no user"
    );
    // Whatever the bytes, an answer and never a panic.
    let mut rng = support::Rng(15);
    for _ in 0..5000 {
        let len = rng.below(24);
        let bytes: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
        let _ = decode_all(BackendCodec { max: 64 }, &[&bytes]);
        let _ = decode_all(FrontendCodec { max: 64 }, &[&bytes]);
        let _ = Hello::decode(&bytes);
    }
}

#[overlap::test]
async fn startup_simple_and_extended_queries() {
    within(
        HANG,
        async {
            let (server, client, _notes) = start("127.0.0.1").await;
            let pid = client.shared.pid;
            assert_eq!(pid, 1000, "the first session's pid");
            assert_eq!(server.state.key_of(pid), Some(client.shared.key));
            // Several statements in one Query: all their rows.
            let got = client.simple_query("echo a; rows 3; echo b").await.unwrap();
            assert_eq!(got, rows(&["a", "0", "1", "2", "b"]));
            assert_eq!(client.simple_query("").await.unwrap(), rows(&[]));
            assert_eq!(client.simple_query(" ; ").await.unwrap(), rows(&[]));
            // An error: the statements after it not run, the connection fine.
            let before = server.state.stats.executed.get();
            let err = client
                .simple_query("echo x; fail; echo y")
                .await
                .unwrap_err();
            assert_eq!(err.code(), Some("42601"), "{err}");
            assert_eq!(server.state.stats.executed.get() - before, 2);
            // The extended protocol, with a parameter and a NULL.
            let got = client
                .query("echo $1", &[Some("with space")])
                .await
                .unwrap();
            assert_eq!(got, rows(&["with space"]));
            assert_eq!(
                client.query("echo $1", &[None]).await.unwrap(),
                [vec![None]]
            );
            let err = client.query("echo $2", &[Some("one")]).await.unwrap_err();
            assert_eq!(err.code(), Some("08P01"));
            assert_eq!(
                client.query("rows 2", &[]).await.unwrap(),
                rows(&["0", "1"])
            );
            assert_eq!(client.shared.stats.answers_skipped.get(), 0);
            drop(client);
            until_sessions(&server, 0).await;
            server.stop().await;
        },
        "queries",
    )
    .await;
}

/// Waits until the server has `n` sessions.
async fn until_sessions(server: &Server, n: usize) {
    let stats = &server.state.stats;
    support::until(|| stats.sessions_now.get() == n, "the sessions").await;
}

#[overlap::test]
async fn fifty_tasks_pipeline_on_one_connection() {
    within(
        HANG,
        async {
            let (server, client, _notes) = start("127.0.0.1").await;
            let mut tasks = overlap::task::JoinSet::new();
            for i in 0..50usize {
                let client = client.clone();
                tasks.spawn(async move {
                    let got = match i % 3 {
                        0 => client.simple_query(&format!("echo t{i}")).await,
                        1 => client.query("echo $1", &[Some(&format!("t{i}"))]).await,
                        _ => client.simple_query(&format!("rows {i}")).await,
                    };
                    (i, got.unwrap())
                });
            }
            let mut seen = 0;
            while let Some(r) = tasks.join_next().await {
                let (i, got) = r.unwrap();
                let want: Vec<client::Row> = if i % 3 == 2 {
                    (0..i).map(|n| vec![Some(n.to_string())]).collect()
                } else {
                    rows(&[&format!("t{i}")])
                };
                assert_eq!(got, want, "task {i}");
                seen += 1;
            }
            assert_eq!(seen, 50);
            let depth = client.shared.stats.max_in_flight.get();
            assert!(depth > 1, "requests were pipelined: {depth}");
            assert_eq!(server.state.stats.sessions_total.get(), 1);
            server.stop().await;
        },
        "pipelining",
    )
    .await;
}

#[overlap::test]
async fn an_error_mid_batch_skips_the_rest_until_sync() {
    within(
        HANG,
        async {
            let (server, client, _notes) = start("127.0.0.1").await;
            let executed = || server.state.stats.executed.get();
            let before = executed();
            let results = client
                .batch(&[
                    ("echo $1", &[Some("first")]),
                    ("nonsense", &[]),
                    ("echo third", &[]),
                ])
                .await
                .unwrap();
            assert_eq!(results.len(), 3);
            assert_eq!(results[0].as_ref().unwrap(), &rows(&["first"]));
            assert_eq!(results[1].as_ref().unwrap_err().code(), Some("42601"));
            assert!(
                matches!(results[2], Err(Error::Skipped)),
                "{:?}",
                results[2]
            );
            assert_eq!(executed() - before, 2, "the third never ran");
            // Separate pipelined requests, each with its own Sync: a failure in the middle
            // touches only its own.
            let (a, b, c) = overlap::join!(
                client.query("echo a", &[]),
                client.query("fail", &[]),
                client.simple_query("echo c"),
            );
            assert_eq!(a.unwrap(), rows(&["a"]));
            assert_eq!(b.unwrap_err().code(), Some("42601"));
            assert_eq!(c.unwrap(), rows(&["c"]));
            let all_good = client
                .batch(&[("echo 1", &[]), ("rows 2", &[])])
                .await
                .unwrap();
            assert_eq!(all_good[1].as_ref().unwrap(), &rows(&["0", "1"]));
            server.stop().await;
        },
        "batch",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn notifications_arrive_while_a_query_is_in_flight() {
    within(
        HANG,
        async {
            let (server, listener, notes) = start("127.0.0.1").await;
            let mut notes = UnboundedReceiverStream::new(notes);
            let (talker, _, _) = Client::connect(server.addr, &Config::default())
                .await
                .unwrap();
            listener.simple_query("listen jobs").await.unwrap();
            listener.simple_query("listen other").await.unwrap();
            let start = overlap::time::Instant::now();
            let slow = overlap::spawn({
                let listener = listener.clone();
                async move { listener.simple_query("sleep 10000").await }
            });
            for i in 0..3 {
                talker
                    .simple_query(&format!("notify jobs job {i}"))
                    .await
                    .unwrap();
            }
            talker.simple_query("notify nobody x").await.unwrap();
            for i in 0..3 {
                let n = notes.next().await.unwrap();
                let want = Notification {
                    pid: talker.shared.pid,
                    channel: "jobs".into(),
                    payload: format!("job {i}"),
                };
                assert_eq!(n, want);
            }
            assert!(!slow.is_finished(), "the query still running");
            assert!(start.elapsed() < Duration::from_secs(10));
            assert_eq!(slow.await.unwrap().unwrap(), rows(&["slept"]));
            assert_eq!(
                start.elapsed(),
                Duration::from_secs(10),
                "on the paused clock"
            );
            // A notification on the listener's own channel from itself, between answers.
            listener.simple_query("notify other self").await.unwrap();
            let n = notes.next().await.unwrap();
            assert_eq!((n.pid, n.payload.as_str()), (listener.shared.pid, "self"));
            assert!(
                notes.into_inner().try_recv().is_err(),
                "nothing from `nobody`"
            );
            assert_eq!(listener.shared.stats.notifications.get(), 4);
            server.stop().await;
        },
        "notifications",
    )
    .await;
}

#[overlap::test]
async fn the_same_over_ipv6_loopback() {
    within(
        HANG,
        async {
            let (server, client, _notes) = start("::1").await;
            assert!(server.addr.is_ipv6());
            let (a, b) = overlap::join!(
                client.simple_query("rows 100"),
                client.query("echo $1", &[Some("six")])
            );
            assert_eq!(a.unwrap().len(), 100);
            assert_eq!(b.unwrap(), rows(&["six"]));
            let mut copy = client.copy_in("copy in v6").await.unwrap();
            copy.send(b"1\tone\n2\ttwo\n".to_vec()).await.unwrap();
            assert_eq!(copy.finish().await.unwrap(), 2);
            let stored = server.state.tables.borrow().get("v6").cloned();
            assert_eq!(stored.as_deref(), Some(&b"1\tone\n2\ttwo\n"[..]));
            server.stop().await;
        },
        "::1",
    )
    .await;
}
