//! A million timers: registered with far deadlines and then dropped, or fired, their room is
//! reused by the next burst (the wheel keeps its peak's room, a documented trade: a burst
//! then registers at twice the speed), whether or not another timer lives on; a server's
//! usual pattern, a far `timeout` around work that finishes at once, or one `Sleep` pushed
//! back again and again, keeps memory flat however many times it runs; and all of it in
//! linear time.

// Each test takes the serialising lock before it builds its runtime: the allocation count is
// the whole process's, and another test's runtime being built meanwhile would add to it.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use overlap::time::{sleep, timeout, Instant, Sleep};
use support::counting::{live, serial, thread_cpu, Counting};

#[global_allocator]
static ALLOC: Counting = Counting;

const MILLION: usize = 1_000_000;

/// A deadline no test reaches.
const FAR: Duration = Duration::from_secs(3600);

/// Fails if the thread spent more than `limit` of CPU since `start`: a million linear steps
/// take a second or two in a debug build; a quadratic step would take hours.
fn assert_cpu_since(start: Duration, limit: Duration, what: &str) {
    let used = thread_cpu() - start;
    eprintln!("{what}: {used:?} of CPU");
    assert!(used < limit, "{what}: {used:?} of CPU");
}

/// Registers a million sleeps (each polled once, so the wheel holds it), then drops them all;
/// returns the bytes held at the peak, the sleeps themselves not counted.
async fn register_and_drop(deadlines: impl Fn(usize) -> Duration) -> usize {
    let mut sleeps: Vec<Sleep> = Vec::with_capacity(MILLION);
    let own = live();
    for i in 0..MILLION {
        sleeps.push(sleep(deadlines(i)));
    }
    std::future::poll_fn(|cx| {
        for s in &mut sleeps {
            assert!(Pin::new(s).poll(cx).is_pending());
        }
        Poll::Ready(())
    })
    .await;
    // Let the loop file them.
    overlap::yield_now().await;
    assert_eq!(overlap::metrics().timers_active, MILLION as u64);
    // Saturating: the previous test's runtime may still be freeing its memory (it is dropped
    // after that test lets go of `serial`).
    let peak = live().saturating_sub(own);
    drop(sleeps);
    overlap::yield_now().await;
    assert_eq!(overlap::metrics().timers_active, 0);
    peak
}

/// Growth allowed between equal bursts, which reuse the first's room: a later burst may file
/// into a few slots the first did not use, whose buffers the wheel keeps too.
fn reuse_slack(first: usize) -> usize {
    (1 << 20).max(first / 8)
}

#[test]
fn a_million_far_sleeps_dropped_leave_room_the_next_million_reuse() {
    let _serial = serial();
    overlap::block_on(async {
        let base = live();
        let cpu = thread_cpu();
        // Spread over a minute to an hour, so they land in many slots and levels.
        let spread = |i: usize| FAR / 60 + Duration::from_millis((i as u64 * 7919) % 3_540_000);
        let mut first = None;
        for round in 1..=3 {
            let peak = register_and_drop(spread).await;
            let kept = live().saturating_sub(base);
            eprintln!("round {round}: a million timers held {peak} bytes, {kept} kept after");
            // The wheel's entries are 32 bytes and each filing a 16-byte item.
            assert!(peak <= MILLION * 160, "{peak} bytes for a million timers");
            let first = *first.get_or_insert(kept);
            assert!(
            kept <= first + reuse_slack(first),
            "round {round}: {kept} bytes kept, {first} after the first: the room was not reused"
        );
        }
        // All in one slot too (the same deadline).
        let peak = register_and_drop(|_| FAR).await;
        assert!(
            peak <= MILLION * 160,
            "{peak} bytes for a million timers in one slot"
        );
        assert_cpu_since(cpu, Duration::from_secs(60), "four million timers");
    });
}

