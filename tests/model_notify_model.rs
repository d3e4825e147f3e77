//! Randomized model-based test of `Notify`: notified() futures created, polled, enabled,
//! dropped at every stage; notify_one / notify_last / notify_waiters. Checked step by step
//! against a model of the documented semantics: FIFO notify_one (LIFO notify_last) with at
//! most one stored permit, notify_waiters reaching every future made before it, a
//! chosen-but-dropped future passing its notification on, no lost or duplicated wakeups.

mod support;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Waker};

use overlap::sync::{Notified, Notify};
use support::WakeCount as Count;

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x % n
    }
}

/// A future's state in the model with `notify_last` and `enable`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ext {
    Unpolled,
    Waiting,
    /// Chosen by `notify_one` (`false`) or `notify_last` (`true`), not yet reported.
    Chosen(bool),
    /// Reached by a notify_waiters (made before it).
    Broadcast,
    /// `enable` reported it notified: it holds the notification, its poll completes.
    Held,
}

struct ExtFut {
    f: Pin<Box<Notified<'static>>>,
    st: Ext,
    /// Whether a poll left a waker (an `enable` alone leaves none).
    waker: bool,
    wakes: Arc<Count>,
    expect_wakes: usize,
}

/// The model's `notify_one` (`last`: `notify_last`): the first (last) in line is chosen,
/// woken if it left a waker; with nobody in line, the permit is stored.
fn choose(last: bool, permit: &mut bool, line: &mut Vec<usize>, futs: &mut HashMap<usize, ExtFut>) {
    let id = if last {
        line.pop()
    } else if line.is_empty() {
        None
    } else {
        Some(line.remove(0))
    };
    match id {
        None => *permit = true,
        Some(id) => {
            let f = futs.get_mut(&id).unwrap();
            f.st = Ext::Chosen(last);
            if f.waker {
                f.expect_wakes += 1;
            }
        }
    }
}

/// The model, with `notify_last` and `enable` in the mix, so that waiter cells the queue
/// reuses go through being chosen from either end, joining without a waker, and being given
/// up at every stage: no notification lost or duplicated, no wake missed.
#[test]
fn notify_matches_its_documented_model() {
    for seed in 1..=500u64 {
        let notify: &'static Notify = Box::leak(Box::new(Notify::new()));
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut permit = false;
        let mut line: Vec<usize> = Vec::new();
        let mut futs: HashMap<usize, ExtFut> = HashMap::new();
        let mut next = 0;
        let mut trace = Vec::new();
        for step in 0..300 {
            let mut ids: Vec<usize> = futs.keys().copied().collect();
            ids.sort();
            let pick = |rng: &mut Rng| ids[rng.below(ids.len() as u64) as usize];
            match rng.below(14) {
                0..=2 => {
                    trace.push(format!("{step}: new #{next}"));
                    let f = ExtFut {
                        f: Box::pin(notify.notified()),
                        st: Ext::Unpolled,
                        waker: false,
                        wakes: Arc::default(),
                        expect_wakes: 0,
                    };
                    futs.insert(next, f);
                    next += 1;
                }
                3..=6 if !ids.is_empty() => {
                    let id = pick(&mut rng);
                    let enable = rng.below(3) == 0;
                    let f = futs.get_mut(&id).unwrap();
                    trace.push(format!(
                        "{step}: {} #{id} ({:?})",
                        if enable { "enable" } else { "poll" },
                        f.st
                    ));
                    let ready = if enable {
                        f.f.as_mut().enable()
                    } else {
                        let waker = Waker::from(f.wakes.clone());
                        f.f.as_mut()
                            .poll(&mut Context::from_waker(&waker))
                            .is_ready()
                    };
                    let expect = match f.st {
                        Ext::Chosen(_) | Ext::Broadcast | Ext::Held => true,
                        Ext::Waiting => false,
                        Ext::Unpolled if permit => {
                            permit = false;
                            true
                        }
                        Ext::Unpolled => {
                            line.push(id);
                            f.st = Ext::Waiting;
                            false
                        }
                    };
                    assert_eq!(ready, expect, "seed {seed}\n{}", trace.join("\n"));
                    if ready && !enable {
                        futs.remove(&id);
                    } else if ready {
                        f.st = Ext::Held;
                    } else if !enable {
                        f.waker = true;
                    }
                }
                7 if !ids.is_empty() => {
                    let id = pick(&mut rng);
                    let f = futs.remove(&id).unwrap();
                    trace.push(format!("{step}: drop #{id} ({:?})", f.st));
                    match f.st {
                        Ext::Waiting => line.retain(|&x| x != id),
                        Ext::Chosen(last) => choose(last, &mut permit, &mut line, &mut futs),
                        _ => {}
                    }
                    drop(f);
                }
                8..=9 => {
                    trace.push(format!("{step}: notify_one"));
                    notify.notify_one();
                    choose(false, &mut permit, &mut line, &mut futs);
                }
                10..=11 => {
                    trace.push(format!("{step}: notify_last"));
                    notify.notify_last();
                    choose(true, &mut permit, &mut line, &mut futs);
                }
                12 => {
                    trace.push(format!("{step}: notify_waiters"));
                    notify.notify_waiters();
                    line.clear();
                    for f in futs.values_mut() {
                        match f.st {
                            Ext::Waiting => {
                                f.st = Ext::Broadcast;
                                if f.waker {
                                    f.expect_wakes += 1;
                                }
                            }
                            Ext::Unpolled => f.st = Ext::Broadcast,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
            for (id, f) in &futs {
                assert_eq!(
                    f.wakes.0.load(Ordering::SeqCst),
                    f.expect_wakes,
                    "seed {seed}: #{id} ({:?}) woken a wrong number of times\n{}",
                    f.st,
                    trace.join("\n")
                );
            }
        }
    }
}
