//! The tests' side: a web server with the endpoints the checks probe and the webhook the
//! alerts go to, a UDP responder, a raw HTTP client, and a scripted probe.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream, UdpSocket};
use overlap::JoinHandle;

use super::checks::{parse_response, Kind, Outcome, Status};

/// What the web server has seen.
#[derive(Default)]
pub struct Seen {
    /// Requests by path.
    pub hits: RefCell<HashMap<String, u32>>,
    /// Connections to `/hang` whose client went away.
    pub hang_closed: Cell<u32>,
    /// The webhook's bodies taken (answered 2xx), in order.
    pub hooks: RefCell<Vec<String>>,
    /// Webhook requests answered with an error.
    pub hooks_refused: Cell<u32>,
    /// What the webhook answers: 200 when up, 503 when down.
    pub hook_status: Cell<u16>,
}

/// A web server on loopback: `/ok` (200, a body naming the database up), `/down` (500),
/// `/garbage` (no HTTP), `/hang` (never answers), `POST /hook` (the webhook).
pub struct Web {
    pub addr: SocketAddr,
    pub seen: Rc<Seen>,
    task: JoinHandle<()>,
}

impl Drop for Web {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Web {
    pub async fn start(addr: &str) -> Web {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Rc::new(Seen::default());
        seen.hook_status.set(200);
        let s = seen.clone();
        let task = overlap::spawn(async move {
            // The sessions go with the acceptor: a JoinSet aborts them when dropped.
            let mut sessions = overlap::task::JoinSet::new();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                sessions.spawn(serve(stream, s.clone()));
                while sessions.try_join_next().is_some() {}
            }
        });
        Web { addr, seen, task }
    }

    pub fn hits(&self, path: &str) -> u32 {
        self.seen.hits.borrow().get(path).copied().unwrap_or(0)
    }
}

async fn serve(mut stream: TcpStream, seen: Rc<Seen>) {
    let mut raw = Vec::new();
    let mut buf = [0u8; 1024];
    let end = loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut words = head.split(' ');
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    *seen.hits.borrow_mut().entry(path.to_string()).or_default() += 1;
    let (code, body) = match (method, path) {
        ("GET", "/ok") => (200, "all good: db=up".to_string()),
        ("GET", "/down") => (500, "oops".to_string()),
        ("GET", "/garbage") => {
            let _ = stream.write_all(b"nonsense\r\n\r\n").await;
            return;
        }
        ("GET", "/hang") => {
            // Never answers; notes the client going away.
            while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
            seen.hang_closed.set(seen.hang_closed.get() + 1);
            return;
        }
        ("POST", "/hook") => {
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            while raw.len() < end + length {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => raw.extend_from_slice(&buf[..n]),
                }
            }
            let body = String::from_utf8_lossy(&raw[end..end + length]).into_owned();
            let code = seen.hook_status.get();
            if code == 200 {
                seen.hooks.borrow_mut().push(body);
            } else {
                seen.hooks_refused.set(seen.hooks_refused.get() + 1);
            }
            (code, String::new())
        }
        _ => (404, "no such page".to_string()),
    };
    let response = format!(
        "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
}

/// Sends `request` as it is and reads the answer to its end: the status and the body.
pub async fn http_raw(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let (code, body) = parse_response(&response).expect("an HTTP response");
    (code, String::from_utf8(body.to_vec()).unwrap())
}

/// `GET path` on the status endpoint.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    http_raw(addr, req.as_bytes()).await
}

/// A UDP service on loopback answering `PONG` to each request from the `answer_from`th on
/// (the ones before dropped, as a lossy network would); the requests counted.
pub struct Responder {
    pub addr: SocketAddr,
    pub requests: Rc<Cell<u32>>,
    task: JoinHandle<()>,
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Responder {
    pub async fn start(addr: &str, answer_from: u32) -> Responder {
        let socket = UdpSocket::bind(addr).await.unwrap();
        let addr = socket.local_addr().unwrap();
        let requests = Rc::new(Cell::new(0));
        let count = requests.clone();
        let task = overlap::spawn(async move {
            let mut buf = [0u8; 1500];
            loop {
                let (n, from) = socket.recv_from(&mut buf).await.unwrap();
                count.set(count.get() + 1);
                if &buf[..n] == b"PING" && count.get() >= answer_from {
                    socket.send_to(b"PONG", from).await.unwrap();
                }
            }
        });
        Responder {
            addr,
            requests,
            task,
        }
    }
}

/// A probe whose outcomes the test sets: each run gives the current status, and takes
/// `takes` on the clock (zero: at once).
#[derive(Clone)]
pub struct Script {
    pub now: Rc<Cell<Status>>,
    pub takes: Rc<Cell<Duration>>,
    pub runs: Rc<Cell<u32>>,
}

impl Script {
    pub fn new(status: Status) -> Script {
        Script {
            now: Rc::new(Cell::new(status)),
            takes: Rc::new(Cell::new(Duration::ZERO)),
            runs: Rc::new(Cell::new(0)),
        }
    }

    pub fn set(&self, s: Status) {
        self.now.set(s);
    }

    pub fn kind(&self) -> Kind {
        let me = self.clone();
        Kind::Probe(Rc::new(move || {
            let me = me.clone();
            Box::pin(async move {
                me.runs.set(me.runs.get() + 1);
                let status = me.now.get();
                if !me.takes.get().is_zero() {
                    overlap::time::sleep(me.takes.get()).await;
                }
                Outcome::new(status, format!("scripted {status}"))
            })
        }))
    }
}
