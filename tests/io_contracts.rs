//! The futures-io contract, checked the same way on every overlap I/O type: TCP and Unix
//! streams and their borrowed and owned halves, pipe ends, a child's stdio, `File`,
//! `DuplexStream`, `Unblock` and the standard streams.
//!
//! What every type answers alike:
//! - an empty read, an all-empty vectored read, an empty write and an all-empty vectored
//!   write return `Ok(0)` at once, without waiting for data or room (also with the writer's
//!   buffer full), and so do the `try_*` calls given empty buffers;
//! - a vectored write skips empty slices and takes at least the first non-empty one;
//! - `close` twice is `Ok`, and so is `flush` after it; a write after `close` fails with
//!   `BrokenPipe` (or `NotConnected`) at once;
//! - after end of file every read returns 0 again;
//! - a writer waiting for room learns that the reader is gone (an error), and a reader
//!   waiting for data that the writer is gone (end of file).
//!
//! Where a type differs on purpose, its documentation says so: `File::close` and the
//! standard output streams' `close` only flush (a file's fd closes when it is dropped, the
//! process's stdout is not ours to close), so writes after them go on, as in tokio.

mod support;

use std::future::Future;
use std::io::{ErrorKind, IoSlice, IoSliceMut};
use std::pin::pin;
use std::process::Stdio;
use std::task::Poll;
use std::time::Duration;

use overlap::io::{duplex, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Unblock};
use overlap::net::{TcpStream, UnixStream};
use overlap::pipe::pipe;
use overlap::process::Command;
use overlap::{block_on, join};
use support::{poll_once, run_with_unread_stdout, settle, tcp_pair, within, TempDir};

const HANG: Duration = Duration::from_secs(10);

/// `fut`'s output if its first poll is ready; panics (naming `what`) if it would wait.
/// The task yields first, so a cooperative budget spent by earlier calls cannot make
/// the poll return `Pending`.
async fn now<F: Future>(fut: F, what: &str) -> F::Output {
    overlap::yield_now().await;
    match poll_once(pin!(fut)).await {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("{what} waited instead of returning at once"),
    }
}

/// Writes 64 KiB chunks until a write would wait: the writer's buffer is then full.
async fn fill<W: AsyncWrite + Unpin>(w: &mut W, what: &str) {
    let chunk = vec![7u8; 64 * 1024];
    for _ in 0..4096 {
        overlap::yield_now().await;
        match poll_once(pin!(w.write(&chunk))).await {
            Poll::Ready(res) => assert!(res.unwrap() > 0, "{what}: a fill write took nothing"),
            Poll::Pending => return,
        }
    }
    panic!("{what}: 256 MiB went in without a write waiting");
}

/// The empty calls on a reader with nothing to read and a writer: all `Ok(0)` at once.
async fn empty_calls<R, W>(what: &str, r: &mut R, w: &mut W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let read = now(r.read(&mut []), what).await;
    assert_eq!(read.unwrap(), 0, "{what}: read(&mut [])");
    let (mut a, mut b) = ([0u8; 0], [0u8; 0]);
    let mut bufs = [IoSliceMut::new(&mut a), IoSliceMut::new(&mut b)];
    let read = now(r.read_vectored(&mut bufs), what).await;
    assert_eq!(read.unwrap(), 0, "{what}: read_vectored of empty slices");
    empty_writes(what, w).await;
}

