//! A user's tour of `tokio::select!` idioms, sketched as one would for tokio (from tokio's
//! docs, the tutorial's "Select" chapter and mini-redis's shutdown handling) and then
//! written for overlap, changing `tokio::` to `overlap::`: a mini-redis-shaped server whose
//! connections race reading a frame against a shutdown broadcast and drain on shutdown
//! (`port_user10_select_idioms/kv_server.rs`); an actor over mpsc, oneshot and watch
//! channels, an `interval` tick and a `JoinSet`, `biased;` for priority and `, if` on a
//! bounded buffer (`actor.rs`); a user's macro, generic fns and a poll-counting future
//! (`idioms.rs`).
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! // mini-redis's connection handler and server
//! while !self.shutdown.is_shutdown() {
//!     let maybe_frame = tokio::select! {
//!         res = self.connection.read_frame() => res?,
//!         _ = self.shutdown.recv() => return Ok(()),
//!     };
//!     let Some(frame) = maybe_frame else { return Ok(()) };
//!     self.connection.write_frame(&apply(frame).await).await?;
//! }
//! tokio::select! { res = server.run() => { .. } _ = shutdown => {} }
//! drop(notify_shutdown); drop(shutdown_complete_tx); let _ = shutdown_complete_rx.recv().await;
//! // an actor
//! loop {
//!     tokio::select! {
//!         biased;
//!         Ok(()) = &mut stop => break,
//!         Ok(()) = cap.changed() => cap_now = *cap.borrow_and_update(),
//!         Some(res) = jobs.join_next() => sent += res?,
//!         Some(cmd) = cmds.recv(), if buf.len() < cap_now => handle(cmd),
//!         _ = tick.tick(), if !buf.is_empty() => jobs.spawn(send(take(&mut buf))),
//!         else => break,
//!     }
//! }
//! // an idle timeout kept across a loop, pushed back on every line
//! let sleep = tokio::time::sleep(idle); tokio::pin!(sleep);
//! loop {
//!     tokio::select! {
//!         line = lines.next_line() => { sleep.as_mut().reset(Instant::now() + idle); .. }
//!         () = &mut sleep => break,
//!     }
//! }
//! // a connect against a timeout; a generic timeout; a macro
//! tokio::select! { Ok(s) = TcpStream::connect(addr) => Some(s), _ = sleep(d) => None }
//! async fn first_or_none<F: Future>(fut: F, d: Duration) -> Option<F::Output> {
//!     tokio::select! { v = fut => Some(v), _ = sleep(d) => None }
//! }
//! ```
//!
//! The tests check: the server answers three clients, keeps a request in flight at
//! shutdown until it is answered, closes the idle connections and accepts no more; the
//! actor sends every value once, never holds more than its capacity, takes a new capacity
//! before more input, stops before reading input once told, and ends by `else` once every
//! input is closed; the reset sleep fires only once the lines stop; a connect wins over a
//! timer and a refused one disables its branch; handlers that `return`, `?`, `break 'outer`
//! with a value and nest a `select!`; a `select!` in a macro, a generic fn and spawned
//! tasks; patterns of many shapes; a disabled branch's future never polled and the losers
//! dropped before the handler; 1000 rounds of a cancel-safe read racing a 1 ms timer
//! losing no byte, over a pipe and over TCP.
//!
//! What the port changed, against tokio: a future given by bare name is borrowed by
//! overlap's `select!` (so a loop polls the same one again, as futures-util's does) and
//! must be an `Unpin` future. That bit twice: mini-redis's `_ = shutdown =>` over an
//! `impl Future` parameter and the generic `v = fut =>` over `F: Future` are compile errors
//! that say to pin the future or move it with `{ fut }`; the port writes `{ shutdown }` and
//! `{ fut }`. A oneshot receiver given by name must be bound `mut` (tokio's moves it), and
//! an `IntoFuture` that is not a future cannot be given by name at all (`{ value }`).
//! Everything else is tokio's as written.
//!
//! What porting it found wrong in `select!`, each fixed and pinned in
//! `tests/select_tokio_syntax.rs`: a `ref mut` binding did not compile (the output was
//! bound by an immutable `let`); a handler's turbofish with nested generics and a comma
//! (`HashMap::<Vec<u8>, u8>::new()`) was cut at the comma; a pattern was checked through a
//! reference, so a string literal against a `&str` output did not compile, and an edition
//! 2024 crate refused `&` patterns and `ref` bindings; and an `IntoFuture` given by name
//! was refused as "not `Unpin`", pointing at the whole `select!`.
//!
//! The tests check timing nowhere: the timers race reads and channels only to make rounds
//! lose, and each outcome asserted holds whichever branch wins.

mod support;

#[path = "port_user10_select_idioms/actor.rs"]
mod actor;
#[path = "port_user10_select_idioms/idioms.rs"]
mod idioms;
#[path = "port_user10_select_idioms/kv_server.rs"]
mod kv_server;
#[path = "port_user10_select_idioms/rounds.rs"]
mod rounds;

use std::rc::Rc;
use std::time::Duration;

use overlap::block_on;
use overlap::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use overlap::net::{TcpListener, TcpStream};
use overlap::sync::{mpsc, oneshot, watch};

use actor::Cmd;
use kv_server::Db;

/// Sends `line` and reads one line back.
async fn ask(stream: &mut BufReader<TcpStream>, line: &str) -> String {
    stream
        .get_mut()
        .write_all(format!("{line}\n").as_bytes())
        .await
        .unwrap();
    let mut reply = String::new();
    stream.read_line(&mut reply).await.unwrap();
    reply.trim_end().to_string()
}

