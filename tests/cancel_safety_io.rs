//! Cancel safety beyond sockets and sync: pipes and splice, files (whose jobs run on the
//! pool and finish after a dropped future), `io::Unblock`, child processes, signals, timers
//! and `AsyncFd`. Each call is polled by hand until it waits, then dropped (as a `select!`
//! branch that lost, or a `timeout`, drops it), and the object is checked to lose nothing
//! and to go on working: a job a dropped read started delivers its bytes to the next read,
//! a dropped `wait` leaves the exit status for the next one, a dropped `recv` or `tick`
//! leaves the arrival or the tick for the next.

mod support;

use std::io::SeekFrom;
use std::os::fd::AsRawFd;
use std::time::Duration;

use overlap::fs::File;
use overlap::io::{AsyncReadExt, AsyncWriteExt, Unblock};
use overlap::net::UnixStream;
use overlap::signal::{signal, SignalKind};
use overlap::time::{interval, Instant};
use overlap::AsyncFd;
use support::{abandon, abandon_slot, eventfd, eventfd_add, pattern, within, ManualTask, TempDir};

const HANG: Duration = Duration::from_secs(10);

#[overlap::test]
async fn pipe_dropped_read_and_splices_lose_no_byte() {
    let (mut tx, mut rx) = overlap::pipe::pipe().unwrap();
    let mut buf = [0u8; 16];
    abandon_slot(rx.read(&mut buf));
    abandon(rx.readable());
    tx.write_all(b"piped").await.unwrap();
    let mut got = [0u8; 5];
    within(HANG, rx.read_exact(&mut got), "lost").await.unwrap();
    assert_eq!(&got, b"piped");

    // Socket to pipe and pipe to socket.
    let (mut a, b) = UnixStream::pair().unwrap();
    abandon(tx.splice_from(&b, 1024));
    a.write_all(b"spliced in").await.unwrap();
    let n = within(HANG, tx.splice_from(&b, 1024), "lost")
        .await
        .unwrap();
    assert_eq!(n, 10);
    let mut got = [0u8; 10];
    rx.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"spliced in");

    abandon(rx.splice_to(&a, 1024));
    tx.write_all(b"out").await.unwrap();
    let n = within(HANG, rx.splice_to(&a, 1024), "lost").await.unwrap();
    assert_eq!(n, 3);
    let mut b = b;
    let mut got = [0u8; 3];
    b.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"out");
}

