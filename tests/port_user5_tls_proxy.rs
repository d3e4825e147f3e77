//! A user's TLS-terminating reverse proxy, sketched as one would for tokio and then written
//! for overlap (`port_user5_tls_proxy/proxy.rs`; the backend and certificates in
//! `sides.rs`, the tests' harness in `harness.rs`): it accepts TLS on a loopback listener
//! with a self-signed certificate (rcgen), terminates it (futures-rustls's `TlsAcceptor`)
//! and forwards the plaintext to a backend that upper-cases what it reads and says `BYE`
//! after its end of input, over TCP or a Unix socket in a temp dir.
//!
//! As for tokio: the accept loop takes a permit of a `Semaphore` (`acquire_owned`) before
//! each accept, so over the limit new clients wait in the listen backlog; each connection
//! is a task in a `JoinSet` (reaped by a `select!` branch on `join_next`) that runs the
//! handshake under `time::timeout`, connects to the backend, and runs
//! `io::copy_bidirectional_with_sizes` (16 KiB each way, a TLS record's most plaintext)
//! between the TLS stream and the backend raced against an idle
//! watchdog (`sleep_until` the last byte's time plus the idle timeout, the time kept by a
//! wrapper stream). A connection's error is counted and logged and its client reset, so it
//! never reads a clean end; the proxy goes on. The shutdown signal (any future) stops the
//! accept loop, which drops its listener, waits up to a grace period for the connections
//! in flight (`timeout` over `join_next`), then drops the rest (`JoinSet::shutdown`).
//!
//! The tests check exact bytes for 64 clients sending 256 KiB each at once; that a client
//! stalled mid-handshake is cut at the handshake timeout while others are served, as is
//! one sending garbage instead of a ClientHello; that a client's half-close (`close_notify`,
//! then its TCP write side) still gets the backend's whole answer; that a backend refusing
//! or resetting gives its client an error while the proxy serves on; the connection limit;
//! the idle timeout; that a client that stops reading stalls only itself and its task is
//! not polled meanwhile, and that its reset then ends its connection and its backend's; a
//! graceful shutdown with connections in flight; that out of fds under load it serves what
//! it can and recovers; and that a run of every failure leaves no fd and no task behind.
//!
//! What the port changed, against tokio: tokio-rustls becomes futures-rustls (overlap's
//! streams are futures-io's); `stream.shutdown()` is `close()`; `select!` is futures'
//! (branches `.fuse()`d, and a `JoinSet::join_next` branch is skipped while the set is
//! empty, as tokio's `if !set.is_empty()` precondition would); `Rc`/`Cell` replace
//! `Arc`/atomics since tasks need not be `Send`, and `acquire_owned` takes an
//! `Rc<Semaphore>`; `TcpStream::set_linger(Some(0))` is `set_zero_linger()`; tokio's
//! `Handle::current().metrics().num_alive_tasks()` is `overlap::metrics().tasks_alive`.
//! overlap had no `copy_bidirectional_with_sizes` when the port was written: it was added.

mod support;

#[path = "port_user5_tls_proxy/harness.rs"]
mod harness;
#[path = "port_user5_tls_proxy/proxy.rs"]
mod proxy;
#[path = "port_user5_tls_proxy/sides.rs"]
mod sides;

use std::io;
use std::time::Duration;

use harness::{
    answer, data, exchange, quick, read_all, stalled_client, start, talk, until, Kind, HANG, KIB,
};
use overlap::future::FutureExt;
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpSocket, TcpStream};
use overlap::time::sleep;
use proxy::{Config, Report};
use sides::BYE;
use support::{open_fds, run_in_child, settle, within};

