//! The client library's face (tokio-postgres's shape): `Client` (cheap to clone, every clone
//! sharing one connection) sends requests to the connection task (`connection.rs`) over an
//! `mpsc` channel, each with its own bounded channel for the backend messages that answer
//! it; the calls here turn those messages into rows, COPY streams and errors.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use overlap::codec::{BytesMut, FramedRead};
use overlap::io::AsyncWriteExt;
use overlap::net::{TcpSocket, TcpStream};
use overlap::stream::{LocalBoxStream, StreamExt};
use overlap::sync::mpsc;

use super::connection::{self, CopyMsg, Request};
use super::proto::{Backend, BackendCodec, Frontend, Hello, Value};

/// A row, its values as text.
pub type Row = Vec<Option<String>>;

#[derive(Debug)]
pub enum Error {
    /// The server's ErrorResponse.
    Db { code: String, message: String },
    /// The connection failed (every waiting caller gets this, made anew for each).
    Io(io::Error),
    /// A statement of a batch after one that failed: never run.
    Skipped,
    /// The server sent what the call did not expect.
    Protocol(String),
    /// A pool checkout ran out of time.
    Timeout,
    /// The pool was closed while a checkout waited.
    PoolClosed,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Db { code, message } => write!(f, "server error {code}: {message}"),
            Error::Io(e) => write!(f, "connection failed: {e}"),
            Error::Skipped => f.write_str("not run: an earlier statement of the batch failed"),
            Error::Protocol(what) => write!(f, "protocol violation: {what}"),
            Error::Timeout => f.write_str("pool checkout timed out"),
            Error::PoolClosed => f.write_str("pool closed"),
        }
    }
}

impl Error {
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Db { code, .. } => Some(code),
            _ => None,
        }
    }
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            Error::Io(e) => Some(e.kind()),
            _ => None,
        }
    }
}

/// Settings of a connection.
#[derive(Debug, Clone)]
pub struct Config {
    pub user: String,
    /// Backend messages over this many body bytes fail the connection.
    pub max_message: usize,
    /// Room in each request's channel of answers: how far the connection reads ahead of a
    /// caller that is slow to take rows.
    pub answer_queue: usize,
    /// `SO_RCVBUF` of the socket, set before connecting.
    pub recv_buffer: Option<u32>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            user: "app".into(),
            max_message: 1 << 20,
            answer_queue: 16,
            recv_buffer: None,
        }
    }
}

/// The connection's counters, shared by the task and the clients.
#[derive(Debug, Default)]
pub struct Stats {
    /// The most requests written and not yet answered to the end.
    pub max_in_flight: Cell<usize>,
    /// Answers read to their end after their caller had gone.
    pub answers_skipped: Cell<usize>,
    /// Requests dropped before they were written.
    pub requests_skipped: Cell<usize>,
    pub notifications: Cell<usize>,
}

pub struct Shared {
    pub pid: u32,
    pub key: u32,
    pub addr: SocketAddr,
    pub stats: Stats,
    /// Why the connection ended, once it has: each caller gets an `io::Error` made from it.
    pub failed: RefCell<Option<(io::ErrorKind, String)>>,
    answer_queue: usize,
}

impl Shared {
    pub fn error(&self) -> Error {
        let (kind, msg) = self
            .failed
            .borrow()
            .clone()
            .unwrap_or((io::ErrorKind::BrokenPipe, "connection closed".to_string()));
        Error::Io(io::Error::new(kind, msg))
    }
}

/// An asynchronous notification (LISTEN/NOTIFY).
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub pid: u32,
    pub channel: String,
    pub payload: String,
}

#[derive(Clone)]
pub struct Client {
    requests: mpsc::Sender<Request>,
    pub shared: Rc<Shared>,
}

/// What cancels the statement a connection is running, from a connection of its own.
#[derive(Debug, Clone)]
pub struct CancelToken {
    pub addr: SocketAddr,
    pub pid: u32,
    pub key: u32,
}

impl CancelToken {
    pub async fn cancel_query(&self) -> io::Result<()> {
        let mut stream = TcpStream::connect(self.addr).await?;
        let mut msg = BytesMut::new();
        Hello::Cancel {
            pid: self.pid,
            key: self.key,
        }
        .encode(&mut msg);
        stream.write_all(&msg).await?;
        // The server answers nothing and closes: wait for that, as libpq does.
        let mut buf = [0u8; 1];
        overlap::io::AsyncReadExt::read(&mut stream, &mut buf).await?;
        Ok(())
    }
}

