//! A user's Network Block Device server: the NBD protocol as nbd-server and nbdkit speak
//! it ("newstyle fixed" handshake with NBD_OPT_EXPORT_NAME, GO, INFO, LIST and ABORT;
//! the transmission phase with simple replies), sketched as one would for tokio, then
//! written for overlap. Each export is a regular file in a temp dir, served over TCP on
//! 127.0.0.1 and over a Unix socket: the wire format in `port_user18_nbd_server/proto.rs`,
//! the handshake in `handshake.rs`, the transmission phase's reader, request tasks and
//! reply writer in `transmission.rs`, each command's work on the shared
//! `PositionalFile` in `device.rs` (READ, WRITE with FUA, FLUSH, TRIM, WRITE_ZEROES),
//! settings, accept loops and graceful shutdown in `server.rs`; the tests' NBD client in
//! `client.rs`; the tests of bad input, vanishing clients, limits and timeouts in
//! `hostile.rs`, and one against qemu-img, a real NBD client, in `interop.rs`.
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! use std::os::unix::fs::FileExt; // tokio::fs::File has no pread/pwrite
//! use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
//! use tokio::sync::{mpsc, Semaphore};
//! use tokio::task::JoinSet;
//! use tokio_util::sync::CancellationToken;
//!
//! async fn connection(mut s: TcpStream, shared: Arc<Shared>) {
//!     let hs = tokio::time::timeout(shared.cfg.handshake_timeout, negotiate(&mut s, &shared));
//!     let Ok(Ok(chosen)) = hs.await else { return };
//!     let (rd, mut wr) = s.into_split();
//!     let mut rd = BufReader::new(rd);
//!     let (tx, mut rx) = mpsc::channel::<Reply>(shared.cfg.max_in_flight);
//!     let writer = tokio::spawn(async move {
//!         while let Some(r) = rx.recv().await {
//!             wr.write_all(&r.header()).await?;
//!             wr.write_all(&r.data).await?; // r's permit dropped after it is written
//!         }
//!         wr.shutdown().await
//!     });
//!     let permits = Arc::new(Semaphore::new(shared.cfg.max_in_flight));
//!     let file = Arc::new(chosen.file); // std::fs::File
//!     let mut requests = JoinSet::new();
//!     loop {
//!         let permit = tokio::select! {
//!             p = permits.clone().acquire_owned() => p.unwrap(), // backpressure
//!             _ = shared.stop.cancelled() => break,
//!         };
//!         let mut head = [0u8; 28];
//!         if rd.read_exact(&mut head).await.is_err() { break }
//!         let req = Request::parse(&head)?;
//!         let mut payload = vec![0; if req.ty == WRITE { req.len as usize } else { 0 }];
//!         rd.read_exact(&mut payload).await?;
//!         let (file, tx) = (file.clone(), tx.clone());
//!         requests.spawn(async move {
//!             let result = tokio::task::spawn_blocking(move || match req.ty {
//!                 READ => { let mut b = vec![0; req.len as usize];
//!                           file.read_exact_at(&mut b, req.offset).map(|()| b) }
//!                 WRITE => file.write_all_at(&payload, req.offset).map(|()| vec![]),
//!                 FLUSH => file.sync_data().map(|()| vec![]),
//!                 TRIM => nix::fcntl::fallocate(file.as_raw_fd(), PUNCH_HOLE | KEEP_SIZE, ..),
//!                 // ...
//!             }).await.unwrap();
//!             let _ = tx.send(Reply::new(req.handle, result, permit)).await;
//!         });
//!     }
//!     while requests.join_next().await.is_some() {} // every request read is answered
//!     drop(tx);
//!     let _ = writer.await;
//! }
//! ```
//!
//! For overlap the export's file is one `overlap::fs::PositionalFile` per connection,
//! cloned into each request task: `read_vec_at` for a READ (the pool job's buffer is the
//! reply's data), `write_vec_at` for a WRITE (the payload moved, not copied), `sync_data`
//! for FLUSH and FUA, and `punch_hole` for TRIM and WRITE_ZEROES; the rest is
//! `io::split`, `BufReader`, `mpsc`, `Semaphore::acquire_owned`, `JoinSet`, `select!`,
//! `CancellationToken` and `time::timeout` as in tokio, `Rc` for `Arc` on the
//! single-threaded runtime.
//!
//! The tests check, with real files over a real TCP connection on 127.0.0.1 and a Unix
//! socket in a temp dir: the handshake's LIST, INFO (name, block sizes), GO and
//! EXPORT_NAME with and without the 124 zeros; 4 MiB written and read back by 64
//! pipelined requests, byte-identical; replies in completion order matched by handle
//! (the pool held so the order is sure); FUA and FLUSH each making one `fdatasync`, the
//! FLUSH's after every write answered before it; TRIM and WRITE_ZEROES freeing blocks
//! (NO_HOLE keeping them), zeros read back; each bad request's error (bounds, flags,
//! lengths, unknown commands, read-only exports) with the connection going on; garbage
//! that ends only its own connection; clients vanishing mid-request or with replies
//! pending, leaving no fd into the temp dir; the in-flight limit making the server stop
//! reading; the handshake deadline on the paused clock; a graceful shutdown answering
//! the requests in flight and flushing; and qemu-img copying an image in and out.
//!
//! What porting it found missing in overlap: a way to punch a hole. TRIM (and a
//! WRITE_ZEROES that may leave a hole) is `fallocate(FALLOC_FL_PUNCH_HOLE)`, which
//! neither tokio::fs nor overlap::fs offered (the tokio sketch calls nix inside
//! `spawn_blocking`); a user of overlap would need `unsafe` libc calls on the file's raw
//! fd in a `spawn_blocking` of their own, and writing zeros frees nothing. It was small, so `PositionalFile::punch_hole` was added in
//! its own commit (queued like a write, `Unsupported` where the file system has no holes,
//! so the server falls back to writing zeros). Otherwise nothing; for the record:
//! - A FLUSH needs no bookkeeping of its own here: a write is answered only after its
//!   `pwrite` returned, and `fdatasync` covers every `pwrite` that returned before it, so
//!   one `sync_data` started after the FLUSH was read covers what the protocol asks (and,
//!   the sync being per file, NBD_FLAG_CAN_MULTI_CONN holds). What would break it is a
//!   write-behind buffer in front of the file (overlap's `File` has one; `PositionalFile`
//!   has none), or answering a write before its job is done.
//! - The graceful shutdown waits for every request already read, and those wait for the
//!   writer: a client that stops reading while its replies are queued holds the shutdown
//!   up. A real server would add a deadline (`timeout` around the drain), as tokio's
//!   would need too.
//! - `overlap::io::copy` into `overlap::io::sink()` over `(&mut reader).take(n)` skips a
//!   refused WRITE's payload, as `tokio::io::copy` with `tokio::io::sink()` does.
//!
//! Broken on purpose: with the FLUSH's `sync_data` left out (answered at once), the
//! FUA/FLUSH test fails; so does the backpressure test with each permit dropped when its
//! request is done instead of when its reply is written.

