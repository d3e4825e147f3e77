//! A user's zero-downtime restart (hot upgrade) of a TCP server, the way tableflip, Envoy
//! and systemd socket activation do it, sketched as one would for tokio and then written for
//! overlap (`port_user7_hot_restart/server.rs` and `handoff.rs`). Generation N answers each
//! request line `x` with `gN x`; on an upgrade, generation N+1 connects to N's upgrade
//! socket (a Unix socket in a temp dir), N sends it the listening socket (`SCM_RIGHTS`)
//! with some state bytes, N+1 adopts the fd as its `TcpListener`, starts accepting and
//! answers "R"; N then drops its listener copy, drains the connections it accepted up to a
//! deadline (cutting those still open then), and ends. Generations run as threads with a
//! runtime each, or as a child process: one started by socket activation (the listener
//! placed at fd 3 with `LISTEN_FDS`/`LISTEN_PID`), which hands it back across processes.
//!
//! The tokio version: the same structure, with `tokio::net::UnixStream`'s `writable()` /
//! `readable()` and `try_io(Interest::WRITABLE, || sendmsg(..))` around raw `libc` calls
//! (tokio has no fd-passing API; the `sendfd` crate wraps the same), and
//! `TcpListener::from_std(std::net::TcpListener::from(fd))` after a `set_nonblocking(true)`
//! of the received fd, since tokio's `from_std` expects it non-blocking already; the
//! connections in a `JoinSet`, drained under `time::timeout` and `shutdown()` at the
//! deadline.
//!
//! The tests check, on loopback with exact bytes: clients hammering the port across three
//! upgrades see no refused or reset connection, every request answered once, each
//! connection by one generation (the one that accepted it finishes it); a new generation
//! that fails to start, or a handoff socket closed before the "R", leaves the old one
//! serving; a handoff closed mid-state, state without an fd, and bogus fds (a UDP socket, a
//! Unix listener, a pipe, a connected stream, an IPv6 listener) end the new generation with
//! a clear error and no hang, while a blocking listener is adopted and served; a connection
//! still open at the drain deadline is cut with an end of file; no fd is left in either
//! generation and the received fd is close-on-exec; a socket-activated child adopts fd 3
//! (inheriting no other fd of its parent's) and hands it back across processes; an old
//! generation that shuts the listener down, where it should only close its copy, ends the
//! new one with an error saying the socket no longer listens.
//!
//! What the port changed, against tokio: `from_std`/`TryFrom<OwnedFd>` make the fd
//! non-blocking themselves (and check it is a listening IPv4 or IPv6 stream socket), so the
//! `set_nonblocking` goes; it takes an IPv6 listener as well, so the server checks the
//! family itself. A pipe handed over (or a service manager's fd 3 that was not a socket)
//! was adopted as a `TcpListener` whose `accept` never woke, and a file was refused with a
//! bare "Operation not permitted": fixed in overlap-net (`tests/net_adopt_wrong_kind.rs`),
//! so the bogus-fd test gets `InvalidInput` for each. A listener shut down through another
//! copy failed `accept` with a bare "Invalid argument": now `InvalidInput` saying it no
//! longer listens (`tests/net_accept_emfile.rs`). Nothing said that a `UnixStream`'s own
//! reads close the fds that come with the bytes, nor how to pass fds at all: its docs now
//! do. `select!` is futures' (branches
//! `.fuse()`d). As with any runtime, adopting makes the *shared* open file description
//! non-blocking: the parent's copy of an inherited listener turns non-blocking too, and
//! `dup2(fd, 3)` in `pre_exec` leaves fd 3 close-on-exec if the listener already was fd 3
//! (the child then has no fd 3): the spawn clears `FD_CLOEXEC` in that case.

mod support;

