//! A sweep for wakers left behind, io: sockets, pipes, child processes, files and
//! `Unblock`. Each wait is polled until it waits with a waker that counts its references,
//! then dropped, and its handle dropped: nothing may hold the waker afterwards, neither the
//! drop nor the event it waited for (bytes, a connection, an exit, a pool job's end) may
//! wake it, and a thousand waits with fresh wakers keep at most the one slot's. The
//! exception is futures-io's `read` and `write` on a socket or pipe: poll functions, with
//! no drop to leave by, whose waiters all wait for the direction's next edge (as
//! `TcpStream`'s docs say), which wakes and lets go of every one, as the fd's drop does.
//! Sync and runtime waits are in waker_retention_review_sync.rs and
//! waker_retention_review_runtime.rs.

mod support;

use std::time::Duration;

use overlap::fs::File;
use overlap::io::{AsyncReadExt, AsyncWriteExt, Unblock};
use overlap::net::{TcpListener, TcpStream, UdpSocket, UnixDatagram};
use support::{abandon_slot, any_woken, settle, tasks_still_held, within, ManualTask, TempDir};

const HANG: Duration = Duration::from_secs(20);

#[overlap::test]
async fn tcp_waits_keep_no_waker_once_their_socket_is_dropped() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepts = abandoned_a_thousand!(listener.accept());
    assert_eq!(tasks_still_held(&accepts), 0, "dropped accepts kept wakers");

    let client = TcpStream::connect(addr).await.unwrap();
    let (mut served, _) = listener.accept().await.unwrap();
    let mut buf = [0u8; 8];
    let readable = abandoned_a_thousand!(served.readable());
    let peeks = abandoned_a_thousand!(served.peek(&mut buf));
    assert_eq!(
        tasks_still_held(&readable),
        0,
        "dropped readable waits kept wakers"
    );
    assert_eq!(tasks_still_held(&peeks), 0, "dropped peeks kept wakers");
    // futures-io's `read` is a poll function, with no drop to leave by: its waiters wait
    // until the direction's next edge (see `reads_wait_for_the_next_edge_...`) or, here,
    // until the stream goes.
    let reads = abandoned_a_thousand!(served.read(&mut buf));
    drop(served);
    assert_eq!(
        tasks_still_held(&reads),
        0,
        "the dropped stream kept read wakers"
    );

    // The peer's hang-up, and a new connection, come after the stream is gone.
    drop(client);
    let _next = TcpStream::connect(addr).await.unwrap();
    let (_conn, _) = within(HANG, listener.accept(), "no accept").await.unwrap();
    settle().await;
    assert!(!any_woken(&accepts) && !any_woken(&readable) && !any_woken(&peeks));
}

/// The documented sharing of a socket's poll functions: every task whose read waited is
/// woken by the next edge, a dropped read's too (it cannot leave: a poll function has no
/// drop), and the edge lets go of all of them.
#[overlap::test]
async fn reads_wait_for_the_next_edge_which_wakes_and_lets_go_of_every_one() {
    let (mut client, mut served) = support::tcp_pair().await;
    let mut buf = [0u8; 8];
    let reads = abandoned_a_thousand!(served.read(&mut buf));
    assert_eq!(
        tasks_still_held(&reads),
        1000,
        "one read's waker per task, each once"
    );
    client.write_all(b"edge").await.unwrap();
    let n = within(HANG, served.read(&mut buf), "no bytes")
        .await
        .unwrap();
    assert_eq!(&buf[..n], b"edge");
    assert_eq!(tasks_still_held(&reads), 0, "the edge kept read wakers");
    assert!(
        reads.iter().all(ManualTask::is_woken),
        "a waiter was not woken"
    );

    let (mut tx, mut rx) = overlap::pipe::pipe().unwrap();
    let reads = abandoned_a_thousand!(rx.read(&mut buf));
    assert_eq!(tasks_still_held(&reads), 1000);
    tx.write_all(b"pipe").await.unwrap();
    let n = within(HANG, rx.read(&mut buf), "no bytes").await.unwrap();
    assert_eq!(&buf[..n], b"pipe");
    assert_eq!(tasks_still_held(&reads), 0, "the edge kept read wakers");
}

#[overlap::test]
async fn datagram_receives_keep_no_waker_once_their_socket_is_dropped() {
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = udp.local_addr().unwrap();
    let mut buf = [0u8; 16];
    let udp_tasks = abandoned_a_thousand!(udp.recv_from(&mut buf));
    assert_eq!(
        tasks_still_held(&udp_tasks),
        0,
        "dropped recv_from kept wakers"
    );

    let (unix_a, unix_b) = UnixDatagram::pair().unwrap();
    let unix_tasks = abandoned_a_thousand!(unix_a.recv(&mut buf));
    assert_eq!(tasks_still_held(&unix_tasks), 0, "dropped recv kept wakers");

    let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    assert_eq!(sender.send_to(b"late", to).await.unwrap(), 4);
    assert_eq!(unix_b.send(b"late").await.unwrap(), 4);
    // Both arrive while the sockets live: the dropped receives are not woken for them.
    let (n, from) = within(HANG, udp.recv_from(&mut buf), "lost").await.unwrap();
    assert_eq!(
        (&buf[..n], from),
        (&b"late"[..], sender.local_addr().unwrap())
    );
    assert_eq!(
        within(HANG, unix_a.recv(&mut buf), "lost").await.unwrap(),
        4
    );
    settle().await;
    assert!(!any_woken(&udp_tasks) && !any_woken(&unix_tasks));
}

