//! A user's rsync-like delta transfer over TCP, sketched as one would for tokio, then
//! written for overlap: the two checksums (`port_user15_delta_sync/checksum.rs`), the wire
//! format (`proto.rs`), the sender matching the new file's windows against the old file's
//! blocks (`sender.rs`), the receiver rebuilding the file beside the target and
//! renaming it over (`receiver.rs`), and the tests' rig (`rig.rs`).
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! use tokio::fs::{self, File, OpenOptions};
//! use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufReader, BufWriter};
//! use tokio::net::TcpStream;
//!
//! // receiver: signatures of the old file, then the instructions into a temp file
//! let mut old = BufReader::new(File::open(&target).await?);
//! while let n @ 1.. = read_full(&mut old, &mut block).await? {
//!     sigs.push((weak(&block[..n]), fnv1a64(&block[..n])));
//! }
//! let mut old = old.into_inner();
//! old.rewind().await?;
//! write_signatures(&mut sock, block_size, &sigs).await?;
//! let mut input = BufReader::new(sock);
//! let mut out = OpenOptions::new().write(true).create_new(true).open(&tmp).await?;
//! loop {
//!     match input.read_u8().await? {
//!         COPY => {
//!             let i = input.read_u32().await?;      // checked against sigs.len()
//!             old.seek(SeekFrom::Start(i as u64 * bs)).await?;
//!             old.read_exact(&mut block[..len_of(i)]).await?;
//!             out.write_all(&block[..len_of(i)]).await?;
//!         }
//!         LITERAL => { /* read_u32 len, read_exact, write_all */ }
//!         END => break,                          // length and whole-file hash checked
//!         _ => return Err(InvalidData),
//!     }
//! }
//! out.flush().await?;
//! out.sync_all().await?;
//! fs::rename(&tmp, &target).await?;
//! File::open(dir).await?.sync_all().await?;     // the rename made durable
//! // (a guard's Drop removes `tmp` on any error or cancellation)
//!
//! // sender: the new file through a BufReader, a rolling window over it
//! let sigs = read_signatures(&mut sock).await?;
//! let mut new = BufReader::new(File::open(&path).await?);
//! let mut out = BufWriter::new(&mut sock);
//! // window matches weak (HashMap) and strong => flush literal, COPY i, jump a block;
//! // else roll one byte on; at the end the literal rest and END(len, fnv)
//! out.flush().await?;
//! sock.shutdown().await?;
//! ```
//!
//! The tests check, over real TCP on 127.0.0.1 (one on ::1) and real files in a temp
//! dir: identical files sent as COPYs only (counted); appended, prepended and inserted
//! data sent as exactly that many literal bytes; an absent or empty old file, and an empty
//! new one; lengths not a multiple of the block size, the short last block copied; a
//! 16 MiB file with three blocks changed; a constructed weak-checksum collision told apart
//! by the strong hash; a sender vanishing mid-LITERAL and mid-stream; malformed streams
//! (a COPY out of range, an unknown tag, an oversized LITERAL, a lying END) refused with
//! `InvalidData`; a write failing with `EFBIG` under `RLIMIT_FSIZE` (in a child); the
//! whole transfer cancelled by a timeout on the paused clock after a known amount of
//! progress. Each time the target is either the new file or untouched, no temp file is
//! left, and (in a child, counted around the runtime) no fd.
//!
//! The port was run against its program broken on purpose, one fault at a time: the
//! receiver never seeking in the old file (the END's whole-file hash then fails four
//! tests), and the temp file's guard not removing it (five tests fail: the vanished
//! sender, malformed input, the size limit, the timeout and the fd count).
//!
//! What porting it found missing: nothing missing in overlap. `fs::File` (`open`,
//! `OpenOptions::create_new`, `seek`, `rewind`, `read_exact`, `write_all`, `flush`,
//! `sync_all`, also on a directory opened with `File::open`), `fs::rename`, `BufReader`
//! with `with_capacity` and `into_inner` over both a file and a socket, `BufWriter`,
//! `read_u8`/`read_u32`/`read_u64`, `timeout`, `join!` and the paused clock all did what
//! tokio's do. The differences met, all documented:
//!
//! - An `overlap::fs` error wraps std's to name the path ("failed to write
//!   /…/.target.bin.delta-tmp: File too large (os error 27)"), so its `raw_os_error()` is
//!   `None`: the tokio program's `e.raw_os_error() == Some(libc::EFBIG)` (or `ENOSPC`)
//!   silently takes the other branch here, with no compile error; the kind
//!   (`FileTooLarge`, `StorageFull`) is kept, and `overlap::io::raw_os_error(&e)` reads the
//!   code (`fs`'s module docs say so; checked in the size-limit test).
//! - `File::sync_all` takes `&mut self` (tokio's `&self`): `let mut out`.
//! - tokio's `sock.shutdown().await` is futures-io's `close().await`.
//! - The paused clock jumps while every task waits on a socket, in overlap as in tokio, so
//!   the cancellation test keeps its fake sender ready (`yield_now`) until the receiver's
//!   counts show the instructions applied, and only then goes silent for the timeout.
//!
//! Not overlap's doing, and the same under tokio: a cancelled transfer removes its temp
//! file from a guard's `Drop` with `std::fs::remove_file` (no async drop), and a cancel
//! that lands while `create_new`'s job is running on a pool thread could still leave the
//! file behind, as `fs`'s cancellation docs warn; the temp file is named before it is
//! created, so a later sweep by name finds it. A read-only target directory cannot be
//! tested here (the tests run as root, which ignores permission bits) and mounting a tiny
//! tmpfs for `ENOSPC` needs privileges; `RLIMIT_FSIZE` in a child, with `SIGXFSZ` ignored,
//! gives a real write error (`EFBIG`) instead.

