//! A loop of `io::stdout` writes spends the task's cooperative budget: when the pool's job
//! is done with each chunk before the next write comes (the task does other work between
//! writes, or the stream is fast), no write ever waits, and without the budget the loop
//! would keep every other task of its runtime from running.
//!
//! The writes run in a child process (run_in_child), whose stdout is a pipe the parent
//! reads, so they do not land in the test harness's own output.

mod support;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use overlap::io::AsyncWriteExt;
use support::{poll_once, run_in_child, steps_before_another_task_runs};

/// Only a stuck write job gets near this.
const HANG: Duration = Duration::from_secs(30);

/// Far more writes than a budget (128): the loop must yield long before.
const ROUNDS: u64 = 1000;

#[test]
fn a_stdout_write_loop_that_never_waits_lets_other_tasks_run() {
    run_in_child(
        "a_stdout_write_loop_that_never_waits_lets_other_tasks_run",
        || {
            overlap::block_on(async {
                let out = Rc::new(RefCell::new(Some(overlap::io::stdout())));
                let n = steps_before_another_task_runs(ROUNDS, move || {
                    let out = out.clone();
                    async move {
                        // Taken out for the awaits and put back: no borrow held across them.
                        let mut o = out.borrow_mut().take().unwrap();
                        assert_eq!(o.write(b"x").await.unwrap(), 1);
                        // Busy until the job wrote the byte (blocking, as other work would
                        // be): the next write then finds no job in flight and never waits.
                        let give_up = Instant::now() + HANG;
                        while poll_once(o.flush()).await.is_pending() {
                            assert!(Instant::now() < give_up, "the write job never finished");
                            std::thread::sleep(Duration::from_micros(50));
                        }
                        *out.borrow_mut() = Some(o);
                        true
                    }
                })
                .await;
                assert!(n < ROUNDS, "{ROUNDS} stdout writes without yielding");
            });
        },
    );
}
