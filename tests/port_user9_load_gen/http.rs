//! HTTP/1.1 framing for the load generator: requests written as bytes, responses read back
//! with `httparse` from a buffer that keeps what came past the last response (pipelining).

use std::io;

use overlap::io::{AsyncRead, AsyncReadExt};
use overlap::net::TcpStream;

/// One request as it goes on the wire, and whether it may be sent twice.
#[derive(Clone, Debug)]
pub struct Request {
    pub bytes: Vec<u8>,
    pub idempotent: bool,
}

impl Request {
    /// `GET path`, padded with an `X-Pad` header of `pad` bytes (to make big pipelines).
    pub fn get(path: &str, pad: usize) -> Request {
        let pad = "p".repeat(pad);
        let bytes = format!("GET {path} HTTP/1.1\r\nHost: load\r\nX-Pad: {pad}\r\n\r\n");
        Request {
            bytes: bytes.into_bytes(),
            idempotent: true,
        }
    }

    /// `POST path` with `body`: never retried.
    pub fn post(path: &str, body: &[u8]) -> Request {
        let mut bytes = format!(
            "POST {path} HTTP/1.1\r\nHost: load\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        bytes.extend_from_slice(body);
        Request {
            bytes,
            idempotent: false,
        }
    }
}

/// A response read whole.
#[derive(Debug, PartialEq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    /// The server said `Connection: close`.
    pub close: bool,
    /// Every byte of it, head and body.
    pub raw: Vec<u8>,
}

/// Reads one response from `rd`, keeping in `buf` what came after it. A close before the
/// first byte of the response is `UnexpectedEof` saying so (the request may not have been
/// seen: see `Pool::send`'s retry); `buf` still empty then.
pub async fn read_response(
    rd: &mut (impl AsyncRead + Unpin),
    buf: &mut Vec<u8>,
) -> io::Result<Response> {
    loop {
        if let Some(resp) = parse(buf)? {
            return Ok(resp);
        }
        let mut chunk = [0u8; 8192];
        let n = rd.read(&mut chunk).await?;
        if n == 0 {
            let msg = if buf.is_empty() {
                "the server closed the connection before any byte of the response"
            } else {
                "the server closed the connection in the middle of a response"
            };
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, msg));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn parse(buf: &mut Vec<u8>) -> io::Result<Option<Response>> {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut resp = httparse::Response::new(&mut headers);
    let head = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => {
            let msg = format!("a malformed response head: {e}");
            return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
        }
    };
    let (mut len, mut close) = (0usize, false);
    for h in resp.headers.iter() {
        let value = std::str::from_utf8(h.value).unwrap_or("");
        if h.name.eq_ignore_ascii_case("content-length") {
            len = value
                .trim()
                .parse()
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "a bad Content-Length"))?;
        } else if h.name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    let status = resp.code.unwrap_or(0);
    if buf.len() < head + len {
        return Ok(None);
    }
    let raw: Vec<u8> = buf.drain(..head + len).collect();
    Ok(Some(Response {
        status,
        body: raw[head..].to_vec(),
        close,
        raw,
    }))
}

/// A pooled connection: the stream, the bytes read past the last response, and how many
/// requests it carried.
#[derive(Debug)]
pub struct Conn {
    pub stream: TcpStream,
    pub buf: Vec<u8>,
    pub served: u32,
}

impl Conn {
    pub fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            buf: Vec::new(),
            served: 0,
        }
    }

    /// Writes `req` and reads its response.
    pub async fn exchange(&mut self, req: &Request) -> io::Result<Response> {
        use overlap::io::AsyncWriteExt;
        self.stream.write_all(&req.bytes).await?;
        let resp = read_response(&mut self.stream, &mut self.buf).await?;
        self.served += 1;
        Ok(resp)
    }

    /// Pipelining: writes every request before reading, while reading, so neither side's
    /// buffers fill and stall the other; the responses come back in order.
    pub async fn pipeline(&mut self, reqs: &[Request]) -> io::Result<Vec<Response>> {
        use overlap::io::AsyncWriteExt;
        let (mut rd, mut wr) = TcpStream::split(&mut self.stream);
        let buf = &mut self.buf;
        let write = async {
            for req in reqs {
                wr.write_all(&req.bytes).await?;
            }
            io::Result::Ok(())
        };
        let read = async {
            let mut out = Vec::with_capacity(reqs.len());
            for _ in reqs {
                out.push(read_response(&mut rd, buf).await?);
            }
            io::Result::Ok(out)
        };
        let (wrote, read) = overlap::join!(write, read);
        wrote?;
        let out = read?;
        self.served += reqs.len() as u32;
        Ok(out)
    }

    /// Whether the server closed (or reset) the idle connection, or sent what nobody asked
    /// for: a read now that does not say `WouldBlock`. The FIN is seen once the loop has
    /// turned after it arrived (as with tokio's `try_read`); one that arrives later is
    /// caught by `Pool::send`'s retry.
    pub fn is_stale(&self) -> bool {
        if !self.buf.is_empty() {
            return true;
        }
        let mut byte = [0u8; 1];
        !matches!(self.stream.try_read(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}
