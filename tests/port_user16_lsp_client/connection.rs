//! One server process's pipes, as three tasks sharing a [`Shared`]: the writer (frames from
//! an unbounded channel to the child's stdin, so a request is queued at once however big
//! and however full the pipe), the reader (frames from its stdout, each response completing
//! its request's oneshot, each notification sent on a channel) and the stderr logger (its
//! lines kept). The writer and reader being separate tasks is what lets a message larger
//! than the pipe buffer go each way at once. A read ending (EOF, a bad frame) or a write
//! failing fails every pending request with the reason and refuses new ones.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;

use overlap::codec::FramedRead;
use overlap::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use overlap::process::{ChildStderr, ChildStdin, ChildStdout};
use overlap::stream::StreamExt;
use overlap::sync::{mpsc, oneshot};

use super::framing::{frame, LspCodec};
use super::json::{self, Value};

/// JSON-RPC's and LSP's error codes that the client and the test server use.
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const REQUEST_CANCELLED: i64 = -32800;

/// Why a request got no result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RpcError {
    /// The server answered with an error object.
    Server { code: i64, message: String },
    /// No answer in time (the server was told to cancel).
    Timeout,
    /// The connection is gone: the server exited, broke the framing, or stopped reading.
    Closed(String),
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RpcError::Server { code, message } => write!(f, "server error {code}: {message}"),
            RpcError::Timeout => write!(f, "request timed out"),
            RpcError::Closed(why) => write!(f, "connection to the server lost: {why}"),
        }
    }
}

/// A notification from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub method: String,
    pub params: Value,
}

/// What the client counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Responses for no pending request (one cancelled, or an id never sent).
    pub discarded_replies: u32,
    /// `$/cancelRequest` notifications sent.
    pub cancels_sent: u32,
    /// Requests from the server, answered with `MethodNotFound`.
    pub server_requests: u32,
    /// Frames whose body was no JSON-RPC message, with why (the connection goes on).
    pub bad_messages: Vec<String>,
}

type Reply = oneshot::Sender<Result<Value, RpcError>>;

/// What the client and its three tasks share.
#[derive(Default)]
pub struct Shared {
    pub next_id: Cell<i64>,
    pub pending: RefCell<HashMap<i64, Reply>>,
    /// The writer's queue; `None` once the input is closed.
    pub outgoing: RefCell<Option<mpsc::UnboundedSender<Vec<u8>>>>,
    /// Why the connection ended, once it has.
    pub closed: RefCell<Option<String>>,
    pub stats: RefCell<Stats>,
    pub stderr: RefCell<Vec<String>>,
}

impl Shared {
    /// Queues one message for the writer.
    pub fn send(&self, msg: &Value) -> Result<(), RpcError> {
        if let Some(why) = &*self.closed.borrow() {
            return Err(RpcError::Closed(why.clone()));
        }
        let framed = frame(&msg.encode());
        match &*self.outgoing.borrow() {
            Some(tx) if tx.send(framed).is_ok() => Ok(()),
            _ => Err(RpcError::Closed("input to the server closed".into())),
        }
    }

    /// Ends the connection: every pending request fails with `why` (the first reason
    /// stays).
    pub fn fail_all(&self, why: String) {
        let why = self.closed.borrow_mut().get_or_insert(why).clone();
        let pending: Vec<Reply> = self.pending.borrow_mut().drain().map(|(_, r)| r).collect();
        for reply in pending {
            let _ = reply.send(Err(RpcError::Closed(why.clone())));
        }
    }

    fn bad(&self, why: String) {
        self.stats.borrow_mut().bad_messages.push(why);
    }
}

/// A request's or notification's JSON.
pub fn message(id: Option<i64>, method: &str, params: Value) -> Value {
    let mut members = vec![("jsonrpc".to_owned(), Value::str("2.0"))];
    if let Some(id) = id {
        members.push(("id".to_owned(), Value::Int(id)));
    }
    members.push(("method".to_owned(), Value::str(method)));
    if params != Value::Null {
        members.push(("params".to_owned(), params));
    }
    Value::Obj(members)
}

