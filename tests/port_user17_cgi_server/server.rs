//! The server: the accept loop, one task per connection, the route from a request's path
//! to a script in the script directory (refusing any way out of it), the cap on running
//! scripts (a semaphore, first come first served), the deadline, local redirects, and
//! what the tests read back (the log, each run's record, the counts).

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use overlap::io::AsyncWriteExt;
use overlap::net::{TcpListener, TcpStream};
use overlap::sync::{CancellationToken, Semaphore};
use overlap::task::{JoinHandle, TaskTracker};
use overlap::time::{timeout_at, Instant};

use super::cgi::{environment, CgiRequest};
use super::http::{read_request, simple};
use super::run::{drive, spawn, Conn, Outcome, Record};

/// The server's settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub script_dir: PathBuf,
    /// Scripts running at once; more requests wait their turn.
    pub max_children: usize,
    /// From the request's turn to the end of its response, all runs included.
    pub deadline: Duration,
    /// The largest request body taken (413 above it).
    pub max_body: u64,
    /// Local redirects followed for one request.
    pub max_redirects: usize,
}

impl Config {
    pub fn new(script_dir: &Path) -> Config {
        Config {
            script_dir: script_dir.to_owned(),
            max_children: 4,
            deadline: Duration::from_secs(30),
            max_body: 16 << 20,
            max_redirects: 4,
        }
    }
}

/// The server's log lines, shared by its tasks.
#[derive(Debug, Clone, Default)]
pub struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    pub fn push(&self, line: String) {
        self.0.borrow_mut().push(line);
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.borrow().clone()
    }
}

/// What the server has done, for the tests.
#[derive(Debug, Default)]
pub struct Stats {
    pub running: Cell<usize>,
    pub peak_running: Cell<usize>,
    pub queued: Cell<usize>,
    /// Each request's status code, in the order the responses started.
    pub statuses: RefCell<Vec<u16>>,
    pub records: RefCell<Vec<Record>>,
    /// The scripts started, in order.
    pub started: RefCell<Vec<String>>,
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    pub stats: Rc<Stats>,
    pub log: Log,
    token: CancellationToken,
    tracker: TaskTracker,
    accept: JoinHandle<()>,
}

impl Server {
    pub async fn start(cfg: Config) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stats, log) = (Rc::new(Stats::default()), Log::default());
        let (token, tracker) = (CancellationToken::new(), TaskTracker::new());
        let shared = Rc::new(Shared {
            permits: Semaphore::new(cfg.max_children),
            cfg,
            stats: stats.clone(),
            log: log.clone(),
        });
        let accept = overlap::spawn(accept_loop(
            listener,
            shared,
            token.clone(),
            tracker.clone(),
        ));
        Server {
            addr,
            stats,
            log,
            token,
            tracker,
            accept,
        }
    }

    /// Stops accepting and waits for every connection's task to end.
    pub async fn shutdown(self) {
        self.token.cancel();
        self.accept.await.unwrap();
        self.tracker.close();
        self.tracker.wait().await;
        assert_eq!(self.tracker.len(), 0);
    }

    pub fn records(&self) -> Vec<Record> {
        self.stats.records.borrow().clone()
    }
}

struct Shared {
    cfg: Config,
    permits: Semaphore,
    stats: Rc<Stats>,
    log: Log,
}

async fn accept_loop(
    listener: TcpListener,
    shared: Rc<Shared>,
    token: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let (stream, peer) = overlap::select! {
            () = token.cancelled() => return,
            r = listener.accept() => match r {
                Ok(accepted) => accepted,
                Err(e) => {
                    shared.log.push(format!("accept: {e}"));
                    continue;
                }
            },
        };
        tracker.spawn(serve(stream, peer, shared.clone()));
    }
}

/// Serves the one request of a connection.
async fn serve(stream: TcpStream, peer: SocketAddr, shared: Rc<Shared>) {
    let local = stream.local_addr().unwrap();
    let (rh, wh) = stream.into_split();
    let mut conn = Conn { rh, wh };
    if let Err(e) = serve_request(&mut conn, peer, local, &shared).await {
        shared.log.push(format!("{peer}: {e}"));
    }
    // FIN after the response (or its cut), then the connection goes.
    let _ = conn.wh.close().await;
}

async fn answer(conn: &mut Conn, shared: &Shared, status: u16, reason: &str) -> io::Result<()> {
    shared.stats.statuses.borrow_mut().push(status);
    conn.wh.write_all(&simple(status, reason)).await
}

