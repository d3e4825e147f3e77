//! The init itself: becomes a child subreaper, spawns the main command leading a process
//! group of its own, forwards `SIGTERM`, `SIGINT`, `SIGHUP` and `SIGUSR1` to that whole
//! group, reaps adopted orphans on every `SIGCHLD`, and once the main command has exited
//! shuts what is left of its group down ([`crate::shutdown`]) and exits with the main
//! command's exit code (128 + the signal's number if a signal ended it, as tini and the
//! shells say).

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use overlap::process::{Child, Command};
use overlap::signal::unix::{signal, Signal, SignalKind};

use crate::adopted::reap_adopted;
use crate::cli::Config;
use crate::shutdown::shut_group_down;
use crate::sys;

/// The init's exit code when it cannot start at all (no subreaper, no signal handlers).
pub const EXIT_INIT_FAILED: i32 = 1;
/// The exit code when the main command cannot be executed (found, but not executable).
pub const EXIT_NOT_EXECUTABLE: i32 = 126;
/// The exit code when the main command is not found.
pub const EXIT_NOT_FOUND: i32 = 127;
/// The exit code when `--timeout` ran out, as `timeout(1)`'s.
pub const EXIT_TIMED_OUT: i32 = 124;

/// The signals forwarded to the main command's group, in the order they are looked at.
pub const FORWARDED: [libc::c_int; 4] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGUSR1];

/// Where the init's messages go: stderr, prefixed by its name; the chatty ones only with
/// `-v`.
#[derive(Clone, Copy, Debug)]
pub struct Log {
    /// Whether [`Log::info`] prints.
    pub verbose: bool,
}

impl Log {
    /// A message printed only with `-v`.
    pub fn info(&self, msg: fmt::Arguments<'_>) {
        if self.verbose {
            eprintln!("container_init: {msg}");
        }
    }

    /// An error, always printed.
    pub fn error(&self, msg: fmt::Arguments<'_>) {
        eprintln!("container_init: {msg}");
    }
}

/// The init's signal listeners, all made before the main command starts, so that no
/// signal that arrives once it runs takes its default action on the init.
pub struct Signals {
    /// The [`FORWARDED`] signals.
    pub forwarded: Forwarded,
    /// `SIGCHLD`: a child (the main command, or an adopted orphan) has exited.
    pub child: Signal,
}

impl Signals {
    /// Listens to the [`FORWARDED`] signals and to `SIGCHLD`.
    pub fn listen() -> io::Result<Signals> {
        let kind = |n| SignalKind::from_raw(n);
        Ok(Signals {
            forwarded: Forwarded([
                signal(kind(FORWARDED[0]))?,
                signal(kind(FORWARDED[1]))?,
                signal(kind(FORWARDED[2]))?,
                signal(kind(FORWARDED[3]))?,
            ]),
            child: signal(SignalKind::child())?,
        })
    }
}

/// The listeners of the [`FORWARDED`] signals, in that order.
pub struct Forwarded([Signal; 4]);

impl Forwarded {
    /// The number of the next forwarded signal to arrive.
    async fn next(&mut self) -> libc::c_int {
        let [term, int, hup, usr1] = &mut self.0;
        overlap::select! {
            _ = term.recv() => libc::SIGTERM,
            _ = int.recv() => libc::SIGINT,
            _ = hup.recv() => libc::SIGHUP,
            _ = usr1.recv() => libc::SIGUSR1,
        }
    }
}