async fn empty_writes<W: AsyncWrite + Unpin>(what: &str, w: &mut W) {
    assert_eq!(
        now(w.write(&[]), what).await.unwrap(),
        0,
        "{what}: write(&[])"
    );
    let empties = [IoSlice::new(&[]), IoSlice::new(&[])];
    let wrote = now(w.write_vectored(&empties), what).await;
    assert_eq!(wrote.unwrap(), 0, "{what}: write_vectored of empty slices");
    let none: [IoSlice<'_>; 0] = [];
    let wrote = now(w.write_vectored(&none), what).await;
    assert_eq!(wrote.unwrap(), 0, "{what}: write_vectored of no slices");
}

/// Whether `close` ends the writing side (else it only flushes, and writes go on).
#[derive(Clone, Copy, PartialEq)]
enum Close {
    Ends,
    Flushes,
}

/// The whole contract on a writer `w` whose bytes reach the reader `r`.
async fn contract<R, W>(what: &str, mut r: R, mut w: W, close: Close)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    empty_calls(what, &mut r, &mut w).await;

    let mixed = [
        IoSlice::new(b""),
        IoSlice::new(b"ab"),
        IoSlice::new(b""),
        IoSlice::new(b"cd"),
        IoSlice::new(b""),
    ];
    let n = within(HANG, w.write_vectored(&mixed), what).await.unwrap();
    assert!(
        n == 2 || n == 4,
        "{what}: write_vectored of mixed slices took {n}"
    );
    w.write_all(&b"abcd"[n..]).await.unwrap();
    w.write_all(b"hello").await.unwrap();
    w.flush().await.unwrap();

    within(HANG, w.close(), what).await.unwrap();
    within(HANG, w.close(), what).await.unwrap();
    within(HANG, w.flush(), what).await.unwrap();
    let mut want = b"abcdhello".to_vec();
    let after = within(HANG, w.write(b"!"), what).await;
    match close {
        Close::Ends => {
            let kind = after.expect_err("a write after close").kind();
            assert!(
                matches!(kind, ErrorKind::BrokenPipe | ErrorKind::NotConnected),
                "{what}: a write after close failed with {kind:?}"
            );
        }
        Close::Flushes => {
            assert_eq!(after.unwrap(), 1, "{what}: a write after a flushing close");
            w.flush().await.unwrap();
            want.push(b'!');
        }
    }

    // A vectored read skips empty slices too.
    let (mut head, mut empty) = ([0u8; 3], [0u8; 0]);
    let mut bufs = [IoSliceMut::new(&mut empty), IoSliceMut::new(&mut head)];
    let n = within(HANG, r.read_vectored(&mut bufs), what)
        .await
        .unwrap();
    assert!(
        n > 0,
        "{what}: read_vectored with an empty first slice read nothing"
    );
    let mut got = head[..n].to_vec();
    within(HANG, r.read_to_end(&mut got), what).await.unwrap();
    assert_eq!(got, want, "{what}: the bytes read");
    let mut buf = [0u8; 16];
    for _ in 0..2 {
        let n = within(HANG, r.read(&mut buf), what).await.unwrap();
        assert_eq!(n, 0, "{what}: a read after end of file");
    }
    let read = now(r.read(&mut []), what).await;
    assert_eq!(read.unwrap(), 0, "{what}: read(&mut []) at end of file");
    // An empty write after close does not wait either. Every type but `DuplexStream`
    // checks the length first (`Ok(0)`); the duplex checks its state first (`BrokenPipe`),
    // as tokio's does.
    match now(w.write(&[]), what).await {
        Ok(n) => assert_eq!(n, 0, "{what}: write(&[]) after close"),
        Err(e) => assert!(
            close == Close::Ends && e.kind() == ErrorKind::BrokenPipe,
            "{what}: write(&[]) after close failed with {e:?}"
        ),
    }
}

/// A write waiting for room fails once the reader is dropped (by `gone`, after the write
/// has started waiting).
async fn writer_sees_reader_go<W: AsyncWrite + Unpin>(what: &str, w: &mut W, gone: impl FnOnce()) {
    fill(w, what).await;
    // Empty writes do not wait for room.
    empty_writes(what, w).await;
    // More than any of them can take in while the reader is still there: a TCP peer's
    // receive buffer grows (autotuning) after `fill` saw a write wait, and 64 KiB could then
    // go in before `gone` runs.
    let chunk = vec![1u8; 32 << 20];
    let go = async {
        settle().await;
        gone();
    };
    let (res, ()) = join!(within(HANG, w.write_all(&chunk), what), go);
    let Err(e) = res else {
        panic!("{what}: a write to a reader that is gone succeeded");
    };
    let kind = e.kind();
    assert!(
        matches!(kind, ErrorKind::BrokenPipe | ErrorKind::ConnectionReset),
        "{what}: a writer whose reader went away failed with {kind:?}"
    );
}