/// The writer task: queued frames to the child's stdin, in order; stdin closed when the
/// queue closes. A failed write (the server gone) ends the connection.
pub async fn write_loop(
    shared: std::rc::Rc<Shared>,
    mut stdin: ChildStdin,
    mut queue: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    while let Some(framed) = queue.recv().await {
        if let Err(e) = stdin.write_all(&framed).await {
            shared.fail_all(format!("writing to the server failed: {e}"));
            return;
        }
    }
    // Dropping `stdin` closes it: the server sees EOF.
}

/// The reader task: frames from the child's stdout until EOF or a bad frame.
pub async fn read_loop(
    shared: std::rc::Rc<Shared>,
    stdout: ChildStdout,
    max_body: usize,
    notes: mpsc::UnboundedSender<Notification>,
) {
    let mut frames = FramedRead::new(stdout, LspCodec::new(max_body));
    let why = loop {
        match frames.next().await {
            Some(Ok(body)) => dispatch(&shared, &notes, &body),
            Some(Err(e)) => break format!("protocol error: {e}"),
            None => break "server closed its stdout".to_owned(),
        }
    };
    shared.fail_all(why);
}

fn dispatch(shared: &Shared, notes: &mpsc::UnboundedSender<Notification>, body: &[u8]) {
    let msg = match json::parse(body) {
        Ok(msg) => msg,
        Err(e) => return shared.bad(format!("bad JSON: {e}")),
    };
    if msg.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return shared.bad("not JSON-RPC 2.0".into());
    }
    let params = msg.get("params").cloned().unwrap_or(Value::Null);
    match (msg.get("id"), msg.get("method").and_then(Value::as_str)) {
        (Some(id), Some(method)) => {
            // A request from the server: this client serves none.
            shared.stats.borrow_mut().server_requests += 1;
            let error = Value::obj([
                ("code", Value::Int(METHOD_NOT_FOUND)),
                (
                    "message",
                    Value::str(format!("client has no method {method}")),
                ),
            ]);
            let reply = Value::obj([
                ("jsonrpc", Value::str("2.0")),
                ("id", id.clone()),
                ("error", error),
            ]);
            let _ = shared.send(&reply);
        }
        (None, Some(method)) => {
            let method = method.to_owned();
            let _ = notes.send(Notification { method, params });
        }
        (Some(Value::Int(id)), None) => {
            let outcome = match (msg.get("result"), msg.get("error")) {
                (Some(result), None) => Ok(result.clone()),
                (None, Some(error)) => Err(RpcError::Server {
                    code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
                    message: error
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                }),
                _ => return shared.bad(format!("response {id} with neither result nor error")),
            };
            let reply = shared.pending.borrow_mut().remove(id);
            match reply {
                Some(reply) => {
                    let _ = reply.send(outcome);
                }
                None => shared.stats.borrow_mut().discarded_replies += 1,
            }
        }
        _ => shared.bad("neither request, response nor notification".into()),
    }
}

/// The longest stderr line kept whole; a longer one is cut there, marked, and the rest
/// of it skipped, so a server writing without newlines cannot grow the log unbounded.
pub const MAX_LOG_LINE: usize = 4096;

/// The stderr task: the server's log lines kept (lossy UTF-8: a server's stderr is not
/// always text), a last line without its newline too.
pub async fn stderr_loop(shared: std::rc::Rc<Shared>, stderr: ChildStderr) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        let mut limited = (&mut reader).take(MAX_LOG_LINE as u64);
        match limited.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let cut = !line.ends_with(b"\n") && line.len() == MAX_LOG_LINE;
        let text = String::from_utf8_lossy(&line);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let mark = if cut { " [cut]" } else { "" };
        shared.stderr.borrow_mut().push(format!("{text}{mark}"));
        if cut && !skip_line(&mut reader).await {
            return;
        }
    }
}

/// Skips the rest of a line; false at the end of the stream.
async fn skip_line(reader: &mut BufReader<ChildStderr>) -> bool {
    loop {
        let (used, found) = match reader.fill_buf().await {
            Ok([]) | Err(_) => return false,
            Ok(buf) => match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            },
        };
        reader.consume_unpin(used);
        if found {
            return true;
        }
    }
}
