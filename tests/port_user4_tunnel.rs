//! A user's port-forwarding multiplexer (`ssh -L` over one connection), sketched as one
//! would for tokio and then written for overlap (`port_user4_tunnel/mux.rs` and
//! `sides.rs`): a near end accepts TCP clients on loopback and carries each as a numbered
//! channel over one TCP connection to a far end, which opens a Unix-socket connection (in a
//! temp dir) per channel to a backend that upper-cases what it reads. Frames are
//! length-prefixed (channel, kind: open, data, end of file, close, window update); each
//! channel has a credit window per direction, so a client that stops reading stalls only
//! its own channel; an end of file is carried each way as a half-close; a channel that
//! fails is closed on the other end too, and its TCP client reset.
//!
//! As for tokio, the mux connection is split with `into_split` (a reader task and a writer
//! task fed by an `mpsc` channel, which sends whatever `recv_many` finds queued in one
//! write), each channel's TCP client with the borrowed `split` (its two pumps joined with
//! `try_join!`, so one failing drops the other), each backend connection with
//! `into_split`; the near end's accept loop is a `select!` against the mux reader, the far
//! end's backend connects run under a `timeout`, and a channel's credit waits on a
//! `Notify`.
//!
//! The tests check exact bytes for twenty channels carrying 1 MiB each way at once, that a
//! client not reading leaves the other channels running, costs no polls while it waits (and
//! gets every byte once it reads), half-closes both ways (a client's `shutdown(Write)`
//! reaches the backend as its end of input and the backend still answers; a backend that
//! closes gives its client the end of the stream, and the client writing on after that gets
//! an error), that a client's reset closes its channel on both ends and its backend
//! connection without leaking an fd, and that the mux connection dying (reset, or a clean
//! end) ends every channel with an error for its client, both ends' tasks with the mux's
//! error, every backend connection, with no hang and no fd left.
//!
//! What the port changed, against tokio: tokio's `stream.shutdown().await` is `close()`
//! (futures' `AsyncWriteExt`); `stream.split()` must be written `TcpStream::split(&mut
//! stream)`, since futures' `AsyncReadExt::split` takes the name; `select!` is futures'
//! (branches `.fuse()`d), and `Rc`/`Cell` replace `Arc`/atomics since tasks need not be
//! `Send`. A client reads its body with `overlap::io::read_to_end` (futures' is quadratic
//! on a socket). The first draft queued a peer's close behind the channel's data, and a
//! channel whose pump was blocked writing to a backend that was itself blocked writing
//! never saw it: the close now comes through a `oneshot` raced (`select!`) against both
//! pumps, as it would have to with tokio.

mod support;

#[path = "port_user4_tunnel/mux.rs"]
mod mux;
#[path = "port_user4_tunnel/sides.rs"]
mod sides;

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use mux::{Mux, WINDOW};
use overlap::future::{Either, FutureExt};
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpSocket, TcpStream, UnixListener};
use overlap::sync::oneshot;
use overlap::task::JoinHandle;
use overlap::time::sleep;
use sides::BackendLog;
use support::{open_fds, pattern_seeded, run_in_child, tcp_pair, until, within, TempDir};

const HANG: Duration = Duration::from_secs(20);
const MIB: usize = 1 << 20;

struct Tunnel {
    _dir: TempDir,
    /// Where clients connect: the near end's listener.
    addr: SocketAddr,
    near: Rc<Mux>,
    near_task: JoinHandle<io::Result<()>>,
    far: Rc<Mux>,
    far_task: JoinHandle<io::Result<()>>,
    log: Rc<BackendLog>,
    backend: JoinHandle<()>,
    /// With a cable: cuts the mux connection (`true`: with a reset).
    cut: Option<oneshot::Sender<bool>>,
}

/// A backend, a far end, a near end and the mux connection between them: direct, or
/// through a cable the test can cut.
async fn tunnel(name: &str, with_cable: bool) -> Tunnel {
    let dir = TempDir::new(name);
    let path = dir.join("backend.sock");
    let log = Rc::new(BackendLog::default());
    let backend_listener = UnixListener::bind(&path).unwrap();
    let backend = overlap::spawn(sides::backend(backend_listener, log.clone()));
    let (near_conn, far_conn, cut) = if with_cable {
        let (near_conn, a) = tcp_pair().await;
        let (b, far_conn) = tcp_pair().await;
        let (cut, cut_rx) = oneshot::channel();
        overlap::spawn(cable(a, b, cut_rx));
        (near_conn, far_conn, Some(cut))
    } else {
        let (near_conn, far_conn) = tcp_pair().await;
        (near_conn, far_conn, None)
    };
    let (far, far_task) = sides::far(far_conn, path);
    // Small kernel buffers for accepted clients (they inherit the listener's), so what a
    // client sends waits in the tunnel's window, not in megabytes of socket buffer.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    socket.set_send_buffer_size(64 * 1024).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(128).unwrap();
    let addr = listener.local_addr().unwrap();
    let (near, near_task) = sides::near(listener, near_conn);
    Tunnel {
        _dir: dir,
        addr,
        near,
        near_task,
        far,
        far_task,
        log,
        backend,
        cut,
    }
}