/// A read waiting for data ends with end of file once `gone` drops (or closes) the writer;
/// later reads return 0 again.
async fn reader_sees_writer_go<R: AsyncRead + Unpin>(what: &str, r: &mut R, gone: impl FnOnce()) {
    let mut buf = [0u8; 16];
    let go = async {
        settle().await;
        gone();
    };
    let (res, ()) = join!(within(HANG, r.read(&mut buf), what), go);
    assert_eq!(res.unwrap(), 0, "{what}: a read whose writer went away");
    let again = within(HANG, r.read(&mut buf), what).await.unwrap();
    assert_eq!(again, 0, "{what}: a read after end of file");
}

fn unix_pair() -> (UnixStream, UnixStream) {
    UnixStream::pair().unwrap()
}

#[test]
fn tcp_stream_and_its_halves_keep_the_contract() {
    block_on(async {
        let (a, b) = tcp_pair().await;
        contract("TcpStream", b, a, Close::Ends).await;

        let (mut a, mut b) = tcp_pair().await;
        let (_ra, wa) = TcpStream::split(&mut a);
        let (rb, _wb) = TcpStream::split(&mut b);
        contract("tcp WriteHalf -> ReadHalf", rb, wa, Close::Ends).await;

        let (a, b) = tcp_pair().await;
        let (_ra, wa) = a.into_split();
        let (rb, _wb) = b.into_split();
        contract("tcp OwnedWriteHalf -> OwnedReadHalf", rb, wa, Close::Ends).await;
    });
}

#[test]
fn unix_stream_and_its_halves_keep_the_contract() {
    block_on(async {
        let (a, b) = unix_pair();
        contract("UnixStream", b, a, Close::Ends).await;

        let (mut a, mut b) = unix_pair();
        let (_ra, wa) = UnixStream::split(&mut a);
        let (rb, _wb) = UnixStream::split(&mut b);
        contract("unix WriteHalf -> ReadHalf", rb, wa, Close::Ends).await;

        let (a, b) = unix_pair();
        let (_ra, wa) = a.into_split();
        let (rb, _wb) = b.into_split();
        contract("unix OwnedWriteHalf -> OwnedReadHalf", rb, wa, Close::Ends).await;
    });
}

#[test]
fn pipe_ends_and_a_childs_stdio_keep_the_contract() {
    block_on(async {
        let (tx, rx) = pipe().unwrap();
        contract("pipe Sender -> Receiver", rx, tx, Close::Ends).await;

        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        contract(
            "ChildStdin -> cat -> ChildStdout",
            stdout,
            stdin,
            Close::Ends,
        )
        .await;
        assert!(child.wait().await.unwrap().success());
    });
}

#[test]
fn duplex_stream_keeps_the_contract() {
    block_on(async {
        let (a, b) = duplex(64);
        contract("DuplexStream", b, a, Close::Ends).await;
    });
}

#[test]
fn unblock_keeps_the_contract() {
    block_on(async {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        contract("Unblock", Unblock::new(b), Unblock::new(a), Close::Ends).await;
    });
}

/// `File::close` flushes and leaves the file open (its docs: the fd closes on drop), as
/// tokio's `shutdown` does: writes after it go on.
#[test]
fn file_keeps_the_contract_with_a_flushing_close() {
    let dir = TempDir::new("io-contracts");
    block_on(async {
        let path = dir.join("f");
        let w = overlap::fs::File::create(&path).await.unwrap();
        let r = overlap::fs::File::open(&path).await.unwrap();
        contract("File", r, w, Close::Flushes).await;
    });
}

/// The standard streams: the empty calls return at once, and `close` (a flush: the
/// process's own stream stays open) is `Ok` twice. No bytes are written, so the test
/// harness's output stays clean.
#[test]
fn standard_streams_answer_empty_calls_at_once() {
    block_on(async {
        let mut stdin = overlap::io::stdin();
        let read = now(stdin.read(&mut []), "Stdin").await;
        assert_eq!(read.unwrap(), 0, "Stdin: read(&mut [])");
        let mut bufs = [IoSliceMut::new(&mut [])];
        let read = now(stdin.read_vectored(&mut bufs), "Stdin").await;
        assert_eq!(read.unwrap(), 0, "Stdin: read_vectored of an empty slice");

        let mut out = overlap::io::stdout();
        let mut err = overlap::io::stderr();
        empty_writes("Stdout", &mut out).await;
        empty_writes("Stderr", &mut err).await;
        for _ in 0..2 {
            within(HANG, out.close(), "Stdout close").await.unwrap();
            within(HANG, err.close(), "Stderr close").await.unwrap();
        }
        within(HANG, out.flush(), "Stdout flush").await.unwrap();
        within(HANG, err.flush(), "Stderr flush").await.unwrap();
        empty_writes("Stdout after close", &mut out).await;
    });
}