async fn serve_request(
    conn: &mut Conn,
    peer: SocketAddr,
    local: SocketAddr,
    shared: &Shared,
) -> io::Result<()> {
    let req = match read_request(&mut conn.rh).await {
        Ok(req) => req,
        Err(bad) => {
            shared.log.push(format!("{peer}: bad request: {bad:?}"));
            if let Some(resp) = bad.response() {
                let status = std::str::from_utf8(&resp[9..12]).unwrap().parse().unwrap();
                shared.stats.statuses.borrow_mut().push(status);
                conn.wh.write_all(&resp).await?;
            }
            return Ok(());
        }
    };
    if req.content_length > shared.cfg.max_body {
        return answer(conn, shared, 413, "Content Too Large").await;
    }
    let remaining = Cell::new(req.content_length - req.leftover.len() as u64);
    let mut leftover = req.leftover;
    let (mut method, mut target) = (req.method, req.target);
    let (mut len, mut headers) = (req.content_length, req.headers);
    // The request waits its turn; the deadline counts from then.
    shared.stats.queued.set(shared.stats.queued.get() + 1);
    let permit = shared.permits.acquire().await;
    shared.stats.queued.set(shared.stats.queued.get() - 1);
    let _permit = permit.expect("never closed");
    let deadline = Instant::now() + shared.cfg.deadline;
    let mut redirects = 0;
    loop {
        let route = match route(&shared.cfg.script_dir, &target) {
            Ok(route) => route,
            Err((status, reason)) => {
                shared
                    .log
                    .push(format!("{peer}: {target}: {status} {reason}"));
                answer(conn, shared, status, reason).await?;
                break;
            }
        };
        let cgi = CgiRequest {
            method: method.clone(),
            script_name: format!("/cgi-bin/{}", route.name),
            path_info: route.path_info,
            query: route.query,
            content_length: len,
            headers: headers.clone(),
            remote: peer,
            local,
        };
        let child = match spawn(&route.path, &environment(&cgi), &shared.cfg.script_dir) {
            Ok(child) => child,
            Err(e) => {
                shared.log.push(format!("{}: cannot run: {e}", route.name));
                answer(conn, shared, 500, "Internal Server Error").await?;
                break;
            }
        };
        shared.stats.started.borrow_mut().push(route.name.clone());
        let stats = &shared.stats;
        stats.running.set(stats.running.get() + 1);
        stats
            .peak_running
            .set(stats.peak_running.get().max(stats.running.get()));
        let body = std::mem::take(&mut leftover);
        let record = drive(
            &route.name,
            child,
            conn,
            body,
            &remaining,
            deadline,
            &shared.log,
        )
        .await;
        stats.running.set(stats.running.get() - 1);
        let record = record?;
        if record.head_sent {
            stats.statuses.borrow_mut().push(record.http_status);
        }
        stats.records.borrow_mut().push(record.clone());
        match record.outcome {
            Outcome::Served | Outcome::Truncated | Outcome::ClientGone => {}
            Outcome::TimedOut if !record.head_sent => {
                answer(conn, shared, 504, "Gateway Timeout").await?
            }
            Outcome::TimedOut => {}
            Outcome::NoHead | Outcome::BadHead(_) => {
                shared
                    .log
                    .push(format!("{}: bad gateway: {:?}", route.name, record.outcome));
                answer(conn, shared, 502, "Bad Gateway").await?
            }
            Outcome::Redirect(to) => {
                redirects += 1;
                if redirects > shared.cfg.max_redirects {
                    shared
                        .log
                        .push(format!("{}: too many redirects", route.name));
                    answer(conn, shared, 502, "Bad Gateway").await?;
                    break;
                }
                shared
                    .log
                    .push(format!("{}: local redirect to {to}", route.name));
                (method, target, len, headers) = ("GET".into(), to, 0, Vec::new());
                continue;
            }
        }
        break;
    }
    // What is left of the body is read off the socket (within the deadline), so that
    // closing does not reset the connection under a response the client has not read.
    drain(conn, &remaining, deadline).await;
    Ok(())
}

/// Reads and drops the body bytes still on the socket, until the deadline.
async fn drain(conn: &mut Conn, remaining: &Cell<u64>, deadline: Instant) {
    use overlap::io::AsyncReadExt;
    let mut buf = vec![0u8; 64 * 1024];
    let all = async {
        while remaining.get() > 0 {
            let want = remaining.get().min(buf.len() as u64) as usize;
            match conn.rh.read(&mut buf[..want]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => remaining.set(remaining.get() - n as u64),
            }
        }
    };
    let _ = timeout_at(deadline, all).await;
}

/// A script found for a request.
#[derive(Debug, PartialEq, Eq)]
pub struct Route {
    pub name: String,
    pub path: PathBuf,
    pub path_info: String,
    pub query: String,
}

/// The script for `target` (`/cgi-bin/NAME[/PATH_INFO][?QUERY]`) in `dir`: 404 outside
/// `/cgi-bin/` or for a name that is no file there; 403 for anything that could lead out
/// of `dir` (a `..` anywhere, a name starting with a dot or with characters other than
/// letters, digits, `.`, `-` and `_`, a symlink that points out).
pub fn route(dir: &Path, target: &str) -> Result<Route, (u16, &'static str)> {
    const FORBIDDEN: (u16, &str) = (403, "Forbidden");
    const NOT_FOUND: (u16, &str) = (404, "Not Found");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let rest = path.strip_prefix("/cgi-bin/").ok_or(NOT_FOUND)?;
    if path.split('/').any(|seg| seg == ".." || seg == ".") || path.contains('\\') {
        return Err(FORBIDDEN);
    }
    let (name, path_info) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
    if name.is_empty() {
        return Err(NOT_FOUND);
    }
    if name.starts_with('.') || !name.chars().all(allowed) {
        return Err(FORBIDDEN);
    }
    let file = dir.join(name);
    let meta = std::fs::metadata(&file).map_err(|_| NOT_FOUND)?;
    if !meta.is_file() {
        return Err(NOT_FOUND);
    }
    let real = file.canonicalize().map_err(|_| NOT_FOUND)?;
    let real_dir = dir.canonicalize().map_err(|_| NOT_FOUND)?;
    if real.parent() != Some(real_dir.as_path()) {
        return Err(FORBIDDEN);
    }
    Ok(Route {
        name: name.to_owned(),
        path: real,
        path_info: path_info.to_owned(),
        query: query.to_owned(),
    })
}
