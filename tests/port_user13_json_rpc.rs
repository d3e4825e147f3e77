//! A user's LSP-style JSON-RPC 2.0 peer over a child process's stdio, the way an editor
//! talks to a language server, sketched as one would for tokio (`tokio::process`,
//! tokio-util's codec, `JoinSet`, `oneshot`), then written for overlap by changing
//! `tokio::` to `overlap::` and `tokio_util::codec` to `overlap::codec`: a tiny JSON value
//! (`port_user13_json_rpc/json.rs`, there being no serde here), the `Content-Length`
//! framing as a `Decoder`/`Encoder` with limits (`framing.rs`), the client that spawns
//! the server and routes its answers (`client.rs`), and the server, this test binary run
//! again (`server.rs`).
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! use tokio::process::Command;
//! use tokio::sync::{mpsc, oneshot};
//! use tokio::task::{AbortHandle, JoinSet};
//! use tokio_util::codec::{Decoder, Encoder, FramedRead, FramedWrite};
//! use futures::{SinkExt, StreamExt};
//!
//! // the client
//! let mut child = Command::new(server).stdin(Stdio::piped()).stdout(Stdio::piped())
//!     .stderr(Stdio::piped()).kill_on_drop(true).spawn()?;
//! let mut tasks = JoinSet::new();
//! tasks.spawn(async move {                      // the writer
//!     let mut sink = FramedWrite::new(stdin, LspCodec::new(MAX));
//!     while let Some(msg) = rx.recv().await { if sink.send(msg).await.is_err() { break } }
//! });
//! tasks.spawn(async move {                      // the reader
//!     let mut input = FramedRead::new(stdout, LspCodec::new(MAX));
//!     let why = loop {
//!         match input.next().await {
//!             Some(Ok(Frame::Message(body))) => route(parse(&body)?),  // by id to its oneshot
//!             Some(Ok(Frame::Oversized { .. })) | Some(Err(_)) | None => break ..,
//!         }
//!     };
//!     for (_, tx) in pending.borrow_mut().drain() { let _ = tx.send(Err(Closed(why.clone()))); }
//! });
//! tasks.spawn(async move {                      // stderr, a line at a time
//!     let mut lines = BufReader::new(stderr).lines();
//!     while let Some(line) = lines.next_line().await? { logs.send(line)?; }
//! });
//! async fn request(&self, method: &str, params: Json) -> Result<Json, RpcError> {
//!     let (tx, rx) = oneshot::channel();
//!     self.pending.borrow_mut().insert(id, tx);
//!     let guard = Withdraw { id, client: self, answered: false }; // drop: remove + $/cancelRequest
//!     self.out.send(request(id, method, params))?;
//!     let reply = rx.await; ..
//! }
//! tokio::time::timeout(limit, client.request(m, p)).await.unwrap_or(Err(RpcError::Timeout))
//!
//! // the server
//! let mut input = FramedRead::new(tokio::io::stdin(), LspCodec::new(MAX));
//! let mut handlers = JoinSet::new();
//! let mut running: HashMap<String, AbortHandle> = HashMap::new();
//! loop {
//!     tokio::select! {
//!         Some(done) = handlers.join_next_with_id() => { /* forget its abort handle */ }
//!         frame = input.next() => match frame { .. }   // dispatch by method
//!     }
//! }
//! // a request: running.insert(id, handlers.spawn(async move { out.send(respond(id, handle(..).await)) }))
//! // $/cancelRequest: if !handle.is_finished() { handle.abort(); out.send(error(id, -32800)) }
//! ```
//!
//! The tests check, with real child processes over real pipes: JSON values with every
//! escape, surrogate pairs, numbers and nesting round-trip, and malformed JSON is an error
//! naming the offset, never a panic; the codec frames input split at every byte,
//! ignores other header fields, and refuses a missing, non-numeric, signed, repeated or
//! 20-digit `Content-Length`, a header line with no colon and a header over its limit
//! (its buffer bounded), skips an oversized body and reports a cut one at end of input;
//! a frame buffered behind a decoding error waiting for more input (the hazard below); a
//! hundred concurrent requests answered in an order the test picks, each reaching its
//! own caller; a 1 MiB body with escapes both ways; an oversized message answered with
//! -32600 and a null id while the server stays up, and one from the server failing the
//! client's pending requests with a clear error; a bad header, a missing length and an
//! endless header each ending the server with code 2 and a line saying why, and a body
//! cut short by the end of input the same; bad JSON (-32700), a message with no method
//! (-32600) and an unknown method (-32601), the server going on; a request future dropped
//! in a lost `select!` withdrawn (no map entry left), `$/cancelRequest` sent, the
//! server's handler aborted (its file never written, the release finding nobody) and the
//! -32800 answer arriving late, while the same request not dropped does write the file; a
//! timeout the same; notifications in order and before the
//! response sent after them; stderr lines forwarded; a crash failing every pending
//! request and every later one with `Closed`; `shutdown` then `exit` reaping the child
//! with code 0, a request between them refused, `exit` without `shutdown` code 1; the
//! client dropped killing and reaping its child, a hung one that would not end at the
//! end of its input; and no fd, task or child left after a run with a cancel, a
//! timeout, a crash and a drop.
//!
//! What porting it found missing in overlap: nothing the sketch calls. Every call it makes
//! has its counterpart under the same name and contract: `process::Command` with piped
//! stdio and `kill_on_drop`, `Child::{id, wait}` (stdin closed first, the id `None` once
//! reaped) and the `ChildStdin`/`ChildStdout`/`ChildStderr` names; `io::{stdin, stdout,
//! stderr}` for the server's side; `codec::{Decoder, Encoder, FramedRead, FramedWrite,
//! BytesMut}` (`split_to`, `advance`, `reserve`, slices through `Deref`); `JoinSet::spawn`
//! giving an `AbortHandle` (`abort`, `is_finished`, `id`), `join_next_with_id` in a
//! `select!` with a refutable pattern, `try_join_next_with_id` and `JoinError::id`;
//! `sync::{mpsc, oneshot}` (`oneshot::Sender::is_closed` included); `time::timeout`; and
//! `future::join_all`, `join!` and `select!` for the tests. A dropped `Child` with
//! `kill_on_drop` is killed and reaped in the background, as tokio's is.
//!
//! Checking the process API the port leans on against tokio 1.54's, name by name, turned
//! up two conversions with no counterpart, which a client handed its server's command or
//! child by other code reaches for: `Command::into_std` (std's builder back, to spawn
//! blocking or hand to a crate that takes one) and `ChildStdin::from_std`,
//! `ChildStdout::from_std`, `ChildStderr::from_std` (a std child's pipes taken over). They
//! are there now, under tokio's names and contracts (`into_std` loses `kill_on_drop`, as
//! tokio's does; the two output types being one `Receiver`, its `from_std` takes either
//! std type), with `tests/process_std_conversions.rs`. Left as they are: tokio's
//! `Command::pre_exec` is `as_std_mut().pre_exec` here (the README says so), and tokio's
//! `ChildStdin::into_owned_fd()?` gives the fd back in blocking mode where overlap's
//! `into_owned_fd` keeps it non-blocking and returns no `Result` (so a port's `?` does not
//! compile): it is `into_blocking_fd()?` here, which the README's process row now says.
//!
//! What the port changed, against tokio: the imports (`futures::{SinkExt, StreamExt}` are
//! `overlap::sink::SinkExt` and `overlap::stream::StreamExt`); `Rc`/`RefCell` where tokio's
//! `spawn` needs `Arc`/`Mutex`; the stderr forwarder reads with `read_until` (futures'
//! `lines()` has no `next_line`, and drops a line that is no UTF-8 with an error, both as
//! the README says); a request future raced by name in `select!` is moved in with
//! `{ fut }` (a bare name is borrowed and must be `Unpin`; the compile error said so).
//!
//! What the port got wrong at first was the user's, and would be in tokio: `Client::wait`
//! joined the writer task, which waits on a channel whose sender the client itself holds,
//! and hung after a crash; it now sends the writer its close first (as `Child::wait`
//! closes stdin). One hazard the design avoids, in both runtimes: after a decoding error a
//! `FramedRead` ends once and then reads before it decodes again (tokio-util's rule), so
//! a message buffered behind the error waits for more input (see
//! `units::a_frame_buffered_behind_a_decoding_error_waits_for_more_input`); a server that
//! answered an oversized message as an error and then waited for the next request would
//! hang with that request in its buffer. The codec hands an oversized message up as
//! `Frame::Oversized` instead, and keeps errors for input with no frame boundary left.
//!
//! The server is this test binary run again with an environment variable set, through
//! `sh -c 'exec 3>&1 >/dev/null; exec "$0" json_rpc_server_child …'`: the harness prints
//! its "running 1 test" lines to its stdout, which would be garbage in the protocol, so
//! they go to `/dev/null` and the server takes the pipe back from fd 3 (`dup2`), then
//! exits before the harness prints its result.

