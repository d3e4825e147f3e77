//! A loop of small reads served from an `Unblock`'s read-ahead (no job in between) spends
//! the task's cooperative budget, as a `File`'s does, so it cannot keep every other task of
//! its runtime from running until the read-ahead is used up.

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use overlap::io::{AsyncReadExt, Unblock};
use support::steps_before_another_task_runs;

#[test]
fn small_reads_from_an_unblocks_read_ahead_let_other_tasks_run() {
    const CHUNK: usize = 1 << 20;
    overlap::block_on(async {
        let data = std::io::Cursor::new(vec![7u8; 2 * CHUNK]);
        let mut first = Unblock::with_capacity(CHUNK, data);
        // One job fetches a whole chunk ahead.
        let mut byte = [0u8; 1];
        assert_eq!(first.read(&mut byte).await.unwrap(), 1);
        let unblock = Rc::new(RefCell::new(Some(first)));
        let steps = steps_before_another_task_runs(100_000, move || {
            let unblock = unblock.clone();
            async move {
                let mut byte = [0u8; 1];
                let mut reader = unblock.borrow_mut().take().unwrap();
                let n = reader.read(&mut byte).await.unwrap();
                *unblock.borrow_mut() = Some(reader);
                n == 1
            }
        })
        .await;
        assert!(steps < 1000, "{steps} reads before another task ran");
    });
}
