//! Behaviours checked by mio's Unix socket tests (`unix_stream.rs`, `unix_listener.rs`,
//! `uds.rs`) and async-io's (`async.rs`: `uds_connect`, `uds_reader_hangup`,
//! `uds_writer_hangup`), ported to overlap's `UnixStream`, `UnixListener` and `UnixSocket`:
//! shutdowns in each direction, a peer or listener going away at each stage of a
//! connection, and the connect that waits out a full backlog. Each test names the test it
//! follows.
//!
//! Left out, covered elsewhere: the smoke tests, `pair`, credentials and addresses
//! (`net_unix.rs`, `port_tokio_net_unix.rs`), a writer woken by its own shutdown
//! (`net_shutdown_wakes_writers.rs`).

mod support;

use std::io::ErrorKind;
use std::net::Shutdown;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::PathBuf;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt, Interest};
use overlap::net::{UnixListener, UnixSocket, UnixStream};
use support::{poll_once, settle, within};

const HANG: Duration = Duration::from_secs(10);
const DATA: &[u8] = b"Hello mars!";

/// A fresh path for a socket in the temp dir, removed first if a past run left it.
fn sock_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "overlap-mio-unix-{}-{name}.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    path
}

// mio: unix_stream.rs unix_stream_shutdown_read
#[overlap::test]
async fn shutdown_read_makes_reads_return_eof_and_shows_read_closed() {
    let (a, _b) = UnixStream::pair().unwrap();
    let mut wait = pin!(a.ready(Interest::READABLE));
    assert!(poll_once(wait.as_mut()).await.is_pending());
    a.shutdown(Shutdown::Read).unwrap();
    let ready = within(HANG, wait, "the shutdown did not end the wait")
        .await
        .unwrap();
    assert!(ready.is_read_closed(), "{ready:?}");
    let mut buf = [0u8; 8];
    assert_eq!((&a).read(&mut buf).await.unwrap(), 0);
    assert_eq!(a.try_read(&mut buf).unwrap(), 0);
    (&a).write_all(DATA).await.unwrap();
}

// mio: unix_stream.rs unix_stream_shutdown_write
#[overlap::test]
async fn shutdown_write_fails_later_writes_and_the_peer_reads_eof() {
    let (mut a, mut b) = UnixStream::pair().unwrap();
    a.write_all(DATA).await.unwrap();
    a.shutdown(Shutdown::Write).unwrap();
    let err = within(HANG, a.write(b"x"), "write after shutdown")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe);
    assert_eq!(a.try_write(b"x").unwrap_err().kind(), ErrorKind::BrokenPipe);
    let ready = within(HANG, a.ready(Interest::WRITABLE), "no write-closed")
        .await
        .unwrap();
    assert!(ready.is_write_closed(), "{ready:?}");
    let mut got = Vec::new();
    within(HANG, b.read_to_end(&mut got), "no EOF")
        .await
        .unwrap();
    assert_eq!(got, DATA);
    // The other direction still works.
    b.write_all(b"back").await.unwrap();
    let mut buf = [0u8; 4];
    a.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"back");
}

// mio: unix_stream.rs unix_stream_shutdown_both
#[overlap::test]
async fn shutdown_both_ends_reads_and_writes_and_the_peer_sees_both() {
    let (mut a, mut b) = UnixStream::pair().unwrap();
    a.shutdown(Shutdown::Both).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(within(HANG, a.read(&mut buf), "read").await.unwrap(), 0);
    let err = within(HANG, a.write(b"x"), "write").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe);
    // The peer reads EOF, and its writes fail: nobody will ever read them.
    assert_eq!(
        within(HANG, b.read(&mut buf), "peer read").await.unwrap(),
        0
    );
    let err = within(HANG, b.write(b"x"), "peer write").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe);
}

// mio: unix_stream.rs unix_stream_shutdown_listener_write (a waiter sees the half-close)
#[overlap::test]
async fn a_waiter_sees_the_peers_half_close_and_writes_go_on() {
    let (a, b) = UnixStream::pair().unwrap();
    let mut wait = pin!(a.ready(Interest::READABLE));
    assert!(poll_once(wait.as_mut()).await.is_pending());
    b.shutdown(Shutdown::Write).unwrap();
    let ready = within(HANG, wait, "the half-close did not wake the waiter")
        .await
        .unwrap();
    assert!(
        ready.is_read_closed() && !ready.is_write_closed(),
        "{ready:?}"
    );
    (&a).write_all(DATA).await.unwrap();
    let mut buf = [0u8; DATA.len()];
    (&b).read_exact(&mut buf).await.unwrap();
    assert_eq!(buf, DATA);
}

