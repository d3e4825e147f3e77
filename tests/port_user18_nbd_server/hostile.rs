//! Bad input, vanishing clients, limits and deadlines: each request's own error with the
//! connection going on; garbage in the handshake or the transmission phase ending only
//! its own connection; clients gone mid-request or with replies pending, leaving no fd
//! behind; the in-flight limit stopping the reads; the handshake deadline on the paused
//! clock; and the graceful shutdown.

use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::TcpStream;
use overlap::time::{sleep, Instant};

use super::client::{Fail, Negotiator};
use super::proto::*;
use super::server::{Config, End};
use super::support::{pattern_seeded, settle, until};
use super::{Rig, MIB};

const fn req(ty: u16, flags: u16, handle: u64, offset: u64, len: u32) -> Request {
    Request {
        flags,
        ty,
        handle,
        offset,
        len,
    }
}

#[overlap::test]
async fn bad_requests_get_their_error_and_the_connection_goes_on() {
    let rig = Rig::new("nbd-bad-requests", Config::default()).await;
    let data = pattern_seeded(64 * 1024, 9);
    let path = rig.export("disk", &data, false);
    let c = rig.client("disk").await;
    let size = data.len() as u64;
    let einval = Err(Fail::Errno(EINVAL));
    let enospc: Result<(), Fail> = Err(Fail::Errno(ENOSPC));
    // Past the end: EINVAL for READ and TRIM, ENOSPC for the writes.
    assert_eq!(c.read(size - 2, 4).await, einval);
    assert_eq!(
        c.read(u64::MAX - 1, 4).await,
        einval,
        "an offset that wraps"
    );
    assert_eq!(
        c.write(size - 2, b"four", 0).await,
        Err(Fail::Errno(ENOSPC))
    );
    assert_eq!(c.write_zeroes(size, 1, 0).await, enospc);
    assert_eq!(c.trim(size - 1, 2).await, einval.clone().map(drop));
    // Lengths: none, over the payload limit (the WRITE's 32 MiB + 1 read and dropped).
    assert_eq!(c.read(0, 0).await, einval);
    assert_eq!(c.read(0, (32 << 20) + 1).await, einval);
    let huge = vec![0xee; (32 << 20) + 1];
    assert_eq!(c.write(0, &huge, 0).await, Err(Fail::Errno(EINVAL)));
    // Flags unknown, or NO_HOLE where it means nothing (the payload still read).
    assert_eq!(c.request(CMD_READ, 0x80, 0, 4, &[]).await, einval);
    assert_eq!(
        c.write(0, b"xx", CMD_FLAG_NO_HOLE).await,
        Err(Fail::Errno(EINVAL))
    );
    // Unknown commands.
    assert_eq!(c.request(5, 0, 0, 4, &[]).await, einval);
    assert_eq!(c.request(99, 0, 0, 4, &[]).await, einval);
    // Nothing was written, and the connection still serves.
    assert!(
        std::fs::read(&path).unwrap() == data,
        "the file is untouched"
    );
    assert_eq!(c.read(size - 4, 4).await.unwrap(), data[data.len() - 4..]);
    assert_eq!(c.write(size - 4, b"last", 0).await, Ok(()));
    assert_eq!(c.read(size - 4, 4).await.unwrap(), b"last");
    assert_eq!(rig.server.stats().connections.get(), 1);
    assert_eq!(rig.server.stats().writes_done.get(), 1);
}

#[overlap::test]
async fn a_read_only_export_refuses_writes_with_eperm() {
    let rig = Rig::new("nbd-read-only", Config::default()).await;
    let data = pattern_seeded(8192, 4);
    let path = rig.export("ro", &data, true);
    let (c, info) = rig.unix().await.go("ro").await.unwrap();
    assert_eq!(info.flags & (TF_READ_ONLY | TF_SEND_TRIM), TF_READ_ONLY);
    let eperm = Err(Fail::Errno(EPERM));
    assert_eq!(c.write(0, b"nope", 0).await, eperm);
    assert_eq!(c.write(0, b"nope", CMD_FLAG_FUA).await, eperm);
    assert_eq!(c.trim(0, 4096).await, eperm);
    assert_eq!(c.write_zeroes(0, 4096, 0).await, eperm);
    // Even past the end: read-only comes first.
    assert_eq!(c.write(1 << 40, b"x", 0).await, eperm);
    c.flush().await.unwrap();
    assert_eq!(c.read(8188, 4).await.unwrap(), data[8188..]);
    assert!(std::fs::read(&path).unwrap() == data);
    assert_eq!(rig.server.stats().writes_done.get(), 0);
}

