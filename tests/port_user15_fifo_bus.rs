//! A user's FIFO control bus (the kind of local IPC a music player's or window manager's
//! control FIFO, or a log collector reading named pipes, does), sketched as one would for
//! tokio with `tokio::net::unix::pipe`, then written for overlap by changing `tokio::` to
//! `overlap::`: the protocol (`port_user15_fifo_bus/proto.rs`), cutting the byte stream
//! into records of at most `PIPE_BUF` bytes (`records.rs`), the control FIFO made, opened
//! and watched (`control.rs`), the replies through the clients' own FIFOs (`reply.rs`),
//! the daemon's settings, counters and handle (`daemon.rs`) and its loop (`serve.rs`); the
//! tests' clients (`client.rs`) and the fault tests (`faults.rs`).
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use tokio::net::unix::pipe::{OpenOptions, Receiver, Sender};
//! use tokio_util::{sync::CancellationToken, task::TaskTracker};
//!
//! // The control FIFO: made if missing (libc::mkfifo; tokio has none), then opened
//! // read-write, so that the daemon is a writer too and never reads end of file when the
//! // last client leaves (a read of 0 at end of file comes back at once, for ever: a loop
//! // that reads on spins). The other way: read to end of file, then open it again.
//! let mut rx: Receiver = OpenOptions::new().read_write(true).open_receiver(&path)?;
//! let mut rx: Receiver = OpenOptions::new().open_receiver(&path)?; // or: the Reopen mode
//! loop {
//!     tokio::select! {
//!         biased;
//!         _ = token.cancelled() => break,
//!         r = rx.read(&mut buf) => match r? {
//!             0 => { records.discard_partial(); rx = OpenOptions::new().open_receiver(&path)?; }
//!             n => for rec in records.feed(&buf[..n]) { handle(rec) },  // <= PIPE_BUF each
//!         },
//!         _ = sleep_until(partial_since + partial_timeout), if partial => records.discard_partial(),
//!         _ = watch.tick() => check_path(&path, ident)?,  // deleted: mkfifo again; replaced: reopen
//!     }
//! }
//! // A reply: the client's FIFO opened for writing without blocking. No reader yet (or no
//! // more) is ENXIO: try again until a deadline. Then written under a deadline of its own.
//! let tx = loop {
//!     match OpenOptions::new().open_sender(&reply) {
//!         Ok(tx) => break tx,
//!         Err(e) if e.raw_os_error() == Some(libc::ENXIO) && Instant::now() < deadline => {
//!             sleep(retry).await
//!         }
//!         Err(e) => return gone_or_refused(e),
//!     }
//! };
//! match timeout(write_deadline, tx.write_all(&bytes)).await {
//!     Ok(Ok(())) => Delivered, Ok(Err(_)) => Gone, Err(_) => TooSlow,
//! }
//! // Each reply in a task of its own on a TaskTracker, at most max_replies (a Semaphore's
//! // try_acquire_owned); DUMP copies a FIFO into a file with tokio::io::copy and take().
//! tracker.spawn(async move { let _permit = permit; select! { _ = token.cancelled() => {}, _ = deliver() => {} } });
//! // Shutdown: token.cancel(); tracker.close(); tracker.wait().await; remove the FIFO.
//! ```
//!
//! The tests check, on real FIFOs in a temp dir (the paused clock for every timeout):
//! clients coming and going, each answered through its own reply FIFO with exact bytes,
//! the bus holding every `POST` in order (`clients_come_and_go_...`); holding a write end,
//! a quiet minute with exactly no read (`holding_a_write_end_...`); reopening at end of
//! file, exactly one read of the record and one of 0 per client, and none while quiet,
//! and no end of file between overlapping writers (`reopening_at_each_end_of_file_...`);
//! the first version's loop, reading on after a 0, making 10,000 reads of 0 with no time
//! passing, which is why the daemon does neither (`reading_on_at_end_of_file_spins_...`);
//! 900 records of 40 to 4,096 bytes from six blocking writer threads and 100 from two
//! shell processes, all arriving once, none mixed with another (`records_from_many_...`);
//! a record of exactly 4,096 bytes accepted, 4,097 and 20,000 refused with an answer to
//! the reply FIFO they name and 9,000 with none to name only counted, the record right
//! after each read as usual (`an_oversized_record_...`); eight malformed records counted,
//! answered where a known verb names an absolute reply FIFO (`malformed_records_...`); a
//! half record whose client left dropped after `partial_timeout` (holding a write end) or
//! at end of file (reopening), the next client served (`half_a_record_...`). In
//! `faults.rs`: a reply FIFO opened late answered after exactly seven `ENXIO`s, one never
//! opened given up after the forty-one opens of its deadline, a missing one at once; reply
//! paths that are a regular file, a Unix socket or a directory never written and never
//! retried; a client not reading a 1 MiB reply dropped at its deadline while another is
//! answered, and reading exactly the pipe's capacity (`F_GETPIPE_SZ`) of it, then end of
//! file; replies past `max_replies` dropped as busy until one ends; the control FIFO
//! deleted (made again, a record written into the deleted one still read) and replaced
//! by another FIFO (followed), then by a regular file (the daemon stops with
//! `InvalidInput` naming it); a control path that is a regular file, a directory or a
//! Unix socket refused at start with an error saying which; a dump of 60,000 bytes into a
//! file exact, one past `max_dump` cut (the producer gets `BrokenPipe`, the file goes), one
//! whose producer never comes timed out, and one from a regular file refused; a shutdown
//! in the middle of a retried reply, a stalled one, a dump and a half record, ending its
//! four tasks, closing every fd (no fd of the process leads into the test's directory,
//! the runtime's registered fds as before) and removing the FIFO it made.
//!
//! # What porting it found missing
//!
//! - tokio's `pipe::OpenOptions` (`read_write`, `unchecked`, `open_receiver`,
//!   `open_sender`). The README's way round it, a FIFO opened `O_RDWR` with
//!   `std::fs::OpenOptions` and handed to `Receiver::from_owned_fd`, works, but its errors
//!   name no path and a Unix socket's is the kernel's bare `ENXIO` ("No such device or
//!   address"), which a daemon retrying reply FIFOs takes for "no reader yet". Added:
//!   `overlap::pipe::OpenOptions` with `read_write`, `open_receiver` and `open_sender`,
//!   whose errors are those of `Receiver::open`/`Sender::open` (see
//!   `tests/pipe_open_options.rs`). Still missing: `unchecked(true)`, which lets a
//!   character device through; overlap always checks the file type (this program wants
//!   that check).
//! - Behaves differently: `Sender::open`'s errors name the path, so `e.raw_os_error()` is
//!   `None`, and tokio's `Err(e) if e.raw_os_error() == Some(libc::ENXIO)` compiles and
//!   silently never matches: a reply FIFO opened late would be refused at once instead of
//!   retried. overlap's docs say to read it with `overlap::io::raw_os_error(&e)`, which
//!   the port does (`reply.rs`); a user porting by changing `tokio::` finds out only
//!   from a failing retry (the break-it check below shows the test catching it).
//! - Behaves differently, in overlap's favour: a Unix socket's path opened as a FIFO is
//!   `InvalidInput`, where tokio passes on `ENXIO`; tokio's daemon would retry it for the
//!   whole open deadline as a client not there yet.
//! - No splice from a FIFO into a regular file: `Receiver::splice_to` takes a `Registered`
//!   destination (a pipe or socket; epoll refuses regular files) and `fs::File::send_to`
//!   goes the other way (file to socket or pipe), so `DUMP` is `io::copy` through a
//!   buffer, as it would be with tokio, which has no splice at all. A pool-run
//!   `splice(2)` into a `fs::File`, like `send_to`, would be the addition; not made here.
//! - Not missing, the same in both: no `mkfifo` (libc's here, as a tokio program would use
//!   libc's or nix's); no way to wait for a FIFO's next writer after end of file, so a
//!   reader that reads on spins (both runtimes' reads return 0 at once) and a client
//!   reusing its reply receiver must open it again; a FIFO's identity needs an `fstat`
//!   of the fd, which neither end offers (`/proc/self/fd` here). A `select!` branch given
//!   an async block by name must be `{ work }` (the README's one `select!` difference; the
//!   compile error says what to write).
//!
//! What the port changed, against tokio: the imports; `Rc` and `RefCell` for the shared
//! counters where tokio's `spawn` needs `Arc` and a lock; `overlap::io::raw_os_error`.
//!
//! Holding a write end has a cost in both runtimes that the tests show: the daemon never
//! sees a client leave, so a half record waits for `partial_timeout`, and a whole record
//! written within it is glued to the half one and lost; reopening at end of file drops
//! the half record at once, but a client's non-blocking open can meet `ENXIO` in the
//! moment between the two opens.
//!
//! The tests were run against the program broken on purpose, one fault at a time, and
//! each fault failed a test: `ENXIO` read with tokio's `e.raw_os_error()` (the late reply
//! never answered, and the shutdown test's retrying reply task ending at once); no
//! timer for a half record (it stays, glued to the next); and `pipe::OpenOptions` ignoring
//! `read_write` (four tests here and three in `pipe_open_options.rs`).

