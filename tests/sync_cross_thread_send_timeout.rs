//! `sync::mpsc::cross_thread::Sender::send_timeout`: the value comes back on a timeout and
//! on a close, the wait keeps its place in the fair line of `send`, and a timed-out or
//! dropped one passes its turn (or its slot) on. Timeouts are checked on the paused clock,
//! at exact virtual instants; the tests with threads use generous real timeouts that only
//! a hang would reach.

mod support;

use std::cell::RefCell;
use std::rc::Rc;
use std::thread;
use std::time::Duration;

use overlap::sync::mpsc::cross_thread;
use overlap::sync::mpsc::error::{SendTimeoutError, TryRecvError, TrySendError};
use overlap::time;
use support::{abandon, settle, within};

const HANG: Duration = Duration::from_secs(30);

#[overlap::test(start_paused = true)]
async fn a_full_channel_times_out_at_the_deadline_and_gives_the_value_back() {
    let (tx, mut rx) = cross_thread::channel(1);
    tx.send_timeout(String::from("first"), Duration::ZERO)
        .await
        .expect("room at once: sent even with a zero timeout");
    let start = time::now();
    let res = tx
        .send_timeout(String::from("second"), Duration::from_secs(5))
        .await;
    assert_eq!(res, Err(SendTimeoutError::Timeout(String::from("second"))));
    assert_eq!(time::now() - start, Duration::from_secs(5));
    let res = tx.send_timeout(String::from("third"), Duration::ZERO).await;
    assert_eq!(res.unwrap_err().into_inner(), "third");
    // The timed-out sends left the line: the freed slot is simply free.
    assert_eq!(rx.try_recv().as_deref(), Ok("first"));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(tx.capacity(), 1);
    tx.try_send(String::from("fourth")).unwrap();
}

#[overlap::test(start_paused = true)]
async fn the_value_comes_back_as_closed_when_the_receiver_closes_or_is_dropped() {
    let (tx, mut rx) = cross_thread::channel(1);
    tx.try_send(1).unwrap();
    // Closed while the send waits for room.
    let closer = overlap::spawn(async move {
        overlap::yield_now().await;
        rx.close();
        rx
    });
    let res = tx.send_timeout(2, Duration::from_secs(5)).await;
    assert_eq!(res, Err(SendTimeoutError::Closed(2)));
    let rx = closer.await.unwrap();
    // Already closed, and then dropped.
    assert_eq!(
        tx.send_timeout(3, Duration::from_secs(5)).await,
        Err(SendTimeoutError::Closed(3))
    );
    drop(rx);
    assert_eq!(
        tx.send_timeout(4, Duration::ZERO).await,
        Err(SendTimeoutError::Closed(4))
    );
    // Dropped while waiting.
    let (tx, rx) = cross_thread::channel(1);
    tx.try_send(1).unwrap();
    let dropper = overlap::spawn(async move {
        overlap::yield_now().await;
        drop(rx);
    });
    assert_eq!(
        tx.send_timeout(2, Duration::from_secs(5)).await,
        Err(SendTimeoutError::Closed(2))
    );
    dropper.await.unwrap();
}

#[overlap::test(start_paused = true)]
async fn it_waits_in_the_same_fair_line_as_send() {
    let (tx, mut rx) = cross_thread::channel(1);
    tx.try_send(0).unwrap();
    let order = Rc::new(RefCell::new(Vec::new()));
    let spawn_sender = |n: u32, timed: bool| {
        let (tx, order) = (tx.clone(), order.clone());
        overlap::spawn(async move {
            if timed {
                tx.send_timeout(n, Duration::from_secs(60)).await.unwrap();
            } else {
                tx.send(n).await.unwrap();
            }
            order.borrow_mut().push(n);
        })
    };
    // In line in this order: timed, plain, timed, plain.
    let mut senders = Vec::new();
    for (n, timed) in [(1, true), (2, false), (3, true), (4, false)] {
        senders.push(spawn_sender(n, timed));
        settle().await;
    }
    assert_eq!(
        tx.try_send(9),
        Err(TrySendError::Full(9)),
        "the line is first"
    );
    for n in 0..=4 {
        assert_eq!(rx.recv().await, Some(n));
    }
    for s in senders {
        s.await.unwrap();
    }
    assert_eq!(*order.borrow(), [1, 2, 3, 4]);
}

