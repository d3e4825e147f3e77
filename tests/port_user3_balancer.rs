//! A user's TCP load balancer, sketched as one would for tokio (backends picked round-robin,
//! a health checker that `connect`s to each under `time::timeout` on every
//! `time::interval` tick, `io::copy_bidirectional` per connection, live connections in a
//! `JoinSet`, a `watch` channel to shut down) and then written for overlap.
//!
//! Three echo backends on loopback greet each connection with their name. The test checks
//! that connections go round-robin; that aborting one backend's listener task
//! (`JoinHandle::abort`) leaves its open connections working but takes it out of the
//! rotation (the balancer routes around it, whether the health checker or a refused connect
//! noticed first); that a backend restarted on the same address comes back; and that the
//! shutdown signal stops the accept loop and the checker, lets the live connections finish,
//! and leaves no task behind.
//!
//! What the port changed, against tokio: `spawn` is `spawn_local` (the shared state is an
//! `Rc`); `select!` wants fused futures (`.fuse()`); `shutdown()` on a stream is `close()`.
//! Nothing else: the names (`time::interval`, `time::timeout`, `JoinSet`, `watch`,
//! `JoinHandle::abort`, `copy_bidirectional`) are tokio's.

mod support;

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::io::{self, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use overlap::net::{TcpListener, TcpStream};
use overlap::sync::watch;
use overlap::task::{JoinHandle, JoinSet};
use overlap::time;
use support::within;

const HANG: Duration = Duration::from_secs(20);
const CHECK_EVERY: Duration = Duration::from_millis(20);
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// A backend: greets each connection with `backend <id>\n`, then echoes until end of input.
/// Counts its live connection tasks in `live`.
async fn backend(listener: TcpListener, id: usize, live: Rc<Cell<usize>>) -> io::Result<()> {
    loop {
        let (mut conn, _) = listener.accept().await?;
        let live = live.clone();
        live.set(live.get() + 1);
        overlap::spawn(async move {
            let res = async {
                conn.write_all(format!("backend {id}\n").as_bytes()).await?;
                let mut buf = [0u8; 1024];
                loop {
                    let n = conn.read(&mut buf).await?;
                    if n == 0 {
                        return conn.close().await;
                    }
                    conn.write_all(&buf[..n]).await?;
                }
            }
            .await;
            live.set(live.get() - 1);
            // A health check that hangs up at once may reset the greeting: not our error.
            let _ = res;
        });
    }
}

/// The balancer's shared view of its backends.
struct Pool {
    addrs: Vec<SocketAddr>,
    /// Published by the health checker (and by the front when a connect is refused).
    healthy: watch::Sender<Vec<bool>>,
    next: Cell<usize>,
}

impl Pool {
    /// The next healthy backend after the last one picked, round-robin.
    fn pick(&self) -> Option<usize> {
        let healthy = self.healthy.borrow();
        let n = self.addrs.len();
        (0..n)
            .map(|k| (self.next.get() + k) % n)
            .find(|&i| healthy[i])
            .inspect(|&i| self.next.set(i + 1))
    }

    fn mark(&self, i: usize, up: bool) {
        self.healthy
            .send_if_modified(|h| std::mem::replace(&mut h[i], up) != up);
    }
}

/// Connects to each backend on every tick; a backend that refuses or does not answer in
/// time is out until a later check succeeds.
async fn health_checker(pool: Rc<Pool>, mut stop: watch::Receiver<bool>) {
    let mut every = time::interval(CHECK_EVERY);
    loop {
        overlap::select! {
            _ = every.tick().fuse() => {}
            _ = stop.wait_for(|s| *s).fuse() => return,
        }
        for (i, &addr) in pool.addrs.iter().enumerate() {
            let up = matches!(
                time::timeout(CHECK_TIMEOUT, TcpStream::connect(addr)).await,
                Ok(Ok(_))
            );
            pool.mark(i, up);
        }
    }
}

/// What the front reports when it has shut down.
#[derive(Debug, PartialEq)]
struct FrontReport {
    served: usize,
    bytes_up: u64,
    bytes_down: u64,
}

/// Accepts until told to stop; each connection goes to the next healthy backend (trying the
/// others when a connect is refused) and is forwarded with `copy_bidirectional` in a task of
/// the `conns` set. On stop, waits for the live connections to end.
async fn front(
    listener: TcpListener,
    pool: Rc<Pool>,
    mut stop: watch::Receiver<bool>,
) -> io::Result<FrontReport> {
    let mut conns: JoinSet<io::Result<(u64, u64)>> = JoinSet::new();
    let mut report = FrontReport {
        served: 0,
        bytes_up: 0,
        bytes_down: 0,
    };
    let mut tally = |res: Result<io::Result<(u64, u64)>, overlap::JoinError>| {
        if let Ok(Ok((up, down))) = res {
            report.served += 1;
            report.bytes_up += up;
            report.bytes_down += down;
        }
    };
    loop {
        let (mut inbound, _) = overlap::select! {
            accepted = listener.accept().fuse() => accepted?,
            _ = stop.wait_for(|s| *s).fuse() => break,
        };
        while let Some(done) = conns.try_join_next() {
            tally(done);
        }
        let mut outbound = None;
        for _ in 0..pool.addrs.len() {
            let Some(i) = pool.pick() else { break };
            match TcpStream::connect(pool.addrs[i]).await {
                Ok(s) => {
                    outbound = Some(s);
                    break;
                }
                Err(_) => pool.mark(i, false),
            }
        }
        // No backend: the client is hung up on.
        let Some(mut outbound) = outbound else {
            continue;
        };
        conns.spawn(async move { io::copy_bidirectional(&mut inbound, &mut outbound).await });
    }
    drop(listener);
    while let Some(done) = conns.join_next().await {
        tally(done);
    }
    Ok(report)
}

/// A client: connects through the balancer, reads which backend it got, and checks one echo.
async fn client(front: SocketAddr, msg: &str) -> io::Result<(usize, BufReader<TcpStream>)> {
    let mut conn = BufReader::new(TcpStream::connect(front).await?);
    let mut greeting = String::new();
    conn.read_line(&mut greeting).await?;
    let id = greeting
        .trim()
        .strip_prefix("backend ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad greeting {greeting:?}"));
    echo(&mut conn, msg).await?;
    Ok((id, conn))
}