/// Options the server cannot serve get an error and the handshake goes on; what leaves
/// it nowhere to go (bad client flags, a bad option magic, an option longer than the
/// limit, EXPORT_NAME of no export) closes the connection; ABORT is acknowledged.
#[overlap::test]
async fn the_handshake_refuses_what_it_cannot_serve() {
    let rig = Rig::new("nbd-bad-handshake", Config::default()).await;
    rig.export("disk", b"0123", false);
    let mut n = rig.tcp().await;
    let r = n.option(OPT_LIST, b"junk").await.unwrap();
    assert_eq!(r, [(REP_ERR_INVALID, b"LIST takes no data".to_vec())]);
    // GO whose name length runs past its data, and whose info count is wrong.
    let mut bad = encode_go("disk", &[]);
    bad[3] = 200;
    let r = n.option(OPT_GO, &bad).await.unwrap();
    assert_eq!(r[0].0, REP_ERR_INVALID);
    assert_eq!(r[0].1, b"name length 200 runs past the option");
    let mut bad = encode_go("disk", &[INFO_NAME]);
    bad.pop();
    assert_eq!(n.option(OPT_GO, &bad).await.unwrap()[0].0, REP_ERR_INVALID);
    assert_eq!(n.option(42, b"?").await.unwrap()[0].0, REP_ERR_UNSUP);
    // ... and after all that, GO still works.
    let (c, _) = n.go("disk").await.unwrap();
    assert_eq!(c.read(0, 4).await.unwrap(), b"0123");

    let mut n = rig.tcp().await;
    let r = n.option(OPT_ABORT, &[]).await.unwrap();
    assert_eq!(r, [(REP_ACK, vec![])]);
    assert_eq!(
        n.s.read(&mut [0u8; 1]).await.unwrap(),
        0,
        "closed after ABORT"
    );

    let stats = rig.server.stats();
    async fn closes(n: &mut Negotiator<TcpStream>, raw: Vec<u8>) -> std::io::Result<Vec<u8>> {
        n.s.write_all(&raw).await?;
        let mut rest = Vec::new();
        n.s.read_to_end(&mut rest).await.map(|_| rest)
    }
    let mut n = rig.tcp().await;
    let unknown = encode_option(OPT_EXPORT_NAME, b"nope");
    assert!(closes(&mut n, unknown).await.unwrap().is_empty());
    let mut n = rig.tcp().await;
    let mut wrong = encode_option(OPT_LIST, &[]);
    wrong[0] = b'X';
    assert!(closes(&mut n, wrong).await.unwrap().is_empty());
    let mut n = rig.tcp().await;
    let long = encode_option(OPT_GO, &vec![0; 4097]);
    // Closed with the 4097 bytes unread: the kernel resets the connection.
    match closes(&mut n, long).await {
        Ok(rest) => assert!(rest.is_empty()),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
    }
    // Client flags the server does not know.
    let mut s = TcpStream::connect(rig.addr).await.unwrap();
    let mut greeting = [0u8; 18];
    s.read_exact(&mut greeting).await.unwrap();
    s.write_all(&0x8000_0001u32.to_be_bytes()).await.unwrap();
    assert_eq!(s.read(&mut [0u8; 1]).await.unwrap(), 0);
    until(|| stats.ends.borrow().len() == 5, "five ends").await;
    let mut ends = stats.ends.borrow().clone();
    ends.sort_by_key(|e| format!("{e:?}"));
    let magic = u64::from_be_bytes(*b"XHAVEOPT");
    assert_eq!(
        ends,
        [
            End::Aborted,
            End::BadClientFlags(0x8000_0001),
            End::BadOptionMagic(magic),
            End::OptionTooLong(4097),
            End::UnknownExport("nope".into()),
        ]
    );
    assert_eq!(stats.connections.get(), 1, "the first client's");
}