#[overlap::test(start_paused = true)]
async fn a_timed_out_send_passes_its_turn_to_the_next_in_line() {
    let (tx, mut rx) = cross_thread::channel(1);
    tx.try_send(0).unwrap();
    let short = {
        let tx = tx.clone();
        overlap::spawn(async move { tx.send_timeout(1, Duration::from_secs(1)).await })
    };
    settle().await;
    let patient = {
        let tx = tx.clone();
        overlap::spawn(async move { tx.send(2).await })
    };
    settle().await;
    assert_eq!(
        short.await.unwrap(),
        Err(SendTimeoutError::Timeout(1)),
        "nothing was received for a second"
    );
    assert_eq!(rx.recv().await, Some(0));
    patient.await.unwrap().unwrap();
    assert_eq!(
        rx.recv().await,
        Some(2),
        "the slot went past the timed-out send"
    );
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

#[overlap::test(start_paused = true)]
async fn a_slot_freed_at_the_deadline_is_sent_into_or_passed_on_never_lost() {
    // The slot comes free at the very instant the timeout runs out: whichever wins, the
    // value is sent or given back, and the slot is not lost.
    for yield_first in [false, true] {
        let (tx, mut rx) = cross_thread::channel::<u32>(1);
        tx.try_send(1).unwrap();
        let timed = {
            let tx = tx.clone();
            overlap::spawn(async move { tx.send_timeout(2, Duration::from_millis(10)).await })
        };
        if yield_first {
            overlap::yield_now().await;
        }
        time::sleep(Duration::from_millis(10)).await;
        assert_eq!(rx.recv().await, Some(1));
        match timed.await.unwrap() {
            Ok(()) => assert_eq!(rx.recv().await, Some(2)),
            Err(e) => assert_eq!(e, SendTimeoutError::Timeout(2)),
        }
        assert_eq!(tx.capacity(), 1, "the slot is free again");
        tx.try_send(3).expect("nobody is left in line");
    }
}

#[overlap::test]
async fn a_dropped_send_timeout_sent_nothing_and_leaves_no_waker() {
    let (tx, mut rx) = cross_thread::channel(1);
    tx.try_send(0).unwrap();
    abandon(tx.send_timeout(1, Duration::from_secs(3600)));
    assert_eq!(rx.try_recv(), Ok(0));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(tx.capacity(), 1, "the dropped wait kept no slot");
}

#[overlap::test]
async fn a_thread_freeing_the_slot_lets_a_waiting_send_timeout_through() {
    let (tx, mut rx) = cross_thread::channel(1);
    tx.try_send(0).unwrap();
    let reader = thread::spawn(move || {
        let mut got = Vec::new();
        while let Some(v) = rx.blocking_recv() {
            got.push(v);
        }
        got
    });
    for n in 1..=100 {
        // A real clock, with a timeout only a hang would reach.
        within(
            HANG,
            tx.send_timeout(n, HANG),
            "send_timeout to a reading thread",
        )
        .await
        .unwrap();
    }
    drop(tx);
    assert_eq!(reader.join().unwrap(), (0..=100).collect::<Vec<_>>());
}

#[test]
fn a_send_timeout_on_one_runtime_is_woken_by_a_task_of_another() {
    let (tx, mut rx) = cross_thread::channel(1);
    tx.try_send(0).unwrap();
    let sender = thread::spawn(move || {
        overlap::block_on(async move {
            within(HANG, tx.send_timeout(1, HANG), "the other runtime's recv")
                .await
                .unwrap();
        });
    });
    overlap::block_on(async move {
        assert_eq!(within(HANG, rx.recv(), "the queued value").await, Some(0));
        assert_eq!(within(HANG, rx.recv(), "the waiting send").await, Some(1));
        assert_eq!(within(HANG, rx.recv(), "the end").await, None);
    });
    sender.join().unwrap();
}

/// Room at once means sent, even with a zero timeout, however many sends the task made in a
/// row: once the task has spent its cooperative budget, the reservation returns `Pending`
/// without looking, and the zero timeout used to win then (every 129th send gave its value
/// back from a channel with room). The sends still let other tasks run now and then.
#[overlap::test]
async fn a_zero_timeout_send_with_room_sends_however_many_came_before() {
    const SENDS: u64 = 1000;
    let (tx, mut rx) = cross_thread::channel(SENDS as usize);
    let tx = Rc::new(tx);
    let next = Rc::new(std::cell::Cell::new(0u64));
    let steps = support::steps_before_another_task_runs(SENDS, {
        let (tx, next) = (tx.clone(), next.clone());
        move || {
            let (tx, next) = (tx.clone(), next.clone());
            async move {
                let n = next.get();
                let res = tx.send_timeout(n, Duration::ZERO).await;
                assert_eq!(res, Ok(()), "send {n} gave its value back with room left");
                next.set(n + 1);
                true
            }
        }
    })
    .await;
    assert!(steps < SENDS, "no other task ran during {SENDS} sends");
    // The rest, on the same (now fresh) budget and beyond it.
    for n in next.get()..SENDS {
        let res = tx.send_timeout(n, Duration::ZERO).await;
        assert_eq!(res, Ok(()), "send {n} gave its value back with room left");
    }
    for n in 0..SENDS {
        assert_eq!(rx.try_recv(), Ok(n));
    }
}