/// Sends `msg` and reads it back.
async fn echo(conn: &mut BufReader<TcpStream>, msg: &str) -> io::Result<()> {
    conn.get_mut().write_all(msg.as_bytes()).await?;
    let mut back = vec![0u8; msg.len()];
    conn.read_exact(&mut back).await?;
    assert_eq!(back, msg.as_bytes());
    Ok(())
}

fn spawn_backend(
    listener: TcpListener,
    id: usize,
    live: &Rc<Cell<usize>>,
) -> JoinHandle<io::Result<()>> {
    overlap::spawn(backend(listener, id, live.clone()))
}

#[overlap::test]
async fn round_robin_routes_around_a_dead_backend_and_shuts_down_cleanly() {
    let live = Rc::new(Cell::new(0));
    let mut addrs = Vec::new();
    let mut listeners: Vec<JoinHandle<io::Result<()>>> = Vec::new();
    for id in 0..3 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.push(l.local_addr().unwrap());
        listeners.push(spawn_backend(l, id, &live));
    }
    let (healthy, _) = watch::channel(vec![true; 3]);
    let pool = Rc::new(Pool {
        addrs: addrs.clone(),
        healthy,
        next: Cell::new(0),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let checker = overlap::spawn(health_checker(pool.clone(), stop_rx.clone()));
    let front_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front_addr = front_listener.local_addr().unwrap();
    let front_task = overlap::spawn(front(front_listener, pool.clone(), stop_rx));

    let mut open = Vec::new();
    let mut sent = 0usize;
    within(
        HANG,
        async {
            // Round-robin over three healthy backends.
            let mut got = Vec::new();
            for k in 0..6 {
                let msg = format!("hello {k}\n");
                sent += msg.len();
                let (id, conn) = client(front_addr, &msg).await.unwrap();
                got.push(id);
                open.push((id, conn));
            }
            assert_eq!(got, [0, 1, 2, 0, 1, 2]);

            // Backend 1's listener dies; its open connections are separate tasks and live on.
            listeners[1].abort();
            let err = (&mut listeners[1]).await.unwrap_err();
            assert!(err.is_cancelled());
            for (_, conn) in open.iter_mut().filter(|(id, _)| *id == 1) {
                echo(conn, "still here\n").await.unwrap();
                sent += "still here\n".len();
            }

            // New connections avoid it, whoever notices first (a refused connect, or the
            // checker), and alternate between the other two.
            let mut got = Vec::new();
            for k in 0..4 {
                let msg = format!("after {k}\n");
                sent += msg.len();
                let (id, conn) = client(front_addr, &msg).await.unwrap();
                got.push(id);
                open.push((id, conn));
            }
            assert!(!got.contains(&1), "routed to the dead backend: {got:?}");
            assert!(
                got.windows(2).all(|w| w[0] != w[1]),
                "not round-robin: {got:?}"
            );
            let mut seen = pool.healthy.subscribe();
            seen.wait_for(|h| *h == [true, false, true]).await.unwrap();

            // Restarted on the same port (SO_REUSEADDR, with its old connections still open),
            // the checker brings it back.
            let again = TcpListener::bind(addrs[1]).await.unwrap();
            listeners[1] = spawn_backend(again, 1, &live);
            seen.wait_for(|h| *h == [true, true, true]).await.unwrap();
            let mut got = Vec::new();
            for k in 0..3 {
                let msg = format!("back {k}\n");
                sent += msg.len();
                let (id, conn) = client(front_addr, &msg).await.unwrap();
                got.push(id);
                open.push((id, conn));
            }
            got.sort();
            assert_eq!(got, [0, 1, 2]);
        },
        "the balancer's traffic",
    )
    .await;

    // Shut down: the accept loop and the checker stop at once; the front then waits for the
    // live connections, which end as their clients hang up.
    stop_tx.send(true).unwrap();
    within(HANG, checker, "the health checker to stop")
        .await
        .unwrap();
    let refused = within(
        HANG,
        async {
            loop {
                match TcpStream::connect(front_addr).await {
                    Err(e) => break e,
                    Ok(_) => time::sleep(Duration::from_millis(1)).await,
                }
            }
        },
        "the front to stop listening",
    )
    .await;
    assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    assert!(!front_task.is_finished(), "left with connections live");
    let conns = open.len();
    for (_, mut conn) in open {
        conn.get_mut().close().await.unwrap();
        let mut rest = Vec::new();
        within(HANG, conn.read_to_end(&mut rest), "the backend's end")
            .await
            .unwrap();
        assert!(rest.is_empty(), "unexpected bytes {rest:?}");
    }
    let report = within(HANG, front_task, "the front to drain")
        .await
        .unwrap()
        .unwrap();
    // Greetings of `backend N\n` are 10 bytes each way down.
    assert_eq!(
        report,
        FrontReport {
            served: conns,
            bytes_up: sent as u64,
            bytes_down: (sent + 10 * conns) as u64,
        }
    );
    for l in &listeners {
        l.abort();
    }
    for l in listeners {
        let _ = within(HANG, l, "a backend listener to end").await;
    }
    within(
        HANG,
        async {
            while live.get() != 0 {
                time::sleep(Duration::from_millis(1)).await;
            }
        },
        "the backends' connection tasks to end",
    )
    .await;
}
