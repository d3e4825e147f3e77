//! The proxy: the accept loop, one task per client connection (keep-alive, pipelined
//! heads), the decision per request (hit, coalesced follower, miss that starts a fill,
//! revalidation, pass), and a body served from its cache file with
//! `PositionalFile::send_to` as far as the fill has written it.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::AsyncWriteExt;
use overlap::net::{TcpListener, TcpStream};
use overlap::task::JoinHandle;

use crate::cache::{lifetime, Cache, Entry, State, Stats, Stored};
use crate::fill::{self, FillGuard};
use crate::http::{self, header, is_hop_by_hop, set_header, HeadError, Request, MAX_HEAD};

/// The proxy's settings.
#[derive(Clone, Debug)]
pub struct Config {
    pub origin: SocketAddr,
    pub dir: PathBuf,
    /// The most body bytes the index keeps.
    pub cap: u64,
    /// How long the origin may keep the proxy waiting for a connection, a head, or the
    /// next body bytes.
    pub origin_idle: Duration,
}

struct Shared {
    cfg: Config,
    cache: Rc<Cache>,
    tasks: RefCell<Vec<JoinHandle<()>>>,
}

impl Shared {
    /// Spawns `fut`, kept to be aborted at `stop`.
    fn spawn(&self, fut: impl std::future::Future<Output = ()> + 'static) {
        let mut tasks = self.tasks.borrow_mut();
        tasks.retain(|t| !t.is_finished());
        tasks.push(overlap::spawn(fut));
    }
}

/// A running proxy.
pub struct Proxy {
    pub addr: SocketAddr,
    pub cache: Rc<Cache>,
    shared: Rc<Shared>,
    accept: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(cfg: Config) -> io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let cache = Rc::new(Cache::new(&cfg.dir, cfg.cap));
        let shared = Rc::new(Shared {
            cfg,
            cache: cache.clone(),
            tasks: RefCell::default(),
        });
        let s = shared.clone();
        let accept = overlap::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let _ = sock.set_nodelay(true);
                let conn = s.clone();
                s.spawn(async move { serve_connection(conn, sock).await });
            }
        });
        Ok(Proxy {
            addr,
            cache,
            shared,
            accept,
        })
    }

    pub fn stats(&self) -> Stats {
        *self.cache.stats.borrow()
    }

    /// Stops accepting, aborts every connection and fill, and waits for them to end.
    pub async fn stop(self) {
        self.accept.abort();
        let _ = self.accept.await;
        loop {
            let tasks = std::mem::take(&mut *self.shared.tasks.borrow_mut());
            if tasks.is_empty() {
                break;
            }
            for t in &tasks {
                t.abort();
            }
            for t in tasks {
                let _ = t.await;
            }
        }
    }
}

/// Requests on one client connection, one after another, until it closes or a response
/// must end it.
async fn serve_connection(shared: Rc<Shared>, mut sock: TcpStream) {
    let mut buf = Vec::new();
    loop {
        let head = match http::read_head(&mut sock, &mut buf, MAX_HEAD).await {
            Ok(head) => head,
            Err(HeadError::TooLarge) => {
                shared.cache.count(|s| s.bad_requests += 1);
                let reply = http::simple(431, "Request Header Fields Too Large", &[], true);
                let _ = sock.write_all(&reply).await;
                return;
            }
            Err(_) => return,
        };
        let req = match http::parse_request(&head) {
            Ok(req) => req,
            Err(why) => {
                shared.cache.count(|s| s.bad_requests += 1);
                let reply = http::simple(400, "Bad Request", &[("X-Error", why.into())], true);
                let _ = sock.write_all(&reply).await;
                return;
            }
        };
        if req.method != "GET" && req.method != "HEAD" {
            let reply = http::simple(501, "Not Implemented", &[], true);
            let _ = sock.write_all(&reply).await;
            return;
        }
        let wants_close = header(&req.headers, "connection")
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")));
        match respond(&shared, &mut sock, &req).await {
            Ok(true) if !wants_close => continue,
            _ => return,
        }
    }
}

