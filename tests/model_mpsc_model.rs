//! Randomized model-based test of a bounded `mpsc` channel: sends that wait, are woken, are
//! dropped at every stage; try_send; try_recv; close. Compared step by step with a model of a
//! fair bounded channel: no message lost or duplicated, FIFO per the docs, every waiting sender
//! woken exactly when it gets a slot, capacity never exceeded.

mod support;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use overlap::sync::mpsc::{self, Send, Sender, TryRecvError, TrySendError};
use support::{WakeCount as Count, XorShift as Rng};

#[derive(Clone, Copy, Debug, PartialEq)]
enum St {
    Unpolled,
    Waiting,
    Chosen,
    ClosedOut,
}

struct Fut {
    send: Pin<Box<Send<'static, u64>>>,
    value: u64,
    st: St,
    wakes: Arc<Count>,
    expect_wakes: usize,
}

struct Model {
    queue: VecDeque<u64>,
    reserved: usize,
    cap: usize,
    line: Vec<usize>,
    closed: bool,
}

impl Model {
    fn has_room(&self) -> bool {
        self.queue.len() + self.reserved < self.cap
    }
    fn grant_next(&mut self, futs: &mut HashMap<usize, Fut>) {
        if self.has_room() && !self.line.is_empty() {
            let id = self.line.remove(0);
            let f = futs.get_mut(&id).unwrap();
            f.st = St::Chosen;
            f.expect_wakes += 1;
            self.reserved += 1;
        }
    }
}

fn run(seed: u64, cap: usize, steps: usize) {
    let (tx, mut rx) = mpsc::channel::<u64>(cap);
    let tx: &'static Sender<u64> = Box::leak(Box::new(tx));
    let mut rng = Rng(seed);
    let mut m = Model {
        queue: VecDeque::new(),
        reserved: 0,
        cap,
        line: Vec::new(),
        closed: false,
    };
    let mut futs: HashMap<usize, Fut> = HashMap::new();
    let mut next_id = 0usize;
    let mut next_value = 0u64;
    let mut trace: Vec<String> = Vec::new();

    for step in 0..steps {
        let ids: Vec<usize> = {
            let mut v: Vec<usize> = futs.keys().copied().collect();
            v.sort();
            v
        };
        match rng.below(100) {
            0..=22 => {
                let id = next_id;
                next_id += 1;
                let value = next_value;
                next_value += 1;
                trace.push(format!("{step}: new send #{id} of {value}"));
                futs.insert(
                    id,
                    Fut {
                        send: Box::pin(tx.send(value)),
                        value,
                        st: St::Unpolled,
                        wakes: Arc::new(Count::default()),
                        expect_wakes: 0,
                    },
                );
            }
            23..=47 if !ids.is_empty() => {
                let id = ids[rng.below(ids.len() as u64) as usize];
                let f = futs.get_mut(&id).unwrap();
                trace.push(format!("{step}: poll #{id} ({:?})", f.st));
                let waker = Waker::from(f.wakes.clone());
                let res = f.send.as_mut().poll(&mut Context::from_waker(&waker));
                let expect: Option<bool> = match f.st {
                    // A slot granted before a close is still filled (the receiver drains it).
                    St::Chosen => {
                        m.reserved -= 1;
                        m.queue.push_back(f.value);
                        Some(true)
                    }
                    _ if m.closed => Some(false),
                    St::ClosedOut => Some(false),
                    St::Waiting => None,
                    St::Unpolled if m.line.is_empty() && m.has_room() => {
                        m.queue.push_back(f.value);
                        Some(true)
                    }
                    St::Unpolled => {
                        m.line.push(id);
                        f.st = St::Waiting;
                        None
                    }
                };
                match (res, expect) {
                    (Poll::Ready(Ok(())), Some(true)) => {
                        futs.remove(&id);
                    }
                    (Poll::Ready(Err(e)), Some(false)) => {
                        assert_eq!(e.0, f.value);
                        futs.remove(&id);
                    }
                    (Poll::Pending, None) => {}
                    (r, e) => panic!(
                        "seed {seed}: poll #{id}: got {:?}, model expected {:?}\n{}",
                        r.map(|r| r.is_ok()),
                        e,
                        trace.join("\n")
                    ),
                }
            }
            48..=58 if !ids.is_empty() => {
                let id = ids[rng.below(ids.len() as u64) as usize];
                let f = futs.remove(&id).unwrap();
                trace.push(format!("{step}: drop #{id} ({:?})", f.st));
                match f.st {
                    St::Waiting if !m.closed => m.line.retain(|&x| x != id),
                    St::Chosen if m.closed => m.reserved -= 1,
                    St::Chosen => {
                        m.reserved -= 1;
                        m.grant_next(&mut futs);
                    }
                    _ => {}
                }
                drop(f);
            }
            59..=80 => {
                let r = rx.try_recv();
                trace.push(format!("{step}: try_recv -> {r:?}"));
                let expect = match m.queue.pop_front() {
                    Some(v) => {
                        m.grant_next(&mut futs);
                        Ok(v)
                    }
                    None if m.closed && m.reserved == 0 => Err(TryRecvError::Disconnected),
                    None => Err(TryRecvError::Empty),
                };
                assert_eq!(r, expect, "seed {seed}\n{}", trace.join("\n"));
            }
            81..=93 => {
                let value = next_value;
                next_value += 1;
                let r = tx.try_send(value);
                let expect = if m.closed {
                    Err(TrySendError::Closed(value))
                } else if !m.line.is_empty() || !m.has_room() {
                    Err(TrySendError::Full(value))
                } else {
                    m.queue.push_back(value);
                    Ok(())
                };
                trace.push(format!("{step}: try_send({value}) -> {r:?}"));
                assert_eq!(r, expect, "seed {seed}\n{}", trace.join("\n"));
            }
            94 if step > steps * 9 / 10 && !m.closed => {
                trace.push(format!("{step}: close"));
                rx.close();
                m.closed = true;
                for id in m.line.drain(..) {
                    let f = futs.get_mut(&id).unwrap();
                    f.st = St::ClosedOut;
                    f.expect_wakes += 1;
                }
            }
            _ => {}
        }
        assert!(m.queue.len() <= cap);
        for (id, f) in &futs {
            assert_eq!(
                f.wakes.0.load(Ordering::SeqCst),
                f.expect_wakes,
                "seed {seed}: send #{id} ({:?}) woken a wrong number of times\n{}",
                f.st,
                trace.join("\n")
            );
        }
    }
    // Whatever is queued comes out, in order.
    drop(futs);
    while let Some(v) = m.queue.pop_front() {
        assert_eq!(rx.try_recv(), Ok(v), "seed {seed}\n{}", trace.join("\n"));
    }
    assert!(rx.try_recv().is_err());
}

#[test]
fn bounded_mpsc_matches_a_fair_channel_model() {
    let n: u64 = std::env::var("AUDIT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    for seed in 1..=n {
        let cap = 1 + (seed % 4) as usize;
        run(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1, cap, 400);
    }
}
