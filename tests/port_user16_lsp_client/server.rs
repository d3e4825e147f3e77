//! The test's language server: this test binary run again (through `sh`, which sends
//! libtest's own stdout chatter to /dev/null and hands the real pipe over as fd 3, made
//! fd 1 here), selected by [`SERVER_ENV`]. It reads framed messages from stdin in one loop
//! and answers most requests inline, writing whole frames under a lock, so that while it
//! writes a big reply it reads nothing, as simple servers do; `sleep` and `wait` run as
//! tasks (answered out of order, cancellable). It logs to stderr, and exits as LSP says:
//! 0 on `exit` after `shutdown`, 1 on `exit` without it, 7 on EOF without `exit`. In the
//! "stubborn" mode it ignores `exit` and EOF.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use overlap::codec::FramedRead;
use overlap::io::AsyncWriteExt;
use overlap::io::Stdout;
use overlap::stream::StreamExt;
use overlap::sync::{oneshot, Mutex};
use overlap::AbortHandle;

use super::client::ServerSpec;
use super::connection::{message, METHOD_NOT_FOUND, REQUEST_CANCELLED};
use super::framing::{frame, LspCodec};
use super::json::{self, Value};

/// Set (to the mode) for the server child.
pub const SERVER_ENV: &str = "OVERLAP_USER16_LSP_SERVER";

/// The server's own limit on a message.
const SERVER_MAX_BODY: usize = 64 << 20;

/// How to start the server in `mode` ("normal" or "stubborn"), the client taking at most
/// `max_body` bytes a message.
pub fn spec(mode: &str, max_body: usize) -> ServerSpec {
    let exe = std::env::current_exe().unwrap();
    ServerSpec {
        program: "/bin/sh".into(),
        args: vec![
            "-c".into(),
            "exec \"$0\" \"$@\" 3>&1 >/dev/null".into(),
            exe.into(),
            "lsp_server_child".into(),
            "--exact".into(),
            "--nocapture".into(),
            "--test-threads=1".into(),
        ],
        env: vec![(SERVER_ENV.to_owned(), mode.to_owned())],
        max_body,
    }
}

/// The server's `main`: returns at once in an ordinary test run.
pub fn server_main() {
    let Ok(mode) = std::env::var(SERVER_ENV) else {
        return;
    };
    std::env::remove_var(SERVER_ENV);
    // SAFETY: fd 3 is the protocol pipe `sh` placed, owned by nobody here; dup2 puts it
    // in place of fd 1 (/dev/null), and the close drops the then unused fd 3.
    unsafe {
        assert_eq!(libc::dup2(3, 1), 1);
        libc::close(3);
    }
    let rt = overlap::Runtime::new().unwrap();
    let code = rt.block_on(serve(mode == "stubborn"));
    std::process::exit(code);
}

type Out = Rc<Mutex<Stdout>>;

async fn write_frame(out: &Out, bytes: &[u8]) {
    // A client gone mid-write: nothing more to say to it.
    let mut out = out.lock().await;
    let _ = out.write_all(bytes).await;
    let _ = out.flush().await;
}

async fn reply(out: &Out, id: i64, outcome: Result<Value, (i64, String)>) {
    let mut msg = vec![
        ("jsonrpc".to_owned(), Value::str("2.0")),
        ("id".to_owned(), Value::Int(id)),
    ];
    match outcome {
        Ok(result) => msg.push(("result".to_owned(), result)),
        Err((code, text)) => msg.push((
            "error".to_owned(),
            Value::obj([("code", Value::Int(code)), ("message", Value::str(text))]),
        )),
    }
    write_frame(out, &frame(&Value::Obj(msg).encode())).await;
}

/// What the server remembers.
#[derive(Default)]
struct State {
    shutdown: bool,
    /// Notifications received (methods), `$/cancelRequest` ones excepted.
    notifications: Vec<String>,
    /// The ids named by `$/cancelRequest`, in order.
    cancels: Vec<i64>,
    /// Requests running as tasks.
    running: HashMap<i64, AbortHandle>,
    /// Responses from the client (to `askClient`): id and error code (0 for a result).
    responses: Vec<(i64, i64)>,
    /// `wait` requests' gates by key.
    gates: HashMap<String, oneshot::Sender<()>>,
}