mod support;

#[path = "port_user18_nbd_server/client.rs"]
mod client;
#[path = "port_user18_nbd_server/device.rs"]
mod device;
#[path = "port_user18_nbd_server/handshake.rs"]
mod handshake;
#[path = "port_user18_nbd_server/hostile.rs"]
mod hostile;
#[path = "port_user18_nbd_server/interop.rs"]
mod interop;
#[path = "port_user18_nbd_server/proto.rs"]
mod proto;
#[path = "port_user18_nbd_server/server.rs"]
mod server;
#[path = "port_user18_nbd_server/transmission.rs"]
mod transmission;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use overlap::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use client::{Client, Fail, Info, Negotiator};
use proto::*;
use server::{Config, End, Server};
use support::{pattern_seeded, TempDir};

const MIB: usize = 1 << 20;

/// A server on 127.0.0.1 and on a Unix socket in its own temp dir, exporting files in
/// `exports/` there.
struct Rig {
    pub dir: TempDir,
    pub server: Server,
    pub addr: std::net::SocketAddr,
    pub sock: PathBuf,
}

impl Rig {
    pub async fn new(name: &str, cfg: Config) -> Rig {
        let dir = TempDir::new(name);
        std::fs::create_dir(dir.join("exports")).unwrap();
        let mut server = Server::new(cfg);
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        server.serve_tcp(tcp);
        let sock = dir.join("nbd.sock");
        server.serve_unix(UnixListener::bind(&sock).unwrap());
        Rig {
            dir,
            server,
            addr,
            sock,
        }
    }

