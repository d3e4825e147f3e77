//! A user's SFTP-style file server (SFTP v3's requests and status codes, an encoding of
//! its own: `port_user17_sftp_server/proto.rs`), sketched as one would for tokio, then
//! written for overlap: paths confined to a root (`jail.rs`), each request's work on
//! `PositionalFile` handles shared by concurrent request tasks (`ops.rs`), sessions over
//! a Unix socket and TCP with limits on handles, packet size and requests in flight
//! (`server.rs`), a pipelining client with windowed `put`/`get` (`client.rs`); the tests
//! of bad input and vanishing clients are in `hostile.rs`.
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! use std::os::unix::fs::FileExt; // tokio::fs::File has no pread/pwrite
//! use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
//! use tokio::sync::{mpsc, Semaphore};
//! use tokio::task::JoinSet;
//!
//! async fn session(stream: tokio::net::UnixStream, shared: Arc<Shared>) {
//!     let (rd, mut wr) = stream.into_split();
//!     let mut rd = BufReader::new(rd);
//!     let (tx, mut rx) = mpsc::channel::<Vec<u8>>(shared.cfg.max_in_flight);
//!     let writer = tokio::spawn(async move {
//!         while let Some(reply) = rx.recv().await { wr.write_all(&reply).await?; }
//!         wr.shutdown().await
//!     });
//!     let permits = Arc::new(Semaphore::new(shared.cfg.max_in_flight));
//!     let handles = Arc::new(Mutex::new(HashMap::<u32, Handle>::new()));
//!     let mut requests = JoinSet::new();
//!     loop {
//!         let permit = permits.clone().acquire_owned().await?; // backpressure
//!         let len = match rd.read_u32().await { Ok(n) => n, Err(_) => break };
//!         if len > shared.cfg.max_packet { tx.send(bad_message(0)).await; break; }
//!         let mut body = vec![0; len as usize];
//!         rd.read_exact(&mut body).await?;
//!         let (tx, handles, shared) = (tx.clone(), handles.clone(), shared.clone());
//!         requests.spawn(async move {
//!             let reply = handle(&body, &handles, &shared).await; // replies out of order
//!             let _ = tx.send(reply).await;
//!             drop(permit);
//!         });
//!     }
//!     requests.shutdown().await; // handles dropped with `handles`
//! }
//! // READ on a handle: the std::fs::File in an Arc, each pread a blocking job.
//! let f: Arc<std::fs::File> = file_of(&handles, h)?;
//! let data = tokio::task::spawn_blocking(move || {
//!     let mut buf = vec![0; len];
//!     let n = f.read_at(&mut buf, off)?;
//!     buf.truncate(n);
//!     Ok::<_, io::Error>(buf)
//! }).await??;
//! ```
//!
//! For overlap each handle is an `overlap::fs::PositionalFile` (from
//! `OpenOptions::open_positional`), cloned into each request task: `read_vec_at` for a
//! READ (the pool job's buffer is the reply's data) and `write_vec_at` for a WRITE (the
//! packet's bytes moved, not copied); the rest is `overlap::fs`, `io::split`, `mpsc`,
//! `Semaphore::acquire_owned`, `JoinSet` and `sync::Mutex` (over a `ReadDir` for READDIR
//! batches) as in tokio, `Rc` for `Arc` on the single-threaded runtime.
//!
//! The tests check, over a real Unix socket in a temp dir (and TCP on 127.0.0.1), with
//! real files: a 5 MiB put and get with 64 requests in flight, byte-identical; replies
//! out of order matched by id; short reads and EOF at the end; every open flag; each
//! error's status code (a missing file, a file of mode 000 with the privileges dropped in
//! a child, a directory opened as a file, a non-empty RMDIR, a rename onto a name);
//! READDIR in batches; paths and symlinks leading out of the root refused; malformed,
//! truncated, oversized and unknown packets; a client vanishing mid-packet or with
//! handles open (no fd into the temp dir left); the handle and in-flight limits, a
//! client that never reads making the server stop reading, and an idle session closed at
//! exactly its timeout on the paused clock.
//!
//! What porting it found missing in overlap: nothing the program needed; tokio has no
//! positional file at all (the sketch wraps `FileExt::read_at` in `spawn_blocking`), and
//! `PositionalFile::read_vec_at`/`write_vec_at` fit an SFTP server's READ and WRITE
//! exactly (a reply's buffer is the pool job's, a write's is the packet's). Awkward or
//! different, for the record:
//! - `PositionalFile` opens a directory (read-only) without complaint, as Linux and
//!   tokio's `File` do; a read then fails with EISDIR ("Is a directory"). The server
//!   checks `metadata().is_dir()` after opening, one more pool job per OPEN.
//! - Confinement has no help from either library: no `openat`/`RESOLVE_BENEATH` in
//!   `overlap::fs` (nor tokio::fs), so the jail canonicalizes and compares prefixes, with
//!   the check-then-use window a local attacker could race (see `jail.rs`).
//! - A `ReadDir` needs `&mut` across an await, so a directory handle shared by request
//!   tasks sits behind `overlap::sync::Mutex`, as it would behind tokio's.
//! - Io errors carry their kind and message only; EISDIR, ENOTDIR, EEXIST, ENOTEMPTY
//!   and EBADF all become FAILURE with the OS's message (the `ErrorKind`s for them are
//!   stable now, but SFTP v3 has no codes for them either).
//! - `read_u32` and friends are on `overlap::io::AsyncReadIntExt`, not on `AsyncReadExt`
//!   as in tokio (that one is futures-io's); the compiler's hint names the trait.
//! - The paused clock waits for every pool job (documented): a test whose OPEN of a FIFO
//!   sat in the pool waiting for a writer, while the test slept on the paused clock
//!   before opening that writer, hung for good. The idle test keeps the pool idle.
//! - The idle timeout wraps `fill_buf` (futures' `AsyncBufReadExt`), not `read_exact`,
//!   so a timer firing in the middle of a length loses no bytes; as in tokio, where
//!   `read_exact` is not cancel-safe either. A first version decided "idle" once per
//!   wait and never closed a session whose last request was still running then: the
//!   wait now re-checks, with a running request counting as activity.
//! - Which of two pipelined requests answers first is up to the pool: a 2 MiB READ's
//!   completion was seen before a bad-handle CLOSE spawned after it was first polled, so
//!   the out-of-order test makes the slow request really wait (an OPEN of a FIFO).
//!
//! Broken on purpose: with the jail's dangling-symlink check off, an OPEN with CREAT
//! through a link pointing out of the root creates the file outside, and the jail test
//! fails.

