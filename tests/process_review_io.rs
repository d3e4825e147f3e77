//! An adversarial review of a child's pipes and of `output()`: megabytes in while
//! megabytes come out on both pipes; a child that closes its pipes and runs on; a
//! grandchild holding stdout past the child's exit; `kill_on_drop` when the output future
//! is dropped mid-stream; and the fds a child inherits while overlap holds many.

mod support;

use std::collections::BTreeSet;
use std::os::fd::{AsFd, AsRawFd};
use std::pin::pin;
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};
use overlap::process::Command;
use support::{
    children, gone, poll_once, process_state, settle, until, within, KillIfPanicking, Rng, TempDir,
};

/// A hang guard only.
const HANG: Duration = Duration::from_secs(60);

/// `sh -c script`.
fn sh(script: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]);
    cmd
}

/// `len` seeded random bytes of lowercase letters and newlines.
fn letters(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    (0..len)
        .map(|_| match rng.below(27) {
            26 => b'\n',
            n => b'a' + n as u8,
        })
        .collect()
}

/// Copies stdin to stdout as it is and to stderr in capitals, both pipes at once (`tee`
/// writes each block to stdout and to `tr`, which writes it to stderr).
const TEE_AND_SHOUT: &str = "{ tee /dev/fd/4 | tr a-z A-Z >&2; } 4>&1";

/// Checks what `TEE_AND_SHOUT` gave back for `input`: every byte, on each pipe.
fn check_tee(out: &Output, input: &[u8], how: &str) {
    assert!(out.status.success(), "{how}: {:?}", out.status);
    assert_eq!(out.stdout.len(), input.len(), "{how}: stdout length");
    assert!(out.stdout == input, "{how}: stdout differs");
    assert_eq!(out.stderr.len(), input.len(), "{how}: stderr length");
    assert!(
        out.stderr == input.to_ascii_uppercase(),
        "{how}: stderr differs"
    );
}

/// 6 MiB fed to a child's stdin while it writes 6 MiB to stdout and 6 MiB to stderr at
/// the same time (each far more than a pipe holds): `output()` with a stdin pipe of ours,
/// and `wait_with_output()` with the child's stdin fed by another task, finish without a
/// deadlock and with every byte on each pipe.
#[test]
fn megabytes_in_while_megabytes_come_out_on_both_pipes() {
    let input = letters(6 << 20, 0x7ee);
    overlap::block_on(async {
        let (mut tx, rx) = overlap::pipe::pipe().unwrap();
        let output = sh(TEE_AND_SHOUT)
            .stdin(Stdio::try_from(rx).unwrap())
            .output();
        let feed = async {
            tx.write_all(&input).await.unwrap();
            drop(tx);
        };
        let ((), out) = within(HANG, async { overlap::join!(feed, output) }, "output").await;
        check_tee(&out.unwrap(), &input, "output");

        let mut child = sh(TEE_AND_SHOUT)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let feeding = overlap::spawn({
            let input = input.clone();
            async move { stdin.write_all(&input).await }
        });
        let out = within(HANG, child.wait_with_output(), "wait_with_output").await;
        check_tee(&out.unwrap(), &input, "wait_with_output");
        feeding.await.unwrap().unwrap();
    });
}

/// A child closes its stdout and stderr, then waits for a line on stdin: `output()` stays
/// pending after both pipes ended, until the child exits, and then has its exit code.
#[test]
fn output_waits_for_the_exit_of_a_child_that_closed_its_pipes() {
    let dir = TempDir::new("process-review-closed");
    let closed = dir.join("closed");
    overlap::block_on(async {
        let (mut tx, rx) = overlap::pipe::pipe().unwrap();
        let script = "echo out; echo err >&2; exec >&- 2>&-; : >closed; read line; exit 6";
        let output = sh(script)
            .current_dir(dir.path())
            .stdin(Stdio::try_from(rx).unwrap())
            .output();
        let mut output = pin!(output);
        within(
            HANG,
            async {
                while !closed.exists() {
                    assert!(poll_once(&mut output).await.is_pending(), "done early");
                    overlap::time::sleep(Duration::from_millis(1)).await;
                }
            },
            "the child never closed its pipes",
        )
        .await;
        for _ in 0..5 {
            settle().await;
            let poll = poll_once(&mut output).await;
            assert!(poll.is_pending(), "output ended at end of file: {poll:?}");
        }
        tx.write_all(b"go\n").await.unwrap();
        let out = within(HANG, output, "output").await.unwrap();
        assert_eq!(out.status.code(), Some(6));
        assert_eq!(
            (&out.stdout[..], &out.stderr[..]),
            (&b"out\n"[..], &b"err\n"[..])
        );
    });
}

