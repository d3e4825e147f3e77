//! `AsyncRead::poll_read_vectored` of sockets and pipes: one `recvmsg` or `readv` fills the
//! slices in order (futures-io's default would fill only the first), empty slices are
//! skipped, and a vectored read that comes back short waits for the next edge exactly as a
//! plain read does, including where the kernel stops it early with data still queued.

mod support;

use std::io::{IoSliceMut, Write};
use std::os::fd::AsRawFd;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream, UnixStream};
use support::{conn_with_urgent_mark, tcp_pair, within};

const HANG: Duration = Duration::from_secs(10);

/// Reads once into slices of 3, 0, 5 and 64 bytes; returns the count and the bytes in
/// slice order.
async fn read_into_three<R: AsyncReadExt + Unpin>(reader: &mut R) -> (usize, Vec<u8>) {
    let (mut a, mut b, mut c) = ([0u8; 3], [0u8; 5], [0u8; 64]);
    let mut empty = [0u8; 0];
    let n = {
        let mut bufs = [
            IoSliceMut::new(&mut a),
            IoSliceMut::new(&mut empty),
            IoSliceMut::new(&mut b),
            IoSliceMut::new(&mut c),
        ];
        within(HANG, reader.read_vectored(&mut bufs), "a vectored read")
            .await
            .unwrap()
    };
    let mut all = [&a[..], &b[..], &c[..]].concat();
    all.truncate(n);
    (n, all)
}

#[overlap::test]
async fn a_tcp_stream_and_its_halves_fill_every_slice_in_one_read() {
    let (mut a, mut b) = tcp_pair().await;
    a.write_all(b"hello vectored world").await.unwrap();
    let (n, got) = read_into_three(&mut b).await;
    assert_eq!(
        n, 20,
        "one read spread over the slices, not the first one only"
    );
    assert_eq!(got, b"hello vectored world");

    let (mut read_half, _write_half) = TcpStream::split(&mut b);
    a.write_all(b"borrowed half").await.unwrap();
    assert_eq!(read_into_three(&mut read_half).await.1, b"borrowed half");

    let (mut owned_read, _owned_write) = b.into_split();
    a.write_all(b"owned half!").await.unwrap();
    assert_eq!(read_into_three(&mut owned_read).await.1, b"owned half!");

    // At end of file a vectored read is 0, every time.
    drop(a);
    assert_eq!(read_into_three(&mut owned_read).await.0, 0);
    assert_eq!(read_into_three(&mut owned_read).await.0, 0);
}

#[overlap::test]
async fn a_unix_stream_and_a_pipe_fill_every_slice_in_one_read() {
    let (mut a, mut b) = UnixStream::pair().unwrap();
    a.write_all(b"unix, vectored").await.unwrap();
    assert_eq!(
        read_into_three(&mut b).await,
        (14, b"unix, vectored".to_vec())
    );
    let (mut read_half, _) = UnixStream::split(&mut b);
    a.write_all(b"half of unix").await.unwrap();
    assert_eq!(read_into_three(&mut read_half).await.1, b"half of unix");

    let (mut tx, mut rx) = overlap::pipe::pipe().unwrap();
    tx.write_all(b"through a pipe").await.unwrap();
    assert_eq!(
        read_into_three(&mut rx).await,
        (14, b"through a pipe".to_vec())
    );
    drop(tx);
    assert_eq!(read_into_three(&mut rx).await.0, 0);
}

/// All-empty slices read nothing at once, with nothing to read; a run of more empty slices
/// than one syscall takes (1024) before a real one still reads, not a false end of file.
async fn empty_slices_then_data<R, W>(reader: &mut R, writer: &mut W)
where
    R: AsyncReadExt + Unpin,
    W: AsyncWriteExt + Unpin,
{
    let mut empties: Vec<[u8; 0]> = vec![[]; 2000];
    let n = {
        let mut bufs: Vec<IoSliceMut<'_>> =
            empties.iter_mut().map(|e| IoSliceMut::new(e)).collect();
        within(HANG, reader.read_vectored(&mut bufs), "empty slices")
            .await
            .unwrap()
    };
    assert_eq!(n, 0);
    writer.write_all(b"after 2000 empty slices").await.unwrap();
    let mut room = [0u8; 64];
    let n = {
        let mut bufs: Vec<IoSliceMut<'_>> =
            empties.iter_mut().map(|e| IoSliceMut::new(e)).collect();
        bufs.push(IoSliceMut::new(&mut room));
        within(
            HANG,
            reader.read_vectored(&mut bufs),
            "a slice after empty ones",
        )
        .await
        .unwrap()
    };
    assert_eq!(&room[..n], b"after 2000 empty slices");
}

#[overlap::test]
async fn empty_slices_read_nothing_at_once_and_a_long_run_of_them_is_skipped() {
    let (mut a, mut b) = tcp_pair().await;
    empty_slices_then_data(&mut b, &mut a).await;
    let (mut a, mut b) = UnixStream::pair().unwrap();
    empty_slices_then_data(&mut b, &mut a).await;
    let (mut tx, mut rx) = overlap::pipe::pipe().unwrap();
    empty_slices_then_data(&mut rx, &mut tx).await;
}

/// A short vectored read waits for the next edge, and that edge comes: data written after
/// it (from another thread, while the reader waits) is read, over many rounds.
#[overlap::test]
async fn a_short_vectored_read_waits_for_the_next_edge_and_gets_it() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let writer = std::thread::spawn(move || {
        let mut peer = std::net::TcpStream::connect(addr).unwrap();
        for round in 0..200u32 {
            peer.write_all(format!("round {round:03}").as_bytes())
                .unwrap();
            std::thread::yield_now();
        }
    });
    let (mut conn, _) = listener.accept().await.unwrap();
    let mut got = Vec::new();
    loop {
        let (mut a, mut b) = ([0u8; 7], [0u8; 9]);
        let n = {
            let mut bufs = [IoSliceMut::new(&mut a), IoSliceMut::new(&mut b)];
            within(HANG, conn.read_vectored(&mut bufs), "the next round")
                .await
                .unwrap()
        };
        if n == 0 {
            break;
        }
        got.extend_from_slice(&[&a[..], &b[..]].concat()[..n]);
    }
    writer.join().unwrap();
    let want: String = (0..200).map(|r| format!("round {r:03}")).collect();
    assert_eq!(String::from_utf8(got).unwrap(), want);
}

/// The kernel stops a read early at a TCP urgent mark and after a Unix message that carried
/// fds, with data still queued and no new edge to come: the next vectored read gets it.
#[test]
fn a_vectored_read_stopped_early_by_the_kernel_still_gets_the_rest() {
    overlap::block_on(async {
        let (_peer, mut conn) = conn_with_urgent_mark(b"hello", b"world").await;
        assert_eq!(read_into_three(&mut conn).await.1, b"hello");
        assert_eq!(read_into_three(&mut conn).await.1, b"world");

        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut ours = UnixStream::from_std(ours).unwrap();
        let devnull = std::fs::File::open("/dev/null").unwrap();
        let sent = support::sendmsg_fd(theirs.as_raw_fd(), b"ab", devnull.as_raw_fd()).unwrap();
        assert_eq!(sent, 2);
        (&theirs).write_all(b"cd").unwrap();
        assert_eq!(read_into_three(&mut ours).await.1, b"ab");
        assert_eq!(read_into_three(&mut ours).await.1, b"cd");
    });
}