    /// Exports a new file of `contents` as `name`.
    pub fn export(&self, name: &str, contents: &[u8], read_only: bool) -> PathBuf {
        let path = self.dir.join("exports").join(name);
        std::fs::write(&path, contents).unwrap();
        self.server.add_export(name, &path, read_only);
        path
    }

    pub async fn tcp(&self) -> Negotiator<TcpStream> {
        let s = TcpStream::connect(self.addr).await.unwrap();
        Negotiator::start(s, FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES)
            .await
            .unwrap()
    }

    pub async fn unix(&self) -> Negotiator<UnixStream> {
        let s = UnixStream::connect(&self.sock).await.unwrap();
        Negotiator::start(s, FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES)
            .await
            .unwrap()
    }

    /// A client in the transmission phase of `export`, over the Unix socket.
    pub async fn client(&self, export: &str) -> Rc<Client> {
        self.unix().await.go(export).await.unwrap().0
    }

    /// How many of this process's fds point at an export file.
    pub fn fds_inside(&self) -> usize {
        fds_under(&self.dir.join("exports"))
    }
}

fn fds_under(dir: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read_link(e.path()).is_ok_and(|t| t.starts_with(dir)))
        .count()
}

const RW_FLAGS: u16 = TF_HAS_FLAGS
    | TF_SEND_FLUSH
    | TF_SEND_FUA
    | TF_CAN_MULTI_CONN
    | TF_SEND_TRIM
    | TF_SEND_WRITE_ZEROES;

#[overlap::test]
async fn the_handshake_lists_describes_and_goes_over_tcp() {
    let rig = Rig::new("nbd-handshake", Config::default()).await;
    let disk = pattern_seeded(3 * 4096 + 17, 1);
    rig.export("disk", &disk, false);
    rig.export("cdrom", b"read me", true);
    let mut n = rig.tcp().await;
    assert_eq!(n.handshake_flags, FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES);
    assert_eq!(n.list().await.unwrap(), ["disk", "cdrom"]);
    let info = n
        .info(false, "cdrom", &[INFO_NAME, INFO_BLOCK_SIZE])
        .await
        .unwrap();
    let ro = TF_HAS_FLAGS | TF_SEND_FLUSH | TF_SEND_FUA | TF_CAN_MULTI_CONN | TF_READ_ONLY;
    let want = Info {
        size: 7,
        flags: ro,
        name: Some("cdrom".into()),
        block_size: Some((1, 4096, 32 << 20)),
    };
    assert_eq!(info, want);
    // An unknown export: an error with a message, and the handshake goes on.
    let e = n.info(true, "floppy", &[]).await.unwrap_err();
    assert_eq!(
        (e.ty, &e.msg[..]),
        (REP_ERR_UNKNOWN, "no export \"floppy\"")
    );
    // An option the server does not know, structured replies among them.
    let e = n.info(true, "x", &[]).await.unwrap_err();
    assert_eq!(e.ty, REP_ERR_UNKNOWN);
    let replies = n.option(OPT_STRUCTURED_REPLY, &[]).await.unwrap();
    assert_eq!(replies, [(REP_ERR_UNSUP, b"option 8 unsupported".to_vec())]);
    let (c, info) = n.go("disk").await.unwrap();
    assert_eq!((info.size, info.flags), (disk.len() as u64, RW_FLAGS));
    assert_eq!(c.read(0, disk.len() as u32).await.unwrap(), disk);
    assert_eq!(c.read(4096 + 3, 5).await.unwrap(), disk[4099..4104]);
    c.disconnect().await.unwrap();
    support::until(|| rig.server.stats().connections.get() == 0, "the close").await;
    assert_eq!(*rig.server.stats().ends.borrow(), [End::Disconnect]);
    assert_eq!(rig.fds_inside(), 0);
}

