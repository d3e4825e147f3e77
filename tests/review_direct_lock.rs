//! A pool job whose result nobody takes any more (its handle was aborted while it ran)
//! drops that result on its pool thread, and that drop may block (an `Unblock`'s
//! `BufWriter` flushing into a full pipe): the job's handle, dropped or asked
//! `is_finished` on the event loop meanwhile, must not wait for it.

use std::sync::mpsc;
use std::time::Duration;

const HANG: Duration = Duration::from_secs(10);

/// Tells when its drop starts, then blocks until released.
struct SlowDrop {
    dropping: mpsc::Sender<()>,
    release: mpsc::Receiver<()>,
}

impl Drop for SlowDrop {
    fn drop(&mut self) {
        let _ = self.dropping.send(());
        let _ = self.release.recv_timeout(HANG * 3);
    }
}

#[test]
fn an_aborted_jobs_slow_drop_does_not_hold_its_handle() {
    let rt = overlap::Runtime::new().unwrap();
    let (go_tx, go) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    let (dropping_tx, dropping) = mpsc::channel();
    let (release_tx, release) = mpsc::channel();
    let job = rt.handle().spawn_blocking(move || {
        started_tx.send(()).unwrap();
        go.recv_timeout(HANG).unwrap();
        SlowDrop {
            dropping: dropping_tx,
            release,
        }
    });
    started.recv_timeout(HANG).unwrap();
    // Running: the abort only drops its result, on the pool thread, once it returns.
    job.abort();
    go_tx.send(()).unwrap();
    dropping
        .recv_timeout(HANG)
        .expect("the result is dropped on the pool");
    // The value's drop is blocked now. Asking about the job, and dropping its handle, are
    // what an `Unblock` dropped on the event loop does.
    let (done_tx, done) = mpsc::channel();
    let asker = std::thread::spawn(move || {
        assert!(job.is_finished(), "aborted: finished for the handle");
        drop(job);
        done_tx.send(()).unwrap();
    });
    let answered = done.recv_timeout(HANG);
    release_tx.send(()).unwrap();
    asker.join().unwrap();
    assert!(
        answered.is_ok(),
        "the handle waited for the pool thread's drop of the abandoned result"
    );
    drop(rt);
}

/// A writer whose drop tells when it starts, then blocks until released (a `BufWriter`
/// flushing into a pipe nobody reads): its field's drop does.
struct SlowDropWriter {
    _slow: SlowDrop,
}

impl std::io::Write for SlowDropWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An `Unblock` dropped while its write job waits in the queue, and then its runtime
/// dropped before the job starts: the value the job took must not be dropped on the thread
/// dropping the runtime (the event loop's), where its blocking `Drop` would hold the drop.
#[test]
fn an_unblocks_value_left_in_a_queued_job_is_not_dropped_by_the_runtime_drop() {
    let rt = overlap::Runtime::builder()
        .max_blocking_threads(1)
        .build()
        .unwrap();
    let (hold_tx, hold) = mpsc::channel::<()>();
    let (held_tx, held) = mpsc::channel();
    // The pool's only thread is busy, so the write job below stays queued.
    drop(rt.handle().spawn_blocking(move || {
        held_tx.send(()).unwrap();
        let _ = hold.recv_timeout(HANG * 3);
    }));
    held.recv_timeout(HANG).unwrap();
    let (dropping_tx, dropping) = mpsc::channel();
    let (release_tx, release) = mpsc::channel();
    rt.block_on(async move {
        use overlap::io::AsyncWriteExt;
        let mut out = overlap::io::Unblock::new(SlowDropWriter {
            _slow: SlowDrop {
                dropping: dropping_tx,
                release,
            },
        });
        assert_eq!(out.write(b"queued").await.unwrap(), 6);
        // Dropped with its job queued: the job still runs, its value dropped on the pool.
    });
    // A watchdog releases the value's drop if the runtime's drop is still stuck in it.
    let (done_tx, done) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let returned = done.recv_timeout(HANG).is_ok();
        let _ = release_tx.send(());
        returned
    });
    drop(rt);
    let _ = done_tx.send(());
    dropping
        .recv_timeout(HANG)
        .expect("the value is dropped somewhere");
    drop(hold_tx);
    assert!(
        watchdog.join().unwrap(),
        "the runtime's drop ran the value's blocking Drop"
    );
}
