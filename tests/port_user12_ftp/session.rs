//! One control connection: replies written to the write half, command lines read from
//! the read half through `FramedRead<_, AnyDelimiterCodec>` (bounded, so an overlong line
//! is a 500 and not unbounded memory; bytes, not `LinesCodec`'s `String`, so the Telnet
//! bytes ftp(1) puts before ABOR can be stripped), one `select!` over the next line, the
//! transfer in flight and an idle `sleep`.

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::pin::pin;
use std::rc::Rc;

use overlap::codec::{AnyDelimiterCodec, AnyDelimiterCodecError, BytesMut, FramedRead};
use overlap::io::AsyncWriteExt;
use overlap::net::tcp::OwnedWriteHalf;
use overlap::net::{TcpListener, TcpStream};
use overlap::stream::StreamExt;
use overlap::time::{sleep, timeout, Instant};

use super::paths::{self, Refused};
use super::server::{End, Shared};
use super::transfer::{self, Job, Outcome, Transfer};

/// What the loop does after a command.
enum Flow {
    Continue,
    Quit,
}

/// What woke the loop.
enum Event {
    Line(Option<Result<BytesMut, AnyDelimiterCodecError>>),
    Transfer(Outcome),
    Idle,
}

struct Session<'a> {
    shared: &'a Rc<Shared>,
    out: OwnedWriteHalf,
    user: Option<String>,
    logged_in: bool,
    cwd: String,
    /// The listener a PASV opened, taken by the next transfer command.
    passive: Option<TcpListener>,
    /// The offset a REST set for the next RETR.
    rest: u64,
    transfer: Option<Transfer>,
}

/// Serves one control connection to its end.
pub async fn run(stream: TcpStream, shared: &Rc<Shared>) -> End {
    // Replies are small writes, each awaited by the client before it sends more: without
    // this, Nagle's algorithm holds one back until the last one's (delayed) ACK.
    let _ = stream.set_nodelay(true);
    let (input, out) = stream.into_split();
    let mut lines = FramedRead::new(
        input,
        AnyDelimiterCodec::new_with_max_length(
            b"\n".to_vec(),
            b"\n".to_vec(),
            shared.config.max_line,
        ),
    );
    let mut session = Session {
        shared,
        out,
        user: None,
        logged_in: false,
        cwd: "/".into(),
        passive: None,
        rest: 0,
        transfer: None,
    };
    let end = session.serve(&mut lines).await.unwrap_or(End::Lost);
    // A transfer still running (the client gone mid-STOR): cancel it and wait for it to
    // clean up after itself.
    if let Some(t) = session.transfer.take() {
        t.cancel().await;
    }
    end
}

/// A command line's text: its `\r` dropped, and the Telnet commands before it (bytes from
/// 0xF0 up: `IAC IP`, the Synch's `DM`, which ftp(1) sends before ABOR) skipped; `None` if
/// the rest is not UTF-8.
fn command_text(bytes: &[u8]) -> Option<String> {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    let start = bytes.iter().position(|&b| b < 0xf0).unwrap_or(bytes.len());
    String::from_utf8(bytes[start..].to_vec()).ok()
}

