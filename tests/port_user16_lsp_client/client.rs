//! The language client: spawns its server with piped stdio and starts the connection's
//! tasks (`connection.rs`); requests with ids and a pending map, a dropped or timed-out
//! request telling the server `$/cancelRequest`; notifications both ways; LSP's
//! `shutdown`/`exit` with the child reaped, killed if it does not exit within a grace
//! period; a restart after a crash.

use std::cell::Ref;
use std::ffi::OsString;
use std::io;
use std::process::{ExitStatus, Stdio};
use std::rc::Rc;
use std::time::Duration;

use overlap::process::{Child, Command};
use overlap::sync::{mpsc, oneshot};
use overlap::task::AbortOnDropHandle;
use overlap::time::timeout;

use super::connection::{
    message, read_loop, stderr_loop, write_loop, Notification, RpcError, Shared, Stats,
};
use super::json::Value;

/// How to start the server.
#[derive(Clone, Debug)]
pub struct ServerSpec {
    pub program: OsString,
    pub args: Vec<OsString>,
    pub env: Vec<(String, String)>,
    /// The largest message body taken from the server.
    pub max_body: usize,
}

/// How a server ended.
#[derive(Debug)]
pub struct Exit {
    pub status: ExitStatus,
    /// Whether it had to be killed after the grace period.
    pub killed: bool,
    pub stderr: Vec<String>,
    pub stats: Stats,
}

/// A running server and the connection to it.
pub struct Client {
    shared: Rc<Shared>,
    child: Child,
    pid: u32,
    spec: ServerSpec,
    /// The server's notifications, in order, until taken.
    notifications: Option<mpsc::UnboundedReceiver<Notification>>,
    /// The reader, writer and stderr tasks, aborted if the client is dropped.
    tasks: Vec<AbortOnDropHandle<()>>,
}

impl Client {
    /// Starts the server process and the connection's tasks (no `initialize` yet).
    pub fn spawn(spec: ServerSpec) -> io::Result<Client> {
        let mut child = Command::new(&spec.program)
            .args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().expect("just spawned");
        let shared = Rc::new(Shared::default());
        let (queue_tx, queue_rx) = mpsc::unbounded_channel();
        *shared.outgoing.borrow_mut() = Some(queue_tx);
        let (notes_tx, notifications) = mpsc::unbounded_channel();
        let (stdin, stdout, stderr) = (
            child.stdin.take().unwrap(),
            child.stdout.take().unwrap(),
            child.stderr.take().unwrap(),
        );
        let tasks = vec![
            AbortOnDropHandle::new(overlap::spawn(write_loop(shared.clone(), stdin, queue_rx))),
            AbortOnDropHandle::new(overlap::spawn(read_loop(
                shared.clone(),
                stdout,
                spec.max_body,
                notes_tx,
            ))),
            AbortOnDropHandle::new(overlap::spawn(stderr_loop(shared.clone(), stderr))),
        ];
        Ok(Client {
            shared,
            child,
            pid,
            spec,
            notifications: Some(notifications),
            tasks,
        })
    }

    /// Spawns the server and makes LSP's handshake: `initialize`, then `initialized`.
    /// Gives the server's `InitializeResult`.
    pub async fn start(spec: ServerSpec) -> Result<(Client, Value), RpcError> {
        let client = Client::spawn(spec).map_err(|e| RpcError::Closed(format!("spawn: {e}")))?;
        let params = Value::obj([
            ("processId", Value::Int(std::process::id().into())),
            ("capabilities", Value::Obj(vec![])),
        ]);
        let init = client.request("initialize", params).await?;
        client.notify("initialized", Value::Obj(vec![]))?;
        Ok((client, init))
    }

