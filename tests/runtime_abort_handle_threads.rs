//! `AbortHandle` is `Send` and `Sync`: aborts and `is_finished` from other threads, racing
//! the task's end and the runtime's drop (CI runs this under valgrind).

use std::sync::mpsc;
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use overlap::net::TcpListener;
use overlap::{AbortHandle, Runtime};

/// Records the thread that dropped it.
struct DropWitness(mpsc::Sender<ThreadId>);

impl Drop for DropWitness {
    fn drop(&mut self) {
        let _ = self.0.send(thread::current().id());
    }
}

/// Waits (a hang guard, not a timing assertion) until `handle` says finished.
fn wait_finished(handle: &AbortHandle) {
    let start = Instant::now();
    while !handle.is_finished() {
        assert!(start.elapsed() < Duration::from_secs(60), "never finished");
        thread::yield_now();
    }
}

#[test]
fn abort_handles_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<AbortHandle>();
}

#[test]
fn a_thread_aborts_a_task_waiting_on_io_and_sees_it_finish() {
    let rt = Runtime::new().unwrap();
    let (dropped_tx, dropped) = mpsc::channel();
    let runtime_thread = thread::current().id();
    let out = rt.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let task = overlap::spawn(async move {
            let _witness = DropWitness(dropped_tx);
            listener.accept().await.map(|_| ())
        });
        let stop = task.abort_handle();
        let aborter = thread::spawn(move || {
            assert!(!stop.is_finished());
            stop.abort();
            wait_finished(&stop);
        });
        let out = task.await;
        // Joined on the pool: the runtime keeps running meanwhile.
        overlap::spawn_blocking(move || aborter.join().unwrap())
            .await
            .unwrap();
        out
    });
    assert!(out.unwrap_err().is_cancelled());
    assert_eq!(dropped.recv().unwrap(), runtime_thread, "dropped elsewhere");
}

#[test]
fn an_abort_while_the_runtime_is_not_running_lands_at_its_next_block_on() {
    let rt = Runtime::new().unwrap();
    let task = rt.spawn(std::future::pending::<()>());
    let stop = task.abort_handle();
    thread::spawn(move || stop.abort()).join().unwrap();
    assert!(rt.block_on(task).unwrap_err().is_cancelled());
}

#[test]
fn aborts_racing_the_end_of_tasks_leave_each_finished_once() {
    let rt = Runtime::new().unwrap();
    let mut outcomes = [0usize; 2];
    for round in 0..300u32 {
        rt.block_on(async {
            let task = overlap::spawn(async move {
                for _ in 0..round % 4 {
                    overlap::yield_now().await;
                }
                round
            });
            let stop = task.abort_handle();
            // The handle is cloned, used and dropped on the other thread.
            let aborter = thread::spawn(move || {
                let copy = stop.clone();
                drop(stop);
                copy.abort();
                wait_finished(&copy);
            });
            match task.await {
                Ok(v) => {
                    assert_eq!(v, round);
                    outcomes[0] += 1;
                }
                Err(e) => {
                    assert!(e.is_cancelled());
                    outcomes[1] += 1;
                }
            }
            overlap::spawn_blocking(move || aborter.join().unwrap())
                .await
                .unwrap();
        });
    }
    assert_eq!(outcomes[0] + outcomes[1], 300);
}

#[test]
fn after_the_runtime_is_gone_an_abort_does_nothing_and_the_task_is_finished() {
    let rt = Runtime::new().unwrap();
    let task = rt.spawn(std::future::pending::<()>());
    let stop = task.abort_handle();
    drop(rt);
    thread::spawn(move || {
        assert!(stop.is_finished(), "the runtime's drop cancelled it");
        stop.abort();
    })
    .join()
    .unwrap();
    drop(task);
}