#[test]
fn a_burst_of_timers_leaves_room_the_next_reuses_while_another_timer_lives_on() {
    let _serial = serial();
    overlap::block_on(async {
        let base = live();
        let cpu = thread_cpu();
        // A timer that outlives the burst, as a server's periodic housekeeping does.
        let mut housekeeping = Box::pin(sleep(FAR * 2));
        assert!(support::poll_once(housekeeping.as_mut()).await.is_pending());
        let spread = |i: usize| FAR / 60 + Duration::from_millis((i as u64 * 7919) % 3_540_000);
        let mut first = None;
        for round in 1..=2 {
            let mut sleeps: Vec<Sleep> = (0..MILLION).map(|i| sleep(spread(i))).collect();
            std::future::poll_fn(|cx| {
                for s in &mut sleeps {
                    assert!(Pin::new(s).poll(cx).is_pending());
                }
                Poll::Ready(())
            })
            .await;
            overlap::yield_now().await;
            let peak = live().saturating_sub(base);
            drop(sleeps);
            // The steady traffic after the burst: timeouts around work that finishes at once.
            for _ in 0..10_000 {
                timeout(FAR, overlap::yield_now()).await.unwrap();
            }
            assert_eq!(overlap::metrics().timers_active, 1);
            let kept = live().saturating_sub(base);
            eprintln!("round {round}: {peak} bytes at the peak, {kept} kept with one timer left");
            let first = *first.get_or_insert(kept);
            assert!(
            kept <= first + reuse_slack(first),
            "round {round}: {kept} bytes kept, {first} after the first: the room was not reused"
        );
        }
        assert!(!housekeeping.is_elapsed());
        assert_cpu_since(
            cpu,
            Duration::from_secs(60),
            "two bursts of a million timers",
        );
    });
}

#[test]
fn a_far_timeout_around_work_that_finishes_at_once_keeps_memory_flat() {
    let _serial = serial();
    overlap::block_on(async {
        let cpu = thread_cpu();
        // Warm up, so the wheel's buffers exist before measuring.
        for _ in 0..10_000 {
            timeout(FAR, overlap::yield_now()).await.unwrap();
        }
        let base = live();
        let mut peak = 0;
        for i in 0..MILLION {
            // Pending once (the yield), so the timeout's timer is registered, then done.
            timeout(FAR, overlap::yield_now()).await.unwrap();
            if i % 1024 == 0 {
                peak = peak.max(live().saturating_sub(base));
            }
        }
        eprintln!("a million far timeouts: peak {peak} bytes above the start");
        assert!(peak <= 256 * 1024, "{peak} bytes held by finished timeouts");
        assert_eq!(overlap::metrics().timers_active, 0);
        assert_cpu_since(cpu, Duration::from_secs(60), "a million timeouts");
    });
}

#[test]
fn one_sleep_pushed_back_a_million_times_keeps_memory_flat() {
    let _serial = serial();
    overlap::block_on(async {
        let cpu = thread_cpu();
        let mut idle = Box::pin(sleep(FAR));
        assert!(support::poll_once(idle.as_mut()).await.is_pending());
        let base = live();
        let mut peak = 0;
        for i in 0..MILLION {
            // An idle deadline pushed back on every request, as a keep-alive timer is.
            idle.as_mut()
                .reset(Instant::now() + FAR + Duration::from_millis(i as u64 % 5000));
            assert!(support::poll_once(idle.as_mut()).await.is_pending());
            if i % 4096 == 0 {
                overlap::yield_now().await;
                peak = peak.max(live().saturating_sub(base));
            }
        }
        eprintln!("a sleep reset a million times: peak {peak} bytes above the start");
        assert!(
            peak <= 256 * 1024,
            "{peak} bytes held by one pushed-back sleep"
        );
        assert_eq!(overlap::metrics().timers_active, 1);
        assert_cpu_since(cpu, Duration::from_secs(60), "a million resets");
    });
}

#[test]
fn bursts_of_timers_that_all_fire_reuse_one_room_while_another_lives_on() {
    let _serial = serial();
    overlap::block_on(async {
        let base = live();
        let mut housekeeping = Box::pin(sleep(FAR));
        assert!(support::poll_once(housekeeping.as_mut()).await.is_pending());
        const BURST: usize = 300_000;
        let mut first_peak = None;
        for round in 1..=3 {
            // Spread over the next 50 ms, in an order unrelated to their slab entries; only the
            // woken ones are polled again.
            let mut sleeps: FuturesUnordered<Sleep> = (0..BURST)
                .map(|i| sleep(Duration::from_micros((i as u64 * 7919) % 50_000)))
                .collect();
            let mut peak = 0;
            support::within(
                Duration::from_secs(60),
                async {
                    while sleeps.next().await.is_some() {
                        peak = peak.max(live().saturating_sub(base));
                    }
                },
                "the burst firing",
            )
            .await;
            drop(sleeps);
            assert_eq!(overlap::metrics().timers_active, 1);
            let kept = live().saturating_sub(base);
            eprintln!("round {round}: {BURST} timers fired: {peak} bytes at the peak, {kept} kept");
            // Each burst files its timers in slots a little further on, whose buffers the wheel
            // keeps too, so the room kept may still grow a little from one burst to the next;
            // but never past what one burst needed at its peak.
            let first_peak = *first_peak.get_or_insert(peak);
            assert!(
            kept <= first_peak,
            "round {round}: {kept} bytes kept, more than the first burst's peak of {first_peak}"
        );
        }
        assert!(!housekeeping.is_elapsed());
    });
}
