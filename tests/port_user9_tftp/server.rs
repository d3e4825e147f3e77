//! The server: requests on one UDP port, each transfer on an ephemeral socket of its own
//! (its TID), files served from and written into one directory with `overlap::fs`.

use std::cell::{Cell, RefCell};
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use overlap::fs::{self, File};
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::UdpSocket;
use overlap::task::{JoinHandle, JoinSet};

use crate::link::{bump, Counters, Fail, Link, Step};
use crate::wire::{self, Packet, Request};

/// The longest request taken: a file name, a mode and a few options fit well within.
pub const MAX_REQUEST: usize = 512;

pub struct Config {
    /// The address served on (port 0: any free one); transfers take ports on its IP.
    pub ip: &'static str,
    pub root: PathBuf,
    pub timeout: Duration,
    pub retries: u32,
    pub max_blksize: usize,
    /// The type of service of the transfers' datagrams (bulk data: `IPTOS_THROUGHPUT`).
    pub tos: u32,
    /// Uploads announcing a larger `tsize` are refused with ERROR 3 at once.
    pub max_upload: u64,
}

impl Config {
    pub fn new(root: &Path) -> Config {
        Config {
            ip: "127.0.0.1",
            root: root.to_path_buf(),
            timeout: Duration::from_millis(500),
            retries: 5,
            max_blksize: wire::MAX_BLKSIZE,
            tos: 0x08,
            max_upload: 64 << 20,
        }
    }
}

#[derive(Default)]
pub struct Stats {
    pub completed: Cell<u32>,
    pub failed: Cell<u32>,
    pub too_long: Cell<u32>,
    /// How each failed transfer ended, for the tests to read.
    pub failures: RefCell<Vec<String>>,
    /// The TIDs of transfers in progress, in the order they started.
    pub tids: RefCell<Vec<SocketAddr>>,
}

struct Ctx {
    config: Config,
    stats: Rc<Stats>,
    counters: Rc<Counters>,
    next_temp: Cell<u32>,
}

pub struct Server {
    pub addr: SocketAddr,
    pub stats: Rc<Stats>,
    pub counters: Rc<Counters>,
    task: JoinHandle<()>,
}

impl Drop for Server {
    /// Aborts the request loop, and with its `JoinSet` every transfer.
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub async fn start(config: Config) -> Server {
        let sock = UdpSocket::bind((config.ip, 0)).await.unwrap();
        let addr = sock.local_addr().unwrap();
        let ctx = Rc::new(Ctx {
            config,
            stats: Rc::default(),
            counters: Rc::default(),
            next_temp: Cell::new(0),
        });
        let (stats, counters) = (ctx.stats.clone(), ctx.counters.clone());
        let task = overlap::spawn(serve(sock, ctx));
        Server {
            addr,
            stats,
            counters,
            task,
        }
    }
}

