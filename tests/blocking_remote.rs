//! `Handle::spawn_blocking` queues its job straight on the pool and hands the result
//! straight to the `RemoteJoinHandle`, so it works while nobody drives the runtime; and
//! aborting a blocking job's handle before the job starts keeps it from running, for the
//! free `spawn_blocking` as for the handle's.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::thread;
use std::time::Duration;

use overlap::{Handle, Runtime};

mod support;

/// A generous hang guard, never a timing assertion.
const HANG: Duration = Duration::from_secs(10);

/// Counts, in a `Send` way, whether a job ran and whether its closure was dropped.
#[derive(Clone, Default)]
struct JobLog {
    ran: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
}

impl JobLog {
    /// A job that records its run; its closure records its drop (run or not).
    fn job(&self) -> impl FnOnce() -> usize + Send + 'static {
        let ran = self.ran.clone();
        let on_drop = DropCount(self.dropped.clone());
        move || {
            let _on_drop = on_drop;
            ran.fetch_add(1, Ordering::SeqCst) + 1
        }
    }

    fn ran(&self) -> usize {
        self.ran.load(Ordering::SeqCst)
    }

    fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }
}

struct DropCount(Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Occupies the only thread of a one-thread pool until the returned sender is used (or
/// dropped); returns once the job runs.
fn occupy_the_pool(handle: &Handle) -> (std_mpsc::Sender<()>, overlap::RemoteJoinHandle<()>) {
    let (started_tx, started) = std_mpsc::channel();
    let (release, released) = std_mpsc::channel::<()>();
    let busy = handle.spawn_blocking(move || {
        started_tx.send(()).unwrap();
        let _ = released.recv_timeout(HANG);
    });
    started.recv_timeout(HANG).unwrap();
    (release, busy)
}

fn one_thread_runtime() -> Runtime {
    Runtime::builder().max_blocking_threads(1).build().unwrap()
}

#[test]
fn a_handle_job_completes_while_nobody_drives_the_runtime() {
    let rt = Runtime::new().unwrap();
    let handle = rt.handle();
    // The runtime's thread is this one, which waits on the other thread and never runs the
    // loop: the job and its result must not need it.
    let other = thread::spawn(move || {
        let job = handle.spawn_blocking(|| (Handle::current().spawn(async {}), 6 * 7));
        let (spawned, answer) = handle.block_on(job).unwrap();
        // Inside the job, the current handle was the spawning one: its spawn landed there.
        drop(spawned);
        answer
    });
    let (tx, rx) = std_mpsc::channel();
    thread::spawn(move || tx.send(other.join()).unwrap());
    let answer = rx.recv_timeout(HANG).expect("the job waited for the loop");
    assert_eq!(answer.unwrap(), 42);
    drop(rt);
}

#[test]
fn a_handle_job_reports_its_panic_and_its_id() {
    let rt = Runtime::new().unwrap();
    let handle = rt.handle();
    let ids = overlap::block_on(async {
        let id = handle.spawn_blocking(overlap::task::try_id).await.unwrap();
        let err = handle.spawn_blocking(|| panic!("boom")).await.unwrap_err();
        assert!(err.is_panic());
        let payload = err.into_panic();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
        id
    });
    assert!(ids.is_some(), "task::try_id inside a handle's job");
    drop(rt);
}

#[test]
fn aborting_a_queued_handle_job_keeps_it_from_running() {
    let rt = one_thread_runtime();
    let handle = rt.handle();
    let (release, busy) = occupy_the_pool(&handle);
    let log = JobLog::default();
    let queued = handle.spawn_blocking(log.job());
    queued.abort();
    assert!(queued.is_finished(), "abort reports at once");
    let err = overlap::block_on(queued).unwrap_err();
    assert!(err.is_cancelled());
    release.send(()).unwrap();
    overlap::block_on(busy).unwrap();
    // A job queued after the aborted one runs after it (one thread, FIFO): once it has run,
    // the aborted one has had its turn.
    let after = JobLog::default();
    assert_eq!(
        overlap::block_on(handle.spawn_blocking(after.job())).unwrap(),
        1
    );
    assert_eq!(log.ran(), 0, "an aborted job ran");
    assert_eq!(log.dropped(), 1, "its closure was not dropped");
    drop(rt);
}

#[test]
fn aborting_a_running_handle_job_reports_at_once_and_lets_it_finish() {
    let rt = one_thread_runtime();
    let handle = rt.handle();
    let (release, busy) = occupy_the_pool(&handle);
    busy.abort();
    let err = overlap::block_on(busy).unwrap_err();
    assert!(err.is_cancelled());
    // The job still holds the pool's only thread; the next job runs once it ends.
    let log = JobLog::default();
    let next = handle.spawn_blocking(log.job());
    release.send(()).unwrap();
    assert_eq!(overlap::block_on(next).unwrap(), 1);
    drop(rt);
}

#[test]
fn aborting_a_queued_free_job_keeps_it_from_running() {
    let rt = one_thread_runtime();
    let log = JobLog::default();
    let after = JobLog::default();
    rt.block_on(async {
        let (release, busy) = occupy_the_pool(&Handle::current());
        let queued = overlap::spawn_blocking(log.job());
        queued.abort();
        assert!(queued.await.unwrap_err().is_cancelled());
        release.send(()).unwrap();
        busy.await.unwrap();
        assert_eq!(overlap::spawn_blocking(after.job()).await.unwrap(), 1);
    });
    assert_eq!(log.ran(), 0, "an aborted job ran");
    assert_eq!(log.dropped(), 1, "its closure was not dropped");
}

#[test]
fn a_dropped_handle_does_not_stop_a_queued_job() {
    let rt = one_thread_runtime();
    let handle = rt.handle();
    let (release, busy) = occupy_the_pool(&handle);
    let log = JobLog::default();
    drop(handle.spawn_blocking(log.job()));
    let free = JobLog::default();
    rt.block_on(async {
        drop(overlap::spawn_blocking(free.job()));
    });
    release.send(()).unwrap();
    overlap::block_on(busy).unwrap();
    let after = JobLog::default();
    assert_eq!(
        overlap::block_on(handle.spawn_blocking(after.job())).unwrap(),
        1
    );
    // The free job's result travels through a task of the runtime, which must run for it:
    // the job itself ran on the pool, before `after`.
    assert_eq!(log.ran(), 1, "a detached handle job was dropped");
    assert_eq!(free.ran(), 1, "a detached free job was dropped");
    drop(rt);
}

#[test]
fn a_queued_handle_job_is_cancelled_unrun_when_the_runtime_goes() {
    let rt = one_thread_runtime();
    let handle = rt.handle();
    let (release, busy) = occupy_the_pool(&handle);
    let log = JobLog::default();
    let queued = handle.spawn_blocking(log.job());
    drop(rt);
    assert!(overlap::block_on(queued).unwrap_err().is_cancelled());
    assert_eq!(log.ran(), 0);
    assert_eq!(log.dropped(), 1);
    release.send(()).unwrap();
    // The running job finishes detached; its handle says cancelled or done, never hangs.
    let (tx, rx) = std_mpsc::channel();
    thread::spawn(move || tx.send(overlap::block_on(busy).is_ok()).unwrap());
    rx.recv_timeout(HANG).unwrap();
}

/// Sends what it is given to a channel: a blocking writer whose bytes a test can check.
struct ToChannel(std_mpsc::Sender<Vec<u8>>);

impl std::io::Write for ToChannel {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.send(buf.to_vec()).unwrap();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn an_unblock_dropped_before_its_write_job_starts_still_writes() {
    use overlap::io::{AsyncWriteExt, Unblock};
    let rt = one_thread_runtime();
    let (tx, written) = std_mpsc::channel();
    rt.block_on(async {
        let (release, busy) = occupy_the_pool(&Handle::current());
        let mut out = Unblock::new(ToChannel(tx));
        // Accepted at once: the job that writes it waits behind the busy thread.
        assert_eq!(out.write(b"kept").await.unwrap(), 4);
        // The drop aborts the job's handle, which must only keep the result off the loop:
        // the bytes were reported written.
        drop(out);
        release.send(()).unwrap();
        busy.await.unwrap();
    });
    assert_eq!(written.recv_timeout(HANG).unwrap(), b"kept");
}

/// A `RemoteJoinHandle` dropped while it waits lets go of the waker of its last poll
/// at once, for a task as for a blocking job, rather than leave it in the cell until the
/// work ends.
#[test]
fn a_dropped_remote_handle_lets_go_of_its_waker() {
    let rt = one_thread_runtime();
    support::abandon(rt.handle().spawn(std::future::pending::<()>()));
    let (release, held) = occupy_the_pool(&rt.handle());
    support::abandon(rt.handle().spawn_blocking(|| ()));
    release.send(()).unwrap();
    rt.block_on(held).unwrap();
}