/// Answers one request; `Ok(true)` when the connection may carry another.
async fn respond(shared: &Rc<Shared>, sock: &mut TcpStream, req: &Request) -> io::Result<bool> {
    let cache = &shared.cache;
    let mut counted = false;
    loop {
        let Some(entry) = cache.lookup(&req.target, &req.headers) else {
            return miss(shared, sock, req).await;
        };
        match entry.state() {
            State::Waiting | State::Filling => {
                if !counted {
                    cache.count(|s| s.coalesced += 1);
                    counted = true;
                }
                let mut rx = entry.progress.subscribe();
                let state = rx
                    .wait_for(|p| p.state != State::Waiting)
                    .await
                    .map(|p| p.state)
                    .unwrap_or(State::Failed);
                match state {
                    State::Uncacheable => return pass_fetch(shared, sock, req).await,
                    State::Failed if entry.stored().is_none() => {
                        let reply = http::simple(502, "Bad Gateway", &[], false);
                        sock.write_all(&reply).await?;
                        return Ok(true);
                    }
                    _ if !entry.matches(&req.headers) => continue, // another variant
                    _ => return serve(sock, req, &entry, "COALESCED").await,
                }
            }
            State::Complete => {
                let stored = entry.stored().expect("a complete entry has its head");
                if stored.is_fresh() {
                    cache.count(|s| s.hits += 1);
                    return serve(sock, req, &entry, "HIT").await;
                }
                if stored.has_validator() {
                    return revalidate(shared, sock, req, entry, stored).await;
                }
                cache.remove(&entry);
            }
            // Out of the index already; a lookup does not find these.
            State::Failed | State::Uncacheable => cache.remove(&entry),
        }
    }
}

/// No entry: this request fetches for everyone who asks meanwhile.
async fn miss(shared: &Rc<Shared>, sock: &mut TcpStream, req: &Request) -> io::Result<bool> {
    let cache = &shared.cache;
    cache.count(|s| s.misses += 1);
    let entry = cache.insert_waiting(&req.target);
    // Failed unless handed on: an error here, or this task aborted, releases the waiters.
    let mut guard = FillGuard {
        cache: cache.clone(),
        entry: entry.clone(),
        armed: true,
    };
    let fetched = match fill::fetch(shared.cfg.origin, req, None, shared.cfg.origin_idle).await {
        Ok(f) => f,
        Err(_) => {
            drop(guard);
            sock.write_all(&http::simple(502, "Bad Gateway", &[], false))
                .await?;
            return Ok(true);
        }
    };
    guard.armed = false;
    start_fill(shared, sock, req, entry, fetched, "MISS").await
}

/// Stores `fetched` in `entry` and serves it while a fill task writes it, or, if it may not
/// be stored, tells the waiters so and passes it on.
async fn start_fill(
    shared: &Rc<Shared>,
    sock: &mut TcpStream,
    req: &Request,
    entry: Rc<Entry>,
    fetched: fill::Fetched,
    label: &str,
) -> io::Result<bool> {
    let cache = &shared.cache;
    let path = cache.body_path(entry.id);
    let admitted = cache.admit(&fetched.resp, &req.headers);
    let file = match &admitted {
        Ok(_) => overlap::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open_positional(&path)
            .await
            .ok(),
        Err(_) => None,
    };
    let (Ok(admit), Some(file)) = (admitted, file) else {
        cache.end(&entry, State::Uncacheable);
        cache.count(|s| s.passes += 1);
        return fill::pass(sock, fetched, req.method == "HEAD").await;
    };
    let headers = fetched
        .resp
        .headers
        .iter()
        .filter(|(n, _)| !is_hop_by_hop(n) && !n.eq_ignore_ascii_case("age"))
        .cloned()
        .collect();
    let stored = Stored {
        headers,
        len: admit.len,
        file,
        path,
        stored_at: overlap::time::Instant::now(),
        lifetime: admit.lifetime,
        vary: admit.vary,
    };
    cache.publish(&entry, stored);
    let (c, e, idle) = (cache.clone(), entry.clone(), shared.cfg.origin_idle);
    shared.spawn(fill::fill_body(c, e, fetched, idle));
    serve(sock, req, &entry, label).await
}