#[overlap::test]
async fn sixty_four_tls_clients_each_get_256_kib_back_upper_cased() {
    let mut h = start(Kind::Tcp, quick()).await;
    let clients = (0..64u32).map(|i| {
        let h = &h;
        async move {
            let sent = data(256 * KIB, i);
            let got = exchange(h, &sent).await.unwrap();
            assert!(got == answer(&sent), "client {i}: {} bytes back", got.len());
        }
    });
    within(HANG, overlap::future::join_all(clients), "64 clients").await;
    until(|| h.stats.live.get() == 0, "every connection to end").await;
    assert_eq!(h.stats.served.get(), 64, "{:?}", h.stats.log);
    assert_eq!(h.log.answered_after_eof.get(), 64);
    assert!(h.stats.log.borrow().is_empty(), "{:?}", h.stats.log);
    assert_eq!(
        h.shut_down().await,
        Report {
            finished_in_grace: 0,
            dropped: 0
        }
    );
}

#[overlap::test]
async fn a_client_stalled_mid_handshake_is_cut_at_the_handshake_timeout_while_others_proceed() {
    let config = Config {
        handshake_timeout: Duration::from_millis(300),
        ..quick()
    };
    let mut h = start(Kind::Tcp, config).await;
    // A TLS record header announcing a ClientHello that never comes.
    let mut stalled = TcpStream::connect(h.addr).await.unwrap();
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .unwrap();
    let others = (0..4u32).map(|i| {
        let h = &h;
        async move {
            let sent = data(16 * KIB, 100 + i);
            assert!(exchange(h, &sent).await.unwrap() == answer(&sent));
        }
    });
    within(HANG, overlap::future::join_all(others), "the others").await;
    // The stalled one is cut: the proxy resets or closes it, without an answer.
    let mut buf = [0u8; 64];
    let cut = within(HANG, stalled.read(&mut buf), "the stalled client's cut").await;
    assert!(matches!(cut, Ok(0) | Err(_)), "{cut:?}");
    until(|| h.stats.live.get() == 0, "every connection to end").await;
    assert_eq!(h.stats.handshake_timeouts.get(), 1, "{:?}", h.stats.log);
    assert_eq!(h.stats.served.get(), 4);
    let logged = h.stats.logged("handshake");
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(logged[0].contains("conn 0"), "{logged:?}");
    h.shut_down().await;
}

#[overlap::test]
async fn garbage_instead_of_a_client_hello_is_dropped_without_touching_others() {
    let mut h = start(Kind::Tcp, quick()).await;
    // A connection already open goes on across the garbage.
    let open = h.connect().await.unwrap();
    let (mut rd, mut wr) = overlap::io::split(open);
    wr.write_all(b"before ").await.unwrap();
    let mut got = [0u8; 7];
    rd.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"BEFORE ");

    let mut junk = TcpStream::connect(h.addr).await.unwrap();
    junk.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    // The proxy answers with an alert at most, then closes.
    let mut back = Vec::new();
    let res = within(
        HANG,
        overlap::io::read_to_end(&mut junk, &mut back),
        "the drop",
    )
    .await;
    assert!(res.is_err() || back.len() < 64, "{res:?}: {back:?}");
    if let Some(&first) = back.first() {
        assert_eq!(first, 0x15, "not an alert record: {back:?}");
    }
    until(
        || h.stats.handshake_errors.get() == 1,
        "the handshake error",
    )
    .await;
    let logged = h.stats.logged("handshake");
    assert_eq!(logged.len(), 1, "{logged:?}");

    wr.write_all(b"after").await.unwrap();
    wr.close().await.unwrap();
    let mut rest = Vec::new();
    overlap::io::read_to_end(&mut rd, &mut rest).await.unwrap();
    assert_eq!(rest, b"AFTERBYE\n");
    let sent = data(1000, 7);
    assert!(exchange(&h, &sent).await.unwrap() == answer(&sent));
    until(|| h.stats.live.get() == 0, "every connection to end").await;
    assert_eq!(h.stats.served.get(), 2, "{:?}", h.stats.log);
    h.shut_down().await;
}