mod support;

#[path = "port_user13_json_rpc/client.rs"]
mod client;
#[path = "port_user13_json_rpc/framing.rs"]
mod framing;
#[path = "port_user13_json_rpc/json.rs"]
mod json;
#[path = "port_user13_json_rpc/more.rs"]
mod more;
#[path = "port_user13_json_rpc/server.rs"]
mod server;
#[path = "port_user13_json_rpc/units.rs"]
mod units;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use client::{Client, Limits, RpcError};
use json::Json;
use server::{INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR, REQUEST_CANCELLED};
use support::{until, within};

/// A hang guard only: every test ends long before it.
const HANG: Duration = Duration::from_secs(60);

/// The server, when this binary is run as one (see `Client::spawn`); otherwise nothing.
#[test]
fn json_rpc_server_child() {
    if std::env::var_os(server::SERVER_ENV).is_some() {
        server::run_server_child();
    }
}

/// The server's counters: live handlers, requests cancelled, holders still waiting.
pub async fn stats(c: &Client) -> (i64, i64, i64) {
    let s = c.request("stats", Json::Null).await.unwrap();
    let n = |k| s.get(k).and_then(Json::as_i64).unwrap();
    (n("handlers"), n("cancelled"), n("waiting"))
}

/// Waits (asking the server over and over) until `n` holders wait.
pub async fn until_waiting(c: &Client, n: i64) {
    while stats(c).await.2 != n {
        overlap::time::sleep(Duration::from_millis(1)).await;
    }
}

