//! A user's language-server-protocol client (the part of an editor that runs
//! rust-analyzer), sketched as one would with `tokio::process` and tokio-util's codec, then
//! written for overlap: JSON-RPC 2.0 in LSP's `Content-Length: N\r\n\r\n` framing over a
//! child process's stdin and stdout. A hand-rolled JSON subset
//! (`port_user16_lsp_client/json.rs`), the base protocol as a `Decoder` (`framing.rs`),
//! the connection's writer, reader and stderr tasks with the pending-request map
//! (`connection.rs`), the client's API: requests, cancellation, notifications, shutdown,
//! restart (`client.rs`); the tests' server, which is this test binary run again in a
//! server mode (`server.rs`), and the fault tests (`tests_faults.rs`).
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
//! use tokio::process::Command;
//! use tokio::sync::{mpsc, oneshot};
//! use tokio_stream::StreamExt;
//! use tokio_util::{codec::{Decoder, FramedRead}, task::AbortOnDropHandle};
//!
//! let mut child = Command::new(&spec.program).args(&spec.args)
//!     .stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped())
//!     .kill_on_drop(true).spawn()?;
//! let (stdin, stdout, stderr) = (child.stdin.take().unwrap(), ..);
//! let pending: Arc<Mutex<HashMap<i64, oneshot::Sender<Result<Value, RpcError>>>>> = ..;
//! // writer: its own task, so a request is queued at once and the reader never waits on it
//! let (queue, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
//! let writer = AbortOnDropHandle::new(tokio::spawn(async move {
//!     while let Some(frame) = rx.recv().await {
//!         if let Err(e) = stdin.write_all(&frame).await { fail_all(&pending, e); return }
//!     }                                     // queue closed: stdin dropped, the server sees EOF
//! }));
//! // reader: frames until EOF or a bad header, then every pending request fails
//! let reader = AbortOnDropHandle::new(tokio::spawn(async move {
//!     let mut frames = FramedRead::new(stdout, LspCodec::new(max_body));
//!     let why = loop {
//!         match frames.next().await {
//!             Some(Ok(body)) => dispatch(&pending, &notes_tx, &body), // response, notification
//!             Some(Err(e)) => break format!("protocol error: {e}"),
//!             None => break "server closed its stdout".into(),
//!         }
//!     };
//!     fail_all(&pending, why);
//! }));
//! let logger = tokio::spawn(async move {
//!     let mut lines = BufReader::new(stderr).lines();
//!     while let Ok(Some(line)) = lines.next_line().await { log.push(line) } // unbounded!
//! });
//! // a request: an id, a oneshot in the map, the frame queued; dropping the future
//! // (a timeout, a select!) sends $/cancelRequest from a guard's Drop
//! let id = next_id.fetch_add(1, Relaxed);
//! let (tx, rx) = oneshot::channel();
//! pending.lock().unwrap().insert(id, tx);
//! queue.send(frame(&request(id, method, params)))?;
//! let _guard = CancelOnDrop { id, pending: &pending, queue: &queue };
//! rx.await.unwrap_or(Err(RpcError::Closed(..)))
//! // shutdown: LSP's shutdown request and exit notification, stdin closed, then reap
//! timeout(grace, client.request("shutdown", Value::Null)).await;
//! client.notify("exit", Value::Null)?;
//! drop(queue);
//! let status = match timeout(grace, child.wait()).await {
//!     Ok(status) => status?,
//!     Err(_) => { child.kill().await?; child.wait().await? }
//! };
//! ```
//!
//! The tests check, with a real server process over real pipes (the server answering
//! most requests inline, reading nothing while it writes, as simple servers do): the JSON
//! subset (every escape, surrogate pairs, `i64` bounds, nineteen kinds of bad input with
//! their offsets, nesting bounded, a 100,000-deep `[[[…` refused without a stack
//! overflow); the decoder fed three frames whole and a byte at a time, a lowercase
//! `content-length` and a `Content-Type`, and ten bad headers (missing or non-numeric
//! length, over the limit and over `usize`, no colon, not UTF-8, a header over 8 KiB
//! refused before its end, a stream ending mid-body and mid-header); `initialize`, its
//! `window/logMessage`, an exact echo, `MethodNotFound`, `shutdown`/`exit` with exit code
//! 0, the server's stderr lines exactly, the child reaped (not among our children, no
//! `/proc` entry) and no task left; notifications both ways, the server's `$/progress`
//! delivered while their request is still unanswered, a request from the server answered
//! `MethodNotFound` (which the server saw); four requests answered out of order, the order
//! made by the test (gates released by notifications), not by timing; a request dropped
//! after it was sent and one timed out, each cancelled (the server saw `$/cancelRequest`
//! with the right id, and its `RequestCancelled` answer was discarded and counted); 8 MiB
//! each way at once (the server writes its reply inline, reading nothing meanwhile, so
//! the client must read while it is still writing its own); a
//! crash mid-reply failing all three pending requests with the same clear reason, later
//! calls failing at once, exit code 3, then a restart with a new pid; four kinds of broken
//! framing and a reply over the client's limit each ending the connection with a protocol
//! error, the server then ending at EOF (exit 7); a body that is no JSON counted, the
//! connection going on; `exit` without `shutdown` giving exit code 1 and failing the
//! pending request; a server ignoring `exit` and EOF killed after the grace period
//! (`SIGKILL`); stdin closed giving the server EOF; the client dropped with a request in
//! flight, its server killed and reaped and its three tasks gone; two servers at once,
//! neither holding the other's stdin; a server program that does not exist; the stderr
//! log bounded (a 100,000-byte line cut at 4 KiB and marked, the rest skipped), bytes
//! that are not UTF-8 logged lossily, and a crashing server's last words without a
//! newline kept.
//!
//! What porting it found missing (nothing the program needed; the differences):
//!
//! - Nothing was missing. `process::Command` with `kill_on_drop`, piped stdio as
//!   `ChildStdin`/`ChildStdout`/`ChildStderr`, `Child::wait`/`kill`/`id`, a custom
//!   `Decoder` under `FramedRead` (which, as tokio-util's, gives `None` once after an error),
//!   `mpsc::unbounded_channel`, `oneshot`, `sync::Mutex`, `time::timeout`,
//!   `task::AbortOnDropHandle`, `AbortHandle`, `select!` with `biased;` and `pin!`, and
//!   in the server `io::stdin()`/`io::stdout()` under a `FramedRead` and a `Mutex`, all
//!   have tokio's names and behaved as tokio's do.
//! - tokio's `lines.next_line().await` is `lines.next().await` (a `Stream`, as the README
//!   says). The logger in the sketch became `(&mut reader).take(4096).read_until(b'\n', ..)`
//!   with the rest of an overlong line skipped by `fill_buf` and `consume_unpin` (tokio's
//!   `consume`), as the README's `io` row shows: neither runtime's `lines` bounds a line,
//!   and both end with `InvalidData` at a byte that is not UTF-8, which a server's stderr
//!   may well hold.
//! - The shared state is `Rc` with `Cell`/`RefCell` where tokio's `spawn` needs `Arc` and
//!   a lock; the request future's cancel guard borrows it, as in tokio.
//! - The paused clock does not fit a real child, in either runtime: auto-advance fires a
//!   pending timeout as soon as the runtime waits on the child's pipe, so a request
//!   timeout or the shutdown's grace would end at once while the server is still working.
//!   The tests run on the real clock and never assert a timing: each timeout is raced only
//!   against a server that never answers or never exits (a 600 s sleep, a gate nobody
//!   releases, a server ignoring `exit`), so its outcome is fixed.
//! - A test-side trap, not overlap's: libtest prints `running 1 test` on stdout before a
//!   re-executed test binary's code runs, which would corrupt the protocol. The server is
//!   started through `sh -c 'exec "$0" "$@" 3>&1 >/dev/null'` and makes fd 3 its fd 1.