mod support;

#[path = "port_user17_sftp_server/client.rs"]
mod client;
#[path = "port_user17_sftp_server/hostile.rs"]
mod hostile;
#[path = "port_user17_sftp_server/jail.rs"]
mod jail;
#[path = "port_user17_sftp_server/ops.rs"]
mod ops;
#[path = "port_user17_sftp_server/proto.rs"]
mod proto;
#[path = "port_user17_sftp_server/server.rs"]
mod server;

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::rc::Rc;

use overlap::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use client::Client;
use proto::*;
use server::{Config, Server};
use support::{pattern_seeded, until, TempDir};

/// A server over a Unix socket in its own temp dir, serving `root/` there.
struct Rig {
    pub dir: TempDir,
    pub server: Server,
    sock: std::path::PathBuf,
}

impl Rig {
    pub async fn new(name: &str, cfg: Config) -> Rig {
        let dir = TempDir::new(name);
        std::fs::create_dir(dir.join("root")).unwrap();
        let sock = dir.join("sftp.sock");
        let mut server = Server::new(&dir.join("root"), cfg).await.unwrap();
        server.serve_unix(UnixListener::bind(&sock).unwrap());
        Rig { dir, server, sock }
    }

    pub fn root(&self) -> std::path::PathBuf {
        self.dir.join("root")
    }

    pub async fn connect_raw(&self) -> UnixStream {
        UnixStream::connect(&self.sock).await.unwrap()
    }

    pub async fn client(&self) -> Rc<Client> {
        Client::new(self.connect_raw().await)
    }

