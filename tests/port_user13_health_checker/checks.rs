//! The check kinds: a TCP connect, an HTTP/1.1 GET over a raw `TcpStream`, a UDP request
//! with retries, a child process, and a probe the user hands in; each gives an [`Outcome`].

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::pin::Pin;
use std::process::Stdio;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpStream, UdpSocket};
use overlap::process::Command;
use overlap::sync::CancellationToken;
use overlap::time::timeout;

/// A check's result, Consul's three levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    Passing,
    Warning,
    Critical,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Passing => "passing",
            Status::Warning => "warning",
            Status::Critical => "critical",
        })
    }
}

/// One run's result: the level and what the check saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub status: Status,
    pub output: String,
}

impl Outcome {
    pub fn new(status: Status, output: impl Into<String>) -> Outcome {
        Outcome {
            status,
            output: output.into(),
        }
    }
    fn passing(output: impl Into<String>) -> Outcome {
        Outcome::new(Status::Passing, output)
    }
    fn critical(output: impl Into<String>) -> Outcome {
        Outcome::new(Status::Critical, output)
    }
}

/// A probe the user hands in (a database ping, say): a future per run.
pub type Probe = Rc<dyn Fn() -> Pin<Box<dyn Future<Output = Outcome>>>>;

/// What a check does.
#[derive(Clone)]
pub enum Kind {
    Tcp {
        /// `host:port`, resolved on each run (every address tried in turn).
        target: String,
        timeout: Duration,
    },
    Http {
        addr: SocketAddr,
        path: String,
        status: u16,
        body_contains: Option<String>,
        timeout: Duration,
    },
    Udp {
        addr: SocketAddr,
        payload: Vec<u8>,
        expect: Vec<u8>,
        attempts: u32,
        attempt_timeout: Duration,
    },
    Exec {
        argv: Vec<String>,
        timeout: Duration,
        max_output: usize,
    },
    Probe(Probe),
}

impl Kind {
    /// Runs the check once; `None` if `token` was cancelled first (a child is killed and
    /// reaped before that `None`).
    pub async fn run(&self, token: &CancellationToken) -> Option<Outcome> {
        match self {
            Kind::Tcp { target, timeout } => token.run_until_cancelled(tcp(target, *timeout)).await,
            Kind::Http {
                addr,
                path,
                status,
                body_contains,
                timeout: t,
            } => {
                let get = http(*addr, path, *status, body_contains.as_deref(), *t);
                token.run_until_cancelled(get).await
            }
            Kind::Udp {
                addr,
                payload,
                expect,
                attempts,
                attempt_timeout,
            } => {
                let ask = udp(*addr, payload, expect, *attempts, *attempt_timeout);
                token.run_until_cancelled(ask).await
            }
            Kind::Exec {
                argv,
                timeout,
                max_output,
            } => exec(argv, *timeout, *max_output, token).await,
            Kind::Probe(probe) => token.run_until_cancelled(probe()).await,
        }
    }
}

/// A TCP connect (the name resolved too) under a timeout: connected, refused, or timed out.
pub async fn tcp(addr: &str, limit: Duration) -> Outcome {
    match timeout(limit, TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Outcome::passing(format!("tcp {addr}: connected")),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Outcome::critical(format!("tcp {addr}: refused"))
        }
        Ok(Err(e)) => Outcome::critical(format!("tcp {addr}: error: {e}")),
        Err(_) => Outcome::critical(format!("tcp {addr}: timed out after {limit:?}")),
    }
}

/// The most of a response an HTTP check reads.
const MAX_RESPONSE: u64 = 64 * 1024;

/// `GET path` with `Connection: close`, the whole exchange under `limit`: passing if the
/// status is `want` and the body holds `contains`.
pub async fn http(
    addr: SocketAddr,
    path: &str,
    want: u16,
    contains: Option<&str>,
    limit: Duration,
) -> Outcome {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(req.as_bytes()).await?;
        let mut response = Vec::new();
        (&mut stream)
            .take(MAX_RESPONSE)
            .read_to_end(&mut response)
            .await?;
        std::io::Result::Ok(response)
    };
    let response = match timeout(limit, exchange).await {
        Err(_) => return Outcome::critical(format!("http {path}: timed out after {limit:?}")),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Outcome::critical(format!("http {path}: refused"))
        }
        Ok(Err(e)) => return Outcome::critical(format!("http {path}: error: {e}")),
        Ok(Ok(r)) => r,
    };
    let Some((status, body)) = parse_response(&response) else {
        return Outcome::critical(format!("http {path}: malformed response"));
    };
    if status != want {
        return Outcome::critical(format!("http {path}: status {status}, want {want}"));
    }
    match contains {
        Some(s) if !String::from_utf8_lossy(body).contains(s) => {
            Outcome::critical(format!("http {path}: status {status}, body lacks {s:?}"))
        }
        _ => Outcome::passing(format!("http {path}: status {status}")),
    }
}

