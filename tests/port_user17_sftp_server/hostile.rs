//! The tests of bad input and bad clients: malformed, truncated and oversized packets, a
//! client vanishing mid-packet or with handles open, and the session limits (handles,
//! requests in flight, a client that never reads its replies).

use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncReadIntExt, AsyncWriteExt};
use overlap::time::{sleep, Instant};

use super::proto::*;
use super::server::{Config, End};
use super::{code, Rig};
use crate::support::{pattern_seeded, settle, until};

/// Reads one reply packet from a raw stream: (type, id, fields).
async fn read_packet(s: &mut overlap::net::UnixStream) -> std::io::Result<(u8, u32, Vec<u8>)> {
    let len = s.read_u32().await?;
    let mut body = vec![0; len as usize];
    s.read_exact(&mut body).await?;
    let id = u32::from_be_bytes(body[1..5].try_into().unwrap());
    Ok((body[0], id, body[5..].to_vec()))
}

fn status_of(ty: u8, body: &[u8]) -> Status {
    match decode_reply(ty, body).unwrap() {
        Reply::Status(s) => s,
        r => panic!("not a status: {r:?}"),
    }
}

#[overlap::test]
async fn malformed_packets_get_bad_message_and_the_session_goes_on() {
    let rig = Rig::new("sftp-malformed", Config::default()).await;
    std::fs::write(rig.root().join("f"), b"data").unwrap();
    let mut s = rig.connect_raw().await;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        // OPEN whose path says 50 bytes but has 3.
        (
            Packet::new(OPEN, 1)
                .u32(50)
                .u8(b'a')
                .u8(b'b')
                .u8(b'c')
                .finish(),
            "truncated packet: path needs 50 bytes, 3 left",
        ),
        // READ with no length field.
        (
            Packet::new(READ, 2).handle(0).u64(0).finish(),
            "truncated packet: length needs 4 bytes, 0 left",
        ),
        // A handle of 3 bytes.
        (
            Packet::new(CLOSE, 3).bytes(b"abc").finish(),
            "a handle of 3 bytes",
        ),
        // A handle never opened.
        (
            Packet::new(READ, 4).handle(77).u64(0).u32(4).finish(),
            "no such handle 77",
        ),
        // Bytes after the last field.
        (
            Packet::new(STAT, 5).bytes(b"f").u32(0).finish(),
            "4 bytes after the last field",
        ),
        // A path that is not UTF-8.
        (
            Packet::new(STAT, 6).bytes(&[0xff, 0xfe]).finish(),
            "path is not UTF-8",
        ),
    ];
    for (packet, msg) in cases {
        let id = u32::from_be_bytes(packet[5..9].try_into().unwrap());
        s.write_all(&packet).await.unwrap();
        let (ty, got_id, body) = read_packet(&mut s).await.unwrap();
        assert_eq!((ty, got_id), (STATUS, id));
        assert_eq!(status_of(ty, &body), Status::new(BAD_MESSAGE, msg));
    }
    // An unknown type is OP_UNSUPPORTED, also answered.
    s.write_all(&Packet::new(200, 7).finish()).await.unwrap();
    let (ty, id, body) = read_packet(&mut s).await.unwrap();
    assert_eq!((id, status_of(ty, &body).code), (7, OP_UNSUPPORTED));
    // The session still works.
    s.write_all(&Packet::new(STAT, 8).bytes(b"/f").finish())
        .await
        .unwrap();
    let (ty, id, body) = read_packet(&mut s).await.unwrap();
    assert_eq!((ty, id), (ATTRS, 8));
    assert_eq!(
        decode_reply(ty, &body).unwrap(),
        Reply::Attrs(Attrs {
            size: 4,
            perm: 0o644 & !umask(),
            is_dir: false
        })
    );
}

fn umask() -> u32 {
    // SAFETY: umask takes and returns integers; set back at once.
    unsafe {
        let old = libc::umask(0o022);
        libc::umask(old);
        old
    }
}

#[overlap::test]
async fn an_oversized_length_closes_only_its_own_session() {
    let rig = Rig::new("sftp-huge", Config::default()).await;
    let good = rig.client().await;
    let data = pattern_seeded(600_000, 9);
    good.put("/a", &data, 32 * 1024, 8).await.unwrap();
    let mut bad = rig.connect_raw().await;
    let h = good.open("/a", F_READ).await.unwrap();
    // 4 GiB - 1 announced, then a few bytes.
    bad.write_all(&[0xff, 0xff, 0xff, 0xff, OPEN, 0, 0, 0, 1])
        .await
        .unwrap();
    let (ty, id, body) = read_packet(&mut bad).await.unwrap();
    let max = Config::default().max_packet;
    let msg = format!("packet length 4294967295 outside 5..={max}; closing");
    assert_eq!(
        (id, status_of(ty, &body)),
        (0, Status::new(BAD_MESSAGE, msg))
    );
    // Then the server closes it.
    let mut rest = Vec::new();
    assert_eq!(bad.read_to_end(&mut rest).await.unwrap(), 0);
    // A length too short to hold a type and an id, on another session: the same.
    let mut short = rig.connect_raw().await;
    short.write_all(&[0, 0, 0, 2, 1, 2]).await.unwrap();
    let (ty, _, body) = read_packet(&mut short).await.unwrap();
    assert_eq!(status_of(ty, &body).code, BAD_MESSAGE);
    until(
        || rig.server.stats().ends.borrow().len() == 2,
        "both bad sessions' ends",
    )
    .await;
    assert_eq!(
        *rig.server.stats().ends.borrow(),
        [End::BadLength(u32::MAX), End::BadLength(2)]
    );
    // The good session and its open handle are untouched.
    assert_eq!(good.read(h, 599_990, 100).await.unwrap(), data[599_990..]);
    assert_eq!(good.get("/a", 32 * 1024, 8).await.unwrap(), data);
}

