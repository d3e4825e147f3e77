//! The server: a TCP listener, a session per connection (its own terminal and shell) up to
//! a maximum, the bidirectional copy between the socket's frames and the terminal, the
//! idle timeout, and the shutdown that ends every session.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use overlap::codec::{FramedRead, FramedWrite};
use overlap::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use overlap::net::{TcpListener, TcpStream};
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;
use overlap::sync::{CancellationToken, OwnedSemaphorePermit, Semaphore};
use overlap::task::TaskTracker;
use overlap::time::{sleep_until, timeout, Instant};

use super::proto::{Frame, FrameCodec};
use super::pty::{exit_of, Pty, Shell, ShellCommand};

#[derive(Debug, Clone)]
pub struct Config {
    pub shell: ShellCommand,
    pub max_sessions: usize,
    /// A session with no byte either way for this long is ended.
    pub idle: Duration,
    /// How long a hung-up shell has before `SIGKILL`.
    pub grace: Duration,
    /// How long the shutdown waits for the sessions.
    pub drain: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            shell: ShellCommand::default(),
            max_sessions: 4,
            idle: Duration::from_secs(600),
            grace: Duration::from_secs(5),
            drain: Duration::from_secs(60),
        }
    }
}

/// How sessions ended, counted.
#[derive(Debug, Default)]
pub struct Stats {
    pub open: Cell<usize>,
    pub started: Cell<u64>,
    pub rejected: Cell<u64>,
    pub exited: Cell<u64>,
    pub client_gone: Cell<u64>,
    pub idle: Cell<u64>,
    pub shut_down: Cell<u64>,
    pub bad_input: Cell<u64>,
    /// I/O errors on the terminal: the child's exit (EIO) must never count here.
    pub errors: Cell<u64>,
    /// The shells' pids, as started.
    pub pids: std::cell::RefCell<Vec<u32>>,
}

fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

pub struct Server {
    pub addr: SocketAddr,
    pub stats: Rc<Stats>,
    token: CancellationToken,
    tracker: TaskTracker,
    drain: Duration,
}

impl Server {
    pub async fn start(config: Config) -> io::Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let stats = Rc::new(Stats::default());
        let (token, tracker) = (CancellationToken::new(), TaskTracker::new());
        let drain = config.drain;
        tracker.spawn(accept_loop(
            listener,
            Rc::new(config),
            stats.clone(),
            token.clone(),
            tracker.clone(),
        ));
        Ok(Server {
            addr,
            stats,
            token,
            tracker,
            drain,
        })
    }

    /// Ends every session (each client told why, each shell hung up and reaped) and the
    /// listener; true if all had ended within the drain time.
    pub async fn shutdown(&self) -> bool {
        self.token.cancel();
        self.tracker.close();
        timeout(self.drain, self.tracker.wait()).await.is_ok()
    }
}

