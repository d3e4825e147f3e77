//! Dropped futures close what they opened: a connect's socket, the private pipes of a
//! splice copy, the fd a file job opened after its `open` was dropped, the pipes and pidfd
//! of a dropped `output()`, an `Unblock`'s value once its job ends. Each case counts the
//! process's open fds before and after (waiting, where a pool job must end first).
//!
//! One test, alone in its binary, so that no other test opens or closes fds meanwhile.

mod support;

use std::os::unix::net::UnixStream as StdUnixStream;
use std::time::Duration;

use overlap::io::{AsyncReadExt, Unblock};
use overlap::net::{TcpListener, TcpSocket, TcpStream, UnixListener, UnixSocket, UnixStream};
use support::{abandon_slot, open_fds, pattern, tcp_pair, within, ManualTask, TempDir};

const HANG: Duration = Duration::from_secs(10);

/// Waits until the process has no more than `fds` open again (a pool job closing one in
/// the background). No more, rather than exactly: an fd of an earlier step may still be
/// closing on the pool when `fds` was counted (a dropped `File`), and closes later.
async fn back_to(fds: usize, what: &str) {
    let settled = async {
        while open_fds() > fds {
            overlap::time::sleep(Duration::from_millis(1)).await;
        }
    };
    within(HANG, settled, what).await;
}

#[test]
fn dropped_futures_close_what_they_opened() {
    overlap::block_on(async {
        let dir = TempDir::new("cancel-fds");
        // Warm up what the runtime opens once (the pool, timers).
        overlap::fs::write(dir.join("file"), pattern(256 * 1024))
            .await
            .unwrap();
        overlap::time::sleep(Duration::from_millis(1)).await;

        // TCP: a connect stuck on a full backlog, and an accept.
        let sock = TcpSocket::new_v4().unwrap();
        sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = sock.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut queued = Vec::new();
        let fds = loop {
            let fds = open_fds();
            let socket = TcpSocket::new_v4().unwrap();
            let task = ManualTask::default();
            let mut connect = Box::pin(socket.connect(addr));
            if task.poll(connect.as_mut()).is_pending() {
                // Maybe the handshake is still on its way: give it a moment to finish.
                let done = overlap::time::timeout(Duration::from_millis(200), &mut connect).await;
                match done {
                    Ok(stream) => queued.push(stream.unwrap()),
                    Err(_) => {
                        drop(connect);
                        break fds;
                    }
                }
            }
            assert!(queued.len() < 16, "the backlog never filled up");
        };
        assert_eq!(
            open_fds(),
            fds,
            "a dropped TcpSocket::connect kept its socket"
        );
        abandon_slot(TcpListener::bind("127.0.0.1:0").await.unwrap().accept());
        assert_eq!(open_fds(), fds);
        drop((queued, listener));

        // Unix: connects retried on a full backlog (a sleep between tries).
        let path = dir.join("sock");
        let listener = UnixSocket::new_stream().unwrap();
        listener.bind(&path).unwrap();
        let listener = listener.listen(0).unwrap();
        let mut queued = Vec::new();
        while queued.len() < 16 {
            let fds = open_fds();
            let task = ManualTask::default();
            let mut connect = Box::pin(UnixStream::connect(&path));
            match task.poll(connect.as_mut()) {
                std::task::Poll::Ready(stream) => queued.push(stream.unwrap()),
                std::task::Poll::Pending => {
                    drop(connect);
                    assert_eq!(
                        open_fds(),
                        fds,
                        "a dropped UnixStream::connect kept its socket"
                    );
                    abandon_slot(UnixSocket::new_stream().unwrap().connect(&path));
                    assert_eq!(
                        open_fds(),
                        fds,
                        "a dropped UnixSocket::connect kept its socket"
                    );
                    break;
                }
            }
        }
        assert!(queued.len() < 16, "the backlog never filled up");
        drop((queued, listener));
        let fds = open_fds();
        abandon_slot(UnixListener::bind(dir.join("other")).unwrap().accept());
        assert_eq!(open_fds(), fds);

        // Splice copies hold private pipes.
        let (a, b) = tcp_pair().await;
        let (c, d) = tcp_pair().await;
        let fds = open_fds();
        abandon_slot(overlap::pipe::splice_copy(&b, &c));
        assert_eq!(open_fds(), fds, "splice_copy's pipe outlived it");
        abandon_slot(overlap::pipe::splice_bidirectional(&b, &c));
        assert_eq!(open_fds(), fds, "splice_bidirectional's pipes outlived it");
        drop((a, b, c, d));

        // A file opened by a job whose `open` was dropped is closed when the job ends.
        let fds = open_fds();
        abandon_slot(overlap::fs::File::open(dir.join("file")));
        back_to(fds, "the abandoned open's file stayed open").await;
        // A file sent to a socket that never reads: the run in flight ends once the reader
        // goes, and closes its copy of the socket.
        let (x, y) = UnixStream::pair().unwrap();
        let mut file = overlap::fs::File::open(dir.join("file")).await.unwrap();
        let fds = open_fds();
        let task = ManualTask::default();
        let mut send = Box::pin(file.send_to(&x, 0, 256 * 1024));
        if task.poll(send.as_mut()).is_pending() {
            drop(send);
            drop(y); // the run, blocked on a full socket, fails and ends
            back_to(fds - 1, "send_to's run kept the socket").await;
        } else {
            drop((send, y));
        }
        drop((x, file));

        // A blocking reader: dropped with its job blocked in read(2), it is closed when the
        // job ends.
        let fds = open_fds();
        let (near, far) = StdUnixStream::pair().unwrap();
        let mut reader = Unblock::new(far);
        let mut buf = [0u8; 8];
        abandon_slot(reader.read(&mut buf));
        drop(reader);
        drop(near); // the job reads end of file and ends
        back_to(fds, "the Unblock's value stayed open").await;

        // `output()` dropped: its child is reaped in the background, and its pipes and pidfd
        // closed once it has exited.
        let fds = open_fds();
        let pid_file = dir.join("pid");
        let script = format!("echo $$ > {}; exec sleep 1000", pid_file.display());
        abandon_slot(
            overlap::process::Command::new("sh")
                .arg("-c")
                .arg(&script)
                .output(),
        );
        let pid = within(HANG, read_pid(&pid_file), "the child never started").await;
        // SAFETY: kill takes no pointers; `pid` is the child spawned above, not reaped yet.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
        back_to(fds, "the dropped output() kept fds").await;
        drop(TcpStream::connect(addr)); // (unused future: nothing opened)
        assert_eq!(open_fds(), fds);
    });
}

/// The pid a child wrote to `path`, once it has.
async fn read_pid(path: &std::path::Path) -> libc::pid_t {
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(pid) = text.trim().parse() {
                return pid;
            }
        }
        overlap::time::sleep(Duration::from_millis(1)).await;
    }
}
