//! A user's TFTP server and client (RFC 1350, with the blksize and tsize options of RFC
//! 2347–2349), sketched as one would for tokio and then written for overlap: packets in
//! `port_user9_tftp/wire.rs`, the lock-step both sides run in `link.rs` (send, wait with a
//! timeout, send again, give up after N tries; packets from a wrong TID answered with ERROR
//! 5), the server in `server.rs` (a request port, an ephemeral socket per transfer, files
//! read in blocks and uploads written to a temporary file renamed on the last block), the
//! client in `client.rs` (lossy on purpose if asked: every 7th DATA or ACK dropped).
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! let sock = UdpSocket::bind("127.0.0.1:0").await?;
//! loop {
//!     let (n, peer) = sock.recv_from(&mut buf).await?;      // 512 bytes: a longer one cut
//!     match wire::parse(&buf[..n]) {
//!         Ok(Packet::Rrq(req)) => { tokio::spawn(send_file(req, peer)); }
//!         Ok(Packet::Wrq(req)) => { tokio::spawn(receive_file(req, peer)); }
//!         _ => { sock.send_to(&wire::error(4, "illegal"), peer).await?; }
//!     }
//! }
//! // one transfer: its own TID
//! let tid = UdpSocket::bind("127.0.0.1:0").await?;
//! tid.connect(peer).await?;                                // only the peer's packets
//! let mut file = tokio::fs::File::open(root.join(&req.file)).await?;
//! loop {
//!     let n = read_block(&mut file, &mut chunk).await?;
//!     let out = encode(Data(block, &chunk[..n]));
//!     tid.send(&out).await?;
//!     loop {
//!         match timeout_at(deadline, tid.recv(&mut buf)).await {
//!             Err(_) => { tries += 1; tid.send(&out).await?; deadline += t } // retransmit
//!             Ok(n) => match parse(&buf[..n?]) {
//!                 Ack(b) if b == block => break,
//!                 Ack(_) => continue,                      // duplicate: never resend
//!                 ..
//!             }
//!         }
//!     }
//!     if n < blksize { break }
//!     block = block.wrapping_add(1);
//! }
//! ```
//!
//! The tests check: twenty downloads and twenty uploads at once of 0 B, 511 B, 512 B
//! (one full block, then an empty one) and 1 MiB, with and without options, byte-exact; a
//! client losing every 7th DATA or ACK still completing both ways; a packet from a wrong
//! TID answered with ERROR 5 while the transfer goes on, and duplicate ACKs never answered
//! with a second DATA (no Sorcerer's Apprentice); block numbers wrapping past 65535
//! (blksize 8 over 520 KiB); traversal (ERROR 2), missing files and a FIFO (ERROR 1), an
//! existing upload target (ERROR 6), a mode not served and a request past 512 bytes
//! (ERROR 4); transfers over IPv6 in the largest blocks; a
//! full disk (`RLIMIT_FSIZE` in a child) refusing an upload with ERROR 3 and its temporary
//! file removed; an upload abandoned midway given up after the retries, its temporary file
//! removed; and no fd or task left once the server is dropped.
//!
//! What the port changed, against tokio: `tokio::spawn` became a `JoinSet` the request loop
//! owns, so a dropped server aborts its transfers (each upload's temporary file goes with
//! its task's drop); `Arc` counters became `Rc<Cell>`. The rest is tokio's, call for call:
//! `UdpSocket::bind`, `connect`, `send_to`, `recv_from`, `set_tos`, `time::timeout_at`,
//! `fs::File::open`/`create_new`, `read`, `write_all`, `flush`, `fs::rename`. One thing
//! the sketch got wrong is the user's, and is as in tokio: a transfer socket connected to
//! its peer never sees a packet from another TID (the kernel drops it, and the stranger gets
//! an ICMP port unreachable), so ERROR 5, which RFC 1350 asks for, can only come from an
//! unconnected socket checking each source: the server's transfer sockets stay
//! unconnected, the client connects once the TID has answered (it has no need to tell
//! strangers anything); `UdpSocket::connect`'s docs now say so (`net_udp.rs` pins it). And the request loop takes `next_datagram_len` first, which tokio
//! lacks, so a request longer than its buffer is refused rather than parsed cut short.
//!
//! Two things overlap did or said wrong, and now does not: `set_tos` on an IPv6 socket set
//! only `IP_TOS`, which the kernel takes and reads back there but applies to IPv4 traffic
//! alone, so the server on `[::1]` sent its transfers with traffic class 0 (it now sets
//! `IPV6_TCLASS` too; `review_net_udp_options.rs` pins it); and a FIFO in the served
//! directory hung its RRQ, `File::open` waiting on a pool thread for a writer, for good,
//! as std's and tokio's do, with nothing in the docs saying so: they now do, and the
//! server opens `O_NONBLOCK` and refuses what is no regular file (`fs_liveness.rs`).
//! The wrap test is the port's slowest (about 66,000 lock-step round trips at blksize 8,
//! 2 s in a debug build), so it only downloads.

