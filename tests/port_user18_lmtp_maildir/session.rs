//! One LMTP session (RFC 2033): commands read through a `BufReader` with a line-length
//! limit and a timeout each, replies held back while more pipelined commands are buffered,
//! and `DATA` streamed, unstuffed and with LF line ends, into one Maildir draft per
//! accepted recipient, answered with one reply per recipient.

use std::io;
use std::rc::Rc;

use overlap::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite};
use overlap::io::{AsyncWriteExt, BufReader};
use overlap::time::timeout;

use crate::maildir::Draft;
use crate::server::Shared;

/// A session from greeting to goodbye; how it ended is counted in the stats.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(stream: S, shared: Rc<Shared>) {
    let stats = &shared.stats;
    stats.sessions.set(stats.sessions.get() + 1);
    stats.live.set(stats.live.get() + 1);
    let mut conn = Conn::new(stream, &shared);
    conn.reply(220, &format!("{} LMTP ready", shared.config.name));
    if let Err(e) = conn.commands().await {
        stats.errors.borrow_mut().push(e.to_string());
    }
    stats.live.set(stats.live.get() - 1);
}

/// One line read with the limit.
pub enum Line {
    Full,
    TooLong,
    End,
}

/// A recipient accepted at `RCPT`: its address and its user's key in `Mailboxes`.
struct Rcpt {
    address: String,
    user: String,
}

struct Conn<'a, S> {
    io: BufReader<S>,
    /// Replies not yet written: sent once no whole command is left in the buffer.
    out: Vec<u8>,
    shared: &'a Shared,
    greeted: bool,
    from: Option<String>,
    rcpts: Vec<Rcpt>,
}

impl<'a, S: AsyncRead + AsyncWrite + Unpin> Conn<'a, S> {
    fn new(stream: S, shared: &'a Shared) -> Self {
        Conn {
            io: BufReader::new(stream),
            out: Vec::new(),
            shared,
            greeted: false,
            from: None,
            rcpts: Vec::new(),
        }
    }

    fn reply(&mut self, code: u16, text: &str) {
        self.out
            .extend_from_slice(format!("{code} {text}\r\n").as_bytes());
    }

    /// Writes the replies held back, unless another whole command is already buffered
    /// (PIPELINING, RFC 2920: a group's replies may go together) and they are few.
    async fn flush_unless_pipelined(&mut self) -> io::Result<()> {
        let few = self.out.len() < 4096;
        if self.out.is_empty() || (few && self.io.buffer().contains(&b'\n')) {
            return Ok(());
        }
        self.flush().await
    }

    async fn flush(&mut self) -> io::Result<()> {
        let out = std::mem::take(&mut self.out);
        self.io.get_mut().write_all(&out).await?;
        self.io.get_mut().flush().await
    }

