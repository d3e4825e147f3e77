//! The language-server side, on overlap too: this test binary run again with
//! [`SERVER_ENV`] set. Messages come on stdin through `FramedRead<Stdin, LspCodec>` and
//! go out through one writer task owning `FramedWrite<Stdout, LspCodec>`, fed by an
//! unbounded mpsc; each request runs as a handler in a `JoinSet`, its `AbortHandle` kept
//! by id for `$/cancelRequest`; logs go to stderr.
//!
//! Methods: `echo` (the params back), `hold {key, touch?}` (waits for `release {key}`,
//! then writes the file `touch` if given: the side effect a cancelled handler never has),
//! `release {key}` (how many holders it woke), `notify {count}` (that many `progress`
//! notifications, then the count), `log {lines}` (each a line on stderr), `stats` (live
//! handlers, cancellations, holders waiting), `crash {code}` (exits at once, mid-request),
//! `freeze` (blocks its thread for good, a hung server that only `SIGKILL` ends),
//! `shutdown`; the notifications `exit` and `$/cancelRequest`.
//!
//! Exit codes: 0 for `exit` after `shutdown`, 1 for `exit` without it or input ending
//! without `exit` (as LSP says), 2 for a framing error there is no recovering from (after
//! a line on stderr saying which).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use overlap::codec::{FramedRead, FramedWrite};
use overlap::io::AsyncWriteExt;
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;
use overlap::sync::{mpsc, oneshot};
use overlap::task::{AbortHandle, Id, JoinSet};

use super::framing::{Frame, LspCodec, Outgoing};
use super::json::Json;

/// Set (to anything) in the server child's environment.
pub const SERVER_ENV: &str = "OVERLAP_USER13_JSON_RPC_SERVER";
/// The server's maximum body, in bytes, if not the default.
pub const MAX_BODY_ENV: &str = "OVERLAP_USER13_JSON_RPC_MAX_BODY";
pub const DEFAULT_MAX_BODY: usize = 4 << 20;

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const REQUEST_CANCELLED: i64 = -32800;

/// In the child: the standard output the harness printed its lines to is `/dev/null`, and
/// the pipe to the client is fd 3 (see `Client::spawn`'s `sh` line); fd 3 becomes the
/// standard output, the server runs, and the process exits with its code (before libtest
/// could print its result lines into the protocol).
pub fn run_server_child() -> ! {
    // SAFETY: dup2 and close take integers only; fd 3 is the pipe the wrapper opened for
    // us and nothing in this process uses it, or fd 1, at this point.
    unsafe {
        assert_eq!(libc::dup2(3, 1), 1, "no fd 3: run through Client::spawn");
        libc::close(3);
    }
    let max_body = std::env::var(MAX_BODY_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MAX_BODY);
    let code = overlap::block_on(serve(max_body));
    std::process::exit(code)
}

struct State {
    out: mpsc::UnboundedSender<Outgoing>,
    gates: RefCell<HashMap<String, Vec<oneshot::Sender<()>>>>,
}

impl State {
    fn send(&self, msg: Json) {
        let _ = self.out.send(Outgoing::Message(msg));
    }

    fn respond(&self, id: Json, result: Result<Json, (i64, String)>) {
        let mut msg = vec![("jsonrpc".into(), Json::str("2.0")), ("id".into(), id)];
        msg.push(match result {
            Ok(value) => ("result".into(), value),
            Err((code, message)) => (
                "error".into(),
                Json::obj([("code", code.into()), ("message", Json::Str(message))]),
            ),
        });
        self.send(Json::Obj(msg));
    }
}

async fn log(line: &str) {
    let mut err = overlap::io::stderr();
    let _ = err.write_all(format!("{line}\n").as_bytes()).await;
    let _ = err.flush().await;
}

async fn write_loop(mut rx: mpsc::UnboundedReceiver<Outgoing>) {
    let mut out = FramedWrite::new(overlap::io::stdout(), LspCodec::new(0));
    while let Some(first) = rx.recv().await {
        if out.feed(first).await.is_err() {
            return;
        }
        while let Ok(more) = rx.try_recv() {
            if out.feed(more).await.is_err() {
                return;
            }
        }
        if SinkExt::<Outgoing>::flush(&mut out).await.is_err() {
            return;
        }
    }
}

/// The request handlers that run as tasks.
fn spawned(method: &str) -> bool {
    matches!(
        method,
        "echo" | "hold" | "release" | "notify" | "log" | "crash"
    )
}

async fn handle(state: Rc<State>, method: String, params: Json) -> Result<Json, (i64, String)> {
    let bad = |what: &str| (INVALID_PARAMS, format!("Invalid params: {what}"));
    match method.as_str() {
        "echo" => Ok(params),
        "hold" => {
            let key = params.get("key").and_then(Json::as_str).ok_or(bad("key"))?;
            let (tx, rx) = oneshot::channel();
            state
                .gates
                .borrow_mut()
                .entry(key.to_string())
                .or_default()
                .push(tx);
            let _ = rx.await;
            if let Some(path) = params.get("touch").and_then(Json::as_str) {
                std::fs::write(path, key).map_err(|e| (-32000, e.to_string()))?;
            }
            Ok(Json::obj([("released", key.into())]))
        }
        "release" => {
            let key = params.get("key").and_then(Json::as_str).ok_or(bad("key"))?;
            let waiting = state.gates.borrow_mut().remove(key).unwrap_or_default();
            let woken = waiting
                .into_iter()
                .filter_map(|tx| tx.send(()).ok())
                .count();
            Ok((woken as i64).into())
        }
        "notify" => {
            let count = params
                .get("count")
                .and_then(Json::as_i64)
                .ok_or(bad("count"))?;
            for seq in 0..count {
                state.send(Json::obj([
                    ("jsonrpc", "2.0".into()),
                    ("method", "progress".into()),
                    ("params", Json::obj([("seq", seq.into())])),
                ]));
                if seq % 64 == 0 {
                    overlap::task::yield_now().await;
                }
            }
            Ok(count.into())
        }
        "log" => {
            let lines = params
                .get("lines")
                .and_then(Json::as_array)
                .ok_or(bad("lines"))?;
            for line in lines {
                log(line.as_str().ok_or(bad("a line"))?).await;
            }
            Ok((lines.len() as i64).into())
        }
        "crash" => {
            log("crashing on request").await;
            std::process::exit(params.get("code").and_then(Json::as_i64).unwrap_or(70) as i32)
        }
        _ => unreachable!("only spawned methods come here"),
    }
}