impl Session<'_> {
    async fn serve(
        &mut self,
        lines: &mut FramedRead<overlap::net::tcp::OwnedReadHalf, AnyDelimiterCodec>,
    ) -> io::Result<End> {
        self.reply_lines(
            220,
            &["overlap ftp: a port from tokio", "Ready for USER and PASS."],
        )
        .await?;
        let idle_for = self.shared.config.idle;
        let mut idle = pin!(sleep(idle_for));
        // After a decoding error (the overlong line) the codec's stream ends once, then
        // reads on (as tokio-util's does): that `None` is not the client leaving.
        let mut errored = false;
        loop {
            let busy = self.transfer.is_some();
            let event = overlap::select! {
                line = lines.next() => Event::Line(line),
                out = transfer::finished(&mut self.transfer) => Event::Transfer(out),
                _ = &mut idle, if !busy => Event::Idle,
            };
            match event {
                Event::Line(Some(Ok(bytes))) => {
                    errored = false;
                    idle.as_mut().reset(Instant::now() + idle_for);
                    let Some(line) = command_text(&bytes) else {
                        self.reply(500, "Command is not valid UTF-8.").await?;
                        continue;
                    };
                    if let Flow::Quit = self.command(&line).await? {
                        return Ok(End::Quit);
                    }
                }
                Event::Line(Some(Err(AnyDelimiterCodecError::MaxChunkLengthExceeded))) => {
                    errored = true;
                    self.reply(500, "Command line too long.").await?;
                }
                Event::Line(Some(Err(AnyDelimiterCodecError::Io(_)))) => return Ok(End::Lost),
                Event::Line(None) if errored => errored = false,
                Event::Line(None) => return Ok(End::Lost),
                Event::Transfer(out) => {
                    self.transfer = None;
                    self.report(out).await?;
                    idle.as_mut().reset(Instant::now() + idle_for);
                }
                Event::Idle => {
                    self.reply(421, "Idle timeout, closing control connection.")
                        .await?;
                    let _ = self.out.close().await;
                    return Ok(End::Idle);
                }
            }
        }
    }

    async fn reply(&mut self, code: u16, text: &str) -> io::Result<()> {
        self.out
            .write_all(format!("{code} {text}\r\n").as_bytes())
            .await
    }

    /// A multi-line reply: `code-first`, the middle lines indented, `code last`.
    async fn reply_lines(&mut self, code: u16, lines: &[&str]) -> io::Result<()> {
        let mut text = String::new();
        for (i, line) in lines.iter().enumerate() {
            if i == 0 && lines.len() > 1 {
                text.push_str(&format!("{code}-{line}\r\n"));
            } else if i + 1 == lines.len() {
                text.push_str(&format!("{code} {line}\r\n"));
            } else {
                text.push_str(&format!(" {line}\r\n"));
            }
        }
        self.out.write_all(text.as_bytes()).await
    }

    async fn report(&mut self, out: Outcome) -> io::Result<()> {
        match out {
            Outcome::Done(n) => {
                self.reply(226, &format!("Transfer complete ({n} bytes)."))
                    .await
            }
            Outcome::Aborted => {
                self.reply(426, "Connection closed; transfer aborted.")
                    .await
            }
            Outcome::Failed(e) => self.reply(426, &format!("Transfer failed: {e}.")).await,
            Outcome::Local(e) => self.reply(451, &format!("Local error: {e}.")).await,
        }
    }

    async fn command(&mut self, line: &str) -> io::Result<Flow> {
        let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
        let verb = verb.to_ascii_uppercase();
        let arg = arg.trim();
        if !self.logged_in
            && !matches!(
                verb.as_str(),
                "USER" | "PASS" | "QUIT" | "NOOP" | "FEAT" | "SYST" | "HELP"
            )
        {
            if verb.is_empty() {
                self.reply(500, "Empty command.").await?;
            } else {
                self.reply(530, "Please login with USER and PASS.").await?;
            }
            return Ok(Flow::Continue);
        }
        match verb.as_str() {
            "" => self.reply(500, "Empty command.").await?,
            "USER" => {
                self.user = Some(arg.to_string());
                self.logged_in = false;
                self.reply(331, "Please specify the password.").await?;
            }
            "PASS" => {
                let config = &self.shared.config;
                if self.user.as_deref() == Some(config.user) && arg == config.password {
                    self.logged_in = true;
                    self.reply(230, "Login successful.").await?;
                } else {
                    self.user = None;
                    self.reply(530, "Login incorrect.").await?;
                }
            }
            "QUIT" => {
                // A transfer in flight is finished first (RFC 959), its reply before ours.
                if let Some(t) = self.transfer.take() {
                    let out = t.finish().await;
                    self.report(out).await?;
                }
                self.reply(221, "Goodbye.").await?;
                let _ = self.out.close().await;
                return Ok(Flow::Quit);
            }
            "NOOP" => self.reply(200, "NOOP ok.").await?,
            "SYST" => self.reply(215, "UNIX Type: L8").await?,
            "FEAT" => {
                self.reply_lines(
                    211,
                    &["Features:", "EPSV", "PASV", "REST STREAM", "SIZE", "End"],
                )
                .await?
            }
            "HELP" => {
                self.reply_lines(
                    214,
                    &[
                        "The following commands are recognized.",
                        "ABOR CDUP CWD DELE EPSV FEAT HELP LIST MKD NOOP PASS PASV PWD QUIT",
                        "REST RETR RMD SIZE STOR SYST TYPE USER",
                        "Help OK.",
                    ],
                )
                .await?
            }
            "PWD" => {
                let cwd = self.cwd.clone();
                self.reply(257, &format!("\"{cwd}\" is the current directory."))
                    .await?
            }
            "CWD" | "CDUP" => {
                let arg = if verb == "CDUP" { ".." } else { arg };
                match self.resolve(arg).await {
                    Ok((path, real)) => {
                        let is_dir = overlap::fs::metadata(&real).await.map(|m| m.is_dir());
                        if let Ok(true) = is_dir {
                            self.cwd = path;
                            self.reply(250, "Directory successfully changed.").await?
                        } else {
                            self.reply(550, "Failed to change directory.").await?
                        }
                    }
                    Err(e) => self.refuse(e).await?,
                }
            }
            "TYPE" => match arg.to_ascii_uppercase().as_str() {
                "I" | "L 8" => self.reply(200, "Switching to Binary mode.").await?,
                "A" | "A N" => self.reply(200, "Switching to ASCII mode.").await?,
                _ => self.reply(504, "Unsupported TYPE.").await?,
            },
            "PASV" | "EPSV" => self.passive(&verb).await?,
            "REST" => match arg.parse::<u64>() {
                Ok(n) => {
                    self.rest = n;
                    self.reply(350, &format!("Restart position accepted ({n})."))
                        .await?
                }
                Err(_) => self.reply(501, "REST needs a byte offset.").await?,
            },
            "ABOR" => match self.transfer.take() {
                Some(t) => {
                    let out = t.cancel().await;
                    self.report(out).await?;
                    self.reply(226, "ABOR successful.").await?
                }
                None => self.reply(225, "No transfer to abort.").await?,
            },
            "SIZE" | "DELE" | "MKD" | "RMD" if arg.is_empty() => {
                self.reply(501, "Syntax error in parameters.").await?
            }
            "SIZE" => {
                self.on_path(arg, |real| async move {
                    let meta = overlap::fs::metadata(&real).await?;
                    if meta.is_dir() {
                        return Err(io::Error::new(io::ErrorKind::IsADirectory, "a directory"));
                    }
                    Ok((213, meta.len().to_string()))
                })
                .await?
            }
            "DELE" => {
                self.on_path(arg, |real| async move {
                    overlap::fs::remove_file(&real).await?;
                    Ok((250, "Delete operation successful.".to_string()))
                })
                .await?
            }
            "RMD" => {
                self.on_path(arg, |real| async move {
                    overlap::fs::remove_dir(&real).await?;
                    Ok((250, "Remove directory operation successful.".to_string()))
                })
                .await?
            }
            "MKD" => match self.resolve(arg).await {
                Ok((path, real)) => match overlap::fs::create_dir(&real).await {
                    Ok(()) => self.reply(257, &format!("\"{path}\" created.")).await?,
                    Err(_) => {
                        self.reply(550, "Create directory operation failed.")
                            .await?
                    }
                },
                Err(e) => self.refuse(e).await?,
            },
            "LIST" | "NLST" | "RETR" | "STOR" => self.transfer_command(&verb, arg).await?,
            _ => self.reply(502, "Command not implemented.").await?,
        }
        Ok(Flow::Continue)
    }

    /// The virtual and real paths `arg` names, confined to the root.
    async fn resolve(&self, arg: &str) -> Result<(String, PathBuf), Refused> {
        let path = paths::virtual_path(&self.cwd, arg)?;
        let real = paths::real_path(&self.shared.root, &path).await?;
        Ok((path, real))
    }

    async fn refuse(&mut self, why: Refused) -> io::Result<()> {
        match why {
            Refused::OutsideRoot => {
                self.reply(550, "Permission denied: outside the root.")
                    .await
            }
            Refused::BadName => self.reply(550, "Bad file name.").await,
        }
    }

    /// Runs `op` on the real path `arg` names: its reply, or a 550.
    async fn on_path<F, Fut>(&mut self, arg: &str, op: F) -> io::Result<()>
    where
        F: FnOnce(PathBuf) -> Fut,
        Fut: std::future::Future<Output = io::Result<(u16, String)>>,
    {
        match self.resolve(arg).await {
            Ok((_, real)) => match op(real).await {
                Ok((code, text)) => self.reply(code, &text).await,
                Err(_) => self.reply(550, "Requested action not taken.").await,
            },
            Err(e) => self.refuse(e).await,
        }
    }

    /// PASV (IPv4 only, its reply naming the address) or EPSV (RFC 2428: the port only,
    /// the client connecting to the address it reached us on), listening on the control
    /// connection's own local address. A new one replaces one not used.
    async fn passive(&mut self, verb: &str) -> io::Result<()> {
        let ip = self.out.local_addr()?.ip();
        let v4 = match ip {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        };
        if verb == "PASV" && v4.is_none() {
            return self.reply(522, "PASV is IPv4 only: use EPSV.").await;
        }
        let listener = match TcpListener::bind((ip, 0)).await {
            Ok(l) => l,
            Err(_) => return self.reply(425, "Cannot open passive connection.").await,
        };
        let port = listener.local_addr()?.port();
        self.passive = Some(listener);
        match v4 {
            Some(v4) if verb == "PASV" => {
                let [a, b, c, d] = v4.octets();
                let (p1, p2) = (port >> 8, port & 0xff);
                let text = format!("Entering Passive Mode ({a},{b},{c},{d},{p1},{p2}).");
                self.reply(227, &text).await
            }
            _ => {
                let text = format!("Entering Extended Passive Mode (|||{port}|).");
                self.reply(229, &text).await
            }
        }
    }

    async fn transfer_command(&mut self, verb: &str, arg: &str) -> io::Result<()> {
        if self.transfer.is_some() {
            return self.reply(425, "A transfer is already in progress.").await;
        }
        let rest = std::mem::take(&mut self.rest);
        // LIST's flags (`-la`) are no path.
        let arg = if verb == "LIST" && arg.starts_with('-') {
            ""
        } else {
            arg
        };
        if arg.is_empty() && matches!(verb, "RETR" | "STOR") {
            return self.reply(501, "Syntax error in parameters.").await;
        }
        let (_, real) = match self.resolve(arg).await {
            Ok(p) => p,
            Err(e) => return self.refuse(e).await,
        };
        let job = match transfer::prepare(verb, real, rest).await {
            Ok(job) => job,
            Err(e) => return self.reply(550, &format!("Failed to open: {e}.")).await,
        };
        let Some(listener) = self.passive.take() else {
            return self.reply(425, "Use PASV first.").await;
        };
        let accept_for = self.shared.config.data_accept;
        let data = match timeout(accept_for, listener.accept()).await {
            Ok(Ok((data, _))) => data,
            Ok(Err(e)) => {
                return self
                    .reply(425, &format!("Can't open data connection: {e}."))
                    .await
            }
            Err(_) => {
                return self
                    .reply(425, "Can't open data connection: none came in time.")
                    .await
            }
        };
        drop(listener);
        let what = match &job {
            Job::List(_) => "Here comes the directory listing.".to_string(),
            Job::Retr { len, offset, .. } => {
                format!(
                    "Opening BINARY mode data connection ({} bytes).",
                    len - offset
                )
            }
            Job::Stor { .. } => "Ok to send data.".to_string(),
        };
        self.reply(150, &what).await?;
        self.transfer = Some(Transfer::spawn(job, data, Rc::clone(self.shared)));
        Ok(())
    }
}