#[overlap::test]
async fn pipe_dropped_write_to_a_full_pipe_writes_nothing() {
    let (mut tx, mut rx) = overlap::pipe::pipe().unwrap();
    let chunk = pattern(64 * 1024);
    let mut filled = 0;
    loop {
        match tx.try_write(&chunk) {
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    abandon(tx.writable());
    abandon_slot(tx.write(b"never"));
    let mut drained = vec![0u8; filled];
    within(HANG, rx.read_exact(&mut drained), "lost")
        .await
        .unwrap();
    tx.write_all(b"next").await.unwrap();
    let mut got = [0u8; 4];
    rx.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"next", "the dropped write wrote");
}

#[overlap::test]
async fn file_read_dropped_with_its_job_in_flight_keeps_the_bytes() {
    let dir = TempDir::new("cancel-file");
    let path = dir.join("data");
    let data = pattern(300_000);
    std::fs::write(&path, &data).unwrap();

    let mut file = File::open(&path).await.unwrap();
    let mut buf = vec![0u8; 1000];
    abandon_slot(file.read(&mut buf)); // its job reads ahead on the pool
    let mut all = Vec::new();
    within(HANG, file.read_to_end(&mut all), "read stalled")
        .await
        .unwrap();
    assert!(
        all == data,
        "bytes lost or repeated: {} of {}",
        all.len(),
        data.len()
    );

    // A dropped seek still moves the offset (documented), and the read after it waits for it.
    let mut file = File::open(&path).await.unwrap();
    abandon_slot(file.seek(SeekFrom::Start(1000)));
    let mut got = vec![0u8; 100];
    within(HANG, file.read_exact(&mut got), "read stalled")
        .await
        .unwrap();
    assert_eq!(got, &data[1000..1100]);
}

#[overlap::test]
async fn read_dir_dropped_next_entry_loses_no_entry() {
    let dir = TempDir::new("cancel-readdir");
    for i in 0..50 {
        std::fs::write(dir.join(&format!("f{i}")), b"").unwrap();
    }
    let mut entries = overlap::fs::read_dir(dir.path()).await.unwrap();
    abandon_slot(entries.next_entry());
    let mut names = Vec::new();
    while let Some(e) = within(HANG, entries.next_entry(), "stalled").await.unwrap() {
        names.push(e.file_name().into_string().unwrap());
    }
    names.sort_by_key(|n| n[1..].parse::<u32>().unwrap());
    let want: Vec<_> = (0..50).map(|i| format!("f{i}")).collect();
    assert_eq!(names, want);
}

#[overlap::test]
async fn unblock_read_dropped_with_its_job_in_flight_keeps_the_bytes() {
    let (mut near, far) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut reader = Unblock::new(far); // blocking reads, on the pool
    let mut buf = [0u8; 16];
    abandon_slot(reader.read(&mut buf)); // the job now blocks in read(2)
    std::io::Write::write_all(&mut near, b"fetched").unwrap();
    let mut got = [0u8; 7];
    within(
        HANG,
        reader.read_exact(&mut got),
        "the job's bytes were lost",
    )
    .await
    .unwrap();
    assert_eq!(&got, b"fetched");
}

#[overlap::test]
async fn child_wait_dropped_leaves_the_status_for_the_next_wait() {
    let mut child = overlap::process::Command::new("sleep")
        .arg("1000")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(child.stdin.is_some());
    abandon(child.wait());
    assert!(
        child.stdin.is_none(),
        "a dropped wait closes stdin all the same"
    );
    let pid = child.id().unwrap() as libc::pid_t;
    // SAFETY: kill takes no pointers; `pid` is our unreaped child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = within(HANG, child.wait(), "the exit was lost")
        .await
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    assert_eq!(child.wait().await.unwrap().signal(), Some(libc::SIGTERM));

    // kill: dropped, the signal is sent and a later wait reaps.
    let mut child = overlap::process::Command::new("sleep")
        .arg("1000")
        .spawn()
        .unwrap();
    let task = ManualTask::default();
    let mut kill = Box::pin(child.kill());
    let _ = task.poll(kill.as_mut()); // waiting, or done if the child died at once
    drop(kill);
    let status = within(HANG, child.wait(), "the kill was lost")
        .await
        .unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
}

#[overlap::test]
async fn signal_dropped_recv_leaves_the_arrival() {
    let mut usr1 = signal(SignalKind::user_defined1()).unwrap();
    abandon_slot(usr1.recv()); // its waker stays in the one slot, as tokio's does
                               // SAFETY: raise takes no pointers; SIGUSR1 is handled by `usr1`.
    assert_eq!(unsafe { libc::raise(libc::SIGUSR1) }, 0);
    within(HANG, usr1.recv(), "the arrival was lost").await;
}

#[overlap::test(start_paused = true)]
async fn interval_dropped_tick_loses_no_tick() {
    let period = Duration::from_millis(10);
    let start = Instant::now();
    let mut ticks = interval(period);
    assert_eq!(ticks.tick().await, start);
    abandon_slot(ticks.tick());
    overlap::time::advance(period).await;
    assert_eq!(ticks.tick().await, start + period, "a tick was skipped");
    abandon_slot(ticks.tick());
    assert_eq!(ticks.tick().await, start + 2 * period);
}

#[overlap::test]
async fn timeout_and_async_fd_dropped_waits_lose_nothing() {
    let (tx, mut rx) = overlap::sync::mpsc::channel::<u8>(1);
    abandon_slot(overlap::time::timeout(HANG, rx.recv()));
    tx.send(1).await.unwrap();
    assert_eq!(rx.recv().await, Some(1));

    let mut fd = AsyncFd::new(eventfd()).unwrap();
    abandon(fd.readable_mut());
    abandon(fd.ready(overlap::io::Interest::READABLE));
    let read_counter = |fd: &std::os::fd::OwnedFd| {
        let mut counter = [0u8; 8];
        support::read(fd.as_raw_fd(), &mut counter).map(|_| u64::from_ne_bytes(counter))
    };
    abandon(fd.async_io(overlap::io::Interest::READABLE, read_counter));
    abandon(fd.async_io_mut(overlap::io::Interest::READABLE, |fd| read_counter(fd)));
    abandon(fd.readable());
    eventfd_add(fd.get_ref(), 3);
    let mut guard = within(HANG, fd.readable(), "the edge was lost")
        .await
        .unwrap();
    let mut counter = [0u8; 8];
    let n = support::read(fd.get_ref().as_raw_fd(), &mut counter).unwrap();
    assert_eq!((n, u64::from_ne_bytes(counter)), (8, 3));
    guard.clear_ready();
}

#[overlap::test]
async fn read_to_end_dropped_keeps_the_bytes_read_so_far() {
    let (mut tx, mut rx) = overlap::pipe::pipe().unwrap();
    tx.write_all(b"first part, ").await.unwrap();
    within(HANG, rx.readable(), "no read edge").await.unwrap();
    let mut buf = b"kept: ".to_vec();
    abandon_slot(overlap::io::read_to_end(&mut rx, &mut buf)); // reads, then waits
    assert_eq!(
        buf, b"kept: first part, ",
        "the bytes read were not left in the buffer"
    );
    tx.write_all(b"then the rest").await.unwrap();
    drop(tx);
    let n = within(HANG, overlap::io::read_to_end(&mut rx, &mut buf), "stalled").await;
    assert_eq!(n.unwrap(), 13);
    assert_eq!(buf, b"kept: first part, then the rest");
}

#[overlap::test]
async fn duplex_dropped_read_and_write_move_nothing() {
    let (mut a, mut b) = overlap::io::duplex(8);
    let mut buf = [0u8; 8];
    abandon_slot(b.read(&mut buf));
    a.write_all(b"12345678").await.unwrap(); // full
    abandon_slot(a.write(b"never"));
    let mut got = [0u8; 8];
    within(HANG, b.read_exact(&mut got), "lost").await.unwrap();
    assert_eq!(&got, b"12345678");
    a.write_all(b"next").await.unwrap();
    let mut got = [0u8; 4];
    b.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"next", "the dropped write wrote");
}
