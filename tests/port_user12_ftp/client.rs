//! The tests' FTP client: commands on the control connection, replies read whole
//! (multi-line ones to their `code ` line), PASV's address parsed, and the data
//! connection's bytes.

use std::net::SocketAddr;

use overlap::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use overlap::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use overlap::net::TcpStream;

/// A reply: its code and every line of it (without CRLF).
#[derive(Debug)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// The text of the last line, after the code.
    pub fn text(&self) -> &str {
        &self.lines.last().unwrap()[4..]
    }
}

pub struct Client {
    input: BufReader<OwnedReadHalf>,
    out: OwnedWriteHalf,
    /// The greeting's code (220, or 421 when the server was full).
    pub greeting: Reply,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (input, out) = stream.into_split();
        let mut input = BufReader::new(input);
        let greeting = read_reply(&mut input).await.expect("a greeting");
        Client {
            input,
            out,
            greeting,
        }
    }

    /// Connects and logs in with the test account.
    pub async fn login(addr: SocketAddr) -> Client {
        let mut c = Client::connect(addr).await;
        assert_eq!(c.greeting.code, 220, "{:?}", c.greeting);
        assert_eq!(c.cmd("USER alice").await.code, 331);
        assert_eq!(c.cmd("PASS wonderland").await.code, 230);
        c
    }

    /// Sends `line` (CRLF added) and reads the reply.
    pub async fn cmd(&mut self, line: &str) -> Reply {
        self.send(line).await;
        self.reply().await
    }

    pub async fn send(&mut self, line: &str) {
        self.out
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
    }

    /// ABOR as BSD ftp(1) sends it: Telnet's Interrupt Process (`IAC IP`), then `IAC`
    /// sent as TCP urgent data (the Synch), then the Data Mark (`DM`) and the command.
    /// Without `SO_OOBINLINE` the server reads `IAC IP DM ABOR`, the urgent byte taken out
    /// of the stream, and a read stops at the urgent mark.
    pub async fn send_abor_with_synch(&mut self) {
        use std::os::fd::AsRawFd;
        self.out.write_all(&[0xff, 0xf4]).await.unwrap();
        super::support::send_urgent(self.out.as_raw_fd(), 0xff);
        self.out.write_all(b"\xf2ABOR\r\n").await.unwrap();
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.out.write_all(bytes).await.unwrap();
    }

    pub async fn reply(&mut self) -> Reply {
        read_reply(&mut self.input).await.expect("a reply")
    }

    /// Whether the server closed the control connection (end of file, nothing unread).
    pub async fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        matches!(self.input.read_to_end(&mut rest).await, Ok(0))
    }

    /// PASV, then a connection to the port it names.
    pub async fn pasv(&mut self) -> TcpStream {
        let addr = self.pasv_addr().await;
        TcpStream::connect(addr).await.unwrap()
    }

    /// The data address: PASV's over IPv4, EPSV's (the port, at the server's address)
    /// over IPv6.
    pub async fn pasv_addr(&mut self) -> SocketAddr {
        let server = self.out.peer_addr().unwrap();
        if server.is_ipv6() {
            let r = self.cmd("EPSV").await;
            assert_eq!(r.code, 229, "{r:?}");
            let port = r.text().split('|').nth(3).unwrap().parse().unwrap();
            return SocketAddr::new(server.ip(), port);
        }
        let r = self.cmd("PASV").await;
        assert_eq!(r.code, 227, "{r:?}");
        parse_pasv(r.text())
    }

    /// RETR (after `REST offset`, if not 0), the bytes read to the data connection's end.
    pub async fn retr(&mut self, name: &str, offset: u64) -> Vec<u8> {
        let mut data = self.pasv().await;
        if offset > 0 {
            assert_eq!(self.cmd(&format!("REST {offset}")).await.code, 350);
        }
        let r = self.cmd(&format!("RETR {name}")).await;
        assert_eq!(r.code, 150, "{r:?}");
        let mut got = Vec::new();
        data.read_to_end(&mut got).await.unwrap();
        let r = self.reply().await;
        assert_eq!(r.code, 226, "{r:?}");
        got
    }

    /// STOR of `bytes`, the data connection closed after them.
    pub async fn stor(&mut self, name: &str, bytes: &[u8]) -> Reply {
        let mut data = self.pasv().await;
        let r = self.cmd(&format!("STOR {name}")).await;
        assert_eq!(r.code, 150, "{r:?}");
        data.write_all(bytes).await.unwrap();
        data.close().await.unwrap();
        drop(data);
        self.reply().await
    }

    /// LIST's text.
    pub async fn list(&mut self, arg: &str) -> String {
        let mut data = self.pasv().await;
        let r = self.cmd(format!("LIST {arg}").trim_end()).await;
        assert_eq!(r.code, 150, "{r:?}");
        let mut text = String::new();
        data.read_to_string(&mut text).await.unwrap();
        assert_eq!(self.reply().await.code, 226);
        text
    }

    pub async fn quit(mut self) {
        assert_eq!(self.cmd("QUIT").await.code, 221);
        assert!(self.closed().await);
    }
}

/// One reply: a `NNN text` line, or `NNN-` lines up to the `NNN ` one. `None` at end of
/// file.
pub async fn read_reply(input: &mut BufReader<OwnedReadHalf>) -> Option<Reply> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if input.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        assert!(
            line.ends_with("\r\n"),
            "a reply line ends in CRLF: {line:?}"
        );
        line.truncate(line.len() - 2);
        let first = lines.is_empty();
        lines.push(line);
        let head = &lines[0];
        let code: u16 = head.get(..3)?.parse().ok()?;
        let last = lines.last().unwrap();
        let single = first && head.as_bytes().get(3) == Some(&b' ');
        let end = !first && last.starts_with(&format!("{code} "));
        if single || end {
            return Some(Reply { code, lines });
        }
        assert!(first || !last.starts_with(&format!("{code}-")), "{lines:?}");
        assert!(!first || head.as_bytes().get(3) == Some(&b'-'), "{head:?}");
    }
}

/// `Entering Passive Mode (h1,h2,h3,h4,p1,p2).`'s address.
pub fn parse_pasv(text: &str) -> SocketAddr {
    let inner = &text[text.find('(').unwrap() + 1..text.find(')').unwrap()];
    let n: Vec<u16> = inner.split(',').map(|x| x.parse().unwrap()).collect();
    assert_eq!(n.len(), 6, "{text}");
    let ip = std::net::Ipv4Addr::new(n[0] as u8, n[1] as u8, n[2] as u8, n[3] as u8);
    assert!(ip.is_loopback());
    SocketAddr::from((ip, n[4] << 8 | n[5]))
}