mod support;

#[path = "port_user15_delta_sync/checksum.rs"]
mod checksum;
#[path = "port_user15_delta_sync/proto.rs"]
mod proto;
#[path = "port_user15_delta_sync/receiver.rs"]
mod receiver;
#[path = "port_user15_delta_sync/rig.rs"]
mod rig;
#[path = "port_user15_delta_sync/sender.rs"]
mod sender;

use std::io::ErrorKind;
use std::time::Duration;

use checksum::{strong, weak, Rolling};
use overlap::io::AsyncWriteExt;
use overlap::net::{TcpListener, TcpStream};
use proto::{read_signatures, Instr, MAX_LITERAL};
use receiver::{receive, temp_path, RecvStats};
use rig::{assert_only_target, refused, script, synced, transfer};
use sender::{send, SendStats};
use support::{open_fds, pattern_seeded, run_in_child, tcp_pair, TempDir};

/// The block size of most tests.
const BS: u32 = 1024;

#[overlap::test]
async fn identical_files_are_sent_as_copies_only() {
    let dir = TempDir::new("delta-identical");
    let data = pattern_seeded(64 * 1024, 1);
    let sent = synced(&dir, Some(&data), &data, BS).await;
    assert_eq!(
        sent,
        SendStats {
            copies: 64,
            literal_bytes: 0,
            literal_frames: 0,
            false_matches: 0
        }
    );
}

#[overlap::test]
async fn appended_and_prepended_data_are_sent_as_exactly_that_many_literal_bytes() {
    let dir = TempDir::new("delta-append");
    let old = pattern_seeded(40 * 1024, 2);
    let extra = pattern_seeded(3000, 3);
    let appended = [&old[..], &extra[..]].concat();
    let sent = synced(&dir, Some(&old), &appended, BS).await;
    assert_eq!(
        (sent.copies, sent.literal_bytes, sent.literal_frames),
        (40, 3000, 1)
    );

    let prepended = [&extra[..777], &old[..]].concat();
    let sent = synced(&dir, Some(&old), &prepended, BS).await;
    assert_eq!(
        (sent.copies, sent.literal_bytes, sent.literal_frames),
        (40, 777, 1)
    );
}

