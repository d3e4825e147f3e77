//! The SSE server: an accept loop under a `CancellationToken`, each connection a task of a
//! `TaskTracker` serving requests (`http.rs`) until it subscribes; `POST /publish` puts an
//! event in the ring and on the `broadcast`; `GET /events` holds a `Semaphore` permit and
//! streams records in chunks, racing the token, its client's half (EOF ends it), the
//! broadcast and a keepalive `interval` in one `select!`, each write under a `timeout`.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::codec::BytesMut;
use overlap::io::{AsyncReadBufExt, AsyncReadExt, AsyncWriteExt};
use overlap::net::tcp::OwnedWriteHalf;
use overlap::net::{TcpListener, TcpSocket, TcpStream};
use overlap::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use overlap::sync::{watch, CancellationToken, Semaphore};
use overlap::task::TaskTracker;
use overlap::time::{interval_at, timeout, Instant};

use super::http::{read_request, refuse, response, Request};

#[derive(Clone, Debug)]
pub struct Config {
    /// Subscribers at once; one more is answered 503.
    pub max_subscribers: usize,
    /// The recent events kept for `Last-Event-ID`.
    pub ring: usize,
    /// The broadcast's capacity: a subscriber further behind is told it lagged.
    pub channel: usize,
    /// A comment after this long without a record.
    pub keepalive: Duration,
    /// How long one record's write may take before the subscriber is cut.
    pub write_timeout: Duration,
    pub max_body: usize,
    pub max_head: usize,
    /// How long a refusal lingers, and the shutdown waits for every connection.
    pub drain: Duration,
    /// `SO_SNDBUF` of the listener (and so of every accepted socket), if set.
    pub send_buffer: Option<u32>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_subscribers: 64,
            ring: 16,
            channel: 256,
            keepalive: Duration::from_secs(15),
            write_timeout: Duration::from_secs(10),
            max_body: 4096,
            max_head: 2048,
            drain: Duration::from_secs(10),
            send_buffer: None,
        }
    }
}

#[derive(Debug)]
pub struct Event {
    pub id: u64,
    pub topic: String,
    pub name: Option<String>,
    pub data: String,
}

/// How a stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The client closed its side (or a write failed).
    Gone,
    /// A write did not finish within the write timeout.
    TooSlow,
    /// The server shut down.
    Shutdown,
}

/// What the tests wait on: the live streams and how the others ended.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    pub live: usize,
    pub ended: Vec<End>,
}

pub struct Server {
    pub addr: SocketAddr,
    pub token: CancellationToken,
    pub tracker: TaskTracker,
    pub config: Config,
    tx: broadcast::Sender<Rc<Event>>,
    ring: RefCell<VecDeque<Rc<Event>>>,
    last_id: Cell<u64>,
    permits: Rc<Semaphore>,
    pub counts: watch::Sender<Counts>,
}

impl Server {
    /// Binds `addr` and starts accepting.
    pub async fn start(addr: SocketAddr, config: Config) -> Rc<Server> {
        let socket = match addr {
            SocketAddr::V4(_) => TcpSocket::new_v4(),
            SocketAddr::V6(_) => TcpSocket::new_v6(),
        }
        .unwrap();
        if let Some(size) = config.send_buffer {
            socket.set_send_buffer_size(size).unwrap();
        }
        socket.bind(addr).unwrap();
        let listener = socket.listen(128).unwrap();
        let server = Rc::new(Server {
            addr: listener.local_addr().unwrap(),
            token: CancellationToken::new(),
            tracker: TaskTracker::new(),
            tx: broadcast::channel(config.channel).0,
            ring: RefCell::new(VecDeque::new()),
            last_id: Cell::new(0),
            permits: Rc::new(Semaphore::new(config.max_subscribers)),
            counts: watch::Sender::new(Counts::default()),
            config,
        });
        server.tracker.spawn(accept_loop(server.clone(), listener));
        server
    }

    /// Publishes an event (as `POST /publish` does): its id.
    pub fn publish(&self, topic: &str, name: Option<&str>, data: &str) -> u64 {
        let id = self.last_id.get() + 1;
        self.last_id.set(id);
        let event = Rc::new(Event {
            id,
            topic: topic.into(),
            name: name.map(Into::into),
            data: data.into(),
        });
        let mut ring = self.ring.borrow_mut();
        ring.push_back(event.clone());
        if ring.len() > self.config.ring {
            ring.pop_front();
        }
        let _ = self.tx.send(event);
        id
    }

    /// Waits until the counts satisfy `cond`.
    pub async fn wait(&self, cond: impl FnMut(&Counts) -> bool) {
        let mut rx = self.counts.subscribe();
        rx.wait_for(cond).await.unwrap();
    }