mod support;

#[path = "port_user15_fifo_bus/client.rs"]
mod client;
#[path = "port_user15_fifo_bus/control.rs"]
mod control;
#[path = "port_user15_fifo_bus/daemon.rs"]
mod daemon;
#[path = "port_user15_fifo_bus/faults.rs"]
mod faults;
#[path = "port_user15_fifo_bus/proto.rs"]
mod proto;
#[path = "port_user15_fifo_bus/records.rs"]
mod records;
#[path = "port_user15_fifo_bus/reply.rs"]
mod reply;
#[path = "port_user15_fifo_bus/serve.rs"]
mod serve;

use std::io::Write as _;
use std::time::Duration;

use overlap::io::AsyncWriteExt;

use client::{fds_under, Rig, HANG};
use control::{EofMode, SPIN_GUARD};
use proto::MAX_RECORD;
use support::{until, within};

#[overlap::test(start_paused = true)]
async fn clients_come_and_go_and_each_gets_its_own_answer() {
    let rig = Rig::start("fifo-bus-basic", EofMode::KeepWriter, |_| {});
    let mut a = rig.client("a");
    let mut b = rig.client("b");
    assert_eq!(rig.ask(&mut a, "PING", "").await, "PONG\n");
    assert_eq!(rig.ask(&mut b, "ECHO", "hello bus").await, "hello bus\n");
    for text in ["one", "two words", "three"] {
        rig.send(format!("POST {text}\n").as_bytes()).await;
    }
    // A client answered twice through one reply FIFO: it opened it again for the second.
    let mut a = rig.client_reopened(a);
    assert_eq!(
        rig.ask(&mut a, "STATS", "").await,
        "records=6 posts=3 malformed=0 oversized=0 partial=0\n"
    );
    assert_eq!(rig.daemon.posts(), ["one", "two words", "three"]);
    let s = rig.daemon.stats();
    assert_eq!((s.delivered, s.gone, s.busy, s.enxio), (3, 0, 0, 0));
    assert_eq!((s.eof_reads, s.reopens), (0, 0), "{s:?}");
    drop((a, b));
    rig.daemon.shutdown().await.unwrap();
    assert!(
        !rig.control.exists(),
        "the daemon made the FIFO and removes it"
    );
    assert_eq!(fds_under(rig.dir.path()), Vec::<String>::new());
}

