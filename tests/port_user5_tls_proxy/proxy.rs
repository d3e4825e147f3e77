//! The proxy, as the user wrote it: an accept loop under a connection limit and a shutdown
//! signal, and a task per connection that terminates TLS under a handshake timeout,
//! connects to the backend and copies both ways under an idle timeout.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_rustls::server::TlsStream;
use futures_rustls::TlsAcceptor;
use overlap::future::FutureExt;
use overlap::io::{copy_bidirectional_with_sizes, AsyncRead, AsyncWrite};
use overlap::net::{TcpListener, TcpStream, UnixStream};
use overlap::sync::{OwnedPermit, Semaphore};
use overlap::task::JoinSet;
use overlap::time::{sleep, sleep_until, timeout, Instant};

/// The most plaintext a TLS record carries: each way of the copy reads a record whole.
const TLS_RECORD: usize = 16 * 1024;

/// Where the plaintext goes.
#[derive(Clone, Debug)]
pub enum Backend {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// From accept to the end of the TLS handshake.
    pub handshake_timeout: Duration,
    /// A connection with no byte moving either way for this long is dropped.
    pub idle_timeout: Duration,
    /// Connections served at once; the accept loop waits for a free one.
    pub max_connections: usize,
    /// After the shutdown signal, how long connections in flight may take to finish.
    pub grace: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_connections: 256,
            grace: Duration::from_secs(5),
        }
    }
}

/// How each connection ended, counted; what went wrong, logged.
#[derive(Default, Debug)]
pub struct Stats {
    pub accepted: Cell<usize>,
    /// Connection tasks alive now.
    pub live: Cell<usize>,
    /// Copies that ended with both sides closed cleanly.
    pub served: Cell<usize>,
    pub handshake_timeouts: Cell<usize>,
    pub handshake_errors: Cell<usize>,
    pub backend_errors: Cell<usize>,
    pub copy_errors: Cell<usize>,
    pub idle_timeouts: Cell<usize>,
    /// The accept loop has stopped (and dropped its listener).
    pub stopped_accepting: Cell<bool>,
    /// Polls of each connection's task, by connection number (from 0, in accept order).
    pub polls: RefCell<Vec<Rc<Cell<u64>>>>,
    pub log: RefCell<Vec<String>>,
}

impl Stats {
    fn note(&self, n: usize, what: &str, err: &dyn std::fmt::Display) {
        self.log
            .borrow_mut()
            .push(format!("conn {n}: {what}: {err}"));
    }

    /// The log lines that contain `what`.
    pub fn logged(&self, what: &str) -> Vec<String> {
        let log = self.log.borrow();
        log.iter().filter(|l| l.contains(what)).cloned().collect()
    }
}

/// What the graceful shutdown found.
#[derive(Debug, PartialEq, Eq)]
pub struct Report {
    /// Connections in flight at the signal that finished within the grace period.
    pub finished_in_grace: usize,
    /// Those still running at its end, dropped.
    pub dropped: usize,
}

/// Serves `listener` until `shutdown` completes, then stops accepting, gives the
/// connections in flight `config.grace` to finish and drops the rest.
///
/// Over `max_connections`, the loop waits for a slot before it accepts again: new clients
/// wait in the listen backlog (their TCP connect succeeds, their TLS handshake waits).
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    backend: Backend,
    config: Config,
    stats: Rc<Stats>,
    shutdown: impl Future<Output = ()>,
) -> Report {
    let limit = Rc::new(Semaphore::new(config.max_connections));
    let backend = Rc::new(backend);
    let mut conns = JoinSet::new();
    let mut shutdown = pin!(shutdown.fuse());
    loop {
        let permit = overlap::select! {
            permit = limit.clone().acquire_owned().fuse() => permit.expect("never closed"),
            _ = conns.join_next() => continue,
            _ = shutdown => break,
        };
        let accepted = overlap::select! {
            accepted = listener.accept().fuse() => accepted,
            _ = conns.join_next() => continue,
            _ = shutdown => break,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // Out of fds, say: back off, the client waits in the backlog.
                stats.log.borrow_mut().push(format!("accept: {e}"));
                sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let n = stats.accepted.get();
        stats.accepted.set(n + 1);
        let polls = Rc::new(Cell::new(0));
        stats.polls.borrow_mut().push(polls.clone());
        let conn = connection(
            n,
            tcp,
            acceptor.clone(),
            backend.clone(),
            config,
            stats.clone(),
            permit,
        );
        conns.spawn(Counted { inner: conn, polls });
    }
    drop(listener);
    stats.stopped_accepting.set(true);
    let in_flight = conns.len();
    let drain = async { while conns.join_next().await.is_some() {} };
    let _ = timeout(config.grace, drain).await;
    let dropped = conns.len();
    conns.shutdown().await;
    Report {
        finished_in_grace: in_flight - dropped,
        dropped,
    }
}

/// Counts the polls of the future it wraps.
struct Counted<F> {
    inner: F,
    polls: Rc<Cell<u64>>,
}

impl<F: Future + Unpin> Future for Counted<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.set(self.polls.get() + 1);
        Pin::new(&mut self.inner).poll(cx)
    }
}

