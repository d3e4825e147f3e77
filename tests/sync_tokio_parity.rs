//! The tokio calls `overlap::sync` gained for ports: semaphore permits merged and split.

mod support;

use std::rc::Rc;

use overlap::sync::Semaphore;
use support::settle;

#[overlap::test]
async fn merged_and_split_permits_give_back_exactly_what_they_hold() {
    let sem = Rc::new(Semaphore::new(4));
    let mut all = sem.clone().try_acquire_owned().unwrap();
    all.merge(sem.clone().try_acquire_many_owned(3).unwrap());
    assert_eq!((all.num_permits(), sem.available_permits()), (4, 0));
    let two = all.split(2).unwrap();
    assert!(all.split(3).is_none(), "only 2 left in it");
    assert_eq!(all.num_permits(), 2);
    // A waiter for two gets the split-off part when it drops, not before.
    let waiter = {
        let sem = sem.clone();
        overlap::spawn(async move { sem.acquire_many(2).await.unwrap().num_permits() })
    };
    settle().await;
    assert!(!waiter.is_finished());
    overlap::spawn(async move { drop(two) }).await.unwrap();
    assert_eq!(waiter.await.unwrap(), 2);
    assert_eq!(sem.available_permits(), 2);
    drop(all);
    assert_eq!(sem.available_permits(), 4);

    let mut borrowed = sem.try_acquire_many(3).unwrap();
    let one = borrowed.split(1).unwrap();
    borrowed.merge(one);
    assert_eq!(borrowed.num_permits(), 3);
    drop(borrowed);
    assert_eq!(sem.available_permits(), 4);
}

#[test]
#[should_panic(expected = "different semaphores")]
fn merging_permits_of_two_semaphores_panics() {
    let (a, b) = (Semaphore::new(1), Semaphore::new(1));
    let mut p = a.try_acquire().unwrap();
    p.merge(b.try_acquire().unwrap());
}

#[test]
#[should_panic(expected = "MAX_PERMITS")]
fn a_semaphore_above_max_permits_is_refused() {
    let _ = Semaphore::new(Semaphore::MAX_PERMITS + 1);
}
