//! The line protocol served on every listener, one task per connection: a request per
//! line, an answer per line. `PING`, `ECHO text`, `GREET` (the greeting of the
//! configuration the connection was accepted under), `GEN` (that configuration's
//! generation), `SLOW ms` (`WORKING`, then `DONE` after `ms`: a request in flight),
//! `STATS`, `FDS` (spawns `ls /proc/self/fd` and answers with the fds the child had), and
//! `QUIT`. A line too long or not UTF-8 is answered with an error and ends the connection;
//! a line cut short by the peer's end of file is dropped unanswered. Once the daemon
//! drains, a connection waiting for its next request says `BYE draining` and closes; one
//! in the middle of a request finishes it first.

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use overlap::codec::{BytesMut, Decoder, Encoder, Framed, LinesCodec, LinesCodecError};
use overlap::io::{AsyncRead, AsyncWrite};
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;
use overlap::sync::CancellationToken;

use super::config::Generation;

/// The daemon's counters, shared by its tasks.
#[derive(Debug, Default)]
pub struct Stats {
    pub accepted: Cell<u64>,
    pub active: Cell<u64>,
    /// Requests answered.
    pub served: Cell<u64>,
    /// Connections told `ERR busy`.
    pub refused: Cell<u64>,
    /// Connections that ended in an error (a bad line, a peer gone mid-line or mid-answer).
    pub failed: Cell<u64>,
}

impl Stats {
    /// Adds `n` (which may be negative) to one counter.
    pub fn add(cell: &Cell<u64>, n: i64) {
        cell.set((cell.get() as i64 + n) as u64);
    }
}

/// One connection counted in `active` (by the accept loop, before its task runs, so that
/// the limit sees it at once), counted out when its task ends or is aborted.
pub struct Active(pub Rc<Shared>);

impl Drop for Active {
    fn drop(&mut self) {
        Stats::add(&self.0.stats.active, -1);
    }
}

/// What every connection task shares.
#[derive(Debug, Default)]
pub struct Shared {
    pub stats: Stats,
    /// Cancelled when the daemon starts draining.
    pub draining: CancellationToken,
}

/// Lines of at most a maximum length, as `LinesCodec`, but a last line with no newline
/// (the peer gone mid-request) is an error rather than a request.
pub struct Requests(LinesCodec);

impl Decoder for Requests {
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
                let cut = io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the peer left mid-line, after {} bytes", src.len()),
                );
                src.clear();
                Err(LinesCodecError::Io(cut))
            }
        }
    }
}

impl Encoder<&str> for Requests {
    type Error = LinesCodecError;

    fn encode(&mut self, line: &str, dst: &mut BytesMut) -> Result<(), LinesCodecError> {
        self.0.encode(line, dst)
    }
}

/// Serves one connection under the configuration it was accepted with. Never fails: how
/// the connection ended is counted in `shared.stats`.
pub async fn serve<S>(stream: S, gen: Rc<Generation>, active: Active)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let shared = active.0.clone();
    let stats = &shared.stats;
    let codec = Requests(LinesCodec::new_with_max_length(gen.config.max_line));
    let mut conn = Framed::new(stream, codec);
    let ok = loop {
        let next = overlap::select! {
            biased;
            _ = shared.draining.cancelled() => {
                break conn.send("BYE draining").await.is_ok();
            }
            next = conn.next() => next,
        };
        let line = match next {
            None => break true,
            Some(Ok(line)) => line,
            Some(Err(LinesCodecError::MaxLineLengthExceeded)) => {
                let _ = conn.send("ERR line too long").await;
                break false;
            }
            Some(Err(LinesCodecError::Io(e))) if e.kind() == io::ErrorKind::InvalidData => {
                let _ = conn.send("ERR not utf-8").await;
                break false;
            }
            Some(Err(_)) => break false,
        };
        match answer(&mut conn, &line, &gen, &shared).await {
            Ok(keep) => {
                Stats::add(&stats.served, 1);
                if !keep {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    if !ok {
        Stats::add(&stats.failed, 1);
    }
    // Shut the write side so the peer reads the end of file at once.
    let _ = conn.close().await;
    drop(active);
}

type Conn<S> = Framed<S, Requests>;

/// Answers one request; whether to read another.
async fn answer<S>(
    conn: &mut Conn<S>,
    line: &str,
    gen: &Generation,
    shared: &Shared,
) -> Result<bool, LinesCodecError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
    match verb {
        "PING" => conn.send("PONG").await?,
        "ECHO" => conn.send(arg).await?,
        "GREET" => conn.send(&gen.config.greeting).await?,
        "GEN" => conn.send(&format!("generation {}", gen.number)).await?,
        "SLOW" => match arg.parse::<u64>() {
            Ok(ms) => {
                conn.send("WORKING").await?;
                overlap::time::sleep(Duration::from_millis(ms)).await;
                conn.send("DONE").await?;
            }
            Err(_) => conn.send(&format!("ERR bad duration {arg:?}")).await?,
        },
        "STATS" => {
            let s = &shared.stats;
            let text = format!(
                "active={} served={} refused={} failed={}",
                s.active.get(),
                s.served.get(),
                s.refused.get(),
                s.failed.get()
            );
            conn.send(&text).await?
        }
        "FDS" => {
            let answer = match child_fds().await {
                Ok(fds) => format!("FDS {fds}"),
                Err(e) => format!("ERR spawn: {e}"),
            };
            conn.send(&answer).await?
        }
        "QUIT" => {
            conn.send("BYE").await?;
            return Ok(false);
        }
        _ => conn.send(&format!("ERR unknown command {verb:?}")).await?,
    }
    Ok(true)
}

/// Runs `ls /proc/self/fd` as a child and gives the fds it had open, in order, space
/// separated (its own listing's fd among them).
pub async fn child_fds() -> io::Result<String> {
    use std::process::Stdio;
    let out = overlap::process::Command::new("ls")
        .arg("/proc/self/fd")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .await?;
    if !out.status.success() {
        return Err(io::Error::other(format!("ls: {}", out.status)));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fds: Vec<u32> = text
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    fds.sort_unstable();
    Ok(fds.iter().map(u32::to_string).collect::<Vec<_>>().join(" "))
}

/// Tells a connection over the limit that the daemon is busy, and closes it.
pub async fn refuse<S>(stream: S, shared: Rc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    Stats::add(&shared.stats.refused, 1);
    let mut conn = Framed::new(stream, Requests(LinesCodec::new()));
    let _ = conn.send("ERR busy").await;
    let _ = conn.close().await;
}
