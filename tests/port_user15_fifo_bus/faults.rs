//! The tests of what goes wrong around the daemon: reply FIFOs opened late, never, or
//! not FIFOs at all; a client that does not read its reply; too many replies at once; the
//! control FIFO deleted or replaced under the daemon, or no FIFO from the start; dumps
//! within and past their limits; and a shutdown in the middle of all that.

use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::time::Duration;

use overlap::io::AsyncWriteExt;
use overlap::pipe::{OpenOptions, Receiver, Sender};
use overlap::time::sleep;

use super::client::{fds_under, Rig, HANG};
use super::control::EofMode;
use super::daemon::{Config, Daemon};
use super::proto::blob;
use crate::support::{mkfifo, settle, until, within, TempDir};

#[overlap::test(start_paused = true)]
async fn a_reply_fifo_opened_late_is_answered_and_one_never_opened_is_gone() {
    let rig = Rig::start("fifo-bus-late", EofMode::KeepWriter, |_| {});
    let mut late = rig.client_unopened("late");
    rig.send(format!("PING {}\n", late.reply.display()).as_bytes())
        .await;
    // Opens at 325 ms: the daemon's opens at 0, 50, ..., 300 ms were refused (ENXIO).
    sleep(Duration::from_millis(325)).await;
    late.open();
    assert_eq!(late.reply().await, b"PONG\n");
    let s = rig.daemon.stats();
    assert_eq!((s.enxio, s.delivered, s.gone), (7, 1, 0), "{s:?}");
    // Never opened: tried every 50 ms up to the 2 s deadline, then given up.
    let never = rig.client_unopened("never");
    rig.send(format!("PING {}\n", never.reply.display()).as_bytes())
        .await;
    until(|| rig.daemon.stats().gone == 1, "giving up").await;
    assert_eq!(rig.daemon.stats().enxio, 7 + 41);
    // No such path: gone at once, nothing retried.
    rig.send(format!("PING {}\n", rig.dir.join("missing").display()).as_bytes())
        .await;
    until(|| rig.daemon.stats().gone == 2, "a missing reply FIFO").await;
    assert_eq!(rig.daemon.stats().enxio, 7 + 41);
    let mut c = rig.client("c");
    assert_eq!(rig.ask(&mut c, "PING", "").await, "PONG\n");
    drop((late, c));
    rig.daemon.shutdown().await.unwrap();
}

#[overlap::test(start_paused = true)]
async fn reply_paths_that_are_no_fifo_are_never_written_nor_retried() {
    let rig = Rig::start("fifo-bus-refuse", EofMode::KeepWriter, |_| {});
    let file = rig.dir.join("file");
    std::fs::write(&file, b"precious").unwrap();
    let sock = rig.dir.join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    for path in [&file, &sock, &rig.dir.path().to_path_buf()] {
        rig.send(format!("ECHO {} overwrite\n", path.display()).as_bytes())
            .await;
    }
    until(|| rig.daemon.stats().refused == 3, "three refusals").await;
    // A socket's path, which open(2) refuses with ENXIO as for a FIFO with no reader,
    // is told apart (InvalidInput): not retried for two seconds.
    let s = rig.daemon.stats();
    assert_eq!((s.enxio, s.gone, s.delivered), (0, 0, 0), "{s:?}");
    assert_eq!(std::fs::read(&file).unwrap(), b"precious");
    rig.daemon.shutdown().await.unwrap();
}

/// The capacity of the pipe behind `rx` (`F_GETPIPE_SZ`).
fn pipe_size(rx: &Receiver) -> usize {
    // SAFETY: F_GETPIPE_SZ takes no pointer argument.
    let n = unsafe { libc::fcntl(rx.as_raw_fd(), libc::F_GETPIPE_SZ) };
    assert!(n > 0, "{}", std::io::Error::last_os_error());
    n as usize
}

#[overlap::test(start_paused = true)]
async fn a_client_that_does_not_read_is_dropped_at_the_deadline_holding_up_nobody() {
    let rig = Rig::start("fifo-bus-slow", EofMode::KeepWriter, |_| {});
    let mut slow = rig.client("slow");
    rig.send(format!("BLOB {} {}\n", slow.reply.display(), 1 << 20).as_bytes())
        .await;
    // Meanwhile another client is answered at once.
    let mut quick = rig.client("quick");
    assert_eq!(rig.ask(&mut quick, "PING", "").await, "PONG\n");
    assert_eq!(rig.daemon.stats().too_slow, 0);
    sleep(Duration::from_secs(5)).await;
    settle().await;
    assert_eq!(rig.daemon.stats().too_slow, 1);
    // What fitted in the pipe, exactly, then end of file: the daemon closed its end.
    let cap = pipe_size(slow.rx.as_ref().unwrap());
    let got = slow.reply().await;
    assert_eq!(got.len(), cap);
    assert!(got == blob(1 << 20)[..cap], "not the blob's first bytes");
    drop((slow, quick));
    rig.daemon.shutdown().await.unwrap();
}

