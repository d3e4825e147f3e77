//! Whether a loop of always-ready operations lets other tasks run (the cooperative budget).

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;

/// Runs `step` (one always-ready operation; false ends the loop) in a task until a task
/// spawned right after it has run, or `limit` steps are done; returns how many steps ran
/// before that.
pub async fn steps_before_another_task_runs<S, F>(limit: u64, mut step: S) -> u64
where
    S: FnMut() -> F + 'static,
    F: Future<Output = bool>,
{
    let other_ran = Rc::new(Cell::new(false));
    let flag = other_ran.clone();
    let looper = overlap::spawn(async move {
        let mut n = 0;
        while n < limit && !flag.get() && step().await {
            n += 1;
        }
        n
    });
    overlap::spawn(async move { other_ran.set(true) });
    looper.await.unwrap()
}