/// The status code and the body of an HTTP/1.x response read to its end.
pub fn parse_response(raw: &[u8]) -> Option<(u16, &[u8])> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut parts = head.lines().next()?.splitn(3, ' ');
    let version = parts.next()?;
    let code = parts.next()?;
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return None;
    }
    Some((code.parse().ok()?, &raw[end + 4..]))
}

/// `payload` to `addr` until a reply holding `expect` comes, at most `attempts` times, each
/// waiting `each` for the reply.
pub async fn udp(
    addr: SocketAddr,
    payload: &[u8],
    expect: &[u8],
    attempts: u32,
    each: Duration,
) -> Outcome {
    let local: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0".parse().unwrap()
    } else {
        "[::]:0".parse().unwrap()
    };
    let socket = match UdpSocket::bind(local).await {
        Ok(s) => s,
        Err(e) => return Outcome::critical(format!("udp {addr}: bind: {e}")),
    };
    if let Err(e) = socket.connect(addr).await {
        return Outcome::critical(format!("udp {addr}: connect: {e}"));
    }
    let mut buf = [0u8; 1500];
    let mut refused = false;
    for attempt in 1..=attempts {
        if let Err(e) = socket.send(payload).await {
            return Outcome::critical(format!("udp {addr}: send: {e}"));
        }
        match timeout(each, socket.recv(&mut buf)).await {
            Ok(Ok(n)) if contains(&buf[..n], expect) => {
                return Outcome::passing(format!("udp {addr}: reply on attempt {attempt}"));
            }
            Ok(Ok(n)) => {
                let got = String::from_utf8_lossy(&buf[..n]);
                return Outcome::critical(format!("udp {addr}: unexpected reply {got:?}"));
            }
            // An ICMP port unreachable for an earlier datagram: nobody is there (yet).
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => refused = true,
            Ok(Err(e)) => return Outcome::critical(format!("udp {addr}: recv: {e}")),
            Err(_) => {}
        }
    }
    let why = if refused { "refused" } else { "no reply" };
    Outcome::critical(format!("udp {addr}: {why} after {attempts} attempts"))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Runs `argv`: exit 0 passing, 1 warning, anything else (a signal too) critical; stdout
/// then stderr as the output, cut to `max_output` bytes. Past `limit`, or when `token` is
/// cancelled, the child is killed and reaped (`None` for the cancel).
pub async fn exec(
    argv: &[String],
    limit: Duration,
    max_output: usize,
    token: &CancellationToken,
) -> Option<Outcome> {
    let mut child = match Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return Some(Outcome::critical(format!("exec {}: {e}", argv[0]))),
    };
    let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let ended = {
        let run = futures_util::future::join3(
            read_capped(out, max_output),
            read_capped(err, max_output),
            child.wait(),
        );
        overlap::select! {
            // `{ run }` moves it in, as tokio's `run =>` does; overlap's borrows a future
            // given by name, and this one is not `Unpin`.
            r = { run } => Ok(r),
            _ = overlap::time::sleep(limit) => Err(false),
            _ = token.cancelled() => Err(true),
        }
    };
    let ((mut output, cut_out), (stderr, cut_err), status) = match ended {
        Ok(r) => r,
        Err(cancelled) => {
            // Killed and reaped here, whether the check goes on or the checker stops.
            let _ = child.kill().await;
            return (!cancelled).then(|| {
                Outcome::critical(format!("exec {}: timed out after {limit:?}", argv[0]))
            });
        }
    };
    let status = match status {
        Ok(s) => s,
        Err(e) => return Some(Outcome::critical(format!("exec {}: wait: {e}", argv[0]))),
    };
    output.extend_from_slice(&stderr);
    let mut text = String::from_utf8_lossy(&output).into_owned();
    if cut_out || cut_err || text.len() > max_output {
        let mut end = max_output.min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...(truncated)");
    }
    let level = match (status.code(), status.signal()) {
        (Some(0), _) => Status::Passing,
        (Some(1), _) => Status::Warning,
        (Some(_), _) => Status::Critical,
        (None, Some(sig)) => return Some(Outcome::critical(format!("killed by signal {sig}"))),
        (None, None) => Status::Critical,
    };
    Some(Outcome::new(level, text))
}

/// Reads `pipe` to its end, keeping the first `max` bytes (the rest is read and dropped,
/// so a chatty child never blocks on a full pipe); whether any was dropped.
async fn read_capped(mut pipe: impl AsyncRead + Unpin, max: usize) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut cut = false;
    let mut buf = [0u8; 4096];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return (kept, cut),
            Ok(n) => {
                let room = max.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                cut |= n > room;
            }
        }
    }
}
