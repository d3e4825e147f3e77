//! An I/O operation that has to wait gives back the unit of cooperative budget it spent:
//! polled again and again in one poll of its task (as a `select!` loop polls an idle
//! branch each round), it never uses up the budget the task's other work needs. On real
//! pipes and sockets, idle, and a blocking-pool job that waits on a pipe.

mod support;

use std::fmt::Debug;
use std::future::{poll_fn, Future};
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::{pin, Pin};
use std::task::{Context, Poll};
use std::time::Duration;

use overlap::io::{AsyncRead, AsyncReadExt, AsyncWrite, BufReader, Unblock};
use overlap::net::UnixStream;
use support::within;

/// Polls `op`, which must keep returning `Pending`, `times` times in one poll of the task,
/// then says whether the task still has budget left.
async fn budget_left_after_waiting<T: Debug>(
    times: usize,
    mut op: impl FnMut(&mut Context<'_>) -> Poll<T>,
) -> bool {
    poll_fn(|cx| {
        for i in 0..times {
            let polled = op(cx);
            assert!(
                polled.is_pending(),
                "poll {i} of an idle operation: {polled:?}"
            );
        }
        Poll::Ready(overlap::coop_poll_proceed(cx).is_ready())
    })
    .await
}

/// Runs a test's body on a runtime, under a hang guard.
fn run(body: impl Future<Output = ()>) {
    overlap::block_on(within(Duration::from_secs(20), body, "the test hung"));
}

/// Writes a few bytes into the pipe and closes it; `reader` (waiting on that pipe through a
/// job all along) reads exactly them, then end of file.
async fn late_bytes_arrive(mut writer: impl Write, reader: &mut (impl AsyncRead + Unpin)) {
    writer.write_all(b"late").unwrap();
    drop(writer);
    let mut got = Vec::new();
    reader.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"late");
}

/// More waits than the budget (128) has units.
const WAITS: usize = 300;

#[test]
fn an_idle_copy_polled_many_times_spends_no_budget() {
    run(async {
        let (_tx, rx) = overlap::pipe::pipe().unwrap();
        let mut sink = Vec::new();
        let mut copy = pin!(overlap::io::copy(rx, &mut sink));
        let left = budget_left_after_waiting(WAITS, |cx| copy.as_mut().poll(cx)).await;
        assert!(
            left,
            "a copy waiting for its reader used up the task's budget"
        );
    });
}

#[test]
fn an_idle_copy_buf_polled_many_times_spends_no_budget() {
    run(async {
        let (_tx, rx) = overlap::pipe::pipe().unwrap();
        let mut sink = Vec::new();
        let mut copy = pin!(overlap::io::copy_buf(BufReader::new(rx), &mut sink));
        let left = budget_left_after_waiting(WAITS, |cx| copy.as_mut().poll(cx)).await;
        assert!(
            left,
            "a copy_buf waiting for its reader used up the task's budget"
        );
    });
}

#[test]
fn an_idle_copy_bidirectional_polled_many_times_spends_no_budget() {
    run(async {
        let (mut a, _peer_a) = UnixStream::pair().unwrap();
        let (mut b, _peer_b) = UnixStream::pair().unwrap();
        let mut copy = pin!(overlap::io::copy_bidirectional(&mut a, &mut b));
        let left = budget_left_after_waiting(WAITS, |cx| copy.as_mut().poll(cx)).await;
        assert!(left, "an idle copy_bidirectional used up the task's budget");
    });
}

/// A `splice` into a pipe with room, from a pipe with nothing in it: the destination is
/// ready, the source is not.
#[test]
fn a_splice_waiting_for_its_source_spends_no_budget() {
    run(async {
        let (_feed, from) = overlap::pipe::pipe().unwrap();
        let (mut to, _out) = overlap::pipe::pipe().unwrap();
        to.writable().await.unwrap(); // the loop has seen the room
        let mut splice = pin!(to.splice_from(&from, 1024));
        let left = budget_left_after_waiting(WAITS, |cx| splice.as_mut().poll(cx)).await;
        assert!(
            left,
            "a splice waiting for its source used up the task's budget"
        );
    });
}

/// An `Unblock` reader whose job waits on an empty pipe.
#[test]
fn an_unblock_read_waiting_for_its_job_spends_no_budget() {
    run(async {
        let (reader, writer) = std::io::pipe().unwrap();
        let mut unblock = Unblock::new(reader);
        let mut buf = [0u8; 8];
        let left =
            budget_left_after_waiting(WAITS, |cx| Pin::new(&mut unblock).poll_read(cx, &mut buf))
                .await;
        assert!(left, "a read waiting for its job used up the task's budget");
        // The job reads what comes next: nothing was lost meanwhile.
        late_bytes_arrive(writer, &mut unblock).await;
    });
}