async fn serve(stubborn: bool) -> i32 {
    let out: Out = Rc::new(Mutex::new(overlap::io::stdout()));
    let state = Rc::new(RefCell::new(State::default()));
    let mut frames = FramedRead::new(overlap::io::stdin(), LspCodec::new(SERVER_MAX_BODY));
    loop {
        let body = match frames.next().await {
            Some(Ok(body)) => body,
            Some(Err(e)) => {
                eprintln!("server: bad frame: {e}");
                return 2;
            }
            None if stubborn => {
                eprintln!("server: stdin closed, staying up");
                std::future::pending::<()>().await;
                unreachable!()
            }
            None => {
                eprintln!("server: stdin closed without exit");
                return 7;
            }
        };
        let Ok(msg) = json::parse(&body) else {
            eprintln!("server: bad JSON");
            continue;
        };
        let Some(method) = msg.get("method").and_then(Value::as_str) else {
            // A response to the server's own request.
            let id = msg.get("id").and_then(Value::as_i64).unwrap_or(-1);
            let code = msg.get("error").and_then(|e| e.get("code"));
            let code = code.and_then(Value::as_i64).unwrap_or(0);
            state.borrow_mut().responses.push((id, code));
            continue;
        };
        let params = msg.get("params").cloned().unwrap_or(Value::Null);
        let Some(id) = msg.get("id").and_then(Value::as_i64) else {
            if let Some(code) = notification(stubborn, &state, &out, method, &params).await {
                return code;
            }
            continue;
        };
        request(&state, &out, id, method, params).await;
    }
}

async fn notification(
    stubborn: bool,
    state: &Rc<RefCell<State>>,
    out: &Out,
    method: &str,
    params: &Value,
) -> Option<i32> {
    match method {
        "exit" if stubborn => eprintln!("server: ignoring exit"),
        "exit" => {
            let shutdown = state.borrow().shutdown;
            eprintln!("server: exit (shutdown first: {shutdown})");
            return Some(if shutdown { 0 } else { 1 });
        }
        "$/cancelRequest" => {
            let id = params.get("id").and_then(Value::as_i64).unwrap_or(-1);
            let running = {
                let mut s = state.borrow_mut();
                s.cancels.push(id);
                s.running.remove(&id)
            };
            if let Some(task) = running {
                task.abort();
                eprintln!("server: cancelled {id}");
                // LSP: a cancelled request still gets its answer, RequestCancelled.
                reply(out, id, Err((REQUEST_CANCELLED, "cancelled".into()))).await;
            }
        }
        "release" => {
            let key = params.get("key").and_then(Value::as_str).unwrap_or("");
            if let Some(gate) = state.borrow_mut().gates.remove(key) {
                let _ = gate.send(());
            }
        }
        other => state.borrow_mut().notifications.push(other.to_owned()),
    }
    None
}

