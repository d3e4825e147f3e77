//! Task IDs: distinct among live tasks, the same inside a task and on its handles, absent
//! outside tasks, carried by join errors and by `JoinSet::join_next_with_id`.

mod support;

use std::collections::HashSet;
use std::future::{pending, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use overlap::sync::oneshot;
use overlap::task::{self, Id};
use overlap::{JoinSet, Runtime};
use support::panic_message;

#[test]
fn live_tasks_have_distinct_ids() {
    overlap::block_on(async {
        let handles: Vec<_> = (0..16).map(|_| overlap::spawn(pending::<()>())).collect();
        let ids: HashSet<Id> = handles.iter().map(|h| h.id()).collect();
        assert_eq!(ids.len(), handles.len());
        for h in &handles {
            h.abort();
        }
    });
}

#[test]
fn id_inside_a_task_equals_its_handles_ids() {
    overlap::block_on(async {
        let (tx, rx) = oneshot::channel::<Id>();
        let handle = overlap::spawn(async move {
            let from_outside = rx.await.unwrap();
            assert_eq!(task::id(), from_outside);
            assert_eq!(task::try_id(), Some(from_outside));
            task::id()
        });
        let abort = handle.abort_handle();
        assert_eq!(abort.id(), handle.id());
        assert_eq!(abort.clone().id(), handle.id());
        tx.send(handle.id()).unwrap();
        let expected = handle.id();
        assert_eq!(handle.await.unwrap(), expected);
    });
}

#[test]
fn id_is_stable_across_polls_and_differs_between_tasks() {
    overlap::block_on(async {
        let a = overlap::spawn(async {
            let before = task::id();
            overlap::yield_now().await;
            assert_eq!(task::id(), before);
            before
        });
        let b = overlap::spawn(async { task::id() });
        let (a_id, b_id) = (a.id(), b.id());
        assert_ne!(a_id, b_id);
        assert_eq!(a.await.unwrap(), a_id);
        assert_eq!(b.await.unwrap(), b_id);
    });
}

#[test]
fn no_id_outside_a_task() {
    assert_eq!(task::try_id(), None);
    overlap::block_on(async {
        assert_eq!(task::try_id(), None, "block_on's future is not a task");
        // Nor after a task ran.
        overlap::spawn(async {}).await.unwrap();
        assert_eq!(task::try_id(), None);
    });
    let rt = Runtime::new().unwrap();
    rt.block_on(async { assert_eq!(task::try_id(), None) });
}

#[test]
fn id_outside_a_task_panics_with_a_clear_message() {
    let payload = std::panic::catch_unwind(task::id).unwrap_err();
    assert!(panic_message(payload).contains("outside of a task"));
    let payload = std::panic::catch_unwind(|| overlap::block_on(async { task::id() }));
    assert!(panic_message(payload.unwrap_err()).contains("outside of a task"));
}

#[test]
fn another_runtime_entered_inside_a_task_does_not_hide_its_id() {
    let other = Rc::new(Runtime::new().unwrap());
    overlap::block_on(async move {
        let handle = overlap::spawn(async move {
            let _guard = other.enter();
            task::try_id()
        });
        let id = handle.id();
        assert_eq!(handle.await.unwrap(), Some(id));
    });
}

/// Records `task::try_id()` when dropped.
struct IdOnDrop(Rc<std::cell::Cell<Option<Id>>>);

impl Drop for IdOnDrop {
    fn drop(&mut self) {
        self.0.set(task::try_id());
    }
}

impl Future for IdOnDrop {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

#[test]
fn an_aborted_future_is_dropped_with_its_task_id() {
    overlap::block_on(async {
        let seen = Rc::new(std::cell::Cell::new(None));
        let handle = overlap::spawn(IdOnDrop(seen.clone()));
        overlap::yield_now().await;
        handle.abort();
        let id = handle.id();
        assert!(handle.await.unwrap_err().is_cancelled());
        assert_eq!(seen.get(), Some(id));
    });
}

#[test]
fn a_future_dropped_at_shutdown_sees_its_task_id() {
    let seen = Rc::new(std::cell::Cell::new(None));
    let rt = Runtime::new().unwrap();
    let (handle_id, abort) = rt.block_on({
        let seen = seen.clone();
        async move {
            let handle = overlap::spawn(IdOnDrop(seen));
            (handle.id(), handle.abort_handle())
        }
    });
    drop(rt);
    assert_eq!(seen.get(), Some(handle_id));
    assert_eq!(abort.id(), handle_id);
}

#[test]
fn join_errors_carry_the_task_id() {
    overlap::block_on(async {
        let panics = overlap::spawn(async { panic!("boom") });
        let id = panics.id();
        let err = panics.await.unwrap_err();
        assert!(err.is_panic());
        assert_eq!(err.id(), id);

        let stuck = overlap::spawn(pending::<()>());
        let id = stuck.id();
        stuck.abort();
        let err = stuck.await.unwrap_err();
        assert!(err.is_cancelled());
        assert_eq!(err.id(), id);
    });
}

#[test]
fn join_next_with_id_names_returned_panicked_and_aborted_tasks() {
    overlap::block_on(async {
        let mut set = JoinSet::new();
        let returned = set.spawn(async { 7 }).id();
        let panicked = set.spawn(async { panic!("boom") }).id();
        let aborted = set.spawn(pending());
        aborted.abort();
        let mut ok = Vec::new();
        let mut panics = Vec::new();
        let mut cancels = Vec::new();
        while let Some(res) = set.join_next_with_id().await {
            match res {
                Ok(pair) => ok.push(pair),
                Err(e) if e.is_panic() => panics.push(e.id()),
                Err(e) => cancels.push(e.id()),
            }
        }
        assert_eq!(ok, [(returned, 7)]);
        assert_eq!(panics, [panicked]);
        assert_eq!(cancels, [aborted.id()]);
    });
}

#[test]
fn try_join_next_with_id_reports_the_id_of_a_finished_task() {
    overlap::block_on(async {
        let mut set = JoinSet::new();
        let id = set.spawn(async { task::id() }).id();
        assert!(set.try_join_next_with_id().is_none());
        overlap::yield_now().await;
        let (reported, inside) = set.try_join_next_with_id().unwrap().unwrap();
        assert_eq!(reported, id);
        assert_eq!(inside, id);
        assert!(set.is_empty());
    });
}

#[test]
fn spawn_blocking_handles_have_distinct_ids() {
    overlap::block_on(async {
        let a = overlap::spawn_blocking(|| 1);
        let b = overlap::spawn_blocking(|| 2);
        assert_ne!(a.id(), b.id());
        assert_eq!(a.await.unwrap() + b.await.unwrap(), 3);
    });
}

#[test]
fn a_spawn_blocking_closure_sees_its_handles_id() {
    overlap::block_on(async {
        let handle = overlap::spawn_blocking(task::try_id);
        let id = handle.id();
        assert_eq!(handle.await.unwrap(), Some(id));
    });
}
