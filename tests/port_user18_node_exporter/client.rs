//! The tests' side: a small HTTP/1.1 client that reads one response at a time off a
//! connection (so keep-alive and pipelining can be checked), and a parser of the text
//! format written apart from the exporter's, so a scrape is checked by reading it back.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::TcpStream;

use crate::support::within;

/// A response as read back.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// A connection to the exporter.
pub struct Client {
    pub conn: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> Client {
        let conn = TcpStream::connect(addr).await.unwrap();
        Client {
            conn,
            buf: Vec::new(),
        }
    }

    /// Sends raw bytes.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.conn.write_all(bytes).await.unwrap();
    }

    /// Sends `GET path` on this connection and reads the response.
    pub async fn get(&mut self, path: &str) -> Reply {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
            .await;
        self.reply().await
    }

    /// Reads the next response (head and `Content-Length` body), within 20 s.
    pub async fn reply(&mut self) -> Reply {
        within(Duration::from_secs(20), self.read_reply(), "a response")
            .await
            .unwrap()
    }

    async fn read_reply(&mut self) -> io::Result<Reply> {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            self.fill().await?;
        };
        let head = String::from_utf8(self.buf.drain(..end + 4).collect()).unwrap();
        let mut lines = head.trim_end().split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: BTreeMap<String, String> = lines
            .map(|l| l.split_once(": ").unwrap())
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        let len: usize = headers["content-length"].parse().unwrap();
        while self.buf.len() < len {
            self.fill().await?;
        }
        let body = String::from_utf8(self.buf.drain(..len).collect()).unwrap();
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    async fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 16384];
        match self.conn.read(&mut chunk).await? {
            0 => Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
        }
    }

    /// Waits (20 s at most) for the server to close: true on EOF with nothing more sent,
    /// also true on a reset.
    pub async fn closed(&mut self) -> bool {
        let mut chunk = [0u8; 1024];
        let read = within(
            Duration::from_secs(20),
            self.conn.read(&mut chunk),
            "a close",
        );
        match read.await {
            Ok(0) => self.buf.is_empty(),
            Ok(_) => false,
            Err(_) => true,
        }
    }
}

/// A scrape read back: each family's HELP and TYPE, and every sample.
#[derive(Debug, Default)]
pub struct Scrape {
    pub help: BTreeMap<String, String>,
    pub types: BTreeMap<String, String>,
    pub samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Scrape {
    /// Parses a body, panicking on anything that is not the text format, on a sample
    /// before its family's HELP and TYPE, and on a family given twice.
    pub fn parse(body: &str) -> Scrape {
        let mut s = Scrape::default();
        let mut current = String::new();
        assert!(body.ends_with('\n'), "body does not end with a newline");
        for line in body.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap();
                assert!(
                    s.help.insert(name.into(), help.into()).is_none(),
                    "two HELP for {name}"
                );
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, ty) = rest.split_once(' ').unwrap();
                assert!(s.help.contains_key(name), "TYPE before HELP: {line}");
                assert!(
                    s.types.insert(name.into(), ty.into()).is_none(),
                    "two TYPE for {name}"
                );
                current = name.to_string();
            } else {
                let (name, labels, value) = sample(line);
                assert!(
                    s.types.contains_key(&name),
                    "sample before its TYPE: {line}"
                );
                assert_eq!(current, name, "family split up: {line}");
                s.samples.push((name, labels, value));
            }
        }
        s
    }

    /// The value of the sample with exactly these labels, if there is one.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples
            .iter()
            .find(|(n, l, _)| n == name && *l == want)
            .map(|s| s.2)
    }

    /// Like [`get`](Scrape::get), panicking if the sample is missing.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
    }

    /// Every sample of `name`.
    pub fn all(&self, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        let of = self.samples.iter().filter(|(n, _, _)| n == name);
        of.map(|(_, l, v)| (l.clone(), *v)).collect()
    }
}

/// Parses `name{k="v",...} value`, undoing the label escapes.
fn sample(line: &str) -> (String, BTreeMap<String, String>, f64) {
    let name_end = line.find(['{', ' ']).unwrap();
    let name = line[..name_end].to_string();
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if rest.starts_with('{') {
        let mut chars = rest.char_indices().skip(1).peekable();
        loop {
            let (start, c) = chars.next().unwrap();
            if c == '}' {
                rest = &rest[start + 1..];
                break;
            }
            let mut key = String::from(c);
            for (_, c) in chars.by_ref() {
                if c == '=' {
                    break;
                }
                key.push(c);
            }
            assert_eq!(chars.next().unwrap().1, '"', "{line}");
            let mut value = String::new();
            loop {
                match chars.next().unwrap().1 {
                    '"' => break,
                    '\\' => value.push(match chars.next().unwrap().1 {
                        'n' => '\n',
                        c @ ('\\' | '"') => c,
                        c => panic!("bad escape \\{c} in {line}"),
                    }),
                    c => value.push(c),
                }
            }
            if chars.peek().map(|p| p.1) == Some(',') {
                chars.next();
            }
            assert!(
                labels.insert(key, value).is_none(),
                "label given twice: {line}"
            );
        }
    }
    let value = rest.strip_prefix(' ').unwrap();
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
    };
    (name, labels, value)
}
