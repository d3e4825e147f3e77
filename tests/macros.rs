//! `#[overlap::test]` (and so `#[overlap::main]`, the same rewrite) on real async tests.

mod support;

use std::cell::RefCell;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream};
use support::DropFlag;

#[overlap::test]
async fn an_async_test_runs_tasks_that_need_not_be_send() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    overlap::spawn(async move { l.borrow_mut().push("task") })
        .await
        .unwrap();
    log.borrow_mut().push("test");
    assert_eq!(*log.borrow(), ["task", "test"]);
    assert_eq!(overlap::metrics().tasks_spawned, 1);
}

#[overlap::test]
async fn an_async_test_may_return_a_result_and_use_question_marks() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let client = overlap::spawn(async move {
        let mut c = TcpStream::connect(addr).await?;
        c.write_all(b"ping").await?;
        std::io::Result::Ok(())
    });
    let (mut server, _) = listener.accept().await?;
    let mut got = [0u8; 4];
    server.read_exact(&mut got).await?;
    assert_eq!(&got, b"ping");
    client.await??;
    Ok(())
}

#[overlap::test]
#[should_panic(expected = "a failing async test")]
async fn a_panic_in_the_body_fails_the_test() {
    overlap::yield_now().await;
    panic!("a failing async test");
}

#[overlap::test]
async fn each_test_gets_a_fresh_runtime() {
    // Nothing spawned yet in this test's runtime, whatever other tests did.
    assert_eq!(overlap::metrics().tasks_spawned, 0);
}

#[test]
fn an_early_return_leaves_the_async_block_not_the_caller() {
    #[overlap::main]
    async fn main() -> u32 {
        if overlap::spawn(async { true }).await.unwrap() {
            return 7;
        }
        8
    }
    assert_eq!(main(), 7);
}

/// tokio's `#[tokio::main(flavor = "current_thread")]` and `#[tokio::test(flavor =
/// "current_thread")]` carry over unchanged (overlap's runtime is always that).
#[overlap::test(flavor = "current_thread")]
async fn tokios_current_thread_flavor_is_accepted() {
    assert_eq!(overlap::spawn(async { 5 }).await.unwrap(), 5);
}

#[overlap::test(flavor = "current_thread", start_paused = true)]
async fn the_flavor_combines_with_start_paused() {
    let start = overlap::time::Instant::now();
    overlap::time::sleep(std::time::Duration::from_secs(3600)).await;
    assert!(start.elapsed() >= std::time::Duration::from_secs(3600));
}

#[test]
fn main_takes_the_flavor_too() {
    #[overlap::main(flavor = "current_thread")]
    async fn main() -> u32 {
        overlap::spawn(async { 9 }).await.unwrap()
    }
    assert_eq!(main(), 9);
}

/// A body handed over by a `macro_rules!` macro as a `$body:block` (which reaches the
/// attribute wrapped in an invisible group) is the function's body like any other.
macro_rules! async_test_with_body {
    ($name:ident, $body:block) => {
        #[overlap::test]
        async fn $name() $body
    };
}

async_test_with_body!(a_body_from_a_macro_rules_block_runs, {
    let got = overlap::spawn(async { 11 }).await.unwrap();
    assert_eq!(got, 11);
});

/// What `crate = "..."` names in the tests below: the `overlap` crate as a renamed dependency
/// (`my_rt = { package = "overlap", .. }`) or a re-export would give it, counting the runs that
/// go through it so that a setting ignored in favour of `::overlap` shows.
mod renamed {
    use std::cell::Cell;
    use std::future::Future;

    thread_local! {
        /// How many times a `block_on` of this module ran on this thread.
        pub static RUNS: Cell<u32> = const { Cell::new(0) };
    }

    /// `overlap::block_on`, counted.
    pub fn block_on<F: Future>(future: F) -> F::Output {
        RUNS.with(|runs| runs.set(runs.get() + 1));
        overlap::block_on(future)
    }

