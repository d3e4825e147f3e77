//! The service as its own process, as a service manager runs it: this test binary run
//! again with only `service_process` selected and `OVERLAP_USER18_SERVICE` set. It reads
//! and removes the activation variables before anything else runs, turns `SIGHUP`,
//! `SIGTERM` and `SIGUSR1` into control events, and exits with the service's code.

use std::time::Duration;

use overlap::signal::{signal, SignalKind};
use overlap::sync::mpsc;

use super::listen_fds::ListenEnv;
use super::manager::SERVICE_ENV;
use super::service::{run, Control, Setup};

/// The service's `main`: returns at once in an ordinary test run.
pub fn service_main() {
    if std::env::var_os(SERVICE_ENV).is_none() {
        return;
    }
    let listen = ListenEnv::take_from_env();
    let take = |k: &str| {
        let v = std::env::var(k).ok();
        std::env::remove_var(k);
        v
    };
    take(SERVICE_ENV);
    let notify_socket = take("NOTIFY_SOCKET");
    let watchdog_usec = take("WATCHDOG_USEC");
    let watchdog_pid = take("WATCHDOG_PID");
    let drain_ms = take("SA_DRAIN_MS").and_then(|v| v.parse().ok());
    let watchdog_limit = take("SA_WATCHDOG_LIMIT").and_then(|v| v.parse().ok());
    let rt = overlap::Runtime::new().unwrap();
    let code = rt.block_on(async {
        let (tx, rx) = mpsc::unbounded_channel();
        // Listening before READY=1, so no signal the manager sends after it is lost.
        let mut hup = signal(SignalKind::hangup()).unwrap();
        let mut term = signal(SignalKind::terminate()).unwrap();
        let mut usr1 = signal(SignalKind::user_defined1()).unwrap();
        overlap::spawn(async move {
            loop {
                let ctl = overlap::select! {
                    _ = hup.recv() => Control::Reload,
                    _ = term.recv() => Control::Terminate,
                    _ = usr1.recv() => Control::Handover,
                };
                if tx.send(ctl).is_err() {
                    break;
                }
            }
        });
        let setup = Setup {
            listen,
            notify_socket,
            watchdog_usec,
            watchdog_pid,
            pid: std::process::id(),
            drain: Duration::from_millis(drain_ms.unwrap_or(20_000)),
            watchdog_limit,
        };
        run(setup, rx).await
    });
    std::process::exit(code);
}
