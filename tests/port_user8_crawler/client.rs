//! A hand-written HTTP/1.1 GET client: one connection per request (`Connection: close`), the
//! head read line by line through a `BufReader` and parsed with `httparse`, the body read by
//! `Content-Length`, chunked, or to the end of the connection, never past a size cap.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use overlap::io::{read_to_end, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use overlap::net::TcpStream;

/// An `http://ip:port/path` URL.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Url {
    pub host: SocketAddr,
    pub path: String,
}

impl Url {
    pub fn parse(s: &str) -> Option<Url> {
        let rest = s.strip_prefix("http://")?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        Some(Url {
            host: host.parse().ok()?,
            path: path.to_string(),
        })
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.host, self.path)
    }
}

/// Why a fetch failed.
#[derive(Debug)]
pub enum FetchError {
    /// No answer within the per-fetch timeout, on every try.
    Timeout,
    /// The last try's status, not a success nor a redirect.
    Status(u16),
    /// The chain of URLs followed before giving up.
    TooManyRedirects(Vec<String>),
    /// The body is larger than the cap.
    TooLarge {
        cap: usize,
    },
    /// The connection ended this many bytes into the body.
    Truncated {
        got: usize,
    },
    BadResponse(String),
    Io(io::Error),
}

impl From<io::Error> for FetchError {
    fn from(e: io::Error) -> FetchError {
        FetchError::Io(e)
    }
}

/// One answer.
pub struct Response {
    pub status: u16,
    pub location: Option<String>,
    pub body: Vec<u8>,
}

const MAX_HEAD: usize = 16 * 1024;

/// One GET, no redirect followed, no retry.
pub async fn get(url: &Url, cap: usize) -> Result<Response, FetchError> {
    let mut stream = TcpStream::connect(url.host).await?;
    stream.set_nodelay(true)?;
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: crawler\r\nConnection: close\r\n\r\n",
        url.path, url.host
    );
    stream.write_all(req.as_bytes()).await?;
    let mut conn = BufReader::new(stream);
    let mut head = Vec::new();
    loop {
        let before = head.len();
        let n = (&mut conn)
            .take((MAX_HEAD - before) as u64)
            .read_until(b'\n', &mut head)
            .await?;
        if n == 0 {
            return Err(FetchError::BadResponse(format!(
                "connection closed in the head after {before} bytes"
            )));
        }
        if head.ends_with(b"\r\n\r\n") || head == b"\r\n" {
            break;
        }
        if head.len() >= MAX_HEAD {
            return Err(FetchError::BadResponse("head too long".into()));
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Response::new(&mut headers);
    match parsed.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(FetchError::BadResponse("partial head".into()))
        }
        Err(e) => return Err(FetchError::BadResponse(e.to_string())),
    }
    let status = parsed.code.unwrap_or(0);
    let header = |name: &str| {
        parsed
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
    };
    let location = header("location");
    let chunked = header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let length = header("content-length");
    let body = if chunked {
        read_chunked(&mut conn, cap).await?
    } else if let Some(len) = length {
        let len: usize = len
            .parse()
            .map_err(|_| FetchError::BadResponse(format!("Content-Length {len:?}")))?;
        if len > cap {
            return Err(FetchError::TooLarge { cap });
        }
        let mut body = Vec::with_capacity(len);
        read_to_end(&mut (&mut conn).take(len as u64), &mut body).await?;
        if body.len() < len {
            return Err(FetchError::Truncated { got: body.len() });
        }
        body
    } else {
        let mut body = Vec::new();
        read_to_end(&mut (&mut conn).take(cap as u64 + 1), &mut body).await?;
        if body.len() > cap {
            return Err(FetchError::TooLarge { cap });
        }
        body
    };
    Ok(Response {
        status,
        location,
        body,
    })
}

async fn read_chunked(conn: &mut BufReader<TcpStream>, cap: usize) -> Result<Vec<u8>, FetchError> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        (&mut *conn).take(1024).read_line(&mut line).await?;
        if !line.ends_with('\n') {
            return Err(FetchError::Truncated { got: body.len() });
        }
        let size = line.trim_end().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| FetchError::BadResponse(format!("chunk size {size:?}")))?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                line.clear();
                (&mut *conn).take(1024).read_line(&mut line).await?;
                if line == "\r\n" || line.is_empty() {
                    return Ok(body);
                }
            }
        }
        if body.len() + size > cap {
            return Err(FetchError::TooLarge { cap });
        }
        let start = body.len();
        body.resize(start + size + 2, 0);
        conn.read_exact(&mut body[start..]).await.map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                FetchError::Truncated { got: start }
            } else {
                FetchError::Io(e)
            }
        })?;
        body.truncate(start + size);
    }
}

/// The `href`s of a page.
pub fn links(body: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(body);
    text.split("<a href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next().map(str::to_string))
        .collect()
}