    /// `overlap::block_on_start_paused`, counted.
    pub fn block_on_start_paused<F: Future>(future: F) -> F::Output {
        RUNS.with(|runs| runs.set(runs.get() + 1));
        overlap::block_on_start_paused(future)
    }
}

/// tokio's `crate = "..."`: the attribute reaches the runtime through the path given, for a
/// crate that depends on overlap under another name.
#[test]
fn the_crate_setting_names_the_path_to_overlap() {
    #[overlap::main(crate = "crate::renamed")]
    async fn main() -> u32 {
        overlap::spawn(async { 4 }).await.unwrap()
    }
    #[overlap::main(start_paused = true, crate = "crate::renamed")]
    async fn paused() -> bool {
        let start = overlap::time::Instant::now();
        overlap::time::sleep(std::time::Duration::from_secs(3600)).await;
        start.elapsed() >= std::time::Duration::from_secs(3600)
    }
    assert_eq!(main(), 4);
    assert!(paused());
    assert_eq!(renamed::RUNS.with(|runs| runs.get()), 2);
}

#[overlap::test(crate = "::overlap")]
async fn the_crate_setting_takes_a_path_from_the_root() {
    assert_eq!(overlap::spawn(async { 5 }).await.unwrap(), 5);
}

/// As with tokio's, a function other than `main` may take arguments, `self` among them: the
/// body's `async move` block takes them over.
#[test]
fn a_function_other_than_main_takes_arguments() {
    struct Doubler {
        by: u32,
    }
    impl Doubler {
        #[overlap::main]
        async fn run(&self, mut n: u32, label: &str) -> String {
            n = overlap::spawn(async move { n * 2 }).await.unwrap() * self.by;
            format!("{label}: {n}")
        }
    }
    assert_eq!(Doubler { by: 3 }.run(7, "got"), "got: 42");
}

/// The runtime goes when the body returns, as the docs say: a task still pending is dropped
/// with what it owns, its fds closed, before the function returns (and so before the next
/// test on the thread).
#[test]
fn a_task_left_pending_is_dropped_with_its_fds_when_the_body_returns() {
    #[overlap::main]
    async fn leave_a_task_pending(flag: DropFlag, write_end: OwnedFd) {
        let tx = overlap::pipe::Sender::from_owned_fd(write_end).unwrap();
        overlap::spawn(async move {
            let (_flag, _tx) = (flag, tx);
            std::future::pending::<()>().await
        });
        overlap::yield_now().await;
    }
    let (flag, dropped) = DropFlag::new();
    let (read_end, write_end) = support::pipe();
    leave_a_task_pending(flag, write_end);
    assert!(dropped.get(), "the pending task was not dropped");
    // Only the task held the write end: the (non-blocking) read end is at end of file.
    let mut byte = [0u8; 1];
    let read = support::read(read_end.as_raw_fd(), &mut byte);
    assert_eq!(read.unwrap(), 0, "the task's write end is still open");
}

/// A panic in a spawned task fails the test only where the test awaits the task, as with
/// tokio's: it comes back through the handle as a `JoinError` with its payload, and a
/// detached task's panic leaves the test running.
#[overlap::test]
async fn a_panic_in_a_spawned_task_comes_back_through_its_handle() {
    let ran = Rc::new(std::cell::Cell::new(false));
    let r = ran.clone();
    let detached = overlap::spawn(async move {
        r.set(true);
        panic!("a detached task's panic")
    });
    drop(detached);
    let awaited = overlap::spawn(async { panic!("an awaited task's panic") });
    let payload = awaited.await.unwrap_err().into_panic();
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"an awaited task's panic")
    );
    // The detached task ran (and panicked) first, and the test goes on.
    assert!(ran.get());
    assert_eq!(overlap::spawn(async { 1 }).await.unwrap(), 1);
}