/// NBD_OPT_EXPORT_NAME, the old way in: no error reply possible, 124 zeros after the
/// flags unless the client agreed to NO_ZEROES.
#[overlap::test]
async fn export_name_with_and_without_the_zeros() {
    let rig = Rig::new("nbd-export-name", Config::default()).await;
    rig.export("disk", &pattern_seeded(1000, 2), false);
    for zeroes in [true, false] {
        let flags = FLAG_C_FIXED_NEWSTYLE | if zeroes { 0 } else { FLAG_C_NO_ZEROES };
        let s = TcpStream::connect(rig.addr).await.unwrap();
        let n = Negotiator::start(s, flags).await.unwrap();
        let (c, info) = n.export_name("disk", zeroes).await.unwrap();
        assert_eq!((info.size, info.flags), (1000, RW_FLAGS));
        c.write(998, b"ab", 0).await.unwrap();
        assert_eq!(c.read(996, 4).await.unwrap()[2..], *b"ab");
    }
}

/// 4 MiB written by 64 pipelined WRITEs of 64 KiB, then read back by 64 READs, over the
/// Unix socket: byte-identical, with requests really running at once.
#[overlap::test]
async fn pipelined_writes_and_reads_are_byte_identical() {
    let cfg = Config {
        max_in_flight: 64,
        ..Config::default()
    };
    let rig = Rig::new("nbd-pipelined", cfg).await;
    let path = rig.export("disk", &vec![0u8; 4 * MIB], false);
    let c = rig.client("disk").await;
    let data = pattern_seeded(4 * MIB, 7);
    let chunk = 64 * 1024;
    let writes = data
        .chunks(chunk)
        .enumerate()
        .map(|(i, part)| c.write((i * chunk) as u64, part, 0));
    for w in overlap::future::join_all(writes).await {
        w.unwrap();
    }
    assert!(std::fs::read(&path).unwrap() == data, "the file's bytes");
    let reads = (0..64).map(|i| c.read((i * chunk) as u64, chunk as u32));
    let back: Vec<u8> = overlap::future::join_all(reads)
        .await
        .into_iter()
        .flat_map(Result::unwrap)
        .collect();
    assert!(back == data, "the bytes read back");
    let stats = rig.server.stats();
    assert_eq!(stats.requests.get(), 128);
    assert!(stats.peak_in_flight.get() > 1, "requests ran at once");
    assert!(stats.peak_in_flight.get() <= 64);
    assert_eq!(stats.writes_done.get(), 64);
}

/// With the pool's one thread held, a 1 MiB READ waits in the file's queue while a
/// READ past the end, sent after it, is refused without a trip to the pool: its reply
/// comes first, and each reaches its own caller.
#[test]
fn replies_come_in_completion_order_matched_by_handle() {
    let rt = overlap::Runtime::builder()
        .max_blocking_threads(1)
        .build()
        .unwrap();
    rt.block_on(async {
        let rig = Rig::new("nbd-order", Config::default()).await;
        let data = pattern_seeded(MIB, 3);
        rig.export("disk", &data, false);
        let c = rig.client("disk").await;
        let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
        let held = overlap::spawn_blocking(move || gate_rx.recv());
        let big = c.read(0, MIB as u32);
        let past = c.read(MIB as u64, 1);
        let mut big = std::pin::pin!(big);
        let (first, _) = overlap::future::select(&mut big, std::pin::pin!(past))
            .await
            .factor_first();
        assert_eq!(first, Err(Fail::Errno(EINVAL)));
        assert_eq!(c.arrivals.borrow().len(), 1);
        gate_tx.send(()).unwrap();
        assert!(big.await.unwrap() == data, "the big READ's bytes");
        held.await.unwrap().unwrap();
        // Handles in the order asked: the big READ's first.
        assert_eq!(*c.arrivals.borrow(), [0x1001, 0x1000]);
    });
}

