//! tokio's Unix-signal pattern, ported name for name: `signal::unix::{signal, SignalKind}`,
//! a loop that reloads on `SIGHUP` and stops on `SIGTERM`, with real signals sent to this
//! process from another thread.

mod support;

use std::time::Duration;

use overlap::future::FutureExt;
use overlap::signal::unix::{signal, Signal, SignalKind};
use support::within;

const HANG: Duration = Duration::from_secs(30);

/// Sends `kind` to this process from another thread, while the runtime waits in epoll.
fn raise_soon(kind: SignalKind) -> std::thread::JoinHandle<()> {
    let signum: i32 = kind.into();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        // SAFETY: kill and getpid take no pointers.
        assert_eq!(unsafe { libc::kill(libc::getpid(), signum) }, 0);
    })
}

#[overlap::test]
async fn reload_on_hangup_stop_on_terminate() -> std::io::Result<()> {
    let mut sig_hup: Signal = signal(SignalKind::hangup())?;
    let mut sig_term = signal(SignalKind::from(libc::SIGTERM))?;
    assert_eq!(sig_term.kind(), SignalKind::terminate());
    assert_eq!(SignalKind::pipe().as_raw_value(), libc::SIGPIPE);
    assert_eq!(SignalKind::alarm().as_raw_value(), libc::SIGALRM);
    assert_eq!(SignalKind::io().as_raw_value(), libc::SIGIO);

    let mut senders = vec![raise_soon(SignalKind::hangup())];
    let mut events = Vec::new();
    let serve = async {
        loop {
            overlap::select! {
                _ = sig_hup.recv().fuse() => {
                    events.push("reload");
                    senders.push(raise_soon(SignalKind::terminate()));
                }
                _ = sig_term.recv().fuse() => {
                    events.push("stop");
                    break;
                }
            }
        }
    };
    within(HANG, serve, "a signal was lost").await;
    for sender in senders {
        sender.join().unwrap();
    }
    assert_eq!(events, ["reload", "stop"]);
    Ok(())
}

/// tokio's `recv` returns `Option<()>`; its loops read `while let Some(()) = ...`.
#[overlap::test]
async fn a_while_let_loop_counts_arrivals() -> std::io::Result<()> {
    let mut sig_usr = signal(SignalKind::user_defined2())?;
    let mut sender = raise_soon(SignalKind::user_defined2());
    let mut heard = 0;
    let count = async {
        while let Some(()) = sig_usr.recv().await {
            heard += 1;
            sender.join().unwrap();
            if heard == 2 {
                break;
            }
            sender = raise_soon(SignalKind::user_defined2());
        }
    };
    within(HANG, count, "a signal was lost").await;
    assert_eq!(heard, 2);
    Ok(())
}
