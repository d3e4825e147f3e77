//! One SMTP session: commands read through a `BufReader` with a line-length limit, replies
//! batched while the client's pipelined commands are still buffered, `STARTTLS` handing the
//! stream (without the buffer) to the TLS acceptor, and `DATA` streamed to the spool.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::time::Duration;

use futures_rustls::TlsAcceptor;
use overlap::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite};
use overlap::io::{AsyncWriteExt, BufReader};
use overlap::net::TcpStream;
use overlap::sync::watch;
use overlap::time::timeout;

use crate::spool::{Draft, Spool};

/// What a relay allows.
#[derive(Clone)]
pub struct Config {
    pub name: String,
    /// The longest line, its CRLF included (RFC 5321 says 1,000).
    pub line_limit: usize,
    /// The largest body, in bytes, after unstuffing.
    pub max_message: usize,
    /// For each command (and each line of a body) to arrive.
    pub command_timeout: Duration,
    /// For the whole session.
    pub session_deadline: Duration,
    /// `STARTTLS` is offered only with an acceptor.
    pub tls: Option<TlsAcceptor>,
}

/// What the sessions saw, for the tests.
#[derive(Default)]
pub struct Stats {
    pub sessions: Cell<u32>,
    pub live: Cell<u32>,
    pub spooled: Cell<u32>,
    pub tls_sessions: Cell<u32>,
    /// Plaintext bytes a client sent after `STARTTLS`, before the handshake: thrown away.
    pub discarded_after_starttls: Cell<usize>,
    pub too_long_lines: Cell<u32>,
    pub too_big: Cell<u32>,
    pub timeouts: Cell<u32>,
    /// Sessions that ended with an error (the client vanished, a handshake failed).
    pub errors: RefCell<Vec<String>>,
}

/// What a session's commands share.
pub struct Shared {
    pub config: Config,
    pub spool: Rc<Spool>,
    pub stats: Stats,
    /// `true` once the relay shuts down: idle sessions say goodbye.
    pub stop: watch::Receiver<bool>,
}

/// How a run of commands on one stream ended.
enum End {
    Quit,
    StartTls,
}

/// A session from greeting to goodbye, under the session deadline.
pub async fn serve(tcp: TcpStream, shared: Rc<Shared>) {
    let stats = &shared.stats;
    stats.sessions.set(stats.sessions.get() + 1);
    stats.live.set(stats.live.get() + 1);
    let deadline = shared.config.session_deadline;
    let result = match timeout(deadline, session(tcp, &shared)).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "session deadline")),
    };
    if let Err(e) = result {
        stats.errors.borrow_mut().push(e.to_string());
    }
    stats.live.set(stats.live.get() - 1);
}

async fn session(tcp: TcpStream, shared: &Shared) -> io::Result<()> {
    let mut plain = Conn::new(tcp, shared);
    plain.reply(220, &format!("{} ESMTP relay", shared.config.name));
    match plain.commands().await? {
        End::Quit => return plain.close().await,
        End::StartTls => {}
    }
    // RFC 3207: nothing the client sent in plaintext after STARTTLS may count once TLS is
    // up. `into_inner` drops the buffer, which is what we want, but silently: look first.
    let Conn { io, out, .. } = plain;
    debug_assert!(out.is_empty());
    let extra = io.buffer().len();
    if extra > 0 {
        let stats = &shared.stats;
        stats
            .discarded_after_starttls
            .set(stats.discarded_after_starttls.get() + extra);
    }
    let tcp = io.into_inner();
    let acceptor = shared
        .config
        .tls
        .clone()
        .expect("STARTTLS offered with TLS");
    let handshake = timeout(shared.config.command_timeout, acceptor.accept(tcp));
    let tls = handshake
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake"))??;
    shared
        .stats
        .tls_sessions
        .set(shared.stats.tls_sessions.get() + 1);
    let mut secure = Conn::new(tls, shared);
    secure.tls = true;
    match secure.commands().await? {
        End::Quit => secure.close().await,
        End::StartTls => unreachable!("STARTTLS is refused once TLS is up"),
    }
}