#[path = "port_user7_hot_restart/handoff.rs"]
mod handoff;
#[path = "port_user7_hot_restart/server.rs"]
mod server;

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use handoff::{recv_fd, send_fd, STATE_LEN};
use overlap::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use overlap::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use server::{generation, is_cloexec, upgrade_path, Start, Stats};
use support::{open_fds, run_in_child, within, TempDir};

const HANG: Duration = Duration::from_secs(20);
const DRAIN: Duration = Duration::from_secs(5);

type GenThread = std::thread::JoinHandle<io::Result<Stats>>;

/// Starts generation `gen` on a thread of its own; returns its address once it accepts
/// (or the error it failed to start with) and its thread.
async fn start(
    gen: u64,
    dir: &Path,
    start: Start,
    drain: Duration,
) -> (io::Result<SocketAddr>, GenThread) {
    let (tx, rx) = std::sync::mpsc::channel();
    let dir = dir.to_path_buf();
    let thread = std::thread::spawn(move || {
        let rt = overlap::Runtime::new()?;
        rt.block_on(generation(gen, dir, start, drain, move |addr| {
            let _ = tx.send(addr);
        }))
    });
    let addr = within(HANG, overlap::spawn_blocking(move || rx.recv()), "ready")
        .await
        .unwrap()
        .expect("the generation ended without a word");
    (addr, thread)
}

/// Waits for a generation's thread to end.
async fn join(thread: GenThread) -> io::Result<Stats> {
    within(HANG, overlap::spawn_blocking(move || thread.join()), "join")
        .await
        .unwrap()
        .expect("a generation panicked")
}

/// Upgrades generation `gen` to nothing: takes its listener as a next generation would,
/// says ready, and gives the fd back (for a test to look at, or drop).
async fn retire(dir: &Path, gen: u64) -> OwnedFd {
    let mut next = UnixStream::connect(upgrade_path(dir, gen)).await.unwrap();
    let (_, fd) = within(HANG, recv_fd(&next), "retire").await.unwrap();
    next.write_all(b"R").await.unwrap();
    fd
}

/// One client connection: `n` requests, one at a time, each answered exactly, then the
/// client's end of file and the server's. Returns the generation that answered.
async fn client(addr: SocketAddr, id: u64, n: u64) -> io::Result<u64> {
    let stream = TcpStream::connect(addr).await?;
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut gen = None;
    let mut line = String::new();
    for i in 0..n {
        let req = format!("c{id}-{i}\n");
        w.write_all(req.as_bytes()).await?;
        line.clear();
        r.read_line(&mut line).await?;
        let (tag, rest) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("reply {line:?}"));
        assert_eq!(rest, req, "reply to {req:?}");
        let g: u64 = tag.strip_prefix('g').unwrap().parse().unwrap();
        assert_eq!(*gen.get_or_insert(g), g, "one connection, two generations");
        gen = Some(g);
    }
    w.close().await?;
    line.clear();
    assert_eq!(
        r.read_line(&mut line).await?,
        0,
        "after the last reply: {line:?}"
    );
    Ok(gen.unwrap())
}

/// A previous generation that is not one: a listener on `dir/fake.sock` that sends `state`
/// with `fd` (if any) to whoever connects, then closes.
fn fake_previous(dir: &Path, state: Vec<u8>, fd: Option<OwnedFd>) -> PathBuf {
    let path = dir.join("fake.sock");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    overlap::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        match fd {
            Some(fd) => {
                let _ = send_fd(&mut conn, &state, fd.as_raw_fd()).await;
            }
            None => conn.write_all(&state).await.unwrap(),
        }
    });
    path
}

