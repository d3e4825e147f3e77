//! overlap's own pool jobs report straight to whoever awaits them, in whichever thread or
//! runtime: what the job leaves behind when it is dropped unrun (a value put back, a write
//! the runtime's drop must wait for) must be in place by the time the waiter hears.

mod support;

use std::pin::Pin;
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use overlap::fs::File;
use overlap::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, Unblock};
use overlap::Runtime;
use support::{pattern, poll_once, runtime_with_a_busy_pool, SlowFifo, TempDir};

const HANG: Duration = Duration::from_secs(10);

/// A waker whose wake hands over to another thread and waits until that thread has polled:
/// a waiter on another core that runs at once, before the waking thread goes on.
struct HandOver {
    woken: Mutex<mpsc::Sender<()>>,
    polled: Mutex<mpsc::Receiver<()>>,
}

impl Wake for HandOver {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.woken.lock().unwrap().send(()).is_ok() {
            let _ = self.polled.lock().unwrap().recv_timeout(HANG);
        }
    }
}

fn noop_waker() -> Waker {
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    Waker::from(Arc::new(Noop))
}

/// An `Unblock` whose read job is still queued when its runtime is dropped, awaited by a
/// waiter on another thread: the job hands the value back to the `Unblock` before that
/// waiter hears that the job never ran, so the read fails and the next read goes on (the
/// documented "the `Unblock` is as before, a later call retries"), instead of finding the
/// value gone for good.
#[test]
fn an_unblock_read_dropped_unrun_gives_its_value_back_before_the_waiter_hears() {
    let (rt, gate) = runtime_with_a_busy_pool();
    let mut unblock = Unblock::new(std::io::Cursor::new(b"still here".to_vec()));
    let mut buf = [0u8; 32];
    // The read's job is queued behind the busy one.
    rt.block_on(async {
        let read = std::pin::pin!(unblock.read(&mut buf));
        assert!(poll_once(read).await.is_pending());
    });
    let (woken_tx, woken) = mpsc::channel();
    let (polled_tx, polled) = mpsc::channel();
    let waker = Waker::from(Arc::new(HandOver {
        woken: Mutex::new(woken_tx),
        polled: Mutex::new(polled),
    }));
    let (waiting_tx, waiting) = mpsc::channel();
    // The waiter: the `Unblock` goes to another thread, which waits on the job's result.
    let waiter = std::thread::spawn(move || {
        let mut buf = [0u8; 32];
        let poll = Pin::new(&mut unblock).poll_read(&mut Context::from_waker(&waker), &mut buf);
        assert!(poll.is_pending(), "the job is still queued: {poll:?}");
        waiting_tx.send(()).unwrap();
        woken
            .recv_timeout(HANG)
            .expect("the runtime's drop never woke the read");
        let noop = noop_waker();
        let first = Pin::new(&mut unblock).poll_read(&mut Context::from_waker(&noop), &mut buf);
        polled_tx.send(()).unwrap();
        assert!(
            matches!(first, Poll::Ready(Err(_))),
            "the read whose job never ran fails: {first:?}"
        );
        // The next read runs a job of its own, under a runtime of this thread.
        let n = overlap::block_on(async { unblock.read(&mut buf).await })
            .expect("the value is back: the next read retries");
        assert_eq!(&buf[..n], b"still here");
    });
    // Dropped only once the waiter waits (unless it failed first).
    let _ = waiting.recv_timeout(HANG);
    drop(rt);
    gate.wait();
    waiter.join().unwrap();
}

/// A `File` written inside a blocking job (through `Handle::current().block_on`, which
/// overlap's own pool jobs now allow) is durable like any other: the runtime's drop waits
/// for its write job still running, so every accepted byte has left the process once the
/// runtime is gone. The file is a FIFO drained slowly, so the job still runs at the drop.
#[test]
fn a_file_written_inside_a_blocking_job_is_waited_for_by_the_runtime_drop() {
    const TOTAL: usize = (1 << 20) + 4096;
    let dir = TempDir::new("review-direct-durable");
    let (fifo, writer) = SlowFifo::open(&dir);
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        overlap::spawn_blocking(move || {
            overlap::Handle::current().block_on(async {
                let mut file = File::from_std(writer);
                file.write_all(&pattern(TOTAL)).await.unwrap();
                // Dropped unflushed, its last job still writing.
            })
        })
        .await
        .unwrap();
    });
    drop(rt);
    // This is where `main` would return: every byte must have left the process.
    fifo.assert_all_left(TOTAL);
}

/// A writer whose writes wait at a barrier, to hold a job on its pool thread.
struct Gated(Arc<Barrier>, Vec<u8>);

impl std::io::Write for Gated {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.wait();
        self.0.wait();
        self.1.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An `Unblock`'s job still running when its runtime is dropped hands its value back all
/// the same (straight to the `Unblock`, not through a task of the dropped runtime): the
/// next call, under another runtime, goes on, where it used to find the value lost.
#[test]
fn an_unblock_job_running_when_its_runtime_goes_still_hands_its_value_back() {
    let gate = Arc::new(Barrier::new(2));
    let rt = Runtime::new().unwrap();
    let mut out = Unblock::new(Gated(gate.clone(), Vec::new()));
    rt.block_on(async { out.write_all(b"written").await.unwrap() });
    gate.wait(); // the job runs
    drop(rt);
    gate.wait(); // and ends after the drop
    let inner = Runtime::new().unwrap().block_on(async {
        out.flush().await.expect("the job's value came back");
        out.into_inner().await.unwrap()
    });
    assert_eq!(inner.1, b"written");
}
