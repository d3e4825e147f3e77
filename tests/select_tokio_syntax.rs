//! `overlap::select!` with tokio's syntax and rules: refutable patterns that disable their
//! branch, `if` preconditions, `else`, `biased;`, handlers that `return`/`break`/`?`, and
//! the futures dropped before the handler runs; and futures-util's `default` beside them.

mod support;

use std::cell::Cell;
use std::future::{Future, IntoFuture};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream, UdpSocket};
use overlap::sync::mpsc;
use overlap::{block_on, select, select_biased, spawn};
use support::DropFlag;

/// A future that is ready at once with `value`, counting its polls.
struct Counted<'a, T> {
    value: Option<T>,
    polls: &'a Cell<u32>,
}

impl<T: Unpin> Future for Counted<'_, T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<T> {
        self.polls.set(self.polls.get() + 1);
        Poll::Ready(self.value.take().expect("polled after it was ready"))
    }
}

fn counted<T>(value: T, polls: &Cell<u32>) -> Counted<'_, T> {
    Counted {
        value: Some(value),
        polls,
    }
}

#[test]
fn a_branch_whose_output_fails_its_pattern_is_disabled_and_the_others_go_on() {
    block_on(async {
        let (tx, mut closed) = mpsc::channel::<u32>(1);
        drop(tx);
        let (tx, mut open) = mpsc::channel::<u32>(1);
        spawn(async move { tx.send(7).await.unwrap() });
        // `closed` gives `None` at once: its branch is disabled, not taken, and the select
        // waits for the other.
        let got = select! {
            Some(n) = closed.recv() => ("closed", n),
            Some(n) = open.recv() => ("open", n),
        };
        assert_eq!(got, ("open", 7));
        // Both `None` now: every branch disabled, `else` runs.
        let got = select! {
            Some(n) = closed.recv() => n,
            Some(n) = open.recv() => n,
            else => 0,
        };
        assert_eq!(got, 0);
    });
}

#[test]
#[should_panic(expected = "all branches are disabled and there is no `else` branch")]
fn every_branch_disabled_without_else_panics() {
    block_on(async {
        let (tx, mut rx) = mpsc::channel::<u32>(1);
        drop(tx);
        select! {
            Some(n) = rx.recv() => n,
        }
    });
}

#[test]
fn a_false_precondition_disables_its_branch_unpolled_though_its_future_is_made() {
    block_on(async {
        let (polls_a, polls_b) = (Cell::new(0), Cell::new(0));
        let made = Cell::new(0);
        let make = |v, polls| {
            made.set(made.get() + 1);
            counted(v, polls)
        };
        let skip_a = true;
        let got = select! {
            a = make("a", &polls_a), if !skip_a => a,
            b = make("b", &polls_b) => b,
        };
        assert_eq!(got, "b");
        assert_eq!((polls_a.get(), polls_b.get()), (0, 1));
        assert_eq!(made.get(), 2, "every future expression is evaluated");
        // All preconditions false: `else`, and nothing polled.
        let got = select! {
            a = make("a", &polls_a), if false => a,
            b = make("b", &polls_b), if 1 + 1 == 3 => b,
            else => "else",
        };
        assert_eq!(got, "else");
        assert_eq!((polls_a.get(), polls_b.get()), (0, 1));
    });
}

#[test]
fn biased_polls_in_the_order_written_and_unbiased_spreads_the_wins() {
    block_on(async {
        let polls = Cell::new(0);
        for _ in 0..50 {
            let got = select! {
                biased;
                a = counted(1, &polls) => a,
                b = counted(2, &polls) => b,
                c = counted(3, &polls) => c,
            };
            assert_eq!(got, 1);
            let got = select_biased! {
                b = counted(2, &polls) => b,
                a = counted(1, &polls) => a,
            };
            assert_eq!(got, 2);
        }
        assert_eq!(
            polls.get(),
            100,
            "only the first branch was polled each time"
        );
        // Without `biased`, three branches ready at once each win some of 3,000 rounds
        // (each at least a sixth: a fair draw falls that short with p < 1e-40).
        let mut wins = [0u32; 3];
        for _ in 0..3000 {
            let i = select! {
                a = counted(0, &polls) => a,
                b = counted(1, &polls) => b,
                c = counted(2, &polls) => c,
            };
            wins[i] += 1;
        }
        assert!(wins.iter().all(|&w| w >= 500), "unfair: {wins:?}");
    });
}

