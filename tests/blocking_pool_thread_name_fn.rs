//! `Builder::thread_name_fn`: each pool thread is named by the function as it is started,
//! the last of `thread_name` and `thread_name_fn` called counts, and a function that panics
//! or answers a name with a NUL byte fails that thread's start (as a refused thread does)
//! without the panic reaching the task that queued the job.

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use overlap::Runtime;
use support::{jobs_held_at, within, Gate};

fn current_name() -> Option<String> {
    std::thread::current().name().map(String::from)
}

/// Four jobs held at a gate at once need four threads: each is named by its own call.
#[test]
fn each_thread_is_named_by_its_own_call_of_the_function() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let rt = Runtime::builder()
        .thread_name_fn(move || format!("named-{}", counter.fetch_add(1, Ordering::SeqCst)))
        .build()
        .unwrap();
    let gate = Gate::default();
    let names: Vec<String> = rt.block_on(async {
        // Each job holds its thread until all four are held, one per thread.
        let jobs = jobs_held_at(&gate, 4, current_name).await;
        // All four were queued with no thread free: four threads were started, one each.
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        gate.open();
        let mut names = Vec::new();
        for job in jobs {
            let what = "a job on a thread named by thread_name_fn";
            names.push(
                within(Duration::from_secs(10), job, what)
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        names
    });
    let want: BTreeSet<String> = (0..4).map(|i| format!("named-{i}")).collect();
    assert_eq!(
        names.iter().cloned().collect::<BTreeSet<_>>(),
        want,
        "{names:?}"
    );
}

#[test]
fn the_last_of_thread_name_and_thread_name_fn_counts() {
    let name_of_a_job = |builder: &mut overlap::runtime::Builder| {
        let rt = builder.build().unwrap();
        rt.block_on(async { overlap::spawn_blocking(current_name).await.unwrap() })
    };
    let mut builder = Runtime::builder();
    builder
        .thread_name("fixed")
        .thread_name_fn(|| "computed".into());
    assert_eq!(name_of_a_job(&mut builder).as_deref(), Some("computed"));
    builder.thread_name("fixed-again");
    assert_eq!(name_of_a_job(&mut builder).as_deref(), Some("fixed-again"));
}

/// The function panics once: that job fails with an error naming the setting, the panic
/// (whose payload panics again when dropped) goes no further, and the next job gets a
/// thread named by the function's next answer.
#[test]
fn a_panicking_name_function_fails_that_start_and_the_pool_starts_threads_again() {
    let panic_next = Arc::new(AtomicBool::new(true));
    let flag = panic_next.clone();
    let rt = Runtime::builder()
        .thread_name_fn(move || {
            if flag.swap(false, Ordering::SeqCst) {
                support::panic_twice();
            }
            "after-the-panic".into()
        })
        .build()
        .unwrap();
    rt.block_on(async {
        let err = overlap::spawn_blocking(|| 1).await.unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("could not start a blocking thread"), "{msg}");
        assert!(msg.contains("Builder::thread_name_fn panicked"), "{msg}");
        let name = overlap::spawn_blocking(current_name).await.unwrap();
        assert_eq!(name.as_deref(), Some("after-the-panic"));
        // overlap's own pool work (here, a file read) is served by that thread.
        let stat = overlap::fs::read("/proc/self/stat").await.unwrap();
        assert!(!stat.is_empty());
    });
}

#[test]
fn a_name_with_a_nul_byte_fails_the_start_of_that_thread_with_an_error_saying_so() {
    let rt = Runtime::builder()
        .thread_name_fn(|| "bad\0name".into())
        .build()
        .unwrap();
    rt.block_on(async {
        let err = overlap::spawn_blocking(|| 1).await.unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("thread_name_fn returned a name with a NUL byte"),
            "{msg}"
        );
        let err = overlap::fs::read("/proc/self/stat").await.unwrap_err();
        assert!(err.to_string().contains("NUL byte"), "{err}");
    });
}

/// With one thread running, a second start whose name function panics does not fail the
/// job: it waits for the running thread, as when the system refuses a thread.
#[test]
fn a_failed_start_beside_a_running_thread_leaves_the_job_to_that_thread() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let rt = Runtime::builder()
        .thread_name_fn(move || match counter.fetch_add(1, Ordering::SeqCst) {
            0 => "the-only-one".into(),
            _ => panic!("no second name"),
        })
        .build()
        .unwrap();
    let gate = Gate::default();
    rt.block_on(async {
        let held = {
            let gate = gate.clone();
            overlap::spawn_blocking(move || {
                gate.wait();
                current_name()
            })
        };
        let queued = overlap::spawn_blocking(current_name);
        // The second job asked for a thread, and the name function refused it.
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        gate.open();
        let what = "jobs served by the one thread that started";
        let held = within(Duration::from_secs(10), held, what).await.unwrap();
        let queued = within(Duration::from_secs(10), queued, what).await.unwrap();
        assert_eq!(held.as_deref(), Some("the-only-one"));
        assert_eq!(queued.as_deref(), Some("the-only-one"));
    });
}
