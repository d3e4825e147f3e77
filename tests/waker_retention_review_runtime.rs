//! A sweep for wakers left behind, runtime: join handles, `JoinSet`, `TaskTracker`,
//! `spawn_blocking`, timers, `AsyncFd` and signals. Each wait is polled until it waits with
//! a waker that counts its references, then dropped, and its handle dropped: nothing may
//! hold the waker afterwards, the event it waited for (the task ending, the deadline, the
//! fd ready, the signal) may not wake it, and a thousand waits with fresh wakers keep at
//! most the one slot's. Sync waits are in waker_retention_review_sync.rs.

mod support;

use std::future::{pending, poll_fn};
use std::os::fd::AsRawFd;
use std::time::Duration;

use overlap::signal::{signal, SignalKind};
use overlap::sync::oneshot;
use overlap::time::{interval, sleep, timeout, DelayQueue};
use overlap::AsyncFd;
use support::{
    abandon_slot, any_woken, eventfd, eventfd_add, settle, tasks_still_held, wait_on, within,
    ManualTask,
};

const HANG: Duration = Duration::from_secs(20);

#[overlap::test]
async fn join_handle_dropped_while_its_task_runs_keeps_no_waker() {
    let (go, gate) = oneshot::channel::<()>();
    let (done_tx, done) = oneshot::channel::<u32>();
    let mut handle = overlap::spawn(async move {
        gate.await.unwrap();
        done_tx.send(3).unwrap();
        3
    });
    let abort = handle.abort_handle();
    let task = abandon_slot(&mut handle);
    assert_eq!(task.wakers_held(), 1, "the join waker waits in the task");
    let mut tasks = abandoned_a_thousand!(&mut handle);
    tasks.push(task);
    assert_eq!(
        tasks_still_held(&tasks),
        1,
        "the task keeps more than one join waker"
    );
    drop(handle);
    assert_eq!(
        tasks_still_held(&tasks),
        0,
        "the dropped handle's waker stayed in the task"
    );
    assert!(!abort.is_finished());
    go.send(()).unwrap();
    assert_eq!(within(HANG, done, "the task never ran").await, Ok(3));
    settle().await;
    assert!(abort.is_finished());
    assert!(
        !any_woken(&tasks),
        "the task's end woke a dropped handle's task"
    );
}

#[overlap::test]
async fn join_next_keeps_one_slot_and_none_once_the_set_is_dropped() {
    let mut set = overlap::JoinSet::new();
    let (go, gate) = oneshot::channel::<()>();
    let member = set.spawn(async move {
        let _ = gate.await;
    });
    let tasks = abandoned_a_thousand!(set.join_next());
    assert!(tasks_still_held(&tasks) <= 1, "more than one waker kept");
    drop(set);
    assert_eq!(
        tasks_still_held(&tasks),
        0,
        "the dropped set's waker stayed"
    );
    settle().await;
    assert!(member.is_finished(), "the set's drop aborted its member");
    assert!(go.send(()).is_err(), "the aborted member dropped its gate");
    assert!(
        !any_woken(&tasks),
        "the aborted member woke the dropped set's task"
    );
}

#[overlap::test]
async fn tracker_wait_dropped_keeps_no_waker_and_the_last_token_wakes_none() {
    let tracker = overlap::task::TaskTracker::new();
    let token = tracker.token();
    tracker.close();
    let task = abandon_slot(tracker.wait());
    assert_eq!(task.wakers_held(), 0);
    assert_eq!(tasks_still_held(&abandoned_a_thousand!(tracker.wait())), 0);
    // The last token goes on another thread, as a blocking job's would.
    std::thread::spawn(move || drop(token)).join().unwrap();
    assert!(!task.is_woken(), "the last token woke a dropped wait");
    assert!(tracker.is_empty());
}

#[overlap::test]
async fn spawn_blocking_handle_dropped_while_the_job_runs_keeps_no_waker() {
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (finished_tx, finished) = std::sync::mpsc::channel::<()>();
    let mut handle = overlap::spawn_blocking(move || {
        held.recv().unwrap();
        finished_tx.send(()).unwrap();
    });
    let tasks = abandoned_a_thousand!(&mut handle);
    assert_eq!(
        tasks_still_held(&tasks),
        1,
        "one join waker waits on the job"
    );
    drop(handle);
    assert_eq!(
        tasks_still_held(&tasks),
        0,
        "the dropped handle's waker stayed with the job"
    );
    release.send(()).unwrap();
    finished.recv_timeout(HANG).expect("the job never finished");
    settle().await;
    assert!(
        !any_woken(&tasks),
        "the job's end woke a dropped handle's task"
    );
}