/// A child starts a grandchild that holds its stdout and stderr, then exits: the child is
/// reaped while `wait_with_output` goes on waiting for the pipes (as tokio's), and once
/// the grandchild is let go its lines are in the output beside the child's status.
#[test]
fn output_waits_for_a_grandchild_holding_the_pipes_after_the_child_was_reaped() {
    overlap::block_on(async {
        // A background job's stdin is /dev/null: the grandchild reads ours on fd 3.
        let script = "exec 3<&0; (read x <&3; echo late; echo late-err >&2) & \
                      exec 3<&-; echo early; exit 4";
        let mut child = sh(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let output = overlap::spawn(child.wait_with_output());
        gone(
            pid,
            "the child was not reaped while its grandchild held stdout",
        )
        .await;
        settle().await;
        assert!(!output.is_finished(), "output ended before the pipes did");
        stdin.write_all(b"go\n").await.unwrap();
        drop(stdin);
        let out = within(HANG, output, "output").await.unwrap().unwrap();
        assert_eq!(out.status.code(), Some(4));
        assert_eq!(out.stdout, b"early\nlate\n");
        assert_eq!(out.stderr, b"late-err\n");
    });
}

/// A child that writes to both pipes for ever (ignoring `SIGPIPE`, so only a kill stops
/// it): `Command::output` with `kill_on_drop` aborted mid-stream kills and reaps the child
/// (no zombie left); without `kill_on_drop` the child runs on, and is still reaped once
/// killed from outside.
#[test]
fn an_output_dropped_mid_stream_kills_and_reaps_only_with_kill_on_drop() {
    let dir = TempDir::new("process-review-drop");
    let script = "trap '' PIPE; echo $$ >pid.new; mv pid.new pid; \
                  while :; do echo xxxxxxxxxxxxxxxx; echo yyyy >&2; done";
    overlap::block_on(async {
        for kill_on_drop in [true, false] {
            let pid_file = dir.join("pid");
            let _ = std::fs::remove_file(&pid_file);
            let output = sh(script)
                .current_dir(dir.path())
                .kill_on_drop(kill_on_drop)
                .output();
            let task = overlap::spawn(output);
            until(|| pid_file.exists(), "the child's pid").await;
            let pid: u32 = std::fs::read_to_string(&pid_file)
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            // Some output goes by, read by the task.
            for _ in 0..20 {
                overlap::time::sleep(Duration::from_millis(1)).await;
            }
            // A failing test leaves no busy child behind.
            let _guard = KillIfPanicking(pid);
            assert!(!task.is_finished());
            task.abort();
            assert!(task.await.unwrap_err().is_cancelled());
            if !kill_on_drop {
                settle().await;
                let state = process_state(pid);
                assert!(
                    matches!(state, Some('R' | 'S')),
                    "not left running: {state:?}"
                );
                // SAFETY: kill takes no pointers; the pid is our unreaped child's (a zombie
                // keeps it), so it names no other process.
                assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
            }
            gone(pid, "the dropped child was not reaped").await;
            let left = children();
            assert!(
                !left.split_whitespace().any(|p| p == pid.to_string()),
                "{pid} left among {left}"
            );
        }
    });
}

/// This process's fds without `FD_CLOEXEC`, beyond 0, 1 and 2: those whoever ran the tests
/// left open, which every child inherits (std closes nothing).
fn inherited_fds() -> BTreeSet<i32> {
    let listed: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect();
    listed
        .into_iter()
        .filter(|&fd| fd > 2)
        // SAFETY: F_GETFD takes no pointer; a closed fd (the listing's own) gives -1.
        .filter(|&fd| matches!(unsafe { libc::fcntl(fd, libc::F_GETFD) }, f if f >= 0 && f & libc::FD_CLOEXEC == 0))
        .collect()
}

/// Tells [`churn`] to stop when dropped: at the end of the test, or as it fails.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Opens and drops sockets, pipes, files and fds passed over a socket, in a runtime of its
/// own, until `stop`: what a fork in another thread could catch half-made.
fn churn(dir: std::path::PathBuf, stop: Arc<AtomicBool>) {
    overlap::block_on(async {
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let client = TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let accepted = listener.accept().await.unwrap();
            let (a, b) = UnixStream::pair().unwrap();
            let (tx, rx) = overlap::pipe::pipe().unwrap();
            a.send_with_fds(b"f", &[tx.as_fd()]).await.unwrap();
            let mut got = Vec::new();
            b.recv_with_fds(&mut [0u8; 1], &mut got).await.unwrap();
            let file = overlap::fs::File::create(dir.join(format!("churn-{}", n % 4)))
                .await
                .unwrap();
            drop((listener, client, accepted, a, b, tx, rx, got, file));
            n += 1;
            overlap::yield_now().await;
        }
    });
}