async fn accept_loop(
    listener: TcpListener,
    config: Rc<Config>,
    stats: Rc<Stats>,
    token: CancellationToken,
    tracker: TaskTracker,
) {
    let limit = Rc::new(Semaphore::new(config.max_sessions));
    loop {
        let stream = overlap::select! {
            _ = token.cancelled() => return,
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        match limit.clone().try_acquire_owned() {
            Ok(permit) => {
                let (config, stats, token) = (config.clone(), stats.clone(), token.clone());
                tracker.spawn(session(stream, config, stats, token, permit));
            }
            Err(_) => {
                bump(&stats.rejected);
                let why = format!("server busy: {} sessions at most", config.max_sessions);
                tracker.spawn(reject(stream, why));
            }
        }
    }
}

async fn reject(stream: TcpStream, why: String) {
    let mut out = FramedWrite::new(stream, FrameCodec);
    let _ = timeout(Duration::from_secs(5), out.send(Frame::Error(why))).await;
    let _ = out.close().await;
}

/// Why a session's copy ended.
enum End {
    ShellDone,
    TerminalFailed(io::Error),
    ClientGone,
    BadInput(io::Error),
    Idle,
    Shutdown,
}

async fn session(
    stream: TcpStream,
    config: Rc<Config>,
    stats: Rc<Stats>,
    token: CancellationToken,
    _permit: OwnedSemaphorePermit,
) {
    stats.open.set(stats.open.get() + 1);
    let _open = count_open(&stats);
    let (rd, wr) = stream.into_split();
    let mut input = FramedRead::new(rd, FrameCodec);
    let mut output = FramedWrite::new(wr, FrameCodec);
    let shell = match Shell::spawn(&config.shell) {
        Ok(shell) => shell,
        Err(e) => {
            bump(&stats.errors);
            let _ = output.send(Frame::Error(format!("no shell: {e}"))).await;
            return;
        }
    };
    bump(&stats.started);
    stats.pids.borrow_mut().push(shell.pid);
    let activity = Cell::new(Instant::now());
    let end = {
        let mut down = pin!(pty_to_client(&shell.pty, &mut output, &activity));
        let mut up = pin!(client_to_pty(&mut input, &shell.pty, &activity));
        overlap::select! {
            r = down => match r {
                Ok(()) => End::ShellDone,
                Err(e) => End::TerminalFailed(e),
            },
            r = up => match r {
                Err(e) if e.kind() == io::ErrorKind::InvalidData => End::BadInput(e),
                _ => End::ClientGone,
            },
            _ = idle(&activity, config.idle) => End::Idle,
            _ = token.cancelled() => End::Shutdown,
        }
    };
    let said = match &end {
        End::ShellDone | End::ClientGone => None,
        End::TerminalFailed(e) => Some(format!("terminal error: {e}")),
        End::BadInput(e) => Some(format!("bad frame: {e}")),
        End::Idle => Some(format!("idle timeout: nothing for {:?}", config.idle)),
        End::Shutdown => Some("server shutting down".to_owned()),
    };
    match end {
        End::ShellDone => bump(&stats.exited),
        End::TerminalFailed(_) => bump(&stats.errors),
        End::ClientGone => bump(&stats.client_gone),
        End::BadInput(_) => bump(&stats.bad_input),
        End::Idle => bump(&stats.idle),
        End::Shutdown => bump(&stats.shut_down),
    }
    let client_gone = matches!(end, End::ClientGone);
    let status = if let End::ShellDone = end {
        let mut child = shell.child;
        drop(shell.pty);
        child.wait().await
    } else {
        if let Some(why) = said {
            let _ = timeout(config.grace, output.send(Frame::Error(why))).await;
        }
        shell.hang_up(config.grace).await
    };
    if client_gone {
        return;
    }
    match status {
        Ok(status) => {
            let last = Frame::Exit(exit_of(status));
            let _ = timeout(config.grace, output.send(last)).await;
        }
        Err(_) => bump(&stats.errors),
    }
    let _ = timeout(config.grace, output.close()).await;
}

/// Counts the session closed however it ends (a panic included).
fn count_open(stats: &Rc<Stats>) -> impl Drop + '_ {
    struct Open<'a>(&'a Stats);
    impl Drop for Open<'_> {
        fn drop(&mut self) {
            self.0.open.set(self.0.open.get() - 1);
        }
    }
    Open(stats)
}

/// The terminal's output to the client, a frame per read, each written before the next
/// read (so a client that does not read stops the shell at a full terminal). `Ok` at the
/// terminal's end: `EIO`, every slave fd closed.
async fn pty_to_client(
    pty: &Pty,
    out: &mut FramedWrite<OwnedWriteHalf, FrameCodec>,
    activity: &Cell<Instant>,
) -> io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = pty.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        activity.set(Instant::now());
        if out.send(Frame::Data(buf[..n].to_vec())).await.is_err() {
            // The client is gone: its side notices.
            return std::future::pending().await;
        }
    }
}

/// The client's frames to the terminal. `Ok` when the client closes; `InvalidData` for a
/// bad frame; a write refused by a terminal whose shell is gone waits for the other
/// direction to see the end.
async fn client_to_pty(
    input: &mut FramedRead<OwnedReadHalf, FrameCodec>,
    pty: &Pty,
    activity: &Cell<Instant>,
) -> io::Result<()> {
    while let Some(frame) = input.next().await {
        let wrote = match frame? {
            Frame::Data(bytes) => {
                activity.set(Instant::now());
                pty.write_all(&bytes).await
            }
            Frame::Resize { rows, cols } => pty.resize(rows, cols),
            Frame::Interrupt => {
                activity.set(Instant::now());
                pty.write_all(&[0x03]).await
            }
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{other:?} is not for a client to send"),
                ))
            }
        };
        if wrote.is_err() {
            return std::future::pending().await;
        }
    }
    Ok(())
}

/// Ends once nothing has moved for `limit`.
async fn idle(activity: &Cell<Instant>, limit: Duration) {
    loop {
        let deadline = activity.get() + limit;
        if Instant::now() >= deadline {
            return;
        }
        sleep_until(deadline).await;
    }
}
