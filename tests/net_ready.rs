//! `ready(Interest)` on sockets and their halves, the readiness poll functions and
//! `TcpStream::poll_peek`: tokio's readiness API, used in tokio's `ready` loop.

mod support;

use std::future::poll_fn;
use std::io::{self, ErrorKind};
use std::net::Shutdown;
use std::time::Duration;

use overlap::block_on;
use overlap::future::FutureExt;
use overlap::io::{Interest, Ready};
use overlap::net::{TcpStream, UdpSocket, UnixDatagram, UnixStream};
use support::{tcp_pair, within};

const HANG: Duration = Duration::from_secs(30);
const TOTAL: usize = 1 << 20;
const CHUNK: usize = 16 * 1024;

/// The stream calls tokio's `ready` loop uses.
trait ReadyStream {
    async fn ready(&self, interest: Interest) -> io::Result<Ready>;
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize>;
    fn try_write(&self, buf: &[u8]) -> io::Result<usize>;
}

macro_rules! ready_stream {
    ($($t:ty),*) => {$(
        impl ReadyStream for $t {
            async fn ready(&self, interest: Interest) -> io::Result<Ready> {
                <$t>::ready(self, interest).await
            }
            fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
                <$t>::try_read(self, buf)
            }
            fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
                <$t>::try_write(self, buf)
            }
        }
    )*};
}
ready_stream!(TcpStream, UnixStream);

fn byte(i: usize, seed: usize) -> u8 {
    ((i * 7 + seed) % 251) as u8
}