#[overlap::test]
async fn data_inserted_in_the_middle_costs_the_block_it_lands_in() {
    let dir = TempDir::new("delta-insert");
    let old = pattern_seeded(40 * 1024, 4);
    let ins = pattern_seeded(100, 5);
    // Inside old block 10 (10240..11264): that block is lost, the rest found again.
    let new = [&old[..10_500], &ins[..], &old[10_500..]].concat();
    let sent = synced(&dir, Some(&old), &new, BS).await;
    assert_eq!((sent.copies, sent.literal_bytes), (39, 1024 + 100));
    // At a block boundary, only the inserted bytes travel.
    let new = [&old[..8 * 1024], &ins[..], &old[8 * 1024..]].concat();
    let sent = synced(&dir, Some(&old), &new, BS).await;
    assert_eq!((sent.copies, sent.literal_bytes), (40, 100));
}

#[overlap::test]
async fn an_absent_or_empty_old_file_and_an_empty_new_one() {
    let dir = TempDir::new("delta-empty");
    // No old file: all of it literal, in frames of at most MAX_LITERAL.
    let new = pattern_seeded(150 * 1024, 6);
    let sent = synced(&dir, None, &new, BS).await;
    assert_eq!(
        (sent.copies, sent.literal_bytes, sent.literal_frames),
        (0, 150 * 1024, 3)
    );
    let sent = synced(&dir, Some(b""), &new[..10], BS).await;
    assert_eq!(
        (sent.copies, sent.literal_bytes, sent.literal_frames),
        (0, 10, 1)
    );
    // An empty new file over a full old one: nothing but END.
    let sent = synced(&dir, Some(&new), b"", BS).await;
    assert_eq!(sent, SendStats::default());
    // Both empty.
    let sent = synced(&dir, Some(b""), b"", BS).await;
    assert_eq!(sent, SendStats::default());
}

#[overlap::test]
async fn lengths_not_a_multiple_of_the_block_size() {
    let dir = TempDir::new("delta-ragged");
    let old = pattern_seeded(10 * 1024 + 300, 7);
    // The short last block is copied too.
    let sent = synced(&dir, Some(&old), &old, BS).await;
    assert_eq!((sent.copies, sent.literal_bytes), (11, 0));
    // One byte changed in block 3: that block travels, the rest (short tail included) not.
    let mut new = old.clone();
    new[3 * 1024 + 17] ^= 0x5a;
    let sent = synced(&dir, Some(&old), &new, BS).await;
    assert_eq!((sent.copies, sent.literal_bytes), (10, 1024));
    // The tail cut short by one byte matches no block: it goes literal.
    let sent = synced(&dir, Some(&old), &old[..old.len() - 1], BS).await;
    assert_eq!((sent.copies, sent.literal_bytes), (10, 299));
    // A block size larger than both files: one short block each.
    let sent = synced(&dir, Some(&old), &old, 64 * 1024).await;
    assert_eq!((sent.copies, sent.literal_bytes), (1, 0));
}

