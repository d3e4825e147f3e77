//! smol's `unix-signal` and `ctrl-c` examples, ported. smol has no signal API of its own:
//! its examples catch a signal with another crate's process-wide handler (signal-hook's
//! `pipe::register`, which writes a byte to a Unix socket on each arrival, read through
//! `Async<UnixStream>`; or `ctrlc::set_handler`), and a smol user moving to overlap keeps
//! that code while other parts of the program (or a library) start listening through
//! `overlap::signal`. Both must then hear the signal: overlap's handler calls the one it
//! found installed, as signal-hook's registry (and so tokio) does.
//!
//! The handlers here stand in for those crates': plain `sigaction` handlers that write a
//! byte to a socket pair whose other end overlap reads, one with `SA_SIGINFO` (as
//! signal-hook installs them), one without (as `ctrlc` and `nix::signal` do). Each test
//! uses a signal of its own: handlers are process-wide.

mod support;

use std::os::fd::IntoRawFd;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use overlap::io::AsyncReadExt;
use overlap::net::UnixStream;
use overlap::signal::{signal, SignalKind};
use support::within;

const HANG: Duration = Duration::from_secs(20);

/// The write end of the socket pair each handler writes to; -1 until set.
static USR1_PIPE: AtomicI32 = AtomicI32::new(-1);
static USR2_PIPE: AtomicI32 = AtomicI32::new(-1);
/// What the `SA_SIGINFO` handler saw: the signal number and the sender's pid.
static USR2_SIGNO: AtomicI32 = AtomicI32::new(0);
static USR2_PID: AtomicI32 = AtomicI32::new(0);

/// Writes one byte to `fd` from a signal handler (`write` is async-signal-safe).
fn write_byte(fd: i32) {
    let byte = b'!';
    // SAFETY: `byte` is one readable byte for the duration of the call.
    let _ = unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
}

extern "C" fn plain_handler(_signum: libc::c_int) {
    write_byte(USR1_PIPE.load(Ordering::SeqCst));
}

extern "C" fn siginfo_handler(
    signum: libc::c_int,
    info: *mut libc::siginfo_t,
    _context: *mut libc::c_void,
) {
    // SAFETY: with SA_SIGINFO the kernel hands the handler a valid siginfo_t.
    let (signo, pid) = unsafe { ((*info).si_signo, (*info).si_pid()) };
    if signo == signum {
        USR2_SIGNO.store(signo, Ordering::SeqCst);
        USR2_PID.store(pid, Ordering::SeqCst);
    }
    write_byte(USR2_PIPE.load(Ordering::SeqCst));
}

/// Installs `handler` for `signum` as another crate would, before overlap listens.
fn install_foreign_handler(signum: i32, handler: libc::sighandler_t, flags: libc::c_int) {
    // SAFETY: an all-zero sigaction is valid (empty mask, no flags, SIG_DFL).
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = handler;
    sa.sa_flags = flags | libc::SA_RESTART;
    // SAFETY: `sa` is a valid sigaction; the old action is not asked for.
    let rc = unsafe { libc::sigaction(signum, &sa, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
}

/// A socket pair whose write end the handler gets (as signal-hook's `pipe::register` takes
/// one end), and whose read end overlap reads.
fn signal_pipe(slot: &AtomicI32) -> UnixStream {
    let (write, read) = std::os::unix::net::UnixStream::pair().unwrap();
    write.set_nonblocking(true).unwrap();
    slot.store(write.into_raw_fd(), Ordering::SeqCst);
    UnixStream::from_std(read).unwrap()
}

fn raise(signum: i32) {
    // SAFETY: kill and getpid take no pointers.
    assert_eq!(unsafe { libc::kill(libc::getpid(), signum) }, 0);
}

// smol: examples/unix-signal.rs (a byte on a Unix socket per arrival), in a program where
// something also listens through `overlap::signal`.
#[overlap::test]
async fn a_handler_installed_before_overlaps_still_hears_the_signal() {
    let mut from_handler = signal_pipe(&USR1_PIPE);
    install_foreign_handler(
        libc::SIGUSR1,
        plain_handler as extern "C" fn(libc::c_int) as libc::sighandler_t,
        0,
    );

    let mut usr1 = signal(SignalKind::user_defined1()).unwrap();
    for round in 0..3 {
        raise(libc::SIGUSR1);
        within(HANG, usr1.recv(), "overlap's listener never heard SIGUSR1")
            .await
            .unwrap();
        let mut byte = [0u8];
        let read = from_handler.read_exact(&mut byte);
        within(
            HANG,
            read,
            &format!("round {round}: the earlier handler was not called"),
        )
        .await
        .unwrap();
        assert_eq!(byte, *b"!");
    }
}

// smol: examples/ctrl-c.rs (a handler of another crate's, here one taking `SA_SIGINFO`, as
// signal-hook's do): it gets the signal's siginfo, as if overlap were not there.
#[overlap::test]
async fn an_sa_siginfo_handler_installed_before_overlaps_gets_the_siginfo() {
    let mut from_handler = signal_pipe(&USR2_PIPE);
    install_foreign_handler(
        libc::SIGUSR2,
        siginfo_handler as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)
            as libc::sighandler_t,
        libc::SA_SIGINFO,
    );

    let mut usr2 = signal(SignalKind::user_defined2()).unwrap();
    raise(libc::SIGUSR2);
    within(HANG, usr2.recv(), "overlap's listener never heard SIGUSR2")
        .await
        .unwrap();
    let mut byte = [0u8];
    let read = from_handler.read_exact(&mut byte);
    within(HANG, read, "the earlier handler was not called")
        .await
        .unwrap();
    assert_eq!(USR2_SIGNO.load(Ordering::SeqCst), libc::SIGUSR2);
    // SAFETY: getpid takes no pointers.
    assert_eq!(USR2_PID.load(Ordering::SeqCst), unsafe { libc::getpid() });
}

// smol: examples/ctrl-c.rs written with overlap's own API: wait for the signal, then go on.
#[overlap::test]
async fn ctrl_c_through_overlaps_signal_api() {
    let mut interrupt = signal(SignalKind::interrupt()).unwrap();
    let waiter = overlap::spawn(async move { interrupt.recv().await });
    overlap::yield_now().await;
    raise(libc::SIGINT);
    let got = within(HANG, waiter, "Ctrl-C was never heard").await;
    assert_eq!(got.unwrap(), Some(()));
}

// A signal the program ignored (`SIG_IGN`, as `nohup` leaves SIGHUP) or left at its default
// has no handler to call: listening through overlap hears it, and nothing else runs.
#[overlap::test]
async fn an_ignored_or_default_signal_has_no_earlier_handler_to_call() {
    install_foreign_handler(libc::SIGVTALRM, libc::SIG_IGN, 0);
    let mut ignored = signal(SignalKind::from_raw(libc::SIGVTALRM)).unwrap();
    let mut default = signal(SignalKind::from_raw(libc::SIGPROF)).unwrap();
    for (signum, sig) in [
        (libc::SIGVTALRM, &mut ignored),
        (libc::SIGPROF, &mut default),
    ] {
        raise(signum);
        within(HANG, sig.recv(), "overlap's listener never heard it")
            .await
            .unwrap();
    }
}