#[overlap::test(start_paused = true)]
async fn holding_a_write_end_the_daemon_waits_between_clients_without_reading() {
    let rig = Rig::start("fifo-bus-keep", EofMode::KeepWriter, |_| {});
    let mut a = rig.client("a");
    assert_eq!(rig.ask(&mut a, "PING", "").await, "PONG\n");
    let polls = overlap::metrics().task_polls;
    // A minute with no client: sixty path checks, and not one read.
    overlap::time::sleep(Duration::from_secs(60)).await;
    let s = rig.daemon.stats();
    assert_eq!((s.reads, s.eof_reads), (1, 0), "{s:?}");
    let polls = overlap::metrics().task_polls - polls;
    assert!(polls <= 3 * 61, "{polls} polls in a quiet minute");
    let mut a = rig.client_reopened(a);
    assert_eq!(rig.ask(&mut a, "ECHO", "again").await, "again\n");
    assert_eq!(rig.daemon.stats().reads, 2);
    drop(a);
    rig.daemon.shutdown().await.unwrap();
}

#[overlap::test(start_paused = true)]
async fn reopening_at_each_end_of_file_the_daemon_waits_quietly_too() {
    let rig = Rig::start("fifo-bus-reopen", EofMode::Reopen, |_| {});
    for round in 1..=3u64 {
        let mut c = rig.client(&format!("c{round}"));
        assert_eq!(rig.ask(&mut c, "PING", "").await, "PONG\n");
        // The client's close is end of file: one read of its record, one of 0.
        until(|| rig.daemon.stats().reopens == round, "the reopen").await;
        let s = rig.daemon.stats();
        assert_eq!((s.reads, s.eof_reads), (2 * round, round), "{s:?}");
    }
    overlap::time::sleep(Duration::from_secs(60)).await;
    let s = rig.daemon.stats();
    assert_eq!((s.reads, s.eof_reads, s.reopens), (6, 3, 3), "{s:?}");
    // Writers that overlap see no end of file between them.
    let mut first = overlap::pipe::Sender::open(&rig.control).unwrap();
    let mut c = rig.client("c4");
    first.write_all(b"POST early\n").await.unwrap();
    assert_eq!(rig.ask(&mut c, "PING", "").await, "PONG\n");
    assert_eq!(rig.daemon.stats().reopens, 3);
    drop(first);
    until(|| rig.daemon.stats().reopens == 4, "the last reopen").await;
    assert_eq!(rig.daemon.posts(), ["early"]);
    drop(c);
    rig.daemon.shutdown().await.unwrap();
    assert_eq!(fds_under(rig.dir.path()), Vec::<String>::new());
}