/// An `overlap::fs::File` over a pipe: its read job waits for data.
#[test]
fn a_file_read_waiting_for_its_job_spends_no_budget() {
    run(async {
        let (reader, writer) = std::io::pipe().unwrap();
        let mut file = overlap::fs::File::from_std(std::fs::File::from(OwnedFd::from(reader)));
        let mut buf = [0u8; 8];
        let left =
            budget_left_after_waiting(WAITS, |cx| Pin::new(&mut file).poll_read(cx, &mut buf))
                .await;
        assert!(
            left,
            "a file read waiting for its job used up the task's budget"
        );
        late_bytes_arrive(writer, &mut file).await;
    });
}

/// An `overlap::fs::File` over a full pipe nobody reads: once its write buffer is full,
/// a write waits for the job that drains it.
#[test]
fn a_file_write_waiting_for_its_job_spends_no_budget() {
    run(async {
        let (mut reader, mut writer) = std::io::pipe().unwrap();
        // Full to the last byte, so that every write job blocks until the pipe is read.
        // SAFETY: `F_GETPIPE_SZ` reads a property of an fd we own; no memory is passed.
        let size = unsafe { libc::fcntl(writer.as_raw_fd(), libc::F_GETPIPE_SZ) };
        let size = usize::try_from(size).expect("F_GETPIPE_SZ failed");
        writer.write_all(&vec![1u8; size]).unwrap();
        let mut file = overlap::fs::File::from_std(std::fs::File::from(OwnedFd::from(writer)));
        let chunk = vec![7u8; 64 * 1024];
        let mut written = size;
        // Fill the pipe (64 KiB) and the file's buffer until a write has to wait for the
        // job (free of the budget, so that `Pending` means just that).
        overlap::task::unconstrained(poll_fn(|cx| loop {
            match Pin::new(&mut file).poll_write(cx, &chunk) {
                Poll::Ready(Ok(n)) => written += n,
                Poll::Ready(Err(e)) => panic!("write failed: {e}"),
                Poll::Pending => break Poll::Ready(()),
            }
        }))
        .await;
        let left =
            budget_left_after_waiting(WAITS, |cx| Pin::new(&mut file).poll_write(cx, &chunk)).await;
        assert!(
            left,
            "a file write waiting for its job used up the task's budget"
        );
        // Every byte taken reaches the pipe.
        let drain = std::thread::spawn(move || {
            let mut all = Vec::new();
            std::io::Read::read_to_end(&mut reader, &mut all).unwrap();
            all.len()
        });
        overlap::io::AsyncWriteExt::flush(&mut file).await.unwrap();
        drop(file);
        assert_eq!(drain.join().unwrap(), written);
    });
}

/// Tells a copy of this test binary to be the child of the `stdin` test.
const STDIN_CHILD_ENV: &str = "OVERLAP_IO_COOP_BUDGET_STDIN_CHILD";

/// `io::stdin` on a pipe the parent holds open without writing: its read job waits.
#[test]
fn a_stdin_read_waiting_for_its_job_spends_no_budget() {
    const NAME: &str = "a_stdin_read_waiting_for_its_job_spends_no_budget";
    if std::env::var_os(STDIN_CHILD_ENV).is_some() {
        return run(async {
            let mut stdin = overlap::io::stdin();
            let mut buf = [0u8; 8];
            let left =
                budget_left_after_waiting(WAITS, |cx| Pin::new(&mut stdin).poll_read(cx, &mut buf))
                    .await;
            println!("BUDGET_LEFT:{left}");
            let mut got = Vec::new();
            stdin.read_to_end(&mut got).await.unwrap();
            println!("READ:{}", String::from_utf8_lossy(&got));
        });
    }
    let done = support::watchdog(30);
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(STDIN_CHILD_ENV, "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()))
        .map(Result::unwrap);
    // The harness prints the test's name on the same line, before it.
    let verdict = lines
        .by_ref()
        .find_map(|line| Some(line.split_once("BUDGET_LEFT:")?.1.trim().to_owned()))
        .expect("the child gave no verdict");
    input.write_all(b"late").unwrap();
    drop(input);
    let rest: Vec<String> = lines.collect();
    assert!(
        child.wait().unwrap().success(),
        "the child failed: {rest:?}"
    );
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        verdict, "true",
        "a stdin read waiting for its job used up the task's budget"
    );
    assert!(rest.iter().any(|l| l.contains("READ:late")), "{rest:?}");
}