#[overlap::test(start_paused = true)]
async fn timers_dropped_keep_no_waker_and_their_deadline_wakes_none() {
    let period = Duration::from_millis(10);
    let slept = abandon_slot(sleep(period));
    let timed_out = abandon_slot(timeout(period, pending::<()>()));
    assert_eq!(slept.wakers_held() + timed_out.wakers_held(), 0);
    assert_eq!(tasks_still_held(&abandoned_a_thousand!(sleep(period))), 0);

    // One sleep polled by a thousand wakers keeps the last one only.
    let mut kept = Box::pin(sleep(period));
    let tasks: Vec<ManualTask> = (0..1000)
        .map(|_| {
            let task = ManualTask::default();
            wait_on(&task, kept.as_mut());
            task
        })
        .collect();
    let held: usize = tasks.iter().map(ManualTask::wakers_held).sum();
    assert_eq!(held, 1, "a sleep keeps its last waker only");
    drop(kept);
    assert_eq!(
        tasks[999].wakers_held(),
        0,
        "the dropped sleep's waker stayed"
    );

    let mut ticks = interval(period);
    ticks.tick().await;
    let ticked = abandoned_a_thousand!(ticks.tick());
    assert!(
        tasks_still_held(&ticked) <= 1,
        "more than the one slot's waker"
    );
    drop(ticks);
    assert_eq!(
        tasks_still_held(&ticked),
        0,
        "the dropped interval's waker stayed"
    );

    let mut queue = DelayQueue::new();
    queue.insert("due", period);
    let expired = abandoned_a_thousand!(poll_fn(|cx| queue.poll_expired(cx)));
    assert!(
        tasks_still_held(&expired) <= 1,
        "more than the one slot's waker"
    );
    drop(queue);
    assert_eq!(
        tasks_still_held(&expired),
        0,
        "the dropped queue's waker stayed"
    );

    overlap::time::advance(2 * period).await;
    settle().await;
    for (task, what) in [
        (&slept, "sleep"),
        (&timed_out, "timeout"),
        (&tasks[999], "kept"),
    ] {
        assert!(
            !task.is_woken(),
            "{what}: the deadline woke a dropped timer"
        );
    }
    assert!(!any_woken(&ticked) && !any_woken(&expired));
}

#[overlap::test]
async fn async_fd_ready_waits_dropped_with_the_fd_keep_no_waker() {
    let fd = AsyncFd::new(eventfd()).unwrap();
    let readable = abandon_slot(fd.readable());
    assert_eq!(tasks_still_held(&abandoned_a_thousand!(fd.readable())), 0);
    let (r, w) = support::pipe();
    let write_end = AsyncFd::new(w).unwrap();
    let chunk = [0u8; 65536];
    while support::write(write_end.get_ref().as_raw_fd(), &chunk).is_ok() {}
    let writable = abandon_slot(write_end.writable());
    assert_eq!(
        tasks_still_held(&abandoned_a_thousand!(write_end.writable())),
        0
    );
    assert_eq!(readable.wakers_held() + writable.wakers_held(), 0);

    let mut fd_mut = AsyncFd::new(eventfd()).unwrap();
    let readable_mut = abandon_slot(fd_mut.readable_mut());
    let eventfd_of_mut = fd_mut.into_inner();
    assert_eq!(readable_mut.wakers_held(), 0);

    let counter = fd.into_inner();
    drop(write_end);
    eventfd_add(&counter, 1);
    eventfd_add(&eventfd_of_mut, 1);
    drop(r);
    settle().await;
    assert!(!readable.is_woken() && !writable.is_woken() && !readable_mut.is_woken());
}

#[overlap::test]
async fn signal_recv_keeps_one_slot_and_none_once_the_listener_is_dropped() {
    let mut usr2 = signal(SignalKind::user_defined2()).unwrap();
    // A second listener, kept: the arrival still has somewhere to go after the first goes.
    let mut kept = signal(SignalKind::user_defined2()).unwrap();
    let tasks = abandoned_a_thousand!(usr2.recv());
    assert!(
        tasks_still_held(&tasks) <= 1,
        "more than the one slot's waker"
    );
    drop(usr2);
    assert_eq!(
        tasks_still_held(&tasks),
        0,
        "the dropped listener's waker stayed"
    );
    // SAFETY: raise takes no pointers; SIGUSR2 is handled by `kept`.
    assert_eq!(unsafe { libc::raise(libc::SIGUSR2) }, 0);
    assert_eq!(
        within(HANG, kept.recv(), "the arrival was lost").await,
        Some(())
    );
    assert!(
        !any_woken(&tasks),
        "the arrival woke a dropped listener's task"
    );
}