/// Carries bytes both ways until told to cut (then resets both sides, or closes them).
async fn cable(mut a: TcpStream, mut b: TcpStream, cut: oneshot::Receiver<bool>) {
    let reset = overlap::select! {
        _ = overlap::io::copy_bidirectional(&mut a, &mut b).fuse() => false,
        reset = cut.fuse() => reset.unwrap_or(false),
    };
    if reset {
        a.set_zero_linger().unwrap();
        b.set_zero_linger().unwrap();
    }
}

impl Tunnel {
    /// Waits until neither end has a channel open and the backend has no connection.
    async fn until_idle(&self) {
        let idle = || {
            self.near.open_channels() == 0
                && self.far.open_channels() == 0
                && self.log.live.get() == 0
        };
        until(idle, "the tunnel to go idle").await;
    }
}

/// What the backend sends back for `data` followed by an end of file.
fn answer(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_ascii_uppercase();
    out.extend_from_slice(b"BYE\n");
    out
}

/// Sends `data` through the tunnel and shuts down the write side, while reading the whole
/// answer.
async fn exchange(addr: SocketAddr, data: &[u8]) -> io::Result<Vec<u8>> {
    let mut conn = TcpStream::connect(addr).await?;
    let (mut rd, mut wr) = TcpStream::split(&mut conn);
    let send = async {
        wr.write_all(data).await?;
        wr.close().await
    };
    let recv = async {
        let mut got = Vec::new();
        overlap::io::read_to_end(&mut rd, &mut got).await?;
        Ok(got)
    };
    let ((), got) = overlap::try_join!(send, recv)?;
    Ok(got)
}

/// A pattern that does not start with `!` (which the backend takes as "close now").
fn data(len: usize, seed: u32) -> Vec<u8> {
    let mut bytes = pattern_seeded(len, seed);
    if let Some(first) = bytes.first_mut() {
        *first = b'a';
    }
    bytes
}

#[overlap::test]
async fn twenty_channels_carry_a_mebibyte_each_way_exactly() {
    let t = tunnel("tunnel-twenty", false).await;
    let clients = (0..20).map(|i| {
        let sent = data(MIB, 100 + i);
        async move {
            let got = exchange(t.addr, &sent).await.unwrap();
            assert!(
                got == answer(&sent),
                "channel {i}: {} bytes back",
                got.len()
            );
        }
    });
    within(HANG, overlap::future::join_all(clients), "twenty channels").await;
    t.until_idle().await;
    assert_eq!(t.log.accepted.get(), 20);
    assert_eq!(t.log.answered_after_eof.get(), 20);
    assert!(t.near.most_queued.get() <= WINDOW && t.far.most_queued.get() <= WINDOW);
    assert!(t.near.dead().is_none() && t.far.dead().is_none());
}