#[overlap::test(start_paused = true)]
async fn replies_beyond_the_limit_are_dropped_as_busy_until_one_ends() {
    let rig = Rig::start("fifo-bus-busy", EofMode::KeepWriter, |cfg| {
        cfg.max_replies = 2;
    });
    let stalled: Vec<_> = ["s1", "s2"].map(|n| rig.client(n)).into();
    for s in &stalled {
        rig.send(format!("BLOB {} {}\n", s.reply.display(), 1 << 20).as_bytes())
            .await;
    }
    let c = rig.client("c");
    rig.send(format!("PING {}\n", c.reply.display()).as_bytes())
        .await;
    settle().await;
    assert_eq!(rig.daemon.stats().busy, 1);
    let rx = c.rx.as_ref().unwrap();
    assert_eq!(
        rx.try_read(&mut [0u8; 8]).unwrap_err().kind(),
        ErrorKind::WouldBlock,
        "a busy daemon answered"
    );
    until(|| rig.daemon.stats().too_slow == 2, "the stalled replies").await;
    let mut c = rig.client_reopened(c);
    assert_eq!(rig.ask(&mut c, "PING", "").await, "PONG\n");
    drop((stalled, c));
    rig.daemon.shutdown().await.unwrap();
}

#[overlap::test(start_paused = true)]
async fn a_control_fifo_deleted_is_made_again_and_one_replaced_is_followed() {
    let rig = Rig::start("fifo-bus-replace", EofMode::KeepWriter, |_| {});
    // A client that opened the FIFO before it was deleted still gets its record read.
    let mut old = Sender::open(&rig.control).unwrap();
    std::fs::remove_file(&rig.control).unwrap();
    old.write_all(b"POST into the deleted FIFO\n")
        .await
        .unwrap();
    until(|| rig.daemon.stats().recreated == 1, "the FIFO made again").await;
    assert_eq!(rig.daemon.posts(), ["into the deleted FIFO"]);
    drop(old);
    let mut c = rig.client("c");
    assert_eq!(rig.ask(&mut c, "PING", "").await, "PONG\n");
    // Another FIFO renamed over it (an installer, say): followed, not removed at the end.
    let other = rig.dir.join("other");
    mkfifo(&other);
    std::fs::rename(&other, &rig.control).unwrap();
    until(|| rig.daemon.stats().replaced == 1, "the new FIFO").await;
    let mut c = rig.client_reopened(c);
    assert_eq!(
        rig.ask(&mut c, "ECHO", "on the new one").await,
        "on the new one\n"
    );
    assert_eq!(rig.daemon.stats().reopens, 2);
    // A regular file over it: the daemon stops, saying so.
    let file = rig.dir.join("file");
    std::fs::write(&file, b"not a fifo").unwrap();
    std::fs::rename(&file, &rig.control).unwrap();
    let Rig {
        dir,
        control,
        daemon,
    } = rig;
    let (res, _) = within(HANG, daemon.finished(), "the daemon stopping").await;
    let err = res.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.to_string()
            .contains(&format!("{} is a regular file", control.display())),
        "{err}"
    );
    assert_eq!(std::fs::read(&control).unwrap(), b"not a fifo");
    drop(c);
    assert_eq!(fds_under(dir.path()), Vec::<String>::new());
}

#[overlap::test]
async fn a_control_path_that_is_no_fifo_fails_clearly() {
    let dir = TempDir::new("fifo-bus-not-fifo");
    let file = dir.join("file");
    std::fs::write(&file, b"data").unwrap();
    let sock = dir.join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let cases = [
        (file.clone(), "a regular file"),
        (dir.path().to_path_buf(), "a directory"),
        (sock.clone(), "a Unix socket"),
    ];
    for (path, what) in &cases {
        let err = Daemon::start(Config::new(path.clone(), EofMode::KeepWriter))
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert_eq!(
            err.to_string(),
            format!("control path {} is {what}, not a FIFO", path.display())
        );
        // overlap's own opens say so too, naming the path, read-write or not.
        for rw in [false, true] {
            let err = OpenOptions::new()
                .read_write(rw)
                .open_receiver(path)
                .unwrap_err();
            let want = if rw && what == &"a directory" {
                ErrorKind::IsADirectory
            } else {
                ErrorKind::InvalidInput
            };
            assert_eq!(err.kind(), want, "{what}, rw {rw}: {err}");
            assert!(
                err.to_string().contains(&path.display().to_string()),
                "{err}"
            );
        }
    }
    // The workaround before `pipe::OpenOptions`, std's O_RDWR open: a socket's path gives
    // the kernel's bare ENXIO, "No such device or address", naming nothing.
    let err = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&sock)
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENXIO));
    assert_eq!(std::fs::read(&file).unwrap(), b"data");
    assert_eq!(fds_under(dir.path()), Vec::<String>::new());
}