mod support;

#[path = "port_user16_lsp_client/client.rs"]
mod client;
#[path = "port_user16_lsp_client/connection.rs"]
mod connection;
#[path = "port_user16_lsp_client/framing.rs"]
mod framing;
#[path = "port_user16_lsp_client/json.rs"]
mod json;
#[path = "port_user16_lsp_client/server.rs"]
mod server;
#[path = "port_user16_lsp_client/tests_faults.rs"]
mod tests_faults;

use std::cell::RefCell;
use std::time::Duration;

use client::Client;
use connection::{Notification, RpcError, METHOD_NOT_FOUND};
use framing::{FrameError, LspCodec, MAX_HEADER};
use json::{parse, Value};
use overlap::codec::{BytesMut, Decoder};
use support::{children, gone, poll_once, within};

/// A hang guard only.
const HANG: Duration = Duration::from_secs(60);
/// The client's limit on a message from the server.
const MAX_BODY: usize = 16 << 20;

/// The hidden `main` of the server child (see `server.rs`); returns at once in an ordinary
/// run.
#[test]
fn lsp_server_child() {
    server::server_main();
}

/// Starts a server in `mode` and initializes it.
async fn start(mode: &str) -> (Client, Value) {
    let started = Client::start(server::spec(mode, MAX_BODY));
    within(HANG, started, "initialize").await.unwrap()
}