    /// How many of this process's fds point into the rig's temp dir (not its socket).
    pub fn fds_inside(&self) -> usize {
        fds_under(&self.root())
    }
}

fn fds_under(dir: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read_link(e.path()).is_ok_and(|t| t.starts_with(dir)))
        .count()
}

fn code(r: Result<impl std::fmt::Debug, Status>) -> u32 {
    r.expect_err("a status").code
}

#[overlap::test]
async fn put_and_get_5_mib_with_64_in_flight_over_unix_are_byte_identical() {
    let rig = Rig::new("sftp-5mib", Config::default()).await;
    let c = rig.client().await;
    let data = pattern_seeded(5 << 20, 17);
    c.put("/big.bin", &data, 32 * 1024, 64).await.unwrap();
    assert_eq!(std::fs::read(rig.root().join("big.bin")).unwrap(), data);
    assert!(
        rig.server.stats().peak_in_flight.get() > 1,
        "requests ran at once"
    );
    assert!(rig.server.stats().peak_in_flight.get() <= 64);
    let got = c.get("/big.bin", 32 * 1024, 64).await.unwrap();
    assert!(got == data, "the download differs");
    // 160 writes, 160 reads, two opens, closes and an fstat.
    assert_eq!(rig.server.stats().requests.get(), 160 + 160 + 5);
    assert_eq!(rig.server.stats().open_handles.get(), 0);
    assert_eq!(rig.fds_inside(), 0);
}

#[overlap::test]
async fn put_and_get_over_tcp_too() {
    let rig = Rig::new("sftp-tcp", Config::default()).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut server = Server::new(&rig.root(), Config::default()).await.unwrap();
    server.serve_tcp(listener);
    let c = Client::new(TcpStream::connect(addr).await.unwrap());
    let data = pattern_seeded(1_000_003, 5);
    c.put("sub.bin", &data, 10_000, 16).await.unwrap();
    // Read back with a chunk that does not divide the size.
    assert!(c.get("/sub.bin", 7_777, 16).await.unwrap() == data);
    assert_eq!(c.stat("sub.bin").await.unwrap().size, 1_000_003);
    drop(c);
    until(
        || server.stats().sessions.get() == 0,
        "the TCP session's end",
    )
    .await;
    server.shutdown().await;
}

/// An OPEN of a FIFO blocks (in the pool) until a writer comes: sent first, in one write
/// with a 2 MiB READ, a STAT and a CLOSE of a handle that does not exist, its reply comes
/// last, after the test opens the FIFO's write end; every reply reaches its own caller.
#[overlap::test]
async fn replies_come_back_out_of_order_and_are_matched_by_id() {
    let rig = Rig::new(
        "sftp-order",
        Config {
            max_packet: 4 << 20,
            ..Config::default()
        },
    )
    .await;
    let data = pattern_seeded(2 << 20, 3);
    std::fs::write(rig.root().join("f"), &data).unwrap();
    support::mkfifo(&rig.root().join("fifo"));
    let c = rig.client().await;
    let h = c.open("/f", F_READ).await.unwrap();
    let ids: Vec<u32> = (0..4).map(|_| c.next_id()).collect();
    let mut all = Packet::new(OPEN, ids[0])
        .bytes(b"/fifo")
        .u32(F_READ)
        .finish();
    all.extend(
        Packet::new(READ, ids[1])
            .handle(h)
            .u64(0)
            .u32(2 << 20)
            .finish(),
    );
    all.extend(Packet::new(STAT, ids[2]).bytes(b"/f").finish());
    all.extend(Packet::new(CLOSE, ids[3]).handle(999).finish());
    let mut waits: Vec<_> = ids.iter().map(|&id| c.expect(id)).collect();
    c.send_raw(&all).await.unwrap();
    let close = waits.pop().unwrap().await.unwrap();
    assert_eq!(
        close,
        Reply::Status(Status::new(BAD_MESSAGE, "no such handle 999"))
    );
    let stat = waits.pop().unwrap().await.unwrap();
    assert!(matches!(
        stat,
        Reply::Attrs(Attrs {
            size: 2097152,
            is_dir: false,
            ..
        })
    ));
    let read = waits.pop().unwrap().await.unwrap();
    assert!(read == Reply::Data(data), "the READ's data");
    // Only now a writer: the OPEN completes.
    let writer = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(rig.root().join("fifo"))
        .unwrap();
    let Reply::Handle(fifo) = waits.pop().unwrap().await.unwrap() else {
        panic!("no handle")
    };
    let arrivals = c.arrivals.borrow().clone();
    // The OPEN of /f, the three others in whatever order they were done, then the
    // FIFO's OPEN, asked first of the four.
    assert_eq!(arrivals.len(), 5);
    assert_eq!((arrivals[0], arrivals[4]), (1, ids[0]));
    let mut middle = arrivals[1..4].to_vec();
    middle.sort();
    assert_eq!(middle, ids[1..]);
    // A FIFO has no offsets: a READ on it fails.
    let e = c.read(fifo, 0, 10).await.unwrap_err();
    assert_eq!(e.code, FAILURE);
    assert!(e.msg.contains("Illegal seek"), "{e:?}");
    drop(writer);
}

