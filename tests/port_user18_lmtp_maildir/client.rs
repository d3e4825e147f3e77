//! The LMTP client the tests drive (an MTA's `lmtp` transport in miniature): replies read
//! through a `BufReader` (multi-line `250-…` joined), commands sent one by one or as one
//! pipelined write, and a message dot-stuffed on its way out.

use std::io;

use overlap::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// The longest reply line a client takes.
const REPLY_LIMIT: u64 = 4096;

/// One reply: its code and the text of each of its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

/// What a whole transaction got: the replies to `MAIL`, to each `RCPT`, to `DATA`, and
/// then one per recipient accepted (none if `DATA` was refused).
#[derive(Debug)]
pub struct Outcome {
    pub mail: u16,
    pub rcpts: Vec<u16>,
    pub data: u16,
    pub per_rcpt: Vec<Reply>,
}

impl Outcome {
    pub fn per_rcpt_codes(&self) -> Vec<u16> {
        self.per_rcpt.iter().map(|r| r.code).collect()
    }
}

pub struct Client<S> {
    io: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// Wraps a connected stream and reads the greeting.
    pub async fn greeted(stream: S) -> io::Result<Client<S>> {
        let mut client = Client {
            io: BufReader::new(stream),
        };
        let greeting = client.reply().await?;
        if greeting.code != 220 {
            return Err(io::Error::other(format!("greeting {greeting:?}")));
        }
        Ok(client)
    }

    pub fn get_mut(&mut self) -> &mut S {
        self.io.get_mut()
    }

    /// `LHLO`, returning the extensions offered.
    pub async fn lhlo(&mut self, name: &str) -> io::Result<Vec<String>> {
        let reply = self.command(&format!("LHLO {name}")).await?;
        if reply.code != 250 {
            return Err(io::Error::other(format!("LHLO {reply:?}")));
        }
        Ok(reply.lines[1..].to_vec())
    }

    /// The next reply: lines up to one whose code is followed by a space.
    pub async fn reply(&mut self) -> io::Result<Reply> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = (&mut self.io)
                .take(REPLY_LIMIT)
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

    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.io.get_mut().write_all(bytes).await?;
        self.io.get_mut().flush().await
    }

    /// One command and its reply.
    pub async fn command(&mut self, line: &str) -> io::Result<Reply> {
        self.send_raw(format!("{line}\r\n").as_bytes()).await?;
        self.reply().await
    }

    /// One command; fails unless its reply has `code`.
    pub async fn expect(&mut self, line: &str, code: u16) -> io::Result<Reply> {
        let reply = self.command(line).await?;
        if reply.code != code {
            return Err(io::Error::other(format!(
                "{line}: wanted {code}, got {reply:?}"
            )));
        }
        Ok(reply)
    }

    /// A whole transaction as one write (PIPELINING: `MAIL`, every `RCPT`, `DATA`), then
    /// the body once `DATA` said 354, then one reply per accepted recipient.
    pub async fn send_mail(
        &mut self,
        from: &str,
        rcpts: &[&str],
        body: &[u8],
    ) -> io::Result<Outcome> {
        let mut group = format!("MAIL FROM:<{from}>\r\n");
        for rcpt in rcpts {
            group.push_str(&format!("RCPT TO:<{rcpt}>\r\n"));
        }
        group.push_str("DATA\r\n");
        self.send_raw(group.as_bytes()).await?;
        let mail = self.reply().await?.code;
        let mut codes = Vec::new();
        for _ in rcpts {
            codes.push(self.reply().await?.code);
        }
        let data = self.reply().await?.code;
        let mut per_rcpt = Vec::new();
        if data == 354 {
            self.send_raw(&stuffed(body)).await?;
            for _ in codes.iter().filter(|&&c| c == 250) {
                per_rcpt.push(self.reply().await?);
            }
        }
        Ok(Outcome {
            mail,
            rcpts: codes,
            data,
            per_rcpt,
        })
    }

    pub async fn quit(mut self) -> io::Result<()> {
        self.expect("QUIT", 221).await?;
        let mut rest = Vec::new();
        self.io.read_to_end(&mut rest).await?;
        if !rest.is_empty() {
            return Err(io::Error::other(format!("after QUIT: {rest:?}")));
        }
        Ok(())
    }
}

/// `body` (CRLF lines) dot-stuffed, with the final `.` line: a line starting with `.` gets
/// one more, and a body not ending in CRLF gets one first.
pub fn stuffed(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 16);
    let mut at_line_start = true;
    for &b in body {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !body.is_empty() && !body.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}
