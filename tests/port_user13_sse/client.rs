//! The tests' client: raw HTTP/1.1 over a `TcpStream`, a response head and a
//! `Content-Length` body read whole, and a chunked `text/event-stream` body parsed chunk
//! by chunk (each chunk checked to be exactly one SSE record) into `Record`s.

use std::net::SocketAddr;
use std::rc::Rc;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpSocket, TcpStream};

use super::server::{Config, Server};

pub async fn start(config: Config) -> Rc<Server> {
    Server::start("127.0.0.1:0".parse().unwrap(), config).await
}

/// A response head.
#[derive(Debug)]
pub struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One SSE record as a browser's `EventSource` would see its fields.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: Option<u64>,
    pub event: Option<String>,
    pub data: Option<String>,
    pub comment: Option<String>,
}

impl Record {
    pub fn event(id: u64, data: &str) -> Record {
        Record {
            id: Some(id),
            data: Some(data.into()),
            ..Record::default()
        }
    }

    pub fn named(name: &str, data: &str) -> Record {
        Record {
            event: Some(name.into()),
            data: Some(data.into()),
            ..Record::default()
        }
    }

    pub fn keepalive() -> Record {
        Record {
            comment: Some("keepalive".into()),
            ..Record::default()
        }
    }
}

pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> Conn {
        Conn::connect_with(addr, None).await
    }

    /// Connects with `SO_RCVBUF` set first (a client whose window stays small).
    pub async fn connect_with(addr: SocketAddr, recv_buffer: Option<u32>) -> Conn {
        let socket = match addr {
            SocketAddr::V4(_) => TcpSocket::new_v4(),
            SocketAddr::V6(_) => TcpSocket::new_v6(),
        }
        .unwrap();
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size).unwrap();
        }
        Conn {
            stream: socket.connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    pub async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream.write_all(bytes.as_ref()).await.unwrap();
    }

    /// Reads more into the buffer: how many bytes (0 at the end, or on a reset).
    async fn fill(&mut self) -> usize {
        let mut tmp = [0u8; 4096];
        let n = self.stream.read(&mut tmp).await.unwrap_or(0);
        self.buf.extend_from_slice(&tmp[..n]);
        n
    }

    /// Exactly `n` bytes.
    pub async fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill().await > 0, "the end after {:?}", self.text());
        }
        self.buf.drain(..n).collect()
    }

    async fn line(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.take(i + 2).await;
                return String::from_utf8(line[..i].to_vec()).unwrap();
            }
            assert!(self.fill().await > 0, "the end inside {:?}", self.text());
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }

    pub async fn head(&mut self) -> Head {
        let status_line = self.line().await;
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let line = self.line().await;
            if line.is_empty() {
                return Head { status, headers };
            }
            let (n, v) = line.split_once(": ").unwrap();
            headers.push((n.to_string(), v.to_string()));
        }
    }

    /// A whole response with a `Content-Length` body.
    pub async fn response(&mut self) -> (Head, String) {
        let head = self.head().await;
        let len: usize = head.header("content-length").unwrap().parse().unwrap();
        let body = self.take(len).await;
        (head, String::from_utf8(body).unwrap())
    }

    /// Whether the server closes the connection next (nothing more is sent).
    pub async fn at_end(&mut self) -> bool {
        self.buf.is_empty() && self.fill().await == 0
    }

    /// The next chunk's payload, `None` for the last (empty) chunk.
    pub async fn chunk(&mut self) -> Option<String> {
        let size = self.line().await;
        let size = usize::from_str_radix(&size, 16).unwrap_or_else(|_| panic!("{size:?}"));
        let body = self.take(size + 2).await;
        assert_eq!(&body[size..], b"\r\n", "a chunk's end");
        (size > 0).then(|| String::from_utf8(body[..size].to_vec()).unwrap())
    }

    /// The next record, which must be one whole chunk.
    pub async fn record(&mut self) -> Record {
        let text = self.chunk().await.expect("the stream ended");
        parse_record(&text)
    }

    /// The records until the stream's last chunk.
    pub async fn records_to_end(&mut self) -> Vec<Record> {
        let mut out = Vec::new();
        while let Some(text) = self.chunk().await {
            out.push(parse_record(&text));
        }
        out
    }
}

/// One chunk's text as one record: it must end with its blank line, and have no other.
pub fn parse_record(text: &str) -> Record {
    let body = text
        .strip_suffix("\n\n")
        .unwrap_or_else(|| panic!("not one record: {text:?}"));
    assert!(!body.contains("\n\n"), "two records in a chunk: {text:?}");
    let mut r = Record::default();
    for line in body.split('\n') {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "" => r.comment = Some(value.into()),
            "id" => r.id = Some(value.parse().unwrap()),
            "event" => r.event = Some(value.into()),
            "data" => match &mut r.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => r.data = Some(value.into()),
            },
            _ => panic!("unknown field in {text:?}"),
        }
    }
    r
}

/// `GET /events?topic=..` with a `Last-Event-ID` if given: the connection, its 200 head
/// read and checked.
pub async fn subscribe(addr: SocketAddr, topics: &str, last: Option<&str>) -> Conn {
    let mut c = Conn::connect(addr).await;
    c.send(events_request(topics, last)).await;
    let head = c.head().await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    c
}

pub fn events_request(topics: &str, last: Option<&str>) -> String {
    let last = last.map_or(String::new(), |l| format!("Last-Event-ID: {l}\r\n"));
    format!(
        "GET /events?topic={topics} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n{last}\r\n"
    )
}

pub fn publish_request(topic: &str, event: Option<&str>, data: &str) -> String {
    let event = event.map_or(String::new(), |e| format!("&event={e}"));
    format!(
        "POST /publish?topic={topic}{event} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{data}",
        data.len()
    )
}

/// Publishes over `c` (kept alive): the event's id.
pub async fn publish_on(c: &mut Conn, topic: &str, event: Option<&str>, data: &str) -> u64 {
    c.send(publish_request(topic, event, data)).await;
    let (head, body) = c.response().await;
    assert_eq!(head.status, 200, "{body}");
    body.trim_end().parse().unwrap()
}

/// Publishes over a connection of its own.
pub async fn publish(addr: SocketAddr, topic: &str, data: &str) -> u64 {
    publish_on(&mut Conn::connect(addr).await, topic, None, data).await
}