mod support;

#[path = "port_user9_tftp/client.rs"]
mod client;
#[path = "port_user9_tftp/link.rs"]
mod link;
#[path = "port_user9_tftp/server.rs"]
mod server;
#[path = "port_user9_tftp/wire.rs"]
mod wire;

use std::time::Duration;

use client::Client;
use link::Fail;
use overlap::net::UdpSocket;
use server::{Config, Server};
use support::{open_fds, pattern_seeded, run_in_child, settle, until, within, TempDir};
use wire::Packet;

/// A hang guard, on a clock that is paused in most tests (retransmissions cost nothing).
const HANG: Duration = Duration::from_secs(600);

async fn put_file(dir: &TempDir, name: &str, data: &[u8]) {
    overlap::fs::write(dir.join(name), data).await.unwrap();
}

fn remote(res: Result<impl std::fmt::Debug, Fail>) -> (u16, String) {
    match res {
        Err(Fail::Remote(code, msg)) => (code, msg),
        other => panic!("expected an ERROR from the server, got {other:?}"),
    }
}

/// The names in `dir`, sorted.
fn names(dir: &TempDir) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[overlap::test(start_paused = true)]
async fn concurrent_downloads_and_uploads_are_byte_exact() {
    let dir = TempDir::new("tftp-concurrent");
    let sizes = [0, 511, 512, 1 << 20];
    for (i, &len) in sizes.iter().enumerate() {
        put_file(&dir, &format!("f{i}"), &pattern_seeded(len, i as u32)).await;
    }
    let server = Server::start(Config::new(dir.path())).await;
    let one = |k: usize| {
        let addr = server.addr;
        let dir = &dir;
        async move {
            let i = k % sizes.len();
            let mut client = Client::new(addr);
            // Half with options (a big block for the 1 MiB file), half plain RFC 1350.
            if k % 2 == 1 {
                client.blksize = Some(if sizes[i] > 512 { 8192 } else { 512 });
                client.tsize = true;
            }
            let want = pattern_seeded(sizes[i], i as u32);
            let got = client.get(&format!("f{i}")).await.unwrap();
            assert!(got == want, "download {k} of {} bytes", sizes[i]);
            let name = format!("up{k}");
            client.put(&name, &want).await.unwrap();
            let stored = overlap::fs::read(dir.join(&name)).await.unwrap();
            assert!(stored == want, "upload {k} of {} bytes", sizes[i]);
        }
    };
    let all = futures_util::future::join_all((0..20).map(one));
    within(HANG, all, "twenty transfers each way").await;
    // The uploads' last ACKs are followed by a dally for a repeated last block.
    until(
        || server.stats.completed.get() == 40,
        "every transfer's end",
    )
    .await;
    assert_eq!(server.stats.failed.get(), 0, "{:?}", server.stats.failures);
    // No temporary file is left, and every upload is there.
    let left = names(&dir);
    assert_eq!(left.len(), sizes.len() + 20, "{left:?}");
}