#[overlap::test]
async fn a_sixteen_mib_file_with_three_blocks_changed_over_ipv6() {
    let dir = TempDir::new("delta-16m");
    let (target, src) = (dir.join("target.bin"), dir.join("new.bin"));
    let old = pattern_seeded(16 << 20, 8);
    let mut new = old.clone();
    for block in [0usize, 2000, 4095] {
        new[block * 4096 + 100] ^= 0xff;
    }
    std::fs::write(&target, &old).unwrap();
    std::fs::write(&src, &new).unwrap();
    let listener = TcpListener::bind("[::1]:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = RecvStats::default();
    let (sent, got) = overlap::join!(
        async { send(TcpStream::connect(addr).await?, &src).await },
        async { receive(listener.accept().await?.0, &target, 4096, &stats).await }
    );
    got.unwrap();
    let sent = sent.unwrap();
    assert_eq!(
        (sent.copies, sent.literal_bytes, sent.literal_frames),
        (4093, 3 * 4096, 3)
    );
    assert_eq!(
        (stats.copies.get(), stats.literal_bytes.get()),
        (4093, 3 * 4096)
    );
    assert!(
        std::fs::read(&target).unwrap() == new,
        "16 MiB rebuilt wrong"
    );
    assert!(!temp_path(&target).exists());
}

#[overlap::test]
async fn a_weak_checksum_collision_is_told_apart_by_the_strong_hash() {
    let dir = TempDir::new("delta-collide");
    let bs = 64usize;
    let mut old = pattern_seeded(4 * bs, 9);
    for x in &mut old {
        *x = *x % 200 + 20; // room for +-1 without wrapping
    }
    // +1, -1 at i, i+1 and -1, +1 at j, j+1 keep both sums of the rolling checksum.
    let mut new = old.clone();
    let (i, j) = (2 * bs + 5, 2 * bs + 40);
    new[i] += 1;
    new[i + 1] -= 1;
    new[j] -= 1;
    new[j + 1] += 1;
    let (ob, nb) = (&old[2 * bs..3 * bs], &new[2 * bs..3 * bs]);
    assert_eq!(weak(ob), weak(nb), "the constructed collision");
    assert_ne!(strong(ob), strong(nb));
    // The rolled checksum is the direct one at every offset.
    let mut r = Rolling::new(&new[..bs]);
    for k in 1..=new.len() - bs {
        r.roll(new[k - 1], new[k + bs - 1]);
        assert_eq!(r.digest(), weak(&new[k..k + bs]), "offset {k}");
    }
    let sent = synced(&dir, Some(&old), &new, bs as u32).await;
    assert_eq!(
        sent,
        SendStats {
            copies: 3,
            literal_bytes: 64,
            literal_frames: 1,
            false_matches: 1
        }
    );
}

#[overlap::test]
async fn a_sender_vanishing_mid_stream_leaves_the_target_untouched() {
    let dir = TempDir::new("delta-vanish");
    let old = pattern_seeded(8 * 1024, 10);
    // Gone between instructions.
    let bytes = script(&[Instr::Copy(0), Instr::Literal(vec![1; 300]), Instr::Copy(1)]);
    let err = refused(&dir, &old, bytes).await;
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
    assert_eq!(err.to_string(), "the sender went away before END");
    // Gone inside a LITERAL: 200 of its 500 bytes sent.
    let mut bytes = script(&[Instr::Copy(0), Instr::Literal(vec![2; 500])]);
    bytes.truncate(bytes.len() - 300);
    let err = refused(&dir, &old, bytes).await;
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
    // Gone inside END.
    let mut bytes = script(&[Instr::Copy(0), Instr::End { len: 1024, fnv: 0 }]);
    bytes.truncate(bytes.len() - 3);
    let err = refused(&dir, &old, bytes).await;
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
    // Gone before sending anything.
    let err = refused(&dir, &old, Vec::new()).await;
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
}

#[overlap::test]
async fn malformed_instructions_are_refused_and_the_target_left_as_it_was() {
    let dir = TempDir::new("delta-malformed");
    let old = pattern_seeded(8 * 1024 + 10, 11); // 9 blocks
    let err = refused(&dir, &old, script(&[Instr::Copy(0), Instr::Copy(9)])).await;
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    assert_eq!(
        err.to_string(),
        "COPY of block 9, the old file has 9 blocks"
    );
    let err = refused(&dir, &old, script(&[Instr::Copy(u32::MAX)])).await;
    assert_eq!(
        err.to_string(),
        "COPY of block 4294967295, the old file has 9 blocks"
    );

    let err = refused(&dir, &old, vec![0x7f, 0, 0, 0, 0]).await;
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    assert_eq!(err.to_string(), "unknown instruction tag 0x7f");

    let mut huge = vec![proto::TAG_LITERAL];
    huge.extend_from_slice(&(MAX_LITERAL as u32 + 1).to_be_bytes());
    let err = refused(&dir, &old, huge).await;
    assert_eq!(
        err.to_string(),
        "LITERAL of 65537 bytes (1 to 65536 allowed)"
    );
    let err = refused(&dir, &old, vec![proto::TAG_LITERAL, 0, 0, 0, 0]).await;
    assert_eq!(err.kind(), ErrorKind::InvalidData);

    // An END whose length or hash does not match what was rebuilt.
    let good = checksum::strong(&old[..1024]);
    let err = refused(
        &dir,
        &old,
        script(&[
            Instr::Copy(0),
            Instr::End {
                len: 1025,
                fnv: good,
            },
        ]),
    )
    .await;
    assert!(err.to_string().starts_with("rebuilt 1024 bytes"), "{err}");
    let err = refused(
        &dir,
        &old,
        script(&[
            Instr::Copy(0),
            Instr::End {
                len: 1024,
                fnv: !good,
            },
        ]),
    )
    .await;
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    // The same END with the right hash is taken: the target becomes block 0.
    let (mut a, b) = tcp_pair().await;
    let target = dir.join("target.bin");
    let stats = RecvStats::default();
    let (_, got) = overlap::join!(
        async move {
            read_signatures(&mut a).await.unwrap();
            a.write_all(&script(&[
                Instr::Copy(0),
                Instr::End {
                    len: 1024,
                    fnv: good,
                },
            ]))
            .await
            .unwrap();
        },
        receive(b, &target, BS, &stats)
    );
    got.unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), &old[..1024]);
}

