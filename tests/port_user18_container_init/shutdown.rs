//! What the init does once the main command has exited (still unreaped, so the group id it
//! led is still its): `SIGTERM` to what is left of its group (and to each adopted orphan
//! that left the group, a `setsid` daemon), then, while the grace period runs, reaping
//! each as it ends; the grace period ends early once nothing is left. Past it, `SIGKILL`
//! to the group and to every orphan still adopted, again and again as more are
//! reparented, until none is left.
//!
//! "Nothing is left" is counted through the init's children: with the init a subreaper,
//! every process below it whose parent dies is reparented to it, so it has no child but the
//! main command's zombie only once every process below it has ended.

use std::io;
use std::time::Duration;

use overlap::process::Child;

use crate::adopted::{adopted, reap_adopted};
use crate::init::{Log, Signals};
use crate::sys;

/// Shuts down what is left of `child`'s group (and every other adopted orphan): see the
/// module's docs. `child` has exited and is not reaped.
pub async fn shut_group_down(
    child: &mut Child,
    signals: &mut Signals,
    grace: Duration,
    log: Log,
) -> io::Result<()> {
    let main = child.id().expect("exited, not reaped");
    child.send_signal_to_group(libc::SIGTERM)?;
    // Orphans in the group had the group's signal; one that left it (`setsid`) is asked
    // on its own. Its pid is an unreaped child's: nobody else can have it.
    for pid in adopted(&[main])? {
        if sys::getpgid(pid).is_ok_and(|pgid| pgid != main) {
            sys::kill(pid, libc::SIGTERM)?;
        }
    }
    match overlap::time::timeout(grace, reap_until_none_left(signals, &[main], None, log)).await {
        Ok(done) => done,
        Err(_) => {
            log.info(format_args!(
                "grace period of {grace:?} over: killing what is left"
            ));
            child.send_signal_to_group(libc::SIGKILL)?;
            kill_adopted(signals, &[main], log).await
        }
    }
}

/// Sends `SIGKILL` to every adopted orphan (those not in `ours`), and to each one
/// reparented later, reaping them all until none is left.
pub async fn kill_adopted(signals: &mut Signals, ours: &[u32], log: Log) -> io::Result<()> {
    reap_until_none_left(signals, ours, Some(libc::SIGKILL), log).await
}

/// Waits until child `pid` has exited (reaped or not): for the main command once its
/// `Child` was dropped and `kill_group_on_drop` sent `SIGKILL`, which returns before the
/// process has died. Only once it has are its own children reparented to the init, for
/// [`kill_adopted`] to find.
pub async fn wait_exited(signals: &mut Signals, pid: u32) -> io::Result<()> {
    while !sys::has_exited(pid)? {
        signals.child.recv().await;
    }
    Ok(())
}

/// Reaps adopted orphans (all but `ours`) as they end, until none is left, sending each
/// round's survivors `signal` if there is one. Looks again on every `SIGCHLD`: the
/// listener was made before the first look, so an exit between a look and the wait is
/// not missed.
async fn reap_until_none_left(
    signals: &mut Signals,
    ours: &[u32],
    signal: Option<libc::c_int>,
    log: Log,
) -> io::Result<()> {
    loop {
        let (reaped, running) = reap_adopted(ours)?;
        for r in reaped {
            log.info(format_args!("reaped orphan {} ({})", r.pid, r.status));
        }
        if running == 0 {
            return Ok(());
        }
        if let Some(sig) = signal {
            // Unreaped children all: a zombie among them ignores it.
            for pid in adopted(ours)? {
                sys::kill(pid, sig)?;
            }
        }
        signals.child.recv().await;
    }
}