/// The server's loop; its exit code.
async fn serve(max_body: usize) -> i32 {
    let (tx, rx) = mpsc::unbounded_channel();
    let writer = overlap::spawn(write_loop(rx));
    let state = Rc::new(State {
        out: tx,
        gates: RefCell::default(),
    });
    let mut input = FramedRead::new(overlap::io::stdin(), LspCodec::new(max_body));
    let mut handlers: JoinSet<()> = JoinSet::new();
    // A running request's abort handle by its id's text, and that id by the task's id.
    let mut running: HashMap<String, AbortHandle> = HashMap::new();
    let mut by_task: HashMap<Id, String> = HashMap::new();
    let cancelled = Cell::new(0i64);
    let mut shutting_down = false;
    log("json-rpc server: started").await;
    let code = loop {
        let frame = overlap::select! {
            Some(done) = handlers.join_next_with_id() => {
                let task = match done {
                    Ok((task, ())) => task,
                    Err(e) => e.id(),
                };
                if let Some(key) = by_task.remove(&task) {
                    running.remove(&key);
                }
                continue;
            }
            frame = input.next() => frame,
        };
        let body = match frame {
            None => {
                log("end of input without exit").await;
                break 1;
            }
            Some(Err(e)) => {
                log(&format!("fatal: {e}")).await;
                break 2;
            }
            Some(Ok(Frame::Oversized { len, max })) => {
                let why =
                    format!("Invalid Request: a message of {len} bytes, over the maximum of {max}");
                state.respond(Json::Null, Err((INVALID_REQUEST, why)));
                continue;
            }
            Some(Ok(Frame::Message(body))) => body,
        };
        let msg = match Json::parse(&body) {
            Ok(msg) => msg,
            Err(e) => {
                state.respond(Json::Null, Err((PARSE_ERROR, format!("Parse error: {e}"))));
                continue;
            }
        };
        let id = msg.get("id").cloned();
        let Some(method) = msg.get("method").and_then(Json::as_str) else {
            if msg.get("result").is_none() && msg.get("error").is_none() {
                let why = "Invalid Request: no method".to_string();
                state.respond(id.unwrap_or(Json::Null), Err((INVALID_REQUEST, why)));
            }
            continue; // a response to us: we send no requests
        };
        let params = msg.get("params").cloned().unwrap_or(Json::Null);
        let Some(id) = id else {
            // A notification.
            match method {
                "exit" => break if shutting_down { 0 } else { 1 },
                "$/cancelRequest" => {
                    let Some(target) = params.get("id") else {
                        continue;
                    };
                    if let Some(handle) = running.remove(&target.to_text()) {
                        // Not finished: it has not answered, and now never will.
                        if !handle.is_finished() {
                            handle.abort();
                            cancelled.set(cancelled.get() + 1);
                            let why = "Request cancelled".to_string();
                            state.respond(target.clone(), Err((REQUEST_CANCELLED, why)));
                        }
                    }
                }
                other => log(&format!("ignoring notification {other}")).await,
            }
            continue;
        };
        if shutting_down {
            let why = "Invalid Request: the server is shutting down".to_string();
            state.respond(id, Err((INVALID_REQUEST, why)));
            continue;
        }
        match method {
            "freeze" => {
                // A server hung for good: it reads nothing more, not even the end of input.
                log("freezing").await;
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(3600));
                }
            }
            "shutdown" => {
                shutting_down = true;
                state.respond(id, Ok(Json::Null));
            }
            "stats" => {
                while let Some(done) = handlers.try_join_next_with_id() {
                    let task = done.map_or_else(|e| e.id(), |(task, ())| task);
                    if let Some(key) = by_task.remove(&task) {
                        running.remove(&key);
                    }
                }
                let waiting = state.gates.borrow().values().flatten().count();
                let waiting_alive = state
                    .gates
                    .borrow()
                    .values()
                    .flatten()
                    .filter(|tx| !tx.is_closed())
                    .count();
                state.respond(
                    id,
                    Ok(Json::obj([
                        ("handlers", (handlers.len() as i64).into()),
                        ("cancelled", cancelled.get().into()),
                        ("waiting", (waiting_alive as i64).into()),
                        ("gates", (waiting as i64).into()),
                    ])),
                );
            }
            m if spawned(m) => {
                let (st, m, key) = (state.clone(), m.to_string(), id.to_text());
                let handle = handlers.spawn(async move {
                    let result = handle(st.clone(), m, params).await;
                    st.respond(id, result);
                });
                by_task.insert(handle.id(), key.clone());
                running.insert(key, handle);
            }
            m => {
                let why = format!("Method not found: {m}");
                state.respond(id, Err((METHOD_NOT_FOUND, why)));
            }
        }
    };
    handlers.shutdown().await;
    drop(state);
    let _ = writer.await;
    code
}
