//! `yield_now` lets the reactor run before the task continues: a task that yields while it
//! waits for another task's I/O sees that I/O after one yield, not after a whole batch of
//! task polls.

use std::cell::Cell;
use std::io::Write;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::AsyncReadExt;
use overlap::net::UnixStream;
use overlap::stream::{FuturesUnordered, StreamExt};

/// A reader parked on a socket, a byte sent to it, and a spawned task that yields until the
/// reader has it, running the yielding loop as is or inside a combinator (which polls
/// it with a waker of its own). Returns how many yields it took.
async fn yields_until_io_arrives(in_combinator: bool) -> u32 {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    let mut ours = UnixStream::from_std(ours).unwrap();
    let got = Rc::new(Cell::new(false));
    let g = got.clone();
    let reader = overlap::spawn(async move {
        let mut byte = [0u8; 1];
        ours.read_exact(&mut byte).await.unwrap();
        g.set(true);
    });
    // Let the reader park on the socket.
    overlap::yield_now().await;
    let wait = async move {
        (&theirs).write_all(b"x").unwrap();
        let mut yields = 0;
        while !got.get() {
            overlap::yield_now().await;
            yields += 1;
            assert!(yields < 1000, "the reader never ran");
        }
        yields
    };
    // A spawned task, as most are (the loop treats `block_on`'s own future apart).
    let yielder = overlap::spawn(async move {
        if in_combinator {
            let mut set = FuturesUnordered::new();
            set.push(wait);
            set.next().await.unwrap()
        } else {
            wait.await
        }
    });
    let yields = yielder.await.unwrap();
    reader.await.unwrap();
    yields
}

#[overlap::test]
async fn a_yield_lets_ready_io_reach_its_task_first() {
    let yields = yields_until_io_arrives(false).await;
    assert!(
        yields <= 2,
        "{yields} yields before the reader saw its byte"
    );
}

/// Under a combinator's waker the yield wakes at once (it cannot tell that waker from
/// another executor's): the I/O still gets through within a batch of task polls.
#[overlap::test]
async fn a_yield_inside_a_combinator_lets_ready_io_through_within_a_batch() {
    let yields = yields_until_io_arrives(true).await;
    assert!(
        yields <= 200,
        "{yields} yields before the reader saw its byte"
    );
}

/// A timer that came due while a task ran wakes its task ahead of the yielding one.
#[overlap::test]
async fn a_yield_lets_a_due_timer_reach_its_task_first() {
    // The timer must come due while the yielder blocks, not before: on a machine so slow
    // that it fired already, the round proves nothing and is tried again.
    for _ in 0..5 {
        let fired = Rc::new(Cell::new(false));
        let f = fired.clone();
        let sleeper = overlap::spawn(async move {
            overlap::time::sleep(Duration::from_millis(100)).await;
            f.set(true);
        });
        let yielder = overlap::spawn(async move {
            overlap::yield_now().await; // the sleeper registers its timer
            if fired.get() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(200)); // its deadline passes
            let mut yields = 0;
            while !fired.get() {
                overlap::yield_now().await;
                yields += 1;
                assert!(yields < 1000, "the timer never fired");
            }
            Some(yields)
        });
        let yields = yielder.await.unwrap();
        sleeper.await.unwrap();
        if let Some(yields) = yields {
            assert_eq!(yields, 1, "the timer's task ran after the yielding one");
            return;
        }
    }
    panic!("the timer fired early in every round");
}

/// Another executor run inside a task (blocking the loop's thread, which is misuse, but
/// must not hang): its waker is woken at once.
#[overlap::test]
async fn a_yield_under_another_executor_inside_a_task_returns() {
    let task = overlap::spawn(async { parking_block_on(overlap::yield_now()) });
    task.await.unwrap();
}

/// A thread-parking executor, like `pollster`, that fails instead of hanging when nothing
/// wakes it within a minute.
fn parking_block_on<F: std::future::Future>(fut: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut fut = std::pin::pin!(fut);
    let start = std::time::Instant::now();
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut Context::from_waker(&waker)) {
            return v;
        }
        std::thread::park_timeout(Duration::from_secs(60));
        assert!(start.elapsed() < Duration::from_secs(60), "never woken");
    }
}

#[test]
fn yield_outside_a_runtime_wakes_itself() {
    // Another executor polling it: it must not wait for a runtime loop that is not there.
    futures_executor_block_on(overlap::yield_now());
}

/// A minimal executor: polls with a waker that counts wakes, until ready.
fn futures_executor_block_on<F: std::future::Future>(fut: F) -> F::Output {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = Waker::from(count.clone());
    let mut fut = std::pin::pin!(fut);
    loop {
        let before = count.0.load(Ordering::SeqCst);
        if let Poll::Ready(v) = fut.as_mut().poll(&mut Context::from_waker(&waker)) {
            return v;
        }
        assert!(
            count.0.load(Ordering::SeqCst) > before,
            "pending without a wake"
        );
    }
}

/// The `block_on` future and a task that both yield in a loop take turns one for one, as on
/// tokio: a yield puts each behind the other, never behind a task that yielded after it.
#[test]
fn the_block_on_future_and_a_yielding_task_take_turns() {
    let log = Rc::new(std::cell::RefCell::new(Vec::new()));
    overlap::block_on({
        let log = log.clone();
        async move {
            let task_log = log.clone();
            let task = overlap::spawn(async move {
                for i in 0..4 {
                    task_log.borrow_mut().push(format!("task {i}"));
                    overlap::yield_now().await;
                }
            });
            for i in 0..3 {
                log.borrow_mut().push(format!("main {i}"));
                overlap::yield_now().await;
            }
            task.await.unwrap();
        }
    });
    let expected: Vec<String> = (0..3)
        .flat_map(|i| [format!("main {i}"), format!("task {i}")])
        .chain(["task 3".to_string()])
        .collect();
    assert_eq!(*log.borrow(), expected);
}