impl Client {
    /// Connects, runs the startup, and spawns the connection task. Gives the client, the
    /// stream of notifications and the task's handle.
    pub async fn connect(
        addr: SocketAddr,
        config: &Config,
    ) -> Result<
        (
            Client,
            mpsc::UnboundedReceiver<Notification>,
            overlap::JoinHandle<()>,
        ),
        Error,
    > {
        let stream = match config.recv_buffer {
            Some(size) => {
                let socket = if addr.is_ipv4() {
                    TcpSocket::new_v4()
                } else {
                    TcpSocket::new_v6()
                }
                .map_err(Error::Io)?;
                socket.set_recv_buffer_size(size).map_err(Error::Io)?;
                socket.connect(addr).await
            }
            None => TcpStream::connect(addr).await,
        }
        .map_err(Error::Io)?;
        stream.set_nodelay(true).map_err(Error::Io)?;
        let (rd, mut wr) = stream.into_split();
        let mut hello = BytesMut::new();
        Hello::Startup {
            user: config.user.clone(),
        }
        .encode(&mut hello);
        wr.write_all(&hello).await.map_err(Error::Io)?;
        let mut frames = FramedRead::new(
            rd,
            BackendCodec {
                max: config.max_message,
            },
        );
        let mut key_data = None;
        loop {
            let msg = match frames.next().await {
                Some(Ok(m)) => m,
                Some(Err(e)) => return Err(Error::Io(e)),
                None => return Err(Error::Io(io::ErrorKind::UnexpectedEof.into())),
            };
            match msg {
                Backend::AuthOk | Backend::ParameterStatus(..) | Backend::Notice(_) => {}
                Backend::KeyData { pid, key } => key_data = Some((pid, key)),
                Backend::Ready(_) => break,
                Backend::Error { code, message } => return Err(Error::Db { code, message }),
                other => return Err(Error::Protocol(format!("{other:?} in the startup"))),
            }
        }
        let (pid, key) = key_data.ok_or_else(|| Error::Protocol("no BackendKeyData".into()))?;
        let shared = Rc::new(Shared {
            pid,
            key,
            addr,
            stats: Stats::default(),
            failed: RefCell::new(None),
            answer_queue: config.answer_queue,
        });
        let (requests, queue) = mpsc::channel(8);
        let (notes_tx, notes) = mpsc::unbounded_channel();
        let task = overlap::spawn(connection::run(frames, wr, queue, shared.clone(), notes_tx));
        Ok((Client { requests, shared }, notes, task))
    }

    pub fn is_closed(&self) -> bool {
        self.requests.is_closed()
    }

    pub fn cancel_token(&self) -> CancelToken {
        CancelToken {
            addr: self.shared.addr,
            pid: self.shared.pid,
            key: self.shared.key,
        }
    }

    /// Queues a request; gives the channel its answer comes on.
    async fn start(
        &self,
        msgs: &[Frontend],
        copy: Option<mpsc::Receiver<CopyMsg>>,
    ) -> Result<Answer, Error> {
        let mut bytes = BytesMut::new();
        for m in msgs {
            m.encode(&mut bytes);
        }
        let (reply, rx) = mpsc::channel(self.shared.answer_queue);
        let request = Request { bytes, copy, reply };
        if self.requests.send(request).await.is_err() {
            return Err(self.shared.error());
        }
        Ok(Answer {
            rx,
            shared: self.shared.clone(),
        })
    }

    /// The simple protocol: every statement's rows, or the first error.
    pub async fn simple_query(&self, sql: &str) -> Result<Vec<Row>, Error> {
        let mut answer = self.start(&[Frontend::Query(sql.into())], None).await?;
        let mut rows = Vec::new();
        let mut failed = None;
        loop {
            match answer.next().await? {
                Backend::DataRow(v) => rows.push(text(v)),
                Backend::Error { code, message } => failed = Some(Error::Db { code, message }),
                Backend::Ready(_) => break,
                _ => {}
            }
        }
        failed.map_or(Ok(rows), Err)
    }

    /// The extended protocol: Parse, Bind, Execute, Sync.
    pub async fn query(&self, sql: &str, params: &[Option<&str>]) -> Result<Vec<Row>, Error> {
        let mut results = self.batch(&[(sql, params)]).await?;
        results.pop().expect("one result")
    }

    /// A pipeline of statements under one Sync: each one's rows or error, the ones after
    /// an error `Skipped`, as the server skips them.
    pub async fn batch(
        &self,
        stmts: &[(&str, &[Option<&str>])],
    ) -> Result<Vec<Result<Vec<Row>, Error>>, Error> {
        let mut msgs = Vec::new();
        for (sql, params) in stmts {
            let params: Vec<Value> = params.iter().map(|p| p.map(|s| s.into())).collect();
            msgs.extend([
                Frontend::Parse(sql.to_string()),
                Frontend::Bind(params),
                Frontend::Execute,
            ]);
        }
        msgs.push(Frontend::Sync);
        let mut answer = self.start(&msgs, None).await?;
        let mut results = Vec::new();
        let mut rows = Vec::new();
        loop {
            match answer.next().await? {
                Backend::ParseComplete | Backend::BindComplete | Backend::RowDescription(_) => {}
                Backend::DataRow(v) => rows.push(text(v)),
                Backend::CommandComplete(_) => results.push(Ok(std::mem::take(&mut rows))),
                Backend::Error { code, message } => {
                    rows.clear();
                    results.push(Err(Error::Db { code, message }));
                }
                Backend::Ready(_) => break,
                other => return Err(Error::Protocol(format!("{other:?} in a batch"))),
            }
        }
        while results.len() < stmts.len() {
            results.push(Err(Error::Skipped));
        }
        Ok(results)
    }