    /// The next line into `buf` within `wait`; past it, `421` and the session ends.
    async fn line(&mut self, buf: &mut Vec<u8>, in_data: bool) -> io::Result<Line> {
        self.flush_unless_pipelined().await?;
        let config = &self.shared.config;
        let wait = if in_data {
            config.data_timeout
        } else {
            config.command_timeout
        };
        let limit = config.line_limit;
        match timeout(wait, read_line_limited(&mut self.io, buf, limit)).await {
            Ok(line) => line,
            Err(_) => {
                let stats = &self.shared.stats;
                stats.timeouts.set(stats.timeouts.get() + 1);
                self.reply(421, "4.4.2 timeout, closing connection");
                self.flush().await?;
                let what = if in_data { "data" } else { "command" };
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{what} timeout"),
                ))
            }
        }
    }

    async fn commands(&mut self) -> io::Result<()> {
        let mut buf = Vec::new();
        loop {
            match self.line(&mut buf, false).await? {
                Line::End => return Err(io::ErrorKind::UnexpectedEof.into()),
                Line::TooLong => {
                    self.reply(500, "5.5.2 line too long");
                    continue;
                }
                Line::Full => {}
            }
            let text = String::from_utf8_lossy(&buf);
            let text = text.trim_end_matches(['\r', '\n']).to_string();
            let (verb, arg) = match text.split_once(' ') {
                Some((verb, arg)) => (verb.to_ascii_uppercase(), arg.trim().to_string()),
                None => (text.to_ascii_uppercase(), String::new()),
            };
            match verb.as_str() {
                "LHLO" if arg.is_empty() => self.reply(501, "5.5.4 LHLO needs a name"),
                "LHLO" => self.lhlo(),
                // RFC 2033 4.1: an LMTP server answers HELO and EHLO with an error.
                "HELO" | "EHLO" => self.reply(500, "5.5.1 this is LMTP: use LHLO"),
                "MAIL" => self.mail(&arg),
                "RCPT" => self.rcpt(&arg),
                "DATA" if !arg.is_empty() => self.reply(501, "5.5.4 no arguments"),
                "DATA" if self.rcpts.is_empty() => self.reply(503, "5.5.1 no valid recipients"),
                "DATA" => self.data(&mut buf).await?,
                "RSET" => {
                    self.reset();
                    self.reply(250, "2.0.0 ok");
                }
                "NOOP" => self.reply(250, "2.0.0 ok"),
                "QUIT" => {
                    self.reply(221, "2.0.0 bye");
                    self.flush().await?;
                    return self.io.get_mut().close().await;
                }
                _ => self.reply(500, "5.5.1 unknown command"),
            }
        }
    }

    fn reset(&mut self) {
        self.from = None;
        self.rcpts.clear();
    }

    fn lhlo(&mut self) {
        self.greeted = true;
        self.reset();
        let config = &self.shared.config;
        let lines = [
            config.name.clone(),
            "PIPELINING".into(),
            "8BITMIME".into(),
            "ENHANCEDSTATUSCODES".into(),
            format!("SIZE {}", config.max_message),
        ];
        let last = lines.len() - 1;
        for (i, line) in lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            self.out
                .extend_from_slice(format!("250{sep}{line}\r\n").as_bytes());
        }
    }

    /// `MAIL FROM:<path> [SIZE=n] [BODY=7BIT|8BITMIME]`: a declared size over the limit
    /// is refused here, before any byte of the body is sent (RFC 1870).
    fn mail(&mut self, arg: &str) {
        if !self.greeted {
            return self.reply(503, "5.5.1 LHLO first");
        }
        if self.from.is_some() {
            return self.reply(503, "5.5.1 nested MAIL");
        }
        let Some((from, params)) = path_of(arg, "FROM:") else {
            return self.reply(501, "5.5.4 MAIL FROM:<address>");
        };
        for param in params.split_whitespace() {
            let (key, value) = param.split_once('=').unwrap_or((param, ""));
            match key.to_ascii_uppercase().as_str() {
                "SIZE" => match value.parse::<u64>() {
                    Ok(n) if n > self.shared.config.max_message => {
                        return self.reply(552, "5.3.4 message size exceeds fixed limit")
                    }
                    Ok(_) => {}
                    Err(_) => return self.reply(501, "5.5.4 bad SIZE"),
                },
                "BODY" if value.eq_ignore_ascii_case("7BIT") => {}
                "BODY" if value.eq_ignore_ascii_case("8BITMIME") => {}
                _ => return self.reply(555, "5.5.4 unsupported parameter"),
            }
        }
        self.from = Some(from);
        self.reply(250, "2.1.0 ok");
    }

    fn rcpt(&mut self, arg: &str) {
        if self.from.is_none() {
            return self.reply(503, "5.5.1 MAIL first");
        }
        let Some((address, params)) = path_of(arg, "TO:") else {
            return self.reply(501, "5.5.4 RCPT TO:<address>");
        };
        if !params.trim().is_empty() {
            return self.reply(555, "5.5.4 unsupported parameter");
        }
        if self.rcpts.len() >= self.shared.config.max_rcpts {
            return self.reply(452, "4.5.3 too many recipients");
        }
        let Some((user, _)) = self.shared.mailboxes.find(&address) else {
            return self.reply(550, "5.1.1 no such user");
        };
        let user = user.to_string();
        self.rcpts.push(Rcpt { address, user });
        self.reply(250, "2.1.5 ok");
    }

    /// The body, line by line, unstuffed and with LF line ends, into one draft per
    /// recipient; then one reply per recipient, in `RCPT` order (RFC 2033 4.2).
    async fn data(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        let from = self.from.take().unwrap_or_default();
        let rcpts = std::mem::take(&mut self.rcpts);
        let shared = self.shared;
        // A recipient whose draft cannot be made (its `tmp/` unusable) gets a 451 at the
        // end; the others go on.
        let mut drafts: Vec<Option<Draft>> = Vec::with_capacity(rcpts.len());
        for rcpt in &rcpts {
            let (_, mailbox) = shared.mailboxes.find(&rcpt.user).expect("a known user");
            let header = format!("Return-Path: <{from}>\nDelivered-To: <{}>\n", rcpt.address);
            let draft = match mailbox.maildir.begin(&shared.host).await {
                // A failed write drops the draft, which removes its file.
                Ok(mut draft) => draft.write(header.as_bytes()).await.ok().map(|_| draft),
                Err(_) => None,
            };
            drafts.push(draft);
        }
        self.reply(354, "start mail input; end with <CRLF>.<CRLF>");
        let (mut size, mut refusal) = (0u64, None);
        let mut line_out = Vec::new();
        loop {
            match self.line(buf, true).await? {
                Line::Full => {}
                Line::TooLong => {
                    refusal.get_or_insert((500, "5.5.2 line too long"));
                    drafts.clear();
                    continue;
                }
                // The client went mid-body: the drafts' drop removes their files.
                Line::End => return Err(io::ErrorKind::UnexpectedEof.into()),
            }
            if buf.as_slice() == b".\r\n" || buf.as_slice() == b".\n" {
                break;
            }
            let line = buf.strip_prefix(b".").unwrap_or(buf);
            size += line.len() as u64;
            if size > shared.config.max_message {
                // Read on to the final dot, keeping nothing (RFC 1870: 552 at the end).
                refusal.get_or_insert((552, "5.3.4 message size exceeds fixed limit"));
                drafts.clear();
            }
            if refusal.is_some() {
                continue;
            }
            // Maildir stores LF line ends: CRLF (or a bare LF) becomes LF; a lone CR
            // inside a line stays.
            line_out.clear();
            let content = line.strip_suffix(b"\n").unwrap_or(line);
            line_out.extend_from_slice(content.strip_suffix(b"\r").unwrap_or(content));
            line_out.push(b'\n');
            for slot in drafts.iter_mut() {
                if let Some(draft) = slot {
                    if draft.write(&line_out).await.is_err() {
                        *slot = None;
                    }
                }
            }
        }
        let stats = &shared.stats;
        if let Some((code, text)) = refusal {
            for _ in &rcpts {
                self.reply(code, text);
            }
            return Ok(());
        }
        for (rcpt, draft) in rcpts.iter().zip(drafts) {
            let (_, mailbox) = shared.mailboxes.find(&rcpt.user).expect("a known user");
            let Some(draft) = draft else {
                self.reply(451, "4.2.0 mailbox unavailable");
                continue;
            };
            let bytes = draft.size();
            // Only a mailbox with a quota has its usage read (once, then cached).
            let usage = match mailbox.quota {
                Some(quota) => Some((quota, mailbox.usage().await)),
                None => None,
            };
            let over = match usage {
                None => false,
                Some((quota, Ok(used))) => used + bytes > quota,
                Some((_, Err(_))) => {
                    let _ = draft.discard().await;
                    self.reply(451, "4.2.0 mailbox unavailable");
                    continue;
                }
            };
            if over {
                let _ = draft.discard().await;
                self.reply(552, "5.2.2 mailbox full");
                continue;
            }
            let name = draft.name().to_string();
            match draft.commit(&mailbox.maildir).await {
                Ok(_) => {
                    mailbox.delivered(bytes);
                    stats.delivered.set(stats.delivered.get() + 1);
                    self.reply(250, &format!("2.0.0 <{}> {name} saved", rcpt.address));
                }
                Err(_) => self.reply(451, "4.2.0 mailbox unavailable"),
            }
        }
        Ok(())
    }
}

