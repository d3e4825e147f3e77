//! The user's client: the editor's end. It spawns the server with piped stdio and
//! `kill_on_drop`, and runs three tasks in a `JoinSet` (dropped with the client, which
//! aborts them): a writer owning `FramedWrite<ChildStdin, LspCodec>`, fed by an unbounded
//! mpsc; a reader owning `FramedRead<ChildStdout, LspCodec>`, routing each response by id
//! to the `oneshot` its caller waits on and each notification to an mpsc; and a stderr
//! forwarder, a line at a time. A request's future holds a guard: dropped before its
//! answer (a timeout, a lost `select!` branch), it takes the entry out of the map and
//! sends `$/cancelRequest`. When the reader ends (the server's stdout closed, or bytes
//! that are no message), every pending request fails with [`RpcError::Closed`] saying
//! why, and so does every later one.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::process::{ExitStatus, Stdio};
use std::rc::Rc;
use std::time::Duration;

use overlap::codec::{FramedRead, FramedWrite};
use overlap::io::{AsyncBufReadExt, BufReader};
use overlap::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;
use overlap::sync::{mpsc, oneshot};
use overlap::task::JoinSet;

use super::framing::{Frame, LspCodec, Outgoing};
use super::json::Json;
use super::server::{DEFAULT_MAX_BODY, MAX_BODY_ENV, SERVER_ENV};

#[derive(Clone, Debug, PartialEq)]
pub enum RpcError {
    /// The server answered with an error.
    Remote { code: i64, message: String },
    /// No answer within the request's time (and `$/cancelRequest` was sent).
    Timeout,
    /// The connection is gone: why.
    Closed(String),
}

impl RpcError {
    pub fn code(&self) -> Option<i64> {
        match self {
            RpcError::Remote { code, .. } => Some(*code),
            _ => None,
        }
    }
}

type Reply = Result<Json, RpcError>;

#[derive(Debug, Default)]
pub struct Shared {
    pending: RefCell<HashMap<i64, oneshot::Sender<Reply>>>,
    next_id: Cell<i64>,
    closed: RefCell<Option<String>>,
    /// Responses no caller waited for (to cancelled requests), by id.
    pub late: RefCell<Vec<(i64, Reply)>>,
    /// Error responses with a null id (to input the server could not read as a request).
    pub unaddressed: RefCell<Vec<(i64, String)>>,
}

impl Shared {
    /// How many requests wait for an answer.
    pub fn pending(&self) -> usize {
        self.pending.borrow().len()
    }

    /// Fails every pending request, and every later one, with `why`.
    fn close(&self, why: String) {
        *self.closed.borrow_mut() = Some(why.clone());
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        for (_, tx) in pending {
            let _ = tx.send(Err(RpcError::Closed(why.clone())));
        }
    }

    fn route(&self, msg: Json, notes: &mpsc::UnboundedSender<(String, Json)>) -> Option<Json> {
        let method = msg.get("method").and_then(Json::as_str);
        match (msg.get("id"), method) {
            (Some(id), None) => {
                let reply = match (msg.get("result"), msg.get("error")) {
                    (Some(result), None) => Ok(result.clone()),
                    (None, Some(e)) => Err(RpcError::Remote {
                        code: e.get("code").and_then(Json::as_i64).unwrap_or(0),
                        message: e.get("message").and_then(Json::as_str).unwrap_or("").into(),
                    }),
                    _ => return None, // neither, or both: not a response
                };
                let Some(id) = id.as_i64() else {
                    if let Err(RpcError::Remote { code, message }) = reply {
                        self.unaddressed.borrow_mut().push((code, message));
                    }
                    return None;
                };
                match self.pending.borrow_mut().remove(&id) {
                    Some(tx) => {
                        let _ = tx.send(reply);
                    }
                    None => self.late.borrow_mut().push((id, reply)),
                }
                None
            }
            (None, Some(method)) => {
                let params = msg.get("params").cloned().unwrap_or(Json::Null);
                let _ = notes.send((method.to_string(), params));
                None
            }
            // A request from the server: we serve none.
            (Some(id), Some(method)) => Some(Json::obj([
                ("jsonrpc", "2.0".into()),
                ("id", id.clone()),
                (
                    "error",
                    Json::obj([
                        ("code", (-32601).into()),
                        (
                            "message",
                            format!("Method not found: {method}").as_str().into(),
                        ),
                    ]),
                ),
            ])),
            (None, None) => None,
        }
    }
}

#[derive(Debug)]
pub struct Client {
    pub child: Child,
    pub pid: u32,
    out: mpsc::UnboundedSender<Option<Outgoing>>,
    pub shared: Rc<Shared>,
    pub notifications: mpsc::UnboundedReceiver<(String, Json)>,
    pub logs: mpsc::UnboundedReceiver<String>,
    tasks: JoinSet<()>,
}

/// Where a server and its client set their limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub server_max_body: usize,
    pub client_max_body: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            server_max_body: DEFAULT_MAX_BODY,
            client_max_body: DEFAULT_MAX_BODY,
        }
    }
}

impl Client {
    pub fn spawn() -> io::Result<Client> {
        Client::spawn_with(Limits::default())
    }