/// The state of one stream's commands (reset by STARTTLS: a new `Conn`).
struct Conn<'a, S> {
    io: BufReader<S>,
    /// Replies not yet written: sent once no whole command is left in the buffer.
    out: Vec<u8>,
    shared: &'a Shared,
    tls: bool,
    greeted: bool,
    from: Option<String>,
    rcpts: Vec<String>,
    /// A message arriving in BDAT chunks (RFC 3030), between its first chunk and its last.
    chunked: Option<Chunked>,
}

/// A BDAT message in progress: its draft (gone once refused), its size so far, and the
/// refusal its last chunk will get, if any.
struct Chunked {
    draft: Option<Draft>,
    size: usize,
    refusal: Option<(u16, &'static str)>,
}

/// One line read with the limit.
pub enum Line {
    Full,
    TooLong,
    End,
}

impl<'a, S: AsyncRead + AsyncWrite + Unpin> Conn<'a, S> {
    fn new(stream: S, shared: &'a Shared) -> Self {
        Conn {
            io: BufReader::new(stream),
            out: Vec::new(),
            shared,
            tls: false,
            greeted: false,
            from: None,
            rcpts: Vec::new(),
            chunked: None,
        }
    }

    fn reply(&mut self, code: u16, text: &str) {
        self.out
            .extend_from_slice(format!("{code} {text}\r\n").as_bytes());
    }

    /// Writes the replies held back, unless another whole command is already buffered
    /// (RFC 2920: the replies to a pipelined group may go together) and they are few: a
    /// client pipelining without end must not make them grow without end.
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

    async fn close(mut self) -> io::Result<()> {
        self.flush().await?;
        self.io.get_mut().close().await
    }

    /// The next line into `buf`, under the command timeout; a line past the limit is
    /// skipped to its end (never held whole) and reported.
    async fn line(&mut self, buf: &mut Vec<u8>) -> io::Result<Line> {
        self.flush_unless_pipelined().await?;
        let limit = self.shared.config.line_limit;
        let wait = self.shared.config.command_timeout;
        match timeout(wait, read_line_limited(&mut self.io, buf, limit)).await {
            Ok(Ok(Line::TooLong)) => {
                let stats = &self.shared.stats;
                stats.too_long_lines.set(stats.too_long_lines.get() + 1);
                Ok(Line::TooLong)
            }
            Ok(line) => line,
            Err(_) => {
                let stats = &self.shared.stats;
                stats.timeouts.set(stats.timeouts.get() + 1);
                self.reply(421, "4.4.2 timeout, closing");
                self.flush().await?;
                Err(io::Error::new(io::ErrorKind::TimedOut, "command timeout"))
            }
        }
    }

    async fn commands(&mut self) -> io::Result<End> {
        let mut buf = Vec::new();
        let mut stop = self.shared.stop.clone();
        loop {
            if *stop.borrow() {
                self.reply(421, "4.3.2 shutting down");
                self.flush().await?;
                return Ok(End::Quit);
            }
            // tokio: `select! { line = read_line(..) => .., _ = stop.changed() => .. }`; the
            // read is cancel-safe here only because the session ends right after.
            let line = overlap::select! {
                line = overlap::future::FutureExt::fuse(Box::pin(self.line(&mut buf))) => line?,
                _ = overlap::future::FutureExt::fuse(Box::pin(stop.changed())) => continue,
            };
            match line {
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
                "EHLO" | "HELO" if arg.is_empty() => self.reply(501, "5.5.4 a name, please"),
                "EHLO" => self.ehlo(),
                "HELO" => {
                    self.greeted = true;
                    self.reset();
                    let name = self.shared.config.name.clone();
                    self.reply(250, &name);
                }
                "STARTTLS" if self.tls || self.shared.config.tls.is_none() => {
                    self.reply(502, "5.5.1 STARTTLS not available")
                }
                "STARTTLS" if !arg.is_empty() => self.reply(501, "5.5.4 no arguments"),
                "STARTTLS" => {
                    self.reply(220, "2.0.0 ready to start TLS");
                    self.flush().await?;
                    return Ok(End::StartTls);
                }
                "MAIL" => self.mail(&arg),
                "RCPT" => self.rcpt(&arg),
                "DATA" if !arg.is_empty() => self.reply(501, "5.5.4 no arguments"),
                "DATA" if self.rcpts.is_empty() => self.reply(503, "5.5.1 RCPT first"),
                "DATA" if self.chunked.is_some() => self.reply(503, "5.5.1 BDAT in progress"),
                "DATA" => self.data(&mut buf).await?,
                "BDAT" => self.bdat(&arg).await?,
                "RSET" => {
                    self.reset();
                    self.reply(250, "2.0.0 ok");
                }
                "NOOP" => self.reply(250, "2.0.0 ok"),
                "QUIT" => {
                    self.reply(221, "2.0.0 bye");
                    return Ok(End::Quit);
                }
                _ => self.reply(500, "5.5.1 unknown command"),
            }
        }
    }

