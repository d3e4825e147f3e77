//! A worker process: this test binary run again with only `worker_process` selected and
//! [`WORKER_ENV`] set. It takes the listeners the master placed at fds 3 (TCP) and 4 (Unix,
//! if any) and the heartbeat socket after them, says `ready` on the heartbeat socket, beats
//! every `PREFORK_BEAT_MS`, and serves one connection at a time, as a pre-fork sync worker
//! does: while it serves, it does not accept, so the next connection waits in the shared
//! backlog for an idle worker. `SIGTERM` stops the accepting; a request being answered is
//! finished first, and its connection closed after it.

use std::io;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::time::Duration;

use overlap::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use overlap::net::{TcpListener, UnixListener, UnixStream};
use overlap::process::{Child, Command};
use overlap::signal::{signal, SignalKind};
use overlap::sync::CancellationToken;

use super::protocol::{self, Request, EXIT_BAD_SETUP, EXIT_CRASH, EXIT_RECYCLE, MAX_LINE};
use super::sys;

/// The environment variable that makes the test binary a worker (see [`worker_main`]).
pub const WORKER_ENV: &str = "OVERLAP_USER19_PREFORK_WORKER";

/// What a worker is told through its environment.
#[derive(Debug, PartialEq, Eq)]
pub struct Setup {
    /// 1 (TCP at fd 3) or 2 (and Unix at fd 4); the heartbeat socket comes next.
    pub listeners: u8,
    /// Exit with [`EXIT_RECYCLE`] after this many answered requests.
    pub max_requests: Option<u32>,
    /// How often to send `beat`.
    pub beat: Duration,
}

impl Setup {
    /// Reads `PREFORK_LISTENERS`, `PREFORK_MAX_REQUESTS` (`0`: no limit) and
    /// `PREFORK_BEAT_MS` through `var`, with an error naming the variable and its value.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Setup, String> {
        let num = |name: &str| -> Result<u64, String> {
            let v = var(name).ok_or_else(|| format!("{name} is not set"))?;
            v.parse().map_err(|e| format!("bad {name}={v:?}: {e}"))
        };
        let listeners = match num("PREFORK_LISTENERS")? {
            n @ (1 | 2) => n as u8,
            n => return Err(format!("bad PREFORK_LISTENERS={n}: 1 or 2")),
        };
        let max_requests = match num("PREFORK_MAX_REQUESTS")? {
            0 => None,
            n => Some(u32::try_from(n).map_err(|e| format!("bad PREFORK_MAX_REQUESTS={n}: {e}"))?),
        };
        let beat = match num("PREFORK_BEAT_MS")? {
            0 => return Err("bad PREFORK_BEAT_MS=0: must beat".into()),
            ms => Duration::from_millis(ms),
        };
        Ok(Setup {
            listeners,
            max_requests,
            beat,
        })
    }
}

/// The worker's `main`: returns at once in an ordinary test run; as a worker, never
/// returns (exits with the worker's code).
pub fn worker_main() {
    if std::env::var_os(WORKER_ENV).is_none() {
        return;
    }
    let setup = match Setup::from_env(|k| std::env::var(k).ok()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("prefork worker: {e}");
            std::process::exit(EXIT_BAD_SETUP);
        }
    };
    let rt = overlap::Runtime::new().unwrap();
    let code = rt.block_on(async {
        match adopt(&setup) {
            Ok((tcp, unix, beat)) => serve(setup, tcp, unix, beat).await,
            Err(e) => {
                eprintln!("prefork worker: inherited fds: {e}");
                EXIT_BAD_SETUP
            }
        }
    });
    std::process::exit(code);
}

/// Takes the inherited fds: the listeners at 3 (and 4), the heartbeat socket after them.
fn adopt(setup: &Setup) -> io::Result<(TcpListener, Option<UnixListener>, UnixStream)> {
    // SAFETY: fds 3.. were placed by the master for this process alone, and nothing else
    // here takes them.
    let tcp = unsafe { sys::take_inherited(3)? };
    let tcp = TcpListener::try_from(tcp)?;
    let unix = if setup.listeners == 2 {
        // SAFETY: as above.
        let fd = unsafe { sys::take_inherited(4)? };
        Some(UnixListener::try_from(fd)?)
    } else {
        None
    };
    // SAFETY: as above.
    let beat = unsafe { sys::take_inherited(3 + i32::from(setup.listeners))? };
    let beat = UnixStream::from_std(StdUnixStream::from(beat))?;
    Ok((tcp, unix, beat))
}

/// What the worker does after a connection.
enum After {
    Accept,
    Stop,
    Recycle,
}

/// The worker's state across connections.
struct Worker {
    stop: CancellationToken,
    answered: u32,
    max_requests: Option<u32>,
    /// `SPAWN`ed processes, in this worker's process group.
    spawned: Vec<Child>,
}

