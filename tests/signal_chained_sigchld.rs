//! A `SIGCHLD` handler installed before overlap listens, with `SA_NOCLDSTOP`, is called by
//! overlap's only as the kernel would have called it: when a child ends, not when one
//! stops or continues. (Before, overlap's handler, installed without the flag so that its
//! listeners hear stops too, passed every stop and continue on: a classic handler that
//! calls a blocking `wait()` then hung in the signal handler until some child ended.)
//! Each test runs in a child process of its own: signal actions are process-wide.

mod support;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use overlap::signal::{signal, SignalKind};
use support::{run_in_child, within};

const HANG: Duration = Duration::from_secs(30);

/// Installs `handler` for `SIGCHLD` with `flags` and an empty mask.
fn install_earlier(handler: libc::sighandler_t, flags: libc::c_int) {
    // SAFETY: an all-zero sigaction is valid (empty mask, no flags, SIG_DFL).
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = handler;
    sa.sa_flags = flags;
    // SAFETY: `sa` is a valid sigaction; the old action is not asked for.
    let rc = unsafe { libc::sigaction(libc::SIGCHLD, &sa, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
}

/// Sends `signum` to `child`, a child of this process.
fn signal_child(child: &std::process::Child, signum: i32) {
    // SAFETY: kill takes no pointers; the pid is our own unreaped child's.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signum) }, 0);
}

static PLAIN_CALLS: AtomicI32 = AtomicI32::new(0);

extern "C" fn plain_handler(_signum: libc::c_int) {
    PLAIN_CALLS.fetch_add(1, Ordering::SeqCst);
}

static SIGINFO_CODES: AtomicI32 = AtomicI32::new(0);

extern "C" fn siginfo_handler(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel hands an SA_SIGINFO handler a valid siginfo_t.
    let code = unsafe { (*info).si_code };
    // One decimal digit per call, in order.
    let seen = SIGINFO_CODES.load(Ordering::SeqCst);
    SIGINFO_CODES.store(seen * 10 + code, Ordering::SeqCst);
}

/// A child that a failed check leaves neither stopped nor running.
struct KilledOnDrop(std::process::Child);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Stops, continues and kills a child of this process, waiting each time until overlap's
/// listener heard the `SIGCHLD` (so the earlier handler, called first, has run if it was
/// going to); `after_each` checks what the earlier handler saw after the stop, the
/// continue and the end.
fn stop_continue_kill(after_each: impl Fn(&str)) {
    overlap::block_on(async {
        let mut chld = signal(SignalKind::child()).unwrap();
        let mut sleeper = KilledOnDrop(
            Command::new("sleep")
                .arg("60")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let sleeper = &mut sleeper.0;
        signal_child(sleeper, libc::SIGSTOP);
        within(HANG, chld.recv(), "overlap heard no stop").await;
        after_each("stopped");
        signal_child(sleeper, libc::SIGCONT);
        within(HANG, chld.recv(), "overlap heard no continue").await;
        after_each("continued");
        signal_child(sleeper, libc::SIGKILL);
        within(HANG, chld.recv(), "overlap heard no end").await;
        after_each("killed");
        let status = sleeper.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    });
}

#[test]
fn an_earlier_no_cld_stop_handler_is_not_called_for_a_stop_or_a_continue() {
    run_in_child(
        "an_earlier_no_cld_stop_handler_is_not_called_for_a_stop_or_a_continue",
        || {
            let handler = plain_handler as extern "C" fn(libc::c_int);
            install_earlier(
                handler as libc::sighandler_t,
                libc::SA_NOCLDSTOP | libc::SA_RESTART,
            );
            stop_continue_kill(|step| {
                let want = if step == "killed" { 1 } else { 0 };
                assert_eq!(PLAIN_CALLS.load(Ordering::SeqCst), want, "after {step}");
            });
        },
    );
}

type InfoHandler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);

/// Checks that the `si_code`s the earlier handler got after the stop, the continue and the
/// end read `want` (one digit each, in order).
fn codes_seen(want: [i32; 3]) -> impl Fn(&str) {
    move |step: &str| {
        let i = ["stopped", "continued", "killed"]
            .iter()
            .position(|s| *s == step)
            .unwrap();
        assert_eq!(
            SIGINFO_CODES.load(Ordering::SeqCst),
            want[i],
            "after {step}"
        );
    }
}

#[test]
fn an_earlier_siginfo_handler_without_the_flag_hears_every_change_with_its_code() {
    run_in_child(
        "an_earlier_siginfo_handler_without_the_flag_hears_every_change_with_its_code",
        || {
            let handler = siginfo_handler as InfoHandler as libc::sighandler_t;
            install_earlier(handler, libc::SA_SIGINFO);
            // CLD_STOPPED = 5, CLD_CONTINUED = 6, CLD_KILLED = 2.
            stop_continue_kill(codes_seen([5, 56, 562]));
        },
    );
}

#[test]
fn an_earlier_siginfo_handler_with_the_flag_hears_only_the_end() {
    run_in_child(
        "an_earlier_siginfo_handler_with_the_flag_hears_only_the_end",
        || {
            let handler = siginfo_handler as InfoHandler as libc::sighandler_t;
            install_earlier(handler, libc::SA_SIGINFO | libc::SA_NOCLDSTOP);
            stop_continue_kill(codes_seen([0, 0, 2]));
        },
    );
}