/// A client with files open vanishes, one in the middle of a packet: every handle is
/// closed, no fd into the root left, no request task left.
#[overlap::test]
async fn a_client_vanishing_closes_its_handles() {
    let rig = Rig::new("sftp-vanish", Config::default()).await;
    for i in 0..5 {
        std::fs::write(rig.root().join(format!("f{i}")), pattern_seeded(100_000, i)).unwrap();
    }
    let c = rig.client().await;
    let mut handles = Vec::new();
    for i in 0..5 {
        handles.push(c.open(&format!("f{i}"), F_READ | F_WRITE).await.unwrap());
    }
    let dir = c.path_op(OPENDIR, "/").await.unwrap();
    assert!(matches!(dir, Reply::Handle(_)));
    assert_eq!(rig.fds_inside(), 6);
    assert_eq!(rig.server.stats().open_handles.get(), 6);
    // Reads in flight as it goes.
    for &h in &handles {
        let id = c.next_id();
        c.send_raw(&Packet::new(READ, id).handle(h).u64(0).u32(100_000).finish())
            .await
            .unwrap();
    }
    drop(c);
    until(
        || rig.server.stats().sessions.get() == 0,
        "the session's end",
    )
    .await;
    until(|| rig.fds_inside() == 0, "every fd into the root closed").await;
    assert_eq!(rig.server.stats().open_handles.get(), 0);
    until(
        || rig.server.stats().in_flight.get() == 0,
        "no request left",
    )
    .await;
    // Another opens a file and dies after half a packet.
    let mut s = rig.connect_raw().await;
    let open = Packet::new(OPEN, 1).bytes(b"f0").u32(F_READ).finish();
    s.write_all(&open).await.unwrap();
    let (ty, _, _) = read_packet(&mut s).await.unwrap();
    assert_eq!(ty, HANDLE);
    assert_eq!(rig.fds_inside(), 1);
    let write = Packet::new(WRITE, 2)
        .handle(0)
        .u64(0)
        .bytes(&[7; 1000])
        .finish();
    s.write_all(&write[..500]).await.unwrap();
    drop(s);
    until(
        || rig.server.stats().ends.borrow().len() == 2,
        "the second session's end",
    )
    .await;
    assert_eq!(
        *rig.server.stats().ends.borrow(),
        [End::Eof, End::Truncated]
    );
    until(|| rig.fds_inside() == 0, "its fd closed").await;
    // Nothing was written by the half packet.
    assert_eq!(
        std::fs::read(rig.root().join("f0")).unwrap(),
        pattern_seeded(100_000, 0)
    );
}

#[overlap::test]
async fn the_handle_limit_refuses_then_frees_a_slot_on_close() {
    let rig = Rig::new(
        "sftp-handles",
        Config {
            max_handles: 3,
            ..Config::default()
        },
    )
    .await;
    std::fs::write(rig.root().join("f"), b"x").unwrap();
    let c = rig.client().await;
    let a = c.open("f", F_READ).await.unwrap();
    let _b = c.open("f", F_READ).await.unwrap();
    let _d = c.path_op(OPENDIR, "/").await.unwrap();
    let e = c.open("f", F_READ).await.unwrap_err();
    assert_eq!(e, Status::new(FAILURE, "too many open handles (max 3)"));
    assert_eq!(code(c.path_op(OPENDIR, "/").await), FAILURE);
    // The limit is per session.
    let other = rig.client().await;
    other.open("f", F_READ).await.unwrap();
    c.close(a).await.unwrap();
    c.open("f", F_READ).await.unwrap();
    assert_eq!(rig.server.stats().open_handles.get(), 4);
    assert_eq!(rig.fds_inside(), 4);
}

