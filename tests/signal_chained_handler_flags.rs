//! A handler installed before overlap listens keeps its `SA_RESETHAND` and `SA_NODEFER`
//! when overlap's handler calls it, as the kernel would have honoured them: a one-shot
//! handler is called for the first arrival only, and a handler that asked not to have its
//! signal blocked runs with it unblocked. (Before, the one-shot handler was called on every
//! arrival, and the signal was blocked while it ran.) Each test uses a signal of its own:
//! signal actions are process-wide.

mod support;

use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use overlap::signal::{signal, SignalKind};
use support::within;

/// Installs `handler` (a plain one-argument handler) for `signum` with `flags`.
fn install_earlier(signum: libc::c_int, handler: extern "C" fn(libc::c_int), flags: libc::c_int) {
    // SAFETY: an all-zero sigaction is valid (empty mask, no flags, SIG_DFL).
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = handler as libc::sighandler_t;
    sa.sa_flags = flags;
    // SAFETY: `sa.sa_mask` is a valid sigset_t to clear.
    unsafe { libc::sigemptyset(&mut sa.sa_mask) };
    // SAFETY: `sa` is a valid sigaction; the old action is not asked for.
    let rc = unsafe { libc::sigaction(signum, &sa, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
}

fn raise(signum: libc::c_int) {
    // SAFETY: raise takes no pointers; the handler runs before it returns, on this thread.
    assert_eq!(unsafe { libc::raise(signum) }, 0);
}

static ONE_SHOT_CALLS: AtomicI32 = AtomicI32::new(0);

extern "C" fn one_shot_handler(_signum: libc::c_int) {
    ONE_SHOT_CALLS.fetch_add(1, Ordering::SeqCst);
}

#[overlap::test]
async fn an_earlier_one_shot_handler_is_called_for_the_first_arrival_only() {
    install_earlier(
        libc::SIGUSR1,
        one_shot_handler,
        libc::SA_RESETHAND | libc::SA_RESTART,
    );
    let mut usr1 = signal(SignalKind::user_defined1()).unwrap();
    for _ in 0..3 {
        raise(libc::SIGUSR1);
        within(
            Duration::from_secs(20),
            usr1.recv(),
            "overlap never heard it",
        )
        .await
        .unwrap();
    }
    assert_eq!(
        ONE_SHOT_CALLS.load(Ordering::SeqCst),
        1,
        "an SA_RESETHAND handler runs once"
    );
}

/// 1 once the handler ran and found its signal unblocked, 2 once it found it blocked.
static NO_DEFER_SEEN: AtomicI32 = AtomicI32::new(0);

extern "C" fn no_defer_handler(signum: libc::c_int) {
    // SAFETY: an all-zero sigset_t is a valid value to be overwritten.
    let mut blocked: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: a null new set only reads this thread's mask into `blocked`; both calls are
    // async-signal-safe.
    let is_blocked = unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut blocked) == 0
            && libc::sigismember(&blocked, signum) == 1
    };
    NO_DEFER_SEEN.store(if is_blocked { 2 } else { 1 }, Ordering::SeqCst);
}

#[overlap::test]
async fn an_earlier_no_defer_handler_runs_with_its_signal_unblocked() {
    install_earlier(
        libc::SIGUSR2,
        no_defer_handler,
        libc::SA_NODEFER | libc::SA_RESTART,
    );
    // Called directly by the kernel, it sees what it asked for: the test sees it too.
    raise(libc::SIGUSR2);
    assert_eq!(NO_DEFER_SEEN.swap(0, Ordering::SeqCst), 1);

    let mut usr2 = signal(SignalKind::user_defined2()).unwrap();
    raise(libc::SIGUSR2);
    within(
        Duration::from_secs(20),
        usr2.recv(),
        "overlap never heard it",
    )
    .await
    .unwrap();
    assert_eq!(
        NO_DEFER_SEEN.load(Ordering::SeqCst),
        1,
        "the handler ran with its signal blocked (or did not run)"
    );
}
