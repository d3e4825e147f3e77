//! The fake server: a listener whose sessions speak `proto.rs`, each a reader of frontend
//! messages and a writer of backend ones joined in one task (so that stopping the server
//! drops both). Its "SQL" is a handful of commands: `echo X` (or `echo $1`), `rows N`,
//! `sleep MS`, `listen CH`, `notify CH PAYLOAD`, `copy out N WIDTH`, `copy in TABLE`, and
//! the faults `vanish`, `malformed` and `oversized`; anything else is a syntax error. A
//! running statement is cut short by a matching cancel request, Postgres's way.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::codec::{BytesMut, FramedRead};
use overlap::io::{AsyncReadExt, AsyncReadIntExt, AsyncWriteExt};
use overlap::net::{OwnedReadHalf, OwnedWriteHalf, TcpListener, TcpSocket, TcpStream};
use overlap::stream::StreamExt;
use overlap::sync::mpsc::error::TryRecvError;
use overlap::sync::{mpsc, Notify};
use overlap::task::{JoinHandle, JoinSet};

use super::proto::{Backend, Frontend, FrontendCodec, Hello, Value};

/// The server's counters, read by the tests.
#[derive(Debug, Default)]
pub struct Stats {
    pub sessions_now: Cell<usize>,
    pub sessions_max: Cell<usize>,
    pub sessions_total: Cell<usize>,
    /// Statements started (not the ones a failed pipeline skipped).
    pub executed: Cell<usize>,
    pub cancel_requests: Cell<usize>,
    pub cancels_matched: Cell<usize>,
    /// COPY OUT rows handed to a session's writer.
    pub copy_rows_sent: Cell<usize>,
    /// Frontend messages a session refused (bad framing), closing it.
    pub protocol_errors: Cell<usize>,
}

struct SessionHandle {
    key: u32,
    cancel: Rc<Notify>,
    kill: Rc<Notify>,
    notes: mpsc::UnboundedSender<Backend>,
}

/// What the sessions share.
#[derive(Default)]
pub struct State {
    pub stats: Stats,
    sessions: RefCell<HashMap<u32, SessionHandle>>,
    listening: RefCell<Vec<(String, u32)>>,
    /// What `copy in TABLE` stored, by table.
    pub tables: RefCell<HashMap<String, Vec<u8>>>,
    next_pid: Cell<u32>,
}

impl State {
    /// Closes session `pid`'s connection at once, as a backend killed by an admin would.
    pub fn kill(&self, pid: u32) -> bool {
        match self.sessions.borrow().get(&pid) {
            Some(s) => {
                s.kill.notify_waiters();
                true
            }
            None => false,
        }
    }

    /// The secret key of session `pid` (the tests forge a wrong one from it).
    pub fn key_of(&self, pid: u32) -> Option<u32> {
        self.sessions.borrow().get(&pid).map(|s| s.key)
    }
}

/// Settings of the server.
#[derive(Debug, Clone)]
pub struct Config {
    pub max_message: usize,
    /// `SO_SNDBUF` of the listener, inherited by every session's socket.
    pub send_buffer: Option<u32>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_message: 1 << 20,
            send_buffer: None,
        }
    }
}

pub struct Server {
    pub addr: SocketAddr,
    pub state: Rc<State>,
    accept: JoinHandle<()>,
}

impl Server {
    pub async fn start(host: &str, config: Config) -> io::Result<Server> {
        let addr: SocketAddr = format!("{host}:0")
            .parse()
            .or_else(|_| format!("[{host}]:0").parse())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(size) = config.send_buffer {
            socket.set_send_buffer_size(size)?;
        }
        socket.bind(addr)?;
        let listener = socket.listen(64)?;
        let state = Rc::new(State::default());
        state.next_pid.set(1000);
        let addr = listener.local_addr()?;
        let accept = overlap::spawn(accept_loop(listener, state.clone(), config));
        Ok(Server {
            addr,
            state,
            accept,
        })
    }

    /// The server disappears: the listener and every session dropped at once.
    pub async fn stop(self) {
        self.accept.abort();
        let _ = self.accept.await;
    }
}

async fn accept_loop(listener: TcpListener, state: Rc<State>, config: Config) {
    let mut sessions = JoinSet::new();
    loop {
        overlap::select! {
            Some(_) = sessions.join_next() => {}
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    sessions.spawn(session(stream, state.clone(), config.clone()));
                }
                Err(_) => continue,
            },
        }
    }
}