#[overlap::test(start_paused = true)]
async fn reading_on_at_end_of_file_spins_which_is_why_the_daemon_does_not() {
    let rig = Rig::start("fifo-bus-naive", EofMode::Naive, |_| {});
    let mut a = rig.client("a");
    assert_eq!(rig.ask(&mut a, "PING", "").await, "PONG\n");
    let Rig { daemon, .. } = rig;
    let (res, s) = within(HANG, daemon.finished(), "the spin guard").await;
    let err = res.unwrap_err();
    assert!(err.to_string().contains("reads of 0 in a row"), "{err}");
    // Every one of them at once: no writer came, and no time passed.
    assert_eq!(
        (s.reads, s.eof_reads),
        (1 + SPIN_GUARD, SPIN_GUARD),
        "{s:?}"
    );
}

#[overlap::test]
async fn records_from_many_threads_and_processes_never_interleave() {
    let rig = Rig::start("fifo-bus-atomic", EofMode::KeepWriter, |_| {});
    const THREADS: u32 = 6;
    const PER_THREAD: u32 = 150;
    const SHELLS: u32 = 2;
    const PER_SHELL: u32 = 50;
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let path = rig.control.clone();
            std::thread::spawn(move || {
                // A blocking writer, as any tool's: each record one write(2).
                let mut fifo = std::fs::OpenOptions::new().write(true).open(path).unwrap();
                for seq in 0..PER_THREAD {
                    fifo.write_all(&threaded_record(t, seq)).unwrap();
                }
            })
        })
        .collect();
    let mut shells = Vec::new();
    for sh in 0..SHELLS {
        let script = format!(
            "i=0; while [ $i -lt {PER_SHELL} ]; do printf 'POST sh{sh} %s\\n' $i; i=$((i+1)); done > '{}'",
            rig.control.display()
        );
        shells.push(
            overlap::process::Command::new("sh")
                .args(["-c", &script])
                .spawn()
                .unwrap(),
        );
    }
    for mut sh in shells {
        assert!(sh.wait().await.unwrap().success());
    }
    let total = (THREADS * PER_THREAD + SHELLS * PER_SHELL) as u64;
    until(|| rig.daemon.stats().posts == total, "every record").await;
    for t in threads {
        t.join().unwrap();
    }
    let mut seen = std::collections::HashSet::new();
    for post in rig.daemon.posts() {
        let record = format!("POST {post}\n");
        let mut words = post.split(' ');
        let key = (
            words.next().unwrap().to_string(),
            words.next().unwrap().to_string(),
        );
        if let Some(t) = key.0.strip_prefix('t') {
            let (t, seq) = (t.parse().unwrap(), key.1.parse().unwrap());
            assert!(
                record.as_bytes() == threaded_record(t, seq),
                "a mixed record: {}",
                &record[..80]
            );
        }
        assert!(seen.insert(key), "a record twice: {post}");
    }
    let s = rig.daemon.stats();
    assert_eq!(
        (s.records, s.malformed, s.oversized, s.partial),
        (total, 0, 0, 0)
    );
    rig.daemon.shutdown().await.unwrap();
}

