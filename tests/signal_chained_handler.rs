//! A handler installed before overlap listens is called by overlap's handler as the kernel
//! would have called it: with the signals it asked to block (`sa_mask`) blocked, and on
//! the thread's alternate signal stack if it asked for one (`SA_ONSTACK`). Before, it ran
//! with only the signal itself blocked, on the interrupted stack: a handler relying on its
//! mask (not reentrant against another signal's handler, say) could be interrupted.

mod support;

use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use overlap::signal::{signal, SignalKind};
use support::within;

/// What the earlier handler saw, as bits: it ran, `SIGURG` was blocked, it ran on the
/// alternate stack.
static SEEN: AtomicI32 = AtomicI32::new(0);
const RAN: i32 = 1;
const MASKED: i32 = 2;
const ON_ALT_STACK: i32 = 4;

extern "C" fn picky_handler(_signum: libc::c_int) {
    let mut seen = RAN;
    // SAFETY: an all-zero sigset_t is a valid value to be overwritten.
    let mut blocked: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: a null new set only reads this thread's mask into `blocked`; both calls are
    // async-signal-safe.
    let masked = unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut blocked) == 0
            && libc::sigismember(&blocked, libc::SIGURG) == 1
    };
    if masked {
        seen |= MASKED;
    }
    // SAFETY: an all-zero stack_t is a valid value to be overwritten.
    let mut stack: libc::stack_t = unsafe { std::mem::zeroed() };
    // SAFETY: a null new stack only reads the current one (and whether we run on it).
    if unsafe { libc::sigaltstack(std::ptr::null(), &mut stack) } == 0
        && stack.ss_flags & libc::SS_ONSTACK != 0
    {
        seen |= ON_ALT_STACK;
    }
    SEEN.store(seen, Ordering::SeqCst);
}

/// Gives this thread an alternate signal stack unless it has one (std gives its threads
/// one, for its stack-overflow report).
fn ensure_alternate_stack() {
    // SAFETY: as in the handler.
    let mut stack: libc::stack_t = unsafe { std::mem::zeroed() };
    // SAFETY: a null new stack only reads this thread's alternate stack into `stack`.
    let rc = unsafe { libc::sigaltstack(std::ptr::null(), &mut stack) };
    assert_eq!(rc, 0);
    if stack.ss_flags & libc::SS_DISABLE == 0 {
        return;
    }
    let memory: &'static mut [u8] = Vec::leak(vec![0; 256 << 10]);
    let stack = libc::stack_t {
        ss_sp: memory.as_mut_ptr().cast(),
        ss_flags: 0,
        ss_size: memory.len(),
    };
    // SAFETY: `stack` describes leaked memory, valid for the rest of the process.
    let rc = unsafe { libc::sigaltstack(&stack, std::ptr::null_mut()) };
    assert_eq!(rc, 0);
}

#[overlap::test]
async fn an_earlier_handler_runs_with_its_own_mask_and_alternate_stack() {
    ensure_alternate_stack();
    // SAFETY: an all-zero sigaction is valid (empty mask, no flags, SIG_DFL).
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = picky_handler as extern "C" fn(libc::c_int) as libc::sighandler_t;
    sa.sa_flags = libc::SA_ONSTACK | libc::SA_RESTART;
    // SAFETY: `sa.sa_mask` is a valid sigset_t.
    unsafe {
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaddset(&mut sa.sa_mask, libc::SIGURG);
    }
    // SAFETY: `sa` is a valid sigaction; the old action is not asked for.
    let rc = unsafe { libc::sigaction(libc::SIGWINCH, &sa, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());

    // Called directly by the kernel, it sees what it asked for: the test sees it too.
    // SAFETY: raise takes no pointers; the handler runs before it returns, on this thread.
    assert_eq!(unsafe { libc::raise(libc::SIGWINCH) }, 0);
    assert_eq!(SEEN.swap(0, Ordering::SeqCst), RAN | MASKED | ON_ALT_STACK);

    let mut winch = signal(SignalKind::window_change()).unwrap();
    // SAFETY: as above; now overlap's handler runs, and calls the earlier one.
    assert_eq!(unsafe { libc::raise(libc::SIGWINCH) }, 0);
    within(
        Duration::from_secs(20),
        winch.recv(),
        "overlap never heard it",
    )
    .await
    .unwrap();
    let seen = SEEN.load(Ordering::SeqCst);
    assert_eq!(seen & RAN, RAN, "the earlier handler was not called");
    assert_eq!(seen & MASKED, MASKED, "its sa_mask was not applied");
    assert_eq!(
        seen & ON_ALT_STACK,
        ON_ALT_STACK,
        "it did not run on the alternate stack"
    );
}