    /// The server's notifications, in order (once: the channel's receiver).
    pub fn take_notifications(&mut self) -> mpsc::UnboundedReceiver<Notification> {
        self.notifications
            .take()
            .expect("notifications taken twice")
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends a request and waits for its result. Dropping the future before the answer
    /// came sends `$/cancelRequest` for it; the answer, if it still comes, is discarded.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let id = self.shared.next_id.get() + 1;
        self.shared.next_id.set(id);
        let (tx, rx) = oneshot::channel();
        self.shared.send(&message(Some(id), method, params))?;
        self.shared.pending.borrow_mut().insert(id, tx);
        let _cancel = CancelOnDrop {
            shared: &self.shared,
            id,
        };
        match rx.await {
            Ok(outcome) => outcome,
            Err(_) => Err(RpcError::Closed("reply dropped".into())),
        }
    }

    /// [`request`](Self::request) with a deadline; the server is told to cancel at it.
    pub async fn request_timeout(
        &self,
        method: &str,
        params: Value,
        limit: Duration,
    ) -> Result<Value, RpcError> {
        timeout(limit, self.request(method, params))
            .await
            .unwrap_or(Err(RpcError::Timeout))
    }

    /// Sends a notification.
    pub fn notify(&self, method: &str, params: Value) -> Result<(), RpcError> {
        self.shared.send(&message(None, method, params))
    }

    pub fn stats(&self) -> Ref<'_, Stats> {
        self.shared.stats.borrow()
    }

    /// The server's stderr lines so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.shared.stderr.borrow().clone()
    }

    /// Why the connection ended, if it has.
    pub fn closed(&self) -> Option<String> {
        self.shared.closed.borrow().clone()
    }

    /// Closes the server's stdin once the queued messages are written.
    pub fn close_input(&self) {
        self.shared.outgoing.borrow_mut().take();
    }

    /// Waits for the server to exit by itself and for the connection's tasks to end.
    pub async fn wait(mut self) -> io::Result<Exit> {
        let status = self.child.wait().await?;
        Ok(self.finish(status, false).await)
    }

    /// LSP's orderly end: `shutdown`, then `exit`, stdin closed, and the child reaped; one
    /// that does not answer or exit within `grace` is killed.
    pub async fn shutdown(mut self, grace: Duration) -> io::Result<Exit> {
        if self.closed().is_none() {
            let answered = self.request_timeout("shutdown", Value::Null, grace).await;
            if answered.is_ok() {
                let _ = self.notify("exit", Value::Null);
            }
        }
        let (status, killed) = self.reap(grace).await?;
        Ok(self.finish(status, killed).await)
    }

    /// Ends this server (killed if it has not exited within `grace` of its input
    /// closing) and starts a new one: how the old one ended, the new one and its
    /// `InitializeResult`.
    pub async fn restart(mut self, grace: Duration) -> Result<(Exit, Client, Value), RpcError> {
        let spec = self.spec.clone();
        let reaped = self.reap(grace).await;
        let (status, killed) =
            reaped.map_err(|e| RpcError::Closed(format!("reaping the old server: {e}")))?;
        let old = self.finish(status, killed).await;
        let (client, init) = Client::start(spec).await?;
        Ok((old, client, init))
    }

    /// Closes the server's input and reaps it, killed if it has not exited within `grace`;
    /// whether it was killed.
    async fn reap(&mut self, grace: Duration) -> io::Result<(ExitStatus, bool)> {
        self.close_input();
        match timeout(grace, self.child.wait()).await {
            Ok(status) => Ok((status?, false)),
            Err(_) => {
                self.child.kill().await?;
                Ok((self.child.wait().await?, true))
            }
        }
    }

    /// With the child reaped: the tasks end (the pipes are at EOF, the queue closed).
    async fn finish(mut self, status: ExitStatus, killed: bool) -> Exit {
        self.close_input();
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
        Exit {
            status,
            killed,
            stderr: self.stderr_lines(),
            stats: self.stats().clone(),
        }
    }
}

/// Sends `$/cancelRequest` for a request given up while unanswered.
struct CancelOnDrop<'a> {
    shared: &'a Shared,
    id: i64,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if self.shared.pending.borrow_mut().remove(&self.id).is_some() {
            self.shared.stats.borrow_mut().cancels_sent += 1;
            let params = Value::obj([("id", Value::Int(self.id))]);
            let _ = self.shared.send(&message(None, "$/cancelRequest", params));
        }
    }
}
