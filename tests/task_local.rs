//! `task_local!`: each scoped future sees its own value while it is polled (and dropped),
//! interleaved tasks do not see each other's, nested scopes restore the outer value, and a
//! panic inside a scope leaves nothing behind.

use std::cell::RefCell;
use std::rc::Rc;

overlap::task_local! {
    static ID: u32;
    static NAME: String;
}

#[overlap::test]
async fn interleaved_tasks_each_see_their_own_value() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let mut tasks = Vec::new();
    for id in 0..3u32 {
        let log = log.clone();
        tasks.push(overlap::spawn(ID.scope(id, async move {
            for _ in 0..3 {
                log.borrow_mut().push((id, ID.get()));
                overlap::yield_now().await;
            }
        })));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let log = log.borrow();
    assert_eq!(log.len(), 9);
    assert!(log.iter().all(|(want, got)| want == got), "{log:?}");
    assert!(
        ID.try_with(|_| ()).is_err(),
        "nothing set outside the scopes"
    );
}

#[overlap::test]
async fn nested_scopes_restore_the_outer_value_and_keys_are_independent() {
    let outer = ID.scope(1, async {
        assert_eq!(ID.get(), 1);
        ID.scope(2, async {
            assert_eq!(ID.get(), 2);
            NAME.scope("inner".to_string(), async {
                assert_eq!(NAME.with(|n| n.clone()), "inner");
                assert_eq!(ID.get(), 2);
            })
            .await;
            assert!(NAME.try_with(|_| ()).is_err());
        })
        .await;
        assert_eq!(ID.get(), 1);
        ID.sync_scope(5, || assert_eq!(ID.get(), 5));
        ID.get()
    });
    assert_eq!(outer.await, 1);
}

#[overlap::test]
async fn an_aborted_scoped_task_drops_with_its_value_set() {
    struct SeesId(Rc<RefCell<Option<u32>>>);
    impl Drop for SeesId {
        fn drop(&mut self) {
            *self.0.borrow_mut() = ID.try_with(|v| *v).ok();
        }
    }
    let seen = Rc::new(RefCell::new(None));
    let guard = SeesId(seen.clone());
    let task = overlap::spawn(ID.scope(9, async move {
        let _guard = guard;
        std::future::pending::<()>().await;
    }));
    overlap::yield_now().await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(
        *seen.borrow(),
        Some(9),
        "the future's destructor saw its value"
    );
    assert!(ID.try_with(|_| ()).is_err());
}

#[overlap::test]
async fn a_panic_inside_a_scope_leaves_no_value_behind() {
    let task = overlap::spawn(ID.scope(3, async {
        panic!("inside the scope");
    }));
    assert!(task.await.unwrap_err().is_panic());
    assert!(ID.try_with(|_| ()).is_err());
    let caught = std::panic::catch_unwind(|| ID.sync_scope(4, || panic!("sync")));
    assert!(caught.is_err());
    assert!(ID.try_with(|_| ()).is_err());
}

#[test]
#[should_panic(expected = "task-local value not set")]
fn with_outside_a_scope_panics_with_a_clear_message() {
    ID.with(|_| ());
}

overlap::task_local! {
    static NESTED: u32;
}

#[test]
fn a_scope_entered_inside_with_on_the_same_key_panics_with_a_clear_message() {
    let payload = std::panic::catch_unwind(|| {
        NESTED.sync_scope(1, || NESTED.with(|_| NESTED.sync_scope(2, || NESTED.get())))
    })
    .unwrap_err();
    let message = payload
        .downcast::<&str>()
        .map(|m| m.to_string())
        .unwrap_or_else(|p| p.downcast::<String>().map(|m| *m).unwrap_or_default());
    assert!(
        message.contains("cannot enter a task-local scope"),
        "unclear panic: {message}"
    );
    // The outer scope was left cleanly: the key is unset again, and usable.
    assert!(NESTED.try_with(|_| ()).is_err());
    assert_eq!(NESTED.sync_scope(3, || NESTED.get()), 3);
}

/// `try_get` clones the value inside a scope and fails outside one, and in a spawned task
/// that did not enter the scope.
#[overlap::test]
async fn try_get_clones_inside_a_scope_and_fails_outside() {
    assert!(NAME.try_get().is_err());
    let inside = NAME
        .scope("ada".to_string(), async {
            let here = NAME.try_get();
            let in_task = overlap::spawn(async { NAME.try_get().is_err() }).await;
            (here, in_task.unwrap())
        })
        .await;
    assert_eq!(inside, (Ok("ada".to_string()), true));
    assert!(NAME.try_get().is_err());
}

/// `take_value` hands the scope's value back; the body polled afterwards sees none, and an
/// outer scope's value is back once the inner future yields.
#[overlap::test]
async fn take_value_empties_the_scope_for_later_polls() {
    let seen = ID
        .scope(1, async {
            let mut inner = std::pin::pin!(ID.scope(2, async {
                let before = ID.try_get();
                overlap::yield_now().await;
                (before, ID.try_get())
            }));
            // Polled once: the body saw 2, then yielded.
            assert!(futures_util::poll!(inner.as_mut()).is_pending());
            assert_eq!(inner.as_mut().take_value(), Some(2));
            assert_eq!(inner.as_mut().take_value(), None);
            assert_eq!(ID.get(), 1, "the outer value is back between polls");
            let body = inner.await;
            (body, ID.get())
        })
        .await;
    let ((before, after), outer) = seen;
    assert_eq!(before, Ok(2));
    assert!(
        after.is_err(),
        "the body still saw a value after take_value"
    );
    assert_eq!(outer, 1);
}
