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