#[overlap::test(start_paused = true)]
async fn dump_copies_a_fifo_into_a_file_within_its_limits() {
    let rig = Rig::start("fifo-bus-dump", EofMode::KeepWriter, |cfg| {
        cfg.max_dump = 100_000;
    });
    let source = rig.dir.join("source");
    mkfifo(&source);
    let out = rig.dir.join("dump.out");
    let mut c = rig.client("c");
    let dump = |c: &super::client::Client| {
        format!(
            "DUMP {} {} {}\n",
            c.reply.display(),
            source.display(),
            out.display()
        )
    };
    // 60,000 bytes, within the limit: the file holds exactly them.
    let data = blob(60_000);
    rig.send(dump(&c).as_bytes()).await;
    let wrote = produce(&source, &data).await;
    assert!(wrote.is_ok(), "{wrote:?}");
    assert_eq!(c.reply().await, b"DUMPED 60000\n");
    assert!(std::fs::read(&out).unwrap() == data);
    // 300,000: cut at the limit, the producer sees the FIFO close, the file goes.
    let mut c = rig.client_reopened(c);
    rig.send(dump(&c).as_bytes()).await;
    let wrote = produce(&source, &blob(300_000)).await;
    assert_eq!(wrote.unwrap_err().kind(), ErrorKind::BrokenPipe);
    assert_eq!(c.reply().await, b"ERR dump: over 100000 bytes\n");
    assert!(!out.exists());
    // A producer that never comes: the dump's deadline.
    let mut c = rig.client_reopened(c);
    rig.send(dump(&c).as_bytes()).await;
    assert_eq!(c.reply().await, b"ERR dump: timed out\n");
    // A source that is no FIFO.
    let mut c = rig.client_reopened(c);
    let file = rig.dir.join("plain");
    std::fs::write(&file, b"plain").unwrap();
    let got = rig
        .ask(
            &mut c,
            "DUMP",
            &format!("{} {}", file.display(), out.display()),
        )
        .await;
    assert_eq!(
        got,
        format!(
            "ERR dump: failed to open {}: not a pipe or FIFO\n",
            file.display()
        )
    );
    assert_eq!(rig.daemon.stats().dumps, 1);
    drop(c);
    rig.daemon.shutdown().await.unwrap();
    assert_eq!(fds_under(rig.dir.path()), Vec::<String>::new());
}

/// Writes `data` into the FIFO `source` once the dump has it open, and closes it.
async fn produce(source: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    let mut tx = loop {
        match Sender::open(source) {
            Ok(tx) => break tx,
            Err(e) if overlap::io::raw_os_error(&e) == Some(libc::ENXIO) => {
                sleep(Duration::from_millis(10)).await
            }
            Err(e) => panic!("{e}"),
        }
    };
    within(HANG, tx.write_all(data), "producing").await
}

#[overlap::test(start_paused = true)]
async fn a_shutdown_in_the_middle_of_everything_leaves_no_fd_and_no_task() {
    let before = overlap::metrics();
    let rig = Rig::start("fifo-bus-shutdown", EofMode::KeepWriter, |_| {});
    // A reply being retried, a reply stalled on a full pipe, a dump waiting for its
    // producer, a half record, and a client still holding the control FIFO open.
    let never = rig.client_unopened("never");
    let dumper = rig.client_unopened("dumper");
    let mut slow = rig.client("slow");
    let source = rig.dir.join("source");
    mkfifo(&source);
    for line in [
        format!("PING {}\n", never.reply.display()),
        format!("BLOB {} {}\n", slow.reply.display(), 1 << 20),
        format!(
            "DUMP {} {} {}\n",
            dumper.reply.display(),
            source.display(),
            rig.dir.join("out").display()
        ),
    ] {
        rig.send(line.as_bytes()).await;
    }
    let mut holder = Sender::open(&rig.control).unwrap();
    holder.write_all(b"ECHO /half").await.unwrap();
    sleep(Duration::from_millis(200)).await;
    let during = overlap::metrics();
    assert_eq!(during.tasks_alive, before.tasks_alive + 4, "daemon, 3 jobs");
    let Rig {
        dir,
        control,
        daemon,
    } = rig;
    let s = within(HANG, daemon.shutdown(), "the shutdown")
        .await
        .unwrap();
    assert_eq!((s.delivered, s.too_slow, s.dumps), (0, 0, 0), "{s:?}");
    assert!(!control.exists(), "the FIFO it made is removed");
    // The stalled reply's end is closed: the client reads what fitted, then end of file.
    let got = slow.reply().await;
    assert!(!got.is_empty() && got.len() < 1 << 20);
    // Only the tests' own ends are left, then none.
    // The daemon's own write end is gone with its read end: nobody reads any more.
    let err = holder.write_all(b"\n").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe);
    drop((holder, slow, never, dumper));
    assert_eq!(fds_under(dir.path()), Vec::<String>::new());
    let after = overlap::metrics();
    assert_eq!(after.tasks_alive, before.tasks_alive);
    assert_eq!(after.registered_fds, before.registered_fds);
}
