//! Paused time: `time::pause`, `advance`, `resume`, auto-advance when the runtime has nothing
//! else to do (but not while a blocking job runs, nor while I/O is ready),
//! `#[overlap::test(start_paused = true)]`, and blocking jobs reading the paused clock (as it
//! is now, never going back, and running on once the runtime is dropped). The paused clock
//! is exact, so these tests check exact virtual instants; real time is only bounded loosely
//! (an hour of timers in minutes).

mod support;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::sync::mpsc::cross_thread;
use overlap::time::{self, advance, sleep, timeout, Instant};
use support::{polled, tcp_pair};

const HOUR: Duration = Duration::from_secs(3600);
/// How long a blocking job waits for the task's word before it calls the test hung.
const HANG: Duration = Duration::from_secs(30);

#[overlap::test(start_paused = true)]
async fn an_hour_long_timeout_fires_at_its_exact_virtual_deadline() {
    let real = std::time::Instant::now();
    let start = time::now();
    let res = timeout(HOUR, std::future::pending::<()>()).await;
    assert!(res.is_err());
    assert_eq!(time::now() - start, HOUR);
    assert!(
        real.elapsed() < Duration::from_secs(300),
        "real time went by"
    );
}

#[overlap::test(start_paused = true)]
async fn sleepers_wake_in_deadline_order_each_at_its_own_instant() {
    let start = time::now();
    let woke = Rc::new(RefCell::new(Vec::new()));
    let secs = [7u64, 1, 30, 3, 3, 600, 2];
    let tasks: Vec<_> = secs
        .iter()
        .map(|&s| {
            let woke = woke.clone();
            overlap::spawn(async move {
                sleep(Duration::from_secs(s)).await;
                woke.borrow_mut().push((s, time::now() - start));
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let mut expected: Vec<(u64, Duration)> =
        secs.iter().map(|&s| (s, Duration::from_secs(s))).collect();
    expected.sort();
    assert_eq!(*woke.borrow(), expected);
}

#[test]
fn advance_moves_the_clock_and_fires_what_is_due() {
    overlap::block_on(async {
        time::pause();
        let start = time::now();
        let alarm = overlap::spawn(sleep(Duration::from_secs(10)));
        overlap::yield_now().await; // it registers its timer
        advance(Duration::from_secs(9)).await;
        assert!(!alarm.is_finished(), "fired a second early");
        assert_eq!(time::now() - start, Duration::from_secs(9));
        advance(Duration::from_secs(1)).await;
        assert!(alarm.is_finished(), "did not fire at its deadline");
        // Resumed, the clock runs on from where it stands.
        time::resume();
        let before = time::now();
        sleep(Duration::from_millis(1)).await;
        assert!(time::now() - before >= Duration::from_millis(1));
        assert!(time::now() - start >= Duration::from_secs(10));
        // advance needs a paused clock.
        let unpaused = overlap::spawn(advance(Duration::from_secs(1)));
        assert!(unpaused.await.unwrap_err().is_panic());
    });
}

#[overlap::test(start_paused = true)]
async fn a_running_blocking_job_holds_auto_advance_back() {
    let start = time::now();
    let job = overlap::spawn_blocking(|| std::thread::sleep(Duration::from_millis(50)));
    // Were the clock to jump while the job runs, the timeout would win at once.
    let res = timeout(HOUR, job).await;
    assert!(res.is_ok(), "the clock jumped past a running job");
    assert!(time::now() - start < HOUR);
}

#[overlap::test(start_paused = true)]
async fn a_job_whose_handle_was_aborted_stops_holding_the_clock_when_it_ends() {
    let start = time::now();
    // The job's 20 ms keep it running while the loop first parks; its aborted handle means
    // nobody wakes the loop when it ends. The clock used to stay held for good: a hang.
    let job = overlap::spawn_blocking(|| std::thread::sleep(Duration::from_millis(20)));
    job.abort();
    time::sleep(HOUR).await;
    assert_eq!(time::now() - start, HOUR);
}

/// A blocking job reads its runtime's paused clock as it is now, not as it was when the
/// job started: an `advance` made while the job waits for the task's word shows in the
/// job's next reading, to the nanosecond, and in the `elapsed` of an instant it read before.
#[overlap::test(start_paused = true)]
async fn a_blocking_job_sees_an_advance_made_while_it_runs() {
    let (read_tx, mut read_rx) = cross_thread::channel(1);
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let job = overlap::spawn_blocking(move || {
        let before = Instant::now();
        read_tx.blocking_send(before).unwrap();
        go_rx.recv_timeout(HANG).expect("no word from the task");
        (before, Instant::now(), before.elapsed())
    });
    let before = read_rx.recv().await.unwrap();
    assert_eq!(before, Instant::now(), "the job read another clock");
    advance(HOUR).await;
    go_tx.send(()).unwrap();
    let (_, after, elapsed) = job.await.unwrap();
    assert_eq!(after, before + HOUR);
    assert_eq!(elapsed, HOUR);
    assert_eq!(Instant::now(), after);
}

/// The clock never goes back, whichever thread reads it while the runtime moves it: a job
/// reading it over and over sees it only move on while the task advances it, resumes it
/// (it then runs on from where it stood) and pauses it again; and of two readings on two
/// threads, one made after the other has been handed over is never the earlier.
#[overlap::test(start_paused = true)]
async fn a_clock_read_from_a_blocking_job_never_goes_back() {
    let stop = Arc::new(AtomicBool::new(false));
    let watching = stop.clone();
    let watcher = overlap::spawn_blocking(move || {
        let mut last = Instant::now();
        while !watching.load(Ordering::Acquire) {
            let now = Instant::now();
            assert!(now >= last, "went back {:?}", last - now);
            last = now;
            std::thread::yield_now();
        }
    });
    let (ask_tx, ask_rx) = mpsc::channel::<Instant>();
    let (seen_tx, mut seen_rx) = cross_thread::channel(1);
    let echo = overlap::spawn_blocking(move || {
        while let Ok(asked) = ask_rx.recv_timeout(HANG) {
            let now = Instant::now();
            assert!(
                now >= asked,
                "behind the task's reading by {:?}",
                asked - now
            );
            if seen_tx.blocking_send(now).is_err() {
                break;
            }
        }
    });
    for round in 0..200u64 {
        let asked = Instant::now();
        ask_tx.send(asked).unwrap();
        let seen = seen_rx.recv().await.expect("the echoing job failed");
        assert!(seen >= asked);
        match round % 4 {
            0 | 1 => advance(Duration::from_micros(round * 37)).await,
            2 => time::resume(),
            _ => time::pause(),
        }
        let now = Instant::now();
        assert!(now >= seen, "behind the job's reading by {:?}", seen - now);
    }
    drop(ask_tx);
    stop.store(true, Ordering::Release);
    watcher.await.unwrap();
    echo.await.unwrap();
}

/// A job still running when its paused runtime is dropped goes on reading that clock, run
/// on from where it stood: not the real clock, an hour behind, and not stuck either.
#[test]
fn a_job_that_outlives_its_paused_runtime_reads_its_clock_run_on() {
    let rt = overlap::Runtime::builder()
        .start_paused(true)
        .build()
        .unwrap();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (out_tx, out_rx) = mpsc::channel();
    let paused_at = rt.block_on(async move {
        advance(HOUR).await;
        drop(overlap::spawn_blocking(move || {
            started_tx.send(()).unwrap();
            go_rx.recv_timeout(HANG).expect("no word from the test");
            let first = Instant::now();
            let mut later = first;
            let real = std::time::Instant::now();
            while later == first && real.elapsed() < HANG {
                std::thread::yield_now();
                later = Instant::now();
            }
            out_tx.send((first, later)).unwrap();
        }));
        Instant::now()
    });
    // A pool thread takes the job with or without the loop; a queued one would be dropped.
    started_rx
        .recv_timeout(HANG)
        .expect("the job never started");
    drop(rt);
    go_tx.send(()).unwrap();
    let (first, later) = out_rx.recv_timeout(HANG).expect("the job never answered");
    assert!(
        first >= paused_at,
        "back on the real clock, {:?} behind",
        paused_at - first
    );
    assert!(later > first, "the clock stood still");
}

#[overlap::test(start_paused = true)]
async fn ready_io_is_served_before_the_clock_jumps() {
    let (mut a, mut b) = tcp_pair().await;
    let echo = overlap::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = b.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            b.write_all(&buf[..n]).await.unwrap();
        }
    });
    let start = time::now();
    let data: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    let a = &mut a;
    let round_trip = async {
        let (mut rd, mut wr) = a.split();
        let mut back = vec![0u8; data.len()];
        // Read what the echo sends back while writing, so neither side fills up.
        let (w, ()) = futures_util::join!(wr.write_all(&data), async {
            let mut got = 0;
            while got < back.len() {
                let n = rd.read(&mut back[got..]).await.unwrap();
                assert!(n > 0);
                got += n;
            }
        });
        w.unwrap();
        back
    };
    let back = timeout(Duration::from_secs(5), round_trip)
        .await
        .expect("the clock jumped while I/O was ready");
    assert!(back == data);
    assert_eq!(time::now(), start, "nothing needed the clock to move");
    a.shutdown(std::net::Shutdown::Write).unwrap();
    echo.await.unwrap();
}

#[test]
fn pause_outside_a_runtime_panics() {
    let err = std::panic::catch_unwind(time::pause).unwrap_err();
    let msg = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(msg.contains("outside of a runtime"), "{msg}");
}

#[overlap::test(start_paused = true)]
async fn a_deadline_that_never_comes_is_not_reached_by_auto_advance() {
    let start = time::now();
    // The only timer is one that never fires: the idle loop must wait for the thread's
    // bytes, not jump thirty years ahead and time out.
    let (reader, mut writer) = std::io::pipe().unwrap();
    let mut rx = overlap::pipe::Receiver::from_owned_fd(reader.into()).unwrap();
    let thread = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        std::io::Write::write_all(&mut writer, b"late").unwrap();
    });
    let mut buf = [0u8; 8];
    let got = timeout(Duration::MAX, rx.read(&mut buf)).await;
    assert_eq!(got.expect("a never-deadline fired").unwrap(), 4);
    thread.join().unwrap();
    // Next to a real deadline it stays out of the way.
    let forever = std::pin::pin!(sleep(Duration::MAX));
    let hour = std::pin::pin!(sleep(HOUR));
    let first = overlap::future::select(forever, hour).await;
    assert!(matches!(first, overlap::future::Either::Right(_)));
    assert_eq!(time::now() - start, HOUR);
}

