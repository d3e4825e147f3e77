//! `AsyncWriteBufExt::write_buf` and `write_all_buf`, tokio's writes that drop what they
//! wrote from the front of a `BytesMut`, `VecDeque<u8>`, `Cursor` or `&[u8]`, over real
//! loopback TCP and pipes.

mod support;

use std::collections::VecDeque;
use std::io::{self, Cursor};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::FutureExt;
use overlap::codec::BytesMut;
use overlap::io::{AsyncReadExt, AsyncWrite, AsyncWriteBufExt, AsyncWriteExt};
use overlap::net::TcpStream;
use support::within;

const HANG: Duration = Duration::from_secs(20);

/// Reads `rx` to its end in a task of its own, so the writer never waits on the test.
fn read_all_in_a_task(mut rx: TcpStream) -> overlap::JoinHandle<Vec<u8>> {
    overlap::spawn(async move {
        let mut got = Vec::new();
        rx.read_to_end(&mut got).await.unwrap();
        got
    })
}

/// One write into an empty pipe takes what the pipe holds and no more; the buffer keeps
/// exactly the bytes after them, and the pipe's reader gets exactly the bytes before.
#[test]
fn write_buf_drops_from_the_buffer_what_one_write_took() {
    overlap::block_on(within(
        HANG,
        async {
            let (mut tx, mut rx) = overlap::pipe::pipe().unwrap();
            // More than any default pipe holds (64 KiB; less when the user's pipe pages run low).
            let sent = support::pattern_seeded(256 * 1024, 1);
            let mut buf = BytesMut::from(&sent[..]);
            let n = tx.write_buf(&mut buf).await.unwrap();
            assert!(n > 0 && n < sent.len(), "one write into a pipe took {n}");
            assert!(buf[..] == sent[n..], "the buffer is not what was left");
            let mut got = vec![0u8; n];
            rx.read_exact(&mut got).await.unwrap();
            assert!(
                got == sent[..n],
                "the pipe holds other bytes than were dropped"
            );

            // The other sources, through the same pipe, now empty.
            let mut slice: &[u8] = b"slice";
            assert_eq!(tx.write_buf(&mut slice).await.unwrap(), 5);
            assert!(slice.is_empty());
            let mut cursor = Cursor::new(b"..cursor".to_vec());
            cursor.set_position(2);
            assert_eq!(tx.write_buf(&mut cursor).await.unwrap(), 6);
            assert_eq!(cursor.position(), 8);
            let mut queue: VecDeque<u8> = b"que".iter().copied().collect();
            queue.push_front(b'>');
            assert_eq!(tx.write_buf(&mut queue).await.unwrap(), 4);
            assert!(queue.is_empty());
            let mut got = [0u8; 15];
            rx.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"slicecursor>que");
        },
        "write_buf",
    ));
}

/// A megabyte from each kind of buffer (a `VecDeque` whose bytes wrap around its end, a
/// `Cursor` from a position past its start) arrives whole and in order, and leaves each
/// buffer empty.
#[test]
fn write_all_buf_sends_a_megabyte_from_each_kind_of_buffer() {
    overlap::block_on(within(
        HANG,
        async {
            let sent = support::pattern_seeded(1 << 20, 2);
            let (mut a, b) = support::tcp_pair().await;
            let reader = read_all_in_a_task(b);

            let mut bytes = BytesMut::from(&sent[..]);
            a.write_all_buf(&mut bytes).await.unwrap();
            assert!(bytes.is_empty());

            let mut queue = VecDeque::with_capacity(sent.len());
            queue.extend(&sent[1000..]);
            for &byte in sent[..1000].iter().rev() {
                queue.push_front(byte);
            }
            assert!(!queue.as_slices().1.is_empty(), "the queue does not wrap");
            a.write_all_buf(&mut queue).await.unwrap();
            assert!(queue.is_empty());

            let mut prefixed = b"skip me".to_vec();
            prefixed.extend_from_slice(&sent);
            let mut cursor = Cursor::new(prefixed);
            cursor.set_position(7);
            a.write_all_buf(&mut cursor).await.unwrap();
            assert_eq!(cursor.position(), 7 + sent.len() as u64);

            let mut slice = &sent[..];
            a.write_all_buf(&mut slice).await.unwrap();
            assert!(slice.is_empty());

            a.close().await.unwrap();
            let got = reader.await.unwrap();
            assert_eq!(got.len(), 4 * sent.len());
            for (i, part) in got.chunks(sent.len()).enumerate() {
                assert!(part == &sent[..], "buffer {i} arrived changed");
            }
        },
        "write_all_buf",
    ));
}