#[overlap::test]
async fn the_sender_refuses_malformed_signatures() {
    let dir = TempDir::new("delta-badsigs");
    let src = dir.join("new.bin");
    std::fs::write(&src, b"new").unwrap();
    let cases: [(&[u8], &str); 4] = [
        (
            b"XXXX\0\0\x04\0\0\0\0\0\0\0\0\0\0\0\0\0",
            "bad signature magic [58, 58, 58, 58]",
        ),
        (
            b"DSG1\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
            "block size 0 out of range",
        ),
        (
            b"DSG1\0\0\x04\0\x7f\0\0\0\0\0\0\0\0\0\0\0",
            "2130706432 blocks announced, at most 1048576 taken",
        ),
        (
            b"DSG1\0\0\x04\0\0\0\0\x02\0\0\0\0\0\0\0\x01",
            "2 blocks of 1024 bytes cannot make 1 bytes",
        ),
    ];
    for (bytes, msg) in cases {
        let (a, mut b) = tcp_pair().await;
        let (sent, _) = overlap::join!(send(a, &src), async move {
            b.write_all(bytes).await.unwrap();
            b
        });
        let err = sent.unwrap_err();
        assert_eq!(
            (err.kind(), err.to_string()),
            (ErrorKind::InvalidData, msg.to_string())
        );
    }
    // Signatures cut short: the sender's read ends with UnexpectedEof.
    let (a, mut b) = tcp_pair().await;
    let (sent, _) = overlap::join!(send(a, &src), async move {
        b.write_all(b"DSG1\0\0\x04\0\0\0\0\x02\0\0\0\0\0\0\x08\0\0\0")
            .await
            .unwrap();
    });
    assert_eq!(sent.unwrap_err().kind(), ErrorKind::UnexpectedEof);
}

