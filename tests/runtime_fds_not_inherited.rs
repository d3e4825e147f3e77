//! Every descriptor overlap makes is close-on-exec: a child process started while sockets,
//! pipes, a FIFO, files, a signal listener, another child's pidfd and the runtime's own
//! epoll fd and eventfd are open inherits none of them (only the stdio it was given). An
//! inherited listening socket would keep its port bound after the parent exits; an
//! inherited pipe end would keep the parent's reader from ever seeing end of file.

mod support;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::process::Stdio;
use std::time::Duration;

use overlap::net::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream};
use overlap::pipe::{Receiver, Sender};
use overlap::process::Command;
use overlap::signal::{signal, SignalKind};
use support::TempDir;

/// The descriptors open in process `pid`, once they stay the same on two looks in a row
/// (a freshly started program may open and close a file or two while it sets up).
fn settled_fds(pid: u32) -> Vec<String> {
    let look = || {
        let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        fds.sort();
        fds
    };
    let mut last = look();
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(10));
        let now = look();
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

#[test]
fn children_inherit_no_descriptor_of_the_runtime() {
    // Alone in a fresh process: descriptors other tests open meanwhile would muddy the list.
    support::run_in_child("children_inherit_no_descriptor_of_the_runtime", || {
        // Whatever this process was handed (a test runner's or a shell's descriptors) is
        // not overlap's: keep it out of the children too, so only overlap's could show.
        for fd in settled_fds(std::process::id()) {
            let fd: i32 = fd.parse().unwrap();
            if fd > 2 {
                // SAFETY: flag calls on a descriptor number; a closed one is only an error.
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            }
        }
        let dir = TempDir::new("fds-not-inherited");
        let fifo = dir.path().join("fifo");
        let c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        overlap::block_on(async {
            let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let client = TcpStream::connect(tcp.local_addr().unwrap()).await.unwrap();
            let accepted = tcp.accept().await.unwrap();
            let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let unix = UnixListener::bind(dir.path().join("sock")).unwrap();
            let unix_pair = UnixStream::pair().unwrap();
            let dgram_pair = UnixDatagram::pair().unwrap();
            let pipe = overlap::pipe::pipe().unwrap();
            let fifo_rx = Receiver::open(&fifo).unwrap();
            let fifo_tx = Sender::open(&fifo).unwrap();
            let mut file = overlap::fs::File::create(dir.path().join("file"))
                .await
                .unwrap();
            let file_clone = file.try_clone().await.unwrap();
            let listener = signal(SignalKind::user_defined1()).unwrap();
            let mut piped = Command::new("cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            overlap::spawn_blocking(|| ()).await.unwrap();

            let mut through_overlap = Command::new("sleep");
            through_overlap
                .arg("30")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let mut child = through_overlap.spawn().unwrap();
            let mut std_child = std::process::Command::new("sleep")
                .arg("30")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let theirs = [
                settled_fds(child.id().unwrap()),
                settled_fds(std_child.id()),
            ];
            child.kill().await.unwrap();
            std_child.kill().unwrap();
            std_child.wait().unwrap();
            piped.kill().await.unwrap();
            for fds in theirs {
                assert_eq!(fds, ["0", "1", "2"], "the child inherited descriptors");
            }
            drop((
                tcp, client, accepted, udp, unix, unix_pair, dgram_pair, pipe,
            ));
            drop((fifo_rx, fifo_tx, file, file_clone, listener));
        });
    });
}

/// Whether `fd` is close-on-exec.
fn cloexec(fd: std::os::fd::RawFd) -> bool {
    // SAFETY: F_GETFD takes no pointer; the fd is open while the caller holds its owner.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    assert!(flags >= 0, "{}", std::io::Error::last_os_error());
    flags & libc::FD_CLOEXEC != 0
}

/// Sets or clears `fd`'s close-on-exec flag.
fn set_cloexec(fd: std::os::fd::RawFd, on: bool) {
    let flags = if on { libc::FD_CLOEXEC } else { 0 };
    // SAFETY: F_SETFD takes an integer; the fd is open while the caller holds its owner.
    assert_eq!(unsafe { libc::fcntl(fd, libc::F_SETFD, flags) }, 0);
}

/// What the net docs say of adopted sockets: `from_std` and `TryFrom<OwnedFd>` leave the
/// close-on-exec flag as it was (a socket-activated daemon sets it on the fds it is
/// passed), for every socket type, flag set or clear.
#[test]
fn an_adopted_socket_keeps_the_close_on_exec_flag_it_came_with() {
    use std::os::fd::{AsRawFd, OwnedFd};
    let dir = TempDir::new("fds-adopted-cloexec");
    overlap::block_on(async {
        for on in [false, true] {
            let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let client = std::net::TcpStream::connect(tcp.local_addr().unwrap()).unwrap();
            let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let path = dir.join(&format!("l{on}.sock"));
            let unix = std::os::unix::net::UnixListener::bind(&path).unwrap();
            let stream = std::os::unix::net::UnixStream::connect(&path).unwrap();
            let dgram = std::os::unix::net::UnixDatagram::unbound().unwrap();
            let fds = [
                tcp.as_raw_fd(),
                client.as_raw_fd(),
                udp.as_raw_fd(),
                unix.as_raw_fd(),
                stream.as_raw_fd(),
                dgram.as_raw_fd(),
            ];
            for fd in fds {
                set_cloexec(fd, on);
            }
            let adopted = (
                TcpListener::try_from(OwnedFd::from(tcp)).unwrap(),
                TcpStream::from_std(client).unwrap(),
                UdpSocket::from_std(udp).unwrap(),
                UnixListener::from_std(unix).unwrap(),
                UnixStream::try_from(OwnedFd::from(stream)).unwrap(),
                UnixDatagram::from_std(dgram).unwrap(),
            );
            for fd in fds {
                assert_eq!(cloexec(fd), on, "fd {fd}, adopted with the flag {on}");
            }
            drop(adopted);
        }
    });
}