#[overlap::test]
async fn a_client_that_does_not_read_stalls_only_its_own_channel() {
    let t = tunnel("tunnel-stall", false).await;
    // Small buffers on the client, so its channel really fills up.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    socket.set_send_buffer_size(16 * 1024).unwrap();
    let mut stalled = socket.connect(t.addr).await.unwrap();
    let total = 4 * MIB;
    let sent = data(total, 7);
    let written = Rc::new(std::cell::Cell::new(0usize));
    let (mut rd, mut wr) = TcpStream::split(&mut stalled);
    let writer = async {
        for chunk in sent.chunks(64 * 1024) {
            wr.write_all(chunk).await?;
            written.set(written.get() + chunk.len());
        }
        wr.close().await
    };
    let mut writer = std::pin::pin!(writer.fuse());
    // Let the stalled channel fill every buffer on its way.
    let mut last = usize::MAX;
    loop {
        overlap::select! {
            res = writer => panic!("all {total} bytes went in unread: {res:?}"),
            _ = sleep(Duration::from_millis(50)).fuse() => {}
        }
        if written.get() == last {
            break;
        }
        last = written.get();
    }
    // Stalled, the tunnel waits: no task spins on the full sockets.
    let m0 = overlap::metrics();
    sleep(Duration::from_millis(100)).await;
    let polls = overlap::metrics().task_polls - m0.task_polls;
    assert!(polls <= 40, "{polls} polls in 100 ms of stall");
    // The other channels go on meanwhile.
    let others = (0..5).map(|i| async move {
        let sent = data(256 * 1024, 200 + i);
        let got = exchange(t.addr, &sent).await.unwrap();
        assert!(
            got == answer(&sent),
            "channel {i}: {} bytes back",
            got.len()
        );
    });
    let others = overlap::future::join_all(others);
    overlap::select! {
        res = writer => panic!("all {total} bytes went in unread: {res:?}"),
        _ = within(HANG, others, "the other channels").fuse() => {}
    }
    assert!(written.get() < total, "the stall never came");
    // Once it reads, every byte arrives, in order.
    let reader = async {
        let mut got = Vec::new();
        overlap::io::read_to_end(&mut rd, &mut got)
            .await
            .map(|_| got)
    };
    let (w, got) = within(
        HANG,
        overlap::future::join(writer, reader),
        "the stalled channel",
    )
    .await;
    w.unwrap();
    assert!(got.unwrap() == answer(&sent));
    t.until_idle().await;
    assert!(t.near.most_queued.get() <= WINDOW && t.far.most_queued.get() <= WINDOW);
}

#[overlap::test]
async fn half_closes_cross_the_tunnel_both_ways() {
    let t = tunnel("tunnel-half-close", false).await;
    let body = async {
        // The client's end of input reaches the backend, which still answers after it.
        let mut conn = TcpStream::connect(t.addr).await.unwrap();
        conn.write_all(b"abc").await.unwrap();
        let mut got = [0u8; 3];
        conn.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ABC");
        conn.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        overlap::io::read_to_end(&mut conn, &mut rest)
            .await
            .unwrap();
        assert_eq!(rest, b"BYE\n");
        assert_eq!(t.log.answered_after_eof.get(), 1);
        drop(conn);
        t.until_idle().await;

        // A backend that closes first: its client reads the end of the stream, and can
        // still shut down its own side for a clean close.
        let mut conn = TcpStream::connect(t.addr).await.unwrap();
        conn.write_all(b"!").await.unwrap();
        let mut got = Vec::new();
        overlap::io::read_to_end(&mut conn, &mut got).await.unwrap();
        assert_eq!(got, b"closing\n");
        conn.close().await.unwrap();
        t.until_idle().await;
        drop(conn);

        // A client writing on after that gets an error: its bytes have nowhere to go.
        let mut conn = TcpStream::connect(t.addr).await.unwrap();
        conn.write_all(b"!").await.unwrap();
        let mut got = Vec::new();
        overlap::io::read_to_end(&mut conn, &mut got).await.unwrap();
        assert_eq!(got, b"closing\n");
        let err = loop {
            match conn.write_all(&[b'x'; 1024]).await {
                Ok(()) => sleep(Duration::from_millis(1)).await,
                Err(e) => break e,
            }
        };
        let kind = err.kind();
        assert!(
            matches!(
                kind,
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
            ),
            "{err:?}"
        );
        t.until_idle().await;
    };
    within(HANG, body, "half-closes").await;
    assert!(t.near.dead().is_none() && t.far.dead().is_none());
}

#[test]
fn a_client_reset_closes_its_channel_and_backend_connection_without_leaks() {
    run_in_child(
        "a_client_reset_closes_its_channel_and_backend_connection_without_leaks",
        || {
            overlap::block_on(async {
                let t = tunnel("tunnel-reset", false).await;
                // One whole exchange first, so every lazily made fd is there.
                let sent = data(1000, 1);
                assert_eq!(exchange(t.addr, &sent).await.unwrap(), answer(&sent));
                t.until_idle().await;
                let fds = open_fds();
                let body = async {
                    // Resets: an idle channel, one in the middle of a large upload it does
                    // not read back, and one whose backend is still answering.
                    for round in 0..3 {
                        let mut conn = TcpStream::connect(t.addr).await.unwrap();
                        conn.write_all(b"hello").await.unwrap();
                        let mut got = [0u8; 5];
                        conn.read_exact(&mut got).await.unwrap();
                        assert_eq!(&got, b"HELLO");
                        if round == 1 {
                            let big = data(4 * MIB, 3);
                            let _ = overlap::time::timeout(
                                Duration::from_millis(30),
                                conn.write_all(&big),
                            )
                            .await;
                        }
                        if round == 2 {
                            conn.write_all(&data(200 * 1024, 4)).await.unwrap();
                            let mut some = [0u8; 1000];
                            conn.read_exact(&mut some).await.unwrap();
                        }
                        assert_eq!(t.log.live.get(), 1);
                        conn.set_zero_linger().unwrap();
                        drop(conn);
                        t.until_idle().await;
                    }
                };
                within(HANG, body, "resets").await;
                assert_eq!(open_fds(), fds, "fds left open");
                assert!(t.near.dead().is_none() && t.far.dead().is_none());
                // The tunnel still serves.
                let sent = data(100_000, 5);
                assert_eq!(exchange(t.addr, &sent).await.unwrap(), answer(&sent));
            })
        },
    );
}

