//! The client library's connection: a `BufStream` over a `TcpStream`, one query at a time,
//! and the mark that keeps a connection whose exchange was cut short out of the pool.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use overlap::io::{AsyncWriteExt, BufStream};
use overlap::net::TcpStream;
use overlap::time::Instant;

use super::wire::{self, BackendKey};

/// What a query or a checkout can fail with.
#[derive(Debug)]
pub enum DbError {
    /// The connection failed (reset, closed, garbage): it is not used again.
    Io(io::Error),
    /// The server answered with an error; the connection is still good.
    Server(String),
    /// The pool had no connection for the whole checkout timeout.
    Timeout,
    /// The pool was closed.
    Closed,
}

impl From<io::Error> for DbError {
    fn from(e: io::Error) -> DbError {
        DbError::Io(e)
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Io(e) => write!(f, "connection failed: {e}"),
            DbError::Server(msg) => write!(f, "server error: {msg}"),
            DbError::Timeout => f.write_str("timed out waiting for a connection"),
            DbError::Closed => f.write_str("the pool is closed"),
        }
    }
}

fn protocol(what: String) -> DbError {
    DbError::Io(io::Error::new(io::ErrorKind::InvalidData, what))
}

pub struct Connection {
    io: BufStream<TcpStream>,
    key: BackendKey,
    addr: SocketAddr,
    pub created: Instant,
    pub idle_since: Instant,
    /// Set when an exchange starts, cleared when its `Z` is read: still set, the stream
    /// is somewhere in the middle of a message (a query future dropped by a timeout or a
    /// `select!`, or an I/O error), and the connection must not be used again.
    in_exchange: bool,
}

impl Connection {
    pub async fn connect(addr: SocketAddr, user: &str, password: &str) -> Result<Self, DbError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut io = BufStream::new(stream);
        let startup = format!("{user}\0{password}");
        wire::write_frame(&mut io, wire::STARTUP, startup.as_bytes()).await?;
        io.flush().await?;
        let mut key = None;
        loop {
            let (tag, body) = wire::read_frame(&mut io).await?;
            match tag {
                wire::AUTH_OK => {}
                wire::BACKEND_KEY => key = BackendKey::from_bytes(&body),
                wire::ERROR => return Err(DbError::Server(text(body)?)),
                wire::READY => break,
                other => return Err(protocol(format!("{:?} during startup", other as char))),
            }
        }
        let key = key.ok_or_else(|| protocol("no backend key".into()))?;
        let now = Instant::now();
        Ok(Connection {
            io,
            key,
            addr,
            created: now,
            idle_since: now,
            in_exchange: false,
        })
    }

    /// Runs one query: its rows, or the server's error. Dropped before it returns, it
    /// leaves the connection broken (see [`is_broken`](Self::is_broken)).
    pub async fn query(&mut self, sql: &str) -> Result<Vec<String>, DbError> {
        if self.in_exchange {
            return Err(protocol("connection broken by an earlier query".into()));
        }
        self.in_exchange = true;
        wire::write_frame(&mut self.io, wire::QUERY, sql.as_bytes()).await?;
        self.io.flush().await?;
        let mut rows = Vec::new();
        let mut failed = None;
        loop {
            let (tag, body) = wire::read_frame(&mut self.io).await?;
            match tag {
                wire::ROW => rows.push(text(body)?),
                wire::COMPLETE => {
                    let n = <[u8; 4]>::try_from(&body[..]).ok().map(u32::from_be_bytes);
                    if n != Some(rows.len() as u32) {
                        return Err(protocol(format!(
                            "{} rows, completion says {n:?}",
                            rows.len()
                        )));
                    }
                }
                wire::ERROR => failed = Some(text(body)?),
                wire::READY => break,
                other => return Err(protocol(format!("{:?} in an answer", other as char))),
            }
        }
        self.in_exchange = false;
        match failed {
            Some(msg) => Err(DbError::Server(msg)),
            None => Ok(rows),
        }
    }

    /// Whether an exchange was cut short: the next bytes on the stream belong to it.
    pub fn is_broken(&self) -> bool {
        self.in_exchange
    }

    /// deadpool's fast recycle check, without a round trip: whether the server closed or
    /// reset the connection (or sent something unasked) while it sat idle.
    pub fn is_closed(&self) -> bool {
        let mut byte = [0u8; 1];
        let res = self.io.get_ref().try_read(&mut byte);
        !matches!(res, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    pub fn backend_pid(&self) -> u32 {
        self.key.pid
    }

    /// What cancels this connection's running query from elsewhere.
    pub fn cancel_token(&self) -> CancelToken {
        CancelToken {
            addr: self.addr,
            key: self.key,
        }
    }

    /// Says goodbye (if the stream is between messages) and closes.
    pub async fn terminate(mut self) {
        if !self.in_exchange {
            let _ = wire::write_frame(&mut self.io, wire::TERMINATE, b"").await;
            let _ = self.io.close().await;
        }
    }
}

fn text(body: Vec<u8>) -> Result<String, DbError> {
    String::from_utf8(body).map_err(|e| protocol(e.to_string()))
}

/// Postgres's cancel key: sent on a connection of its own, since the query's connection is
/// busy; the server answers nothing and closes.
#[derive(Clone, Copy, Debug)]
pub struct CancelToken {
    addr: SocketAddr,
    key: BackendKey,
}

impl CancelToken {
    pub async fn cancel(&self) -> io::Result<()> {
        let mut stream = TcpStream::connect(self.addr).await?;
        wire::write_frame(&mut stream, wire::CANCEL, &self.key.to_bytes()).await?;
        // Wait for the server's close, so the cancel has been handled when this returns.
        let mut rest = Vec::new();
        overlap::io::read_to_end(&mut stream, &mut rest).await?;
        Ok(())
    }

    /// The same key with a wrong secret: a cancel the server must ignore.
    pub fn forged(self) -> CancelToken {
        let key = BackendKey {
            secret: self.key.secret ^ 1,
            ..self.key
        };
        CancelToken { key, ..self }
    }
}
