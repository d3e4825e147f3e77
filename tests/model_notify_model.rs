//! Randomized model-based test of `Notify`: notified() futures created, polled, dropped at every
//! stage; notify_one / notify_waiters. Checked step by step against a model of the documented
//! semantics: FIFO notify_one with at most one stored permit, notify_waiters reaching every
//! future made before it, a chosen-but-dropped future passing its notification on, no lost or
//! duplicated wakeups.

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

#[derive(Clone, Copy, Debug, PartialEq)]
enum St {
    Unpolled,
    Waiting,
    Chosen,
    /// Reached by a notify_waiters (made before it).
    Broadcast,
}

struct Fut {
    f: Pin<Box<Notified<'static>>>,
    st: St,
    wakes: Arc<Count>,
    expect_wakes: usize,
}

#[test]
fn notify_matches_its_documented_model() {
    for seed in 1..=500u64 {
        let notify: &'static Notify = Box::leak(Box::new(Notify::new()));
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut permit = false;
        let mut line: Vec<usize> = Vec::new();
        let mut futs: HashMap<usize, Fut> = HashMap::new();
        let mut next = 0;
        let mut trace = Vec::new();

        fn notify_one(permit: &mut bool, line: &mut Vec<usize>, futs: &mut HashMap<usize, Fut>) {
            if line.is_empty() {
                *permit = true;
            } else {
                let id = line.remove(0);
                let f = futs.get_mut(&id).unwrap();
                f.st = St::Chosen;
                f.expect_wakes += 1;
            }
        }

        for step in 0..300 {
            let mut ids: Vec<usize> = futs.keys().copied().collect();
            ids.sort();
            match rng.below(10) {
                0..=2 => {
                    trace.push(format!("{step}: new #{next}"));
                    futs.insert(
                        next,
                        Fut {
                            f: Box::pin(notify.notified()),
                            st: St::Unpolled,
                            wakes: Arc::default(),
                            expect_wakes: 0,
                        },
                    );
                    next += 1;
                }
                3..=5 if !ids.is_empty() => {
                    let id = ids[rng.below(ids.len() as u64) as usize];
                    let f = futs.get_mut(&id).unwrap();
                    trace.push(format!("{step}: poll #{id} ({:?})", f.st));
                    let waker = Waker::from(f.wakes.clone());
                    let r = f.f.as_mut().poll(&mut Context::from_waker(&waker));
                    let expect_ready = match f.st {
                        St::Chosen | St::Broadcast => true,
                        St::Waiting => false,
                        St::Unpolled if permit => {
                            permit = false;
                            true
                        }
                        St::Unpolled => {
                            line.push(id);
                            f.st = St::Waiting;
                            false
                        }
                    };
                    assert_eq!(
                        r.is_ready(),
                        expect_ready,
                        "seed {seed}\n{}",
                        trace.join("\n")
                    );
                    if expect_ready {
                        futs.remove(&id);
                    }
                }
                6 if !ids.is_empty() => {
                    let id = ids[rng.below(ids.len() as u64) as usize];
                    let f = futs.remove(&id).unwrap();
                    trace.push(format!("{step}: drop #{id} ({:?})", f.st));
                    match f.st {
                        St::Waiting => line.retain(|&x| x != id),
                        St::Chosen => notify_one(&mut permit, &mut line, &mut futs),
                        _ => {}
                    }
                    drop(f);
                }
                7 | 8 => {
                    trace.push(format!("{step}: notify_one"));
                    notify.notify_one();
                    notify_one(&mut permit, &mut line, &mut futs);
                }
                _ => {
                    trace.push(format!("{step}: notify_waiters"));
                    notify.notify_waiters();
                    line.clear();
                    for f in futs.values_mut() {
                        match f.st {
                            St::Waiting => {
                                f.st = St::Broadcast;
                                f.expect_wakes += 1;
                            }
                            St::Unpolled => f.st = St::Broadcast,
                            _ => {}
                        }
                    }
                }
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

/// The same model with `notify_last` and `enable` in the mix, so that waiter cells the
/// queue reuses go through being chosen from either end, joining without a waker, and
/// being given up at every stage: no notification lost or duplicated, no wake missed.
#[test]
fn notify_last_and_enable_match_the_model() {
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