#[overlap::test]
async fn a_half_closing_client_gets_the_backends_remaining_answer() {
    let mut h = start(Kind::Unix, quick()).await;
    let mut tls = h.connect().await.unwrap();
    tls.write_all(b"hello, ").await.unwrap();
    let mut got = [0u8; 7];
    tls.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"HELLO, ");
    tls.write_all(b"world").await.unwrap();
    // close_notify, then the TCP write side: the backend reads its end of input, and its
    // answer to the rest, and what it says after, still come back.
    tls.close().await.unwrap();
    let rest = within(HANG, read_all(&mut tls), "the rest").await.unwrap();
    assert_eq!(rest, b"WORLDBYE\n");
    until(|| h.stats.live.get() == 0, "the connection to end").await;
    assert_eq!(h.log.answered_after_eof.get(), 1);
    assert_eq!(h.stats.served.get(), 1, "{:?}", h.stats.log);
    h.shut_down().await;
}

#[overlap::test]
async fn a_backend_refusing_or_resetting_gives_its_client_an_error_and_the_proxy_serves_on() {
    // Refused: the client's handshake succeeds, then it reads an error, never a clean end.
    let mut h = start(Kind::Refusing, quick()).await;
    for _ in 0..2 {
        let mut tls = h.connect().await.unwrap();
        let res = within(HANG, read_all(&mut tls), "the refused client").await;
        assert!(res.is_err(), "{res:?}");
    }
    until(|| h.stats.live.get() == 0, "the connections to end").await;
    assert_eq!(h.stats.backend_errors.get(), 2);
    let logged = h.stats.logged("backend");
    assert!(logged.iter().all(|l| l.contains("refused")), "{logged:?}");
    h.shut_down().await;

    // Reset: the backend resets a connection that starts with `!`.
    let mut h = start(Kind::Tcp, quick()).await;
    let mut tls = h.connect().await.unwrap();
    tls.write_all(b"!reset me").await.unwrap();
    let res = within(HANG, read_all(&mut tls), "the reset client").await;
    assert!(res.is_err(), "{res:?}");
    until(|| h.stats.copy_errors.get() == 1, "the copy error").await;
    let sent = data(100 * KIB, 3);
    assert!(exchange(&h, &sent).await.unwrap() == answer(&sent));
    until(|| h.stats.live.get() == 0, "the connections to end").await;
    assert_eq!(h.stats.served.get(), 1, "{:?}", h.stats.log);
    h.shut_down().await;
}

#[overlap::test]
async fn over_the_limit_a_client_waits_in_the_backlog_until_a_slot_frees() {
    let config = Config {
        max_connections: 2,
        ..quick()
    };
    let mut h = start(Kind::Tcp, config).await;
    let mut first = h.connect().await.unwrap();
    let second = h.connect().await.unwrap();
    // The third's TCP connect completes in the backlog; its handshake waits.
    let tcp = TcpStream::connect(h.addr).await.unwrap();
    let third = h.tls(tcp);
    let mut third = std::pin::pin!(third.fuse());
    overlap::select! {
        res = third => panic!("served over the limit: {:?}", res.map(|_| ())),
        _ = sleep(Duration::from_millis(50)).fuse() => {}
    }
    assert_eq!(h.stats.accepted.get(), 2);
    first.close().await.unwrap();
    assert_eq!(read_all(&mut first).await.unwrap(), BYE);
    let third = within(HANG, third, "the third's handshake").await.unwrap();
    assert_eq!(h.stats.accepted.get(), 3);
    let sent = data(1000, 9);
    assert!(talk(third, &sent).await.unwrap() == answer(&sent));
    assert!(talk(second, b"").await.unwrap() == BYE);
    until(|| h.stats.live.get() == 0, "the connections to end").await;
    assert_eq!(h.stats.served.get(), 3, "{:?}", h.stats.log);
    h.shut_down().await;
}

