//! The tests' side: a fake service manager receiving the daemon's notifications (on a
//! socket file or an abstract name), line clients over TCP and Unix streams, and a daemon
//! run in-process on listeners adopted from std through `TryFrom<OwnedFd>`, driven by
//! control events where the child-process daemon gets signals.

use std::ffi::OsString;
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use overlap::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use overlap::net::{TcpStream, UnixDatagram, UnixStream};
use overlap::sync::mpsc;
use overlap::task::JoinHandle;

use super::activation::adopt;
use super::daemon::{run, Control, Outcome, Setup};
use super::service::Shared;
use super::support::{within, TempDir};

/// A hang guard (virtual time on a paused clock).
pub const HANG: Duration = Duration::from_secs(3600);

/// Plays systemd's side of `NOTIFY_SOCKET`.
pub struct Manager {
    sock: UnixDatagram,
    /// The value to give the daemon as `NOTIFY_SOCKET`.
    pub value: OsString,
}

impl Manager {
    /// Listening on `notify.sock` in `dir`.
    pub fn at_path(dir: &TempDir) -> Manager {
        let path = dir.join("notify.sock");
        Manager {
            sock: UnixDatagram::bind(&path).unwrap(),
            value: path.into_os_string(),
        }
    }

    /// Listening on a fresh abstract name, given to the daemon as `@name`.
    pub fn abstract_named() -> Manager {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("overlap-user15-{}-{n}", std::process::id());
        Manager {
            sock: UnixDatagram::bind(format!("\0{name}")).unwrap(),
            value: format!("@{name}").into(),
        }
    }

    /// The next notification.
    pub async fn next(&self) -> String {
        let mut buf = vec![0u8; 4096];
        let n = within(HANG, self.sock.recv(&mut buf), "a notification")
            .await
            .unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    /// A notification already queued, if any.
    pub fn pending(&self) -> Option<String> {
        let mut buf = vec![0u8; 4096];
        match self.sock.try_recv(&mut buf) {
            Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Err(e) => panic!("{e}"),
        }
    }
}

/// A line client.
pub struct Client<S> {
    io: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub fn new(stream: S) -> Client<S> {
        Client {
            io: BufReader::new(stream),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.io.get_mut().write_all(bytes).await.unwrap();
    }

    /// The next answer line without its newline; `None` at the end of file.
    pub async fn line(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        let n = within(HANG, self.io.read_until(b'\n', &mut buf), "an answer")
            .await
            .unwrap();
        if n == 0 {
            return None;
        }
        assert_eq!(buf.pop(), Some(b'\n'), "a line cut short: {buf:?}");
        Some(String::from_utf8(buf).unwrap())
    }

    /// Sends `request` and a newline; the answer.
    pub async fn ask(&mut self, request: &str) -> String {
        self.send(format!("{request}\n").as_bytes()).await;
        self.line()
            .await
            .expect("the end of file instead of an answer")
    }

    /// Reads the end of file (and nothing before it).
    pub async fn expect_eof(&mut self) {
        assert_eq!(self.line().await, None);
    }
}

pub async fn tcp_client(addr: SocketAddr) -> Client<TcpStream> {
    Client::new(TcpStream::connect(addr).await.unwrap())
}

pub async fn unix_client(path: &PathBuf) -> Client<UnixStream> {
    Client::new(UnixStream::connect(path).await.unwrap())
}

/// Waits until connecting to the TCP `addr` (or the Unix `path`) is refused. Not at once:
/// a process another test forks holds a copy of every fd until it `exec`s, and a listener
/// closed here stays open there for that moment.
pub async fn refused_eventually(addr: Option<SocketAddr>, path: Option<&PathBuf>) {
    let wait = async {
        loop {
            let res = match (addr, path) {
                (Some(a), _) => TcpStream::connect(a).await.map(drop),
                (None, Some(p)) => UnixStream::connect(p).await.map(drop),
                (None, None) => unreachable!(),
            };
            match res {
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => return,
                // Taken into the copy's backlog, or reset as the copy closed at `exec`.
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
                Err(e) => panic!("connecting: {e}"),
            }
            overlap::time::sleep(Duration::from_millis(1)).await;
        }
    };
    within(HANG, wait, "connects refused").await
}

/// A daemon running in this test's runtime.
pub struct Rig {
    pub dir: TempDir,
    pub tcp: SocketAddr,
    pub unix: PathBuf,
    pub config: PathBuf,
    pub pidfile: PathBuf,
    pub manager: Manager,
    pub control: mpsc::UnboundedSender<Control>,
    pub shared: Rc<Shared>,
    pub task: JoinHandle<Outcome>,
    /// The `READY=1` notification.
    pub ready: String,
}

/// Writes a configuration file.
pub fn write_config(path: &PathBuf, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// The setup of a daemon in `dir` serving `tcp` and `unix` (both adopted as a service
/// manager's fds would be), told to notify `manager`, with `config` as its file.
pub fn setup_in(dir: &TempDir, manager: &Manager, config: &str) -> (Setup, SocketAddr, PathBuf) {
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = tcp.local_addr().unwrap();
    let unix_path = dir.join("lines.sock");
    let unix = std::os::unix::net::UnixListener::bind(&unix_path).unwrap();
    let listeners = [(OwnedFd::from(tcp), "tcp"), (OwnedFd::from(unix), "unix")]
        .into_iter()
        .map(|(fd, name)| adopt(fd, name))
        .collect();
    let config_path = dir.join("daemon.conf");
    write_config(&config_path, config);
    let setup = Setup {
        listeners,
        notify_socket: Some(manager.value.clone()),
        watchdog_usec: None,
        watchdog_pid: None,
        pid: std::process::id(),
        config: config_path,
        pidfile: Some(dir.join("daemon.pid")),
    };
    (setup, addr, unix_path)
}

/// Starts a daemon with `config`, `tweak`ing its setup first, and takes its `READY=1`.
pub async fn start(name: &str, config: &str, tweak: impl FnOnce(&mut Setup)) -> Rig {
    let dir = TempDir::new(name);
    let manager = Manager::at_path(&dir);
    let (mut setup, tcp, unix) = setup_in(&dir, &manager, config);
    tweak(&mut setup);
    let (config, pidfile) = (setup.config.clone(), dir.join("daemon.pid"));
    let (control, events) = mpsc::unbounded_channel();
    let shared = Rc::new(Shared::default());
    let task = overlap::spawn(run(setup, events, shared.clone()));
    let ready = manager.next().await;
    assert!(ready.starts_with("READY=1\n"), "{ready}");
    Rig {
        dir,
        tcp,
        unix,
        config,
        pidfile,
        manager,
        control,
        shared,
        task,
        ready,
    }
}

impl Rig {
    /// Sends `Terminate` and waits for the daemon's end; checks `STOPPING=1` came first.
    pub async fn terminate(self) -> (Outcome, Manager, TempDir) {
        self.control.send(Control::Terminate).unwrap();
        let stopping = self.manager.next().await;
        assert!(stopping.starts_with("STOPPING=1\n"), "{stopping}");
        let out = within(HANG, self.task, "the daemon's end").await.unwrap();
        (out, self.manager, self.dir)
    }
}
