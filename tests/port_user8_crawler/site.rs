//! The sites the crawler visits: one small HTTP/1.1 server per loopback address (127.0.0.1,
//! 127.0.0.2, ... are different hosts; Linux routes all of 127/8 to `lo`), each serving the
//! resources a test puts on it and counting what it saw.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use overlap::net::{TcpListener, TcpStream};
use overlap::task::JoinSet;
use overlap::time::sleep;

/// What a path on a host answers.
#[derive(Clone)]
pub enum Resource {
    /// A page with these links, sent with a `Content-Length`.
    Page(Vec<String>),
    /// The same page, sent `Transfer-Encoding: chunked` in a few chunks.
    Chunked(Vec<String>),
    /// A page with no length at all: its end is the connection's.
    UntilClose(Vec<String>),
    /// The page, after a 3 ms pause (so connections to a host overlap).
    Slow(Vec<String>),
    /// A `302` to this URL.
    Redirect(String),
    /// `500` for the first `fails` requests, then the page.
    Flaky { fails: usize, links: Vec<String> },
    /// A body of this many bytes, declared.
    Huge(usize),
    /// 64 KiB blocks with no length, until the client goes.
    Endless,
    /// Reads the request and never answers.
    Stall,
    /// Declares 1000 bytes and sends one every 10 ms.
    Trickle,
    /// Declares 1000 bytes, sends 10 and closes.
    CutMidBody,
    /// A head that is no HTTP.
    Garbage,
}

/// What one host saw.
#[derive(Default)]
pub struct HostLog {
    pub accepted: Cell<usize>,
    /// Connections between their accept and their answer's last byte, now and at most.
    pub serving: Cell<usize>,
    pub most_serving: Cell<usize>,
    /// Connections whose client has closed its side (the server read its end of file, or a
    /// write failed).
    pub ended: Cell<usize>,
    /// Requests per path.
    pub requests: RefCell<HashMap<String, usize>>,
}

pub struct Host {
    pub addr: SocketAddr,
    pub log: Rc<HostLog>,
    routes: Rc<RefCell<HashMap<String, Resource>>>,
    _tasks: JoinSet<()>,
}

