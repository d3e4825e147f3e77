//! The fake database server: one task per connection, a startup with a password, queries
//! answered with rows, a `sleep` a cancel request can cut short, and a restart that resets
//! every connection and listens again on the same port.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use overlap::future::{select, Either};
use overlap::io::{AsyncWriteExt, BufStream};
use overlap::net::{TcpListener, TcpStream};
use overlap::sync::{watch, Notify};
use overlap::task::{JoinHandle, JoinSet};

use super::wire::{self, BackendKey};

pub const PASSWORD: &str = "hunter2";
pub const CANCELED: &str = "canceling statement due to user request";

/// What the server saw, for the tests to check.
#[derive(Default)]
pub struct ServerLog {
    pub accepted: Cell<usize>,
    /// Sessions open now, and the most open at once.
    pub live: Cell<usize>,
    pub most_live: Cell<usize>,
    pub queries: Cell<usize>,
    /// Cancel requests that named a live backend with its secret.
    pub cancels: Cell<usize>,
    /// `sleep` queries in progress now.
    pub sleeping: Cell<usize>,
    /// Sessions that ended with a client's terminate message.
    pub terminated: Cell<usize>,
}

struct Backend {
    secret: u32,
    cancel: Rc<Notify>,
}

struct State {
    log: Rc<ServerLog>,
    backends: RefCell<HashMap<u32, Backend>>,
    next_pid: Cell<u32>,
    /// Bumped to reset every session (a crash, or a restart).
    generation: watch::Sender<u64>,
    sessions: RefCell<JoinSet<()>>,
}

pub struct Server {
    pub addr: SocketAddr,
    pub log: Rc<ServerLog>,
    state: Rc<State>,
    acceptor: RefCell<Option<JoinHandle<()>>>,
}

impl Server {
    pub async fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Rc::new(ServerLog::default());
        let state = Rc::new(State {
            log: log.clone(),
            backends: RefCell::default(),
            next_pid: Cell::new(1000),
            generation: watch::channel(0).0,
            sessions: RefCell::new(JoinSet::new()),
        });
        let acceptor = overlap::spawn(accept_loop(listener, state.clone()));
        Server {
            addr,
            log,
            state,
            acceptor: RefCell::new(Some(acceptor)),
        }
    }

    /// Resets every session (the clients read `ConnectionReset`), stops listening, and
    /// listens again on the same port, as a database restarted under its clients.
    pub async fn restart(&self) {
        self.stop().await;
        self.listen_again().await;
    }

    /// Listens again on the same port, after a [`stop`](Self::stop).
    pub async fn listen_again(&self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        let acceptor = overlap::spawn(accept_loop(listener, self.state.clone()));
        *self.acceptor.borrow_mut() = Some(acceptor);
    }

    /// Resets every session and closes the listener.
    pub async fn stop(&self) {
        let acceptor = self.acceptor.borrow_mut().take();
        if let Some(acceptor) = acceptor {
            acceptor.abort();
            let _ = acceptor.await;
        }
        self.state.generation.send_modify(|g| *g += 1);
        let mut sessions = std::mem::take(&mut *self.state.sessions.borrow_mut());
        while sessions.join_next().await.is_some() {}
    }
}

async fn accept_loop(listener: TcpListener, state: Rc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            overlap::time::sleep(Duration::from_millis(1)).await;
            continue;
        };
        state.log.accepted.set(state.log.accepted.get() + 1);
        let kill = state.generation.subscribe();
        let session = serve(stream, state.clone(), kill);
        state.sessions.borrow_mut().spawn(session);
    }
}

/// One connection: a session until it ends, or until the server resets it.
async fn serve(stream: TcpStream, state: Rc<State>, mut kill: watch::Receiver<u64>) {
    let log = state.log.clone();
    log.live.set(log.live.get() + 1);
    log.most_live.set(log.most_live.get().max(log.live.get()));
    let mut conn = BufStream::new(stream);
    let killed = {
        let session = pin!(session(&mut conn, &state));
        let kill = pin!(kill.changed());
        matches!(select(session, kill).await, Either::Right(_))
    };
    if killed {
        let _ = conn.get_ref().set_zero_linger();
    }
    log.live.set(log.live.get() - 1);
}

/// Removes a backend from the table when its session ends, however it ends.
struct Registered<'a>(&'a State, u32);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.0.backends.borrow_mut().remove(&self.1);
    }
}