#[overlap::test]
async fn pipe_reads_and_writes_keep_no_waker_once_their_end_is_dropped() {
    let (mut tx, mut rx) = overlap::pipe::pipe().unwrap();
    let mut buf = [0u8; 8];
    let reads = abandoned_a_thousand!(rx.read(&mut buf));
    drop(rx);
    assert_eq!(
        tasks_still_held(&reads),
        0,
        "the dropped receiver's waker stayed"
    );
    let err = tx.write(b"x").await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "{err}");

    let (mut tx, mut rx) = overlap::pipe::pipe().unwrap();
    let chunk = [7u8; 65536];
    let mut filled = 0;
    while let std::task::Poll::Ready(n) =
        ManualTask::default().poll(std::pin::pin!(tx.write(&chunk)))
    {
        filled += n.unwrap();
    }
    let writable = abandoned_a_thousand!(tx.writable());
    assert_eq!(
        tasks_still_held(&writable),
        0,
        "dropped writable waits kept wakers"
    );
    let writes = abandoned_a_thousand!(tx.write(&chunk));
    drop(tx);
    assert_eq!(
        tasks_still_held(&writes),
        0,
        "the dropped sender's waker stayed"
    );
    let mut all = Vec::new();
    rx.read_to_end(&mut all).await.unwrap();
    assert_eq!(all.len(), filled, "the full pipe's bytes, then end of file");
    assert!(all.iter().all(|&b| b == 7));
    assert!(!any_woken(&writable), "the room made woke a dropped wait");
}

#[overlap::test]
async fn child_waits_keep_no_waker_once_the_child_is_dropped() {
    let mut child = overlap::process::Command::new("sleep")
        .arg("1000")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let waits = abandoned_a_thousand!(child.wait());
    let exits = abandoned_a_thousand!(child.exited());
    assert_eq!(tasks_still_held(&waits), 0, "dropped waits kept wakers");
    assert_eq!(tasks_still_held(&exits), 0, "dropped exited kept wakers");
    drop(child); // kills it; its exit comes after
    let gone = || support::process_state(pid).is_none_or(|state| state == 'Z');
    support::until(gone, "the killed child's exit").await;
    settle().await;
    assert!(
        !any_woken(&waits) && !any_woken(&exits),
        "the exit woke a dropped wait"
    );
}

/// A file read and a directory listing whose jobs queue behind a busy pool, dropped with
/// their file and listing: the jobs run and end later, and must neither keep nor wake the
/// waker of the task that started them.
#[test]
fn pool_jobs_dropped_with_their_file_keep_no_waker_when_they_end() {
    let dir = TempDir::new("waker-retention-file");
    let path = dir.join("data");
    std::fs::write(&path, b"contents").unwrap();
    let std_file = std::fs::File::open(&path).unwrap();
    let rt = support::one_thread_pool();
    rt.block_on(async {
        // Opened before the pool is held: `read_dir` itself is a job.
        let listing = overlap::fs::read_dir(dir.path());
        let mut entries = within(HANG, listing, "no listing").await.unwrap();
        let hold = support::hold_pool();
        let mut file = File::from_std(std_file);
        let mut buf = [0u8; 8];
        let read = abandon_slot(file.read(&mut buf)); // its job queues behind the busy one
        let reads = abandoned_a_thousand!(file.read(&mut buf));
        assert!(tasks_still_held(&reads) + read.wakers_held() <= 1);
        let listed = abandoned_a_thousand!(entries.next_entry());
        assert!(
            tasks_still_held(&listed) <= 1,
            "more than the one slot's waker"
        );
        drop(file);
        drop(entries);
        assert_eq!(read.wakers_held(), 0, "the dropped file's waker stayed");
        assert_eq!(
            tasks_still_held(&reads),
            0,
            "the dropped file's waker stayed"
        );
        assert_eq!(
            tasks_still_held(&listed),
            0,
            "the dropped listing's waker stayed"
        );
        drop(hold); // the pool runs the queued jobs now
                    // One pool thread runs jobs in order: this one ends after theirs.
        within(HANG, overlap::spawn_blocking(|| ()), "the pool stalled")
            .await
            .unwrap();
        settle().await;
        assert!(
            !read.is_woken() && !any_woken(&reads),
            "the job's end woke a dropped read"
        );
        assert!(!any_woken(&listed), "the job's end woke a dropped listing");
    });
}

/// An `Unblock` read whose job is blocked in read(2), dropped with the `Unblock`: the
/// bytes that end the job come later, and must not wake the task that started it.
#[overlap::test]
async fn unblock_read_dropped_with_its_job_blocked_keeps_no_waker() {
    let (mut near, far) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut reader = Unblock::new(far);
    let mut buf = [0u8; 16];
    let reads = abandoned_a_thousand!(reader.read(&mut buf)); // the job blocks in read(2)
    assert!(
        tasks_still_held(&reads) <= 1,
        "more than the one slot's waker"
    );
    drop(reader);
    assert_eq!(
        tasks_still_held(&reads),
        0,
        "the dropped Unblock's waker stayed"
    );
    // Its drop aborts the job, which settles the job's handle at once: not a wake for the
    // task whose read went with the `Unblock`.
    assert!(
        !any_woken(&reads),
        "the Unblock's drop woke its last reader's task"
    );
    std::io::Write::write_all(&mut near, b"ends the job").unwrap();
    // The job returns, and its socket end closes: end of file here.
    let eof = overlap::spawn_blocking(move || {
        near.set_read_timeout(Some(HANG)).unwrap();
        std::io::Read::read(&mut near, &mut [0u8; 1])
    });
    assert_eq!(
        within(HANG, eof, "the job never ended")
            .await
            .unwrap()
            .unwrap(),
        0
    );
    settle().await;
    assert!(!any_woken(&reads), "the job's end woke a dropped read");
}