/// Cut off by a timeout while the peer reads nothing, `write_all_buf` leaves in the buffer
/// exactly the bytes not written: writing it again once the peer reads delivers every
/// byte once, in order.
#[test]
fn a_cancelled_write_all_buf_leaves_exactly_the_unwritten_bytes() {
    overlap::block_on(within(
        HANG,
        async {
            // More than loopback's socket buffers hold, so the write must wait.
            let sent = support::pattern_seeded(32 << 20, 3);
            let (mut a, b) = support::tcp_pair().await;
            let mut buf = BytesMut::from(&sent[..]);
            let cut =
                overlap::time::timeout(Duration::from_millis(50), a.write_all_buf(&mut buf)).await;
            assert!(cut.is_err(), "32 MiB went out with nobody reading");
            let written = sent.len() - buf.len();
            assert!(written > 0, "nothing was written before the timeout");
            assert!(
                buf[..] == sent[written..],
                "the buffer is not the unwritten tail"
            );

            let reader = read_all_in_a_task(b);
            a.write_all_buf(&mut buf).await.unwrap();
            assert!(buf.is_empty());
            a.close().await.unwrap();
            let got = reader.await.unwrap();
            assert_eq!(got.len(), sent.len(), "bytes lost or sent twice");
            assert!(got == sent, "the bytes arrived changed");
        },
        "cancelled write_all_buf",
    ));
}

/// A buffer with nothing left gives `Ok(0)` (and `write_all_buf` `Ok(())`) at once, even
/// to a writer that cannot take a byte now; so does a `Cursor` set past its end.
#[test]
fn an_empty_buffer_completes_at_once_without_a_write() {
    overlap::block_on(within(
        HANG,
        async {
            let (mut tx, _rx) = overlap::pipe::pipe().unwrap();
            let chunk = [7u8; 4096];
            loop {
                match tx.try_write(&chunk) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("filling the pipe: {e}"),
                }
            }
            let mut one: &[u8] = b"x";
            assert!(
                tx.write_buf(&mut one).now_or_never().is_none(),
                "a full pipe took a byte"
            );
            assert_eq!(one, b"x", "a write that waits dropped the byte");

            let mut empty = BytesMut::new();
            assert_eq!(tx.write_buf(&mut empty).now_or_never().unwrap().unwrap(), 0);
            tx.write_all_buf(&mut empty)
                .now_or_never()
                .unwrap()
                .unwrap();
            let mut past_end = Cursor::new(vec![1u8, 2, 3]);
            past_end.set_position(10);
            assert_eq!(
                tx.write_buf(&mut past_end).now_or_never().unwrap().unwrap(),
                0
            );
            tx.write_all_buf(&mut past_end)
                .now_or_never()
                .unwrap()
                .unwrap();
        },
        "empty buffers",
    ));
}

/// A reader gone gives an error, not a signal or a hang, and the buffer keeps every byte
/// that was not written: all of them for a pipe whose reader closed first, a tail of them
/// for a TCP peer that reset mid-stream.
#[test]
fn a_peer_gone_gives_an_error_and_the_buffer_keeps_the_unwritten_bytes() {
    overlap::block_on(within(
        HANG,
        async {
            let (mut tx, rx) = overlap::pipe::pipe().unwrap();
            drop(rx);
            let mut buf = BytesMut::from(&b"nobody reads this"[..]);
            let err = tx.write_all_buf(&mut buf).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
            assert_eq!(buf, b"nobody reads this"[..]);

            let sent = support::pattern_seeded(32 << 20, 4);
            let (mut a, mut b) = support::tcp_pair().await;
            let mut queue: VecDeque<u8> = sent.iter().copied().collect();
            let reset = async {
                let mut some = [0u8; 1000];
                b.read_exact(&mut some).await.unwrap();
                // Closing with unread bytes resets the connection.
                drop(b);
            };
            let (written, ()) = overlap::join!(a.write_all_buf(&mut queue), reset);
            let err = written.unwrap_err();
            assert!(
                matches!(
                    err.kind(),
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                ),
                "{err}"
            );
            assert!(queue.len() < sent.len() - 1000 + 1, "{} left", queue.len());
            let tail = queue.make_contiguous();
            assert!(
                tail == &sent[sent.len() - tail.len()..],
                "the queue is not a tail"
            );
        },
        "peer gone",
    ));
}

/// A writer that takes nothing from a buffer with bytes makes `write_all_buf` fail with
/// `WriteZero` (not loop), and one that claims more than it was given is `InvalidData`
/// with the buffer untouched.
#[test]
fn a_writer_taking_no_bytes_is_write_zero_and_overclaims_are_capped() {
    /// Reports `claim` bytes written, whatever it was given.
    struct Claims(usize);

    impl AsyncWrite for Claims {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(self.0))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    overlap::block_on(async {
        let mut buf = BytesMut::from(&b"abc"[..]);
        let err = Claims(0).write_all_buf(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WriteZero);
        assert_eq!(buf, b"abc"[..]);
        let err = Claims(100).write_buf(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let err = Claims(4).write_all_buf(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(buf, b"abc"[..], "an over-claimed write dropped bytes");
        assert_eq!(Claims(2).write_buf(&mut buf).await.unwrap(), 2);
        assert_eq!(buf, b"c"[..]);
    });
}
