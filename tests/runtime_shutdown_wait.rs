//! `Runtime::shutdown_timeout` and `shutdown_background`: what the end of a runtime waits
//! for on its blocking pool.

mod support;

use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use overlap::Runtime;

/// Starts a detached blocking job that waits at `gate`, then sets the returned flag.
/// Returns once a pool thread is running it.
fn running_job(rt: &Runtime, gate: Arc<Barrier>) -> Arc<AtomicBool> {
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    let (started_tx, started) = mpsc::channel();
    rt.block_on(async move {
        drop(overlap::spawn_blocking(move || {
            started_tx.send(()).unwrap();
            gate.wait();
            flag.store(true, Ordering::SeqCst);
        }));
    });
    started.recv().unwrap();
    done
}

#[test]
fn shutdown_timeout_waits_for_a_running_job_to_finish() {
    let rt = Runtime::new().unwrap();
    let gate = Arc::new(Barrier::new(2));
    let done = running_job(&rt, gate.clone());
    // Opens the gate a while after the shutdown began (a plain drop would be long gone).
    let opener = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        gate.wait();
    });
    rt.shutdown_timeout(Duration::from_secs(120));
    assert!(
        done.load(Ordering::SeqCst),
        "shutdown_timeout returned while its job still ran"
    );
    opener.join().unwrap();
}

#[test]
fn shutdown_timeout_gives_up_on_a_job_that_outlasts_it() {
    let rt = Runtime::new().unwrap();
    let gate = Arc::new(Barrier::new(2));
    let done = running_job(&rt, gate.clone());
    rt.shutdown_timeout(Duration::from_millis(50));
    assert!(
        !done.load(Ordering::SeqCst),
        "the job cannot finish before its gate opens"
    );
    // The job finishes detached once let go.
    gate.wait();
    assert!(support::wait_until(Duration::from_secs(60), || done.load(Ordering::SeqCst)));
}

/// Waits at its barrier when dropped, letting the job waiting there go.
struct OpensOnDrop(Arc<Barrier>);

impl Drop for OpensOnDrop {
    fn drop(&mut self) {
        self.0.wait();
    }
}

#[test]
fn shutdown_timeout_cancels_tasks_and_drops_queued_jobs() {
    let rt = Runtime::builder().max_blocking_threads(1).build().unwrap();
    let gate = Arc::new(Barrier::new(2));
    let done = running_job(&rt, gate.clone());
    // Queued behind the running job on the single thread: it never starts.
    let queued_ran = Arc::new(AtomicBool::new(false));
    let q = queued_ran.clone();
    let queued = {
        let _enter = rt.enter();
        overlap::spawn_blocking(move || q.store(true, Ordering::SeqCst))
    };
    // The gate opens as the shutdown drops this task, which is after it dropped the queued
    // job: opened any earlier, the freed thread could run that job before the shutdown.
    let opens = OpensOnDrop(gate);
    let pending = rt.spawn(async move {
        let _opens = opens;
        std::future::pending::<()>().await
    });
    rt.shutdown_timeout(Duration::from_secs(120));
    assert!(done.load(Ordering::SeqCst));
    assert!(
        !queued_ran.load(Ordering::SeqCst),
        "a queued job ran after shutdown"
    );
    assert!(queued.is_finished() && pending.is_finished());
}

#[test]
fn shutdown_background_waits_for_nothing_not_even_a_file_write() {
    let dir = support::TempDir::new("shutdown_background");
    let fifo = dir.join("fifo");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: `path` is a valid NUL-terminated string.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    // A reader that never reads: the write job fills the pipe and blocks for good.
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        use overlap::io::AsyncWriteExt;
        let mut file = overlap::fs::OpenOptions::new()
            .write(true)
            .open(&fifo)
            .await
            .unwrap();
        // Accepted into the file's buffer; the job that writes it then blocks.
        let big = vec![7u8; 1 << 20];
        let _ = file.write(&big).await.unwrap();
        overlap::task::yield_now().await;
    });
    let started = Instant::now();
    rt.shutdown_background();
    // A plain drop waits 10 s for the write; this returns at once. The bound only
    // guards against that wait, with room for a slow machine.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "shutdown_background waited for the write"
    );
    drop(reader); // the write job fails with EPIPE and ends
}