/// While this runtime holds sockets of every kind, pipes, a file, a signal listener, a
/// received fd and another child's pipes, and another thread opens and closes more, 30
/// children list their fds: each has 0, 1 and 2 and what this process had inherited
/// itself, none of overlap's. One gets a pipe end of ours as its stdout, at 1 only.
#[test]
fn children_inherit_only_their_stdio_while_overlap_holds_and_opens_fds() {
    let dir = TempDir::new("process-review-fds");
    let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
    let churner = std::thread::spawn({
        let (dir, stop) = (dir.path().to_owned(), stop.0.clone());
        move || churn(dir, stop)
    });
    let before = inherited_fds();
    let mut want: BTreeSet<i32> = [0, 1, 2].into();
    want.extend(&before);
    overlap::block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let unix_listener = UnixListener::bind(dir.join("sock")).unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        let (tx, rx) = overlap::pipe::pipe().unwrap();
        a.send_with_fds(b"f", &[rx.as_fd()]).await.unwrap();
        let mut received = Vec::new();
        b.recv_with_fds(&mut [0u8; 1], &mut received).await.unwrap();
        let file = overlap::fs::File::create(dir.join("held")).await.unwrap();
        let sig = overlap::signal::signal(overlap::signal::SignalKind::user_defined1()).unwrap();
        let mut other = Command::new("cat")
            .kill_on_drop(true)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let ours: Vec<i32> = vec![
            listener.as_raw_fd(),
            client.as_raw_fd(),
            accepted.as_raw_fd(),
            udp.as_raw_fd(),
            unix_listener.as_raw_fd(),
            a.as_raw_fd(),
            b.as_raw_fd(),
            tx.as_raw_fd(),
            rx.as_raw_fd(),
            received[0].as_raw_fd(),
            file.as_raw_fd(),
            other.stdin.as_ref().unwrap().as_raw_fd(),
            other.stdout.as_ref().unwrap().as_raw_fd(),
        ];
        for i in 0..30 {
            let out = within(HANG, sh("ls /proc/$$/fd").output(), "ls")
                .await
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            let fds: BTreeSet<i32> = String::from_utf8(out.stdout)
                .unwrap()
                .split_whitespace()
                .map(|f| f.parse().unwrap())
                .collect();
            assert_eq!(
                fds,
                want,
                "child {i}: leaked {:?} (ours: {ours:?})",
                &fds - &want
            );
        }
        // A pipe end of ours as stdout arrives as 1, and nowhere else.
        let (out_tx, mut out_rx) = overlap::pipe::pipe().unwrap();
        let status = sh("ls /proc/$$/fd")
            .stdout(Stdio::try_from(out_tx).unwrap())
            .status();
        let mut listing = String::new();
        let (status, read) = overlap::join!(status, out_rx.read_to_string(&mut listing));
        assert!(status.unwrap().success());
        read.unwrap();
        let fds: BTreeSet<i32> = listing
            .split_whitespace()
            .map(|f| f.parse().unwrap())
            .collect();
        assert_eq!(fds, want);
        drop((sig, file, received, udp, unix_listener));
        drop(other.stdin.take());
        assert!(within(HANG, other.wait(), "cat").await.unwrap().success());
    });
    drop(stop);
    churner.join().unwrap();
    assert_eq!(
        inherited_fds(),
        before,
        "fds without close-on-exec appeared"
    );
}