/// Serves until `SIGTERM` (0), `max_requests` ([`EXIT_RECYCLE`]) or a `CRASH`.
pub async fn serve(
    setup: Setup,
    tcp: TcpListener,
    unix: Option<UnixListener>,
    beat: UnixStream,
) -> i32 {
    let stop = CancellationToken::new();
    // Listening before `ready`, so a SIGTERM the master sends after it is not fatal.
    let mut term = signal(SignalKind::terminate()).unwrap();
    let on_term = stop.clone();
    overlap::spawn(async move {
        term.recv().await;
        on_term.cancel();
    });
    let (_beat_in, mut beat_out) = beat.into_split();
    if beat_out.write_all(b"ready\n").await.is_err() {
        return EXIT_BAD_SETUP;
    }
    // The master gone (its end closed) is a stop too: no orphaned worker keeps accepting.
    let orphaned = stop.clone();
    overlap::spawn(async move {
        let mut ticks = overlap::time::interval(setup.beat);
        loop {
            ticks.tick().await;
            if beat_out.write_all(b"beat\n").await.is_err() {
                orphaned.cancel();
                return;
            }
        }
    });
    let mut w = Worker {
        stop: stop.clone(),
        answered: 0,
        max_requests: setup.max_requests,
        spawned: Vec::new(),
    };
    loop {
        let after = overlap::select! {
            _ = stop.cancelled() => After::Stop,
            r = tcp.accept() => match r {
                Ok((s, _)) => w.connection(s).await,
                Err(e) => accept_failed(e).await,
            },
            r = accept_unix(unix.as_ref()) => match r {
                Ok(s) => w.connection(s).await,
                Err(e) => accept_failed(e).await,
            },
        };
        match after {
            After::Accept => {}
            After::Stop => return 0,
            After::Recycle => return EXIT_RECYCLE,
        }
    }
}

/// The Unix listener's next connection; never, without one.
async fn accept_unix(unix: Option<&UnixListener>) -> io::Result<UnixStream> {
    match unix {
        Some(l) => l.accept().await.map(|(s, _)| s),
        None => std::future::pending().await,
    }
}

/// `EMFILE`, `ECONNABORTED` and the like: said, and the next accept a moment later.
async fn accept_failed(e: io::Error) -> After {
    eprintln!("prefork worker: accept: {e}");
    overlap::time::sleep(Duration::from_millis(10)).await;
    After::Accept
}

impl Worker {
    /// Serves one connection's requests in order until the client closes, vanishes, the
    /// worker is told to stop (between requests), or its last request is answered.
    async fn connection<S: AsyncRead + AsyncWrite + Unpin>(&mut self, mut s: S) -> After {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 512];
        loop {
            if let Some(end) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=end).collect();
                match self.answer(&line[..end], &mut s).await {
                    // The client vanished mid-answer: on to the next one.
                    Err(_) => return After::Accept,
                    Ok(Some(after)) => return after,
                    Ok(None) if self.stop.is_cancelled() => return After::Stop,
                    Ok(None) => continue,
                }
            }
            if buf.len() > MAX_LINE {
                let msg = format!("ERR line too long (over {MAX_LINE} bytes)\n");
                let _ = s.write_all(msg.as_bytes()).await;
                return After::Accept;
            }
            let read = overlap::select! {
                _ = self.stop.cancelled() => return After::Stop,
                r = s.read(&mut chunk) => r,
            };
            match read {
                Ok(0) | Err(_) => return After::Accept,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Answers one request line; `Some` when the connection (or the worker) ends with it.
    async fn answer<S: AsyncWrite + Unpin>(
        &mut self,
        line: &[u8],
        s: &mut S,
    ) -> io::Result<Option<After>> {
        let req = match protocol::parse(line) {
            Ok(req) => req,
            Err(bad) => {
                s.write_all(format!("ERR {bad}\n").as_bytes()).await?;
                return Ok(None);
            }
        };
        match req {
            Request::Pid => {
                s.write_all(format!("{}\n", std::process::id()).as_bytes())
                    .await?
            }
            Request::Echo(text) => s.write_all(format!("{text}\n").as_bytes()).await?,
            Request::Sleep(ms) => {
                s.write_all(format!("SLEEPING {ms}\n").as_bytes()).await?;
                overlap::time::sleep(Duration::from_millis(ms)).await;
                s.write_all(format!("SLEPT {ms}\n").as_bytes()).await?;
            }
            Request::Spawn => {
                let answer = match Command::new("sleep")
                    .arg("1000")
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                {
                    Ok(child) => {
                        let pid = child.id().expect("just spawned");
                        self.spawned.push(child);
                        format!("SPAWNED {pid}\n")
                    }
                    Err(e) => format!("ERR cannot spawn: {e}\n"),
                };
                s.write_all(answer.as_bytes()).await?;
            }
            Request::Crash => std::process::exit(EXIT_CRASH),
            Request::Hang => loop {
                // The whole worker stops: no answer, no heartbeat, no SIGTERM handling.
                std::thread::sleep(Duration::from_secs(3600));
            },
        }
        self.answered += 1;
        if Some(self.answered) == self.max_requests {
            return Ok(Some(After::Recycle));
        }
        Ok(None)
    }
}