/// Thread `t`'s record `seq`: 40 to `MAX_RECORD` bytes (some exactly that), its filler
/// derived from both, so a record cut or mixed with another shows.
fn threaded_record(t: u32, seq: u32) -> Vec<u8> {
    let head = format!("POST t{t} {seq} ");
    let len = match seq % 7 {
        0 => MAX_RECORD,
        k => 40 + ((t * 977 + seq * 131 + k * 17) as usize % (MAX_RECORD - 40)),
    };
    let mut record = head.into_bytes();
    let fill = len - record.len() - 1;
    record.extend((0..fill).map(|i| b'a' + ((i as u32 + t * 7 + seq) % 26) as u8));
    record.push(b'\n');
    record
}

#[overlap::test(start_paused = true)]
async fn an_oversized_record_is_refused_and_the_stream_goes_on() {
    let rig = Rig::start("fifo-bus-oversized", EofMode::KeepWriter, |_| {});
    let mut a = rig.client("a");
    // Exactly PIPE_BUF with its newline: one atomic write, accepted.
    let head = format!("ECHO {} ", a.reply.display());
    let text = "x".repeat(MAX_RECORD - head.len() - 1);
    rig.send(format!("{head}{text}\n").as_bytes()).await;
    assert_eq!(a.reply().await, format!("{text}\n").as_bytes());
    // One byte more: refused, and told so.
    let mut a = rig.client_reopened(a);
    rig.send(format!("{head}{text}x\n").as_bytes()).await;
    assert_eq!(a.reply().await, b"ERR record over 4096 bytes\n");
    // Far more (a write the kernel need not keep whole), then a good record right after.
    let mut a = rig.client_reopened(a);
    let mut b = rig.client("b");
    let mut big = format!("{head}{}\n", "y".repeat(20_000)).into_bytes();
    big.extend_from_slice(format!("PING {}\n", b.reply.display()).as_bytes());
    rig.send(&big).await;
    assert_eq!(a.reply().await, b"ERR record over 4096 bytes\n");
    assert_eq!(b.reply().await, b"PONG\n");
    // With no reply FIFO to tell, it is only counted.
    rig.send(format!("POST {}\nPOST after\n", "z".repeat(9000)).as_bytes())
        .await;
    let mut b = rig.client_reopened(b);
    assert_eq!(
        rig.ask(&mut b, "STATS", "").await,
        "records=4 posts=1 malformed=0 oversized=3 partial=0\n"
    );
    assert_eq!(rig.daemon.posts(), ["after"]);
    drop((a, b));
    rig.daemon.shutdown().await.unwrap();
}