/// FUA makes its WRITE durable before the reply (one `fdatasync`), plain WRITEs make
/// none, and a FLUSH syncs once, after every write answered before it was sent.
#[overlap::test]
async fn fua_and_flush_each_sync_after_the_writes_they_cover() {
    let rig = Rig::new("nbd-flush", Config::default()).await;
    let path = rig.export("disk", &vec![0u8; MIB], false);
    let c = rig.client("disk").await;
    let stats = rig.server.stats();
    let blocks: Vec<[u8; 4096]> = (1..=10u8).map(|i| [i; 4096]).collect();
    let writes = (0..10).map(|i| c.write(i as u64 * 4096, &blocks[i], 0));
    for w in overlap::future::join_all(writes).await {
        w.unwrap();
    }
    assert!(stats.syncs.borrow().is_empty(), "plain writes sync nothing");
    c.write(40960, &[0xfa; 512], CMD_FLAG_FUA).await.unwrap();
    assert_eq!(*stats.syncs.borrow(), [("fua", 11)]);
    c.flush().await.unwrap();
    assert_eq!(*stats.syncs.borrow(), [("fua", 11), ("flush", 11)]);
    let file = std::fs::read(&path).unwrap();
    assert_eq!(file[9 * 4096..10 * 4096], [10; 4096]);
    assert_eq!(file[40960..41472], [0xfa; 512]);
    // FLUSH on a read-only export syncs too (its writes came from elsewhere).
    rig.export("ro", b"x", true);
    rig.client("ro").await.flush().await.unwrap();
    assert_eq!(stats.syncs_for("flush"), 2);
}

/// TRIM and WRITE_ZEROES punch holes: zeros read back, blocks given back, the size kept;
/// WRITE_ZEROES with NO_HOLE writes its zeros, keeping the blocks.
#[overlap::test]
async fn trim_and_write_zeroes_punch_holes_unless_no_hole() {
    let rig = Rig::new("nbd-trim", Config::default()).await;
    let data = pattern_seeded(4 * MIB, 5);
    let path = rig.export("disk", &data, false);
    let c = rig.client("disk").await;
    c.flush().await.unwrap();
    let blocks = || std::fs::metadata(&path).unwrap().blocks();
    let full = blocks();
    c.write_zeroes(0, MIB as u32, CMD_FLAG_NO_HOLE)
        .await
        .unwrap();
    assert_eq!(blocks(), full, "NO_HOLE keeps the blocks");
    c.trim(MIB as u64, MIB as u32).await.unwrap();
    c.write_zeroes(2 * MIB as u64 + 100, MIB as u32, CMD_FLAG_FUA)
        .await
        .unwrap();
    let now = blocks();
    // Two MiB less, save the two partial blocks at the zeroed range's ends.
    assert!(
        full - now >= (2 * MIB as u64 - 8192) / 512,
        "{full} -> {now}"
    );
    let got = c.read(0, 4 * MIB as u32).await.unwrap();
    let zeros = |r: std::ops::Range<usize>| got[r].iter().all(|&b| b == 0);
    assert!(zeros(0..2 * MIB), "zeros where written and trimmed");
    assert!(got[2 * MIB..2 * MIB + 100] == data[2 * MIB..2 * MIB + 100]);
    assert!(zeros(2 * MIB + 100..3 * MIB + 100), "zeros in the hole");
    assert!(got[3 * MIB + 100..] == data[3 * MIB + 100..], "the rest");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 4 * MIB as u64);
    assert_eq!(rig.server.stats().syncs_for("fua"), 1);
}