    /// The rows of a simple query as they come; dropping the stream part way leaves the
    /// connection to read the rest.
    pub async fn query_stream(
        &self,
        sql: &str,
    ) -> Result<LocalBoxStream<'static, Result<Row, Error>>, Error> {
        let answer = self.start(&[Frontend::Query(sql.into())], None).await?;
        Ok(overlap::stream::unfold(Some(answer), |answer| async move {
            let mut answer = answer?;
            loop {
                match answer.next().await {
                    Ok(Backend::DataRow(v)) => return Some((Ok(text(v)), Some(answer))),
                    Ok(Backend::Error { code, message }) => {
                        return Some((Err(Error::Db { code, message }), Some(answer)))
                    }
                    Ok(Backend::Ready(_)) => return None,
                    Ok(_) => {}
                    Err(e) => return Some((Err(e), None)),
                }
            }
        })
        .boxed_local())
    }

    /// COPY ... TO STDOUT: the data as it comes, a chunk per CopyData.
    pub async fn copy_out(
        &self,
        sql: &str,
    ) -> Result<LocalBoxStream<'static, Result<Vec<u8>, Error>>, Error> {
        let mut answer = self.start(&[Frontend::Query(sql.into())], None).await?;
        match answer.next().await? {
            Backend::CopyOutResponse => {}
            Backend::Error { code, message } => {
                answer.until_ready().await?;
                return Err(Error::Db { code, message });
            }
            other => return Err(Error::Protocol(format!("{other:?} for COPY OUT"))),
        }
        Ok(overlap::stream::unfold(Some(answer), |answer| async move {
            let mut answer = answer?;
            let item = match answer.next().await {
                Ok(Backend::CopyData(d)) => return Some((Ok(d), Some(answer))),
                Ok(Backend::CopyDone) => match answer.next().await {
                    Ok(Backend::CommandComplete(_)) => match answer.until_ready().await {
                        Ok(()) => return None,
                        Err(e) => Err(e),
                    },
                    Ok(other) => Err(Error::Protocol(format!("{other:?} after CopyDone"))),
                    Err(e) => Err(e),
                },
                Ok(Backend::Error { code, message }) => Err(Error::Db { code, message }),
                Ok(other) => Err(Error::Protocol(format!("{other:?} in COPY OUT"))),
                Err(e) => Err(e),
            };
            Some((item, None))
        })
        .boxed_local())
    }

    /// COPY ... FROM STDIN: a sink for the data; dropped without `finish`, the copy fails.
    pub async fn copy_in(&self, sql: &str) -> Result<CopyIn, Error> {
        let (data, data_rx) = mpsc::channel(4);
        let answer = self
            .start(&[Frontend::Query(sql.into())], Some(data_rx))
            .await?;
        Ok(CopyIn { data, answer })
    }
}

pub struct CopyIn {
    data: mpsc::Sender<CopyMsg>,
    answer: Answer,
}

impl CopyIn {
    /// Sends a chunk; an error the server has already answered with comes back here.
    pub async fn send(&mut self, chunk: Vec<u8>) -> Result<(), Error> {
        if let Ok(Backend::Error { code, message }) = self.answer.rx.try_recv() {
            return Err(Error::Db { code, message });
        }
        self.data
            .send(CopyMsg::Data(chunk))
            .await
            .map_err(|_| self.answer.shared.error())
    }

    /// Ends the data; gives the rows the server took.
    pub async fn finish(mut self) -> Result<u64, Error> {
        let _ = self.data.send(CopyMsg::Done).await;
        let mut result = Err(Error::Protocol("no CommandComplete".into()));
        loop {
            match self.answer.next().await? {
                Backend::CopyInResponse => {}
                Backend::CommandComplete(tag) => {
                    let n = tag.strip_prefix("COPY ").and_then(|n| n.parse().ok());
                    result = n.ok_or(Error::Protocol(tag));
                }
                Backend::Error { code, message } => result = Err(Error::Db { code, message }),
                Backend::Ready(_) => return result,
                other => return Err(Error::Protocol(format!("{other:?} in COPY IN"))),
            }
        }
    }
}

/// The answer to one request, as the connection task forwards it.
struct Answer {
    rx: mpsc::Receiver<Backend>,
    shared: Rc<Shared>,
}

impl Answer {
    async fn next(&mut self) -> Result<Backend, Error> {
        self.rx.recv().await.ok_or_else(|| self.shared.error())
    }

    async fn until_ready(&mut self) -> Result<(), Error> {
        while !matches!(self.next().await?, Backend::Ready(_)) {}
        Ok(())
    }
}

fn text(values: Vec<Value>) -> Row {
    values
        .into_iter()
        .map(|v| v.map(|b| String::from_utf8_lossy(&b).into_owned()))
        .collect()
}