#[overlap::test]
async fn an_idle_connection_is_cut_at_the_idle_timeout_while_a_busy_one_goes_on() {
    let config = Config {
        idle_timeout: Duration::from_millis(300),
        ..quick()
    };
    let mut h = start(Kind::Tcp, config).await;
    let mut idle = h.connect().await.unwrap();
    idle.write_all(b"hi").await.unwrap();
    let mut got = [0u8; 2];
    idle.read_exact(&mut got).await.unwrap();
    let mut busy = h.connect().await.unwrap();
    // The busy one talks until the idle one is cut.
    let talk_on = async {
        let mut n = 0u32;
        while h.stats.idle_timeouts.get() == 0 {
            busy.write_all(b"ping").await.unwrap();
            let mut got = [0u8; 4];
            busy.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"PING");
            n += 1;
            sleep(Duration::from_millis(5)).await;
        }
        n
    };
    within(HANG, talk_on, "the idle timeout").await;
    let res = within(HANG, read_all(&mut idle), "the idle client's cut").await;
    assert!(res.is_err(), "{res:?}");
    assert_eq!(h.stats.idle_timeouts.get(), 1, "{:?}", h.stats.log);
    busy.close().await.unwrap();
    assert_eq!(read_all(&mut busy).await.unwrap(), BYE);
    until(|| h.stats.live.get() == 0, "the connections to end").await;
    assert_eq!(h.stats.served.get(), 1, "{:?}", h.stats.log);
    h.shut_down().await;
}

#[overlap::test]
async fn a_client_that_stops_reading_stalls_only_itself_and_is_not_polled_meanwhile() {
    // A Unix backend: its socket buffers hold a few hundred KiB, where loopback TCP's grow
    // to megabytes.
    let mut h = start(Kind::Unix, quick()).await;
    // Small buffers on the client, so its stall reaches the proxy soon.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * KIB as u32).unwrap();
    socket.set_send_buffer_size(16 * KIB as u32).unwrap();
    let tcp = socket.connect(h.addr).await.unwrap();
    let tls = h.tls(tcp).await.unwrap();
    let (mut rd, mut wr) = overlap::io::split(tls);
    let total = 2 << 20;
    let sent = data(total, 11);
    let written = std::cell::Cell::new(0usize);
    let writer = async {
        for chunk in sent.chunks(16 * KIB) {
            wr.write_all(chunk).await?;
            written.set(written.get() + chunk.len());
        }
        wr.close().await
    };
    let mut writer = std::pin::pin!(writer.fuse());
    // Write until every buffer on the way is full and the writes stop.
    let mut last = usize::MAX;
    while written.get() != last {
        last = written.get();
        overlap::select! {
            res = writer => panic!("all {total} bytes went in unread: {res:?}"),
            _ = sleep(Duration::from_millis(30)).fuse() => {}
        }
    }
    // Its connection's task sleeps while five others are served through the proxy.
    let polls = h.stats.polls.borrow()[0].clone();
    let before = polls.get();
    let others = (0..5u32).map(|i| {
        let h = &h;
        async move {
            let sent = data(128 * KIB, 200 + i);
            assert!(exchange(h, &sent).await.unwrap() == answer(&sent));
        }
    });
    let others = overlap::future::join_all(others);
    overlap::select! {
        res = writer => panic!("all {total} bytes went in unread: {res:?}"),
        _ = within(HANG, others, "the others").fuse() => {}
    }
    assert!(written.get() < total, "the stall never came");
    let woken = polls.get() - before;
    assert!(
        woken <= 2,
        "the stalled connection was polled {woken} times meanwhile"
    );
    // Once it reads, every byte arrives, in order.
    let reader = async {
        let mut got = Vec::new();
        overlap::io::read_to_end(&mut rd, &mut got)
            .await
            .map(|_| got)
    };
    let (w, got) = within(HANG, overlap::future::join(writer, reader), "the rest").await;
    w.unwrap();
    assert!(got.unwrap() == answer(&sent));
    until(|| h.stats.live.get() == 0, "the connections to end").await;
    assert_eq!(h.stats.served.get(), 6, "{:?}", h.stats.log);
    h.shut_down().await;
}