/// A bad request magic or an absurd WRITE length closes that connection only; another
/// client writing meanwhile is not disturbed.
#[overlap::test]
async fn transmission_garbage_ends_only_its_own_connection() {
    let rig = Rig::new("nbd-garbage", Config::default()).await;
    rig.export("disk", &vec![0u8; MIB], false);
    let good = rig.client("disk").await;
    let part = pattern_seeded(64 * 1024, 1);
    let busy = async {
        for i in 0..16u64 {
            good.write(i * 65536, &part, 0).await.unwrap();
        }
    };
    let bad_magic = rig.client("disk").await;
    let absurd = rig.client("disk").await;
    let mut garbage = req(CMD_READ, 0, 1, 0, 4).encode();
    garbage[..4].copy_from_slice(&0xdead_beefu32.to_be_bytes());
    let breaking = async {
        bad_magic.send_raw(&garbage).await.unwrap();
        absurd
            .send_raw(&req(CMD_WRITE, 0, 2, 0, 0xf000_0000).encode())
            .await
            .unwrap();
        // The end is noted after the connection let go of its socket and file.
        let stats = rig.server.stats();
        until(|| stats.ends.borrow().len() == 2, "both ends").await;
    };
    overlap::join!(busy, breaking);
    until(
        || bad_magic.closed() && absurd.closed(),
        "both clients see the close",
    )
    .await;
    assert_eq!(bad_magic.read(0, 4).await, Err(Fail::Lost));
    let mut ends = rig.server.stats().ends.borrow().clone();
    ends.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(
        ends,
        [End::AbsurdWrite(0xf000_0000), End::BadMagic(0xdead_beef)]
    );
    assert_eq!(good.read(15 * 65536, 65536).await.unwrap(), part);
    assert_eq!(rig.server.stats().connections.get(), 1);
    assert_eq!(rig.fds_inside(), 1, "only the good client's export fd");
}

/// One client leaves in the middle of a WRITE's payload, another with 20 READs of
/// 1 MiB unanswered: each connection ends, its export fd closed, and a third client goes
/// on as before.
#[overlap::test]
async fn clients_vanishing_mid_request_leave_no_fd() {
    let rig = Rig::new("nbd-vanish", Config::default()).await;
    let data = pattern_seeded(2 * MIB, 6);
    let path = rig.export("disk", &data, false);
    let stayer = rig.client("disk").await;
    let mut n = rig.unix().await;
    n.info(true, "disk", &[]).await.unwrap();
    let mut half = n.s;
    half.write_all(&req(CMD_WRITE, 0, 1, 0, MIB as u32).encode())
        .await
        .unwrap();
    half.write_all(&vec![0xaa; 100_000]).await.unwrap();
    let mut n = rig.unix().await;
    n.info(true, "disk", &[]).await.unwrap();
    let mut greedy = n.s;
    for h in 0..20 {
        greedy
            .write_all(&req(CMD_READ, 0, h, 0, MIB as u32).encode())
            .await
            .unwrap();
    }
    assert_eq!(rig.fds_inside(), 3);
    drop((half, greedy));
    let stats = rig.server.stats();
    until(|| stats.ends.borrow().len() == 2, "two ends").await;
    let ends = stats.ends.borrow().clone();
    assert!(ends.contains(&End::Truncated), "{ends:?}");
    assert!(
        ends.contains(&End::Eof) || ends.contains(&End::ReplyFailed),
        "{ends:?}"
    );
    assert_eq!(stats.connections.get(), 1);
    assert_eq!(stats.in_flight.get(), 0);
    assert_eq!(rig.fds_inside(), 1);
    assert!(
        std::fs::read(&path).unwrap() == data,
        "half a WRITE wrote nothing"
    );
    stayer.write(0, b"still here", CMD_FLAG_FUA).await.unwrap();
    assert_eq!(stayer.read(0, 10).await.unwrap(), b"still here");
    stayer.disconnect().await.unwrap();
    until(|| rig.fds_inside() == 0, "no fd into the exports").await;
}

/// With 4 requests in flight at most, a client that sends 40 READs of 4 MiB and reads
/// nothing: the first reply fills the socket, the 4 permits stay taken, and the server
/// reads no fifth header; once the client reads, every reply comes, whole.
#[overlap::test]
async fn at_the_in_flight_limit_the_server_stops_reading() {
    let cfg = Config {
        max_in_flight: 4,
        ..Config::default()
    };
    let rig = Rig::new("nbd-backpressure", cfg).await;
    let data = pattern_seeded(4 * MIB, 8);
    rig.export("disk", &data, true);
    let mut n = rig.unix().await;
    n.info(true, "disk", &[]).await.unwrap();
    let mut s = n.s;
    let mut batch = Vec::new();
    for h in 0..40 {
        batch.extend(req(CMD_READ, 0, h, 0, 4 * MIB as u32).encode());
    }
    s.write_all(&batch).await.unwrap();
    let stats = rig.server.stats();
    // Wait until the count of requests read stops moving.
    let (mut seen, mut still) = (0, 0);
    while still < 20 {
        sleep(Duration::from_millis(1)).await;
        settle().await;
        let now = stats.requests.get();
        (seen, still) = if now == seen {
            (now, still + 1)
        } else {
            (now, 0)
        };
    }
    assert_eq!(seen, 4, "headers read with every permit taken");
    assert_eq!((stats.in_flight.get(), stats.peak_in_flight.get()), (4, 4));
    let mut handles = Vec::new();
    for _ in 0..40 {
        let mut head = [0u8; REPLY_LEN];
        s.read_exact(&mut head).await.unwrap();
        let (error, handle) = parse_reply(&head).unwrap();
        assert_eq!(error, 0);
        let mut got = vec![0u8; 4 * MIB];
        s.read_exact(&mut got).await.unwrap();
        assert!(got == data, "reply {handle}'s data");
        handles.push(handle);
    }
    handles.sort();
    assert_eq!(handles, (0..40).collect::<Vec<_>>());
    assert_eq!(stats.requests.get(), 40);
    assert_eq!(stats.peak_in_flight.get(), 4);
}

