//! The server: an accept loop, one task per connection reading pipelined request heads
//! under an idle timeout, and the answer to each: validators, ranges, and the body sent
//! from the shared handle with `PositionalFile::send_to` (sendfile, no user-space copy).

use std::cell::{Cell, RefCell};
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream};
use overlap::task::JoinHandle;

use crate::cache::FileCache;
use crate::http::{self, Parsed, RangeAsk, Request};

/// The server's settings.
#[derive(Clone, Debug)]
pub struct Config {
    pub root: PathBuf,
    /// A connection whose next request head is not all there this long after the last
    /// answer (or the accept) is closed.
    pub idle: Duration,
    /// Open files kept.
    pub cache_cap: usize,
}

/// What the server counted; the tests read it.
#[derive(Debug, Default)]
pub struct Stats {
    pub accepted: Cell<usize>,
    /// Connection tasks running (each holds its stream: 0 means every one closed).
    pub live: Cell<usize>,
    pub requests: Cell<usize>,
    /// Connections that ended because the client went away mid-answer.
    pub client_gone: Cell<usize>,
    pub idle_closed: Cell<usize>,
    /// Anything else that went wrong, as a server would log it.
    pub errors: RefCell<Vec<String>>,
}

struct Ctx {
    cfg: Config,
    stats: Rc<Stats>,
    cache: Rc<FileCache>,
}

/// A running server.
pub struct Server {
    pub addr: std::net::SocketAddr,
    pub stats: Rc<Stats>,
    pub cache: Rc<FileCache>,
    accept: JoinHandle<()>,
}

impl Server {
    pub async fn start(host: &str, cfg: Config) -> Server {
        let listener = TcpListener::bind((host, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = Rc::new(Stats::default());
        let cache = Rc::new(FileCache::new(cfg.cache_cap));
        let ctx = Rc::new(Ctx {
            cfg,
            stats: stats.clone(),
            cache: cache.clone(),
        });
        let accept = overlap::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                ctx.stats.accepted.set(ctx.stats.accepted.get() + 1);
                overlap::spawn(serve_conn(stream, ctx.clone()));
            }
        });
        Server {
            addr,
            stats,
            cache,
            accept,
        }
    }

    /// Stops accepting (connections already open go on).
    pub fn stop(&self) {
        self.accept.abort();
    }
}

struct Live(Rc<Stats>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.live.set(self.0.live.get() - 1);
    }
}

async fn serve_conn(mut stream: TcpStream, ctx: Rc<Ctx>) {
    ctx.stats.live.set(ctx.stats.live.get() + 1);
    let _live = Live(ctx.stats.clone());
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 4096];
    loop {
        // The whole head must come within `idle` of the wait's start: a client dribbling a
        // byte at a time (slowloris) is closed as one sending nothing is.
        let deadline = overlap::time::Instant::now() + ctx.cfg.idle;
        let req = loop {
            match http::parse_head(&buf) {
                Parsed::Done(req, used) => {
                    buf.drain(..used);
                    break req;
                }
                Parsed::Partial => {}
                Parsed::Bad(_) => return refuse(&mut stream, 400, "Bad Request").await,
                Parsed::TooLarge => {
                    return refuse(&mut stream, 431, "Request Header Fields Too Large").await
                }
            }
            match overlap::time::timeout_at(deadline, stream.read(&mut chunk)).await {
                Ok(Ok(0)) => return,
                Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
                Ok(Err(e)) => return note(&ctx.stats, e),
                Err(_) => {
                    ctx.stats.idle_closed.set(ctx.stats.idle_closed.get() + 1);
                    return;
                }
            }
        };
        ctx.stats.requests.set(ctx.stats.requests.get() + 1);
        match respond(&mut stream, &req, &ctx).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => return note(&ctx.stats, e),
        }
    }
}

/// A client that went away is no error worth logging; anything else is.
fn note(stats: &Stats, e: io::Error) {
    match e.kind() {
        ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => {
            stats.client_gone.set(stats.client_gone.get() + 1)
        }
        _ => stats.errors.borrow_mut().push(e.to_string()),
    }
}