#[test]
fn clients_see_no_refusal_or_reset_across_upgrades() {
    let dir = TempDir::new("hot-restart-hammer");
    overlap::block_on(async {
        let (addr, mut old) = start(1, dir.path(), Start::Bind, DRAIN).await;
        let addr = addr.unwrap();
        let done = Rc::new(Cell::new(0u64));
        let stop = Rc::new(Cell::new(false));
        // The last generation whose thread has ended: a connection made after that must
        // be answered by a later one.
        let gone = Rc::new(Cell::new(0u64));
        let seen = Rc::new(RefCell::new(Vec::new()));
        let mut clients = Vec::new();
        for c in 0..8 {
            let (done, stop, seen, gone) = (done.clone(), stop.clone(), seen.clone(), gone.clone());
            clients.push(overlap::spawn(async move {
                let mut k = 0;
                while !stop.get() {
                    let gone_before = gone.get();
                    let g = client(addr, c * 1_000_000 + k, 3).await;
                    let g = g.unwrap_or_else(|e| panic!("client {c}, connection {k}: {e}"));
                    assert!(g > gone_before, "gen {g} answered after it ended");
                    seen.borrow_mut().push(g);
                    done.set(done.get() + 1);
                    k += 1;
                }
            }));
        }
        let wait_for = |n: u64| {
            let done = done.clone();
            async move {
                let until = done.get() + n;
                within(
                    HANG,
                    async {
                        while done.get() < until {
                            overlap::time::sleep(Duration::from_millis(1)).await;
                        }
                    },
                    "clients",
                )
                .await
            }
        };
        let mut accepted = 0;
        for gen in 2..=4 {
            wait_for(30).await;
            let from = upgrade_path(dir.path(), gen - 1);
            let (new_addr, new) =
                start(gen, dir.path(), Start::Handoff { from, fail: false }, DRAIN).await;
            assert_eq!(new_addr.unwrap(), addr);
            let stats = join(old).await.unwrap();
            assert_eq!(
                (stats.finished, stats.cut),
                (stats.accepted, 0),
                "gen {}",
                gen - 1
            );
            accepted += stats.accepted;
            gone.set(gen - 1);
            old = new;
        }
        // Connections started now can only be gen 4's: gen 3 has closed its copy.
        wait_for(30).await;
        stop.set(true);
        for c in clients {
            within(HANG, c, "a client").await.unwrap();
        }
        drop(retire(dir.path(), 4).await);
        let stats = join(old).await.unwrap();
        assert_eq!(stats.before, accepted, "the state carried the count");
        accepted += stats.accepted;
        assert_eq!(accepted, done.get(), "every connection accepted once");
        let seen = seen.borrow();
        assert!((1..=4).all(|g| seen.contains(&g)), "{seen:?}");
    });
}

#[test]
fn a_new_generation_that_fails_leaves_the_old_one_serving() {
    let dir = TempDir::new("hot-restart-fail");
    overlap::block_on(async {
        let (addr, old) = start(1, dir.path(), Start::Bind, DRAIN).await;
        let addr = addr.unwrap();
        let from = upgrade_path(dir.path(), 1);
        let start2 = Start::Handoff {
            from: from.clone(),
            fail: true,
        };
        let (res, failed) = start(2, dir.path(), start2, DRAIN).await;
        assert!(res.unwrap_err().to_string().contains("broken config"));
        assert!(join(failed).await.is_err());
        assert_eq!(client(addr, 1, 2).await.unwrap(), 1);

        // A next generation that goes away at once, or once it has the fd: no "R".
        drop(UnixStream::connect(&from).await.unwrap());
        assert_eq!(client(addr, 2, 2).await.unwrap(), 1);
        let next = UnixStream::connect(&from).await.unwrap();
        let (_, fd) = within(HANG, recv_fd(&next), "fd").await.unwrap();
        drop((next, fd));
        assert_eq!(client(addr, 3, 2).await.unwrap(), 1);

        // Then a real upgrade still works.
        let (_, new) = start(2, dir.path(), Start::Handoff { from, fail: false }, DRAIN).await;
        let stats = join(old).await.unwrap();
        assert_eq!((stats.accepted, stats.finished), (3, 3));
        assert_eq!(client(addr, 4, 2).await.unwrap(), 2);
        drop(retire(dir.path(), 2).await);
        assert_eq!(join(new).await.unwrap().before, 3);
    });
}

