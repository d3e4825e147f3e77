//! An adversarial review of FIFOs opened by several parties (anonymous pipes are in
//! `pipe_review.rs`): two receivers sharing one FIFO, a read-write receiver that holds off
//! end of file for the others, writers in child processes (copies of this test binary, and
//! shells) writing at once, a shell writer blocked in `open` until a receiver comes, a child
//! reader that leaves (the sender gets `BrokenPipe`, the FIFO keeps its unread bytes for the
//! next reader), a FIFO unlinked while open, and paths that are no FIFO, none of which may
//! leave an fd open.

mod support;

use std::collections::BTreeMap;
use std::io::{ErrorKind, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::pipe::{OpenOptions, Receiver, Sender};
use overlap::process::Command;
use overlap::{block_on, spawn};
use support::{mkfifo, open_fds, settle, within, TempDir};

const HANG: Duration = Duration::from_secs(20);
/// The size up to which a pipe write is atomic on Linux.
const PIPE_BUF: usize = 4096;
/// Tells a copy of this test binary to be a FIFO writer: `{mode} {id} {path}`.
const WRITER_ENV: &str = "OVERLAP_PIPE_REVIEW_WRITER";
/// Records each child writer writes in the `records` mode.
const RECORDS: u32 = 150;
/// Bytes each child writer writes in one `write` in the `big` mode.
const BIG: usize = 300_000;

/// Byte `i` of record `seq` of writer `id`: any mix of two records shows.
fn record_byte(id: u8, seq: u32, i: usize) -> u8 {
    (id as usize * 31 + seq as usize * 7 + i) as u8
}

/// Record `seq` of writer `id`: its id, its sequence number, then bytes of its own.
fn record(id: u8, seq: u32) -> Vec<u8> {
    let mut rec: Vec<u8> = (0..PIPE_BUF).map(|i| record_byte(id, seq, i)).collect();
    rec[0] = id;
    rec[1..5].copy_from_slice(&seq.to_le_bytes());
    rec
}

/// In a child started by [`spawn_writers`], writes as its `WRITER_ENV` says and returns
/// `true`; in the test process itself, returns `false`.
fn act_as_writer() -> bool {
    let Ok(spec) = std::env::var(WRITER_ENV) else {
        return false;
    };
    let mut parts = spec.splitn(3, ' ');
    let (mode, id, path) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let id: u8 = id.parse().unwrap();
    // A plain blocking open and plain writes, as any other program's.
    let mut fifo = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    match mode {
        "records" => {
            for seq in 0..RECORDS {
                assert_eq!(fifo.write(&record(id, seq)).unwrap(), PIPE_BUF);
            }
        }
        "big" => assert_eq!(fifo.write(&vec![id; BIG]).unwrap(), BIG),
        other => panic!("unknown writer mode {other}"),
    }
    true
}

/// Starts `ids.len()` copies of this test binary, running only `test`, each writing into
/// the FIFO at `path` as `mode` says.
fn spawn_writers(test: &str, mode: &str, ids: &[u8], path: &Path) -> Vec<overlap::process::Child> {
    ids.iter()
        .map(|id| {
            Command::new(std::env::current_exe().unwrap())
                .args([test, "--exact", "--nocapture", "--test-threads=1"])
                .env(WRITER_ENV, format!("{mode} {id} {}", path.display()))
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect()
}

/// A read-write sender on the FIFO at `path`: it holds off end of file while writers come
/// and go, and lets a plain receiver open without waiting.
fn keeper_of(path: &Path) -> Sender {
    OpenOptions::new()
        .read_write(true)
        .open_sender(path)
        .unwrap()
}

/// [`keeper_of`] the FIFO at `path`, and a receiver of it.
fn kept_open(path: &Path) -> (Sender, Receiver) {
    let keeper = keeper_of(path);
    (keeper, Receiver::open(path).unwrap())
}

/// Waits for every child, each of which must have succeeded.
async fn all_succeed(children: Vec<overlap::process::Child>) {
    for mut child in children {
        let status = within(HANG, child.wait(), "a writer never ended")
            .await
            .unwrap();
        assert!(status.success(), "a writer failed: {status}");
    }
}

/// Three child processes write 150 records of `PIPE_BUF` bytes each, at once, into a FIFO
/// that one receiver reads: every record arrives whole (the kernel keeps such writes
/// atomic and the receiver reads them as they came), each writer's in its order, none lost
/// or doubled. A read-write sender opened first holds off end of file while writers come
/// and go; once it and the children are gone, the receiver reads end of file.
#[test]
fn records_of_pipe_buf_from_child_writers_arrive_whole_and_in_each_writers_order() {
    const TEST: &str =
        "records_of_pipe_buf_from_child_writers_arrive_whole_and_in_each_writers_order";
    if act_as_writer() {
        return;
    }
    let dir = TempDir::new("pipe-review-records");
    let path = dir.join("fifo");
    mkfifo(&path);
    block_on(async {
        let (keeper, mut rx) = kept_open(&path);
        let ids = [1u8, 2, 3];
        let children = spawn_writers(TEST, "records", &ids, &path);
        let mut next: BTreeMap<u8, u32> = ids.iter().map(|&id| (id, 0)).collect();
        let mut rec = vec![0u8; PIPE_BUF];
        for _ in 0..ids.len() as u32 * RECORDS {
            within(HANG, rx.read_exact(&mut rec), "the records stalled")
                .await
                .unwrap();
            let id = rec[0];
            let seq = u32::from_le_bytes(rec[1..5].try_into().unwrap());
            let expected = next
                .get_mut(&id)
                .unwrap_or_else(|| panic!("no writer {id}"));
            assert_eq!(seq, *expected, "writer {id}'s records out of order or lost");
            assert!(
                rec == record(id, seq),
                "record {seq} of writer {id} was mixed"
            );
            *expected += 1;
        }
        all_succeed(children).await;
        drop(keeper);
        assert_eq!(rx.read(&mut rec).await.unwrap(), 0, "no end of file");
    });
}

/// Three child processes each write 300 000 bytes in one `write`, at once: writes over
/// `PIPE_BUF` may interleave, but every byte arrives once: 300 000 of each writer's value,
/// then end of file.
#[test]
fn big_writes_from_child_writers_may_interleave_but_lose_nothing() {
    const TEST: &str = "big_writes_from_child_writers_may_interleave_but_lose_nothing";
    if act_as_writer() {
        return;
    }
    let dir = TempDir::new("pipe-review-big");
    let path = dir.join("fifo");
    mkfifo(&path);
    block_on(async {
        let (keeper, mut rx) = kept_open(&path);
        let reader = spawn(async move {
            let mut got = Vec::new();
            overlap::io::read_to_end(&mut rx, &mut got)
                .await
                .map(|_| got)
        });
        let ids = [1u8, 2, 3];
        all_succeed(spawn_writers(TEST, "big", &ids, &path)).await;
        drop(keeper);
        let got = within(HANG, reader, "no end of file")
            .await
            .unwrap()
            .unwrap();
        let mut counts = [0usize; 256];
        for b in &got {
            counts[*b as usize] += 1;
        }
        for id in ids {
            assert_eq!(counts[id as usize], BIG, "writer {id}'s bytes");
        }
        assert_eq!(got.len(), ids.len() * BIG, "bytes from nowhere");
    });
}

/// Waits until the process `pid` sleeps in a FIFO's `open`, for a partner to come.
async fn blocked_in_open(pid: u32) {
    let wchan = format!("/proc/{pid}/wchan");
    let blocked = async {
        while std::fs::read_to_string(&wchan).unwrap_or_default() != "wait_for_partner" {
            overlap::time::sleep(Duration::from_millis(1)).await;
        }
    };
    within(HANG, blocked, "the shell never blocked in open").await
}

/// Shells writing with `printf … > fifo`: one that is blocked in `open` before any receiver
/// exists is let in by `Receiver::open`, and its line is then read whole, followed by end
/// of file (the kernel reports that hang-up though the writer opened before the receiver);
/// three more at once, with a read-write sender holding the FIFO open, each put their line
/// in whole.
#[test]
fn shell_writers_are_let_in_by_the_receiver_and_their_lines_arrive_whole() {
    let dir = TempDir::new("pipe-review-shells");
    let path = dir.join("fifo");
    mkfifo(&path);
    let shell = |line: &str| {
        Command::new("sh")
            .args(["-c", "printf '%s\\n' \"$1\" > \"$2\"", "sh"])
            .arg(line)
            .arg(&path)
            .spawn()
            .unwrap()
    };
    block_on(async {
        let first = shell("the first shell, waiting in open");
        blocked_in_open(first.id().unwrap()).await;
        let mut rx = Receiver::open(&path).unwrap();
        let mut got = String::new();
        within(
            HANG,
            rx.read_to_string(&mut got),
            "the shell was not let in",
        )
        .await
        .unwrap();
        assert_eq!(got, "the first shell, waiting in open\n");
        all_succeed(vec![first]).await;

        let keeper = keeper_of(&path);
        let lines: Vec<String> = (0..3)
            .map(|i| format!("shell {i}: {}", "x".repeat(900)))
            .collect();
        let shells = lines.iter().map(|l| shell(l)).collect();
        all_succeed(shells).await;
        drop(keeper);
        let mut got = String::new();
        within(HANG, rx.read_to_string(&mut got), "no end of file")
            .await
            .unwrap();
        let mut got: Vec<&str> = got.lines().collect();
        got.sort_unstable();
        assert_eq!(got, lines, "lines lost or mixed");
    });
}

/// A child reader (`sh`'s `read`, which takes one line and not a byte more) leaves: the
/// sender's next write fails with `BrokenPipe` and the process lives on. The FIFO keeps the
/// line it did not read while the sender holds it open, so the next receiver gets that line
/// and then what the sender writes next.
#[test]
fn a_child_reader_that_leaves_breaks_the_pipe_and_the_fifo_keeps_its_unread_bytes() {
    let dir = TempDir::new("pipe-review-child-reader");
    let path = dir.join("fifo");
    mkfifo(&path);
    block_on(async {
        let child = Command::new("sh")
            .args(["-c", "read line < \"$1\"; printf '%s\\n' \"$line\"", "sh"])
            .arg(&path)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // The child's `open` makes it a reader; until then there is none (`ENXIO`).
        let open = async {
            loop {
                match Sender::open(&path) {
                    Ok(tx) => break tx,
                    Err(e) if overlap::io::raw_os_error(&e) == Some(libc::ENXIO) => {
                        overlap::time::sleep(Duration::from_millis(1)).await
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        };
        let mut tx = within(HANG, open, "the child never opened the FIFO").await;
        tx.write_all(b"first\nsecond\n").await.unwrap();
        let out = within(HANG, child.wait_with_output(), "the child never ended")
            .await
            .unwrap();
        assert!(out.status.success(), "{}", out.status);
        assert_eq!(out.stdout, b"first\n");
        let err = tx.write(b"lost\n").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");

        let mut rx = Receiver::open(&path).unwrap();
        tx.write_all(b"third\n").await.unwrap();
        drop(tx);
        let mut got = String::new();
        within(HANG, rx.read_to_string(&mut got), "no end of file")
            .await
            .unwrap();
        assert_eq!(got, "second\nthird\n");
    });
}

/// Two receivers on one FIFO share its bytes: a writer sends the numbers 0..200 000 as
/// `u32`s in `PIPE_BUF` writes, each receiver reads multiples of 4 bytes, so every read
/// holds whole numbers. Each receiver's numbers rise (a pipe hands out its bytes in
/// order), together they are every number once, and both read end of file when the
/// writer leaves.
#[test]
fn two_receivers_on_one_fifo_share_every_byte_once_and_both_see_end_of_file() {
    const COUNT: u32 = 200_000;
    let dir = TempDir::new("pipe-review-two-receivers");
    let path = dir.join("fifo");
    mkfifo(&path);
    block_on(async {
        let readers: Vec<_> = [1200usize, 4000]
            .into_iter()
            .map(|size| {
                let mut rx = Receiver::open(&path).unwrap();
                spawn(async move {
                    let mut buf = vec![0u8; size];
                    let mut got = Vec::new();
                    loop {
                        let n = rx.read(&mut buf).await.unwrap();
                        if n == 0 {
                            return got;
                        }
                        assert_eq!(n % 4, 0, "a read split a number");
                        got.extend(
                            buf[..n]
                                .chunks(4)
                                .map(|c| u32::from_le_bytes(c.try_into().unwrap())),
                        );
                        overlap::yield_now().await; // let the other receiver in
                    }
                })
            })
            .collect();
        let mut tx = Sender::open(&path).unwrap();
        let numbers: Vec<u8> = (0..COUNT).flat_map(u32::to_le_bytes).collect();
        for chunk in numbers.chunks(PIPE_BUF) {
            tx.write_all(chunk).await.unwrap();
        }
        drop(tx);
        let mut all = Vec::new();
        for (i, reader) in readers.into_iter().enumerate() {
            let got = within(HANG, reader, "a receiver saw no end of file")
                .await
                .unwrap();
            assert!(
                got.windows(2).all(|w| w[0] < w[1]),
                "receiver {i} out of order"
            );
            all.extend(got);
        }
        all.sort_unstable();
        assert_eq!(all.len(), COUNT as usize, "numbers lost or doubled");
        assert!(all.iter().copied().eq(0..COUNT), "numbers lost or doubled");
    });
}

/// A receiver opened read-write is a writer of the FIFO too: a plain receiver on the same
/// FIFO reads no end of file when the last real writer leaves, only once the read-write
/// one goes.
#[test]
fn a_read_write_receiver_holds_off_end_of_file_for_a_plain_one() {
    let dir = TempDir::new("pipe-review-rw-receiver");
    let path = dir.join("fifo");
    mkfifo(&path);
    block_on(async {
        let mut plain = Receiver::open(&path).unwrap();
        let rw = OpenOptions::new()
            .read_write(true)
            .open_receiver(&path)
            .unwrap();
        let mut tx = Sender::open(&path).unwrap();
        tx.write_all(b"8 bytes!").await.unwrap();
        drop(tx);
        let mut got = [0u8; 8];
        within(HANG, plain.read_exact(&mut got), "the bytes never came")
            .await
            .unwrap();
        assert_eq!(&got, b"8 bytes!");
        let reader = spawn(async move { plain.read(&mut [0u8; 8]).await });
        settle().await;
        assert!(
            !reader.is_finished(),
            "end of file with a read-write receiver open"
        );
        drop(rw);
        let n = within(HANG, reader, "no end of file once it left")
            .await
            .unwrap();
        assert_eq!(n.unwrap(), 0);
    });
}

/// A FIFO unlinked while its ends are open goes on working between them; its path is gone
/// (`NotFound`, naming it), and a new FIFO made at the same path is another pipe: it has
/// no reader (`ENXIO`) though the old receiver lives, and its bytes never reach the old
/// receiver.
#[test]
fn a_fifo_unlinked_while_open_keeps_working_and_its_path_is_another_pipe() {
    let dir = TempDir::new("pipe-review-unlinked");
    let path = dir.join("fifo");
    mkfifo(&path);
    block_on(async {
        let mut old_rx = Receiver::open(&path).unwrap();
        let mut old_tx = Sender::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        old_tx.write_all(b"after unlink").await.unwrap();
        let mut got = [0u8; 12];
        old_rx.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"after unlink");
        for err in [
            Sender::open(&path).unwrap_err(),
            Receiver::open(&path).unwrap_err(),
        ] {
            assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
            assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
        }

        mkfifo(&path);
        let err = Sender::open(&path).unwrap_err();
        assert_eq!(overlap::io::raw_os_error(&err), Some(libc::ENXIO), "{err}");
        let mut new_rx = Receiver::open(&path).unwrap();
        let mut new_tx = Sender::open(&path).unwrap();
        new_tx.write_all(b"new").await.unwrap();
        old_tx.write_all(b"old").await.unwrap();
        drop((new_tx, old_tx));
        let mut got = String::new();
        new_rx.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "new");
        let mut got = String::new();
        old_rx.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "old");
    });
}

/// Every way to open a path that is no FIFO (a regular file, a directory, a symlink to
/// one, a Unix socket, `/dev/null`, a missing path), and a sender on a FIFO with no reader,
/// fails and leaves no fd open; a symlink to a FIFO opens it. Counts the process's fds:
/// alone in a child, so no other test's fds come or go between the counts.
#[test]
fn paths_that_are_no_fifo_fail_and_leave_no_fd_open() {
    support::run_in_child("paths_that_are_no_fifo_fail_and_leave_no_fd_open", || {
        block_on(count_fds_around_refused_opens())
    });
}

async fn count_fds_around_refused_opens() {
    let dir = TempDir::new("pipe-review-no-fifo");
    let file = dir.join("file");
    std::fs::write(&file, b"data").unwrap();
    let sub = dir.join("dir");
    std::fs::create_dir(&sub).unwrap();
    let dir_link = dir.join("dir-link");
    std::os::unix::fs::symlink(&sub, &dir_link).unwrap();
    let sock = dir.join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let fifo = dir.join("fifo");
    mkfifo(&fifo);
    let fifo_link = dir.join("fifo-link");
    std::os::unix::fs::symlink(&fifo, &fifo_link).unwrap();
    // The runtime's own fds (its epoll, its wake-up) exist once an end was registered.
    drop(overlap::pipe::pipe().unwrap());
    let before = open_fds();
    let paths = [
        file.as_path(),
        &sub,
        &dir_link,
        &sock,
        Path::new("/dev/null"),
        &dir.join("missing"),
    ];
    for path in paths {
        for rw in [false, true] {
            let mut opts = OpenOptions::new();
            opts.read_write(rw);
            let errs = [opts.open_receiver(path).err(), opts.open_sender(path).err()];
            for err in errs {
                let err = err.unwrap_or_else(|| panic!("{} opened, rw {rw}", path.display()));
                assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
            }
        }
    }
    let err = Sender::open(&fifo_link).unwrap_err();
    assert_eq!(overlap::io::raw_os_error(&err), Some(libc::ENXIO), "{err}");
    assert_eq!(open_fds(), before, "a refused open left an fd open");
    {
        let mut rx = Receiver::open(&fifo_link).unwrap();
        let mut tx = Sender::open(&fifo_link).unwrap();
        tx.write_all(b"through a link").await.unwrap();
        drop(tx);
        let mut got = String::new();
        rx.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "through a link");
    }
    assert_eq!(open_fds(), before, "an fd of the link's FIFO stayed open");
    assert_eq!(std::fs::read(&file).unwrap(), b"data");
}
