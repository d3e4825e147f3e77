//! `splice_copy` into a destination that is already dead takes no byte from its source: a
//! pipe whose readers are all gone, a TCP stream its peer reset, a Unix stream whose peer
//! closed. The copy fails with the destination's error and every queued byte is still
//! readable from the source, in order. So does a destination that dies while the copy waits
//! for more data, unless the source then ends with nothing more (the copy returns its count
//! and leaves the reset in place). A healthy destination that only looks failed (its error
//! queue holds transmit timestamps, which `poll` reports as `POLLERR`) is not refused; and a
//! destination that dies with bytes in flight loses at most what the private pipe held.

mod support;

use std::io;
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt, Interest};
use overlap::net::{TcpStream, UnixStream};
use overlap::pipe::{pipe, splice_copy, Receiver};
use overlap::{block_on, spawn, JoinHandle, Registered};
use support::{pattern_seeded, set_int_option, settle, tcp_pair, within};

/// Generous: only a hang (a lost wakeup) gets near it.
const HANG: Duration = Duration::from_secs(20);

/// What the source holds when a copy starts: more than the private pipe (64 KiB) takes.
const QUEUED: usize = 100 * 1024;

/// `SO_TIMESTAMPING` (`SO_TIMESTAMPING_OLD`, the one that takes an int).
const SO_TIMESTAMPING: libc::c_int = 37;
/// Software transmit timestamps, reported with no payload: every send queues one note on
/// the socket's error queue, which `poll` reports as `POLLERR` until it is read.
const TX_SOFTWARE_TSONLY: libc::c_int = (1 << 1) | (1 << 4) | (1 << 11);

/// A TCP source with `data` on its way (written by a task that then shuts its side down),
/// returned once the first bytes are readable, with the writer's handle.
async fn tcp_source(data: &[u8]) -> (TcpStream, JoinHandle<()>) {
    let (mut peer, src) = tcp_pair().await;
    let sent = data.to_vec();
    let writer = spawn(async move {
        peer.write_all(&sent).await.unwrap();
        peer.shutdown(Shutdown::Write).unwrap();
        // Kept open until everything was read, so the source never sees a reset.
        let mut rest = Vec::new();
        peer.read_to_end(&mut rest).await.unwrap();
    });
    within(HANG, src.readable(), "the source never had data")
        .await
        .unwrap();
    (src, writer)
}

/// Reads `src` to its end: what a copy did not take.
async fn rest_of(src: &mut TcpStream) -> Vec<u8> {
    let mut rest = Vec::new();
    within(HANG, src.read_to_end(&mut rest), "the source never ended")
        .await
        .unwrap();
    rest
}

/// Copies a 100 KiB TCP source into `to`, which is dead already: the copy must fail with
/// one of `kinds` and every byte must still be in the source.
async fn copy_into_dead<D: Registered>(to: &D, kinds: &[io::ErrorKind]) {
    let data = pattern_seeded(QUEUED, 7);
    let (mut src, writer) = tcp_source(&data).await;
    let err = within(HANG, splice_copy(&src, to), "the copy hung")
        .await
        .unwrap_err();
    assert!(kinds.contains(&err.kind()), "{err:?}");
    let rest = rest_of(&mut src).await;
    assert_eq!(rest.len(), QUEUED, "bytes taken from the source and lost");
    assert!(rest == data, "the source's bytes differ");
    drop(src);
    writer.await.unwrap();
}

/// A pipe whose only reader was dropped: `BrokenPipe`, nothing taken.
#[test]
fn a_pipe_with_no_reader_takes_no_byte_from_the_source() {
    block_on(async {
        let (tx, rx) = pipe().unwrap();
        drop(rx);
        copy_into_dead(&tx, &[io::ErrorKind::BrokenPipe]).await;
    });
}

/// A TCP stream whose peer closed with `SO_LINGER` 0 (a reset): `ConnectionReset` (or
/// `BrokenPipe`), nothing taken.
#[test]
fn a_reset_tcp_stream_takes_no_byte_from_the_source() {
    block_on(async {
        let (dst, peer) = tcp_pair().await;
        peer.set_linger(Some(Duration::ZERO)).unwrap();
        drop(peer);
        let seen = within(HANG, dst.ready(Interest::ERROR), "no reset arrived")
            .await
            .unwrap();
        assert!(seen.is_error());
        copy_into_dead(
            &dst,
            &[io::ErrorKind::ConnectionReset, io::ErrorKind::BrokenPipe],
        )
        .await;
    });
}

/// A TCP stream whose reset was already reported (a read took the error): the stream is
/// still dead, its writes fail with `BrokenPipe`, and the copy takes nothing.
#[test]
fn a_reset_tcp_stream_whose_error_was_taken_takes_no_byte() {
    block_on(async {
        let (mut dst, peer) = tcp_pair().await;
        peer.set_linger(Some(Duration::ZERO)).unwrap();
        drop(peer);
        let err = within(HANG, dst.read(&mut [0u8; 8]), "no reset arrived")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        copy_into_dead(&dst, &[io::ErrorKind::BrokenPipe]).await;
    });
}

/// A Unix stream whose peer was dropped: `BrokenPipe`, nothing taken.
#[test]
fn a_unix_stream_whose_peer_closed_takes_no_byte() {
    block_on(async {
        let (dst, peer) = UnixStream::pair().unwrap();
        drop(peer);
        copy_into_dead(&dst, &[io::ErrorKind::BrokenPipe]).await;
    });
}