#[test]
fn handlers_act_on_the_enclosing_function_and_loop() {
    async fn first_line(fail: bool) -> io::Result<u32> {
        let (tx, mut rx) = mpsc::channel(4);
        tx.send(1).await.unwrap();
        tx.send(2).await.unwrap();
        let mut sum = 0;
        loop {
            select! {
                Some(n) = rx.recv() => {
                    sum += n;
                    if sum == 3 {
                        break;
                    }
                    // `.await` inside a handler
                    overlap::task::yield_now().await;
                    continue;
                }
                _ = async { fail } , if fail => {
                    Err(io::Error::other("failed"))?;
                    return Ok(99);
                }
            }
        }
        Ok(sum)
    }
    block_on(async {
        assert_eq!(first_line(false).await.unwrap(), 3);
        // With `fail`, a ready branch returns `Err` through `?` (or `Ok(99)`, never `3`).
        let mut saw_err = false;
        for _ in 0..50 {
            match first_line(true).await {
                Err(e) => {
                    assert_eq!(e.to_string(), "failed");
                    saw_err = true;
                }
                Ok(n) => assert_eq!(n, 3, "the channel's branch won every time"),
            }
        }
        assert!(
            saw_err,
            "the failing branch never won in 50 unbiased rounds"
        );
    });
}

#[test]
fn the_futures_are_dropped_before_the_handler_runs() {
    block_on(async {
        let (flag, dropped) = DropFlag::new();
        let mut buf = String::new();
        let pending_owner = async move {
            let _flag = flag;
            std::future::pending::<()>().await
        };
        select! {
            _ = { pending_owner } => unreachable!(),
            n = async { buf.push('x'); buf.len() } => {
                // The losing future's owned value is gone, and what the winner borrowed
                // mutably may be used here.
                assert!(dropped.get(), "the losing future outlived the select");
                buf.push_str(&n.to_string());
            }
        }
        assert_eq!(buf, "x1");
    });
}

#[test]
fn a_future_given_by_name_is_borrowed_and_polled_again_by_the_next_loop() {
    block_on(async {
        let (tx, mut rx) = mpsc::channel::<u32>(8);
        let (done_tx, done_rx) = overlap::sync::oneshot::channel::<&str>();
        spawn(async move {
            for n in 0..3 {
                tx.send(n).await.unwrap();
            }
            done_tx.send("done").unwrap();
        });
        let mut done = done_rx; // Unpin: borrowed by name, kept across the loop
        let mut got = Vec::new();
        let end = loop {
            select! {
                biased;
                Some(n) = rx.recv() => got.push(n),
                end = done => break end.unwrap(),
            }
        };
        assert_eq!((end, got), ("done", vec![0, 1, 2]));
        // `&mut` a `!Unpin` future pinned once, raced twice.
        let slow = std::pin::pin!(async {
            overlap::task::yield_now().await;
            overlap::task::yield_now().await;
            "slow"
        });
        let mut slow = slow;
        let first =
            select! { s = &mut slow => s, n = async { 1 } => if n == 1 { "fast" } else { "?" } };
        let second = select! { s = &mut slow => s };
        assert_eq!((first, second), ("fast", "slow"));
    });
}

/// Races `fut`, given by name, against a future that is never ready.
async fn by_name_in_a_generic<F: Future<Output = u32> + Unpin>(mut fut: F) -> u32 {
    select! {
        n = fut => n,
        _ = std::future::pending::<()>() => 0,
    }
}

#[test]
fn a_future_given_by_name_may_be_generic_boxed_unsized_or_a_pinned_reference() {
    block_on(async {
        // Known to be `Unpin` only through a bound.
        assert_eq!(by_name_in_a_generic(std::future::ready(1)).await, 1);
        assert_eq!(by_name_in_a_generic(Box::pin(async { 2 })).await, 2);
        // A boxed trait object, and a `&mut` to an unsized one, by name.
        let mut boxed: Box<dyn Future<Output = u32> + Unpin> = Box::new(std::future::ready(3));
        let three = select! { n = boxed => n };
        let mut inner = std::future::ready(4);
        let mut unsized_ref: &mut (dyn Future<Output = u32> + Unpin) = &mut inner;
        let four = select! { n = unsized_ref => n };
        // A `!Unpin` future pinned in place, by the name of its `Pin<&mut _>`.
        let mut pinned = std::pin::pin!(async {
            overlap::task::yield_now().await;
            5
        });
        let five = select! { n = pinned => n };
        assert_eq!((three, four, five), (3, 4, 5));
    });
}