async fn session(conn: &mut BufStream<TcpStream>, state: &State) -> io::Result<()> {
    let (tag, body) = wire::read_frame(conn).await?;
    if tag == wire::CANCEL {
        // A cancel request: no answer, the connection just closes (as Postgres does).
        if let Some(key) = BackendKey::from_bytes(&body) {
            let backends = state.backends.borrow();
            if let Some(b) = backends.get(&key.pid).filter(|b| b.secret == key.secret) {
                state.log.cancels.set(state.log.cancels.get() + 1);
                // Only a query running now is cancelled: nothing is kept for a later one.
                b.cancel.notify_waiters();
            }
        }
        return Ok(());
    }
    if tag != wire::STARTUP {
        return refuse(conn, "expected a startup message").await;
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    let (user, password) = text.split_once('\0').unwrap_or((&text, ""));
    if password != PASSWORD {
        let msg = format!("password authentication failed for user \"{user}\"");
        return refuse(conn, &msg).await;
    }
    let pid = state.next_pid.get();
    state.next_pid.set(pid + 1);
    let key = BackendKey {
        pid,
        secret: pid.wrapping_mul(2_654_435_761),
    };
    let cancel = Rc::new(Notify::new());
    let backend = Backend {
        secret: key.secret,
        cancel: cancel.clone(),
    };
    state.backends.borrow_mut().insert(pid, backend);
    let _registered = Registered(state, pid);
    wire::write_frame(conn, wire::AUTH_OK, b"").await?;
    wire::write_frame(conn, wire::BACKEND_KEY, &key.to_bytes()).await?;
    wire::write_frame(conn, wire::READY, b"").await?;
    conn.flush().await?;
    loop {
        let (tag, body) = wire::read_frame(conn).await?;
        match tag {
            wire::QUERY => {
                state.log.queries.set(state.log.queries.get() + 1);
                let sql = String::from_utf8_lossy(&body).into_owned();
                answer(conn, state, pid, &cancel, &sql).await?;
                wire::write_frame(conn, wire::READY, b"").await?;
                conn.flush().await?;
                if sql == "quit" {
                    // The server ends the session itself, right after its answer (as an
                    // idle session timeout would, a little later).
                    return Ok(());
                }
            }
            wire::TERMINATE => {
                state.log.terminated.set(state.log.terminated.get() + 1);
                return Ok(());
            }
            other => {
                let msg = format!("unexpected message {:?}", other as char);
                return refuse(conn, &msg).await;
            }
        }
    }
}

async fn refuse(conn: &mut BufStream<TcpStream>, msg: &str) -> io::Result<()> {
    wire::write_frame(conn, wire::ERROR, msg.as_bytes()).await?;
    conn.flush().await
}

/// Writes a query's rows and its `C` or `E` (not its `Z`).
async fn answer(
    conn: &mut BufStream<TcpStream>,
    state: &State,
    pid: u32,
    cancel: &Notify,
    sql: &str,
) -> io::Result<()> {
    let (verb, rest) = sql.split_once(' ').unwrap_or((sql, ""));
    let rows: Vec<String> = match verb {
        "ping" | "quit" => vec![],
        "echo" => vec![rest.to_string()],
        "whoami" => vec![pid.to_string()],
        // The query's own length: for large queries.
        "len" => vec![sql.len().to_string()],
        "rows" => {
            let (n, tag) = rest.split_once(' ').unwrap_or((rest, "row"));
            let n: u32 = n.parse().unwrap_or(0);
            (0..n).map(|i| format!("{tag}:{i}")).collect()
        }
        "sleep" => {
            let ms: u64 = rest.parse().unwrap_or(0);
            state.log.sleeping.set(state.log.sleeping.get() + 1);
            let slept = {
                let sleep = pin!(overlap::time::sleep(Duration::from_millis(ms)));
                let cancelled = pin!(cancel.notified());
                matches!(select(sleep, cancelled).await, Either::Left(_))
            };
            state.log.sleeping.set(state.log.sleeping.get() - 1);
            if !slept {
                return wire::write_frame(conn, wire::ERROR, CANCELED.as_bytes()).await;
            }
            vec!["slept".to_string()]
        }
        _ => {
            let msg = format!("syntax error at or near \"{verb}\"");
            return wire::write_frame(conn, wire::ERROR, msg.as_bytes()).await;
        }
    };
    for row in &rows {
        wire::write_frame(conn, wire::ROW, row.as_bytes()).await?;
    }
    let n = u32::try_from(rows.len()).unwrap();
    wire::write_frame(conn, wire::COMPLETE, &n.to_be_bytes()).await
}
