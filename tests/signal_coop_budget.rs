//! A signal receive spends the cooperative budget as a channel receive does (tokio's signal
//! receiver is budgeted too): a task that finds an arrival each time it calls `recv` still
//! lets the other tasks run every 128 arrivals.
//!
//! With one runtime that cannot happen, since its own reader task hands the arrivals out
//! between task polls. With two, the other runtime's reader hands them out while this
//! runtime's task runs: here the looping task raises a signal, waits (blocking) until the
//! other runtime's listener heard it, which means it was handed out, and then its own
//! `recv` is ready at once, every round.

mod support;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use overlap::signal::{signal, Signal, SignalKind};
use support::steps_before_another_task_runs;

/// Only a lost signal gets near this.
const HANG: Duration = Duration::from_secs(30);

/// Far more arrivals than a budget (128): the loop must yield long before.
const ROUNDS: u64 = 1000;

/// Delivers `signum` to the calling thread before returning, so its handler has run.
fn raise_here(signum: i32) {
    // SAFETY: raise takes no pointers.
    assert_eq!(unsafe { libc::raise(signum) }, 0);
}

#[test]
fn a_recv_loop_that_always_finds_an_arrival_lets_other_tasks_run() {
    let (ready_tx, ready_rx) = std_mpsc::channel();
    let (heard_tx, heard_rx) = std_mpsc::channel();
    // Another runtime, listening: its reader hands out what this one's busy task raises.
    let other = std::thread::spawn(move || {
        overlap::block_on(async move {
            let mut sig = signal(SignalKind::user_defined1()).unwrap();
            ready_tx.send(()).unwrap();
            // Until this side's receiver is gone (then one more arrival ends the loop).
            while sig.recv().await.is_some() {
                if heard_tx.send(()).is_err() {
                    break;
                }
            }
        })
    });
    overlap::block_on(async move {
        let sig: Signal = signal(SignalKind::user_defined1()).unwrap();
        ready_rx
            .recv_timeout(HANG)
            .expect("the other runtime never listened");
        let sig = Rc::new(RefCell::new(Some(sig)));
        let heard = Rc::new(heard_rx);
        let n = steps_before_another_task_runs(ROUNDS, move || {
            let sig = sig.clone();
            let heard = heard.clone();
            async move {
                raise_here(libc::SIGUSR1);
                // Blocking on purpose: this task keeps the thread, as a busy one would.
                heard
                    .recv_timeout(HANG)
                    .expect("the other runtime never heard the signal");
                // Taken out for the await and put back: no borrow held across it.
                let mut s = sig.borrow_mut().take().unwrap();
                let got = s.recv().await.is_some();
                *sig.borrow_mut() = Some(s);
                got
            }
        })
        .await;
        assert!(
            n < ROUNDS,
            "{ROUNDS} ready signal receives without yielding"
        );
    });
    // The receiving end is gone: the other runtime's next arrival ends its loop.
    raise_here(libc::SIGUSR1);
    other.join().unwrap();
}
