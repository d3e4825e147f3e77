//! The tunnel's two ends and the backend, as the user wrote them.
//!
//! `near` accepts local TCP clients and opens a channel for each; `far` answers each
//! `Open` with a Unix connection to the backend. A channel that fails resets its TCP client
//! (zero linger, so it reads an error rather than a clean end) and closes its backend
//! connection.

use std::cell::Cell;
use std::io;
use std::path::PathBuf;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use overlap::task::{JoinHandle, JoinSet};
use overlap::time::timeout;

use super::mux::{Channel, Frame, Mux};

/// The near end: accepts clients on `listener` and carries each over `conn`. Returns (with
/// the mux's error) once the mux has died and every channel has ended.
pub fn near(listener: TcpListener, conn: TcpStream) -> (Rc<Mux>, JoinHandle<io::Result<()>>) {
    let _ = conn.set_nodelay(true);
    let (rd, wr) = conn.into_split();
    let mux = Mux::start(wr);
    let task = overlap::spawn({
        let mux = mux.clone();
        async move {
            let mut channels = JoinSet::new();
            let mut reader = pin!(mux
                .read_loop(rd, |_| {
                    // The far end never opens channels.
                    Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "far end opened a channel",
                    ))
                })
                .fuse());
            let mut next_id = 1;
            let res = loop {
                overlap::select! {
                    res = reader => break res,
                    accepted = listener.accept().fuse() => {
                        let client = match accepted {
                            Ok((client, _)) => client,
                            // Out of fds, say: the client waits in the backlog.
                            Err(_) => continue,
                        };
                        let Some(ch) = mux.channel(next_id) else { continue };
                        next_id += 1;
                        if mux.send(Frame::Open(ch.id)).await.is_err() {
                            continue;
                        }
                        channels.spawn(client_channel(client, ch));
                        while channels.try_join_next().is_some() {}
                    }
                }
            };
            // Clients still waiting get turned away: the listener closes.
            drop(listener);
            channels.join_all().await;
            res
        }
    });
    (mux, task)
}

async fn client_channel(mut client: TcpStream, ch: Channel) {
    let _ = client.set_nodelay(true);
    let res = {
        let (mut rd, mut wr) = TcpStream::split(&mut client);
        ch.run(&mut rd, &mut wr).await
    };
    if res.is_err() {
        // The client reads an error, not a clean end of the stream.
        let _ = client.set_zero_linger();
    }
}

/// The far end: opens a connection to the backend at `backend` for each channel.
pub fn far(conn: TcpStream, backend: PathBuf) -> (Rc<Mux>, JoinHandle<io::Result<()>>) {
    let _ = conn.set_nodelay(true);
    let (rd, wr) = conn.into_split();
    let mux = Mux::start(wr);
    let task = overlap::spawn({
        let mux = mux.clone();
        async move {
            let mut channels = JoinSet::new();
            let res = mux
                .read_loop(rd, |ch| {
                    channels.spawn(backend_channel(ch, backend.clone()));
                    Ok(())
                })
                .await;
            channels.join_all().await;
            res
        }
    });
    (mux, task)
}

async fn backend_channel(ch: Channel, path: PathBuf) {
    let stream = match timeout(Duration::from_secs(5), UnixStream::connect(&path)).await {
        Ok(Ok(stream)) => stream,
        _ => return ch.refuse().await,
    };
    let (mut rd, mut wr) = stream.into_split();
    // On an error the halves just drop: a Unix peer cannot be reset, it reads the end.
    let _ = ch.run(&mut rd, &mut wr).await;
}

/// What the backend saw, for the tests.
#[derive(Default)]
pub struct BackendLog {
    pub live: Cell<usize>,
    pub accepted: Cell<usize>,
    /// Connections that read their end of file and answered after it.
    pub answered_after_eof: Cell<usize>,
}

/// The backend: upper-cases what it reads; at the end of its input it writes `BYE\n` and
/// closes. A connection whose first byte is `!` gets `closing\n` and is closed at once.
pub async fn backend(listener: UnixListener, log: Rc<BackendLog>) {
    loop {
        let Ok((conn, _)) = listener.accept().await else {
            continue;
        };
        log.accepted.set(log.accepted.get() + 1);
        log.live.set(log.live.get() + 1);
        let log = log.clone();
        overlap::spawn(async move {
            let _ = serve_one(&conn, &log).await;
            log.live.set(log.live.get() - 1);
        });
    }
}

async fn serve_one(mut conn: &UnixStream, log: &BackendLog) -> io::Result<()> {
    let mut buf = vec![0u8; 32 * 1024];
    let mut first = true;
    loop {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            conn.write_all(b"BYE\n").await?;
            log.answered_after_eof.set(log.answered_after_eof.get() + 1);
            return Ok(());
        }
        if std::mem::take(&mut first) && buf[0] == b'!' {
            return conn.write_all(b"closing\n").await;
        }
        buf[..n].make_ascii_uppercase();
        conn.write_all(&buf[..n]).await?;
    }
}