/// A stale entry with a validator: a conditional fetch; a 304 refreshes it (its headers
/// updated, its age reset), a 200 replaces it.
async fn revalidate(
    shared: &Rc<Shared>,
    sock: &mut TcpStream,
    req: &Request,
    entry: Rc<Entry>,
    stored: Stored,
) -> io::Result<bool> {
    let cache = &shared.cache;
    let fetched = match fill::fetch(
        shared.cfg.origin,
        req,
        Some(&stored),
        shared.cfg.origin_idle,
    )
    .await
    {
        Ok(f) => f,
        Err(_) => {
            sock.write_all(&http::simple(504, "Gateway Timeout", &[], false))
                .await?;
            return Ok(true);
        }
    };
    if fetched.resp.status == 304 {
        let mut fresh = stored;
        for (name, value) in &fetched.resp.headers {
            if !is_hop_by_hop(name) {
                set_header(&mut fresh.headers, name, value);
            }
        }
        fresh.lifetime = lifetime(&fresh.headers);
        fresh.stored_at = overlap::time::Instant::now();
        *entry.stored.borrow_mut() = Some(fresh);
        cache.count(|s| s.revalidated += 1);
        return serve(sock, req, &entry, "REVALIDATED").await;
    }
    cache.remove(&entry);
    cache.count(|s| s.misses += 1);
    let replacement = cache.insert_waiting(&req.target);
    start_fill(shared, sock, req, replacement, fetched, "MISS").await
}

/// No coalescing for a response the origin said may not be stored: a fetch of one's own.
async fn pass_fetch(shared: &Rc<Shared>, sock: &mut TcpStream, req: &Request) -> io::Result<bool> {
    shared.cache.count(|s| s.passes += 1);
    match fill::fetch(shared.cfg.origin, req, None, shared.cfg.origin_idle).await {
        Ok(f) => fill::pass(sock, f, req.method == "HEAD").await,
        Err(_) => {
            sock.write_all(&http::simple(502, "Bad Gateway", &[], false))
                .await?;
            Ok(true)
        }
    }
}

/// Sends `entry`'s head, then (for a GET) its body or the range asked for, from the file.
async fn serve(
    sock: &mut TcpStream,
    req: &Request,
    entry: &Rc<Entry>,
    label: &str,
) -> io::Result<bool> {
    let _reader = entry.reader();
    let stored = entry.stored().expect("served only once published");
    let len = stored.len;
    let mut headers = stored.headers.clone();
    headers.push(("Age".into(), stored.age().as_secs().to_string()));
    headers.push(("X-Cache".into(), label.into()));
    // Ranges only from a complete entry; while it fills, the whole body (RFC 9110 14.2).
    let range = header(&req.headers, "range")
        .filter(|_| entry.state() == State::Complete)
        .and_then(|r| http::parse_range(r, len));
    let (status, reason, first, end) = match range {
        None => (200, "OK", 0, len),
        Some(http::Range::Unsatisfiable) => {
            let extra = [("Content-Range", format!("bytes */{len}"))];
            let reply = http::simple(416, "Range Not Satisfiable", &extra, false);
            sock.write_all(&reply).await?;
            return Ok(true);
        }
        Some(http::Range::Satisfiable(a, b)) => {
            headers.push(("Content-Range".into(), format!("bytes {a}-{b}/{len}")));
            (206, "Partial Content", a, b + 1)
        }
    };
    headers.push(("Content-Length".into(), (end - first).to_string()));
    sock.write_all(&http::write_head(status, reason, &headers))
        .await?;
    if req.method == "HEAD" {
        return Ok(true);
    }
    follow(sock, entry, &stored, first, end).await
}

/// Sends bytes `first..end` of the body with `send_to` as the fill writes them; `Ok(false)`
/// when the fill failed first (the client then has a cut body and the connection closes).
async fn follow(
    sock: &mut TcpStream,
    entry: &Entry,
    stored: &Stored,
    first: u64,
    end: u64,
) -> io::Result<bool> {
    let mut rx = entry.progress.subscribe();
    let mut at = first;
    while at < end {
        let progress = *rx.borrow_and_update();
        let ready = progress.written.min(end);
        if ready > at {
            let n = stored.file.send_to(&*sock, at, ready - at).await?;
            if n == 0 {
                return Ok(false); // the file is shorter than its fill said: cut
            }
            at += n;
            continue;
        }
        match progress.state {
            State::Failed | State::Uncacheable => return Ok(false),
            _ => {
                if rx.changed().await.is_err() {
                    return Ok(false);
                }
            }
        }
    }
    Ok(true)
}