fn hold(key: &str) -> Json {
    Json::obj([("key", key.into())])
}

async fn release(c: &Client, key: &str) -> i64 {
    let woken = c.request("release", hold(key)).await.unwrap();
    woken.as_i64().unwrap()
}

#[overlap::test]
async fn a_hundred_concurrent_requests_answered_out_of_order_reach_their_callers() {
    within(
        HANG,
        async {
            let c = Rc::new(Client::spawn().unwrap());
            let order = Rc::new(RefCell::new(Vec::new()));
            let mut callers = Vec::new();
            for i in 0..100 {
                let (c, order) = (c.clone(), order.clone());
                callers.push(overlap::spawn(async move {
                    let key = format!("k{i}");
                    let r = c.request("hold", hold(&key)).await.unwrap();
                    assert_eq!(r, Json::obj([("released", key.as_str().into())]));
                    order.borrow_mut().push(i);
                }));
            }
            until_waiting(&c, 100).await;
            // Released in an order of the test's choosing: each answer goes to its caller.
            let mut picked: Vec<usize> = (0..100).map(|i| (i * 37 + 11) % 100).collect();
            picked.dedup();
            assert_eq!(picked.len(), 100);
            for (n, &i) in picked.iter().enumerate() {
                assert_eq!(release(&c, &format!("k{i}")).await, 1);
                let c = &order;
                until(|| c.borrow().len() == n + 1, "the released caller").await;
            }
            assert_eq!(*order.borrow(), picked);
            for caller in callers {
                caller.await.unwrap();
            }
            assert_eq!(c.shared.pending(), 0);
            assert!(c.shared.late.borrow().is_empty());
            let c = Rc::into_inner(c).unwrap();
            assert!(c.shutdown().await.unwrap().success());
        },
        "the concurrent requests",
    )
    .await;
}