#[overlap::test(start_paused = true)]
async fn timers_still_come_after_the_clock_moved_years_ahead() {
    let start = time::now();
    let years = Duration::from_secs(86_400 * 365 * 11);
    advance(years).await;
    sleep(Duration::from_secs(1)).await;
    assert_eq!(time::now() - start, years + Duration::from_secs(1));
}

#[overlap::test(start_paused = true)]
async fn centuries_of_advance_leave_timers_working() {
    let start = time::now();
    let centuries = Duration::from_secs(86_400 * 365 * 200);
    advance(centuries).await;
    assert_eq!(time::now() - start, centuries, "advance was cut short");
    sleep(HOUR).await;
    assert_eq!(time::now() - start, centuries + HOUR);
    // Still never: the pending future wins over Duration::MAX only with a real deadline.
    let never = std::pin::pin!(timeout(Duration::MAX, std::future::pending::<()>()));
    let hour = std::pin::pin!(sleep(HOUR));
    let first = overlap::future::select(never, hour).await;
    assert!(matches!(first, overlap::future::Either::Right(_)));
}

#[overlap::test(start_paused = true)]
async fn instant_now_and_elapsed_follow_the_paused_clock() {
    let start = time::Instant::now();
    let real = start.into_std();
    advance(Duration::from_secs(90)).await;
    assert_eq!(time::Instant::now() - start, Duration::from_secs(90));
    assert_eq!(start.elapsed(), Duration::from_secs(90));
    assert!(
        real.elapsed() < Duration::from_secs(90),
        "real clock moved too"
    );
    // A deadline built from Instant::now() after an advance lies on the paused clock: due in
    // 5 virtual seconds, not at once (as one from std's real clock would be).
    let deadline = time::Instant::now() + Duration::from_secs(5);
    let alarm = overlap::spawn(time::sleep_until(deadline));
    advance(Duration::from_secs(4)).await;
    assert!(
        !alarm.is_finished(),
        "fired before its paused-clock deadline"
    );
    advance(Duration::from_secs(1)).await;
    assert!(alarm.is_finished());
    assert_eq!(time::Instant::now(), deadline);
}