// async-io: async.rs uds_writer_hangup; mio: unix_stream.rs (close with unread data)
#[overlap::test]
async fn a_waiting_reader_learns_the_peer_is_gone_whether_or_not_it_left_data_unread() {
    for leave_unread in [false, true] {
        let (a, b) = UnixStream::pair().unwrap();
        if leave_unread {
            (&a).write_all(DATA).await.unwrap(); // b never reads it
        }
        let a = Rc::new(a);
        let reader = overlap::spawn({
            let a = a.clone();
            async move {
                let mut buf = [0u8; 8];
                (&*a).read(&mut buf).await
            }
        });
        settle().await;
        drop(b);
        let first = within(HANG, reader, "the peer's close did not wake the reader")
            .await
            .unwrap();
        // Linux resets a Unix stream whose closing end left data unread.
        match first {
            Ok(n) => assert_eq!(n, 0, "data from nowhere"),
            Err(e) => {
                assert!(leave_unread, "{e:?}");
                assert_eq!(e.kind(), ErrorKind::ConnectionReset);
            }
        }
        let mut buf = [0u8; 8];
        assert_eq!(
            (&*a).read(&mut buf).await.unwrap(),
            0,
            "EOF after the close"
        );
        let err = (&*a).write(DATA).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{leave_unread}");
    }
}

// async-io: async.rs uds_reader_hangup
#[overlap::test]
async fn a_writer_blocked_on_a_full_buffer_learns_the_reader_is_gone() {
    let (a, b) = UnixStream::pair().unwrap();
    let writer = overlap::spawn(async move {
        let chunk = vec![5u8; 64 * 1024];
        loop {
            if let Err(e) = (&a).write_all(&chunk).await {
                return e;
            }
        }
    });
    settle().await;
    drop(b);
    let err = within(HANG, writer, "the writer never learnt")
        .await
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err:?}");
}

// async-io: async.rs uds_connect (addresses match; connect fails once the listener is gone)
#[overlap::test]
async fn connect_after_the_listener_is_dropped_is_refused() {
    let path = sock_path("refused");
    let listener = UnixListener::bind(&path).unwrap();
    let (accepted, client) = overlap::join!(listener.accept(), UnixStream::connect(&path));
    let ((server, _), client) = (accepted.unwrap(), client.unwrap());
    assert_eq!(
        client.peer_addr().unwrap().as_pathname(),
        server.local_addr().unwrap().as_pathname()
    );
    assert!(server.peer_addr().unwrap().is_unnamed());
    drop(listener);
    // The socket file stays, with nobody listening on it.
    assert!(path.exists());
    let err = within(HANG, UnixStream::connect(&path), "connect hung")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    std::fs::remove_file(&path).unwrap();
    let err = within(HANG, UnixStream::connect(&path), "connect hung")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

// mio: unix_listener.rs (a connection the listener never accepted, then the listener goes)
#[overlap::test]
async fn a_connection_left_in_the_backlog_hears_that_the_listener_dropped() {
    let path = sock_path("backlog");
    let listener = UnixListener::bind(&path).unwrap();
    let client = UnixStream::connect(&path).await.unwrap();
    let reader = overlap::spawn(async move {
        let mut buf = [0u8; 8];
        (&client).read(&mut buf).await
    });
    settle().await;
    drop(listener);
    let res = within(HANG, reader, "the dropped listener went unnoticed")
        .await
        .unwrap();
    match res {
        Ok(n) => assert_eq!(n, 0, "data from nowhere"),
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e:?}"),
    }
    std::fs::remove_file(&path).unwrap();
}