/// Runs the init as configured and returns its exit code.
pub async fn run(cfg: &Config) -> i32 {
    let log = Log {
        verbose: cfg.verbose,
    };
    if let Err(e) = sys::set_child_subreaper() {
        log.error(format_args!("cannot become a child subreaper: {e}"));
        return EXIT_INIT_FAILED;
    }
    let mut signals = match Signals::listen() {
        Ok(s) => s,
        Err(e) => {
            log.error(format_args!("cannot listen to signals: {e}"));
            return EXIT_INIT_FAILED;
        }
    };
    let child = match spawn_main(&cfg.program, cfg) {
        Ok(child) => child,
        Err(code) => return code,
    };
    let main = child.id().expect("just spawned, not reaped");
    log.info(format_args!("started pid {main}"));
    let supervised = supervise(child, &mut signals, cfg, log);
    let status = match cfg.timeout {
        None => supervised.await,
        Some(limit) => match overlap::time::timeout(limit, supervised).await {
            Ok(status) => status,
            Err(_) => {
                // The supervising future, and with it the main command's `Child`, is
                // gone: `kill_group_on_drop` has sent `SIGKILL` to the whole group, and
                // overlap reaps the main command in the background. What the group left
                // to the init is reaped here.
                log.error(format_args!(
                    "{} timed out after {limit:?}: killed its process group",
                    cfg.program.to_string_lossy()
                ));
                let rest = async {
                    crate::shutdown::wait_exited(&mut signals, main).await?;
                    crate::shutdown::kill_adopted(&mut signals, &[main], log).await
                };
                if let Err(e) = rest.await {
                    log.error(format_args!("cannot reap what is left: {e}"));
                }
                return EXIT_TIMED_OUT;
            }
        },
    };
    match status {
        Ok(status) => {
            log.info(format_args!("main command ended: {status}"));
            exit_code(status)
        }
        Err(e) => {
            log.error(format_args!("lost the main command: {e}"));
            EXIT_INIT_FAILED
        }
    }
}

/// Spawns the main command leading a group of its own, its whole group killed if the
/// `Child` is dropped (the init's safety net). Fails with the exit code to exit with,
/// having said why.
fn spawn_main(program: &OsStr, cfg: &Config) -> Result<Child, i32> {
    let spawned = Command::new(program)
        .args(&cfg.args)
        .process_group(0)
        .kill_group_on_drop(true)
        .spawn();
    spawned.map_err(|e| {
        let name = program.to_string_lossy();
        let code = match e.kind() {
            io::ErrorKind::NotFound => EXIT_NOT_FOUND,
            _ => EXIT_NOT_EXECUTABLE,
        };
        let why = match e.kind() {
            io::ErrorKind::NotFound => "command not found".to_string(),
            io::ErrorKind::PermissionDenied => "permission denied (not executable?)".into(),
            _ => format!("cannot execute: {e}"),
        };
        eprintln!("container_init: {name}: {why}");
        code
    })
}

/// Forwards signals and reaps orphans until the main command exits, then shuts its group
/// down and reaps it: the main command's status. Owns the `Child`, so that dropping this
/// future (at `--timeout`) kills the group.
async fn supervise(
    mut child: Child,
    signals: &mut Signals,
    cfg: &Config,
    log: Log,
) -> io::Result<ExitStatus> {
    let main = child.id().expect("not reaped yet");
    let status = loop {
        overlap::select! {
            status = child.exited() => break status?,
            sig = signals.forwarded.next() => {
                log.info(format_args!("forwarding signal {sig} to group {main}"));
                if let Err(e) = child.send_signal_to_group(sig) {
                    log.error(format_args!("cannot forward signal {sig}: {e}"));
                }
            }
            _ = signals.child.recv() => {
                let (reaped, _) = reap_adopted(&[main])?;
                for r in reaped {
                    log.info(format_args!("reaped orphan {} ({})", r.pid, r.status));
                }
            }
        }
    };
    // Still a zombie: its pid and the group id it led are not free for reuse yet.
    log.info(format_args!(
        "main command {main} exited ({status}), not reaped yet"
    ));
    shut_group_down(&mut child, signals, cfg.grace, log).await?;
    let reaped = child.wait().await?;
    debug_assert_eq!(reaped, status);
    Ok(reaped)
}

/// The init's exit code for the main command's `status`: its exit code, or 128 + the
/// number of the signal that ended it.
pub fn exit_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        (None, None) => EXIT_INIT_FAILED,
    }
}