#[overlap::test(start_paused = true)]
async fn a_timeout_cancels_the_whole_transfer_and_the_temp_file_goes() {
    let dir = TempDir::new("delta-cancel");
    let target = dir.join("target.bin");
    let old = pattern_seeded(8 * 1024, 12);
    std::fs::write(&target, &old).unwrap();
    let (mut a, b) = tcp_pair().await;
    a.set_nodelay(true).unwrap();
    let stats = RecvStats::default();
    let (release, stalled) = overlap::sync::oneshot::channel::<()>();
    let (cut, _) = overlap::join!(
        async {
            let cut =
                overlap::time::timeout(Duration::from_secs(30), receive(b, &target, BS, &stats))
                    .await;
            // Cancelled: the temp file went with the future, before the sender is released.
            assert!(!temp_path(&target).exists());
            release.send(()).unwrap();
            cut
        },
        async {
            read_signatures(&mut a).await.unwrap();
            a.write_all(&script(&[Instr::Copy(3), Instr::Literal(vec![9; 100])]))
                .await
                .unwrap();
            // Busy until the receiver has applied both (the paused clock cannot move while
            // a task is ready), then silent, so only the timeout ends the transfer.
            while stats.literal_bytes.get() < 100 {
                overlap::yield_now().await;
            }
            assert!(temp_path(&target).exists());
            stalled.await.unwrap();
        }
    );
    assert!(cut.is_err(), "the transfer should have timed out");
    assert_eq!((stats.copies.get(), stats.literal_bytes.get()), (1, 100));
    assert_eq!(std::fs::read(&target).unwrap(), old);
    assert_only_target(&dir);
}

#[test]
fn a_write_failing_on_the_file_size_limit_leaves_the_target_untouched() {
    run_in_child(
        "a_write_failing_on_the_file_size_limit_leaves_the_target_untouched",
        || {
            let dir = TempDir::new("delta-fsize");
            let (target, src) = (dir.join("target.bin"), dir.join("new.bin"));
            let old = pattern_seeded(64 * 1024, 13);
            let new = pattern_seeded(1 << 20, 14);
            std::fs::write(&target, &old).unwrap();
            std::fs::write(&src, &new).unwrap();
            // SAFETY: ignoring SIGXFSZ (so the write fails with EFBIG instead of killing the
            // process) installs no handler; this child runs only this test.
            unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
            support::set_soft_limit(libc::RLIMIT_FSIZE, 256 * 1024);
            let (sent, got, stats) = overlap::block_on(transfer(&target, &src, BS));
            let err = got.unwrap_err();
            assert_eq!(overlap::io::raw_os_error(&err), Some(libc::EFBIG), "{err}");
            // The sender learns of it as a connection reset or broken pipe, or not at all
            // if everything fitted in the socket buffers before the receiver left.
            if let Err(e) = sent {
                assert!(
                    matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe),
                    "{e}"
                );
            }
            assert!(stats.literal_bytes.get() >= 256 * 1024);
            assert_eq!(std::fs::read(&target).unwrap(), old);
            assert_only_target(&dir);
        },
    );
}

#[test]
fn no_fd_is_left_open_by_transfers_good_or_bad() {
    run_in_child("no_fd_is_left_open_by_transfers_good_or_bad", || {
        let dir = TempDir::new("delta-fds");
        let before = open_fds();
        overlap::block_on(async {
            let old = pattern_seeded(20 * 1024, 15);
            let mut new = old.clone();
            new.extend_from_slice(b"tail");
            synced(&dir, Some(&old), &new, BS).await;
            synced(&dir, None, &new, BS).await;
            refused(&dir, &old, script(&[Instr::Copy(0), Instr::Copy(99)])).await;
            refused(&dir, &old, script(&[Instr::Literal(vec![1; 10])])).await;
            let target = dir.join("target.bin");
            let (a, b) = tcp_pair().await;
            let stats = RecvStats::default();
            let (release, stalled) = overlap::sync::oneshot::channel::<()>();
            // A sender that reads the signatures and then says nothing until released.
            let task = overlap::spawn(async move {
                let mut a = a;
                read_signatures(&mut a).await.unwrap();
                stalled.await.unwrap();
            });
            let cut =
                overlap::time::timeout(Duration::from_millis(50), receive(b, &target, BS, &stats))
                    .await;
            assert!(cut.is_err());
            release.send(()).unwrap();
            task.await.unwrap();
        });
        assert_eq!(open_fds(), before);
        assert_only_target(&dir);
    });
}