async fn request(state: &Rc<RefCell<State>>, out: &Out, id: i64, method: &str, params: Value) {
    let int = |key: &str| params.get(key).and_then(Value::as_i64).unwrap_or(0);
    let result = match method {
        "initialize" => {
            let from = int("processId");
            eprintln!("server: initialize from {from}");
            let log = Value::obj([("type", Value::Int(3)), ("message", Value::str("ready"))]);
            let note = message(None, "window/logMessage", log).encode();
            write_frame(out, &frame(&note)).await;
            let info = Value::obj([("name", Value::str("overlap-lsp-test"))]);
            let caps = Value::obj([("hoverProvider", Value::Bool(true))]);
            Ok(Value::obj([("capabilities", caps), ("serverInfo", info)]))
        }
        "echo" => Ok(params),
        "big" => {
            let n = int("bytes") as usize;
            Ok(Value::Str(big_text(n)))
        }
        "progress" => {
            let n = int("count");
            for i in 0..n {
                let p = Value::obj([("token", Value::Int(id)), ("value", Value::Int(i))]);
                write_frame(out, &frame(&message(None, "$/progress", p).encode())).await;
            }
            Ok(Value::obj([("sent", Value::Int(n))]))
        }
        "stats" => {
            let s = state.borrow();
            let notes = s.notifications.iter().map(|m| Value::str(m.as_str()));
            let cancels = s.cancels.iter().map(|&c| Value::Int(c));
            let responses = (s.responses.iter())
                .map(|&(id, code)| Value::Arr(vec![Value::Int(id), Value::Int(code)]));
            Ok(Value::obj([
                ("notifications", Value::Arr(notes.collect())),
                ("cancels", Value::Arr(cancels.collect())),
                ("running", Value::Int(s.running.len() as i64)),
                ("responses", Value::Arr(responses.collect())),
            ]))
        }
        "noisy" => {
            // A line far over the client's limit, then a plain one, then bytes that are
            // not UTF-8.
            use std::io::Write as _;
            let mut err = std::io::stderr().lock();
            let long = vec![b'x'; 100_000];
            let _ = err
                .write_all(&[&long[..], b"\nserver: after the noise\nbad \xff bytes\n"].concat());
            Ok(Value::Null)
        }
        "askClient" => {
            let ask = message(Some(1000 + id), "workspace/configuration", Value::Null);
            write_frame(out, &frame(&ask.encode())).await;
            Ok(Value::Null)
        }
        "sleep" | "wait" => return spawn_later(state, out, id, method, params),
        "garbage" => {
            let kind = params.get("kind").and_then(Value::as_str).unwrap_or("");
            let raw: &[u8] = match kind {
                "no-length" => b"Content-Type: application/vscode-jsonrpc\r\n\r\n{}",
                "bad-length" => b"Content-Length: 12abc\r\n\r\n{}",
                "huge-length" => b"Content-Length: 999999999\r\n\r\n{}",
                "no-colon" => b"Content-Length 2\r\n\r\n{}",
                "bad-json" => b"Content-Length: 9\r\n\r\n{\"id\": 1,",
                _ => b"",
            };
            write_frame(out, raw).await;
            Ok(Value::str(kind))
        }
        "crash" => {
            write_frame(out, b"Content-Length: 1000\r\n\r\n{\"jsonrpc\":").await;
            // The last words, without a newline.
            eprint!("server: crashing mid-reply");
            std::process::exit(3);
        }
        "shutdown" => {
            state.borrow_mut().shutdown = true;
            Ok(Value::Null)
        }
        other => Err((METHOD_NOT_FOUND, format!("no method {other}"))),
    };
    reply(out, id, result).await;
}

/// `sleep {ms}` and `wait {key}` as tasks, answered when done unless cancelled first.
fn spawn_later(state: &Rc<RefCell<State>>, out: &Out, id: i64, method: &str, params: Value) {
    let (out2, state2) = (out.clone(), state.clone());
    let gate = match method {
        "wait" => {
            let key = params.get("key").and_then(Value::as_str).unwrap_or("");
            let (tx, rx) = oneshot::channel();
            state.borrow_mut().gates.insert(key.to_owned(), tx);
            Some(rx)
        }
        _ => None,
    };
    let ms = params.get("ms").and_then(Value::as_i64).unwrap_or(0);
    let task = overlap::spawn(async move {
        match gate {
            Some(gate) => {
                let _ = gate.await;
            }
            None => overlap::time::sleep(Duration::from_millis(ms as u64)).await,
        }
        state2.borrow_mut().running.remove(&id);
        reply(&out2, id, Ok(params)).await;
    });
    state.borrow_mut().running.insert(id, task.abort_handle());
}

/// `n` bytes of text, a-z repeated.
pub fn big_text(n: usize) -> String {
    (0..n).map(|i| (b'a' + (i % 26) as u8) as char).collect()
}