#[test]
fn a_fused_future_that_has_ended_is_skipped_and_complete_runs_at_the_end() {
    use overlap::future::FutureExt;
    block_on(async {
        let mut a = async { 1 }.boxed_local().fuse();
        let mut b = async { 2 }.boxed_local().fuse();
        let mut total = 0;
        let mut rounds = 0;
        loop {
            rounds += 1;
            select! {
                n = a => total += n,
                n = b => total += n,
                complete => break,
            }
        }
        assert_eq!((total, rounds), (3, 3));
    });
}

#[test]
fn default_runs_only_when_nothing_is_ready_on_the_first_poll() {
    block_on(async {
        let (tx, mut rx) = mpsc::channel::<u32>(1);
        let got = select! {
            Some(n) = rx.recv() => n,
            default => 0,
        };
        assert_eq!(got, 0);
        tx.send(5).await.unwrap();
        let got = select! {
            Some(n) = rx.recv() => n,
            default => 0,
        };
        assert_eq!(got, 5);
    });
}

/// An `IntoFuture` that is not a future itself.
struct Later(u32);

impl IntoFuture for Later {
    type Output = u32;
    type IntoFuture = std::future::Ready<u32>;
    fn into_future(self) -> Self::IntoFuture {
        std::future::ready(self.0 * 2)
    }
}

#[test]
fn patterns_and_expressions_of_every_shape() {
    block_on(async {
        // `mut` bindings in a refutable pattern (checked on a reference, then moved).
        let got = select! {
            Some(mut v) = async { Some(vec![1]) } => { v.push(2); v }
        };
        assert_eq!(got, [1, 2]);
        // A tuple pattern, a literal pattern that fails (disabled), an `IntoFuture`.
        let got = select! {
            (a, b) = async { (1, 2) }, if false => a + b,
            Ok(0) = async { Ok::<u32, ()>(1) } => 0,
            n = Later(21) => n,
        };
        assert_eq!(got, 42);
        // A pinned temporary as the future, and a turbofish with a comma in a handler.
        let got = select! {
            n = std::pin::pin!(async { 3usize }) => Vec::<(u8, u8)>::with_capacity(n).capacity() >= 3,
        };
        assert!(got);
        // A turbofish with nested generics and a comma, in a handler before another branch.
        let got = select! {
            biased;
            n = async { 2usize } => std::collections::HashMap::<Vec<u8>, u8>::with_capacity(n).capacity() >= 2,
            _ = async { 1 } => false,
        };
        assert!(got);
        // A qualified path with a comma, and a closure with two parameters, as handlers.
        let got = select! {
            biased;
            n = async { 3 } => <std::collections::HashMap<u8, u8> as Default>::default().len() + n,
            _ = async { 1 } => 0,
        };
        assert_eq!(got, 3);
        let add: fn(i32, i32) -> i32 = select! {
            biased;
            _ = async { 10 } => move |a, b| a + b,
            _ = async { 1 } => |_, _| 0,
        };
        assert_eq!(add(1, 2), 3);
        // An `if` expression (with an `else if`) as the future, beside a precondition.
        let pick = 2;
        let got = select! {
            biased;
            n = if pick == 1 { Later(1) } else if pick == 2 { Later(2) } else { Later(3) }, if pick > 0 => n / 2,
            _ = async { 9 } => 0,
        };
        assert_eq!(got, 2);
    });
}

#[test]
fn races_real_sockets_a_refutable_accept_and_a_udp_datagram() {
    block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let udp_addr = udp.local_addr().unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        sender.send_to(b"ping", udp_addr).await.unwrap();
        let mut buf = [0u8; 16];
        // The datagram is queued, no client has connected: the UDP branch wins.
        let got = select! {
            Ok((_s, _)) = listener.accept() => "accepted".to_string(),
            Ok((n, from)) = udp.recv_from(&mut buf) => {
                assert_eq!(from, sender.local_addr().unwrap());
                String::from_utf8_lossy(&buf[..n]).into_owned()
            }
        };
        assert_eq!(got, "ping");
        // Now a client connects and writes; no datagram waits.
        let client = spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"hello").await.unwrap();
        });
        let mut stream = select! {
            Ok((s, _)) = listener.accept() => s,
            Ok((n, _)) = udp.recv_from(&mut buf) => panic!("a datagram of {n} bytes from nowhere"),
        };
        let mut got = Vec::new();
        stream.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"hello");
        client.await.unwrap();
    });
}

