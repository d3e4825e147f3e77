//! `AbortHandle` keeps the task cell alive, not the task: handles cloned and dropped in every
//! order around the task's end, the runtime's drop and the set's drop, and by the task
//! itself, leave no dangling access or leak (CI runs this under valgrind).

use std::future::pending;
use std::time::Duration;

use overlap::sync::oneshot;
use overlap::{AbortHandle, JoinSet, Runtime};

#[test]
fn handles_outlive_the_runtime_in_every_order() {
    for order in 0..4 {
        let rt = Runtime::new().unwrap();
        let (jh, ah, ah_done, jh_done) = rt.block_on(async {
            let jh = overlap::spawn(pending::<u32>());
            let ah = jh.abort_handle();
            let jh_done = overlap::spawn(async { vec![1u8; 100] });
            let ah_done = jh_done.abort_handle();
            overlap::yield_now().await;
            (jh, ah, ah_done, jh_done)
        });
        let ah2 = ah.clone();
        drop(rt);
        assert!(ah.is_finished());
        ah.abort();
        ah_done.abort();
        match order {
            0 => {
                drop(jh);
                drop(ah);
                drop(ah2);
                drop(jh_done);
                drop(ah_done);
            }
            1 => {
                drop(ah);
                drop(jh);
                drop(ah_done);
                drop(jh_done);
                drop(ah2);
            }
            2 => {
                let late = jh.abort_handle();
                drop(jh);
                drop(ah2);
                drop(ah);
                late.abort();
                drop(late);
                drop(jh_done);
                drop(ah_done);
            }
            _ => {
                drop(ah2);
                drop(ah_done);
                drop(ah);
                drop(jh_done);
                drop(jh);
            }
        }
    }
}

#[test]
fn a_task_aborts_itself_and_holds_its_own_handle() {
    overlap::block_on(async {
        let (tx, rx) = oneshot::channel::<AbortHandle>();
        let jh = overlap::spawn(async move {
            let me = rx.await.unwrap();
            me.abort();
            let keep = me.clone();
            pending::<()>().await;
            drop(keep);
        });
        tx.send(jh.abort_handle()).unwrap();
        assert!(jh.await.unwrap_err().is_cancelled());
    });
}

#[test]
fn a_detached_task_owning_its_own_handle_is_freed_at_shutdown() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (tx, rx) = oneshot::channel::<AbortHandle>();
        let jh = overlap::spawn(async move {
            let _me = rx.await.unwrap();
            pending::<()>().await;
        });
        tx.send(jh.abort_handle()).unwrap();
        drop(jh);
        overlap::yield_now().await;
    });
    drop(rt);
}

#[test]
fn a_task_whose_output_is_its_own_abort_handle() {
    overlap::block_on(async {
        for drop_join_first in [false, true] {
            let (tx, rx) = oneshot::channel::<AbortHandle>();
            let jh = overlap::spawn(async move { rx.await.unwrap() });
            tx.send(jh.abort_handle()).unwrap();
            overlap::yield_now().await;
            overlap::yield_now().await;
            assert!(jh.is_finished());
            if drop_join_first {
                drop(jh);
            } else {
                let me = jh.await.unwrap();
                assert!(me.is_finished());
            }
        }
        // Detached before completion: the output (its own handle) is dropped by finish().
        let (tx, rx) = oneshot::channel::<AbortHandle>();
        let jh = overlap::spawn(async move {
            overlap::time::sleep(Duration::from_millis(5)).await;
            rx.await.unwrap()
        });
        tx.send(jh.abort_handle()).unwrap();
        drop(jh);
        overlap::time::sleep(Duration::from_millis(20)).await;
    });
}

#[test]
fn join_set_handles_after_the_set_and_runtime_are_gone() {
    let rt = Runtime::new().unwrap();
    let handles = rt.block_on(async {
        let mut set = JoinSet::new();
        let a = set.spawn(pending::<String>());
        let b = set.spawn(async { String::from("done") });
        let c = set.spawn(async { String::from("x") });
        c.abort();
        overlap::yield_now().await;
        assert!(set.try_join_next().is_some());
        let b2 = b.clone();
        drop(set);
        (a, b, b2, c)
    });
    drop(rt);
    assert!(handles.0.is_finished());
    handles.0.abort();
    drop(handles);
}

#[test]
fn handles_dropped_between_block_on_calls() {
    let rt = Runtime::new().unwrap();
    let (jh, ah) = rt.block_on(async {
        let jh = overlap::spawn(async {
            overlap::time::sleep(Duration::from_millis(5)).await;
            5u64
        });
        let ah = jh.abort_handle();
        (jh, ah)
    });
    let ah2 = ah.clone();
    drop(ah);
    rt.block_on(async {
        assert_eq!(jh.await.unwrap(), 5);
    });
    drop(ah2);
    rt.block_on(async { overlap::yield_now().await });
}

/// A task whose future panics while being dropped by an abort reports that panic, as
/// tokio's does, not a plain cancellation.
#[test]
fn an_abort_whose_drop_panics_reports_the_panic() {
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            panic!("dropped with a panic");
        }
    }
    Runtime::new().unwrap().block_on(async {
        let task = overlap::spawn(async {
            let _guard = PanicOnDrop;
            pending::<()>().await
        });
        overlap::yield_now().await;
        task.abort();
        let err = task.await.unwrap_err();
        assert!(err.is_panic(), "{err:?}");
        let payload = err.into_panic();
        assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&"dropped with a panic")
        );
        // The runtime goes on.
        assert_eq!(overlap::spawn(async { 5 }).await.unwrap(), 5);
    });
}
