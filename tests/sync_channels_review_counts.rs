//! A randomised model of an `mpsc` channel's counts (part of the channels review, with
//! `sync_channels_review.rs`): strong and weak sender counts, length, capacity and closed
//! flags, over clones, drops, downgrades and upgrades of senders, sends, receives, owned
//! permits used or given back, and a close, with fixed seeds.

mod support;

use std::pin::pin;
use std::task::Poll;

use overlap::sync::mpsc::{self, TryRecvError, TrySendError};
use support::{ManualTask, Rng};

/// A randomised model of the counts over clones, drops, downgrades and upgrades of senders,
/// try_send, try_recv, permits taken and dropped, and a close: after each step the strong
/// and weak counts (on the receiver and every handle), `len`, `is_empty`, `capacity`,
/// `is_closed` and what a receive gives match the model; a receive waiting when the last
/// strong sender goes is woken and ends after the queue.
#[test]
fn mpsc_counts_follow_a_model_of_clones_upgrades_sends_and_closes() {
    // Odd seeds close the channel late in the round; even ones end it by the senders.
    for seed in [
        1u64,
        2,
        0x5eed,
        0x5eee,
        0xdead_beef,
        42,
        7_777_777,
        1_000_000,
    ] {
        overlap::block_on(async move { counts_round(seed) });
    }
}

fn counts_round(seed: u64) {
    const CAP: usize = 4;
    let mut rng = Rng(seed);
    let (tx, mut rx) = mpsc::channel::<u64>(CAP);
    let mut strong = vec![tx];
    let mut weak: Vec<mpsc::WeakSender<u64>> = Vec::new();
    let mut permits: Vec<mpsc::OwnedPermit<u64>> = Vec::new();
    let mut queue = std::collections::VecDeque::new();
    let mut closed = false;
    let mut next = 0u64;
    let task = ManualTask::default();
    let mut waiting = false;
    for step in 0..400 {
        let at = format!("seed {seed:#x} step {step}");
        // Senders held inside permits count as strong too.
        let strong_now = strong.len() + permits.len();
        match rng.below(10) {
            0 if !strong.is_empty() => {
                let i = rng.below(strong.len());
                strong.push(strong[i].clone());
            }
            // The last strong sender goes only near the end, so most steps run open.
            1 if !strong.is_empty() && (strong_now > 1 || step > 350) => {
                strong.swap_remove(rng.below(strong.len()));
            }
            2 if !strong.is_empty() => weak.push(strong[rng.below(strong.len())].downgrade()),
            3 if !weak.is_empty() => {
                let i = rng.below(weak.len());
                match weak[i].upgrade() {
                    Some(s) => {
                        assert!(strong_now > 0, "{at}: upgraded with no strong sender");
                        strong.push(s);
                    }
                    None => assert_eq!(strong_now, 0, "{at}: refused while strong"),
                }
                if rng.below(2) == 0 {
                    weak.swap_remove(i);
                }
            }
            4 | 5 if !strong.is_empty() => {
                let room = queue.len() + permits.len() < CAP;
                let got = strong[rng.below(strong.len())].try_send(next);
                match got {
                    Ok(()) => {
                        assert!(!closed && room, "{at}: sent into a full or closed channel");
                        queue.push_back(next);
                    }
                    Err(TrySendError::Closed(v)) => assert!(closed && v == next, "{at}"),
                    Err(TrySendError::Full(v)) => assert!(!closed && !room && v == next, "{at}"),
                }
                next += 1;
            }
            6 if !strong.is_empty() => {
                let s = strong.swap_remove(rng.below(strong.len()));
                match s.try_reserve_owned() {
                    Ok(p) => permits.push(p),
                    Err(TrySendError::Full(s) | TrySendError::Closed(s)) => strong.push(s),
                }
            }
            7 if !permits.is_empty() => {
                let p = permits.swap_remove(rng.below(permits.len()));
                let s = if rng.below(2) == 0 {
                    queue.push_back(next);
                    next += 1;
                    p.send(next - 1)
                } else {
                    p.release()
                };
                strong.push(s);
            }
            8 => {
                let got = rx.try_recv();
                let over = strong_now == 0 || (closed && permits.is_empty());
                match queue.pop_front() {
                    Some(v) => assert_eq!(got, Ok(v), "{at}"),
                    None if over => assert_eq!(got, Err(TryRecvError::Disconnected), "{at}"),
                    None => assert_eq!(got, Err(TryRecvError::Empty), "{at}"),
                }
            }
            9 if seed % 2 == 1 && step > 300 && !closed => {
                rx.close();
                closed = true;
            }
            _ => {}
        }
        let strong_now = strong.len() + permits.len();
        assert_eq!(rx.sender_strong_count(), strong_now, "{at}");
        assert_eq!(rx.sender_weak_count(), weak.len(), "{at}");
        for w in &weak {
            assert_eq!(
                (w.strong_count(), w.weak_count()),
                (strong_now, weak.len()),
                "{at}"
            );
        }
        for s in &strong {
            assert_eq!(
                (s.strong_count(), s.weak_count()),
                (strong_now, weak.len()),
                "{at}"
            );
        }
        assert_eq!(
            (rx.len(), rx.is_empty()),
            (queue.len(), queue.is_empty()),
            "{at}"
        );
        assert_eq!(rx.capacity(), CAP - queue.len() - permits.len(), "{at}");
        assert_eq!(rx.is_closed(), closed || strong_now == 0, "{at}");
        // A receive that waits must be woken by the step that ends the channel.
        let over = strong_now == 0 || (closed && permits.is_empty());
        if waiting && (over || !queue.is_empty()) {
            assert!(task.is_woken(), "{at}: the waiting receive was not woken");
        }
        waiting = false;
        if queue.is_empty() {
            let poll = task.poll(pin!(rx.recv()));
            match poll {
                Poll::Ready(None) => assert!(over, "{at}: ended early"),
                Poll::Ready(Some(v)) => panic!("{at}: received {v} from an empty queue"),
                Poll::Pending => {
                    assert!(!over, "{at}: waits on an ended channel");
                    waiting = true;
                }
            }
        }
        if strong_now == 0 {
            break; // nothing can change any more but drops
        }
    }
    // The end: drain the queue, wait, and let every sender go (weak ones first, which
    // changes nothing); the last one's drop wakes the receive, which ends.
    while let Some(v) = queue.pop_front() {
        assert_eq!(rx.try_recv(), Ok(v), "seed {seed:#x}: draining");
    }
    drop(weak);
    let mut ending = Box::pin(rx.recv());
    let mut end = task.poll(ending.as_mut());
    if end.is_pending() {
        drop(permits);
        drop(strong);
        assert!(
            task.is_woken(),
            "seed {seed:#x}: the end did not wake the receive"
        );
        end = task.poll(ending.as_mut());
    }
    assert_eq!(end, Poll::Ready(None), "seed {seed:#x}");
}