/// `FROM:<a@b> SIZE=10` (with `prefix` "FROM:") gives `a@b` and the parameters after `>`.
fn path_of(arg: &str, prefix: &str) -> Option<(String, String)> {
    let head = arg.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = arg[prefix.len()..].trim_start();
    let inner = rest.strip_prefix('<')?;
    let end = inner.find('>')?;
    Some((inner[..end].to_string(), inner[end + 1..].to_string()))
}

/// Reads one line (up to and with its `\n`) into `buf`, holding at most `limit` bytes: a
/// longer line is consumed to its end and dropped (`Line::TooLong`). tokio-util's
/// `LinesCodec::new_with_max_length` does this for a tokio user; here `take` bounds
/// `read_until`.
pub async fn read_line_limited<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    limit: usize,
) -> io::Result<Line> {
    buf.clear();
    let n = (&mut *reader)
        .take(limit as u64)
        .read_until(b'\n', buf)
        .await?;
    if buf.ends_with(b"\n") {
        return Ok(Line::Full);
    }
    if n < limit {
        return Ok(Line::End);
    }
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(Line::End);
        }
        if let Some(i) = available.iter().position(|&b| b == b'\n') {
            reader.consume_unpin(i + 1);
            return Ok(Line::TooLong);
        }
        let all = available.len();
        reader.consume_unpin(all);
    }
}