/// Answers a request that cannot go on, and ends the connection.
async fn refuse(stream: &mut TcpStream, status: u16, reason: &str) {
    let head = http::response_head(status, reason, &[], Some(0), false);
    let _ = stream.write_all(&head).await;
}

/// The file a request target names under `root`, or the status refusing it.
pub fn resolve(root: &Path, target: &str) -> Result<PathBuf, (u16, &'static str)> {
    let path = target.split(['?', '#']).next().unwrap_or("");
    let Some(rel) = path.strip_prefix('/') else {
        return Err((400, "Bad Request"));
    };
    let decoded = percent_decode(rel).ok_or((400, "Bad Request"))?;
    let mut out = root.to_path_buf();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => return Err((403, "Forbidden")),
            s if s.contains(['\0', '\\']) => return Err((400, "Bad Request")),
            s => out.push(s),
        }
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let (mut out, mut i) = (Vec::with_capacity(b.len()), 0);
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("ts") => "video/mp2t",
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("mp4") => "video/mp4",
        _ => "application/octet-stream",
    }
}

/// Answers one request; `Ok(true)` when the connection stays open.
async fn respond(stream: &mut TcpStream, req: &Request, ctx: &Ctx) -> io::Result<bool> {
    let keep = req.keep_alive();
    let simple = async |stream: &mut TcpStream, status, reason, extra: &[(&str, String)]| {
        let head = http::response_head(status, reason, extra, Some(0), keep);
        stream.write_all(&head).await.map(|()| keep)
    };
    let head_only = match req.method.as_str() {
        "GET" => false,
        "HEAD" => true,
        _ => {
            return simple(
                stream,
                405,
                "Method Not Allowed",
                &[("Allow", "GET, HEAD".into())],
            )
            .await
        }
    };
    let path = match resolve(&ctx.cfg.root, &req.target) {
        Ok(p) => p,
        Err((status, reason)) => return simple(stream, status, reason, &[]).await,
    };
    let meta = match overlap::fs::metadata(&path).await {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return simple(stream, 404, "Not Found", &[]).await
        }
        Err(_) => return simple(stream, 403, "Forbidden", &[]).await,
    };
    if !meta.is_file() {
        return simple(stream, 403, "Forbidden", &[]).await;
    }
    let f = match ctx.cache.get(&path, &meta).await {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return simple(stream, 404, "Not Found", &[]).await
        }
        Err(_) => return simple(stream, 403, "Forbidden", &[]).await,
    };
    let etag = http::etag(f.mtime_ns, f.len);
    let last_modified = http::http_date(f.mtime_secs);
    let mut headers = vec![
        ("Content-Type", content_type(&path).to_string()),
        ("Accept-Ranges", "bytes".to_string()),
        ("ETag", etag.clone()),
        ("Last-Modified", last_modified.clone()),
    ];
    if req
        .header("if-none-match")
        .is_some_and(|h| http::none_match(h, &etag))
    {
        let head = http::response_head(304, "Not Modified", &headers, None, keep);
        stream.write_all(&head).await?;
        return Ok(keep);
    }
    let range_ok = !head_only
        && req
            .header("if-range")
            .is_none_or(|h| http::if_range_holds(h, &etag, &last_modified));
    let ask = if range_ok {
        http::range(req.header("range"), f.len)
    } else {
        RangeAsk::Whole
    };
    let (status, reason, first, count) = match ask {
        RangeAsk::Whole => (200, "OK", 0, f.len),
        RangeAsk::Part(a, b) => {
            headers.push(("Content-Range", format!("bytes {a}-{b}/{}", f.len)));
            (206, "Partial Content", a, b - a + 1)
        }
        RangeAsk::Unsatisfiable => {
            headers.push(("Content-Range", format!("bytes */{}", f.len)));
            return simple(stream, 416, "Range Not Satisfiable", &headers).await;
        }
    };
    let head = http::response_head(status, reason, &headers, Some(count), keep);
    stream.write_all(&head).await?;
    if head_only {
        return Ok(keep);
    }
    let sent = f.file.send_to(stream, first, count).await?;
    if sent < count {
        // The file shrank under us: the promised length cannot be kept.
        ctx.stats
            .errors
            .borrow_mut()
            .push(format!("{}: {sent} of {count} bytes", path.display()));
        return Ok(false);
    }
    Ok(keep)
}
