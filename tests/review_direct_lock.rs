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