#[overlap::test(start_paused = true)]
async fn a_client_losing_every_7th_packet_still_completes_both_ways() {
    let dir = TempDir::new("tftp-lossy");
    let data = pattern_seeded(100_000, 7);
    put_file(&dir, "big", &data).await;
    let server = Server::start(Config::new(dir.path())).await;
    for blksize in [None, Some(1024)] {
        let mut client = Client::new(server.addr);
        client.lossy = Some(7);
        client.blksize = blksize;
        let got = within(HANG, client.get("big"), "a lossy download").await;
        assert!(got.unwrap() == data, "download, blksize {blksize:?}");
        let name = format!("up-{}", blksize.unwrap_or(512));
        within(HANG, client.put(&name, &data), "a lossy upload")
            .await
            .unwrap();
        assert!(overlap::fs::read(dir.join(&name)).await.unwrap() == data);
        let c = &client.counters;
        assert!(c.lost_on_purpose.get() > 10, "{}", c.lost_on_purpose.get());
        // Each loss was made good by a retransmission, on one side or the other.
        let retransmits = c.retransmits.get() + server.counters.retransmits.get();
        assert!(retransmits > 0);
    }
    until(|| server.stats.completed.get() == 4, "every transfer's end").await;
    assert_eq!(server.stats.failed.get(), 0, "{:?}", server.stats.failures);
}

/// Reads one packet from `sock`, with its source.
async fn next(sock: &UdpSocket) -> (Packet, std::net::SocketAddr) {
    let mut buf = [0u8; 1024];
    let (n, from) = within(HANG, sock.recv_from(&mut buf), "a packet")
        .await
        .unwrap();
    (wire::parse(&buf[..n]).unwrap(), from)
}

#[overlap::test(start_paused = true)]
async fn a_wrong_tid_gets_error_5_and_duplicate_acks_no_second_data() {
    let dir = TempDir::new("tftp-tid");
    let data = pattern_seeded(1500, 5);
    put_file(&dir, "three", &data).await;
    let server = Server::start(Config::new(dir.path())).await;
    // A plain RRQ driven by hand.
    let me = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let rrq = wire::Request {
        file: "three".into(),
        mode: "octet".into(),
        options: vec![],
    };
    me.send_to(&wire::encode(&Packet::Rrq(rrq)), server.addr)
        .await
        .unwrap();
    let (first, tid) = next(&me).await;
    assert_eq!(first, Packet::Data(1, data[..512].to_vec()));
    assert_ne!(tid, server.addr, "a transfer has a TID of its own");
    assert_eq!(server.stats.tids.borrow().as_slice(), &[tid]);
    // A stranger's ACK to the transfer's TID: ERROR 5 to it, nothing to us.
    let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let ack = |b| wire::encode(&Packet::Ack(b));
    stranger.send_to(&ack(1), tid).await.unwrap();
    let (err, from) = next(&stranger).await;
    assert_eq!(from, tid);
    assert!(
        matches!(err, Packet::Error(wire::UNKNOWN_TID, _)),
        "{err:?}"
    );
    // ACK 1 twice: DATA 2 comes once (a second would come before DATA 3 below).
    me.send_to(&ack(1), tid).await.unwrap();
    me.send_to(&ack(1), tid).await.unwrap();
    assert_eq!(
        next(&me).await,
        (Packet::Data(2, data[512..1024].to_vec()), tid)
    );
    me.send_to(&ack(2), tid).await.unwrap();
    assert_eq!(
        next(&me).await,
        (Packet::Data(3, data[1024..].to_vec()), tid)
    );
    me.send_to(&ack(3), tid).await.unwrap();
    until(|| server.stats.completed.get() == 1, "the transfer's end").await;
    assert_eq!(server.counters.strangers.get(), 1);
    assert_eq!(server.stats.failed.get(), 0, "{:?}", server.stats.failures);
    // The request port itself answers a stray ACK with ERROR 5 too.
    stranger.send_to(&ack(1), server.addr).await.unwrap();
    let (err, _) = next(&stranger).await;
    assert!(
        matches!(err, Packet::Error(wire::UNKNOWN_TID, _)),
        "{err:?}"
    );
}

#[overlap::test(start_paused = true)]
async fn block_numbers_wrap_past_65535() {
    let dir = TempDir::new("tftp-wrap");
    // 66,560 blocks of 8 bytes: past 65535 the numbers go on from 0.
    let data = pattern_seeded(520 << 10, 9);
    put_file(&dir, "wrap", &data).await;
    let server = Server::start(Config::new(dir.path())).await;
    let mut client = Client::new(server.addr);
    client.blksize = Some(8);
    let got = within(HANG, client.get("wrap"), "a download past block 65535").await;
    assert!(got.unwrap() == data);
}