    /// Spawns the server: this test binary again, only its `json_rpc_server_child` test,
    /// through `sh`, which points the harness's own stdout lines at `/dev/null` and hands
    /// the pipe over as fd 3 (see `server::run_server_child`).
    pub fn spawn_with(limits: Limits) -> io::Result<Client> {
        let script = r#"exec 3>&1 >/dev/null; exec "$0" json_rpc_server_child --exact --nocapture --test-threads=1"#;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(std::env::current_exe()?)
            .env(SERVER_ENV, "1")
            .env(MAX_BODY_ENV, limits.server_max_body.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().expect("just spawned");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let shared = Rc::new(Shared::default());
        let (out, out_rx) = mpsc::unbounded_channel();
        let (notes_tx, notifications) = mpsc::unbounded_channel();
        let (logs_tx, logs) = mpsc::unbounded_channel();
        let mut tasks = JoinSet::new();
        tasks.spawn(write_loop(stdin, out_rx));
        tasks.spawn(read_loop(
            stdout,
            limits.client_max_body,
            shared.clone(),
            notes_tx,
            out.clone(),
        ));
        tasks.spawn(forward_stderr(stderr, logs_tx));
        Ok(Client {
            child,
            pid,
            out,
            shared,
            notifications,
            logs,
            tasks,
        })
    }

    /// Sends a request and waits for its answer. Dropping the future before then
    /// withdraws it: the map entry goes, and the server is sent `$/cancelRequest`.
    pub async fn request(&self, method: &str, params: Json) -> Reply {
        if let Some(why) = self.shared.closed.borrow().clone() {
            return Err(RpcError::Closed(why));
        }
        let id = self.shared.next_id.get() + 1;
        self.shared.next_id.set(id);
        let (tx, rx) = oneshot::channel();
        self.shared.pending.borrow_mut().insert(id, tx);
        let mut guard = Withdraw {
            id,
            client: self,
            answered: false,
        };
        self.send(Json::obj([
            ("jsonrpc", "2.0".into()),
            ("id", id.into()),
            ("method", method.into()),
            ("params", params),
        ]));
        let reply = rx.await;
        guard.answered = true;
        reply.unwrap_or_else(|_| Err(RpcError::Closed("the client's reader is gone".into())))
    }

    /// [`request`](Self::request) with a deadline; past it, the request is withdrawn.
    pub async fn request_timeout(&self, method: &str, params: Json, limit: Duration) -> Reply {
        overlap::time::timeout(limit, self.request(method, params))
            .await
            .unwrap_or(Err(RpcError::Timeout))
    }

    pub fn notify(&self, method: &str, params: Json) {
        self.send(Json::obj([
            ("jsonrpc", "2.0".into()),
            ("method", method.into()),
            ("params", params),
        ]));
    }

    fn send(&self, msg: Json) {
        let _ = self.out.send(Some(Outgoing::Message(msg)));
    }

    /// Bytes to the server's stdin as they are.
    pub fn send_raw(&self, bytes: &[u8]) {
        let _ = self.out.send(Some(Outgoing::Raw(bytes.to_vec())));
    }

    /// Closes the server's stdin once what was sent before is written.
    pub fn close_input(&self) {
        let _ = self.out.send(None);
    }

    /// The next stderr line of the server.
    pub async fn log_line(&mut self) -> Option<String> {
        self.logs.recv().await
    }

    /// LSP's end: `shutdown`, `exit`, then the child reaped and the tasks ended.
    pub async fn shutdown(mut self) -> io::Result<ExitStatus> {
        if let Err(e) = self.request("shutdown", Json::Null).await {
            return Err(io::Error::other(format!("shutdown: {e:?}")));
        }
        self.notify("exit", Json::Null);
        self.wait().await
    }

    /// Closes the child's input (as `Child::wait` closes its stdin) and waits for its
    /// exit and for the tasks (so its output has been read whole).
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        self.close_input();
        let status = self.child.wait().await?;
        while self.tasks.join_next().await.is_some() {}
        Ok(status)
    }
}

/// A request's guard: see [`Client::request`].
struct Withdraw<'a> {
    id: i64,
    client: &'a Client,
    answered: bool,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let withdrawn = self.client.shared.pending.borrow_mut().remove(&self.id);
        if withdrawn.is_some() {
            let id = Json::obj([("id", self.id.into())]);
            self.client.notify("$/cancelRequest", id);
        }
    }
}

async fn write_loop(stdin: ChildStdin, mut rx: mpsc::UnboundedReceiver<Option<Outgoing>>) {
    let mut sink = FramedWrite::new(stdin, LspCodec::new(0));
    while let Some(Some(msg)) = rx.recv().await {
        if sink.send(msg).await.is_err() {
            return; // the server is gone; the reader says so to the callers
        }
    }
    let _ = SinkExt::<Outgoing>::close(&mut sink).await;
}

async fn read_loop(
    stdout: ChildStdout,
    max_body: usize,
    shared: Rc<Shared>,
    notes: mpsc::UnboundedSender<(String, Json)>,
    out: mpsc::UnboundedSender<Option<Outgoing>>,
) {
    let mut input = FramedRead::new(stdout, LspCodec::new(max_body));
    let why = loop {
        let body = match input.next().await {
            None => break "the server closed its output".to_string(),
            Some(Err(e)) => break format!("the server's output: {e}"),
            Some(Ok(Frame::Oversized { len, max })) => {
                break format!(
                    "the server sent a message of {len} bytes, over the maximum of {max}"
                )
            }
            Some(Ok(Frame::Message(body))) => body,
        };
        match Json::parse(&body) {
            Ok(msg) => {
                if let Some(answer) = shared.route(msg, &notes) {
                    let _ = out.send(Some(Outgoing::Message(answer)));
                }
            }
            Err(e) => break format!("the server sent bad JSON: {e}"),
        }
    };
    shared.close(why);
}

async fn forward_stderr(stderr: ChildStderr, logs: mpsc::UnboundedSender<String>) {
    let mut lines = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match lines.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let text = text.strip_suffix('\n').unwrap_or(&text);
                let _ = logs.send(text.strip_suffix('\r').unwrap_or(text).to_string());
            }
        }
    }
}