const CHILD_ENV: &str = "OVERLAP_IO_CONTRACTS_CHILD";

/// Standard output with a write in flight that cannot finish (its pipe is unread and full):
/// an empty write returns at once all the same. Run as a child whose stdout is that pipe;
/// it reports whether the empty write waited, so that the parent then drains the pipe and
/// the child ends either way.
#[test]
fn stdout_answers_an_empty_write_while_a_write_waits_for_room() {
    let name = "stdout_answers_an_empty_write_while_a_write_waits_for_room";
    if std::env::var(CHILD_ENV).as_deref() == Ok(name) {
        block_on(async {
            let mut out = overlap::io::stdout();
            fill(&mut out, "Stdout").await;
            overlap::yield_now().await;
            let empty = poll_once(pin!(out.write(&[]))).await;
            eprintln!("EMPTY WRITE {empty:?}");
            out.flush().await.unwrap();
        });
        return;
    }
    let run = run_with_unread_stdout(name, CHILD_ENV, 1, |l| l.starts_with("EMPTY WRITE"));
    assert_eq!(run.reports[0].trim(), "EMPTY WRITE Ready(Ok(0))");
    assert!(
        run.stdout.len() >= 64 * 1024,
        "the child's writes were lost"
    );
}

#[test]
fn a_waiting_writer_learns_that_the_reader_is_gone() {
    block_on(async {
        let (mut a, b) = tcp_pair().await;
        writer_sees_reader_go("TcpStream", &mut a, || drop(b)).await;

        let (a, b) = tcp_pair().await;
        let (_ra, mut wa) = a.into_split();
        writer_sees_reader_go("tcp OwnedWriteHalf", &mut wa, || drop(b)).await;

        let (mut a, b) = unix_pair();
        writer_sees_reader_go("UnixStream", &mut a, || drop(b)).await;

        let (a, b) = unix_pair();
        let (_ra, mut wa) = a.into_split();
        writer_sees_reader_go("unix OwnedWriteHalf", &mut wa, || drop(b)).await;

        let (mut tx, rx) = pipe().unwrap();
        writer_sees_reader_go("pipe Sender", &mut tx, || drop(rx)).await;

        let (mut a, b) = duplex(1024);
        writer_sees_reader_go("DuplexStream", &mut a, || drop(b)).await;

        // `Unblock` and the standard output streams wait for the write in flight before
        // the next one; an empty write is not one and does not wait for it.
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut a = Unblock::new(a);
        writer_sees_reader_go("Unblock", &mut a, || drop(b)).await;

        // A child that never reads its stdin, killed while we wait to write to it.
        let mut child = Command::new("sleep")
            .arg("30")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        writer_sees_reader_go("ChildStdin", &mut stdin, || child.start_kill().unwrap()).await;
        assert!(!child.wait().await.unwrap().success());
    });
}

#[test]
fn a_waiting_reader_learns_that_the_writer_is_gone() {
    block_on(async {
        let (a, mut b) = tcp_pair().await;
        reader_sees_writer_go("TcpStream", &mut b, || drop(a)).await;

        let (a, b) = tcp_pair().await;
        let (_ra, wa) = a.into_split();
        let (mut rb, _wb) = b.into_split();
        reader_sees_writer_go("tcp OwnedReadHalf", &mut rb, || drop(wa)).await;

        let (a, mut b) = unix_pair();
        reader_sees_writer_go("UnixStream", &mut b, || drop(a)).await;

        let (a, b) = unix_pair();
        let (_ra, wa) = a.into_split();
        let (mut rb, _wb) = b.into_split();
        reader_sees_writer_go("unix OwnedReadHalf", &mut rb, || drop(wa)).await;

        let (tx, mut rx) = pipe().unwrap();
        reader_sees_writer_go("pipe Receiver", &mut rx, || drop(tx)).await;

        let (a, mut b) = duplex(64);
        reader_sees_writer_go("DuplexStream", &mut b, || drop(a)).await;

        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let (a, mut b) = (Unblock::new(a), Unblock::new(b));
        reader_sees_writer_go("Unblock", &mut b, || drop(a)).await;

        let mut child = Command::new("sleep")
            .arg("30")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        reader_sees_writer_go("ChildStdout", &mut stdout, || child.start_kill().unwrap()).await;
        assert!(!child.wait().await.unwrap().success());
    });
}