impl Host {
    /// Serves on `ip`, a port of the kernel's choice.
    pub async fn start(ip: &str) -> Host {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Rc::new(HostLog::default());
        let routes = Rc::new(RefCell::new(HashMap::new()));
        let mut tasks = JoinSet::new();
        tasks.spawn(accept_loop(listener, log.clone(), routes.clone()));
        Host {
            addr,
            log,
            routes,
            _tasks: tasks,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn route(&self, path: &str, res: Resource) {
        self.routes.borrow_mut().insert(path.to_string(), res);
    }

    pub fn requests(&self, path: &str) -> usize {
        self.log.requests.borrow().get(path).copied().unwrap_or(0)
    }
}

/// The body of a page: one `<a href>` line per link.
pub fn html(links: &[String]) -> Vec<u8> {
    let mut body = String::from("<html><body>\n");
    for l in links {
        body.push_str(&format!("<a href=\"{l}\">{l}</a>\n"));
    }
    body.push_str("</body></html>\n");
    body.into_bytes()
}

async fn accept_loop(
    listener: TcpListener,
    log: Rc<HostLog>,
    routes: Rc<RefCell<HashMap<String, Resource>>>,
) {
    let mut conns = JoinSet::new();
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        stream.set_nodelay(true).unwrap();
        log.accepted.set(log.accepted.get() + 1);
        conns.spawn(serve(stream, log.clone(), routes.clone()));
        while conns.try_join_next().is_some() {}
    }
}

async fn serve(
    stream: TcpStream,
    log: Rc<HostLog>,
    routes: Rc<RefCell<HashMap<String, Resource>>>,
) {
    log.serving.set(log.serving.get() + 1);
    log.most_serving
        .set(log.most_serving.get().max(log.serving.get()));
    let mut conn = BufReader::new(stream);
    let answered = answer(&mut conn, &log, &routes).await;
    log.serving.set(log.serving.get() - 1);
    if answered {
        // Wait for the client to close its side (it asked for `Connection: close`).
        let mut rest = Vec::new();
        let _ = conn.read_to_end(&mut rest).await;
    }
    log.ended.set(log.ended.get() + 1);
}

/// Reads one request and answers it; false if the client went away first.
async fn answer(
    conn: &mut BufReader<TcpStream>,
    log: &HostLog,
    routes: &RefCell<HashMap<String, Resource>>,
) -> bool {
    let mut first = String::new();
    if conn.read_line(&mut first).await.unwrap_or(0) == 0 {
        return false;
    }
    loop {
        let mut line = String::new();
        match conn.read_line(&mut line).await {
            Ok(0) | Err(_) => return false,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => {}
        }
    }
    let path = first.split(' ').nth(1).unwrap_or("").to_string();
    let n = {
        let mut reqs = log.requests.borrow_mut();
        let n = reqs.entry(path.clone()).or_insert(0);
        *n += 1;
        *n
    };
    let res = routes.borrow().get(&path).cloned();
    let out = conn.get_mut();
    let sent = match res {
        None => send(out, "404 Not Found", b"no such page").await,
        Some(Resource::Page(links)) => send(out, "200 OK", &html(&links)).await,
        Some(Resource::Slow(links)) => {
            sleep(Duration::from_millis(3)).await;
            send(out, "200 OK", &html(&links)).await
        }
        Some(Resource::Flaky { fails, .. }) if n <= fails => {
            send(out, "500 Internal Server Error", b"try again").await
        }
        Some(Resource::Flaky { links, .. }) => send(out, "200 OK", &html(&links)).await,
        Some(Resource::Chunked(links)) => {
            let body = html(&links);
            let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
            let mut ok = out.write_all(head.as_bytes()).await.is_ok();
            for piece in body.chunks(body.len() / 3 + 1) {
                let mut chunk = format!("{:x};ext=1\r\n", piece.len()).into_bytes();
                chunk.extend_from_slice(piece);
                chunk.extend_from_slice(b"\r\n");
                ok = ok && out.write_all(&chunk).await.is_ok();
            }
            ok && out.write_all(b"0\r\nX-Trailer: t\r\n\r\n").await.is_ok()
        }
        Some(Resource::UntilClose(links)) => {
            let mut msg = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
            msg.extend_from_slice(&html(&links));
            out.write_all(&msg).await.is_ok() && out.close().await.is_ok()
        }
        Some(Resource::Redirect(to)) => {
            let head = format!(
                "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            out.write_all(head.as_bytes()).await.is_ok()
        }
        Some(Resource::Huge(len)) => {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n");
            let mut ok = out.write_all(head.as_bytes()).await.is_ok();
            let block = vec![b'x'; 64 * 1024];
            let mut left = len;
            while ok && left > 0 {
                let n = left.min(block.len());
                ok = out.write_all(&block[..n]).await.is_ok();
                left -= n;
            }
            ok
        }
        Some(Resource::Endless) => {
            let mut ok = out.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.is_ok();
            let block = vec![b'y'; 64 * 1024];
            while ok {
                ok = out.write_all(&block).await.is_ok();
            }
            false
        }
        Some(Resource::Stall) => {
            let mut rest = Vec::new();
            let _ = conn.read_to_end(&mut rest).await;
            false
        }
        Some(Resource::Trickle) => {
            let head = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
            let mut ok = out.write_all(head.as_bytes()).await.is_ok();
            for _ in 0..1000 {
                if !ok {
                    break;
                }
                sleep(Duration::from_millis(10)).await;
                ok = out.write_all(b"t").await.is_ok();
            }
            ok
        }
        Some(Resource::Garbage) => out.write_all(b"SSH-2.0-OpenSSH\r\n\r\n").await.is_ok(),
        Some(Resource::CutMidBody) => {
            let head = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789";
            let _ = out.write_all(head.as_bytes()).await;
            return false;
        }
    };
    sent
}

async fn send(out: &mut TcpStream, status: &str, body: &[u8]) -> bool {
    let mut msg = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    msg.extend_from_slice(body);
    out.write_all(&msg).await.is_ok()
}
