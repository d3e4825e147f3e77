//! A user's graceful shutdown, sketched as one would for tokio (a termination signal, a
//! `watch` channel telling every connection, a `JoinSet` to wait for them within a grace
//! period, `Runtime::shutdown_timeout` for blocking work still running) and then written
//! for overlap. The test checks, in order: an idle connection is told and closed, new
//! connections are refused, a request in flight on the blocking pool still gets its answer,
//! and a blocking job still running when `block_on` returns finishes inside
//! `shutdown_timeout`.

mod support;

use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::io::{self, AsyncBufReadExt, AsyncWriteExt, BufReader};
use overlap::net::{TcpListener, TcpStream};
use overlap::runtime::Builder;
use overlap::signal::unix::{signal, SignalKind};
use overlap::stream::StreamExt;
use overlap::sync::watch;
use overlap::task::JoinSet;
use overlap::time::timeout;
use support::within;

const HANG: Duration = Duration::from_secs(10);

/// What the blocking side of the server shares with the test.
struct Pool {
    /// Each `WORK` job waits for one message here: the test decides when it ends.
    release: Arc<Mutex<std_mpsc::Receiver<()>>>,
    /// The audit log the last job writes, after the runtime has stopped serving.
    audit: Arc<Mutex<Vec<&'static str>>>,
    audit_started: std_mpsc::Sender<()>,
}

async fn connection(
    stream: TcpStream,
    mut shutdown: watch::Receiver<bool>,
    release: Arc<Mutex<std_mpsc::Receiver<()>>>,
) -> io::Result<u32> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut answered = 0;
    loop {
        overlap::select! {
            line = lines.next().fuse() => match line.transpose()?.as_deref() {
                Some("PING") => write.write_all(b"PONG\n").await?,
                Some("WORK") => {
                    // A slow request: not interrupted by the shutdown.
                    let release = release.clone();
                    overlap::spawn_blocking(move || release.lock().unwrap().recv().unwrap())
                        .await
                        .expect("work job");
                    write.write_all(b"DONE\n").await?;
                }
                Some(_) => write.write_all(b"ERR\n").await?,
                None => return Ok(answered),
            },
            _ = shutdown.changed().fuse() => {
                write.write_all(b"BYE\n").await?;
                write.close().await?;
                return Ok(answered);
            }
        }
        answered += 1;
    }
}

/// Serves until `SIGUSR1`; then stops accepting, tells every connection, and waits up to
/// `grace` for them. Returns how many requests the connections answered.
async fn serve(listener: TcpListener, pool: Pool, grace: Duration) -> io::Result<u32> {
    let mut terminate = signal(SignalKind::user_defined1())?;
    let (stop, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    loop {
        overlap::select! {
            accepted = listener.accept().fuse() => {
                let (stream, _) = accepted?;
                connections.spawn(connection(stream, stop_rx.clone(), pool.release.clone()));
            }
            _ = terminate.recv().fuse() => break,
        }
    }
    drop(listener);
    stop.send(true).unwrap();
    let mut answered = 0;
    let all_done = async {
        while let Some(conn) = connections.join_next().await {
            answered += conn.expect("connection task panicked")?;
        }
        io::Result::Ok(())
    };
    timeout(grace, all_done).await??;
    // Last, a job the runtime's shutdown must wait for.
    let (audit, started) = (pool.audit.clone(), pool.audit_started.clone());
    overlap::spawn_blocking(move || {
        started.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        audit.lock().unwrap().push("flushed");
    })
    .detach();
    Ok(answered)
}

fn raise_usr1() {
    // SAFETY: kill and getpid take no pointers.
    assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) }, 0);
}

#[test]
fn shutdown_closes_idle_connections_finishes_requests_and_waits_for_blocking_jobs() {
    let rt = Builder::new_current_thread().enable_all().build().unwrap();
    let (release_tx, release_rx) = std_mpsc::channel();
    let audit = Arc::new(Mutex::new(Vec::new()));
    let (started_tx, started_rx) = std_mpsc::channel();
    let pool = Pool {
        release: Arc::new(Mutex::new(release_rx)),
        audit: audit.clone(),
        audit_started: started_tx,
    };
    let answered = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = overlap::spawn(serve(listener, pool, HANG));

        let (idle_read, mut idle) = TcpStream::connect(addr).await.unwrap().into_split();
        let mut idle_lines = BufReader::new(idle_read).lines();
        idle.write_all(b"PING\n").await.unwrap();
        let pong = within(HANG, idle_lines.next(), "pong")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(pong, "PONG");

        let (busy_read, mut busy) = TcpStream::connect(addr).await.unwrap().into_split();
        let mut busy_lines = BufReader::new(busy_read).lines();
        busy.write_all(b"PING\nWORK\n").await.unwrap();
        let pong = within(HANG, busy_lines.next(), "pong")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(pong, "PONG");
        // The WORK job now waits on the pool for `release`.

        raise_usr1();
        let bye = within(HANG, idle_lines.next(), "idle bye")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(bye, "BYE");
        assert!(within(HANG, idle_lines.next(), "idle eof").await.is_none());
        // The listener is gone by now.
        let refused = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);

        // The request in flight still gets its answer, then the goodbye.
        release_tx.send(()).unwrap();
        let done = within(HANG, busy_lines.next(), "work done")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(done, "DONE");
        let bye = within(HANG, busy_lines.next(), "busy bye")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(bye, "BYE");
        assert!(within(HANG, busy_lines.next(), "busy eof").await.is_none());
        within(HANG, server, "server end").await.unwrap().unwrap()
    });
    assert_eq!(answered, 3); // PING, PING, WORK
    started_rx
        .recv_timeout(HANG)
        .expect("the audit job started");
    rt.shutdown_timeout(HANG);
    assert_eq!(*audit.lock().unwrap(), ["flushed"]);
}