#[test]
fn a_loop_on_a_counter_and_a_shared_flag_sees_every_message() {
    // tokio's canonical loop: two channels, `else` once both are closed.
    block_on(async {
        let seen = Rc::new(Cell::new(0));
        let (tx1, mut rx1) = mpsc::channel::<u32>(2);
        let (tx2, mut rx2) = mpsc::channel::<u32>(2);
        spawn(async move {
            for i in 0..100 {
                tx1.send(i).await.unwrap();
            }
        });
        spawn(async move {
            for i in 100..200 {
                tx2.send(i).await.unwrap();
            }
        });
        let mut sum = 0;
        loop {
            select! {
                Some(v) = rx1.recv() => { sum += v; seen.set(seen.get() + 1) }
                Some(v) = rx2.recv() => { sum += v; seen.set(seen.get() + 1) }
                else => break,
            }
        }
        assert_eq!((seen.get(), sum), (200, (0..200).sum()));
    });
}

#[test]
fn a_ref_mut_binding_borrows_the_output_mutably_in_its_handler() {
    block_on(async {
        // tokio matches the output in place, so `ref mut` binds into it.
        let got = select! {
            Some(ref mut s) = async { Some(String::from("a")) } => { s.push('b'); s.clone() }
            else => String::new(),
        };
        assert_eq!(got, "ab");
        let got = select! {
            (ref mut n, _) = async { (1u32, ()) } => { *n += 1; *n }
        };
        assert_eq!(got, 2);
    });
}

#[test]
fn a_turbofish_with_nested_generics_and_a_comma_is_one_handler() {
    use std::collections::HashMap;
    block_on(async {
        let map = select! {
            n = async { 4usize } => HashMap::<Vec<u8>, u8>::with_capacity(n),
            _ = std::future::pending::<()>() => HashMap::new(),
        };
        assert!(map.capacity() >= 4);
        let pairs = select! {
            n = async { 2usize } => Vec::<Option<Vec<u8>>>::with_capacity(n).capacity() + Vec::<(Vec<u8>, u8)>::with_capacity(n).capacity(),
        };
        assert!(pairs >= 4);
    });
}

#[test]
fn patterns_of_reference_type_and_reference_patterns_are_checked_on_the_output() {
    const QUIT: &str = "quit";
    block_on(async {
        // A string literal (and a constant of a reference type) against a `&str` output:
        // tokio's compares the output itself.
        let got = select! {
            "quit" = async { "quit" } => 1,
            else => 0,
        };
        assert_eq!(got, 1);
        let got = select! {
            QUIT = async { "stay" } => "quit",
            b"ok" = async { b"ok" } => "ok",
        };
        assert_eq!(got, "ok");
        // `&` patterns and `ref` bindings inside a refutable pattern.
        let got = select! {
            Some(&(a, ref b)) = async { Some(&(1u8, 2u8)) } => (a, *b),
            else => (0, 0),
        };
        assert_eq!(got, (1, 2));
        let got = select! {
            (&[first, ..], Some(second)) = async { (&[5u8, 6][..], Some(7u8)) } => first + second,
            else => 0,
        };
        assert_eq!(got, 12);
    });
}

#[test]
#[should_panic(expected = "a lowercase constant in it is taken for a binding")]
#[allow(non_upper_case_globals)] // rustc warns at the pattern too
fn a_lowercase_constant_in_a_pattern_is_taken_for_a_binding_and_says_so() {
    const zero: u32 = 0;
    block_on(async {
        // `zero` reads as a binding to the check (nothing tells a lowercase constant
        // apart), so the check passes `Some(1)`, and the branch's own match then fails.
        select! {
            Some(zero) = async { Some(1u32) } => zero,
            else => 1,
        }
    });
}

#[test]
fn a_loop_over_always_ready_branches_still_lets_other_tasks_run() {
    // Branches that know nothing of the task budget (a plain ready future, a futures-util
    // stream of ready items) never wait; as tokio's, `select!` yields once the budget is
    // spent, so a long loop of them lets the other tasks run now and then.
    block_on(async {
        let other_ran = Rc::new(Cell::new(false));
        let flag = other_ran.clone();
        spawn(async move { flag.set(true) });
        let mut items = overlap::stream::iter(0..1000u32);
        let mut seen_before_other = 0;
        loop {
            select! {
                Some(n) = overlap::stream::StreamExt::next(&mut items) => {
                    if !other_ran.get() {
                        seen_before_other += 1;
                    }
                    std::hint::black_box(n);
                }
                else => break,
            }
        }
        assert!(other_ran.get());
        assert!(
            seen_before_other < 1000,
            "the other task ran only after all 1000 rounds"
        );
    });
}