/// On the paused clock: a handshake not done 10 s after the accept is cut off, however
/// busy the client was with options meanwhile; a connection past its handshake may idle
/// for an hour.
#[overlap::test(start_paused = true)]
async fn a_handshake_not_done_in_time_is_closed_at_its_deadline() {
    let rig = Rig::new("nbd-handshake-timeout", Config::default()).await;
    rig.export("disk", b"abcd", false);
    let start = Instant::now();
    let mut slow = rig.tcp().await;
    let (c, _) = rig.tcp().await.go("disk").await.unwrap();
    for _ in 0..2 {
        sleep(Duration::from_secs(4)).await;
        assert_eq!(slow.list().await.unwrap(), ["disk"]);
    }
    let mut rest = Vec::new();
    assert_eq!(slow.s.read_to_end(&mut rest).await.unwrap(), 0);
    assert_eq!(Instant::now() - start, Duration::from_secs(10));
    assert_eq!(*rig.server.stats().ends.borrow(), [End::HandshakeTimeout]);
    sleep(Duration::from_secs(3600)).await;
    assert_eq!(c.read(0, 4).await.unwrap(), b"abcd");
    assert_eq!(rig.server.stats().connections.get(), 1);
}

/// With the pool's one thread held, 8 WRITEs are read and wait in the file's queue when
/// the shutdown comes: it cuts off a connection still in its handshake and stops
/// accepting, but waits for the 8 (answered, all OK), flushes the export after them, and
/// only then closes.
#[test]
fn a_graceful_shutdown_answers_requests_in_flight_and_flushes() {
    let rt = overlap::Runtime::builder()
        .max_blocking_threads(1)
        .build()
        .unwrap();
    rt.block_on(async {
        let rig = Rig::new("nbd-shutdown", Config::default()).await;
        let path = rig.export("disk", &vec![0u8; MIB], false);
        let c = rig.client("disk").await;
        let mut waiting = rig.tcp().await;
        let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
        let held = overlap::spawn_blocking(move || gate_rx.recv());
        let part = pattern_seeded(4096, 2);
        let c2 = c.clone();
        let p2 = part.clone();
        let writes = overlap::spawn(async move {
            let all = (0..8u64).map(|i| c2.write(i * 4096, &p2, 0));
            overlap::future::join_all(all).await
        });
        until(|| rig.server.stats().requests.get() == 8, "8 requests read").await;
        let super::Rig {
            dir, server, addr, ..
        } = rig;
        let shared = server.shared.clone();
        let shutdown = overlap::spawn(server.shutdown());
        assert_eq!(waiting.s.read(&mut [0u8; 1]).await.unwrap(), 0, "cut off");
        settle().await;
        assert!(!shutdown.is_finished() && !writes.is_finished());
        assert!(TcpStream::connect(addr).await.is_err(), "no more accepts");
        gate_tx.send(()).unwrap();
        for w in writes.await.unwrap() {
            w.unwrap();
        }
        shutdown.await.unwrap();
        held.await.unwrap().unwrap();
        assert_eq!(*shared.stats.syncs.borrow(), [("shutdown", 8)]);
        let mut ends = shared.stats.ends.borrow().clone();
        ends.dedup();
        assert_eq!(ends, [End::Shutdown]);
        assert_eq!(shared.stats.ends.borrow().len(), 2);
        assert_eq!(c.read(0, 4).await, Err(Fail::Lost));
        let file = std::fs::read(&path).unwrap();
        assert!(file[..8 * 4096].chunks(4096).all(|b| b == part));
        assert_eq!(super::fds_under(&dir.join("exports")), 0);
    });
}