/// A statement's failure: an SQLSTATE and a message.
struct Fail(&'static str, String);

/// What a statement left the session to do.
enum Flow {
    Go,
    /// Close the connection now, mid-response (`vanish`).
    Vanish,
}

enum Out {
    Msg(Backend),
    Raw(Vec<u8>),
}

async fn session(stream: TcpStream, state: Rc<State>, config: Config) {
    let (mut rd, wr) = stream.into_split();
    let hello = match read_hello(&mut rd).await {
        Ok(h) => h,
        Err(_) => {
            state
                .stats
                .protocol_errors
                .set(state.stats.protocol_errors.get() + 1);
            return;
        }
    };
    let user = match hello {
        Hello::Cancel { pid, key } => {
            let stats = &state.stats;
            stats.cancel_requests.set(stats.cancel_requests.get() + 1);
            if let Some(s) = state.sessions.borrow().get(&pid) {
                if s.key == key {
                    stats.cancels_matched.set(stats.cancels_matched.get() + 1);
                    s.cancel.notify_waiters();
                }
            }
            return; // the cancel connection closes without an answer
        }
        Hello::Startup { user } => user,
    };
    let pid = state.next_pid.get();
    state.next_pid.set(pid + 1);
    let key = pid.wrapping_mul(0x9e37_79b9) ^ 0x5eed_5eed;
    let (cancel, kill) = (Rc::new(Notify::new()), Rc::new(Notify::new()));
    let (notes_tx, notes_rx) = mpsc::unbounded_channel();
    state.sessions.borrow_mut().insert(
        pid,
        SessionHandle {
            key,
            cancel: cancel.clone(),
            kill: kill.clone(),
            notes: notes_tx,
        },
    );
    let stats = &state.stats;
    stats.sessions_now.set(stats.sessions_now.get() + 1);
    stats.sessions_total.set(stats.sessions_total.get() + 1);
    stats
        .sessions_max
        .set(stats.sessions_max.get().max(stats.sessions_now.get()));
    let (out, out_rx) = mpsc::channel(1);
    let logic = async {
        let mut frames = FramedRead::new(
            rd,
            FrontendCodec {
                max: config.max_message,
            },
        );
        let s = Session {
            state: &state,
            pid,
            out,
        };
        for m in [
            Backend::AuthOk,
            Backend::ParameterStatus("server_version".into(), "16-fake".into()),
            Backend::ParameterStatus("application_name".into(), user),
            Backend::KeyData { pid, key },
            Backend::Ready(b'I'),
        ] {
            s.send(m).await;
        }
        s.serve(&mut frames, &cancel).await;
        // `s` (the writer's only sender) and the read half drop here: the writer drains.
    };
    // Killed, the session goes at once, even with its writer stalled by a full socket.
    overlap::select! {
        _ = async { overlap::join!(logic, writer(wr, out_rx, notes_rx)) } => {}
        _ = kill.notified() => {}
    }
    state.sessions.borrow_mut().remove(&pid);
    state.listening.borrow_mut().retain(|(_, p)| *p != pid);
    stats.sessions_now.set(stats.sessions_now.get() - 1);
}

async fn read_hello(rd: &mut OwnedReadHalf) -> io::Result<Hello> {
    let n = rd.read_u32().await? as usize;
    if !(8..=10_000).contains(&n) {
        return Err(super::proto::invalid(format!("startup length {n}")));
    }
    let mut msg = (n as u32).to_be_bytes().to_vec();
    msg.resize(n, 0);
    rd.read_exact(&mut msg[4..]).await?;
    Hello::decode(&msg)
}

/// Writes what the session and the notifications send, a batch per write; ends once the
/// session has dropped its sender and everything is written.
async fn writer(
    mut wr: OwnedWriteHalf,
    mut out: mpsc::Receiver<Out>,
    mut notes: mpsc::UnboundedReceiver<Backend>,
) {
    let mut buf = BytesMut::new();
    let put = |o: Out, buf: &mut BytesMut| match o {
        Out::Msg(m) => m.encode(buf),
        Out::Raw(r) => buf.extend_from_slice(&r),
    };
    loop {
        overlap::select! {
            biased;
            Some(n) = notes.recv() => n.encode(&mut buf),
            o = out.recv() => match o {
                Some(o) => put(o, &mut buf),
                None => break,
            },
        }
        while buf.len() < 64 * 1024 {
            match out.try_recv() {
                Ok(o) => put(o, &mut buf),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        if wr.write_all(&buf).await.is_err() {
            return;
        }
        buf.clear();
    }
}

struct Session<'a> {
    state: &'a State,
    pid: u32,
    out: mpsc::Sender<Out>,
}

type Frames = FramedRead<OwnedReadHalf, FrontendCodec>;

impl Session<'_> {
    async fn send(&self, m: Backend) {
        let _ = self.out.send(Out::Msg(m)).await;
    }

    async fn serve(&self, frames: &mut Frames, cancel: &Notify) {
        // The extended protocol's state: the statement parsed, its parameters, and whether
        // an error has the session skipping messages until the next Sync.
        let (mut stmt, mut params, mut skipping) = (String::new(), Vec::new(), false);
        loop {
            let msg = match frames.next().await {
                Some(Ok(m)) => m,
                Some(Err(_)) => {
                    let n = &self.state.stats.protocol_errors;
                    n.set(n.get() + 1);
                    return;
                }
                None => return,
            };
            match msg {
                Frontend::Query(sql) => {
                    let stmts: Vec<&str> = sql
                        .split(';')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .collect();
                    if stmts.is_empty() {
                        self.send(Backend::EmptyQuery).await;
                    }
                    for st in stmts {
                        match self.run(st, &[], frames, cancel).await {
                            Ok(Flow::Go) => {}
                            Ok(Flow::Vanish) => return,
                            Err(fail) => {
                                self.error(fail).await;
                                break;
                            }
                        }
                    }
                    self.send(Backend::Ready(b'I')).await;
                }
                _ if skipping && msg != Frontend::Sync => {}
                Frontend::Parse(q) => {
                    stmt = q;
                    self.send(Backend::ParseComplete).await;
                }
                Frontend::Bind(p) => {
                    params = p;
                    self.send(Backend::BindComplete).await;
                }
                Frontend::Execute => match self.run(&stmt, &params, frames, cancel).await {
                    Ok(Flow::Go) => {}
                    Ok(Flow::Vanish) => return,
                    Err(fail) => {
                        self.error(fail).await;
                        skipping = true;
                    }
                },
                Frontend::Sync => {
                    skipping = false;
                    self.send(Backend::Ready(b'I')).await;
                }
                Frontend::Terminate => return,
                // Copy messages outside COPY IN (after it failed) are ignored, as
                // Postgres ignores them.
                Frontend::CopyData(_) | Frontend::CopyDone | Frontend::CopyFail(_) => {}
            }
        }
    }

    /// Queues a notification for every session listening on `channel` (never waits).
    fn deliver(&self, channel: &str, payload: &str) {
        let sessions = self.state.sessions.borrow();
        let listening = self.state.listening.borrow();
        for (_, pid) in listening.iter().filter(|l| l.0 == channel) {
            if let Some(s) = sessions.get(pid) {
                let _ = s.notes.send(Backend::Notification {
                    pid: self.pid,
                    channel: channel.into(),
                    payload: payload.into(),
                });
            }
        }
    }

    async fn one_row(&self, col: &str, v: Value) {
        self.send(Backend::RowDescription(vec![col.into()])).await;
        self.send(Backend::DataRow(vec![v])).await;
        self.send(Backend::CommandComplete("SELECT 1".into())).await;
    }

    async fn error(&self, Fail(code, message): Fail) {
        self.send(Backend::Error {
            code: code.into(),
            message,
        })
        .await;
    }

    /// Runs one statement, cut short by a cancel request.
    async fn run(
        &self,
        st: &str,
        params: &[Value],
        frames: &mut Frames,
        cancel: &Notify,
    ) -> Result<Flow, Fail> {
        let n = &self.state.stats.executed;
        n.set(n.get() + 1);
        overlap::select! {
            r = self.execute(st, params, frames) => r,
            _ = cancel.notified() => Err(Fail(
                "57014",
                "canceling statement due to user request".into(),
            )),
        }
    }

    async fn execute(&self, st: &str, params: &[Value], frames: &mut Frames) -> Result<Flow, Fail> {
        let (cmd, rest) = st.split_once(' ').unwrap_or((st, ""));
        let num = |s: &str| {
            s.parse::<usize>()
                .map_err(|_| Fail("22P02", format!("invalid number {s:?}")))
        };
        match cmd {
            "echo" => {
                let v = match rest.strip_prefix('$') {
                    Some(i) => {
                        let i = num(i)?;
                        let p = params.get(i.wrapping_sub(1));
                        p.cloned()
                            .ok_or_else(|| Fail("08P01", format!("no parameter ${i}")))?
                    }
                    None => Some(rest.as_bytes().to_vec()),
                };
                self.one_row("echo", v).await;
            }
            "rows" => {
                let n = num(rest)?;
                self.send(Backend::RowDescription(vec!["n".into()])).await;
                for i in 0..n {
                    let v = Some(i.to_string().into_bytes());
                    self.send(Backend::DataRow(vec![v])).await;
                }
                self.send(Backend::CommandComplete(format!("SELECT {n}")))
                    .await;
            }
            "sleep" => {
                overlap::time::sleep(Duration::from_millis(num(rest)? as u64)).await;
                self.one_row("sleep", Some(b"slept".to_vec())).await;
            }
            "listen" => {
                let entry = (rest.to_string(), self.pid);
                self.state.listening.borrow_mut().push(entry);
                self.send(Backend::CommandComplete("LISTEN".into())).await;
            }
            "notify" => {
                let (channel, payload) = rest.split_once(' ').unwrap_or((rest, ""));
                self.deliver(channel, payload);
                self.send(Backend::CommandComplete("NOTIFY".into())).await;
            }
            "copy" => match rest.split_once(' ') {
                Some(("out", args)) => {
                    let (n, width) = args.split_once(' ').unwrap_or((args, "0"));
                    let (n, width) = (num(n)?, num(width)?);
                    self.send(Backend::CopyOutResponse).await;
                    let sent = &self.state.stats.copy_rows_sent;
                    for i in 0..n {
                        self.send(Backend::CopyData(copy_row(i, width))).await;
                        sent.set(sent.get() + 1);
                    }
                    self.send(Backend::CopyDone).await;
                    self.send(Backend::CommandComplete(format!("COPY {n}")))
                        .await;
                }
                Some(("in", table)) => return self.copy_in(table, frames).await,
                _ => return Err(Fail("42601", format!("syntax error in {st:?}"))),
            },
            // Half a DataRow, then the connection closed.
            "cut" => {
                let _ = self.out.send(Out::Raw(vec![b'D', 0, 0, 0, 20, 0, 1])).await;
                return Ok(Flow::Vanish);
            }
            "vanish" => {
                self.send(Backend::RowDescription(vec!["v".into()])).await;
                self.send(Backend::DataRow(vec![Some(b"last words".to_vec())]))
                    .await;
                return Ok(Flow::Vanish);
            }
            // A DataRow whose length (2) cannot even hold itself.
            "malformed" => {
                let _ = self.out.send(Out::Raw(vec![b'D', 0, 0, 0, 2, 0])).await;
            }
            // A DataRow announcing a gibibyte, followed by a few bytes of it.
            "oversized" => {
                let raw = vec![b'D', 0x40, 0, 0, 4, 0, 1, 0, 0];
                let _ = self.out.send(Out::Raw(raw)).await;
            }
            _ => return Err(Fail("42601", format!("syntax error at or near {cmd:?}"))),
        }
        Ok(Flow::Go)
    }

    /// `copy in TABLE`: CopyData until CopyDone, every line checked for its tab.
    async fn copy_in(&self, table: &str, frames: &mut Frames) -> Result<Flow, Fail> {
        self.send(Backend::CopyInResponse).await;
        let mut data = Vec::new();
        let mut checked = 0; // the bytes of whole lines checked so far
        loop {
            match frames.next().await {
                Some(Ok(Frontend::CopyData(chunk))) => {
                    data.extend_from_slice(&chunk);
                    while let Some(nl) = data[checked..].iter().position(|&b| b == b'\n') {
                        let line = &data[checked..checked + nl];
                        if !line.contains(&b'\t') {
                            let at = data[..checked].iter().filter(|&&b| b == b'\n').count() + 1;
                            return Err(Fail(
                                "22P04",
                                format!("missing data for column \"v\" at line {at}"),
                            ));
                        }
                        checked += nl + 1;
                    }
                }
                Some(Ok(Frontend::CopyDone)) => {
                    let lines = data.iter().filter(|&&b| b == b'\n').count();
                    self.state.tables.borrow_mut().insert(table.into(), data);
                    self.send(Backend::CommandComplete(format!("COPY {lines}")))
                        .await;
                    return Ok(Flow::Go);
                }
                Some(Ok(Frontend::CopyFail(why))) => {
                    return Err(Fail("57014", format!("COPY from stdin failed: {why}")));
                }
                Some(Ok(Frontend::Sync)) => {}
                Some(Ok(other)) => {
                    return Err(Fail(
                        "08P01",
                        format!("unexpected message during COPY: {other:?}"),
                    ))
                }
                Some(Err(_)) | None => return Ok(Flow::Vanish),
            }
        }
    }
}

/// Row `i` of `copy out N WIDTH`: its number, a tab, `WIDTH` letters, a newline.
pub fn copy_row(i: usize, width: usize) -> Vec<u8> {
    let mut row = format!("{i}\t").into_bytes();
    row.extend((0..width).map(|j| b'a' + ((i + j) % 26) as u8));
    row.push(b'\n');
    row
}