fn j(text: &str) -> Value {
    parse(text.as_bytes()).unwrap()
}

/// Whether `pid` is still listed among this process's children (a zombie would be).
fn is_child(pid: u32) -> bool {
    children().split_whitespace().any(|p| p == pid.to_string())
}

#[test]
fn json_subset_round_trips_and_refuses_bad_input() {
    let text =
        r#" {"a":[1,-2,true,false,null],"s":"q\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00","e":{},"z":0} "#;
    let v = parse(text.as_bytes()).unwrap();
    assert_eq!(
        v.get("a"),
        Some(&Value::Arr(vec![
            Value::Int(1),
            Value::Int(-2),
            Value::Bool(true),
            Value::Bool(false),
            Value::Null
        ]))
    );
    assert_eq!(
        v.get("s").and_then(Value::as_str),
        Some("q\"\\/\u{8}\u{c}\n\r\té😀")
    );
    assert_eq!(v.get("e"), Some(&Value::Obj(vec![])));
    assert_eq!(v.get("z"), Some(&Value::Int(0)));
    assert_eq!(
        v.encode(),
        r#"{"a":[1,-2,true,false,null],"s":"q\"\\/\u0008\u000c\n\r\té😀","e":{},"z":0}"#
    );
    assert_eq!(parse(v.encode().as_bytes()).unwrap(), v);
    assert_eq!(Value::str("\u{1}\u{1f}").encode(), r#""\u0001\u001f""#);
    let i64_min = format!("[{},{}]", i64::MIN, i64::MAX);
    assert_eq!(
        parse(i64_min.as_bytes()).unwrap(),
        Value::Arr(vec![Value::Int(i64::MIN), Value::Int(i64::MAX)])
    );
    let deep_ok = "[".repeat(json::MAX_DEPTH) + &"]".repeat(json::MAX_DEPTH);
    assert!(parse(deep_ok.as_bytes()).is_ok());
    let too_deep = "[".repeat(json::MAX_DEPTH + 1) + &"]".repeat(json::MAX_DEPTH + 1);
    let one_deep = "[".repeat(100_000);
    for (bad, why) in [
        ("", "unexpected end at offset 0"),
        ("01", "leading zero at offset 2"),
        ("1.5", "only integers are supported at offset 1"),
        ("-", "expected a digit at offset 1"),
        ("99999999999999999999", "integer out of range at offset 20"),
        ("[1,]", "unexpected byte at offset 3"),
        ("{\"a\" 1}", "expected ':' at offset 5"),
        ("{1:2}", "expected a string key at offset 1"),
        ("\"abc", "unterminated string at offset 4"),
        ("\"a\u{1}\"", "control byte in string at offset 2"),
        ("\"\\x\"", "unknown escape at offset 3"),
        ("\"\\ud800\"", "lone high surrogate at offset 7"),
        ("\"\\udc00\"", "lone low surrogate at offset 7"),
        ("\"\\u12g4\"", "bad \\u escape at offset 3"),
        ("[1] x", "trailing bytes at offset 4"),
        ("nul", "unexpected byte at offset 0"),
        (&too_deep, "nested too deeply at offset 64"),
        (&one_deep, "nested too deeply at offset 64"),
    ] {
        assert_eq!(parse(bad.as_bytes()), Err(why.to_owned()), "{bad:?}");
    }
    assert_eq!(
        parse(b"\"\xff\""),
        Err("string not UTF-8 at offset 3".to_owned())
    );
}

#[test]
fn codec_takes_frames_split_anywhere_and_refuses_bad_headers() {
    let wire = [
        framing::frame(r#"{"a":1}"#),
        b"content-length:  2\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n[]"
            .to_vec(),
        framing::frame(""),
    ]
    .concat();
    // All at once, and a byte at a time.
    for step in [wire.len(), 1] {
        let (mut codec, mut buf, mut got) = (LspCodec::new(100), BytesMut::new(), Vec::new());
        for chunk in wire.chunks(step) {
            buf.extend_from_slice(chunk);
            while let Some(body) = codec.decode(&mut buf).unwrap() {
                got.push(body);
            }
        }
        assert_eq!(codec.decode_eof(&mut buf).unwrap(), None);
        assert_eq!(got, [b"{\"a\":1}".to_vec(), b"[]".to_vec(), vec![]]);
    }
    let bad = |bytes: &[u8], limit: usize| {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(bytes);
        let mut codec = LspCodec::new(limit);
        match codec.decode(&mut buf) {
            Err(e) => e.to_string(),
            Ok(None) => codec.decode_eof(&mut buf).unwrap_err().to_string(),
            other => panic!("{:?} gave {other:?}", String::from_utf8_lossy(bytes)),
        }
    };
    let long_header = format!("X-Pad: {}", "x".repeat(MAX_HEADER));
    for (bytes, limit, why) in [
        (
            &b"Content-Type: x\r\n\r\n{}"[..],
            100,
            "header without Content-Length",
        ),
        (
            b"Content-Length: -3\r\n\r\n",
            100,
            "Content-Length \"-3\" is not a number",
        ),
        (
            b"Content-Length: \r\n\r\n",
            100,
            "Content-Length \"\" is not a number",
        ),
        (
            b"Content-Length: 101\r\n\r\n",
            100,
            "message of 101 bytes is over the 100-byte limit",
        ),
        (
            b"Content-Length: 99999999999999999999999\r\n\r\n",
            100,
            "message of 18446744073709551615 bytes is over the 100-byte limit",
        ),
        (
            b"Content-Length 2\r\n\r\n{}",
            100,
            "malformed header line \"Content-Length 2\"",
        ),
        (
            b"Content-Length: 2\xff\r\n\r\n{}",
            100,
            "malformed header line \"Content-Length: 2\u{fffd}\"",
        ),
        (long_header.as_bytes(), 100, "header over 8192 bytes"),
        (
            b"Content-Length: 10\r\n\r\n{\"a\"",
            100,
            "stream ended mid-message (4 of 10 body bytes)",
        ),
        (
            b"Content-Len",
            100,
            "stream ended mid-header (11 bytes of header)",
        ),
    ] {
        assert_eq!(bad(bytes, limit), why);
    }
    // An over-long header is refused before its end ever comes.
    let mut buf = BytesMut::new();
    buf.extend_from_slice(long_header.as_bytes());
    assert!(matches!(
        LspCodec::new(100).decode(&mut buf),
        Err(FrameError::HeaderTooLong)
    ));
}

#[overlap::test]
async fn initializes_answers_logs_stderr_and_shuts_down_with_the_child_reaped() {
    let (mut client, init) = start("normal").await;
    assert_eq!(
        init,
        j(r#"{"capabilities":{"hoverProvider":true},"serverInfo":{"name":"overlap-lsp-test"}}"#)
    );
    let mut notes = client.take_notifications();
    assert_eq!(
        notes.try_recv().unwrap(),
        Notification {
            method: "window/logMessage".into(),
            params: j(r#"{"type":3,"message":"ready"}"#),
        }
    );
    let params = j(r#"{"text":"line\n\"quoted\" é 😀 \\","n":[1,2,{"deep":null}]}"#);
    assert_eq!(client.request("echo", params.clone()).await, Ok(params));
    assert_eq!(
        client.request("nope", Value::Null).await,
        Err(RpcError::Server {
            code: METHOD_NOT_FOUND,
            message: "no method nope".into()
        })
    );
    let pid = client.pid();
    assert!(is_child(pid));
    let exit = within(HANG, client.shutdown(HANG), "shutdown")
        .await
        .unwrap();
    assert_eq!((exit.status.code(), exit.killed), (Some(0), false));
    assert_eq!(
        exit.stderr,
        [
            format!("server: initialize from {}", std::process::id()),
            "server: exit (shutdown first: true)".into(),
        ]
    );
    assert_eq!(exit.stats, Default::default());
    // Reaped, not a zombie; no task of the client's left; no notification after.
    assert!(!is_child(pid));
    gone(pid, "the server's /proc entry").await;
    assert_eq!(overlap::metrics().tasks_alive, 0);
    assert!(notes.recv().await.is_none());
}

#[overlap::test]
async fn notifications_go_both_ways_while_requests_are_in_flight() {
    let (mut client, _) = start("normal").await;
    let mut notes = client.take_notifications();
    assert_eq!(notes.recv().await.unwrap().method, "window/logMessage");
    client
        .notify("textDocument/didOpen", j(r#"{"uri":"file:///a.rs"}"#))
        .unwrap();
    client
        .notify("textDocument/didChange", j(r#"{"version":2}"#))
        .unwrap();
    // The request's progress notifications come while it is still unanswered.
    {
        let progress = client.request("progress", j(r#"{"count":4}"#));
        overlap::pin!(progress);
        for i in 0..4 {
            overlap::select! {
                biased;
                note = notes.recv() => assert_eq!(
                    note.unwrap(),
                    Notification {
                        method: "$/progress".into(),
                        params: j(&format!(r#"{{"token":2,"value":{i}}}"#)),
                    }
                ),
                r = &mut progress => panic!("answered before its notification {i}: {r:?}"),
            }
        }
        assert_eq!(progress.await, Ok(j(r#"{"sent":4}"#)));
    }
    // A request from the server is answered MethodNotFound, which the server saw.
    assert_eq!(
        client.request("askClient", Value::Null).await,
        Ok(Value::Null)
    );
    let stats = client.request("stats", Value::Null).await.unwrap();
    assert_eq!(
        stats,
        j(
            r#"{"notifications":["initialized","textDocument/didOpen","textDocument/didChange"],
              "cancels":[],"running":0,"responses":[[1003,-32601]]}"#
        )
    );
    assert_eq!(client.stats().server_requests, 1);
    assert!(notes.try_recv().is_err());
    let exit = within(HANG, client.shutdown(HANG), "shutdown")
        .await
        .unwrap();
    assert_eq!(exit.status.code(), Some(0));
}

#[overlap::test]
async fn concurrent_requests_are_answered_out_of_order() {
    let (client, _) = start("normal").await;
    let order = RefCell::new(Vec::new());
    let release = |key: &str| {
        let params = Value::obj([("key", Value::str(key))]);
        client.notify("release", params).unwrap();
    };
    let (a, b, c, d) = within(
        HANG,
        async {
            overlap::join!(
                async {
                    let r = client.request("wait", j(r#"{"key":"a"}"#)).await;
                    order.borrow_mut().push("a");
                    r
                },
                async {
                    let r = client.request("wait", j(r#"{"key":"b"}"#)).await;
                    order.borrow_mut().push("b");
                    release("a");
                    r
                },
                async {
                    let r = client.request("sleep", j(r#"{"ms":1}"#)).await;
                    order.borrow_mut().push("sleep");
                    release("b");
                    r
                },
                async {
                    let r = client.request("echo", j(r#"{"n":3}"#)).await;
                    order.borrow_mut().push("echo");
                    r
                },
            )
        },
        "four requests",
    )
    .await;
    assert_eq!(*order.borrow(), ["echo", "sleep", "b", "a"]);
    assert_eq!(a, Ok(j(r#"{"key":"a"}"#)));
    assert_eq!(b, Ok(j(r#"{"key":"b"}"#)));
    assert_eq!(c, Ok(j(r#"{"ms":1}"#)));
    assert_eq!(d, Ok(j(r#"{"n":3}"#)));
    let stats = client.request("stats", Value::Null).await.unwrap();
    assert_eq!(stats.get("running"), Some(&Value::Int(0)));
    assert_eq!(client.stats().discarded_replies, 0);
    let exit = within(HANG, client.shutdown(HANG), "shutdown")
        .await
        .unwrap();
    assert_eq!(exit.status.code(), Some(0));
}

#[overlap::test]
async fn a_dropped_request_is_cancelled_and_its_late_reply_discarded() {
    let (client, _) = start("normal").await;
    // Sent (id 2) and given up before any answer.
    let first = poll_once(Box::pin(client.request("wait", j(r#"{"key":"k"}"#)))).await;
    assert!(first.is_pending());
    assert_eq!(client.stats().cancels_sent, 1);
    // The server saw the cancel and answered RequestCancelled, which was dropped: by the
    // time this answer comes, that one (written before it) has been read.
    let stats = client.request("stats", Value::Null).await.unwrap();
    assert_eq!(stats.get("cancels"), Some(&j("[2]")));
    assert_eq!(stats.get("running"), Some(&Value::Int(0)));
    assert_eq!(client.stats().discarded_replies, 1);
    // Timed out: the same, through `request_timeout`.
    let slow = client.request_timeout("sleep", j(r#"{"ms":600000}"#), Duration::from_millis(30));
    assert_eq!(slow.await, Err(RpcError::Timeout));
    let stats = client.request("stats", Value::Null).await.unwrap();
    assert_eq!(stats.get("cancels"), Some(&j("[2,4]")));
    assert_eq!(stats.get("running"), Some(&Value::Int(0)));
    // A request answered before it was dropped is not cancelled.
    let done = client.request("echo", Value::Int(5));
    assert_eq!(within(HANG, done, "echo").await, Ok(Value::Int(5)));
    let s = client.stats().clone();
    assert_eq!((s.cancels_sent, s.discarded_replies), (2, 2));
    assert!(s.bad_messages.is_empty());
    let exit = within(HANG, client.shutdown(HANG), "shutdown")
        .await
        .unwrap();
    assert_eq!(exit.status.code(), Some(0));
    assert!(exit.stderr.contains(&"server: cancelled 2".to_owned()));
    assert!(exit.stderr.contains(&"server: cancelled 4".to_owned()));
}

#[overlap::test]
async fn messages_larger_than_the_pipe_go_both_ways_at_once() {
    let (client, _) = start("normal").await;
    // The server writes its 8 MiB reply inline, reading nothing meanwhile, while the
    // client is writing its own 8 MiB: only a reader apart from the writer gets through.
    let n = 8 << 20;
    let payload: String = (0..n / 2)
        .map(|i| if i % 1000 == 999 { '\n' } else { 'é' })
        .collect();
    let sent = Value::obj([("data", Value::Str(payload))]);
    let (big, echo) = within(
        HANG,
        async {
            overlap::join!(
                client.request("big", Value::obj([("bytes", Value::Int(n as i64))])),
                client.request("echo", sent.clone()),
            )
        },
        "8 MiB each way",
    )
    .await;
    let big = big.unwrap();
    assert_eq!(big.as_str().map(str::len), Some(n));
    assert_eq!(big, Value::Str(server::big_text(n)));
    assert_eq!(echo, Ok(sent));
    assert_eq!(
        client.request("echo", Value::Int(1)).await,
        Ok(Value::Int(1))
    );
    let exit = within(HANG, client.shutdown(HANG), "shutdown")
        .await
        .unwrap();
    assert_eq!(exit.status.code(), Some(0));
}
