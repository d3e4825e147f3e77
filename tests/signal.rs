//! `overlap::signal`: real signals sent to this process reach every listener, in one runtime
//! or several, are coalesced, and leave the process alive; bad requests are errors.

mod support;

use std::io;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use overlap::signal::{ctrl_c, signal, SignalKind};
use overlap::time::{sleep, timeout};
use overlap::{block_on, spawn};
use support::within;

/// Only a lost wakeup gets near this.
const HANG: Duration = Duration::from_secs(30);

/// Signals are process-wide: the tests here take turns.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn raise(signum: i32) {
    // SAFETY: kill and getpid take no pointers.
    assert_eq!(unsafe { libc::kill(libc::getpid(), signum) }, 0);
}

/// Sends `signum` to this process from another thread after `delay`, while the runtime
/// sleeps in epoll.
fn raise_later(signum: i32, delay: Duration) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        raise(signum);
    })
}

#[test]
fn a_signal_from_another_thread_wakes_the_sleeping_listener() {
    let _g = serial();
    block_on(async {
        let mut usr1 = signal(SignalKind::user_defined1()).unwrap();
        let sender = raise_later(libc::SIGUSR1, Duration::from_millis(30));
        within(HANG, usr1.recv(), "signal lost").await;
        sender.join().unwrap();
        // Nothing more arrived: the next recv waits.
        assert!(timeout(Duration::from_millis(30), usr1.recv())
            .await
            .is_err());
    });
}

#[test]
fn every_listener_hears_it_and_arrivals_coalesce() {
    let _g = serial();
    block_on(async {
        let mut a = signal(SignalKind::user_defined2()).unwrap();
        let mut b = signal(SignalKind::user_defined2()).unwrap();
        let waiter = spawn(async move {
            within(HANG, b.recv(), "second listener missed it").await;
            b
        });
        for _ in 0..3 {
            raise(libc::SIGUSR2);
        }
        within(HANG, a.recv(), "first listener missed it").await;
        let mut b = waiter.await.unwrap();
        // Three arrivals before anyone looked again: at most what is left is reported once
        // more, then nothing until a new one.
        let _ = timeout(Duration::from_millis(20), a.recv()).await;
        let _ = timeout(Duration::from_millis(20), b.recv()).await;
        assert!(timeout(Duration::from_millis(30), a.recv()).await.is_err());
        // As a stream, too.
        raise(libc::SIGUSR2);
        assert_eq!(within(HANG, b.next(), "stream missed it").await, Some(()));
    });
}

#[test]
fn runtimes_on_two_threads_both_receive() {
    let _g = serial();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let other = std::thread::spawn(move || {
        block_on(async move {
            let mut hup = signal(SignalKind::hangup()).unwrap();
            ready_tx.send(()).unwrap();
            within(HANG, hup.recv(), "the other runtime missed it").await;
        })
    });
    block_on(async {
        let mut hup = signal(SignalKind::hangup()).unwrap();
        ready_rx.recv().unwrap();
        let sender = raise_later(libc::SIGHUP, Duration::from_millis(20));
        within(HANG, hup.recv(), "this runtime missed it").await;
        sender.join().unwrap();
    });
    other.join().unwrap();
}

#[test]
fn ctrl_c_is_caught_and_the_process_lives() {
    let _g = serial();
    block_on(async {
        let waiter = spawn(ctrl_c());
        // Let ctrl_c install its handler before the signal is sent.
        sleep(Duration::from_millis(20)).await;
        raise(libc::SIGINT);
        within(HANG, waiter, "ctrl_c missed SIGINT")
            .await
            .unwrap()
            .unwrap();
    });
}

#[test]
fn signals_that_must_not_be_caught_are_refused() {
    let _g = serial();
    block_on(async {
        // 32 and 33: glibc's own real-time signals, which sigaction refuses.
        for signum in [
            libc::SIGKILL,
            libc::SIGSTOP,
            libc::SIGSEGV,
            0,
            -1,
            65,
            1000,
            32,
            33,
        ] {
            let err = signal(SignalKind::from_raw(signum)).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{signum}: {err}");
            let msg = err.to_string();
            assert!(msg.starts_with(&format!("signal {signum} cannot")), "{msg}");
        }
    });
    // Outside a runtime: an error, not a panic, and the signal's disposition is left alone
    // (a handler installed for a failed call would swallow SIGTERM with nobody listening).
    assert_eq!(disposition(libc::SIGTERM), libc::SIG_DFL);
    let err = signal(SignalKind::terminate()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::Other, "{err}");
    assert_eq!(
        disposition(libc::SIGTERM),
        libc::SIG_DFL,
        "a failed signal() left a handler installed"
    );
}

