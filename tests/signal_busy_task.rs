//! A signal that arrives while the task that will listen for it is busy reaches a listener
//! made before that task next yields, as with tokio, whose driver hands signals out only
//! between task polls. The common loop `select! { x = work => .., _ = ctrl_c() => break }`
//! makes a fresh `ctrl_c()` each round, and often does not even poll it when the work is
//! ready: Ctrl-C pressed during such a round must still stop the loop. A round whose work
//! waits lets the arrival be handed out meanwhile: a `Signal` kept across rounds hears it.

mod support;

use std::time::Duration;

use overlap::future::FutureExt;
use overlap::signal::{ctrl_c, signal, SignalKind};
use overlap::sync::mpsc;
use support::within;

/// Only a lost signal gets near this.
const HANG: Duration = Duration::from_secs(30);

/// Delivers `signum` to the calling thread before returning, so its handler has run.
fn raise_here(signum: i32) {
    // SAFETY: raise takes no pointers.
    assert_eq!(unsafe { libc::raise(signum) }, 0);
}

#[test]
fn ctrl_c_pressed_while_the_loop_is_busy_still_stops_it() {
    overlap::block_on(async {
        // The program listened before (say, in an earlier round), so SIGINT is caught.
        drop(signal(SignalKind::interrupt()).unwrap());
        let (tx, mut rx) = mpsc::unbounded_channel();
        for job in 0..3 {
            tx.send(job).unwrap();
        }
        let mut done = Vec::new();
        let stopped = async {
            loop {
                overlap::select_biased! {
                    job = rx.recv().fuse() => {
                        done.push(job.unwrap());
                        if done.len() == 1 {
                            // Ctrl-C while this round runs and no `ctrl_c()` exists.
                            raise_here(libc::SIGINT);
                        }
                    }
                    res = ctrl_c().fuse() => break res.unwrap(),
                }
            }
        };
        within(HANG, stopped, "Ctrl-C pressed during a busy round was lost").await;
        assert_eq!(done, [0, 1, 2]);
    });
}

#[test]
fn a_loop_whose_rounds_wait_keeps_one_signal_and_loses_no_arrival() {
    overlap::block_on(async {
        // A round's work waits, so the runtime hands arrivals out during it: a listener
        // made fresh each round would miss this one (the module docs say so); one kept
        // across rounds, as they advise, does not.
        let mut hup = signal(SignalKind::hangup()).unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        for job in 0..3 {
            tx.send(job).unwrap();
        }
        let mut done = Vec::new();
        let stopped = async {
            loop {
                overlap::select_biased! {
                    job = rx.recv().fuse() => {
                        done.push(job.unwrap());
                        if done.len() == 1 {
                            raise_here(libc::SIGHUP);
                            overlap::time::sleep(Duration::from_millis(1)).await;
                        }
                    }
                    _ = hup.recv().fuse() => break,
                }
            }
        };
        within(
            HANG,
            stopped,
            "a signal raised during a round that waits was lost",
        )
        .await;
        assert_eq!(done, [0, 1, 2]);
    });
}

#[test]
fn a_listener_made_after_the_handler_ran_hears_what_was_not_yet_handed_out() {
    overlap::block_on(async {
        let mut first = signal(SignalKind::user_defined1()).unwrap();
        raise_here(libc::SIGUSR1);
        // No yield since: the runtime has not handed this arrival out to anyone.
        let mut second = signal(SignalKind::user_defined1()).unwrap();
        within(HANG, first.recv(), "the older listener missed it").await;
        within(HANG, second.recv(), "the newer listener missed it").await;
        // Once handed out, an arrival is old news for a listener made afterwards.
        let mut third = signal(SignalKind::user_defined1()).unwrap();
        let late = overlap::time::timeout(Duration::from_millis(50), third.recv()).await;
        assert!(
            late.is_err(),
            "a listener heard an arrival from before it existed"
        );
    });
}

#[test]
fn an_arrival_another_runtime_handed_out_reaches_a_listener_made_here_before_this_one_yields() {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (heard_tx, heard_rx) = std::sync::mpsc::channel();
    // Another runtime in the process, listening: its reader shares the self-pipe with ours.
    let other = std::thread::spawn(move || {
        overlap::block_on(async move {
            let mut sig = signal(SignalKind::user_defined2()).unwrap();
            ready_tx.send(()).unwrap();
            sig.recv().await;
            heard_tx.send(()).unwrap();
        })
    });
    ready_rx.recv().unwrap();
    overlap::block_on(async {
        drop(signal(SignalKind::user_defined2()).unwrap());
        // Busy from here on: this runtime does not yield until the listener below exists.
        raise_here(libc::SIGUSR2);
        // This thread is blocked, so it is the other runtime's reader that hands it out.
        heard_rx
            .recv_timeout(HANG)
            .expect("the other runtime never heard the signal");
        let mut here = signal(SignalKind::user_defined2()).unwrap();
        within(
            HANG,
            here.recv(),
            "an arrival another runtime handed out while this one was busy was lost",
        )
        .await;
    });
    other.join().unwrap();
}

#[test]
fn an_arrival_a_listener_here_reported_is_old_news_for_the_next_one_here() {
    // A signal no other test here uses: each test's runtime reader broadcasts for all.
    let signum = libc::SIGRTMIN() + 5;
    let kind = SignalKind::from_raw(signum);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (heard_tx, heard_rx) = std::sync::mpsc::channel();
    let other = std::thread::spawn(move || {
        overlap::block_on(async move {
            let mut sig = signal(kind).unwrap();
            ready_tx.send(()).unwrap();
            sig.recv().await;
            heard_tx.send(()).unwrap();
        })
    });
    ready_rx.recv().unwrap();
    overlap::block_on(async {
        let mut first = signal(kind).unwrap();
        // Registered, so that the other runtime's broadcast wakes this task.
        std::future::poll_fn(|cx| {
            assert!(first.poll_recv(cx).is_pending());
            std::task::Poll::Ready(())
        })
        .await;
        raise_here(signum);
        // This thread is blocked, so it is the other runtime's reader that hands it out.
        heard_rx
            .recv_timeout(HANG)
            .expect("the other runtime never heard the signal");
        // Reported at once, before this runtime's reader has run.
        within(HANG, first.recv(), "the listener here missed it").await;
        let mut next = signal(kind).unwrap();
        let late = overlap::time::timeout(Duration::from_millis(50), next.recv()).await;
        assert!(
            late.is_err(),
            "a listener made after another one here reported an arrival reported it again"
        );
    });
    other.join().unwrap();
}