/// Opens `n` channels, each with an exchange done and left open; odd ones also upload
/// what they do not read back. Returns the clients' tasks, each ending with how its reads
/// (or, for an uploader, its reads or its writes) ended: the kernel reports a reset once,
/// to whichever half's call meets it first, and the other half then reads a plain end of
/// file (or fails to write with `BrokenPipe`).
async fn busy_channels(t: &Tunnel, n: usize) -> Vec<JoinHandle<io::Result<usize>>> {
    let mut clients = Vec::new();
    for i in 0..n {
        let mut conn = TcpStream::connect(t.addr).await.unwrap();
        conn.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        conn.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"PING");
        clients.push(overlap::spawn(async move {
            let (mut rd, mut wr) = conn.into_split();
            let upload = async {
                if i % 2 == 1 {
                    wr.write_all(&data(4 * MIB, i as u32)).await?;
                }
                std::future::pending::<io::Result<usize>>().await
            };
            let read = async {
                let mut got = Vec::new();
                overlap::io::read_to_end(&mut rd, &mut got).await
            };
            let res =
                match overlap::future::select(std::pin::pin!(read), std::pin::pin!(upload)).await {
                    // A clean end may be the upload having met the reset: look at it once.
                    Either::Left((Ok(n), upload)) => upload.now_or_never().unwrap_or(Ok(n)),
                    Either::Left((res, _)) | Either::Right((res, _)) => res,
                };
            res
        }));
    }
    until(|| t.log.live.get() == n, "every backend connection").await;
    clients
}

fn the_mux_dying_ends_every_channel(reset: bool) {
    overlap::block_on(async {
        let fds = open_fds();
        let mut t = tunnel("tunnel-mux-dies", true).await;
        let clients = busy_channels(&t, 8).await;
        t.cut.take().unwrap().send(reset).unwrap();
        let body = async {
            for (i, client) in clients.into_iter().enumerate() {
                let res = client.await.unwrap();
                let err = res.expect_err(&format!("client {i} read a clean end"));
                let kind = err.kind();
                let uploader_kind = i % 2 == 1 && kind == io::ErrorKind::BrokenPipe;
                let ok = kind == io::ErrorKind::ConnectionReset || uploader_kind;
                assert!(ok, "client {i}: {err}");
            }
            let near = (&mut t.near_task).await.unwrap().unwrap_err();
            let far = (&mut t.far_task).await.unwrap().unwrap_err();
            t.until_idle().await;
            (near, far)
        };
        let (near, far) = within(HANG, body, "the channels to end").await;
        let why = t.near.dead().unwrap();
        assert!(why.starts_with("mux "), "{why} ({near})");
        assert!(t.far.dead().is_some(), "{far}");
        // The near end no longer takes clients.
        let late = TcpStream::connect(t.addr).await;
        if let Ok(mut late) = late {
            let mut buf = [0u8; 1];
            assert!(!matches!(late.read(&mut buf).await, Ok(1..)));
        }
        t.backend.abort();
        drop(t);
        // Tasks dropped by the abort go at the next turns.
        support::settle().await;
        assert_eq!(open_fds(), fds, "fds left open");
    })
}

#[test]
fn a_mux_reset_ends_every_channel_with_an_error_and_no_leak() {
    run_in_child(
        "a_mux_reset_ends_every_channel_with_an_error_and_no_leak",
        || the_mux_dying_ends_every_channel(true),
    );
}

#[test]
fn a_mux_closed_cleanly_ends_every_channel_with_an_error_and_no_leak() {
    run_in_child(
        "a_mux_closed_cleanly_ends_every_channel_with_an_error_and_no_leak",
        || the_mux_dying_ends_every_channel(false),
    );
}
