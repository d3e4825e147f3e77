//! The SMTP client side, shared by the tests and the relay's delivery task: replies read
//! through a `BufReader` (multi-line `250-…` replies joined), commands written one by one or
//! pipelined, and a message body dot-stuffed on its way out.

use std::io;

use overlap::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// The longest reply line a client takes.
const REPLY_LIMIT: usize = 4096;

/// One reply: its code and the text of each of its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// The reply as an error, for a caller that wanted a positive one.
    pub fn error(&self, what: &str) -> io::Error {
        io::Error::other(format!("{what}: {} {}", self.code, self.lines.join(" / ")))
    }
}

/// A connection to an SMTP server, plain or TLS.
pub struct Client<S> {
    io: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub fn new(stream: S) -> Client<S> {
        Client {
            io: BufReader::new(stream),
        }
    }

    /// The stream back, for a TLS handshake; fails if the server sent anything not yet
    /// read (it would be lost with the buffer).
    pub fn into_inner(self) -> io::Result<S> {
        if !self.io.buffer().is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the server sent bytes ahead of the TLS handshake",
            ));
        }
        Ok(self.io.into_inner())
    }

    pub fn get_mut(&mut self) -> &mut S {
        self.io.get_mut()
    }

    /// The next reply: lines up to one whose code is followed by a space.
    pub async fn reply(&mut self) -> io::Result<Reply> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = (&mut self.io)
                .take(REPLY_LIMIT as u64)
                .read_line(&mut line)
                .await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let text = line.trim_end_matches(['\r', '\n']);
            let bad = || io::Error::new(io::ErrorKind::InvalidData, format!("bad reply {text:?}"));
            let code: u16 = text.get(..3).and_then(|c| c.parse().ok()).ok_or_else(bad)?;
            let more = match text.as_bytes().get(3) {
                Some(b'-') => true,
                Some(b' ') | None => false,
                Some(_) => return Err(bad()),
            };
            lines.push(text.get(4..).unwrap_or("").to_string());
            if !more {
                return Ok(Reply { code, lines });
            }
        }
    }

    /// Writes raw bytes (several commands at once, say).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.io.get_mut().write_all(bytes).await?;
        self.io.get_mut().flush().await
    }

    /// One command, and its reply.
    pub async fn command(&mut self, line: &str) -> io::Result<Reply> {
        self.send_raw(format!("{line}\r\n").as_bytes()).await?;
        self.reply().await
    }

    /// A command whose reply must have `code`.
    pub async fn expect(&mut self, line: &str, code: u16) -> io::Result<Reply> {
        let reply = self.command(line).await?;
        if reply.code != code {
            return Err(reply.error(line));
        }
        Ok(reply)
    }

    /// The greeting and `EHLO`: the extensions the server offers.
    pub async fn hello(&mut self, name: &str) -> io::Result<Vec<String>> {
        let greeting = self.reply().await?;
        if greeting.code != 220 {
            return Err(greeting.error("greeting"));
        }
        self.ehlo(name).await
    }

    pub async fn ehlo(&mut self, name: &str) -> io::Result<Vec<String>> {
        let reply = self.expect(&format!("EHLO {name}"), 250).await?;
        Ok(reply.lines[1..].to_vec())
    }

    /// A whole transaction, one command at a time; the reply to the final dot.
    pub async fn send_mail(&mut self, from: &str, to: &[&str], body: &[u8]) -> io::Result<Reply> {
        self.expect(&format!("MAIL FROM:<{from}>"), 250).await?;
        for rcpt in to {
            self.expect(&format!("RCPT TO:<{rcpt}>"), 250).await?;
        }
        self.expect("DATA", 354).await?;
        self.send_raw(&stuffed(body)).await?;
        self.reply().await
    }

    /// A whole transaction with BDAT (RFC 3030): the body as it is, in chunks of `chunk`
    /// bytes, everything pipelined in one write; the reply to the last chunk.
    pub async fn send_chunked(
        &mut self,
        from: &str,
        to: &[&str],
        body: &[u8],
        chunk: usize,
    ) -> io::Result<Reply> {
        let mut out = format!("MAIL FROM:<{from}>\r\n").into_bytes();
        for rcpt in to {
            out.extend_from_slice(format!("RCPT TO:<{rcpt}>\r\n").as_bytes());
        }
        let chunks: Vec<&[u8]> = body.chunks(chunk).collect();
        for (i, part) in chunks.iter().enumerate() {
            let last = if i + 1 == chunks.len() { " LAST" } else { "" };
            out.extend_from_slice(format!("BDAT {}{last}\r\n", part.len()).as_bytes());
            out.extend_from_slice(part);
        }
        self.send_raw(&out).await?;
        for _ in 0..1 + to.len() {
            let reply = self.reply().await?;
            if reply.code != 250 {
                return Err(reply.error("envelope"));
            }
        }
        for _ in 1..chunks.len() {
            let reply = self.reply().await?;
            if reply.code != 250 {
                return Ok(reply);
            }
        }
        self.reply().await
    }

    pub async fn quit(mut self) -> io::Result<()> {
        self.expect("QUIT", 221).await?;
        self.io.get_mut().close().await
    }
}

/// `body` dot-stuffed (a line starting with `.` gets another) and ended with `.`; a body
/// not ending in a line break gets one first.
pub fn stuffed(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 64 + 8);
    stuff_into(body, true, &mut out);
    if !body.is_empty() && !body.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// Appends `chunk` to `out`, stuffed; `at_line_start` says whether `chunk` starts a line.
/// Returns whether the next chunk starts one.
pub fn stuff_into(chunk: &[u8], mut at_line_start: bool, out: &mut Vec<u8>) -> bool {
    for &b in chunk {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    at_line_start
}