#[test]
fn a_mini_redis_server_answers_then_drains_its_connections_on_shutdown() {
    block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let db = Rc::new(Db::default());
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server = overlap::spawn(kv_server::run(listener, db.clone(), stop_rx));

        let mut clients = Vec::new();
        for i in 0..3 {
            let mut c = BufReader::new(TcpStream::connect(addr).await.unwrap());
            assert_eq!(ask(&mut c, "PING").await, "PONG");
            assert_eq!(ask(&mut c, &format!("SET k{i} v{i}")).await, "OK");
            clients.push(c);
        }
        assert_eq!(ask(&mut clients[0], "GET k2").await, "v2");
        assert_eq!(ask(&mut clients[1], "GET nope").await, "(nil)");
        assert_eq!(
            ask(&mut clients[1], "FLY").await,
            "ERR unknown command 'FLY'"
        );
        // A frame split across two writes is one frame: the read it was racing kept
        // what it had.
        clients[2].get_mut().write_all(b"GET ").await.unwrap();
        overlap::task::yield_now().await;
        assert_eq!(ask(&mut clients[2], "k0").await, "v0");

        // Client 0 has a request in flight when the server is told to shut down.
        clients[0].get_mut().write_all(b"HOLD\n").await.unwrap();
        support::until(|| db.holding.get(), "the HOLD to arrive").await;
        stop_tx.send(()).unwrap();
        // The idle connections are closed: their reads see the end.
        for c in &mut clients[1..] {
            let mut rest = Vec::new();
            c.read_to_end(&mut rest).await.unwrap();
            assert!(rest.is_empty());
        }
        // No new connection is served (the listener is gone or never accepts).
        for _ in 0..5 {
            overlap::task::yield_now().await;
        }
        assert!(
            !server.is_finished(),
            "the drain ended before the held request"
        );
        db.release.notify_one();
        assert_eq!(
            {
                let mut reply = String::new();
                clients[0].read_line(&mut reply).await.unwrap();
                reply
            },
            "RELEASED\n"
        );
        // Then it sees the shutdown and closes too.
        let mut rest = Vec::new();
        clients[0].read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        assert_eq!(server.await.unwrap(), 3);
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "the listener outlived run"
        );
    });
}

#[test]
fn an_actor_sends_every_value_once_within_its_capacity_and_ends_by_else() {
    block_on(async {
        let (cmd_tx, cmd_rx) = mpsc::channel(4);
        let (cap_tx, cap_rx) = watch::channel(3usize);
        let (stop_tx, stop_rx) = oneshot::channel();
        let (sink_tx, mut sink_rx) = mpsc::channel::<Vec<u32>>(1);
        let actor = overlap::spawn(actor::run(
            cmd_rx,
            cap_rx,
            stop_rx,
            sink_tx,
            Duration::from_millis(1),
        ));
        let collector = overlap::spawn(async move {
            let mut got = Vec::new();
            while let Some(batch) = sink_rx.recv().await {
                got.push(batch);
            }
            got
        });
        for v in 0..200u32 {
            if v == 100 {
                cap_tx.send(5).unwrap();
            }
            cmd_tx.send(Cmd::Push(v)).await.unwrap();
            if v % 50 == 0 {
                let (tx, rx) = oneshot::channel();
                cmd_tx.send(Cmd::Buffered(tx)).await.unwrap();
                assert!(rx.await.unwrap() <= 5);
            }
        }
        // Every input closed: the actor flushes what it holds, collects its sends and
        // ends by `else` (the closed stop and cap channels disable their branches).
        drop((cmd_tx, cap_tx, stop_tx));
        let report = actor.await.unwrap();
        assert_eq!(report.ended_by, "else");
        assert_eq!(report.caps, [3, 5]);
        assert!(report.max_buffered <= 5, "{report:?}");
        assert_eq!(report.sent, 200);
        assert!(report.left.is_empty());
        let batches = collector.await.unwrap();
        let mut all: Vec<u32> = batches.iter().flatten().copied().collect();
        assert!(batches.iter().all(|b| !b.is_empty() && b.len() <= 5));
        all.sort_unstable();
        assert_eq!(all, (0..200).collect::<Vec<_>>());
    });
}

#[test]
fn a_biased_actor_takes_its_stop_and_a_new_capacity_before_queued_input() {
    block_on(async {
        let (cmd_tx, cmd_rx) = mpsc::channel(8);
        let (cap_tx, cap_rx) = watch::channel(8usize);
        let (stop_tx, stop_rx) = oneshot::channel();
        let (sink_tx, _sink_rx) = mpsc::channel::<Vec<u32>>(1);
        let report = actor::run(cmd_rx, cap_rx, stop_rx, sink_tx, Duration::from_secs(3600));
        let mut report = std::pin::pin!(report);
        assert!(support::poll_once(report.as_mut()).await.is_pending());
        // Input queued, then a new capacity: the actor takes the capacity first, then only
        // two values (the buffer full, the tick an hour away).
        for v in 0..4 {
            cmd_tx.send(Cmd::Push(v)).await.unwrap();
        }
        cap_tx.send(2).unwrap();
        for _ in 0..3 {
            assert!(support::poll_once(report.as_mut()).await.is_pending());
        }
        // A stop with input still queued: taken before it.
        cap_tx.send(4).unwrap();
        stop_tx.send(()).unwrap();
        let report = report.await;
        assert_eq!(report.ended_by, "stop");
        assert_eq!(report.caps, [8, 2]);
        assert_eq!(report.left, [0, 1]);
        assert_eq!(report.max_buffered, 2);
        drop(cmd_tx);
    });
}