/// What a new generation given this state and fd by a fake previous one fails with.
async fn start_from_fake(dir: &Path, state: Vec<u8>, fd: Option<OwnedFd>) -> io::Error {
    let from = fake_previous(dir, state, fd);
    let (res, thread) = start(2, dir, Start::Handoff { from, fail: false }, DRAIN).await;
    let err = res.unwrap_err();
    assert_eq!(join(thread).await.unwrap_err().kind(), err.kind());
    err
}

#[test]
fn a_handoff_cut_short_or_a_bogus_fd_is_a_clear_error() {
    let dir = TempDir::new("hot-restart-bogus");
    overlap::block_on(async {
        let d = dir.path();
        let tcp = || OwnedFd::from(std::net::TcpListener::bind("127.0.0.1:0").unwrap());
        let err = start_from_fake(d, vec![0; 5], Some(tcp())).await;
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
        assert!(err.to_string().contains("after 5 of 16"), "{err}");
        let err = start_from_fake(d, vec![0; STATE_LEN], None).await;
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");

        let state = vec![0; STATE_LEN];
        let udp = OwnedFd::from(std::net::UdpSocket::bind("127.0.0.1:0").unwrap());
        let unix = std::os::unix::net::UnixListener::bind(d.join("other.sock")).unwrap();
        let (pipe, _w) = support::pipe();
        let peer = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = std::net::TcpStream::connect(peer.local_addr().unwrap()).unwrap();
        let bogus: [(&str, OwnedFd); 4] = [
            ("an IPv4 datagram socket", udp),
            ("a listening Unix-domain stream socket", OwnedFd::from(unix)),
            ("not a pipe or FIFO", pipe),
            ("not listening", OwnedFd::from(stream)),
        ];
        for (what, fd) in bogus {
            let err = start_from_fake(d, state.clone(), Some(fd)).await;
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
            assert!(err.to_string().contains(what), "{err}");
        }
        if let Ok(v6) = std::net::TcpListener::bind("[::1]:0") {
            let err = start_from_fake(d, state.clone(), Some(OwnedFd::from(v6))).await;
            assert!(err.to_string().contains("IPv6"), "{err}");
        }

        // A blocking listener is adopted (made non-blocking) and served.
        let blocking = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = blocking.local_addr().unwrap();
        let from = fake_previous(d, state, Some(OwnedFd::from(blocking)));
        let (res, gen) = start(2, d, Start::Handoff { from, fail: false }, DRAIN).await;
        assert_eq!(res.unwrap(), addr);
        assert_eq!(client(addr, 1, 2).await.unwrap(), 2);
        drop(retire(d, 2).await);
        assert_eq!(join(gen).await.unwrap().accepted, 1);
    });
}

/// An old generation that stops with `shutdown(2)` on its listener, where it should only
/// close its copy, stops every copy listening: the new generation's `accept` fails, saying
/// so (it said a bare "Invalid argument" before overlap-net reworded it), and ends it.
#[test]
fn an_old_generation_shutting_the_listener_down_ends_the_new_one_clearly() {
    let dir = TempDir::new("hot-restart-shutdown");
    overlap::block_on(async {
        let d = dir.path();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let copy = OwnedFd::from(listener.try_clone().unwrap());
        let from = fake_previous(d, vec![0; STATE_LEN], Some(copy));
        let (res, gen) = start(2, d, Start::Handoff { from, fail: false }, DRAIN).await;
        assert_eq!(res.unwrap(), addr);
        assert_eq!(client(addr, 1, 1).await.unwrap(), 2);
        // SAFETY: shutdown takes integers; the listener is open for the call.
        let res = unsafe { libc::shutdown(listener.as_raw_fd(), libc::SHUT_RDWR) };
        assert_eq!(res, 0);
        let err = join(gen).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("no longer listens"), "{err}");
    });
}

