//! An adversarial review of `Builder::thread_name_fn` and of the vectored reads of sockets
//! and pipes: a name function that starts blocking work itself, or blocks, or answers
//! names the kernel must cut; vectored reads over 1,025 slices, over more than the socket
//! buffer, and across Unix messages that carry fds.

mod support;

use std::io::{IoSliceMut, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use overlap::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use overlap::net::UnixStream;
use overlap::Runtime;
use support::{
    jobs_held_at, on_thread_within, sendmsg_fd, tcp_pair, threads_named, until, within, Gate,
};

const HANG: Duration = Duration::from_secs(30);

fn current_name() -> Option<String> {
    std::thread::current().name().map(str::to_owned)
}

/// A name function whose first call queues a blocking job of its own (re-entering the
/// pool while it is starting a thread): no deadlock, both jobs run, and the pool starts a
/// second thread only where its limit lets it.
#[test]
fn a_name_function_that_spawns_blocking_work_itself_does_not_deadlock() {
    for max in [1usize, 4] {
        on_thread_within(HANG, "a re-entrant name function", move || {
            let calls = Arc::new(AtomicUsize::new(0));
            let (inner_done, inner_ran) = mpsc::channel();
            let counter = calls.clone();
            let rt = Runtime::builder()
                .max_blocking_threads(max)
                .thread_name_fn(move || {
                    let call = counter.fetch_add(1, Ordering::SeqCst);
                    if call == 0 {
                        let done = inner_done.clone();
                        drop(overlap::spawn_blocking(move || {
                            done.send(current_name()).unwrap();
                        }));
                    }
                    format!("reentrant-{call}")
                })
                .build()
                .unwrap();
            let outer = rt.block_on(async {
                within(HANG, overlap::spawn_blocking(current_name), "the outer job")
                    .await
                    .unwrap()
            });
            let inner = inner_ran.recv_timeout(HANG).expect("the inner job ran");
            let names: Vec<String> = (0..max.min(2)).map(|i| format!("reentrant-{i}")).collect();
            assert_eq!(calls.load(Ordering::SeqCst), max.min(2), "limit {max}");
            for name in [outer, inner] {
                assert!(
                    names.contains(&name.clone().unwrap()),
                    "{name:?} of {names:?}"
                );
            }
        });
    }
}

/// A name function blocked on one thread's start holds no pool lock: a job queued from
/// another thread meanwhile gets a thread of its own, named by the next call, and runs.
#[test]
fn a_name_function_that_blocks_holds_up_only_the_start_it_names() {
    on_thread_within(HANG, "a blocked name function", || {
        let (gate, entered) = (Gate::default(), Arc::new(AtomicBool::new(false)));
        let calls = Arc::new(AtomicUsize::new(0));
        let (g, e, c) = (gate.clone(), entered.clone(), calls.clone());
        let rt = Runtime::builder()
            .thread_name_fn(move || {
                let call = c.fetch_add(1, Ordering::SeqCst);
                if call == 0 {
                    e.store(true, Ordering::SeqCst);
                    g.wait();
                }
                format!("gated-{call}")
            })
            .build()
            .unwrap();
        let handle = rt.handle();
        let first_started = Arc::new(AtomicBool::new(false));
        let started = first_started.clone();
        let starter = std::thread::spawn(move || {
            let job = handle.spawn_blocking(current_name);
            started.store(true, Ordering::SeqCst);
            job
        });
        rt.block_on(async {
            until(|| entered.load(Ordering::SeqCst), "the first name call").await;
            let second = overlap::spawn_blocking(current_name);
            let name = within(HANG, second, "a job while a name call blocks")
                .await
                .unwrap();
            assert_eq!(name.as_deref(), Some("gated-1"));
            assert!(
                !first_started.load(Ordering::SeqCst),
                "still in its name call"
            );
            gate.open();
            let first = starter.join().unwrap();
            let name = within(HANG, first, "the first job").await.unwrap();
            assert!(
                matches!(name.as_deref(), Some("gated-0" | "gated-1")),
                "{name:?}"
            );
        });
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    });
}

/// Names longer than the kernel's 15 bytes, cut in the middle of a UTF-8 character, or
/// empty: the thread starts, Rust reports the whole name, the kernel keeps its first 15
/// bytes.
#[test]
fn names_the_kernel_must_cut_or_that_are_empty_still_start_their_threads() {
    let odd = [
        "x".repeat(300),
        "ü".repeat(10),
        String::new(),
        "tab\tnl\n".into(),
    ];
    let names = odd.clone();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let rt = Runtime::builder()
        .thread_name_fn(move || names[c.fetch_add(1, Ordering::SeqCst) % 4].clone())
        .build()
        .unwrap();
    let gate = Gate::default();
    rt.block_on(async {
        let jobs = jobs_held_at(&gate, 4, current_name).await;
        for name in &odd[..2] {
            assert_eq!(threads_named(name), 1, "the kernel's cut of {name:?}");
        }
        gate.open();
        let mut got = Vec::new();
        for job in jobs {
            got.push(within(HANG, job, "a named job").await.unwrap().unwrap());
        }
        got.sort();
        let mut want = odd.to_vec();
        want.sort();
        assert_eq!(got, want);
    });
}

/// Slices of one byte each, 1,025 of them after three empty ones: `len` bytes queued.
fn one_byte_slices(store: &mut [[u8; 1]]) -> Vec<IoSliceMut<'_>> {
    let mut bufs: Vec<IoSliceMut<'_>> = (0..3).map(|_| IoSliceMut::new(&mut [])).collect();
    bufs.extend(store.iter_mut().map(|b| IoSliceMut::new(b)));
    bufs
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

/// 2,000 bytes queued, 1,025 one-byte slices: one read fills exactly the first 1,024 (the
/// 1,025th stays untouched), and since that read was full, not short, the rest is read
/// without waiting for an edge that will not come.
async fn exactly_1024_slices_then_the_rest<R, W>(reader: &mut R, writer: &mut W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let sent = pattern(2_000);
    writer.write_all(&sent).await.unwrap();
    writer.flush().await.unwrap();
    // Loopback, Unix sockets and pipes queue the bytes in the write itself.
    let mut store = vec![[0xffu8; 1]; 1_025];
    let n = {
        let mut bufs = one_byte_slices(&mut store);
        within(
            HANG,
            reader.read_vectored(&mut bufs),
            "the 1,024-slice read",
        )
        .await
        .unwrap()
    };
    assert_eq!(n, 1_024, "the first 1,024 non-empty slices, no more");
    let got: Vec<u8> = store.iter().map(|b| b[0]).collect();
    assert_eq!(&got[..1_024], &sent[..1_024]);
    assert_eq!(got[1_024], 0xff, "the 1,025th slice is left alone");
    let mut rest = vec![0u8; 976];
    within(
        HANG,
        reader.read_exact(&mut rest),
        "the rest, with no new edge",
    )
    .await
    .unwrap();
    assert_eq!(rest, &sent[1_024..]);
}

#[overlap::test]
async fn a_read_over_more_than_1024_slices_fills_1024_and_is_not_taken_for_drained() {
    let (mut a, mut b) = tcp_pair().await;
    exactly_1024_slices_then_the_rest(&mut b, &mut a).await;
    let (mut a, mut b) = UnixStream::pair().unwrap();
    exactly_1024_slices_then_the_rest(&mut b, &mut a).await;
    let (mut tx, mut rx) = overlap::pipe::pipe().unwrap();
    exactly_1024_slices_then_the_rest(&mut rx, &mut tx).await;
}

/// 3 MiB written by another task into slices of 4 MiB in all, more than any socket or
/// pipe buffer: each read is short, waits for the next edge, and the bytes come in order.
async fn more_than_the_buffer<R, W>(mut reader: R, mut writer: W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + 'static,
{
    const LEN: usize = 3 << 20;
    let writing = overlap::spawn(async move {
        writer.write_all(&pattern(LEN)).await.unwrap();
        // Dropped: end of file.
    });
    let mut got = Vec::with_capacity(LEN);
    let mut store = vec![vec![0u8; 1 << 20]; 4];
    loop {
        let n = {
            let mut bufs: Vec<_> = store.iter_mut().map(|b| IoSliceMut::new(b)).collect();
            within(HANG, reader.read_vectored(&mut bufs), "a read over 4 MiB")
                .await
                .unwrap()
        };
        if n == 0 {
            break;
        }
        let mut left = n;
        for slice in &store {
            let take = left.min(slice.len());
            got.extend_from_slice(&slice[..take]);
            left -= take;
        }
    }
    writing.await.unwrap();
    assert_eq!(got.len(), LEN);
    assert!(got == pattern(LEN), "the bytes, in order");
}

#[overlap::test]
async fn slices_larger_than_the_kernel_buffer_get_every_byte_in_order() {
    let (a, b) = tcp_pair().await;
    more_than_the_buffer(b, a).await;
    let (a, b) = UnixStream::pair().unwrap();
    more_than_the_buffer(b, a).await;
    let (tx, rx) = overlap::pipe::pipe().unwrap();
    more_than_the_buffer(rx, tx).await;
}

/// Unix messages with fds between plain ones: a read over many small slices stops right
/// after each message that carried fds (the fds are dropped), and the next read gets the
/// rest at once, with no edge to come.
#[test]
fn messages_carrying_fds_in_the_middle_of_a_vector_stop_the_read_just_after_them() {
    overlap::block_on(async {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut ours = UnixStream::from_std(ours).unwrap();
        let devnull = std::fs::File::open("/dev/null").unwrap();
        let fd = devnull.as_raw_fd();
        (&theirs).write_all(b"ab").unwrap();
        assert_eq!(sendmsg_fd(theirs.as_raw_fd(), b"cd", fd).unwrap(), 2);
        (&theirs).write_all(b"ef").unwrap();
        assert_eq!(sendmsg_fd(theirs.as_raw_fd(), b"gh", fd).unwrap(), 2);
        (&theirs).write_all(b"ij").unwrap();
        // The peer stays open: no hang-up to wake a read that wrongly waits for an edge.
        let mut reads = Vec::new();
        for _ in 0..4 {
            let mut store = [[0u8; 3]; 8];
            let n = {
                let mut bufs: Vec<_> = store.iter_mut().map(|b| IoSliceMut::new(b)).collect();
                within(
                    HANG,
                    ours.read_vectored(&mut bufs),
                    "a read past an fd message",
                )
                .await
                .unwrap()
            };
            reads.push(String::from_utf8(store.concat()[..n].to_vec()).unwrap());
            if reads.len() == 3 {
                theirs.shutdown(std::net::Shutdown::Write).unwrap();
            }
        }
        assert_eq!(
            reads,
            ["abcd", "efgh", "ij", ""],
            "the last one at end of file"
        );
    });
}