/// Connects to `path` until the backlog is full (a connect stays pending); the connections
/// made.
async fn fill_backlog(path: &PathBuf) -> Vec<UnixStream> {
    let mut queued = Vec::new();
    loop {
        let mut connect = pin!(UnixStream::connect(path));
        match poll_once(connect.as_mut()).await {
            std::task::Poll::Ready(conn) => queued.push(conn.unwrap()),
            std::task::Poll::Pending => return queued,
        }
        assert!(queued.len() < 10_000, "the backlog never filled");
    }
}

// mio: unix_listener.rs (a full backlog); overlap's connect waits it out, retrying
#[overlap::test]
async fn a_connect_waiting_on_a_full_backlog_completes_on_accept_and_fails_on_drop() {
    let path = sock_path("full");
    let sock = UnixSocket::new_stream().unwrap();
    sock.bind(&path).unwrap();
    let listener = sock.listen(1).unwrap();
    let queued = fill_backlog(&path).await;
    assert!(!queued.is_empty());
    // Room made by an accept lets a waiting connect through.
    let mut connect = pin!(UnixStream::connect(&path));
    assert!(
        poll_once(connect.as_mut()).await.is_pending(),
        "backlog not full"
    );
    let (first, _) = listener.accept().await.unwrap();
    let client = within(HANG, connect, "the connect missed the room")
        .await
        .unwrap();
    drop((first, client));
    // With the backlog full again, dropping the listener fails the waiting connect.
    let more = fill_backlog(&path).await;
    let mut connect = pin!(UnixStream::connect(&path));
    assert!(
        poll_once(connect.as_mut()).await.is_pending(),
        "backlog not full"
    );
    drop(listener);
    let err = within(HANG, connect, "a connect to a gone listener waited on")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err:?}");
    drop((queued, more));
    std::fs::remove_file(&path).unwrap();
}

// mio: unix_listener.rs unix_listener_two_streams (one edge, two queued connections)
#[overlap::test]
async fn two_queued_connections_are_both_accepted() {
    let path = sock_path("two");
    let listener = UnixListener::bind(&path).unwrap();
    let _c1 = StdUnixStream::connect(&path).unwrap();
    let _c2 = StdUnixStream::connect(&path).unwrap();
    for _ in 0..2 {
        within(HANG, listener.accept(), "a queued connection was lost")
            .await
            .unwrap();
    }
    std::fs::remove_file(&path).unwrap();
}

// mio: unix_listener.rs and unix_stream.rs (abstract addresses, Linux only): a name that
// starts with a NUL byte binds no file, and both ends report it
#[overlap::test]
async fn abstract_names_bind_connect_and_report_their_address() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("overlap-mio-abstract-{}", std::process::id());
    let path = PathBuf::from(format!("\0{name}"));
    let listener = UnixListener::bind(&path).unwrap();
    let local = listener.local_addr().unwrap();
    assert_eq!(local.as_abstract_name(), Some(name.as_bytes()));
    assert!(local.as_pathname().is_none());
    let (accepted, client) = overlap::join!(listener.accept(), UnixStream::connect(&path));
    let ((server, _), client) = (accepted.unwrap(), client.unwrap());
    let peer = client.peer_addr().unwrap();
    assert_eq!(peer.as_abstract_name(), Some(name.as_bytes()));
    (&client).write_all(DATA).await.unwrap();
    let mut buf = [0u8; DATA.len()];
    (&server).read_exact(&mut buf).await.unwrap();
    // A second bind of the name is refused; once the listener is gone, the name is free.
    assert_eq!(
        UnixListener::bind(&path).unwrap_err().kind(),
        ErrorKind::AddrInUse
    );
    drop(listener);
    let err = UnixStream::connect(&path).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    drop(UnixListener::bind(&path).unwrap());

    // Datagrams from an abstract sender carry its name.
    let rx_path = PathBuf::from(format!("\0{name}-rx"));
    let rx = overlap::net::UnixDatagram::bind(&rx_path).unwrap();
    let tx = overlap::net::UnixDatagram::bind(&path).unwrap();
    tx.send_to(DATA, &rx_path).await.unwrap();
    let mut buf = [0u8; 32];
    let (n, from) = within(HANG, rx.recv_from(&mut buf), "datagram")
        .await
        .unwrap();
    assert_eq!(&buf[..n], DATA);
    assert_eq!(from.as_abstract_name(), Some(name.as_bytes()));
}