#[test]
fn a_connection_open_past_the_drain_deadline_is_cut() {
    let dir = TempDir::new("hot-restart-drain");
    overlap::block_on(async {
        let d = dir.path();
        let (addr, old) = start(1, d, Start::Bind, Duration::from_millis(50)).await;
        let addr = addr.unwrap();
        let mut idle = TcpStream::connect(addr).await.unwrap();
        idle.write_all(b"hi\n").await.unwrap();
        let mut buf = [0u8; 16];
        let n = idle.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"g1 hi\n");
        let from = upgrade_path(d, 1);
        let (_, new) = start(2, d, Start::Handoff { from, fail: false }, DRAIN).await;
        let stats = join(old).await.unwrap();
        assert_eq!((stats.accepted, stats.finished, stats.cut), (1, 0, 1));
        assert_eq!(within(HANG, idle.read(&mut buf), "eof").await.unwrap(), 0);
        assert_eq!(client(addr, 2, 1).await.unwrap(), 2);
        drop(retire(d, 2).await);
        join(new).await.unwrap();
    });
}

#[test]
fn upgrades_leave_no_fd_and_the_received_listener_is_cloexec() {
    run_in_child(
        "upgrades_leave_no_fd_and_the_received_listener_is_cloexec",
        || {
            let dir = TempDir::new("hot-restart-fds");
            overlap::block_on(async {
                let d = dir.path();
                let before = open_fds();
                let (addr, old) = start(1, d, Start::Bind, DRAIN).await;
                let addr = addr.unwrap();
                let from = upgrade_path(d, 1);
                let (res, failed) = start(
                    2,
                    d,
                    Start::Handoff {
                        from: from.clone(),
                        fail: true,
                    },
                    DRAIN,
                )
                .await;
                assert!(res.is_err());
                assert!(join(failed).await.is_err());
                let (_, new) = start(2, d, Start::Handoff { from, fail: false }, DRAIN).await;
                assert_eq!(client(addr, 1, 2).await.unwrap(), 2);
                let old = join(old).await.unwrap();
                assert!(old.cloexec);
                let fd = retire(d, 2).await;
                assert!(is_cloexec(fd.as_raw_fd()), "the received fd is inheritable");
                drop(fd);
                let new = join(new).await.unwrap();
                assert!(new.cloexec, "the received listener is inheritable");
                assert_eq!((new.accepted, new.finished), (1, 1));
                let (pipe, _w) = support::pipe();
                start_from_fake(d, vec![0; STATE_LEN], Some(pipe)).await;
                drop(_w);
                assert_eq!(open_fds(), before, "an fd left behind");
            });
        },
    );
}

/// The variable telling a copy of this binary it is the socket-activated server, with the
/// temp dir for its upgrade socket.
const ACTIVATED_DIR: &str = "HOT_RESTART_ACTIVATED_DIR";

/// The variable listing the fds the test process has without close-on-exec (inherited
/// from whoever ran it), which the activated child gets too.
const INHERITABLE: &str = "HOT_RESTART_INHERITABLE";

/// The fds open in this process without close-on-exec, above 3.
fn inheritable_fds() -> Vec<i32> {
    let listed: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect();
    // SAFETY: F_GETFD takes no pointer; a closed fd (the listing's own) fails, left out.
    let open_inheritable = |&f: &i32| unsafe { libc::fcntl(f, libc::F_GETFD) } == 0;
    listed
        .into_iter()
        .filter(|f| *f > 3)
        .filter(open_inheritable)
        .collect()
}