    /// Stops accepting, ends every stream with a `shutdown` record, and waits up to the
    /// drain time for every connection: whether they all ended in time.
    pub async fn shutdown(&self) -> bool {
        self.token.cancel();
        self.tracker.close();
        timeout(self.config.drain, self.tracker.wait())
            .await
            .is_ok()
    }

    /// The events to replay after `last`, and whether some were lost (a `reset` first):
    /// `last` older than the ring's oldest, or newer than any event.
    fn replay(&self, last: u64, topics: &[String]) -> (bool, Vec<Rc<Event>>) {
        let ring = self.ring.borrow();
        let oldest = ring.front().map_or(self.last_id.get() + 1, |e| e.id);
        let reset = last + 1 < oldest || last > self.last_id.get();
        let events = ring
            .iter()
            .filter(|e| e.id > last && wants(topics, &e.topic))
            .cloned()
            .collect();
        (reset, events)
    }
}

async fn accept_loop(server: Rc<Server>, listener: TcpListener) {
    loop {
        let stream = overlap::select! {
            _ = server.token.cancelled() => return,
            res = listener.accept() => match res {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let conn = server.clone();
        server
            .tracker
            .spawn(async move { connection(&conn, stream).await });
    }
}

async fn connection(server: &Server, mut stream: TcpStream) {
    let cfg = &server.config;
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        let req = overlap::select! {
            _ = server.token.cancelled() => return,
            req = read_request(&mut stream, &mut buf, cfg.max_head) => req,
        };
        let req = match req {
            Ok(Some(req)) => req,
            Ok(None) => return,
            Err(bad) => return refused(server, stream, bad.status(), "bad request\n").await,
        };
        let len = match req.content_length() {
            Ok(len) => len,
            Err(()) => return refused(server, stream, "400 Bad Request", "bad length\n").await,
        };
        if len.unwrap_or(0) > cfg.max_body {
            return refused(server, stream, "413 Payload Too Large", "too large\n").await;
        }
        let answer = match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/events") => return subscribe(server, stream, req).await,
            ("POST", "/publish") => {
                let Some(len) = len else {
                    let body = "Content-Length required\n";
                    return refused(server, stream, "400 Bad Request", body).await;
                };
                if !read_body(&mut stream, &mut buf, len).await {
                    return;
                }
                let body = buf.split_to(len);
                match publish(server, &req, &body) {
                    Ok(id) => response("200 OK", "", &format!("{id}\n"), false),
                    Err(why) => return refused(server, stream, "400 Bad Request", why).await,
                }
            }
            (_, path @ ("/events" | "/publish")) => {
                if !read_body(&mut stream, &mut buf, len.unwrap_or(0)).await {
                    return;
                }
                let _ = buf.split_to(len.unwrap_or(0));
                let allow = if path == "/events" { "GET" } else { "POST" };
                let extra = format!("Allow: {allow}\r\n");
                response(
                    "405 Method Not Allowed",
                    &extra,
                    "method not allowed\n",
                    false,
                )
            }
            _ => {
                if !read_body(&mut stream, &mut buf, len.unwrap_or(0)).await {
                    return;
                }
                let _ = buf.split_to(len.unwrap_or(0));
                response("404 Not Found", "", "not found\n", false)
            }
        };
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Answers `status` and closes the connection (see `refuse`).
async fn refused(server: &Server, stream: TcpStream, status: &str, body: &str) {
    refuse(stream, status, body, server.config.drain, &server.token).await
}

/// Reads until `buf` holds `len` bytes: false if the connection ended first.
async fn read_body(stream: &mut TcpStream, buf: &mut BytesMut, len: usize) -> bool {
    while buf.len() < len {
        match stream.read_buf(buf).await {
            Ok(1..) => {}
            _ => return false,
        }
    }
    true
}

fn publish(server: &Server, req: &Request, body: &[u8]) -> Result<u64, &'static str> {
    let topic = match req.query("topic") {
        Some(t) if !t.is_empty() && !t.contains(',') => t,
        _ => return Err("one topic required\n"),
    };
    let name = req.query("event").filter(|n| !n.is_empty());
    let data = std::str::from_utf8(body).map_err(|_| "data is not UTF-8\n")?;
    Ok(server.publish(topic, name, data))
}

fn wants(topics: &[String], topic: &str) -> bool {
    topics.iter().any(|t| t == topic)
}

/// One SSE record: `id:`, `event:`, a `data:` line for each line of `data` (split at
/// CRLF, LF or CR), and the blank line.
pub fn record(id: Option<u64>, name: Option<&str>, data: &str) -> String {
    let mut s = String::new();
    if let Some(id) = id {
        writeln!(s, "id: {id}").unwrap();
    }
    if let Some(name) = name {
        writeln!(s, "event: {name}").unwrap();
    }
    for line in data.split("\r\n").flat_map(|l| l.split(['\n', '\r'])) {
        match line {
            "" => s.push_str("data:\n"),
            line => writeln!(s, "data: {line}").unwrap(),
        }
    }
    s.push('\n');
    s
}

/// `text` as one chunk of a chunked body.
pub fn chunk(text: &str) -> String {
    format!("{:x}\r\n{text}\r\n", text.len())
}

async fn subscribe(server: &Server, stream: TcpStream, req: Request) {
    let cfg = &server.config;
    let Ok(permit) = server.permits.clone().try_acquire_owned() else {
        return refused(server, stream, "503 Service Unavailable", "too many\n").await;
    };
    let topics: Vec<String> = match req.query("topic") {
        Some(t) if !t.is_empty() => t.split(',').map(String::from).collect(),
        _ => return refused(server, stream, "400 Bad Request", "topic required\n").await,
    };
    // Subscribed before the ring is read, with no await between: nothing falls between.
    let rx = server.tx.subscribe();
    let last = req.header("last-event-id").and_then(|v| v.parse().ok());
    let (reset, backlog) = match last {
        Some(last) => server.replay(last, &topics),
        None => (false, Vec::new()),
    };
    // Each record goes out as it is written, not held back for the next.
    let _ = stream.set_nodelay(true);
    let (rd, mut wr) = stream.into_split();
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut first = String::from(head);
    if reset {
        first.push_str(&chunk(&record(None, Some("reset"), "")));
    }
    for e in &backlog {
        first.push_str(&chunk(&record(Some(e.id), e.name.as_deref(), &e.data)));
    }
    let sent = backlog.last().map_or(0, |e| e.id);
    if !matches!(
        timeout(cfg.write_timeout, wr.write_all(first.as_bytes())).await,
        Ok(Ok(()))
    ) {
        return;
    }
    server.counts.send_modify(|c| c.live += 1);
    let end = stream_events(server, rd, &mut wr, rx, &topics, sent).await;
    drop((wr, permit));
    server.counts.send_modify(|c| {
        c.live -= 1;
        c.ended.push(end);
    });
}

async fn stream_events(
    server: &Server,
    mut rd: overlap::net::tcp::OwnedReadHalf,
    wr: &mut OwnedWriteHalf,
    mut rx: broadcast::Receiver<Rc<Event>>,
    topics: &[String],
    mut sent: u64,
) -> End {
    let cfg = &server.config;
    let mut keepalive = interval_at(Instant::now() + cfg.keepalive, cfg.keepalive);
    let mut scratch = [0u8; 256];
    loop {
        let text = overlap::select! {
            _ = server.token.cancelled() => {
                // What was published before the shutdown still goes, then the last record
                // and the last chunk.
                let mut bye = String::new();
                loop {
                    match rx.try_recv() {
                        Ok(e) if e.id > sent && wants(topics, &e.topic) => {
                            sent = e.id;
                            bye += &chunk(&record(Some(e.id), e.name.as_deref(), &e.data));
                        }
                        Ok(_) => {}
                        Err(TryRecvError::Lagged(n)) => {
                            bye += &chunk(&record(None, Some("lagged"), &n.to_string()));
                        }
                        Err(_) => break,
                    }
                }
                bye += &chunk(&record(None, Some("shutdown"), ""));
                bye += "0\r\n\r\n";
                let _ = timeout(cfg.write_timeout, wr.write_all(bye.as_bytes())).await;
                let _ = wr.close().await;
                return End::Shutdown;
            }
            // The client sends nothing more; its end (or a reset) is noticed here at once.
            read = rd.read(&mut scratch) => match read {
                Ok(0) | Err(_) => return End::Gone,
                Ok(_) => None,
            },
            event = rx.recv() => match event {
                Ok(e) if e.id > sent && wants(topics, &e.topic) => {
                    sent = e.id;
                    Some(record(Some(e.id), e.name.as_deref(), &e.data))
                }
                Ok(_) => None,
                Err(RecvError::Lagged(n)) => {
                    // On from the newest: what the channel still holds for it is dropped.
                    rx = rx.resubscribe();
                    Some(record(None, Some("lagged"), &n.to_string()))
                }
                Err(RecvError::Closed) => return End::Shutdown,
            },
            _ = keepalive.tick() => Some(": keepalive\n\n".to_string()),
        };
        if let Some(text) = text {
            match timeout(cfg.write_timeout, wr.write_all(chunk(&text).as_bytes())).await {
                Ok(Ok(())) => keepalive.reset(),
                Ok(Err(_)) => return End::Gone,
                Err(_) => return End::TooSlow,
            }
        }
    }
}