#[overlap::test]
async fn a_1_mib_body_with_escapes_goes_both_ways() {
    within(
        HANG,
        async {
            let c = Client::spawn().unwrap();
            let piece = "quote \" backslash \\ newline \n tab \t nul \u{0} é 🦀 ";
            let text: String = piece.repeat((1 << 20) / piece.len() + 1);
            let params = Json::obj([("text", Json::Str(text.clone())), ("n", Json::Num(1.5e300))]);
            let sent = params.to_text().len();
            assert!(sent > 1 << 20, "{sent}");
            let echoed = c.request("echo", params.clone()).await.unwrap();
            assert!(echoed == params, "the same value back");
            assert_eq!(
                echoed.get("text").and_then(Json::as_str),
                Some(text.as_str())
            );
            assert!(c.shutdown().await.unwrap().success());
        },
        "the 1 MiB body",
    )
    .await;
}

#[overlap::test]
async fn an_oversized_message_is_skipped_and_answered_and_the_server_stays_up() {
    within(
        HANG,
        async {
            let limits = Limits {
                server_max_body: 64 << 10,
                ..Limits::default()
            };
            let c = Client::spawn_with(limits).unwrap();
            let big = Json::obj([("text", Json::Str("x".repeat(300_000)))]);
            let len = Json::obj([
                ("jsonrpc", "2.0".into()),
                ("id", 1.into()), // its first request
                ("method", "echo".into()),
                ("params", big.clone()),
            ])
            .to_text()
            .len();
            // Sent as a request would be; the server cannot know its id.
            let r = c
                .request_timeout("echo", big, Duration::from_millis(300))
                .await;
            assert_eq!(r, Err(RpcError::Timeout), "no answer to its id");
            until(|| !c.shared.unaddressed.borrow().is_empty(), "the error").await;
            let (code, message) = c.shared.unaddressed.borrow()[0].clone();
            assert_eq!(code, INVALID_REQUEST);
            let want = format!("over the maximum of {}", 64 << 10);
            assert!(message.contains(&want), "{message}");
            assert!(message.contains(&format!("of {len} bytes")), "{message}");
            // Still up, the stream still in step: a body just under the limit passes.
            let fits = Json::Str("y".repeat(60_000));
            assert_eq!(c.request("echo", fits.clone()).await, Ok(fits));
            assert!(c.shutdown().await.unwrap().success());
        },
        "the oversized message",
    )
    .await;
}

#[overlap::test]
async fn a_message_over_the_clients_limit_fails_its_pending_requests_clearly() {
    within(
        HANG,
        async {
            let limits = Limits {
                client_max_body: 32 << 10,
                ..Limits::default()
            };
            let c = Client::spawn_with(limits).unwrap();
            let (small, big) = (Json::Str("s".repeat(1000)), Json::Str("b".repeat(50_000)));
            assert_eq!(c.request("echo", small.clone()).await, Ok(small));
            let held = c.request("hold", hold("never"));
            let answer = c.request("echo", big);
            let (held, answer) = overlap::join!(held, answer);
            for r in [held, answer] {
                let Err(RpcError::Closed(why)) = r else {
                    panic!("{r:?}")
                };
                assert!(why.contains("over the maximum of 32768"), "{why}");
            }
            let later = c.request("echo", Json::Null).await;
            assert!(matches!(later, Err(RpcError::Closed(_))), "{later:?}");
            assert_eq!(c.shared.pending(), 0);
        },
        "the client's limit",
    )
    .await;
}

