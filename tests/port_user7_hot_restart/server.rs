//! One generation of the server: it gets its listener (bound, handed over by the
//! generation before, or inherited as fd 3), answers each request line with its
//! generation's tag, and, when the next generation connects to its upgrade socket, hands
//! the listener over, stops accepting once the next one says it is ready, and drains its
//! connections up to a deadline.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use overlap::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use overlap::select;
use overlap::task::JoinSet;
use overlap::time::timeout;

use super::handoff::{recv_fd, send_fd, STATE_LEN};

/// How long a generation waits for the next one's "ready" after sending the listener.
const READY_WAIT: Duration = Duration::from_secs(5);

/// Where a generation's listener comes from.
pub enum Start {
    /// A fresh listener on 127.0.0.1:0.
    Bind,
    /// Handed over by the generation whose upgrade socket is at this path. With `fail`,
    /// the generation fails after adopting it (a broken config, say), before saying ready.
    Handoff { from: PathBuf, fail: bool },
    /// Inherited (socket activation).
    Inherited(OwnedFd),
}

/// What a generation did, returned when it ends.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections it accepted.
    pub accepted: u64,
    /// Connections that ended with their client's end of file.
    pub finished: u64,
    /// Connections still open at the drain deadline, cut.
    pub cut: u64,
    /// Connections accepted by the generations before it (from the state it received).
    pub before: u64,
    /// Whether its listener's fd was close-on-exec.
    pub cloexec: bool,
}

/// The path of generation `gen`'s upgrade socket in `dir`.
pub fn upgrade_path(dir: &Path, gen: u64) -> PathBuf {
    dir.join(format!("gen{gen}.sock"))
}

/// Runs generation `gen` until it has handed its listener on and drained. `ready` gets its
/// listener's address once it accepts (or the error it failed to start with).
pub async fn generation(
    gen: u64,
    dir: PathBuf,
    start: Start,
    drain: Duration,
    ready: impl FnOnce(io::Result<SocketAddr>),
) -> io::Result<Stats> {
    let started = start_listener(gen, &dir, start).await;
    let (listener, upgrade, before, prev) = match started {
        Ok(s) => s,
        Err(e) => {
            // The next try binds this generation's upgrade path again.
            let _ = std::fs::remove_file(upgrade_path(&dir, gen));
            ready(Err(io::Error::new(e.kind(), e.to_string())));
            return Err(e);
        }
    };
    let mut stats = Stats {
        before,
        cloexec: is_cloexec(listener.as_raw_fd()),
        ..Stats::default()
    };
    ready(listener.local_addr());
    // Ready: the generation before may stop accepting. One that is gone already (it
    // crashed after sending, say) hears nothing, and this one serves on all the same.
    if let Some(mut prev) = prev {
        if let Err(e) = prev.write_all(b"R").await {
            eprintln!("gen {gen}: the generation before went away: {e}");
        }
    }
    let mut conns = JoinSet::new();
    loop {
        select! {
            res = listener.accept().fuse() => match res {
                Ok((stream, _)) => {
                    stats.accepted += 1;
                    conns.spawn(serve(stream, gen));
                }
                Err(e) if e.raw_os_error() == Some(libc::EMFILE) => {
                    overlap::time::sleep(Duration::from_millis(10)).await
                }
                Err(e) => return Err(e),
            },
            res = upgrade.accept().fuse() => {
                let (mut next, _) = res?;
                let mut state = [0u8; STATE_LEN];
                state[..8].copy_from_slice(&gen.to_be_bytes());
                state[8..].copy_from_slice(&(before + stats.accepted).to_be_bytes());
                match hand_over(&listener, &mut next, &state).await {
                    Ok(()) => break,
                    // The next generation failed: keep serving, as if nothing happened.
                    Err(e) => eprintln!("gen {gen}: upgrade failed, serving on: {e}"),
                }
            }
        }
    }
    drop(listener);
    drop(upgrade);
    let _ = std::fs::remove_file(upgrade_path(&dir, gen));
    let drained = timeout(drain, async {
        while let Some(res) = conns.join_next().await {
            if res.expect("a connection task panicked").is_ok() {
                stats.finished += 1;
            }
        }
    })
    .await;
    if drained.is_err() {
        stats.cut = conns.len() as u64;
        conns.shutdown().await;
    }
    Ok(stats)
}

/// The listener, the upgrade socket, the connections accepted before, and the upgrade
/// connection of the generation before (to tell it "ready").
async fn start_listener(
    gen: u64,
    dir: &Path,
    start: Start,
) -> io::Result<(TcpListener, UnixListener, u64, Option<UnixStream>)> {
    let upgrade = UnixListener::bind(upgrade_path(dir, gen))?;
    match start {
        Start::Bind => Ok((TcpListener::bind("127.0.0.1:0").await?, upgrade, 0, None)),
        Start::Inherited(fd) => Ok((TcpListener::try_from(fd)?, upgrade, 0, None)),
        Start::Handoff { from, fail } => {
            let prev = UnixStream::connect(&from).await?;
            let (state, fd) = timeout(READY_WAIT, recv_fd(&prev))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no listener came"))??;
            let listener = TcpListener::try_from(fd)?;
            // overlap takes a listener of either family: this server serves IPv4 only.
            if !listener.local_addr()?.is_ipv4() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("handed an IPv6 listener: {:?}", listener.local_addr()?),
                ));
            }
            if fail {
                return Err(io::Error::other("gen failed to start: broken config"));
            }
            let before = u64::from_be_bytes(state[8..].try_into().unwrap());
            Ok((listener, upgrade, before, Some(prev)))
        }
    }
}

/// Sends the listener to the next generation and waits for its "R".
async fn hand_over(listener: &TcpListener, next: &mut UnixStream, state: &[u8]) -> io::Result<()> {
    send_fd(next, state, listener.as_raw_fd()).await?;
    let mut r = [0u8; 1];
    match timeout(READY_WAIT, next.read(&mut r)).await {
        Ok(Ok(1)) if &r == b"R" => Ok(()),
        Ok(Ok(_)) => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the next generation went away before it was ready",
        )),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "no ready came")),
    }
}

/// Answers each line `x` with `g<gen> x`, until the client's end of file.
async fn serve(stream: TcpStream, gen: u64) -> io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        w.write_all(format!("g{gen} {line}").as_bytes()).await?;
    }
}

/// Whether `fd` is close-on-exec.
pub fn is_cloexec(fd: i32) -> bool {
    // SAFETY: F_GETFD takes no pointer.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    flags >= 0 && flags & libc::FD_CLOEXEC != 0
}