#[test]
fn clean_up_work_queued_before_the_shutdown_still_runs_off_the_runtime_thread() {
    let rt = Runtime::builder().max_blocking_threads(1).build().unwrap();
    let gate = Arc::new(Barrier::new(2));
    let _ = running_job(&rt, gate.clone());
    let (ran_tx, ran) = mpsc::channel();
    rt.block_on(async move {
        // Queued behind the running job, as clean-up work waits while the runtime runs.
        overlap_runtime::spawn_blocking_detached(move || {
            ran_tx.send(thread::current().id()).unwrap();
        });
    });
    // The shutdown drops the queued job unrun; it queues itself again and runs on a thread
    // of its own (dropped instead, its sender would end `recv` with an error).
    drop(rt);
    assert_ne!(ran.recv().unwrap(), thread::current().id());
    gate.wait();
}

/// Hands clean-up work to the pool when dropped, as a lingering socket's close does.
struct CleanUpOnDrop(Arc<AtomicBool>);

impl Drop for CleanUpOnDrop {
    fn drop(&mut self) {
        let done = self.0.clone();
        overlap_runtime::spawn_blocking_detached(move || done.store(true, Ordering::SeqCst));
    }
}

#[test]
fn shutdown_timeout_waits_for_clean_up_work_its_tasks_left() {
    for _ in 0..5 {
        let rt = Runtime::new().unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let held = CleanUpOnDrop(done.clone());
        drop(rt.spawn(async move {
            let _held = held;
            std::future::pending::<()>().await;
        }));
        // Dropping the task queues the work on a thread the pool starts for it.
        rt.shutdown_timeout(Duration::from_secs(120));
        assert!(
            done.load(Ordering::SeqCst),
            "returned before the clean-up ran"
        );
    }
}

/// Counts its drop, a while after it is asked to: a pool thread's thread-local whose
/// destructor does some work at thread exit (flushes a per-thread buffer, say).
struct CountsItsDrop(Arc<AtomicUsize>);

impl Drop for CountsItsDrop {
    fn drop(&mut self) {
        // Widens the window in which the thread is exiting; asserts nothing about time.
        thread::sleep(Duration::from_millis(20));
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

thread_local! {
    static PER_THREAD: std::cell::RefCell<Option<CountsItsDrop>> =
        const { std::cell::RefCell::new(None) };
}

/// As tokio's: once `shutdown_timeout` returns in time, every pool thread has stopped, its
/// `on_thread_stop` hook run and its thread-locals dropped. It used to return as soon as
/// no job ran, with the threads still exiting (their hooks and destructors yet to run, and
/// never run if the process then exits).
#[test]
fn shutdown_timeout_waits_for_pool_threads_to_stop() {
    const THREADS: usize = 3;
    let (starts, stops, dropped) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let rt = {
        let (starts, stops) = (starts.clone(), stops.clone());
        Runtime::builder()
            .on_thread_start(move || {
                starts.fetch_add(1, Ordering::SeqCst);
            })
            .on_thread_stop(move || {
                thread::sleep(Duration::from_millis(50));
                stops.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .unwrap()
    };
    rt.block_on(async {
        // All waiting at one barrier: one thread each.
        let all_in = Arc::new(Barrier::new(THREADS));
        let jobs: Vec<_> = (0..THREADS)
            .map(|_| {
                let (all_in, dropped) = (all_in.clone(), dropped.clone());
                overlap::spawn_blocking(move || {
                    all_in.wait();
                    PER_THREAD.with(|t| *t.borrow_mut() = Some(CountsItsDrop(dropped)));
                })
            })
            .collect();
        for job in jobs {
            job.await.unwrap();
        }
    });
    rt.shutdown_timeout(Duration::from_secs(120));
    let started = starts.load(Ordering::SeqCst);
    assert!(started >= THREADS);
    assert_eq!(
        stops.load(Ordering::SeqCst),
        started,
        "stop hooks yet to run"
    );
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        THREADS,
        "thread-locals yet to drop"
    );
}
