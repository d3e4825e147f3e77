//! The TCP front: one line per command, one or more lines per answer.
//!
//! ```text
//! GET key              -> VALUE value | NOT_FOUND
//! PUT key value...     -> OK seq          (the value is the rest of the line)
//! DEL key              -> OK seq
//! SCAN start end limit -> ROW key value (each) then END count   (end "-": no end)
//! anything else        -> ERR reason      (the session goes on)
//! ```
//!
//! Lines are framed by `LinesCodec` with a maximum length, wrapped so that a line the
//! peer never finished (it vanished mid-message) is dropped, not run.

use std::io;
use std::net::SocketAddr;

use overlap::codec::{BytesMut, Decoder, Encoder, Framed, LinesCodec, LinesCodecError};
use overlap::net::{TcpListener, TcpStream};
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;
use overlap::sync::CancellationToken;
use overlap::task::{JoinHandle, TaskTracker};

use super::db::Db;

pub const MAX_LINE: usize = 1024;
pub const MAX_SCAN: usize = 1000;

/// `LinesCodec`, except that bytes left without a newline at the end of the stream are
/// an error rather than a last line: `PUT k half-a-val` from a peer that died mid-line
/// must not be stored.
pub struct CommandCodec(LinesCodec);

impl Decoder for CommandCodec {
    type Item = String;
    type Error = LinesCodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<String>, LinesCodecError> {
        self.0.decode(src)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<String>, LinesCodecError> {
        match self.0.decode(src)? {
            Some(line) => Ok(Some(line)),
            None if src.is_empty() => Ok(None),
            None => {
                let n = src.len();
                src.clear();
                let msg = format!("the peer closed mid-line ({n} bytes dropped)");
                Err(io::Error::new(io::ErrorKind::UnexpectedEof, msg).into())
            }
        }
    }
}

impl Encoder<String> for CommandCodec {
    type Error = LinesCodecError;

    fn encode(&mut self, line: String, dst: &mut BytesMut) -> Result<(), LinesCodecError> {
        self.0.encode(line, dst)
    }
}

pub struct Server {
    pub addr: SocketAddr,
    token: CancellationToken,
    tracker: TaskTracker,
    accept: JoinHandle<()>,
}

impl Server {
    pub async fn start(db: Db, host: &str) -> io::Result<Server> {
        let listener = TcpListener::bind((host, 0)).await?;
        let addr = listener.local_addr()?;
        let (token, tracker) = (CancellationToken::new(), TaskTracker::new());
        let accept = overlap::spawn(accept_loop(listener, db, token.clone(), tracker.clone()));
        Ok(Server {
            addr,
            token,
            tracker,
            accept,
        })
    }

    /// Ends the accept loop and every session, and waits for them.
    pub async fn stop(self) {
        self.token.cancel();
        let _ = self.accept.await;
        self.tracker.close();
        self.tracker.wait().await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    db: Db,
    token: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let stream = overlap::select! {
            _ = token.cancelled() => return,
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        tracker.spawn(session(stream, db.clone(), token.clone()));
    }
}

async fn session(stream: TcpStream, db: Db, token: CancellationToken) {
    let _ = stream.set_nodelay(true);
    let codec = CommandCodec(LinesCodec::new_with_max_length(MAX_LINE));
    let mut lines = Framed::new(stream, codec);
    let mut after_error = false;
    loop {
        let line = overlap::select! {
            _ = token.cancelled() => return,
            line = lines.next() => line,
        };
        let reply = match line {
            Some(Ok(line)) => answer(&db, &line).await,
            Some(Err(LinesCodecError::MaxLineLengthExceeded)) => {
                after_error = true;
                vec![format!("ERR line longer than {MAX_LINE} bytes")]
            }
            Some(Err(LinesCodecError::Io(e))) if e.kind() == io::ErrorKind::InvalidData => {
                after_error = true;
                vec!["ERR line is not UTF-8".to_string()]
            }
            // After an error a `Framed` gives one `None`, then reads on (as tokio-util's).
            None if std::mem::take(&mut after_error) => continue,
            Some(Err(_)) | None => return,
        };
        for line in reply {
            if lines.feed(line).await.is_err() {
                return;
            }
        }
        if SinkExt::<String>::flush(&mut lines).await.is_err() {
            return;
        }
    }
}

fn err(e: io::Error) -> Vec<String> {
    vec![format!("ERR {e}")]
}

async fn answer(db: &Db, line: &str) -> Vec<String> {
    let mut words = line.splitn(3, ' ');
    let (cmd, a, rest) = (words.next().unwrap_or(""), words.next(), words.next());
    let key_ok = |k: &str| !k.is_empty();
    match (cmd, a, rest) {
        ("GET", Some(k), None) if key_ok(k) => match db.get(k.as_bytes()).await {
            Ok(Some(v)) => vec![format!("VALUE {}", String::from_utf8_lossy(&v))],
            Ok(None) => vec!["NOT_FOUND".into()],
            Err(e) => err(e),
        },
        ("PUT", Some(k), Some(v)) if key_ok(k) => match db.put(k.as_bytes(), v.as_bytes()).await {
            Ok(seq) => vec![format!("OK {seq}")],
            Err(e) => err(e),
        },
        ("DEL", Some(k), None) if key_ok(k) => match db.delete(k.as_bytes()).await {
            Ok(seq) => vec![format!("OK {seq}")],
            Err(e) => err(e),
        },
        ("SCAN", Some(start), Some(rest)) => {
            let Some((end, limit)) = rest.split_once(' ') else {
                return vec!["ERR usage: SCAN start end limit".into()];
            };
            let Ok(limit) = limit.parse::<usize>() else {
                return vec![format!("ERR bad limit {limit:?}")];
            };
            if limit > MAX_SCAN {
                return vec![format!("ERR limit over {MAX_SCAN}")];
            }
            let end = (end != "-").then_some(end.as_bytes());
            match db.scan(start.as_bytes(), end, limit).await {
                Ok(rows) => {
                    let n = rows.len();
                    let mut out: Vec<String> = rows
                        .into_iter()
                        .map(|(k, v)| {
                            let (k, v) = (String::from_utf8_lossy(&k), String::from_utf8_lossy(&v));
                            format!("ROW {k} {v}")
                        })
                        .collect();
                    out.push(format!("END {n}"));
                    out
                }
                Err(e) => err(e),
            }
        }
        ("", _, _) => vec!["ERR empty command".into()],
        ("GET" | "DEL", _, _) => vec![format!("ERR usage: {cmd} key")],
        ("PUT", _, _) => vec!["ERR usage: PUT key value".into()],
        ("SCAN", _, _) => vec!["ERR usage: SCAN start end limit".into()],
        _ => vec![format!("ERR unknown command {cmd:?}")],
    }
}