#[overlap::test]
async fn a_graceful_shutdown_lets_connections_in_flight_finish_then_drops_the_rest() {
    let config = Config {
        grace: Duration::from_millis(500),
        ..quick()
    };
    let mut h = start(Kind::Unix, config).await;
    let tasks = overlap::metrics().tasks_alive;
    // One in the middle of its exchange, one that will never finish.
    let mut finishing = h.connect().await.unwrap();
    finishing.write_all(b"first half, ").await.unwrap();
    let mut got = [0u8; 12];
    finishing.read_exact(&mut got).await.unwrap();
    let mut lingering = h.connect().await.unwrap();
    lingering.write_all(b"x").await.unwrap();
    lingering.read_exact(&mut got[..1]).await.unwrap();
    let _ = h.stop.take().unwrap().send(());
    until(
        || h.stats.stopped_accepting.get(),
        "the accept loop to stop",
    )
    .await;
    // No new client gets in.
    let late = TcpStream::connect(h.addr).await;
    assert_eq!(
        late.map(|_| ()).unwrap_err().kind(),
        io::ErrorKind::ConnectionRefused
    );
    // The one in flight finishes within the grace period.
    finishing.write_all(b"second half").await.unwrap();
    finishing.close().await.unwrap();
    let rest = within(HANG, read_all(&mut finishing), "the finishing one").await;
    assert_eq!(rest.unwrap(), b"SECOND HALFBYE\n");
    // The other is dropped at its end.
    let res = within(HANG, read_all(&mut lingering), "the lingering one").await;
    assert!(res.is_err(), "{res:?}");
    let report = within(HANG, &mut h.proxy, "the proxy's end").await.unwrap();
    assert_eq!(
        report,
        Report {
            finished_in_grace: 1,
            dropped: 1
        }
    );
    assert_eq!(h.stats.live.get(), 0);
    h.backend.take().unwrap().abort();
    until(|| h.log.live.get() == 0, "the backend's connections to end").await;
    settle().await;
    // The proxy's task and both backend tasks are gone, and the backend's accept loop.
    assert_eq!(overlap::metrics().tasks_alive, tasks - 2, "tasks left");
}

#[test]
fn a_run_of_every_failure_leaves_no_fd_and_no_task_behind() {
    run_in_child(
        "a_run_of_every_failure_leaves_no_fd_and_no_task_behind",
        || {
            overlap::block_on(async {
                let fds = open_fds();
                let tasks = overlap::metrics().tasks_alive;
                let config = Config {
                    handshake_timeout: Duration::from_millis(300),
                    idle_timeout: Duration::from_millis(300),
                    grace: Duration::from_millis(100),
                    ..quick()
                };
                let mut h = start(Kind::Tcp, config).await;
                let body = async {
                    let sent = data(64 * KIB, 1);
                    assert!(exchange(&h, &sent).await.unwrap() == answer(&sent));
                    // Garbage, and a handshake that stalls.
                    let mut junk = TcpStream::connect(h.addr).await.unwrap();
                    junk.write_all(&[0xff; 300]).await.unwrap();
                    let mut stalled = TcpStream::connect(h.addr).await.unwrap();
                    stalled.write_all(&[0x16, 0x03]).await.unwrap();
                    // A backend reset, an idle client, a client reset mid-upload, and a
                    // client that goes without close_notify.
                    let mut reset = h.connect().await.unwrap();
                    reset.write_all(b"!").await.unwrap();
                    let mut idle = h.connect().await.unwrap();
                    let mut upload = h.connect().await.unwrap();
                    upload.write_all(&data(200 * KIB, 2)).await.unwrap();
                    upload.get_ref().0.set_zero_linger().unwrap();
                    drop(upload);
                    let mut rude = h.connect().await.unwrap();
                    rude.write_all(b"bye").await.unwrap();
                    drop(rude);
                    assert!(read_all(&mut reset).await.is_err());
                    assert!(read_all(&mut idle).await.is_err());
                    let mut buf = Vec::new();
                    let _ = overlap::io::read_to_end(&mut junk, &mut buf).await;
                    let _ = overlap::io::read_to_end(&mut stalled, &mut buf).await;
                    until(|| h.stats.live.get() == 0, "every connection to end").await;
                    // One left in flight for the shutdown to drop.
                    let mut last = h.connect().await.unwrap();
                    last.write_all(b"x").await.unwrap();
                    let report = h.shut_down().await;
                    assert_eq!(
                        report,
                        Report {
                            finished_in_grace: 0,
                            dropped: 1
                        }
                    );
                    assert!(read_all(&mut last).await.is_err());
                };
                within(HANG, body, "the run").await;
                let s = &h.stats;
                let timeouts = (s.handshake_timeouts.get(), s.idle_timeouts.get());
                assert_eq!((s.served.get(), timeouts), (1, (1, 1)), "{:?}", s.log);
                // The garbage, the backend reset, the client reset (which may come before
                // the proxy's end of the handshake) and the missing close_notify.
                let errors = s.handshake_errors.get() + s.copy_errors.get();
                assert_eq!(errors, 4, "{:?}", s.log);
                until(|| h.log.live.get() == 0, "the backend's connections to end").await;
                drop(h);
                settle().await;
                assert_eq!(overlap::metrics().tasks_alive, tasks, "tasks left");
                assert_eq!(open_fds(), fds, "fds left open");
            })
        },
    );
}

