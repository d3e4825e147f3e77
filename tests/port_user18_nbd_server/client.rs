//! The test's NBD client: the handshake (`Negotiator`: LIST, INFO, GO, EXPORT_NAME,
//! ABORT, or any option raw), then the transmission phase (`Client`): requests written
//! whole under a lock by any number of tasks, and a reader task that hands each reply to
//! whoever asked by its handle (a simple reply has no length: the READ's own length says
//! how much data follows), noting the order replies came in.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::rc::Rc;

use overlap::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use overlap::sync::{oneshot, Mutex};
use overlap::task::AbortOnDropHandle;

use super::proto::*;

/// An option's error reply: its type and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptError {
    pub ty: u32,
    pub msg: String,
}

/// What NBD_REP_INFO said about an export (and what EXPORT_NAME's reply says).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Info {
    pub size: u64,
    pub flags: u16,
    pub name: Option<String>,
    /// Minimum, preferred and maximum block size.
    pub block_size: Option<(u32, u32, u32)>,
}

/// The client's side of the handshake.
pub struct Negotiator<S> {
    pub s: S,
    pub handshake_flags: u16,
}

impl<S: AsyncRead + AsyncWrite + Unpin + 'static> Negotiator<S> {
    /// Reads the greeting and answers with `client_flags`.
    pub async fn start(mut s: S, client_flags: u32) -> io::Result<Negotiator<S>> {
        let mut g = [0u8; 18];
        s.read_exact(&mut g).await?;
        assert_eq!(g[..8], NBDMAGIC.to_be_bytes(), "NBDMAGIC");
        assert_eq!(g[8..16], IHAVEOPT.to_be_bytes(), "IHAVEOPT");
        s.write_all(&client_flags.to_be_bytes()).await?;
        let handshake_flags = u16::from_be_bytes([g[16], g[17]]);
        Ok(Negotiator { s, handshake_flags })
    }

    /// Sends an option and reads its replies up to the last (an ACK or an error):
    /// `(type, data)` each.
    pub async fn option(&mut self, opt: u32, data: &[u8]) -> io::Result<Vec<(u32, Vec<u8>)>> {
        self.s.write_all(&encode_option(opt, data)).await?;
        let mut replies = Vec::new();
        loop {
            let mut head = [0u8; OPTION_REPLY_HEADER_LEN];
            self.s.read_exact(&mut head).await?;
            let (magic, echoed, ty, len) = parse_option_reply(&head);
            assert_eq!(
                (magic, echoed),
                (OPT_REPLY_MAGIC, opt),
                "option reply header"
            );
            let mut data = vec![0u8; len as usize];
            self.s.read_exact(&mut data).await?;
            let last = ty == REP_ACK || ty & (1 << 31) != 0;
            replies.push((ty, data));
            if last {
                return Ok(replies);
            }
        }
    }

    /// The replies, or the error that ended them.
    async fn ask(&mut self, opt: u32, data: &[u8]) -> Result<Vec<(u32, Vec<u8>)>, OptError> {
        let mut replies = self.option(opt, data).await.expect("option replies");
        match replies.pop() {
            Some((REP_ACK, _)) => Ok(replies),
            Some((ty, msg)) => Err(OptError {
                ty,
                msg: String::from_utf8_lossy(&msg).into_owned(),
            }),
            None => unreachable!(),
        }
    }

    pub async fn list(&mut self) -> Result<Vec<String>, OptError> {
        let replies = self.ask(OPT_LIST, &[]).await?;
        Ok(replies
            .into_iter()
            .map(|(ty, d)| {
                assert_eq!(ty, REP_SERVER);
                let n = u32::from_be_bytes(d[..4].try_into().unwrap()) as usize;
                String::from_utf8(d[4..4 + n].to_vec()).unwrap()
            })
            .collect())
    }

    /// NBD_OPT_INFO (`go` false) or NBD_OPT_GO for `name`, asking for `infos`.
    pub async fn info(&mut self, go: bool, name: &str, infos: &[u16]) -> Result<Info, OptError> {
        let opt = if go { OPT_GO } else { OPT_INFO };
        let mut info = Info::default();
        for (ty, d) in self.ask(opt, &encode_go(name, infos)).await? {
            assert_eq!(ty, REP_INFO);
            let be32 = |i: usize| u32::from_be_bytes(d[i..i + 4].try_into().unwrap());
            match u16::from_be_bytes([d[0], d[1]]) {
                INFO_EXPORT => {
                    info.size = u64::from_be_bytes(d[2..10].try_into().unwrap());
                    info.flags = u16::from_be_bytes([d[10], d[11]]);
                }
                INFO_NAME => info.name = Some(String::from_utf8(d[2..].to_vec()).unwrap()),
                INFO_BLOCK_SIZE => info.block_size = Some((be32(2), be32(6), be32(10))),
                other => panic!("unasked information {other}"),
            }
        }
        Ok(info)
    }

    /// NBD_OPT_GO, then the transmission phase.
    pub async fn go(mut self, name: &str) -> Result<(Rc<Client>, Info), OptError> {
        let info = self.info(true, name, &[]).await?;
        Ok((Client::new(self.s), info))
    }

    /// NBD_OPT_EXPORT_NAME: the size and flags (and the 124 zeros unless NO_ZEROES was
    /// agreed), then the transmission phase.
    pub async fn export_name(mut self, name: &str, zeroes: bool) -> io::Result<(Rc<Client>, Info)> {
        let opt = encode_option(OPT_EXPORT_NAME, name.as_bytes());
        self.s.write_all(&opt).await?;
        let mut d = vec![0u8; if zeroes { 10 + 124 } else { 10 }];
        self.s.read_exact(&mut d).await?;
        assert!(d[10..].iter().all(|&b| b == 0));
        let info = Info {
            size: u64::from_be_bytes(d[..8].try_into().unwrap()),
            flags: u16::from_be_bytes([d[8], d[9]]),
            ..Info::default()
        };
        Ok((Client::new(self.s), info))
    }
}