#[test]
fn instant_converts_to_and_from_std_without_moving() {
    let std_now = std::time::Instant::now();
    let ours = time::Instant::from_std(std_now);
    assert_eq!(ours.into_std(), std_now);
    assert_eq!(
        std::time::Instant::from(time::Instant::from(std_now)),
        std_now
    );
    let later = ours + Duration::from_millis(3);
    assert_eq!(later - ours, Duration::from_millis(3));
    assert_eq!(
        ours - later,
        Duration::ZERO,
        "an earlier instant saturates to zero"
    );
    assert_eq!(ours.checked_duration_since(later), None);
    assert_eq!(later.checked_sub(Duration::from_millis(3)), Some(ours));
    // Outside a runtime, now() is the real clock.
    let a = std::time::Instant::now();
    let b = time::Instant::now().into_std();
    assert!(b >= a && b <= std::time::Instant::now());
}

/// `advance` from the `block_on` future itself (an `#[overlap::test]` body) returns only
/// once every task it woke has run, however many: not after one batch of task polls.
#[overlap::test(start_paused = true)]
async fn advance_from_the_test_body_runs_every_task_it_woke() {
    let done = Rc::new(std::cell::Cell::new(0));
    for _ in 0..200 {
        let done = done.clone();
        overlap::spawn(async move {
            sleep(Duration::from_secs(10)).await;
            done.set(done.get() + 1);
        });
    }
    while overlap::metrics().timers_active < 200 {
        overlap::yield_now().await; // until every task waits
    }
    advance(Duration::from_secs(10)).await;
    assert_eq!(
        done.get(),
        200,
        "advance returned before the tasks it woke ran"
    );
}