/// Keeps `Stats::live` while the connection's task lives (aborted or not).
struct Live(Rc<Stats>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.live.set(self.0.live.get() - 1);
    }
}

fn connection(
    n: usize,
    tcp: TcpStream,
    acceptor: TlsAcceptor,
    backend: Rc<Backend>,
    config: Config,
    stats: Rc<Stats>,
    permit: OwnedPermit,
) -> Pin<Box<dyn Future<Output = ()>>> {
    Box::pin(async move {
        let _permit = permit;
        stats.live.set(stats.live.get() + 1);
        let _live = Live(stats.clone());
        let _ = tcp.set_nodelay(true);
        let tls = match timeout(config.handshake_timeout, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                stats.handshake_errors.set(stats.handshake_errors.get() + 1);
                return stats.note(n, "handshake", &e);
            }
            Err(e) => {
                stats
                    .handshake_timeouts
                    .set(stats.handshake_timeouts.get() + 1);
                return stats.note(n, "handshake", &e);
            }
        };
        let res = match &*backend {
            Backend::Tcp(addr) => match TcpStream::connect(*addr).await {
                Ok(up) => return pump(n, tls, up, config, &stats).await,
                Err(e) => e,
            },
            Backend::Unix(path) => match UnixStream::connect(path).await {
                Ok(up) => return pump(n, tls, up, config, &stats).await,
                Err(e) => e,
            },
        };
        // The client learns of it by a reset: a plain close would read, to a client not
        // checking for `close_notify`, as a clean end.
        stats.backend_errors.set(stats.backend_errors.get() + 1);
        stats.note(n, "backend", &res);
        let _ = tls.get_ref().0.set_zero_linger();
    })
}

/// Copies between the client and the backend until both ends close, an error, or the idle
/// timeout.
async fn pump<B>(n: usize, tls: TlsStream<TcpStream>, mut up: B, config: Config, stats: &Stats)
where
    B: AsyncRead + AsyncWrite + Unpin,
{
    let last = Rc::new(Cell::new(Instant::now()));
    let mut client = Active {
        inner: tls,
        last: last.clone(),
    };
    let idle = async {
        loop {
            let deadline = last.get() + config.idle_timeout;
            if Instant::now() >= deadline {
                return;
            }
            sleep_until(deadline).await;
        }
    };
    let copy = copy_bidirectional_with_sizes(&mut client, &mut up, TLS_RECORD, TLS_RECORD);
    let outcome = overlap::select! {
        res = copy.fuse() => Some(res),
        _ = pin!(idle.fuse()) => None,
    };
    match outcome {
        Some(Ok(_)) => stats.served.set(stats.served.get() + 1),
        Some(Err(e)) => {
            stats.copy_errors.set(stats.copy_errors.get() + 1);
            stats.note(n, "copy", &e);
            // Whichever side failed, the client must not read a clean end.
            let _ = client.inner.get_ref().0.set_zero_linger();
        }
        None => {
            stats.idle_timeouts.set(stats.idle_timeouts.get() + 1);
            stats.note(n, "idle", &"no byte either way");
            let _ = client.inner.get_ref().0.set_zero_linger();
        }
    }
}

/// A stream that notes when a byte last moved through it.
struct Active<S> {
    inner: S,
    last: Rc<Cell<Instant>>,
}

impl<S> Active<S> {
    fn moved(&self, res: &Poll<io::Result<usize>>) {
        if let Poll::Ready(Ok(1..)) = res {
            self.last.set(Instant::now());
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Active<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.moved(&res);
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Active<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.moved(&res);
        res
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}