/// `try_read`, `try_write` and their vectored twins given only empty buffers: `Ok(0)` at
/// once, whatever the readiness (a fresh socket is not yet known to be ready; a full one
/// has no room), as the poll functions answer.
macro_rules! check_empty_tries {
    ($what:expr, $r:expr, $w:expr) => {{
        let (what, r, w) = ($what, &$r, &$w);
        assert_eq!(r.try_read(&mut []).unwrap(), 0, "{what}: try_read(&mut [])");
        let mut bufs = [IoSliceMut::new(&mut []), IoSliceMut::new(&mut [])];
        let n = r.try_read_vectored(&mut bufs).unwrap();
        assert_eq!(n, 0, "{what}: try_read_vectored of empty slices");
        assert_eq!(w.try_write(&[]).unwrap(), 0, "{what}: try_write(&[])");
        let bufs = [IoSlice::new(&[]), IoSlice::new(&[])];
        let n = w.try_write_vectored(&bufs).unwrap();
        assert_eq!(n, 0, "{what}: try_write_vectored of empty slices");
    }};
}

#[test]
fn try_calls_with_empty_buffers_return_ok_0_at_once() {
    block_on(async {
        let (mut a, b) = tcp_pair().await;
        check_empty_tries!("fresh TcpStream", b, a);
        {
            let (ra, wa) = TcpStream::split(&mut a);
            check_empty_tries!("tcp halves", ra, wa);
        }
        fill(&mut a, "TcpStream").await;
        check_empty_tries!("full TcpStream", b, a);
        let (ra, wa) = a.into_split();
        check_empty_tries!("tcp owned halves", ra, wa);

        let (mut a, b) = unix_pair();
        check_empty_tries!("fresh UnixStream", b, a);
        {
            let (ra, wa) = UnixStream::split(&mut a);
            check_empty_tries!("unix halves", ra, wa);
        }
        fill(&mut a, "UnixStream").await;
        check_empty_tries!("full UnixStream", b, a);
        let (ra, wa) = a.into_split();
        check_empty_tries!("unix owned halves", ra, wa);

        let (mut tx, rx) = pipe().unwrap();
        check_empty_tries!("fresh pipe", rx, tx);
        fill(&mut tx, "pipe").await;
        check_empty_tries!("full pipe", rx, tx);
    });
}

/// A pipe sender closed with `close` has given up its fd: every write of a byte or more
/// fails with `BrokenPipe`, through `try_write` as through the futures-io calls.
#[test]
fn a_closed_pipe_sender_refuses_writes() {
    block_on(async {
        let (mut tx, _rx) = pipe().unwrap();
        tx.close().await.unwrap();
        let kind = tx.try_write(b"x").unwrap_err().kind();
        assert_eq!(kind, ErrorKind::BrokenPipe, "try_write after close");
        let bufs = [IoSlice::new(b""), IoSlice::new(b"x")];
        let kind = tx.try_write_vectored(&bufs).unwrap_err().kind();
        assert_eq!(
            kind,
            ErrorKind::BrokenPipe,
            "try_write_vectored after close"
        );
        let kind = tx.write(b"x").await.unwrap_err().kind();
        assert_eq!(kind, ErrorKind::BrokenPipe, "write after close");
        // Empty buffers move nothing, in this state as in any other.
        assert_eq!(tx.try_write(&[]).unwrap(), 0, "try_write(&[]) after close");
        let n = tx.try_write_vectored(&[IoSlice::new(&[])]).unwrap();
        assert_eq!(n, 0, "try_write_vectored of empty slices after close");
        assert_eq!(tx.write(&[]).await.unwrap(), 0, "write(&[]) after close");
    });
}