#[overlap::test]
async fn reads_at_the_end_are_short_then_eof() {
    let rig = Rig::new("sftp-eof", Config::default()).await;
    std::fs::write(rig.root().join("hundred"), pattern_seeded(100, 1)).unwrap();
    let c = rig.client().await;
    let h = c.open("hundred", F_READ).await.unwrap();
    assert_eq!(
        c.read(h, 90, 32).await.unwrap(),
        pattern_seeded(100, 1)[90..]
    );
    let eof = c.read(h, 100, 32).await.unwrap_err();
    assert_eq!(eof, Status::new(EOF, "end of file (offset 100)"));
    assert_eq!(code(c.read(h, 1 << 40, 1).await), EOF);
    // A READ larger than a packet holds is cut to fit.
    std::fs::write(rig.root().join("big"), vec![1u8; 300 * 1024]).unwrap();
    let big = c.open("big", F_READ).await.unwrap();
    let max = Config::default().max_packet as usize - 64;
    assert_eq!(c.read(big, 0, 300 * 1024).await.unwrap().len(), max);
    // get() asks again after a short read: the whole file comes back.
    assert_eq!(
        c.get("big", 300 * 1024, 4).await.unwrap(),
        vec![1u8; 300 * 1024]
    );
    // An empty file: FSTAT says 0, nothing to read.
    std::fs::write(rig.root().join("empty"), b"").unwrap();
    assert!(c.get("empty", 4096, 4).await.unwrap().is_empty());
}

#[overlap::test]
async fn open_flags_create_truncate_exclusive_and_access() {
    let rig = Rig::new("sftp-flags", Config::default()).await;
    let c = rig.client().await;
    assert_eq!(code(c.open("new", F_WRITE).await), NO_SUCH_FILE);
    let h = c.open("new", F_WRITE | F_CREAT).await.unwrap();
    c.write(h, 4, b"tail").await.unwrap();
    // Writing past the end leaves a gap of zeros.
    assert_eq!(
        std::fs::read(rig.root().join("new")).unwrap(),
        b"\0\0\0\0tail"
    );
    // A write-only handle cannot be read.
    let e = c.read(h, 0, 4).await.unwrap_err();
    assert_eq!(e.code, FAILURE);
    assert!(e.msg.contains("Bad file descriptor"), "{e:?}");
    c.close(h).await.unwrap();
    let e = c.open("new", F_WRITE | F_CREAT | F_EXCL).await.unwrap_err();
    assert_eq!(e.code, FAILURE);
    assert!(e.msg.contains("exists"), "{e:?}");
    let h = c.open("new", F_READ).await.unwrap();
    assert_eq!(code(c.write(h, 0, b"x").await), FAILURE);
    assert_eq!(c.fstat(h).await.unwrap().size, 8);
    c.close(h).await.unwrap();
    let h = c.open("new", F_READ | F_WRITE | F_TRUNC).await.unwrap();
    assert_eq!(c.fstat(h).await.unwrap().size, 0);
    let e = c.open("new", F_CREAT).await.unwrap_err();
    assert_eq!(
        e,
        Status::new(BAD_MESSAGE, "open flags ask for neither read nor write")
    );
    assert_eq!(code(c.open("new", F_READ | 0x100).await), OP_UNSUPPORTED);
    // A handle closed twice.
    c.close(h).await.unwrap();
    assert_eq!(
        c.close(h).await.unwrap_err(),
        Status::new(BAD_MESSAGE, format!("no such handle {h}"))
    );
}