    fn reset(&mut self) {
        self.from = None;
        self.rcpts.clear();
        // A draft dropped removes its file.
        self.chunked = None;
    }

    fn ehlo(&mut self) {
        self.greeted = true;
        self.reset();
        let mut lines = vec![
            self.shared.config.name.clone(),
            "PIPELINING".into(),
            format!("SIZE {}", self.shared.config.max_message),
        ];
        if !self.tls && self.shared.config.tls.is_some() {
            lines.push("STARTTLS".into());
        }
        lines.push("8BITMIME".into());
        lines.push("CHUNKING".into());
        let last = lines.len() - 1;
        for (i, line) in lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            self.out
                .extend_from_slice(format!("250{sep}{line}\r\n").as_bytes());
        }
    }

    fn mail(&mut self, arg: &str) {
        if !self.greeted {
            return self.reply(503, "5.5.1 EHLO first");
        }
        if self.from.is_some() {
            return self.reply(503, "5.5.1 nested MAIL");
        }
        match path_of(arg, "FROM:") {
            Some(from) => {
                self.from = Some(from);
                self.reply(250, "2.1.0 ok");
            }
            None => self.reply(501, "5.5.4 MAIL FROM:<address>"),
        }
    }

    fn rcpt(&mut self, arg: &str) {
        if self.from.is_none() {
            return self.reply(503, "5.5.1 MAIL first");
        }
        match path_of(arg, "TO:") {
            Some(to) if !to.is_empty() && self.rcpts.len() < 100 => {
                self.rcpts.push(to);
                self.reply(250, "2.1.5 ok");
            }
            Some(_) => self.reply(452, "4.5.3 too many recipients"),
            None => self.reply(501, "5.5.4 RCPT TO:<address>"),
        }
    }