/// 32 READs pipelined with 4 allowed in flight: never more than 4 run, all are answered.
#[overlap::test]
async fn at_most_max_in_flight_requests_run_at_once() {
    let rig = Rig::new(
        "sftp-inflight",
        Config {
            max_in_flight: 4,
            ..Config::default()
        },
    )
    .await;
    let data = pattern_seeded(32 * 4096, 2);
    std::fs::write(rig.root().join("f"), &data).unwrap();
    let c = rig.client().await;
    let h = c.open("f", F_READ).await.unwrap();
    let mut batch = Vec::new();
    let mut waits = Vec::new();
    for i in 0..32u64 {
        let id = c.next_id();
        batch.extend(
            Packet::new(READ, id)
                .handle(h)
                .u64(i * 4096)
                .u32(4096)
                .finish(),
        );
        waits.push((i as usize, c.expect(id)));
    }
    c.send_raw(&batch).await.unwrap();
    for (i, rx) in waits {
        assert_eq!(
            rx.await.unwrap(),
            Reply::Data(data[i * 4096..(i + 1) * 4096].to_vec())
        );
    }
    let peak = rig.server.stats().peak_in_flight.get();
    assert!((1..=4).contains(&peak), "peak {peak}");
}

/// A client that sends 3000 READs of 64 KiB and reads nothing: once the socket and the
/// reply queue are full, the requests in flight hold their permits and the server stops
/// reading; when the client reads, every reply comes.
#[overlap::test]
async fn a_client_that_never_reads_makes_the_server_stop_reading() {
    let cfg = Config {
        max_in_flight: 2,
        ..Config::default()
    };
    let rig = Rig::new("sftp-backpressure", cfg).await;
    let data = pattern_seeded(64 * 1024, 4);
    std::fs::write(rig.root().join("f"), &data).unwrap();
    let mut s = rig.connect_raw().await;
    s.write_all(&Packet::new(OPEN, 0).bytes(b"f").u32(F_READ).finish())
        .await
        .unwrap();
    let (ty, _, body) = read_packet(&mut s).await.unwrap();
    let Reply::Handle(h) = decode_reply(ty, &body).unwrap() else {
        panic!("no handle")
    };
    let mut batch = Vec::new();
    for id in 1..=3000 {
        batch.extend(
            Packet::new(READ, id)
                .handle(h)
                .u64(0)
                .u32(64 * 1024)
                .finish(),
        );
    }
    // 3000 x 25 bytes: the socket's buffer takes them all.
    s.write_all(&batch).await.unwrap();
    let stats = rig.server.stats();
    // Wait until the count of requests read stops moving.
    let mut stuck = 0;
    let mut still = 0;
    while still < 20 {
        sleep(Duration::from_millis(1)).await;
        settle().await;
        let now = stats.requests.get();
        (stuck, still) = if now == stuck {
            (now, still + 1)
        } else {
            (now, 0)
        };
    }
    // Every request is in the server's socket buffer, yet it read only some.
    assert!(stuck < 3000, "read {stuck}");
    assert_eq!(stats.in_flight.get(), 2);
    // Now read: all 3000 replies come, each the whole 64 KiB.
    let mut ids = Vec::new();
    for _ in 0..3000 {
        let (ty, id, body) = read_packet(&mut s).await.unwrap();
        assert_eq!(decode_reply(ty, &body).unwrap(), Reply::Data(data.clone()));
        ids.push(id);
    }
    ids.sort();
    assert_eq!(ids, (1..=3000).collect::<Vec<_>>());
    assert_eq!(stats.requests.get(), 3001);
}

/// On the paused clock: a session asking nothing for the idle timeout is closed, its
/// handles with it; one asking now and then is not.
#[overlap::test(start_paused = true)]
async fn an_idle_session_is_closed_at_the_idle_timeout() {
    let rig = Rig::new("sftp-idle", Config::default()).await;
    std::fs::write(rig.root().join("f"), b"abc").unwrap();
    let mut s = rig.connect_raw().await;
    s.write_all(&Packet::new(OPEN, 1).bytes(b"f").u32(F_READ).finish())
        .await
        .unwrap();
    assert_eq!(read_packet(&mut s).await.unwrap().0, HANDLE);
    assert_eq!(rig.fds_inside(), 1);
    for id in 2..5 {
        sleep(Duration::from_secs(299)).await;
        s.write_all(&Packet::new(READ, id).handle(0).u64(0).u32(10).finish())
            .await
            .unwrap();
        let (ty, _, body) = read_packet(&mut s).await.unwrap();
        assert_eq!(
            decode_reply(ty, &body).unwrap(),
            Reply::Data(b"abc".to_vec())
        );
    }
    let replied = Instant::now();
    assert_eq!(rig.server.stats().sessions.get(), 1);
    // The server closes it: EOF, 300 s after the last reply.
    let mut rest = Vec::new();
    assert_eq!(s.read_to_end(&mut rest).await.unwrap(), 0);
    assert_eq!(Instant::now() - replied, Duration::from_secs(300));
    assert_eq!(*rig.server.stats().ends.borrow(), [End::Idle]);
    assert_eq!(rig.server.stats().open_handles.get(), 0);
    assert_eq!(rig.server.stats().sessions.get(), 0);
    assert_eq!(rig.fds_inside(), 0);
}
