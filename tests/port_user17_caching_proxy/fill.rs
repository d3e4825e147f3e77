//! The origin side: one fetch per connection (`Connection: close`, conditional when
//! revalidating), the fill task that writes a body into its cache file at offsets with
//! `PositionalFile::write_vec_at` and publishes each step on the entry's `watch`, and the
//! relay of a response that may not be stored (a pass).

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::TcpStream;
use overlap::time::timeout;

use crate::cache::{Cache, Entry, State, Stored};
use crate::http::{self, header, is_hop_by_hop, Request, Response, MAX_HEAD};

/// How much of the origin's body is read (and written to the file) at once.
pub const FILL_CHUNK: usize = 64 * 1024;

/// A response head from the origin, with its connection and the body bytes read with it.
pub struct Fetched {
    pub stream: TcpStream,
    pub resp: Response,
    pub leftover: Vec<u8>,
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("the origin {what}"))
}

/// Asks the origin for `req`'s target with a GET (a HEAD too: the body is stored), passing
/// on the end-to-end headers; with `validators`, conditionally.
pub async fn fetch(
    origin: SocketAddr,
    req: &Request,
    validators: Option<&Stored>,
    idle: Duration,
) -> io::Result<Fetched> {
    let mut stream = timeout(idle, TcpStream::connect(origin))
        .await
        .map_err(|_| timed_out("did not accept"))??;
    stream.set_nodelay(true)?;
    let host = header(&req.headers, "host").unwrap_or("origin");
    let mut out = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n",
        req.target
    );
    const NOT_PASSED: [&str; 5] = [
        "host",
        "range",
        "if-range",
        "if-none-match",
        "if-modified-since",
    ];
    for (name, value) in &req.headers {
        if !is_hop_by_hop(name) && !NOT_PASSED.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    if let Some(stored) = validators {
        if let Some(etag) = header(&stored.headers, "etag") {
            out.push_str(&format!("If-None-Match: {etag}\r\n"));
        }
        if let Some(lm) = header(&stored.headers, "last-modified") {
            out.push_str(&format!("If-Modified-Since: {lm}\r\n"));
        }
    }
    out.push_str("\r\n");
    stream.write_all(out.as_bytes()).await?;
    let mut buf = Vec::new();
    let head = timeout(idle, http::read_head(&mut stream, &mut buf, 2 * MAX_HEAD))
        .await
        .map_err(|_| timed_out("sent no head"))?
        .map_err(|e| match e {
            http::HeadError::Io(e) => e,
            other => io::Error::new(
                io::ErrorKind::InvalidData,
                format!("origin head: {other:?}"),
            ),
        })?;
    let resp =
        http::parse_response(&head).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(Fetched {
        stream,
        resp,
        leftover: buf,
    })
}

/// Ends the entry as failed unless disarmed: a fill that returns early, or is aborted with
/// the proxy, never leaves waiters behind.
pub struct FillGuard {
    pub cache: Rc<Cache>,
    pub entry: Rc<Entry>,
    pub armed: bool,
}

impl Drop for FillGuard {
    fn drop(&mut self) {
        if self.armed {
            self.cache.end(&self.entry, State::Failed);
            self.cache.count(|s| s.failed_fills += 1);
        }
    }
}

/// Copies the body (`len` bytes) from the origin into the entry's file, publishing the
/// bytes written after each write; an origin that closes early, stalls for `idle`, or a
/// failed write ends the entry as failed (readers send what there is, then cut).
pub async fn fill_body(cache: Rc<Cache>, entry: Rc<Entry>, fetched: Fetched, idle: Duration) {
    let mut guard = FillGuard {
        cache,
        entry,
        armed: true,
    };
    let stored = guard.entry.stored().expect("published before the fill");
    let Fetched {
        mut stream,
        mut leftover,
        ..
    } = fetched;
    let mut at = 0u64;
    // The buffer each write hands back, for the next read.
    let mut spare = Vec::new();
    while at < stored.len {
        let mut chunk = if leftover.is_empty() {
            let mut chunk = std::mem::take(&mut spare);
            chunk.resize(FILL_CHUNK, 0);
            let n = match timeout(idle, stream.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => n,
                _ => return, // closed early, an error, or a stall: the guard fails it
            };
            chunk.truncate(n);
            chunk
        } else {
            std::mem::take(&mut leftover)
        };
        chunk.truncate((stored.len - at) as usize);
        let n = chunk.len() as u64;
        // The buffer goes to the pool, not copied, and comes back for the next read.
        match stored.file.write_vec_at(chunk, at).await {
            Ok(back) => spare = back,
            Err(_) => return,
        }
        at += n;
        guard.entry.progress.send_modify(|p| p.written = at);
    }
    guard.armed = false;
    guard
        .entry
        .progress
        .send_modify(|p| p.state = State::Complete);
}

/// Relays a response the cache may not keep straight from the origin to the client: the
/// head, then the body (all of it when there is no `Content-Length`, to the origin's
/// close). Returns whether the client's connection may go on.
pub async fn pass(
    client: &mut TcpStream,
    mut fetched: Fetched,
    head_only: bool,
) -> io::Result<bool> {
    let len = http::content_length(&fetched.resp.headers).ok().flatten();
    let mut headers: Vec<(String, String)> = fetched
        .resp
        .headers
        .iter()
        .filter(|(n, _)| !is_hop_by_hop(n))
        .cloned()
        .collect();
    match len {
        Some(len) => headers.push(("Content-Length".into(), len.to_string())),
        None => headers.push(("Connection".into(), "close".into())),
    }
    headers.push(("X-Cache".into(), "PASS".into()));
    let resp = &fetched.resp;
    client
        .write_all(&http::write_head(resp.status, &resp.reason, &headers))
        .await?;
    if head_only {
        return Ok(len.is_some());
    }
    let mut left = len.unwrap_or(u64::MAX);
    let first = fetched.leftover.len().min(left as usize);
    client.write_all(&fetched.leftover[..first]).await?;
    left -= first as u64;
    let mut buf = vec![0u8; FILL_CHUNK];
    while left > 0 {
        let want = buf.len().min(left.try_into().unwrap_or(usize::MAX));
        let n = fetched.stream.read(&mut buf[..want]).await?;
        if n == 0 {
            // The origin closed: the end when no length was given, else a cut body.
            return Ok(false);
        }
        client.write_all(&buf[..n]).await?;
        left -= n as u64;
    }
    Ok(len.is_some())
}