#[overlap::test]
async fn errors_map_to_status_codes() {
    let rig = Rig::new("sftp-codes", Config::default()).await;
    std::fs::create_dir_all(rig.root().join("d/inner")).unwrap();
    let c = rig.client().await;
    assert_eq!(code(c.open("/missing", F_READ).await), NO_SUCH_FILE);
    assert_eq!(code(c.stat("/missing/deeper").await), NO_SUCH_FILE);
    assert_eq!(code(c.path_op(REMOVE, "/missing").await), NO_SUCH_FILE);
    let e = c.open("/d", F_READ).await.unwrap_err();
    assert_eq!(e, Status::new(FAILURE, "\"/d\" is a directory"));
    let e = c.open("/d", F_WRITE).await.unwrap_err();
    assert_eq!(e.code, FAILURE);
    assert!(e.msg.contains("Is a directory"), "{e:?}");
    let e = c.path_op(RMDIR, "/d").await.unwrap_err();
    assert_eq!(e.code, FAILURE);
    assert!(e.msg.contains("not empty"), "{e:?}");
    assert_eq!(code(c.path_op(REMOVE, "/d").await), FAILURE);
    assert_eq!(code(c.path_op(MKDIR, "/d").await), FAILURE);
    assert_eq!(code(c.ask(99, |p| p.u32(1)).await), OP_UNSUPPORTED);
    // A file handle is no directory handle, and the other way round.
    std::fs::write(rig.root().join("f"), b"x").unwrap();
    let h = c.open("f", F_READ).await.unwrap();
    assert_eq!(
        c.ask(READDIR, |p| p.handle(h)).await.unwrap_err().code,
        FAILURE
    );
    // Every failed open gave its slot back.
    assert_eq!(rig.server.stats().open_handles.get(), 1);
}

/// Run as root, a file of mode 000 opens anyway: the check runs in a child that first
/// drops to `nobody`.
#[test]
fn a_file_of_mode_000_is_permission_denied() {
    support::run_in_child("a_file_of_mode_000_is_permission_denied", || {
        if support::is_root() {
            // SAFETY: setgid/setuid take integers; the child has no other threads yet
            // that could hold the old credentials.
            unsafe {
                assert_eq!(libc::setgid(65534), 0);
                assert_eq!(libc::setuid(65534), 0);
            }
        }
        overlap::block_on(async {
            let rig = Rig::new("sftp-perm", Config::default()).await;
            let path = rig.root().join("locked");
            std::fs::write(&path, b"secret").unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
            let c = rig.client().await;
            let e = c.open("/locked", F_READ).await.unwrap_err();
            assert_eq!(e.code, PERMISSION_DENIED, "{e:?}");
            assert!(e.msg.contains("Permission denied"), "{e:?}");
            assert_eq!(c.stat("/locked").await.unwrap().perm, 0);
        });
    });
}