/// Sends `TOTAL` bytes and receives `TOTAL` bytes with tokio's loop: one `ready` for both
/// directions, then `try_read`/`try_write` on what it reported. Returns the loop's turns.
async fn ready_loop(s: impl ReadyStream, seed: usize, peer_seed: usize) -> io::Result<usize> {
    let out: Vec<u8> = (0..TOTAL).map(|i| byte(i, seed)).collect();
    let mut buf = vec![0u8; CHUNK];
    let (mut sent, mut got, mut turns) = (0, 0, 0);
    while sent < TOTAL || got < TOTAL {
        let mut interest = Interest::READABLE;
        if sent < TOTAL {
            interest |= Interest::WRITABLE;
        }
        let r = s.ready(interest).await?;
        turns += 1;
        if r.is_readable() {
            match s.try_read(&mut buf) {
                Ok(0) => panic!("end of file after {got} bytes"),
                Ok(n) => {
                    for (i, &b) in buf[..n].iter().enumerate() {
                        assert_eq!(b, byte(got + i, peer_seed), "byte {}", got + i);
                    }
                    got += n;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        if r.is_writable() && sent < TOTAL {
            let end = (sent + CHUNK).min(TOTAL);
            match s.try_write(&out[sent..end]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(turns)
}

#[test]
fn tcp_ready_loop_echoes_a_mebibyte_both_ways_without_spinning() {
    block_on(async {
        let (a, b) = tcp_pair().await;
        run_echo(a, b).await;
    });
}

#[test]
fn unix_ready_loop_echoes_a_mebibyte_both_ways_without_spinning() {
    block_on(async {
        let (a, b) = UnixStream::pair().unwrap();
        run_echo(a, b).await;
    });
}

/// Both ends run the loop in tasks of their own; neither spins: the tasks are polled far
/// fewer times than KiBs move, and the loops turn a small multiple of the chunks moved. (A
/// `WouldBlock` that left the readiness set would turn a loop again and again while the
/// peer catches up, yielding only when the cooperative budget runs out.)
async fn run_echo<S: ReadyStream + 'static>(a: S, b: S) {
    let polls_before = overlap::metrics().task_polls;
    let ta = overlap::spawn(ready_loop(a, 1, 2));
    let tb = overlap::spawn(ready_loop(b, 2, 1));
    let turns_a = within(HANG, ta, "echo a").await.unwrap().unwrap();
    let turns_b = within(HANG, tb, "echo b").await.unwrap().unwrap();
    let polls = overlap::metrics().task_polls - polls_before;
    let kib = TOTAL / 1024;
    assert!(
        polls < kib as u64,
        "{polls} task polls for {kib} KiB each way"
    );
    // About two turns per chunk each way (one to write it, one to read the peer's).
    let chunks = TOTAL / CHUNK;
    for turns in [turns_a, turns_b] {
        assert!(
            turns < 8 * chunks,
            "{turns} loop turns for {chunks} chunks each way"
        );
    }
}

#[test]
fn an_idle_socket_is_writable_but_not_readable() {
    block_on(async {
        let (a, _b) = tcp_pair().await;
        let (u, _v) = UnixStream::pair().unwrap();
        let both = Interest::READABLE | Interest::WRITABLE;
        let r = within(HANG, a.ready(both), "tcp writable").await.unwrap();
        assert!(r.is_writable() && !r.is_readable(), "{r:?}");
        let r = within(HANG, u.ready(both), "unix writable").await.unwrap();
        assert!(r.is_writable() && !r.is_readable(), "{r:?}");
        assert!(a.ready(Interest::READABLE).now_or_never().is_none());
        assert!(u.ready(Interest::READABLE).now_or_never().is_none());
        let r = a.ready(Interest::WRITABLE).now_or_never().unwrap().unwrap();
        assert!(r.is_writable());
        // The poll functions agree.
        assert!(poll_fn(|cx| a.poll_read_ready(cx)).now_or_never().is_none());
        assert!(poll_fn(|cx| u.poll_write_ready(cx))
            .now_or_never()
            .is_some());
    });
}

#[test]
fn ready_reports_read_closed_after_the_peers_shutdown() {
    block_on(async {
        let (a, b) = tcp_pair().await;
        let (u, v) = UnixStream::pair().unwrap();
        a.shutdown(Shutdown::Write).unwrap();
        u.shutdown(Shutdown::Write).unwrap();
        let both = Interest::READABLE | Interest::WRITABLE;
        for r in [
            within(HANG, wait_read_closed(&b, both), "tcp read-closed").await,
            within(HANG, wait_read_closed(&v, both), "unix read-closed").await,
        ] {
            assert!(r.is_read_closed() && r.is_readable(), "{r:?}");
            assert!(!r.is_write_closed(), "{r:?}");
        }
        assert_eq!(b.try_read(&mut [0u8; 8]).unwrap(), 0);
        assert_eq!(v.try_read(&mut [0u8; 8]).unwrap(), 0);
        // Read-closed stays: the next wait returns at once.
        let r = b.ready(Interest::READABLE).now_or_never().unwrap().unwrap();
        assert!(r.is_read_closed());
    });
}

/// `ready` until it reports the read side closed (the writable edge may come first).
async fn wait_read_closed(s: &impl ReadyStream, interest: Interest) -> Ready {
    loop {
        let r = s.ready(interest).await.unwrap();
        if r.is_read_closed() {
            return r;
        }
        assert!(r.is_writable(), "{r:?}");
        overlap::yield_now().await;
    }
}

#[test]
fn stream_halves_have_ready() {
    block_on(async {
        let (mut a, b) = UnixStream::pair().unwrap();
        let (rd, wr) = UnixStream::split(&mut a);
        let r = within(HANG, wr.ready(Interest::WRITABLE), "writable")
            .await
            .unwrap();
        assert!(r.is_writable());
        assert!(rd.ready(Interest::READABLE).now_or_never().is_none());
        b.shutdown(Shutdown::Write).unwrap();
        let r = within(HANG, rd.ready(Interest::READABLE), "read-closed")
            .await
            .unwrap();
        assert!(r.is_read_closed());
    });
}

#[test]
fn datagram_sockets_have_ready_and_poll_functions() {
    block_on(async {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        b.connect(a.local_addr().unwrap()).await.unwrap();
        let r = within(HANG, b.ready(Interest::WRITABLE), "udp writable")
            .await
            .unwrap();
        assert!(r.is_writable());
        assert!(poll_fn(|cx| a.poll_recv_ready(cx)).now_or_never().is_none());
        within(HANG, poll_fn(|cx| b.poll_send_ready(cx)), "udp send-ready")
            .await
            .unwrap();
        b.try_send(b"ping").unwrap();
        within(HANG, poll_fn(|cx| a.poll_recv_ready(cx)), "udp recv-ready")
            .await
            .unwrap();
        let r = a.ready(Interest::READABLE).await.unwrap();
        assert!(r.is_readable());
        let mut buf = [0u8; 8];
        assert_eq!(a.try_recv(&mut buf).unwrap(), 4);
        // The WouldBlock of the next try clears the readiness: the wait is pending again.
        assert_eq!(
            a.try_recv(&mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        assert!(a.ready(Interest::READABLE).now_or_never().is_none());

        let (u, v) = UnixDatagram::pair().unwrap();
        assert!(poll_fn(|cx| u.poll_recv_ready(cx)).now_or_never().is_none());
        v.send(b"x").await.unwrap();
        let r = within(HANG, u.ready(Interest::READABLE), "unix datagram")
            .await
            .unwrap();
        assert!(r.is_readable());
        within(HANG, poll_fn(|cx| v.poll_send_ready(cx)), "send-ready")
            .await
            .unwrap();
    });
}

#[test]
fn tcp_poll_peek_leaves_the_data_queued() {
    block_on(async {
        let (a, b) = tcp_pair().await;
        let mut buf = [0u8; 8];
        assert!(poll_fn(|cx| b.poll_peek(cx, &mut buf))
            .now_or_never()
            .is_none());
        within(HANG, a.writable(), "writable").await.unwrap();
        assert_eq!(a.try_write(b"peek").unwrap(), 4);
        let n = within(HANG, poll_fn(|cx| b.poll_peek(cx, &mut buf)), "peek")
            .await
            .unwrap();
        assert_eq!(&buf[..n], b"peek");
        // The read halves peek the same way.
        let (rd, _wr) = b.into_split();
        let mut half = [0u8; 2];
        let n = within(HANG, poll_fn(|cx| rd.poll_peek(cx, &mut half)), "half")
            .await
            .unwrap();
        assert_eq!(&half[..n], b"pe");
        let mut again = [0u8; 8];
        assert_eq!(rd.try_read(&mut again).unwrap(), 4);
        assert_eq!(&again[..4], b"peek");
    });
}

#[test]
fn unix_read_halves_peek() {
    block_on(async {
        let (a, b) = UnixStream::pair().unwrap();
        let (rd, _wr) = b.into_split();
        within(HANG, a.writable(), "writable").await.unwrap();
        a.try_write(b"abc").unwrap();
        let mut buf = [0u8; 2];
        assert_eq!(within(HANG, rd.peek(&mut buf), "peek").await.unwrap(), 2);
        let mut all = [0u8; 3];
        assert_eq!(rd.try_read(&mut all).unwrap(), 3);
        assert_eq!((&buf, &all), (b"ab", b"abc"));
    });
}