/// A client that stalls, its proxy task waiting to write to it, then resets: the reset
/// wakes that wait, and the connection ends with an error, its backend connection closed.
#[overlap::test]
async fn a_stalled_client_that_resets_ends_its_connection_and_backend_connection() {
    let mut h = start(Kind::Unix, quick()).await;
    let (tls, written) = stalled_client(&h, 2 << 20, 12).await;
    assert!(written > 0);
    assert_eq!((h.stats.live.get(), h.log.live.get()), (1, 1));
    tls.get_ref().0.set_zero_linger().unwrap();
    drop(tls);
    until(|| h.stats.live.get() == 0, "the connection to end").await;
    until(|| h.log.live.get() == 0, "the backend connection to end").await;
    assert_eq!(h.stats.copy_errors.get(), 1, "{:?}", h.stats.log);
    let sent = data(1000, 13);
    assert!(exchange(&h, &sent).await.unwrap() == answer(&sent));
    h.shut_down().await;
}

/// Out of fds under load (clients, proxy and backend share the process's 40 spare ones):
/// the accept loop backs off, a connection whose backend connect fails resets its client,
/// every client gets its exact answer or an error, none hangs, and once the load is gone
/// the proxy serves again with no fd left behind.
#[test]
fn out_of_fds_under_load_the_proxy_serves_what_it_can_and_recovers() {
    run_in_child(
        "out_of_fds_under_load_the_proxy_serves_what_it_can_and_recovers",
        || {
            overlap::block_on(async {
                let fds = open_fds();
                support::set_soft_nofile(fds as u64 + 40);
                let mut h = start(Kind::Tcp, quick()).await;
                let clients = (0..30u32).map(|i| {
                    let h = &h;
                    async move {
                        let sent = data(32 * KIB, i);
                        let res = exchange(h, &sent).await;
                        res.map(|got| assert!(got == answer(&sent), "client {i}"))
                    }
                });
                let all = within(HANG, overlap::future::join_all(clients), "the clients").await;
                let served = all.iter().filter(|res| res.is_ok()).count();
                assert!(served > 0 && served < 30, "{served} served");
                until(|| h.stats.live.get() == 0, "every connection to end").await;
                assert_eq!(h.stats.served.get(), served, "{:?}", h.stats.log);
                let emfile = h.stats.logged("Too many open files");
                assert!(!emfile.is_empty(), "{:?}", h.stats.log);
                let sent = data(KIB, 99);
                assert!(exchange(&h, &sent).await.unwrap() == answer(&sent));
                h.shut_down().await;
                until(|| h.log.live.get() == 0, "the backend's connections to end").await;
                drop(h);
                settle().await;
                assert_eq!(open_fds(), fds, "fds left open");
            })
        },
    );
}