/// The current handler of `signum`.
fn disposition(signum: i32) -> libc::sighandler_t {
    // SAFETY: an all-zero sigaction is a valid value to be overwritten.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only reads the current one into `old`, which is writable.
    let rc = unsafe { libc::sigaction(signum, std::ptr::null(), &mut old) };
    assert_eq!(rc, 0);
    old.sa_sigaction
}

#[test]
fn an_idle_listener_sleeps_instead_of_spinning() {
    let _g = serial();
    block_on(async {
        let mut winch = signal(SignalKind::window_change()).unwrap();
        let before = overlap::metrics();
        assert!(timeout(Duration::from_millis(200), winch.recv())
            .await
            .is_err());
        let after = overlap::metrics();
        // One sleep until the timeout, maybe a couple of extra turns; never a busy loop.
        assert!(
            after.epoll_waits - before.epoll_waits < 10,
            "{} epoll_waits while idle",
            after.epoll_waits - before.epoll_waits
        );
    });
}

#[test]
fn a_signal_made_in_a_dropped_runtime_still_works_in_another() {
    let _g = serial();
    let mut quit = overlap::Runtime::new()
        .unwrap()
        .block_on(async { signal(SignalKind::quit()).unwrap() });
    // The runtime that made it (and its pipe reader) is gone; this one must read the pipe.
    block_on(async {
        let sender = raise_later(libc::SIGQUIT, Duration::from_millis(30));
        within(HANG, quit.recv(), "no reader woke the listener").await;
        sender.join().unwrap();
    });
}

/// A waker that panics when woken, as a buggy hand-written combinator's might.
struct PanickingWaker;

impl std::task::Wake for PanickingWaker {
    fn wake(self: std::sync::Arc<Self>) {
        panic!("this waker panics on purpose");
    }
}

#[test]
fn a_panicking_waker_costs_no_other_listener_its_signal() {
    let _g = serial();
    block_on(async {
        let mut bad = signal(SignalKind::user_defined1()).unwrap();
        let waker = std::task::Waker::from(std::sync::Arc::new(PanickingWaker));
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(bad.poll_recv(&mut cx).is_pending());
        let mut good = signal(SignalKind::user_defined1()).unwrap();
        let heard_first = std::rc::Rc::new(std::cell::Cell::new(false));
        let heard = heard_first.clone();
        let listener = spawn(async move {
            good.recv().await;
            heard.set(true);
            good.recv().await;
        });
        // Raise twice: both must reach the listener, the second after the panicking waker
        // is long gone, so the runtime's reader must still be running. The second waits
        // until the first was heard (arrivals in between would coalesce).
        let sender = raise_later(libc::SIGUSR1, Duration::from_millis(10));
        within(
            HANG,
            async {
                while !heard_first.get() {
                    sleep(Duration::from_millis(1)).await;
                }
            },
            "the first signal never reached the listener",
        )
        .await;
        sender.join().unwrap();
        let sender = raise_later(libc::SIGUSR1, Duration::from_millis(10));
        within(
            HANG,
            listener,
            "a listener lost its signal to another's panicking waker",
        )
        .await
        .unwrap();
        sender.join().unwrap();
        drop(bad);
    });
}

/// The fds of the descriptor table that point at the same pipe as another does, with
/// whether each is close-on-exec.
fn pipe_fds() -> Vec<(String, bool)> {
    let mut fds = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let entry = entry.unwrap();
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue; // the directory's own fd, closed by now
        };
        let target = target.to_string_lossy().into_owned();
        let fd = entry.file_name().to_string_lossy().into_owned();
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap();
        let flags = info.lines().find_map(|l| l.strip_prefix("flags:")).unwrap();
        let flags = u32::from_str_radix(flags.trim(), 8).unwrap();
        if target.starts_with("pipe:") {
            fds.push((target, flags & libc::O_CLOEXEC as u32 != 0));
        }
    }
    fds
}

#[test]
fn the_self_pipe_stays_open_for_the_process_and_a_runtimes_reader_closes_with_it() {
    support::run_in_child(
        "the_self_pipe_stays_open_for_the_process_and_a_runtimes_reader_closes_with_it",
        || {
            let before = pipe_fds();
            let new = |now: Vec<(String, bool)>| -> Vec<(String, bool)> {
                now.into_iter().filter(|fd| !before.contains(fd)).collect()
            };
            for round in 0..2 {
                block_on(async {
                    let _hup = signal(SignalKind::hangup()).unwrap();
                    // The pipe's two ends, and this runtime's reader of it: close-on-exec,
                    // so no child inherits them.
                    let open = new(pipe_fds());
                    assert_eq!(open.len(), 3, "round {round}: {open:?}");
                    assert!(open
                        .iter()
                        .all(|(pipe, cloexec)| *cloexec && *pipe == open[0].0));
                });
                // The runtime's reader went with it; the pipe stays for the next listener.
                assert_eq!(new(pipe_fds()).len(), 2, "round {round}");
            }
        },
    );
}
