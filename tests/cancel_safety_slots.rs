//! A `select!` loop whose other branch keeps winning drops the same kind of wait over and
//! over. Waits of a single consumer (a receiver, a join set, a stream read) may leave their
//! waker in the consumer's slot until the next wake, but only one: this repeats each
//! dropped wait many times, with one task's waker, and counts the wakers still held.

mod support;

use std::time::Duration;

use overlap::io::AsyncReadExt;
use overlap::sync::{broadcast, mpsc, oneshot, watch};
use support::{tcp_pair, ManualTask};

const ROUNDS: usize = 100;

/// Makes and drops `ROUNDS` waits with `$make`, each polled once by `$task`, and checks
/// how many copies of `$task`'s waker are still held.
macro_rules! repeat {
    ($what:expr, $task:expr, $make:expr) => {{
        for _ in 0..ROUNDS {
            let mut fut = Box::pin($make);
            assert!(
                $task.poll(fut.as_mut()).is_pending(),
                "{}: ready at once",
                $what
            );
        }
        let held = $task.wakers_held();
        assert!(
            held <= 1,
            "{}: {held} wakers held after {ROUNDS} dropped waits",
            $what
        );
    }};
}

#[overlap::test]
async fn repeatedly_dropped_waits_hold_at_most_one_waker() {
    let task = ManualTask::default();
    let (_tx, mut rx) = mpsc::channel::<u8>(1);
    repeat!("mpsc recv", task, rx.recv());
    let task = ManualTask::default();
    let mut buf = Vec::new();
    let (_tx, mut rx) = mpsc::channel::<u8>(1);
    repeat!("mpsc recv_many", task, rx.recv_many(&mut buf, 4));
    let task = ManualTask::default();
    let (_btx, mut brx) = broadcast::channel::<u8>(1);
    repeat!("broadcast recv", task, brx.recv());
    let task = ManualTask::default();
    let (_wtx, mut wrx) = watch::channel(0u8);
    repeat!("watch changed", task, wrx.changed());
    let task = ManualTask::default();
    repeat!("watch wait_for", task, wrx.wait_for(|v| *v == 1));
    let task = ManualTask::default();
    let (mut otx, mut orx) = oneshot::channel::<u8>();
    repeat!("oneshot receiver", task, &mut orx);
    let task = ManualTask::default();
    repeat!("oneshot closed", task, otx.closed());
    let task = ManualTask::default();
    let mut set = overlap::JoinSet::new();
    set.spawn(std::future::pending::<()>());
    repeat!("join_next", task, set.join_next());
    let task = ManualTask::default();
    let mut usr2 = overlap::signal::signal(overlap::signal::SignalKind::user_defined2()).unwrap();
    repeat!("signal recv", task, usr2.recv());
    let task = ManualTask::default();
    let mut ticks = overlap::time::interval(Duration::from_secs(3600));
    ticks.tick().await;
    repeat!("interval tick", task, ticks.tick());
    let task = ManualTask::default();
    let (_a, mut b) = tcp_pair().await;
    let mut bytes = [0u8; 8];
    repeat!("tcp read", task, b.read(&mut bytes));
    let task = ManualTask::default();
    let (_ptx, mut prx) = overlap::pipe::pipe().unwrap();
    repeat!("pipe read", task, prx.read(&mut bytes));
    let task = ManualTask::default();
    let (_near, far) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut unblock = overlap::io::Unblock::new(far);
    repeat!("unblock read", task, unblock.read(&mut bytes));
}