/// In the child: `sd_listen_fds` as a user writes it (check `LISTEN_PID` is us, take
/// `LISTEN_FDS` fds from 3, unset both, mark them close-on-exec), then serve as
/// generation 7 until retired.
fn activated_child(dir: PathBuf) {
    let pid: u32 = std::env::var("LISTEN_PID").unwrap().parse().unwrap();
    assert_eq!(pid, std::process::id(), "LISTEN_PID is not ours");
    assert_eq!(std::env::var("LISTEN_FDS").unwrap(), "1");
    std::env::remove_var("LISTEN_PID");
    std::env::remove_var("LISTEN_FDS");
    assert!(!is_cloexec(3), "fd 3 was not inherited as is");
    // Nothing else came along (the parent's runtime, sockets and pipes are close-on-exec),
    // but for what the test process itself inherited without the flag.
    let expected: Vec<i32> = std::env::var(INHERITABLE)
        .unwrap()
        .split_terminator(',')
        .map(|f| f.parse().unwrap())
        .collect();
    assert_eq!(inheritable_fds(), expected, "fds inherited besides 0-3");
    // SAFETY: fd 3 was placed by the parent for us and nothing else here uses it.
    let fd = unsafe { OwnedFd::from_raw_fd(3) };
    // SAFETY: F_SETFD takes an integer; fd 3 is open.
    let res = unsafe { libc::fcntl(3, libc::F_SETFD, libc::FD_CLOEXEC) };
    assert_eq!(res, 0);
    let rt = overlap::Runtime::new().unwrap();
    let stats = rt
        .block_on(generation(7, dir, Start::Inherited(fd), DRAIN, |addr| {
            addr.unwrap();
        }))
        .unwrap();
    assert_eq!((stats.accepted, stats.finished), (2, 2));
    println!("activated ok");
}

#[test]
fn a_socket_activated_child_adopts_fd_3() {
    if let Ok(dir) = std::env::var(ACTIVATED_DIR) {
        return activated_child(dir.into());
    }
    let dir = TempDir::new("hot-restart-activated");
    // What this process inherited without close-on-exec, looked at before any runtime or
    // socket of its own exists.
    let inheritable: Vec<String> = inheritable_fds().iter().map(|f| f.to_string()).collect();
    let inheritable = inheritable.join(",");
    overlap::block_on(async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let fd = listener.as_raw_fd();
        let mut cmd = overlap::process::Command::new("/bin/sh");
        cmd.arg("-c")
            .arg("LISTEN_PID=$$ exec \"$0\" \"$@\"")
            .arg(std::env::current_exe().unwrap())
            .args([
                "a_socket_activated_child_adopts_fd_3",
                "--exact",
                "--nocapture",
            ])
            .env("LISTEN_FDS", "1")
            .env(ACTIVATED_DIR, dir.path())
            .env(INHERITABLE, inheritable)
            .stdout(std::process::Stdio::piped());
        // SAFETY: between fork and exec the closure only calls dup2 and fcntl, which are
        // async-signal-safe, on an fd number copied into it.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(cmd.as_std_mut(), move || {
                // dup2 onto itself keeps FD_CLOEXEC: clear it instead.
                let res = if fd == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0)
                } else {
                    libc::dup2(fd, 3)
                };
                if res < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().unwrap();
        // The parent keeps no copy (a service manager would, and see it turn non-blocking).
        drop(listener);
        assert_eq!(client(addr, 1, 3).await.unwrap(), 7);
        assert_eq!(client(addr, 2, 1).await.unwrap(), 7);
        // Retire it across processes: the listener comes back here, on the same port.
        let path = upgrade_path(dir.path(), 7);
        within(
            HANG,
            async {
                while !path.exists() {
                    overlap::time::sleep(Duration::from_millis(1)).await;
                }
            },
            "the child's upgrade socket",
        )
        .await;
        let back = TcpListener::try_from(retire(dir.path(), 7).await).unwrap();
        assert_eq!(back.local_addr().unwrap(), addr);
        let mut out = Vec::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_end(&mut out)
            .await
            .unwrap();
        let status = within(HANG, child.wait(), "the child").await.unwrap();
        let out = String::from_utf8_lossy(&out);
        assert!(
            status.success() && out.contains("activated ok"),
            "{status:?}\n{out}"
        );
    });
}
