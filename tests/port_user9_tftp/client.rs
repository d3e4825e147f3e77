//! The client: a request to the server's port, then the lock-step with the TID that
//! answers, over a socket connected to it.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use overlap::net::UdpSocket;
use overlap::time::timeout;

use crate::link::{Counters, Fail, Link, Step};
use crate::wire::{self, Packet, Request};

pub struct Client {
    pub server: SocketAddr,
    pub timeout: Duration,
    pub retries: u32,
    /// The blksize option asked for (`None`: plain RFC 1350, 512-byte blocks).
    pub blksize: Option<usize>,
    /// Ask for (or announce) the transfer size.
    pub tsize: bool,
    /// Drop every n-th DATA or ACK sent or received, on purpose.
    pub lossy: Option<u32>,
    pub counters: Counters,
}

impl Client {
    pub fn new(server: SocketAddr) -> Client {
        Client {
            server,
            timeout: Duration::from_millis(500),
            retries: 5,
            blksize: None,
            tsize: false,
            lossy: None,
            counters: Counters::default(),
        }
    }

    fn request(&self, file: &str, size: Option<usize>) -> Request {
        let mut options = Vec::new();
        if let Some(b) = self.blksize {
            options.push(("blksize".into(), b.to_string()));
        }
        if self.tsize {
            options.push(("tsize".into(), size.unwrap_or(0).to_string()));
        }
        Request {
            file: file.into(),
            mode: "octet".into(),
            options,
        }
    }

    /// Sends the request until a first answer comes, from the transfer's TID, and connects
    /// to that TID: the kernel then drops datagrams from anywhere else.
    async fn open(&self, req: &[u8], buf: &mut [u8]) -> Result<(UdpSocket, Packet), Fail> {
        let local = if self.server.is_ipv4() {
            "127.0.0.1:0"
        } else {
            "[::1]:0"
        };
        let sock = UdpSocket::bind(local).await?;
        for _ in 0..=self.retries {
            sock.send_to(req, self.server).await?;
            let Ok(got) = timeout(self.timeout, sock.recv_from(buf)).await else {
                continue;
            };
            let (n, tid) = got?;
            if tid.ip() != self.server.ip() {
                continue;
            }
            sock.connect(tid).await?;
            return match wire::parse(&buf[..n]) {
                Ok(Packet::Error(code, msg)) => Err(Fail::Remote(code, msg)),
                Ok(p) => Ok((sock, p)),
                Err(why) => Err(Fail::Illegal(why.into())),
            };
        }
        Err(Fail::TimedOut)
    }

    fn link<'a>(&'a self, sock: &'a UdpSocket) -> Link<'a> {
        let tid = sock.peer_addr().unwrap();
        let mut link = Link::new(sock, tid, self.timeout, self.retries, &self.counters);
        link.lossy = self.lossy;
        link
    }

    /// The block size the OACK agreed to, and the size it told.
    fn agreed(&self, opts: &[(String, String)]) -> Result<(usize, Option<usize>), Fail> {
        let blksize = match wire::option(opts, "blksize") {
            Some(v) => match v.parse::<usize>() {
                Ok(b) if b >= wire::MIN_BLKSIZE && Some(b) <= self.blksize => b,
                _ => return Err(Fail::Illegal(format!("blksize {v} not asked for"))),
            },
            None => wire::DEFAULT_BLKSIZE,
        };
        let tsize = wire::option(opts, "tsize").and_then(|v| v.parse().ok());
        Ok((blksize, tsize))
    }

    /// Downloads `file`.
    pub async fn get(&self, file: &str) -> Result<Vec<u8>, Fail> {
        let req = wire::encode(&Packet::Rrq(self.request(file, None)));
        let mut buf = vec![0u8; 4 + self.blksize.unwrap_or(512).max(512) + 1];
        let (sock, first) = self.open(&req, &mut buf).await?;
        let link = self.link(&sock);
        let (blksize, mut pending, mut out, tsize) = match first {
            Packet::Oack(opts) => {
                let (blksize, tsize) = self.agreed(&opts)?;
                (blksize, None, wire::encode(&Packet::Ack(0)), tsize)
            }
            Packet::Data(1, d) => (wire::DEFAULT_BLKSIZE, Some(d), Vec::new(), None),
            p => return Err(Fail::Illegal(format!("{p:?} answering a RRQ"))),
        };
        let mut data = Vec::new();
        let mut expected: u16 = 1;
        loop {
            let block = match pending.take() {
                Some(d) => d,
                None => {
                    link.exchange(&out, &mut buf, |p| match p {
                        Packet::Data(b, d) if b == expected => Step::Done(d),
                        // Our last ACK was lost: the block before came again.
                        Packet::Data(b, _) if b == expected.wrapping_sub(1) => Step::Resend,
                        Packet::Oack(_) if expected == 1 => Step::Resend,
                        Packet::Data(..) => Step::Stale,
                        p => Step::Illegal(format!("{p:?} where DATA {expected} was due")),
                    })
                    .await?
                }
            };
            if block.len() > blksize {
                return Err(Fail::Illegal("a block past the agreed size".into()));
            }
            data.extend_from_slice(&block);
            out = wire::encode(&Packet::Ack(expected));
            if block.len() < blksize {
                link.send(&out).await?;
                link.dally(&out, expected, &mut buf).await;
                break;
            }
            expected = expected.wrapping_add(1);
        }
        if tsize.is_some_and(|t| t != data.len()) {
            let msg = format!("{} bytes where tsize said {tsize:?}", data.len());
            return Err(Fail::Io(io::Error::new(io::ErrorKind::InvalidData, msg)));
        }
        Ok(data)
    }

    /// Uploads `data` as `file`.
    pub async fn put(&self, file: &str, data: &[u8]) -> Result<(), Fail> {
        let req = wire::encode(&Packet::Wrq(self.request(file, Some(data.len()))));
        let mut buf = vec![0u8; 4 + wire::DEFAULT_BLKSIZE + 1];
        let (sock, first) = self.open(&req, &mut buf).await?;
        let link = self.link(&sock);
        let blksize = match first {
            Packet::Oack(opts) => self.agreed(&opts)?.0,
            Packet::Ack(0) => wire::DEFAULT_BLKSIZE,
            p => return Err(Fail::Illegal(format!("{p:?} answering a WRQ"))),
        };
        let mut block: u16 = 1;
        let mut chunks = data.chunks(blksize);
        loop {
            let chunk = chunks.next().unwrap_or(&[]);
            let out = wire::encode(&Packet::Data(block, chunk.to_vec()));
            link.exchange(&out, &mut buf, |p| match p {
                Packet::Ack(b) if b == block => Step::Done(()),
                Packet::Ack(_) | Packet::Oack(_) => Step::Stale,
                p => Step::Illegal(format!("{p:?} where ACK {block} was due")),
            })
            .await?;
            if chunk.len() < blksize {
                return Ok(());
            }
            block = block.wrapping_add(1);
        }
    }
}