#[overlap::test(start_paused = true)]
async fn traversal_missing_files_and_bad_requests_are_refused() {
    let dir = TempDir::new("tftp-refused");
    put_file(&dir, "there", b"x").await;
    let server = Server::start(Config::new(dir.path())).await;
    let client = Client::new(server.addr);
    for name in ["../etc/passwd", "/etc/passwd", "a/../../x", ".hidden", ""] {
        assert_eq!(
            remote(client.get(name).await).0,
            wire::ACCESS,
            "get {name:?}"
        );
        assert_eq!(
            remote(client.put(name, b"x").await).0,
            wire::ACCESS,
            "put {name:?}"
        );
    }
    assert_eq!(remote(client.get("nothere").await).0, wire::NOT_FOUND);
    assert_eq!(remote(client.get("sub/nothere").await).0, wire::NOT_FOUND);
    assert_eq!(remote(client.put("there", b"y").await).0, wire::EXISTS);
    assert_eq!(
        remote(client.put("there/x", b"y").await).0,
        wire::NOT_DEFINED
    );
    // A mode not served, a request past 512 bytes (whole, not cut), garbage: ERROR 4.
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mail = wire::Request {
        file: "there".into(),
        mode: "mail".into(),
        options: vec![],
    };
    let long = wire::Request {
        file: "x".repeat(600),
        ..mail.clone()
    };
    for (what, msg) in [
        ("mail mode", wire::encode(&Packet::Rrq(mail))),
        ("600-byte name", wire::encode(&Packet::Rrq(long))),
        ("no NUL", vec![0, 1, b'a', b'b']),
        ("empty", vec![]),
    ] {
        sock.send_to(&msg, server.addr).await.unwrap();
        let (got, _) = next(&sock).await;
        assert!(
            matches!(got, Packet::Error(wire::ILLEGAL, _)),
            "{what}: {got:?}"
        );
    }
    assert_eq!(server.stats.too_long.get(), 1);
    // Nothing was written, and the server goes on serving.
    assert_eq!(names(&dir), ["there"]);
    assert_eq!(client.get("there").await.unwrap(), b"x");
}

#[overlap::test(start_paused = true)]
async fn an_abandoned_upload_is_given_up_and_its_temp_file_removed() {
    let dir = TempDir::new("tftp-abandoned");
    let mut config = Config::new(dir.path());
    config.retries = 3;
    let server = Server::start(config).await;
    // A WRQ and two of its blocks, then silence.
    let me = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let wrq = wire::Request {
        file: "gone".into(),
        mode: "octet".into(),
        options: vec![],
    };
    me.send_to(&wire::encode(&Packet::Wrq(wrq)), server.addr)
        .await
        .unwrap();
    let (ack, tid) = next(&me).await;
    assert_eq!(ack, Packet::Ack(0));
    for b in 1..=2 {
        let block = wire::encode(&Packet::Data(b, vec![b as u8; 512]));
        me.send_to(&block, tid).await.unwrap();
        assert_eq!(next(&me).await, (Packet::Ack(b), tid));
    }
    assert_eq!(names(&dir), [".gone.0.part"]);
    until(|| server.stats.failed.get() == 1, "the upload given up").await;
    assert!(server.stats.failures.borrow()[0].contains("TimedOut"));
    // ACK 2 was sent again on each timeout: three retries, then nothing.
    for _ in 0..3 {
        assert_eq!(next(&me).await, (Packet::Ack(2), tid));
    }
    assert_eq!(names(&dir), Vec::<String>::new());
    // An upload cut by the server's drop goes the same way.
    let server = Server::start(Config::new(dir.path())).await;
    let wrq = wire::Request {
        file: "cut".into(),
        mode: "octet".into(),
        options: vec![],
    };
    me.send_to(&wire::encode(&Packet::Wrq(wrq)), server.addr)
        .await
        .unwrap();
    assert_eq!(next(&me).await.0, Packet::Ack(0));
    assert_eq!(names(&dir), [".cut.0.part"]);
    drop(server);
    settle().await;
    assert_eq!(names(&dir), Vec::<String>::new());
}