#[overlap::test]
async fn directories_list_in_batches_rename_and_remove() {
    let rig = Rig::new(
        "sftp-dirs",
        Config {
            readdir_batch: 4,
            ..Config::default()
        },
    )
    .await;
    let c = rig.client().await;
    c.path_op(MKDIR, "/box").await.unwrap();
    for i in 0..10 {
        let h = c
            .open(&format!("/box/f{i}"), F_WRITE | F_CREAT)
            .await
            .unwrap();
        c.write(h, 0, &vec![b'x'; i]).await.unwrap();
        c.close(h).await.unwrap();
    }
    c.path_op(MKDIR, "/box/sub").await.unwrap();
    let (names, batches) = c.list("/box").await.unwrap();
    assert_eq!(batches, [4, 4, 3]);
    let expected: Vec<_> = (0..10)
        .map(|i| format!("f{i}"))
        .chain(["sub".into()])
        .collect();
    assert_eq!(
        names.iter().map(|n| n.0.clone()).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(names[7].1.size, 7);
    assert!(names[10].1.is_dir);
    c.rename("/box/f3", "/box/sub/moved").await.unwrap();
    assert_eq!(c.stat("/box/sub/moved").await.unwrap().size, 3);
    let e = c.rename("/box/f4", "/box/f5").await.unwrap_err();
    assert_eq!(e, Status::new(FAILURE, "/box/f5 exists"));
    assert_eq!(c.realpath("/box/sub/../f4").await.unwrap(), "/box/f4");
    assert_eq!(c.realpath(".").await.unwrap(), "/");
    for i in [0, 1, 2, 4, 5, 6, 7, 8, 9] {
        c.path_op(REMOVE, &format!("/box/f{i}")).await.unwrap();
    }
    c.path_op(REMOVE, "/box/sub/moved").await.unwrap();
    c.path_op(RMDIR, "/box/sub").await.unwrap();
    c.path_op(RMDIR, "/box").await.unwrap();
    assert_eq!(std::fs::read_dir(rig.root()).unwrap().count(), 0);
    assert_eq!(rig.server.stats().open_handles.get(), 0);
}

#[overlap::test]
async fn paths_and_symlinks_out_of_the_root_are_refused() {
    let rig = Rig::new("sftp-jail", Config::default()).await;
    let root = rig.root();
    std::fs::write(rig.dir.join("outside"), b"not yours").unwrap();
    std::fs::create_dir(rig.dir.join("outdir")).unwrap();
    std::fs::write(root.join("inside"), b"yours").unwrap();
    std::os::unix::fs::symlink(rig.dir.join("outside"), root.join("to-file")).unwrap();
    std::os::unix::fs::symlink(rig.dir.join("outdir"), root.join("to-dir")).unwrap();
    std::os::unix::fs::symlink(rig.dir.join("nothing"), root.join("dangling")).unwrap();
    std::os::unix::fs::symlink("inside", root.join("to-inside")).unwrap();
    let c = rig.client().await;
    for path in [
        "../outside",
        "/../outside",
        "a/../../outside",
        "/..",
        "to-file",
        "to-dir/x",
    ] {
        let e = c.open(path, F_READ | F_WRITE | F_CREAT).await.unwrap_err();
        assert_eq!(e.code, PERMISSION_DENIED, "{path}: {e:?}");
    }
    assert_eq!(code(c.stat("to-file").await), PERMISSION_DENIED);
    assert_eq!(code(c.path_op(OPENDIR, "to-dir").await), PERMISSION_DENIED);
    assert_eq!(
        code(c.path_op(MKDIR, "to-dir/new").await),
        PERMISSION_DENIED
    );
    assert_eq!(code(c.realpath("to-dir").await), PERMISSION_DENIED);
    assert_eq!(
        code(c.rename("inside", "../stolen").await),
        PERMISSION_DENIED
    );
    assert_eq!(code(c.path_op(RMDIR, "/").await), PERMISSION_DENIED);
    // Creating through a dangling link would land outside.
    let e = c.open("dangling", F_WRITE | F_CREAT).await.unwrap_err();
    assert_eq!(e.code, PERMISSION_DENIED, "{e:?}");
    assert!(e.msg.contains("dangling"), "{e:?}");
    assert!(!rig.dir.join("nothing").exists());
    assert_eq!(
        std::fs::read(rig.dir.join("outside")).unwrap(),
        b"not yours"
    );
    // A link inside the root is followed; removing a link removes the link only.
    assert_eq!(c.get("to-inside", 1024, 2).await.unwrap(), b"yours");
    assert_eq!(c.realpath("to-inside").await.unwrap(), "/inside");
    c.path_op(REMOVE, "to-file").await.unwrap();
    assert!(rig.dir.join("outside").exists());
    // `..` that stays inside is fine.
    assert_eq!(c.realpath("/x/../inside").await.unwrap(), "/inside");
}