/// Auto-advance stops at the earliest deadline, not at a later one within its slack: a
/// sleeper never wakes at a later virtual instant because another timer is due just after.
#[overlap::test(start_paused = true)]
async fn a_sleeper_wakes_at_its_own_deadline_not_a_neighbours() {
    let start = time::now();
    let after = |d: Duration| {
        overlap::spawn(async move {
            sleep(d).await;
            time::now() - start
        })
    };
    // The earlier timer fires first, so the next wakeup is computed afresh.
    let early = after(Duration::from_millis(5));
    let a = after(Duration::from_millis(10));
    let b = after(Duration::from_millis(10) + Duration::from_micros(20));
    assert_eq!(early.await.unwrap(), Duration::from_millis(5));
    assert_eq!(a.await.unwrap(), Duration::from_millis(10));
    assert_eq!(
        b.await.unwrap(),
        Duration::from_millis(10) + Duration::from_micros(20)
    );
}

#[overlap::test(start_paused = true)]
async fn thousands_of_sleepers_each_wake_at_their_own_deadline() {
    let start = time::now();
    let mut x = 88172645463325252u64;
    let sleepers: Vec<_> = (0..5000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let d = Duration::from_micros(x % 2_000_000);
            overlap::spawn(async move {
                sleep(d).await;
                (d, time::now() - start)
            })
        })
        .collect();
    for s in sleepers {
        let (d, woke) = s.await.unwrap();
        assert_eq!(woke, d, "a sleep({d:?}) woke at {woke:?}");
    }
}

/// Over 584 years: past the range of nanoseconds a runtime counts its deadlines in from its
/// start.
const PAST_THE_RANGE: Duration = Duration::from_secs(86_400 * 365 * 600);

#[overlap::test(start_paused = true)]
async fn timers_still_come_after_the_clock_moved_past_their_range() {
    let start = time::now();
    advance(PAST_THE_RANGE).await;
    assert_eq!(time::now() - start, PAST_THE_RANGE);
    // Not at once, as if the deadline had passed: an hour later.
    sleep(HOUR).await;
    assert_eq!(time::now() - start, PAST_THE_RANGE + HOUR);
    // Past the first "never" instant of the process too: `Duration::MAX` still never comes.
    advance(PAST_THE_RANGE).await;
    let never = std::pin::pin!(timeout(Duration::MAX, std::future::pending::<()>()));
    let hour = std::pin::pin!(sleep(HOUR));
    let first = overlap::future::select(never, hour).await;
    assert!(matches!(first, overlap::future::Either::Right(_)));
    assert_eq!(time::now() - start, PAST_THE_RANGE * 2 + HOUR * 2);
}

#[overlap::test(start_paused = true)]
async fn a_deadline_past_the_range_is_never_early() {
    // A timer that stays registered keeps the runtime counting from its start, so an hour
    // after a clock moved 600 years on lies past the range: it may never fire, but never
    // early.
    let _forever = overlap::spawn(sleep(Duration::MAX));
    overlap::task::yield_now().await;
    advance(PAST_THE_RANGE).await;
    let mut hour = polled(sleep(HOUR));
    assert!(hour.poll().is_pending(), "fired at once");
    advance(HOUR - Duration::from_secs(1)).await;
    assert!(hour.poll().is_pending(), "fired early");
}

/// `advance` fires its timers at the loop's next turn, after the loop has looked at I/O (as
/// tokio's, whose driver polls I/O before it fires timers): a task that a timer wakes sees
/// the readiness that came in before the advance. A debounce that reads what is queued
/// before it acts (a file watcher, say) then sees a change made just before the clock
/// moved; it saw nothing, the fd's readiness still unknown, when the timers fired inside
/// `advance` itself (tests/port_user13_watch_runner.rs).
#[overlap::test(start_paused = true)]
async fn a_task_woken_by_advance_sees_the_io_that_came_before_it() {
    use overlap::io::Interest;
    use std::io::{Read, Write};

    let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let a = overlap::AsyncFd::new(a).unwrap();
    let woken = overlap::spawn(async move {
        sleep(Duration::from_secs(1)).await;
        // What the loop knows now, without waiting: no syscall if it has seen no edge.
        let mut buf = [0u8; 8];
        let n = a.try_io(Interest::READABLE, |s| (&*s).read(&mut buf));
        n.map(|n| buf[..n].to_vec())
    });
    overlap::yield_now().await; // it registers its timer
    b.write_all(b"change").unwrap();
    advance(Duration::from_secs(1)).await;
    assert!(
        woken.is_finished(),
        "advance returned before the task it woke ran"
    );
    let seen = woken.await.unwrap();
    assert_eq!(
        seen.ok().as_deref(),
        Some(&b"change"[..]),
        "the readiness was not seen"
    );
}