/// Ignores `SIGXFSZ` (so a write past the limit fails with `EFBIG` instead of killing the
/// process) and lowers `RLIMIT_FSIZE` to `soft` bytes.
fn limit_file_size(soft: libc::rlim_t) {
    // SAFETY: SIG_IGN is a valid disposition for SIGXFSZ.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    support::set_soft_limit(libc::RLIMIT_FSIZE, soft);
}

#[test]
fn a_full_disk_refuses_an_upload_with_error_3() {
    run_in_child("a_full_disk_refuses_an_upload_with_error_3", || {
        limit_file_size(64 << 10);
        let rt = overlap::Runtime::builder()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let dir = TempDir::new("tftp-full");
            let server = Server::start(Config::new(dir.path())).await;
            let mut client = Client::new(server.addr);
            client.blksize = Some(8192);
            let (code, msg) = remote(client.put("big", &pattern_seeded(256 << 10, 3)).await);
            assert_eq!(
                (code, msg.as_str()),
                (wire::DISK_FULL, "disk full or allocation exceeded")
            );
            until(|| server.stats.failed.get() == 1, "the refusal counted").await;
            assert_eq!(names(&dir), Vec::<String>::new(), "temp file removed");
            // A file within the limit is taken.
            let small = pattern_seeded(10_000, 4);
            client.put("small", &small).await.unwrap();
            assert!(overlap::fs::read(dir.join("small")).await.unwrap() == small);
        })
    });
}

#[test]
fn a_dropped_server_leaves_no_fd_or_task() {
    run_in_child("a_dropped_server_leaves_no_fd_or_task", || {
        let rt = overlap::Runtime::builder()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let dir = TempDir::new("tftp-leaks");
            put_file(&dir, "f", &pattern_seeded(100_000, 1)).await;
            let fds = open_fds();
            let tasks = overlap::metrics().tasks_alive;
            let server = Server::start(Config::new(dir.path())).await;
            let client = Client::new(server.addr);
            assert_eq!(client.get("f").await.unwrap().len(), 100_000);
            client.put("g", b"hello").await.unwrap();
            // A download stalled after its first block when the server goes.
            let me = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let rrq = wire::Request {
                file: "f".into(),
                mode: "octet".into(),
                options: vec![],
            };
            me.send_to(&wire::encode(&Packet::Rrq(rrq)), server.addr)
                .await
                .unwrap();
            assert!(matches!(next(&me).await.0, Packet::Data(1, _)));
            drop((server, me, client));
            // A File's fd closes when its last job ends, on the pool.
            until(|| open_fds() == fds, "fds back to the count before").await;
            settle().await;
            assert_eq!(overlap::metrics().tasks_alive, tasks, "tasks left");
        })
    });
}

#[overlap::test(start_paused = true)]
async fn a_fifo_in_the_root_is_refused_without_waiting_for_a_writer() {
    let dir = TempDir::new("tftp-fifo");
    support::mkfifo(&dir.join("pipe"));
    let server = Server::start(Config::new(dir.path())).await;
    let client = Client::new(server.addr);
    // A plain open would wait on a pool thread for a writer that never comes.
    let res = within(Duration::from_secs(5), client.get("pipe"), "the refusal").await;
    assert_eq!(remote(res).0, wire::NOT_FOUND);
    put_file(&dir, "file", b"still served").await;
    assert_eq!(client.get("file").await.unwrap(), b"still served");
}

#[overlap::test(start_paused = true)]
async fn serves_over_ipv6_with_the_traffic_class_set() {
    let dir = TempDir::new("tftp-v6");
    // Blocks of the largest size the option allows: 65,468-byte datagrams.
    let data = pattern_seeded(200_000, 6);
    put_file(&dir, "f", &data).await;
    let mut config = Config::new(dir.path());
    config.ip = "::1";
    let server = Server::start(config).await;
    let mut client = Client::new(server.addr);
    client.blksize = Some(wire::MAX_BLKSIZE);
    client.tsize = true;
    assert!(client.get("f").await.unwrap() == data);
    client.put("g", &data).await.unwrap();
    assert!(overlap::fs::read(dir.join("g")).await.unwrap() == data);
    until(|| server.stats.completed.get() == 2, "both transfers' ends").await;
}