    /// The body, line by line, unstuffed into a spool file; committed at the final dot,
    /// removed if it grows too big, has a line too long, or the client goes.
    async fn data(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        let from = self.from.take().unwrap_or_default();
        let rcpts = std::mem::take(&mut self.rcpts);
        let spool = self.shared.spool.clone();
        // A spool that cannot take the message: its body is read and refused with a 451.
        let mut draft = spool.begin(&from, &rcpts).await.ok();
        self.reply(354, "end with <CRLF>.<CRLF>");
        let (mut size, mut refusal) = (0, None);
        loop {
            match self.line(buf).await {
                Ok(Line::Full) => {}
                Ok(Line::TooLong) => {
                    refusal = Some((500, "5.5.2 line too long"));
                    continue;
                }
                // The client went mid-body: the draft's drop removes its file; say why.
                Ok(Line::End) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Err(e) => return Err(e),
            }
            if buf.as_slice() == b".\r\n" || buf.as_slice() == b".\n" {
                break;
            }
            let line = buf.strip_prefix(b".").unwrap_or(buf);
            size += line.len();
            if size > self.shared.config.max_message && refusal.is_none() {
                refusal = Some((552, "5.3.4 message too big"));
            }
            if refusal.is_some() {
                // Read on to the final dot without keeping anything.
                if let Some(draft) = draft.take() {
                    let _ = draft.discard().await;
                }
                continue;
            }
            if let Some(d) = draft.as_mut() {
                if d.write(line).await.is_err() {
                    draft = None;
                    refusal = Some((451, "4.3.0 spool write failed"));
                }
            }
        }
        let stats = &self.shared.stats;
        match (refusal, draft) {
            (Some((code, text)), draft) => {
                if let Some(draft) = draft {
                    let _ = draft.discard().await;
                }
                if code == 552 {
                    stats.too_big.set(stats.too_big.get() + 1);
                }
                self.reply(code, text);
            }
            (None, None) => self.reply(451, "4.3.0 spool unavailable"),
            (None, Some(draft)) => match draft.commit(&spool).await {
                Ok(path) => {
                    stats.spooled.set(stats.spooled.get() + 1);
                    let id = path.file_name().unwrap().to_string_lossy().into_owned();
                    self.reply(250, &format!("2.0.0 queued as {id}"));
                }
                Err(_) => self.reply(451, "4.3.0 spool commit failed"),
            },
        }
        Ok(())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<'_, S> {
    /// `BDAT <size> [LAST]`: exactly `size` bytes follow the command, unstuffed, copied
    /// into the draft with `io::copy_buf` through `take(size)` over the buffered reader
    /// (what it read ahead goes first, then the socket); refused chunks are still read, as
    /// RFC 3030 asks, into `io::sink()`. The last chunk commits the message.
    async fn bdat(&mut self, arg: &str) -> io::Result<()> {
        let mut words = arg.split_whitespace();
        let size: Option<u64> = words.next().and_then(|w| w.parse().ok());
        let last = match words.next() {
            None => false,
            Some(w) if w.eq_ignore_ascii_case("LAST") => true,
            Some(_) => None::<bool>.ok_or_else(|| bad_bdat(arg))?,
        };
        // Without a size the chunk cannot be skipped: the session cannot go on.
        let size = size.ok_or_else(|| bad_bdat(arg))?;
        if self.chunked.is_none() && self.rcpts.is_empty() {
            self.skip(size).await?;
            self.reply(503, "5.5.1 RCPT first");
            return Ok(());
        }
        if self.chunked.is_none() {
            let from = self.from.take().unwrap_or_default();
            let rcpts = std::mem::take(&mut self.rcpts);
            let draft = self.shared.spool.begin(&from, &rcpts).await.ok();
            let refusal = draft.is_none().then_some((451, "4.3.0 spool unavailable"));
            self.chunked = Some(Chunked {
                draft,
                size: 0,
                refusal,
            });
        }
        // The chunk may be long in coming: the replies held so far go first, so a client
        // waiting for them is not left waiting while the relay waits for it.
        if !self.out.is_empty() {
            self.flush().await?;
        }
        let mut chunked = self.chunked.take().unwrap();
        chunked.size = chunked.size.saturating_add(size as usize);
        if chunked.size > self.shared.config.max_message && chunked.refusal.is_none() {
            chunked.refusal = Some((552, "5.3.4 message too big"));
        }
        if chunked.refusal.is_some() {
            chunked.draft = None;
            self.skip(size).await?;
        } else {
            let draft = chunked.draft.as_mut().unwrap();
            let copy = overlap::io::copy_buf((&mut self.io).take(size), draft.file());
            let wait = self.shared.config.command_timeout;
            let copied = timeout(wait, copy)
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "BDAT chunk"))??;
            if copied < size {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        if !last {
            self.chunked = Some(chunked);
            self.reply(250, &format!("2.0.0 {size} octets received"));
            return Ok(());
        }
        let stats = &self.shared.stats;
        match (chunked.refusal, chunked.draft) {
            (Some((code, text)), _) => {
                if code == 552 {
                    stats.too_big.set(stats.too_big.get() + 1);
                }
                self.reply(code, text);
            }
            (None, draft) => match draft.unwrap().commit(&self.shared.spool).await {
                Ok(_) => {
                    stats.spooled.set(stats.spooled.get() + 1);
                    self.reply(250, "2.0.0 queued");
                }
                Err(_) => self.reply(451, "4.3.0 spool commit failed"),
            },
        }
        Ok(())
    }

    /// Reads and drops `size` bytes of a refused chunk.
    async fn skip(&mut self, size: u64) -> io::Result<()> {
        let mut sink = overlap::io::sink();
        let skip = overlap::io::copy_buf((&mut self.io).take(size), &mut sink);
        let wait = self.shared.config.command_timeout;
        let skipped = timeout(wait, skip)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "BDAT chunk"))??;
        if skipped < size {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
}

fn bad_bdat(arg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("bad BDAT {arg:?}"))
}

/// `FROM:<a@b>` (with `prefix` "FROM:") gives `a@b`; parameters after the `>` are ignored.
fn path_of(arg: &str, prefix: &str) -> Option<String> {
    let head = arg.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = arg[prefix.len()..].trim_start();
    let inner = rest.strip_prefix('<')?;
    let end = inner.find('>')?;
    Some(inner[..end].to_string())
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
        // The stream ended, mid-line or between lines.
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
