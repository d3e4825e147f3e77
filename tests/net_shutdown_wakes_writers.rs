//! `shutdown(Write)` (or `Both`) wakes a task blocked writing on a full buffer, which then
//! gets an error, as a blocking `send` would: TCP and Unix streams and Unix datagram
//! sockets. A Unix socket's kernel poll reports no edge for it, so the runtime must.

use std::io::ErrorKind;
use std::net::Shutdown;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::AsyncWriteExt;
use overlap::net::{TcpListener, TcpStream, UnixDatagram, UnixStream};
use overlap::time::{sleep, timeout};

/// A hang guard: the writer should wake at once.
const HANG: Duration = Duration::from_secs(20);

trait Shut {
    fn shut(&self, how: Shutdown);
}

impl Shut for TcpStream {
    fn shut(&self, how: Shutdown) {
        self.shutdown(how).unwrap()
    }
}

impl Shut for UnixStream {
    fn shut(&self, how: Shutdown) {
        self.shutdown(how).unwrap()
    }
}

/// Fills the socket's buffers from a task until it blocks, shuts the socket down `how`,
/// and checks that the writer wakes with an error.
async fn blocked_writer_wakes<S: Shut + 'static>(s: Rc<S>, how: Shutdown)
where
    for<'a> &'a S: overlap::io::AsyncWrite + Unpin,
{
    let writer = s.clone();
    let task = overlap::spawn(async move {
        let chunk = vec![0u8; 1 << 20];
        let mut total = 0usize;
        loop {
            match (&*writer).write(&chunk).await {
                Ok(n) => total += n,
                Err(e) => return e.kind(),
            }
            assert!(total < 256 << 20, "the buffers never filled");
        }
    });
    // Long enough for the writer to fill the buffers and wait.
    sleep(Duration::from_millis(100)).await;
    assert!(!task.is_finished());
    s.shut(how);
    let kind = timeout(HANG, task)
        .await
        .expect("the blocked writer was never woken")
        .unwrap();
    assert_eq!(kind, ErrorKind::BrokenPipe);
}

#[overlap::test]
async fn tcp_stream() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (_server, _) = listener.accept().await.unwrap();
    blocked_writer_wakes(Rc::new(client), Shutdown::Write).await;
}

#[overlap::test]
async fn unix_stream_write_side() {
    let (a, _b) = UnixStream::pair().unwrap();
    blocked_writer_wakes(Rc::new(a), Shutdown::Write).await;
}

#[overlap::test]
async fn unix_stream_both_sides() {
    let (a, _b) = UnixStream::pair().unwrap();
    blocked_writer_wakes(Rc::new(a), Shutdown::Both).await;
}

#[overlap::test]
async fn unix_datagram() {
    let (p, _q) = UnixDatagram::pair().unwrap();
    let p = Rc::new(p);
    // Fill the peer's queue.
    while let Ok(Ok(_)) = timeout(Duration::from_millis(50), p.send(b"fill")).await {}
    let sender = p.clone();
    let task = overlap::spawn(async move { sender.send(b"more").await.map_err(|e| e.kind()) });
    sleep(Duration::from_millis(50)).await;
    assert!(!task.is_finished());
    p.shutdown(Shutdown::Write).unwrap();
    let res = timeout(HANG, task)
        .await
        .expect("the blocked sender was never woken")
        .unwrap();
    assert_eq!(res, Err(ErrorKind::BrokenPipe));
}