#[overlap::test(start_paused = true)]
async fn malformed_records_are_counted_and_answered_where_a_reply_fifo_is_named() {
    let rig = Rig::start("fifo-bus-malformed", EofMode::KeepWriter, |_| {});
    let mut c = rig.client("c");
    let r = c.reply.display().to_string();
    let cases: [(Vec<u8>, Option<&str>); 8] = [
        // An unknown verb's arguments mean nothing: no reply FIFO is read from them.
        (format!("FROB {r}\n").into(), None),
        (
            format!("BLOB {r} lots\n").into(),
            Some("ERR BLOB needs a length\n"),
        ),
        (
            format!("PING {r} extra\n").into(),
            Some("ERR wrong arguments\n"),
        ),
        (
            format!("DUMP {r} /only-one\n").into(),
            Some("ERR wrong arguments\n"),
        ),
        (
            [format!("ECHO {r} ").as_bytes(), b"\xff\xfe\n"].concat(),
            Some("ERR not UTF-8\n"),
        ),
        (b"PING relative/reply\n".to_vec(), None),
        (b"POST\n".to_vec(), None),
        (b"\n".to_vec(), None),
    ];
    for (record, answer) in &cases {
        rig.send(record).await;
        if let Some(answer) = answer {
            assert_eq!(String::from_utf8(c.reply().await).unwrap(), *answer);
            c = rig.client_reopened(c);
        }
    }
    let big = format!("BLOB {r} {}\n", (4 << 20) + 1);
    rig.send(big.as_bytes()).await;
    assert_eq!(c.reply().await, b"ERR BLOB over 4194304 bytes\n");
    let mut c = rig.client_reopened(c);
    assert_eq!(
        rig.ask(&mut c, "STATS", "").await,
        "records=10 posts=0 malformed=8 oversized=0 partial=0\n"
    );
    drop(c);
    rig.daemon.shutdown().await.unwrap();
}

#[overlap::test(start_paused = true)]
async fn half_a_record_from_a_client_that_vanished_is_dropped() {
    // Holding a write end, the daemon never sees the client leave: the half record goes
    // after `partial_timeout` with nothing more.
    let rig = Rig::start("fifo-bus-half", EofMode::KeepWriter, |_| {});
    let mut a = rig.client("a");
    rig.send(format!("PING {}", a.reply.display()).as_bytes())
        .await;
    overlap::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rig.daemon.stats().partial, 1);
    let mut b = rig.client("b");
    assert_eq!(rig.ask(&mut b, "PING", "").await, "PONG\n");
    let s = rig.daemon.stats();
    assert_eq!((s.records, s.malformed, s.delivered), (1, 0, 1), "{s:?}");
    // The half client got nothing: its FIFO never had a writer.
    let rx = a.rx.take().unwrap();
    assert_eq!(
        rx.try_read(&mut [0u8; 8]).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
    drop((rx, b));
    rig.daemon.shutdown().await.unwrap();

    // Reopening at end of file, the daemon drops it as the client leaves.
    let rig = Rig::start("fifo-bus-half-eof", EofMode::Reopen, |_| {});
    rig.send(b"ECHO /nowhere half").await;
    until(
        || rig.daemon.stats().partial == 1,
        "the half record dropped",
    )
    .await;
    assert_eq!(rig.daemon.stats().reopens, 1);
    let mut b = rig.client("b");
    assert_eq!(rig.ask(&mut b, "ECHO", "whole").await, "whole\n");
    drop(b);
    rig.daemon.shutdown().await.unwrap();
    assert_eq!(fds_under(rig.dir.path()), Vec::<String>::new());
}
