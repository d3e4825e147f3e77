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