#[overlap::test]
async fn bad_json_no_method_and_unknown_methods_get_their_codes_and_the_server_goes_on() {
    within(
        HANG,
        async {
            let c = Client::spawn().unwrap();
            let frame = |body: &str| format!("Content-Length: {}\r\n\r\n{body}", body.len());
            c.send_raw(frame("{\"jsonrpc\": \"2.0\", \"id\": 5, \"method\": ").as_bytes());
            c.send_raw(frame("[1, 2, 3]").as_bytes());
            c.send_raw(frame(r#"{"jsonrpc":"2.0","id":77,"params":{}}"#).as_bytes());
            let r = c.request("textDocument/frobnicate", Json::Null).await;
            let want = RpcError::Remote {
                code: METHOD_NOT_FOUND,
                message: "Method not found: textDocument/frobnicate".into(),
            };
            assert_eq!(r, Err(want));
            let unaddressed = c.shared.unaddressed.borrow().clone();
            assert_eq!(unaddressed.len(), 2, "{unaddressed:?}");
            assert_eq!(unaddressed[0].0, PARSE_ERROR);
            assert!(
                unaddressed[0]
                    .1
                    .starts_with("Parse error: unexpected end of input at byte"),
                "{unaddressed:?}"
            );
            assert_eq!(unaddressed[1].0, INVALID_REQUEST);
            let late = c.shared.late.borrow().clone();
            assert_eq!(late.len(), 1, "{late:?}");
            assert_eq!(
                (late[0].0, late[0].1.as_ref().unwrap_err().code()),
                (77, Some(INVALID_REQUEST))
            );
            assert_eq!(c.request("echo", "ok".into()).await, Ok("ok".into()));
            assert!(c.shutdown().await.unwrap().success());
        },
        "the bad requests",
    )
    .await;
}

#[overlap::test]
async fn a_dropped_request_is_withdrawn_cancelled_and_its_handler_aborted() {
    let dir = support::TempDir::new("json-rpc-cancel");
    let touched = dir.join("touched");
    within(
        HANG,
        async {
            let c = Client::spawn().unwrap();
            let params = Json::obj([
                ("key", "c".into()),
                ("touch", touched.to_str().unwrap().into()),
            ]);
            // The user's request loses a select! (the user moved on): its future is dropped.
            let won = overlap::select! {
                r = c.request("hold", params) => Some(r),
                _ = until_waiting(&c, 1) => None,
            };
            assert_eq!(won, None);
            assert_eq!(c.shared.pending(), 0, "withdrawn from the map");
            // The server aborted the handler, and said so to an id nobody waits on now.
            while stats(&c).await.1 != 1 {
                overlap::time::sleep(Duration::from_millis(1)).await;
            }
            until(|| !c.shared.late.borrow().is_empty(), "the late answer").await;
            let late = c.shared.late.borrow().clone();
            assert_eq!(late.len(), 1);
            assert_eq!(
                late[0].1.as_ref().unwrap_err().code(),
                Some(REQUEST_CANCELLED)
            );
            // The aborted handler is gone: releasing it wakes nobody, and its file is
            // never written (another round trip after the release, to be sure).
            assert_eq!(release(&c, "c").await, 0);
            assert_eq!(stats(&c).await, (0, 1, 0));
            assert!(!touched.exists(), "the aborted handler ran on");
            // The same request not dropped does write it: the check above can fail.
            let params = Json::obj([
                ("key", "d".into()),
                ("touch", touched.to_str().unwrap().into()),
            ]);
            let (held, woken) = overlap::join!(c.request("hold", params), async {
                until_waiting(&c, 1).await;
                release(&c, "d").await
            });
            assert_eq!((held.is_ok(), woken), (true, 1));
            assert!(touched.exists());
            assert!(c.shutdown().await.unwrap().success());
        },
        "the cancellation",
    )
    .await;
}

#[overlap::test]
async fn a_request_past_its_timeout_fails_and_is_cancelled_on_the_server() {
    within(
        HANG,
        async {
            let c = Client::spawn().unwrap();
            let r = c
                .request_timeout("hold", hold("t"), Duration::from_millis(200))
                .await;
            assert_eq!(r, Err(RpcError::Timeout));
            assert_eq!(c.shared.pending(), 0);
            until(|| !c.shared.late.borrow().is_empty(), "the -32800 answer").await;
            assert_eq!(stats(&c).await, (0, 1, 0));
            assert_eq!(release(&c, "t").await, 0);
            // One that is answered in time is not cancelled.
            let r = c
                .request_timeout("echo", "fast".into(), Duration::from_secs(30))
                .await;
            assert_eq!(r, Ok("fast".into()));
            assert_eq!(stats(&c).await.1, 1);
            assert!(c.shutdown().await.unwrap().success());
        },
        "the timeout",
    )
    .await;
}