/// A destination whose reader leaves while the copy waits for more data: the copy looks
/// before it takes the next bytes, so all of them are still in the source.
#[test]
fn a_destination_dying_while_the_copy_waits_takes_no_more_bytes() {
    block_on(async {
        let (mut peer, mut src) = tcp_pair().await;
        let (tx, mut rx) = pipe().unwrap();
        let first = pattern_seeded(10 * 1024, 3);
        let second = pattern_seeded(QUEUED, 4);
        peer.write_all(&first).await.unwrap();
        let copy = spawn(async move {
            let res = splice_copy(&src, &tx).await;
            (res, src)
        });
        let mut got = vec![0u8; first.len()];
        within(HANG, rx.read_exact(&mut got), "the first bytes never came")
            .await
            .unwrap();
        assert!(got == first, "the first bytes differ");
        // The copy wrote all it had, so it waits on the source now.
        drop(rx);
        settle().await;
        peer.write_all(&second).await.unwrap();
        peer.shutdown(Shutdown::Write).unwrap();
        let (res, returned) = within(HANG, copy, "the copy hung").await.unwrap();
        src = returned;
        assert_eq!(res.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
        let rest = rest_of(&mut src).await;
        assert_eq!(rest.len(), second.len(), "bytes taken and lost");
        assert!(rest == second, "the source's bytes differ");
    });
}

/// A destination reset while the copy waits, and then a source that ends with nothing more:
/// no byte is lost, so the copy ends as usual with its count, and the reset is left for the
/// destination's next call to report.
#[test]
fn a_destination_dying_before_a_clean_end_of_file_leaves_the_count_and_the_error() {
    block_on(async {
        let (mut peer, src) = tcp_pair().await;
        let (dst, mut sink) = tcp_pair().await;
        let data = pattern_seeded(10 * 1024, 6);
        peer.write_all(&data).await.unwrap();
        let copy = spawn(async move {
            let res = splice_copy(&src, &dst).await;
            (res, dst)
        });
        let mut got = vec![0u8; data.len()];
        within(HANG, sink.read_exact(&mut got), "the bytes never came")
            .await
            .unwrap();
        assert!(got == data, "the copied bytes differ");
        sink.set_linger(Some(Duration::ZERO)).unwrap();
        drop(sink);
        settle().await;
        peer.shutdown(Shutdown::Write).unwrap();
        let (res, mut dst) = within(HANG, copy, "the copy hung").await.unwrap();
        assert_eq!(res.unwrap(), data.len() as u64);
        let err = dst.read(&mut [0u8; 8]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    });
}

/// A healthy TCP destination whose error queue holds transmit timestamps (`POLLERR`
/// without an error) is no dead one: the whole source arrives, in order.
#[test]
fn a_destination_with_only_its_error_queue_full_is_not_refused() {
    block_on(async {
        let (dst, mut sink) = tcp_pair().await;
        set_int_option(
            dst.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_TIMESTAMPING,
            TX_SOFTWARE_TSONLY,
        )
        .unwrap();
        // One send queues a timestamp note: the socket polls `POLLERR` from now on.
        let mut dst = dst;
        dst.write_all(b"x").await.unwrap();
        let mut one = [0u8; 1];
        sink.read_exact(&mut one).await.unwrap();
        let data = pattern_seeded(QUEUED, 9);
        let (mut src, writer) = tcp_source(&data).await;
        let (n, got) = futures_util::join!(
            async {
                let n = within(HANG, splice_copy(&src, &dst), "the copy hung").await;
                dst.shutdown(Shutdown::Write).unwrap();
                n
            },
            async {
                let mut got = Vec::new();
                within(HANG, sink.read_to_end(&mut got), "the copy never ended")
                    .await
                    .unwrap();
                got
            }
        );
        assert_eq!(n.unwrap(), QUEUED as u64);
        assert!(got == data, "the copied bytes differ");
        assert!(rest_of(&mut src).await.is_empty());
        drop(src);
        writer.await.unwrap();
    });
}

/// Reads what `rx` holds now, without waiting: the bytes a copy delivered so far.
async fn drain_now(rx: &mut Receiver) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match futures_util::FutureExt::now_or_never(rx.read(&mut buf)) {
            Some(Ok(0)) | None => return got,
            Some(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Some(Err(e)) => panic!("{e}"),
        }
    }
}

/// A copy stalled on a full pipe whose reader then leaves fails with `BrokenPipe`: what it
/// delivered is the data's head, what it did not take is still in the source, and what is
/// missing between them (the private pipe's bytes) is at most 64 KiB, as documented.
#[test]
fn a_destination_dying_with_bytes_in_flight_loses_at_most_the_private_pipe() {
    block_on(async {
        const TOTAL: usize = 512 * 1024;
        let data = pattern_seeded(TOTAL, 5);
        let (src, writer) = tcp_source(&data).await;
        let (tx, mut rx) = pipe().unwrap();
        let copy = spawn(async move {
            let res = splice_copy(&src, &tx).await;
            (res, src)
        });
        within(HANG, rx.readable(), "the copy delivered nothing")
            .await
            .unwrap();
        // The pipe fills and the copy stalls on it, its private pipe holding bytes.
        settle().await;
        let head = drain_now(&mut rx).await;
        drop(rx);
        let (res, mut src) = within(HANG, copy, "the copy hung").await.unwrap();
        assert_eq!(res.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
        let rest = rest_of(&mut src).await;
        assert!(!head.is_empty());
        assert!(head[..] == data[..head.len()], "the delivered bytes differ");
        assert!(
            rest[..] == data[TOTAL - rest.len()..],
            "the source's bytes differ"
        );
        assert!(head.len() + rest.len() <= TOTAL, "bytes came twice");
        let lost = TOTAL - head.len() - rest.len();
        assert!(lost <= 64 * 1024, "{lost} bytes lost");
        drop(src);
        writer.await.unwrap();
    });
}