/// Why a request got no data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fail {
    /// The server's error value.
    Errno(u32),
    /// The connection ended first.
    Lost,
}

type Answer = Result<Vec<u8>, Fail>;

/// Requests waiting for replies: the data length a reply brings, and who to tell.
type Pending = Rc<RefCell<HashMap<u64, (u32, oneshot::Sender<Answer>)>>>;

pub struct Client {
    wr: Mutex<Pin<Box<dyn AsyncWrite>>>,
    pending: Pending,
    next_handle: Cell<u64>,
    /// Reply handles in the order they arrived.
    pub arrivals: Rc<RefCell<Vec<u64>>>,
    reader: AbortOnDropHandle<()>,
}

impl Client {
    pub fn new<S: AsyncRead + AsyncWrite + 'static>(stream: S) -> Rc<Client> {
        let (rd, wr) = overlap::io::split(stream);
        let pending = Pending::default();
        let arrivals = Rc::<RefCell<Vec<u64>>>::default();
        let reader = overlap::spawn(read_replies(rd, pending.clone(), arrivals.clone()));
        Rc::new(Client {
            wr: Mutex::new(Box::pin(wr)),
            pending,
            next_handle: Cell::new(0x1000),
            arrivals,
            reader: AbortOnDropHandle::new(reader),
        })
    }

    /// Sends one request (and a WRITE's payload) and waits for its reply.
    pub async fn request(
        &self,
        ty: u16,
        flags: u16,
        offset: u64,
        len: u32,
        payload: &[u8],
    ) -> Answer {
        let handle = self.next_handle.get();
        self.next_handle.set(handle + 1);
        let (tx, rx) = oneshot::channel();
        let data_len = if ty == CMD_READ { len } else { 0 };
        self.pending.borrow_mut().insert(handle, (data_len, tx));
        let req = Request {
            flags,
            ty,
            handle,
            offset,
            len,
        };
        {
            let mut wr = self.wr.lock().await;
            let sent = async {
                wr.write_all(&req.encode()).await?;
                wr.write_all(payload).await
            };
            if sent.await.is_err() {
                self.pending.borrow_mut().remove(&handle);
                return Err(Fail::Lost);
            }
        }
        rx.await.unwrap_or(Err(Fail::Lost))
    }

    pub async fn read(&self, offset: u64, len: u32) -> Answer {
        self.request(CMD_READ, 0, offset, len, &[]).await
    }

    pub async fn write(&self, offset: u64, data: &[u8], flags: u16) -> Result<(), Fail> {
        let len = data.len() as u32;
        self.request(CMD_WRITE, flags, offset, len, data)
            .await
            .map(drop)
    }

    pub async fn flush(&self) -> Result<(), Fail> {
        self.request(CMD_FLUSH, 0, 0, 0, &[]).await.map(drop)
    }

    pub async fn trim(&self, offset: u64, len: u32) -> Result<(), Fail> {
        self.request(CMD_TRIM, 0, offset, len, &[]).await.map(drop)
    }

    pub async fn write_zeroes(&self, offset: u64, len: u32, flags: u16) -> Result<(), Fail> {
        self.request(CMD_WRITE_ZEROES, flags, offset, len, &[])
            .await
            .map(drop)
    }

    /// Bytes as they are, for requests no well-behaved client sends.
    pub async fn send_raw(&self, bytes: &[u8]) -> io::Result<()> {
        self.wr.lock().await.write_all(bytes).await
    }

    /// NBD_CMD_DISC (no reply comes), then waits for the server to close.
    pub async fn disconnect(&self) -> io::Result<()> {
        let req = Request {
            flags: 0,
            ty: CMD_DISC,
            handle: 0,
            offset: 0,
            len: 0,
        };
        self.send_raw(&req.encode()).await
    }

    /// Whether the reader saw the server close (every request since then is `Lost`).
    pub fn closed(&self) -> bool {
        self.reader.is_finished()
    }
}

async fn read_replies<R: AsyncRead>(rd: R, pending: Pending, arrivals: Rc<RefCell<Vec<u64>>>) {
    let mut rd = Box::pin(rd);
    loop {
        let mut head = [0u8; REPLY_LEN];
        if rd.read_exact(&mut head).await.is_err() {
            break;
        }
        let (error, handle) = parse_reply(&head).expect("a simple reply's magic");
        let (len, tx) = pending
            .borrow_mut()
            .remove(&handle)
            .unwrap_or_else(|| panic!("a reply to handle {handle:#x}, never asked"));
        arrivals.borrow_mut().push(handle);
        let answer = if error != 0 {
            Err(Fail::Errno(error))
        } else {
            let mut data = vec![0u8; len as usize];
            if rd.read_exact(&mut data).await.is_err() {
                break;
            }
            Ok(data)
        };
        let _ = tx.send(answer);
    }
    // Whoever still waits learns the connection is gone.
    pending.borrow_mut().clear();
}