async fn serve(sock: UdpSocket, ctx: Rc<Ctx>) {
    let mut transfers = JoinSet::new();
    let mut buf = [0u8; MAX_REQUEST];
    loop {
        while transfers.try_join_next().is_some() {}
        // The whole length first: a request longer than the buffer is refused, not read
        // cut short as if it ended there.
        let len = match sock.next_datagram_len().await {
            Ok(len) => len,
            Err(_) => continue,
        };
        let Ok((n, from)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        if len > MAX_REQUEST {
            bump(&ctx.stats.too_long);
            let _ = sock
                .send_to(&wire::error(wire::ILLEGAL, "request too long"), from)
                .await;
            continue;
        }
        match wire::parse(&buf[..n]) {
            Ok(Packet::Rrq(req)) => {
                transfers.spawn(transfer(ctx.clone(), req, from, false));
            }
            Ok(Packet::Wrq(req)) => {
                transfers.spawn(transfer(ctx.clone(), req, from, true));
            }
            // A stray packet to the request port: not a transfer of ours.
            Ok(_) => {
                let msg = wire::error(wire::UNKNOWN_TID, "no transfer on this port");
                let _ = sock.send_to(&msg, from).await;
            }
            Err(why) => {
                let _ = sock.send_to(&wire::error(wire::ILLEGAL, why), from).await;
            }
        }
    }
}

async fn transfer(ctx: Rc<Ctx>, req: Request, peer: SocketAddr, write: bool) {
    let res: Result<(), Fail> = async {
        let sock = UdpSocket::bind((ctx.config.ip, 0)).await?;
        // On IPv6, the traffic class: IP_TOS alone would leave it 0.
        sock.set_tos(ctx.config.tos)?;
        let tid = sock.local_addr()?;
        ctx.stats.tids.borrow_mut().push(tid);
        let c = &ctx.config;
        let link = Link::new(&sock, peer, c.timeout, c.retries, &ctx.counters);
        let res = if write {
            receive_file(&ctx, &link, &req).await
        } else {
            send_file(&ctx, &link, &req).await
        };
        ctx.stats.tids.borrow_mut().retain(|t| *t != tid);
        res
    }
    .await;
    match res {
        Ok(()) => bump(&ctx.stats.completed),
        Err(fail) => {
            bump(&ctx.stats.failed);
            let what = format!(
                "{} {}: {fail:?}",
                if write { "WRQ" } else { "RRQ" },
                req.file
            );
            ctx.stats.failures.borrow_mut().push(what);
        }
    }
}

/// Sends ERROR to the peer and ends the transfer.
async fn refuse(link: &Link<'_>, code: u16, msg: &str) -> Fail {
    link.send_error(code, msg).await;
    Fail::Refused(code, msg.to_string())
}

/// The path under the root a request names, or `None` for one that would leave it or
/// name a hidden (temporary) file.
fn resolve(root: &Path, name: &str) -> Option<PathBuf> {
    let path = Path::new(name);
    let plain = path.components().all(|c| match c {
        Component::Normal(s) => !s.to_string_lossy().starts_with('.'),
        _ => false,
    });
    (plain && !name.is_empty()).then(|| root.join(path))
}

/// The agreed block size and the OACK's options (empty: no OACK, plain RFC 1350).
fn negotiate(c: &Config, req: &Request, tsize: Option<u64>) -> (usize, Vec<(String, String)>) {
    let mut oack = Vec::new();
    let mut blksize = wire::DEFAULT_BLKSIZE;
    if let Some(asked) = req.option("blksize").and_then(|v| v.parse::<usize>().ok()) {
        if asked >= wire::MIN_BLKSIZE {
            blksize = asked.min(c.max_blksize);
            oack.push(("blksize".into(), blksize.to_string()));
        }
    }
    if let Some(v) = req.option("tsize") {
        // In a RRQ the server tells the size; in a WRQ it echoes the client's.
        let v = tsize.map_or(v.to_string(), |t| t.to_string());
        oack.push(("tsize".into(), v));
    }
    (blksize, oack)
}

fn io_refusal(e: &io::Error) -> (u16, &'static str) {
    match e.kind() {
        ErrorKind::NotFound => (wire::NOT_FOUND, "file not found"),
        ErrorKind::PermissionDenied => (wire::ACCESS, "access violation"),
        ErrorKind::StorageFull | ErrorKind::FileTooLarge | ErrorKind::QuotaExceeded => {
            (wire::DISK_FULL, "disk full or allocation exceeded")
        }
        ErrorKind::AlreadyExists => (wire::EXISTS, "file already exists"),
        _ => (wire::NOT_DEFINED, "i/o error"),
    }
}

/// A RRQ: the file in blocks, each sent until its ACK comes.
async fn send_file(ctx: &Ctx, link: &Link<'_>, req: &Request) -> Result<(), Fail> {
    if req.mode != "octet" {
        return Err(refuse(link, wire::ILLEGAL, "only octet mode is served").await);
    }
    let Some(path) = resolve(&ctx.config.root, &req.file) else {
        return Err(refuse(link, wire::ACCESS, "access violation").await);
    };
    // O_NONBLOCK: the open of a FIFO would otherwise wait, on a pool thread, for a writer
    // that may never come; it is refused below as no regular file. (A regular file
    // ignores the flag.)
    let mut opts = fs::OpenOptions::new();
    opts.read(true).custom_flags(libc::O_NONBLOCK);
    let mut file = match opts.open(&path).await {
        Ok(f) => f,
        Err(e) => {
            let (code, msg) = io_refusal(&e);
            return Err(refuse(link, code, msg).await);
        }
    };
    let meta = file.metadata().await?;
    if !meta.is_file() {
        return Err(refuse(link, wire::NOT_FOUND, "not a regular file").await);
    }
    let (blksize, oack) = negotiate(&ctx.config, req, Some(meta.len()));
    // ACKs are 4 bytes; an ERROR with its text is longer.
    let mut buf = vec![0u8; 4 + wire::DEFAULT_BLKSIZE + 1];
    if !oack.is_empty() {
        let out = wire::encode(&Packet::Oack(oack));
        link.exchange(&out, &mut buf, |p| match p {
            Packet::Ack(0) => Step::Done(()),
            Packet::Ack(_) => Step::Stale,
            p => Step::Illegal(format!("{p:?} where ACK 0 was due")),
        })
        .await?;
    }
    let mut block: u16 = 1;
    let mut chunk = vec![0u8; blksize];
    loop {
        let n = read_block(&mut file, &mut chunk).await?;
        let out = wire::encode(&Packet::Data(block, chunk[..n].to_vec()));
        link.exchange(&out, &mut buf, |p| match p {
            Packet::Ack(b) if b == block => Step::Done(()),
            // A duplicate ACK: never answered (no Sorcerer's Apprentice).
            Packet::Ack(_) => Step::Stale,
            p => Step::Illegal(format!("{p:?} where ACK {block} was due")),
        })
        .await?;
        if n < blksize {
            return Ok(());
        }
        // Past 65535 the block number wraps to 0, as most implementations do.
        block = block.wrapping_add(1);
    }
}

/// Fills `chunk` from `file`, short only at its end.
async fn read_block(file: &mut File, chunk: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < chunk.len() {
        match file.read(&mut chunk[n..]).await? {
            0 => break,
            got => n += got,
        }
    }
    Ok(n)
}

/// A temporary upload, removed unless renamed into place (also when the transfer's task is
/// aborted with the server).
struct Temp(Option<PathBuf>);

impl Drop for Temp {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A WRQ: blocks written to a temporary file, renamed into place on the last.
async fn receive_file(ctx: &Ctx, link: &Link<'_>, req: &Request) -> Result<(), Fail> {
    if req.mode != "octet" {
        return Err(refuse(link, wire::ILLEGAL, "only octet mode is served").await);
    }
    let Some(path) = resolve(&ctx.config.root, &req.file) else {
        return Err(refuse(link, wire::ACCESS, "access violation").await);
    };
    match fs::try_exists(&path).await {
        Ok(false) => {}
        Ok(true) => return Err(refuse(link, wire::EXISTS, "file already exists").await),
        // A name through a regular file ("file/x"), say: refused, never left unanswered.
        Err(e) => {
            let (code, msg) = io_refusal(&e);
            return Err(refuse(link, code, msg).await);
        }
    }
    let announced = req.option("tsize").and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|t| t > ctx.config.max_upload) {
        return Err(refuse(link, wire::DISK_FULL, "larger than this server takes").await);
    }
    let n = ctx.next_temp.get();
    ctx.next_temp.set(n + 1);
    let name = path.file_name().unwrap().to_string_lossy();
    let temp = path.with_file_name(format!(".{name}.{n}.part"));
    let mut file = match File::create_new(&temp).await {
        Ok(f) => f,
        Err(e) => {
            let (code, msg) = io_refusal(&e);
            return Err(refuse(link, code, msg).await);
        }
    };
    let mut guard = Temp(Some(temp.clone()));
    let (blksize, oack) = negotiate(&ctx.config, req, None);
    let mut out = if oack.is_empty() {
        wire::encode(&Packet::Ack(0))
    } else {
        wire::encode(&Packet::Oack(oack))
    };
    let mut buf = vec![0u8; 4 + blksize + 1];
    let mut expected: u16 = 1;
    loop {
        let data = link
            .exchange(&out, &mut buf, |p| match p {
                Packet::Data(b, d) if b == expected => Step::Done(d),
                // Our ACK was lost and the block came again.
                Packet::Data(b, _) if b == expected.wrapping_sub(1) => Step::Resend,
                Packet::Data(..) => Step::Stale,
                p => Step::Illegal(format!("{p:?} where DATA {expected} was due")),
            })
            .await?;
        let last = data.len() < blksize;
        let written = async {
            file.write_all(&data).await?;
            if last {
                // A refused write shows here at the latest: the writes only buffered.
                file.flush().await?;
            }
            io::Result::Ok(())
        };
        if let Err(e) = written.await {
            let (code, msg) = io_refusal(&e);
            return Err(refuse(link, code, msg).await);
        }
        out = wire::encode(&Packet::Ack(expected));
        if last {
            drop(file);
            fs::rename(&temp, &path).await?;
            guard.0 = None;
            link.send(&out).await?;
            link.dally(&out, expected, &mut buf).await;
            return Ok(());
        }
        expected = expected.wrapping_add(1);
    }
}
