//! A user's remote shell over TCP with a pseudo-terminal (a tiny telnetd, `ttyd` or
//! `tmux attach`), sketched as one would for tokio, then written for overlap by changing
//! `tokio::` to `overlap::` and `tokio_util::` to `overlap::`: the frames on the wire
//! (`port_user13_pty_shell/proto.rs`), the terminal from raw libc and the shell on it
//! (`pty.rs`), the server with its sessions (`server.rs`), and the tests' client
//! (`client.rs`); the tests of limits, timeouts, shutdown and leaks are in `more.rs`.
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! use tokio::io::unix::AsyncFd;
//! use tokio::process::Command;
//! use tokio_util::codec::{FramedRead, FramedWrite};
//! use tokio_util::{sync::CancellationToken, task::TaskTracker};
//!
//! // the terminal: posix_openpt, grantpt, unlockpt, ptsname_r, open; the master
//! // O_NONBLOCK | O_CLOEXEC on the reactor
//! let master = AsyncFd::new(File::from(master))?;
//! loop {
//!     let mut guard = master.readable().await?;
//!     match guard.try_io(|inner| inner.get_ref().read(&mut buf)) {
//!         Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => break,  // the shell is gone
//!         Ok(r) => { let n = r?; out.send(Frame::Data(buf[..n].to_vec())).await? }
//!         Err(_would_block) => continue,
//!     }
//! }
//! // the shell, in a session of its own with the slave as its controlling terminal
//! let mut cmd = Command::new("/bin/sh");
//! cmd.arg("-i").stdin(Stdio::from(slave.try_clone()?)).stdout(..).stderr(Stdio::from(slave));
//! unsafe {
//!     cmd.pre_exec(|| {
//!         if libc::setsid() == -1 { return Err(io::Error::last_os_error()) }
//!         if libc::ioctl(0, libc::TIOCSCTTY, 0) == -1 { return Err(io::Error::last_os_error()) }
//!         Ok(())
//!     });
//! }
//! let child = cmd.spawn()?;
//! drop(cmd);                                  // it holds the slave: no EIO while it lives
//! // the session: both directions at once, the idle timer, the shutdown
//! let end = tokio::select! {
//!     r = pty_to_client(&pty, &mut output, &activity) => End::ShellDone,
//!     r = client_to_pty(&mut input, &pty, &activity) => End::ClientGone,
//!     _ = idle(&activity, config.idle) => End::Idle,
//!     _ = token.cancelled() => End::Shutdown,
//! };
//! // the accept loop: a Semaphore for the maximum
//! match limit.clone().try_acquire_owned() {
//!     Ok(permit) => { tracker.spawn(session(stream, permit, ..)); }
//!     Err(_) => { tracker.spawn(reject(stream, "server busy")); }
//! }
//! // shutdown
//! token.cancel(); tracker.close(); timeout(drain, tracker.wait()).await
//! ```
//!
//! The tests check, with real terminals, real shells (`/bin/sh -i`) and real loopback
//! sockets, matching on markers the shell computes (`echo __M__$((40+2))` gives
//! `__M__42`, which the terminal's echo of the command does not contain): a command's
//! output comes back, from a shell that leads its own session with the terminal as its
//! controlling tty; a mebibyte of every byte value sent to `head -c` in raw mode comes
//! back whole while still being sent (both directions at once, with backpressure), and a
//! mebibyte the shell makes arrives whole; a resize frame reaches `stty size` and the
//! foreground job's `SIGWINCH` trap; Ctrl-C through the line discipline interrupts a
//! `sleep 100` (status 130, the sleep gone) and the shell goes on; `exit 7` gives status
//! 7 in the final frame, after all the output, with no error frame and no error counted
//! for the master's `EIO`, and a shell killed by a signal says so; a client that goes
//! away gets its shell and the shell's foreground job hung up and reaped; a bad frame ends
//! the session with a reason (`port_user13_pty_shell.rs`); a session past the maximum is
//! refused with a reason and a place freed is taken again; an idle session is ended with
//! a reason and its shell reaped; two sessions at once keep their output apart; the
//! shutdown ends every session with a reason, reaps every shell and its foreground job,
//! and refuses new connections; a server started with `SIGHUP`, `SIGINT` and `SIGQUIT`
//! ignored (as `nohup server &` from a script leaves it) still has Ctrl-C and the hang-up
//! work in its sessions; and a whole run leaves no fd, no child and no task (`more.rs`).
//!
//! What porting it found missing in overlap: `Command::pre_exec`. tokio's `Command` has
//! it (an `unsafe fn`, as std's `CommandExt::pre_exec`), and a program that starts a
//! shell on a terminal needs it for `setsid` and `TIOCSCTTY`; overlap's `Command` sent
//! the user to `as_std_mut()` and std's trait instead. It is there now, with tokio's
//! signature and contract (see `tests/process_pre_exec.rs`). Nothing else: `AsyncFd`
//! with `readable`/`writable` and the guard's `try_io` over a `File`, `Command` with
//! `Stdio::from(OwnedFd)` and `kill_on_drop`, `Child::wait`, `TcpListener`,
//! `TcpStream::into_split`, `FramedRead`/`FramedWrite` with a `Decoder`/`Encoder` of
//! one's own, `Semaphore::try_acquire_owned`, `CancellationToken`, `TaskTracker`,
//! `select!`, `join!`, `sleep_until` and `timeout` all have their tokio names and behaved
//! as tokio's would. The master's hang-up (the slave's last fd closed) wakes a
//! `readable()` and the read says `EIO`, as with tokio.
//!
//! What the port changed, against tokio: the imports, as in the other ports; a guard's
//! `try_io` closure gets the inner value (`|mut file| file.read(buf)`) where tokio's gets
//! the `AsyncFd` (`|inner| inner.get_ref().read(buf)`), as overlap's `io::unix` docs say;
//! the session's two copies are `let mut down = pin!(..)`, since overlap's `select!`
//! polls a bound future through `&mut` where tokio's moves the `Pin<&mut _>` in (refused
//! with E0596 otherwise, as the `select!` docs say); shared state is `Rc` and `Cell`
//! (overlap's tasks need not be `Send`), the semaphore an `Rc<Semaphore>`; a framed
//! writer ends with `close()` (tokio: `shutdown()`).
//!
//! What the user got right, in both runtimes: the builder does not outlive the spawn,
//! since `Command` keeps the `Stdio` it was given, and with it three slave fds that would
//! keep the master from ever reporting `EIO` (tried: with the builder leaked, the `exit 7`
//! session never ended); the two directions are copied at once (tried
//! the other way, one `select!` loop writing each client frame to the terminal whole
//! before reading the terminal again, the mebibyte through `head` never came back: `head`
//! blocked on a full terminal, so the terminal's input filled, and the loop's write
//! waited for ever); the hang-up sends `SIGHUP` to the shell's group and closes the
//! master before any `SIGKILL` (the disconnect and shutdown tests set a grace longer
//! than their hang guards, so that the hang-up alone must end the shell and its
//! foreground job, and they failed with it taken out); and the final frames are sent
//! under a timeout, so a client that stopped reading cannot hold the shutdown.
//!
//! What the port got wrong at first was the user's, and would be in tokio: the shell
//! inherited the server's signal dispositions, and an ignored one survives `exec` (std's
//! spawn resets the signal mask and `SIGPIPE`, not the rest). Run in the background from
//! a script, which ignores `SIGINT` and `SIGQUIT` for it, the server gave shells whose
//! jobs ignored Ctrl-C: six copies of the test binary started with `&` failed the Ctrl-C
//! test every time, `sleep`'s `/proc` stat showing `SIGINT` and `SIGQUIT` ignored; under
//! `nohup` the hang-up would have done nothing either. The `pre_exec` hook now sets every
//! standard signal back to its default, as sshd does for a session, and a test runs the
//! server with the three ignored. And the test's own: a foreground job's pid was taken
//! from `sh -c 'echo $$; exec sleep 100'` and looked for at once as a `sleep`, which it
//! may not be yet (the `echo` comes before the `exec`); the tests wait for the `exec`.

mod support;

#[path = "port_user13_pty_shell/client.rs"]
mod client;
#[path = "port_user13_pty_shell/more.rs"]
mod more;
#[path = "port_user13_pty_shell/proto.rs"]
mod proto;
#[path = "port_user13_pty_shell/pty.rs"]
mod pty;
#[path = "port_user13_pty_shell/server.rs"]
mod server;

use std::time::Duration;

use client::Client;
use overlap::codec::{BytesMut, Decoder, Encoder};
use proto::{Exit, Frame, FrameCodec};
use server::{Config, Server};
use support::{gone, pattern_seeded, until, within};

/// A hang guard only.
const HANG: Duration = Duration::from_secs(120);

/// The pid of a process whose parent is `parent` and whose name is `name`, if one runs.
fn child_named(parent: u32, name: &str) -> Option<u32> {
    for entry in std::fs::read_dir("/proc").ok()? {
        let entry = entry.ok()?;
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let ppid = stat[close + 1..].split_whitespace().nth(1);
        if comm == name && ppid == Some(&parent.to_string()) {
            return Some(pid);
        }
    }
    None
}

/// Field `n` (1-based, as in proc(5)) of `/proc/<pid>/stat`.
fn stat_field(pid: u32, n: usize) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let close = stat.rfind(')').unwrap();
    stat[close + 2..].split(' ').nth(n - 3).unwrap().to_owned()
}

#[test]
fn frames_round_trip_split_at_every_byte() {
    let frames = vec![
        Frame::Data(b"echo hi\n".to_vec()),
        Frame::Resize {
            rows: 50,
            cols: 132,
        },
        Frame::Interrupt,
        Frame::Data(Vec::new()),
        Frame::Error("server busy".into()),
        Frame::Exit(Exit::Code(7)),
        Frame::Exit(Exit::Signal(9)),
        Frame::Data((0..=255).collect()),
    ];
    let mut wire = BytesMut::new();
    for f in &frames {
        FrameCodec.encode(f.clone(), &mut wire).unwrap();
    }
    let wire = wire.freeze();
    for cut in 0..=wire.len() {
        let mut got = Vec::new();
        let mut buf = BytesMut::new();
        for part in [&wire[..cut], &wire[cut..]] {
            buf.extend_from_slice(part);
            while let Some(f) = FrameCodec.decode(&mut buf).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, frames, "cut at {cut}");
        assert!(buf.is_empty());
    }
    // Bad input is an error, never a panic.
    for bad in [
        &[b'Q', 0, 0, 0, 0][..],
        &[b'R', 0, 0, 0, 3, 1, 2, 3],
        &[b'I', 0, 0, 0, 1, 0],
        &[b'X', 0, 0, 0, 5, 2, 0, 0, 0, 0],
        &[b'D', 0, 1, 0, 1],
    ] {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(bad);
        let err = FrameCodec.decode(&mut buf).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{bad:?}");
    }
}

#[overlap::test]
async fn a_command_s_output_comes_back_from_a_session_leader_with_a_tty() {
    within(
        HANG,
        async {
            let server = Server::start(Config::default()).await.unwrap();
            let mut c = Client::connect(server.addr).await;
            c.line("echo __M__$((40+2))").await;
            c.expect("__M__42").await;
            let pid = c.shell_pid().await;
            assert_eq!(server.stats.pids.borrow().as_slice(), [pid]);
            // setsid: the shell leads its session; TIOCSCTTY: the terminal is its tty.
            assert_eq!(stat_field(pid, 6), pid.to_string(), "the session's id");
            assert_ne!(stat_field(pid, 7), "0", "a controlling terminal");
            c.line("[ -t 0 ] && [ -t 1 ] && echo __TTY__$((2+3)); tty")
                .await;
            let text = c.expect("__TTY__5").await;
            assert!(!text.contains("not a tty"), "{text}");
            c.expect("/dev/pts/").await;
            assert!(server.shutdown().await);
        },
        "a command",
    )
    .await;
}

#[overlap::test]
async fn a_mebibyte_through_raw_head_comes_back_whole_while_being_sent() {
    within(
        HANG,
        async {
            let server = Server::start(Config::default()).await.unwrap();
            let mut c = Client::connect(server.addr).await;
            let data = pattern_seeded(1 << 20, 13);
            c.line(
                "stty raw -echo -iexten; echo __RAW__$((1+1)); head -c 1048576; stty sane; \
                 echo __END__$((2+3))",
            )
            .await;
            c.expect("__RAW__2").await;
            // All 256 byte values, none special to a raw terminal; head writes each back
            // as it reads, so the reply flows while the request still goes.
            let back = c.send_while_expecting(&data, "__END__5").await;
            let back = &back[..back.len() - "__END__5".len()];
            assert_eq!(
                back.len(),
                data.len() + 1,
                "the echo's newline, then the data"
            );
            assert_eq!(back[0], b'\n');
            assert!(back[1..] == data[..], "the mebibyte differs");
            // The terminal is sane again: the shell still answers.
            c.line("echo __M__$((6*7))").await;
            c.expect("__M__42").await;
            assert!(server.shutdown().await);
            assert_eq!(server.stats.errors.get(), 0);
        },
        "the mebibyte through head",
    )
    .await;
}

#[overlap::test]
async fn a_mebibyte_from_the_shell_arrives_whole() {
    within(
        HANG,
        async {
            let server = Server::start(Config::default()).await.unwrap();
            let mut c = Client::connect(server.addr).await;
            c.line(
                "echo __BEGIN__$((1+1)); head -c 1048576 /dev/zero | tr '\\0' Z; \
                 echo __END__$((2+2))",
            )
            .await;
            c.expect("__BEGIN__2").await;
            let text = c.expect("__END__4").await;
            let body = text.trim_end_matches("__END__4");
            let zs = body.bytes().filter(|&b| b == b'Z').count();
            assert_eq!(zs, 1 << 20);
            assert!(
                body.bytes().all(|b| matches!(b, b'Z' | b'\r' | b'\n')),
                "only the Zs and line ends"
            );
            assert!(server.shutdown().await);
        },
        "the mebibyte from the shell",
    )
    .await;
}

#[overlap::test]
async fn a_resize_reaches_stty_size_and_the_foreground_job_s_sigwinch() {
    within(
        HANG,
        async {
            let server = Server::start(Config::default()).await.unwrap();
            let mut c = Client::connect(server.addr).await;
            c.line("echo __SZ__$(stty size).").await;
            c.expect("__SZ__24 80.").await;
            // A foreground job trapping SIGWINCH, told of the resize by the kernel.
            c.line(
                "sh -c 'trap \"echo __WINCH__\\$(stty size).; exit\" WINCH; \
                 echo __READY__$((1+1)); while :; do sleep 0.05; done'",
            )
            .await;
            c.expect("__READY__2").await;
            c.send(Frame::Resize {
                rows: 50,
                cols: 132,
            })
            .await;
            c.expect("__WINCH__50 132.").await;
            c.line("echo __SZ__$(stty size).").await;
            c.expect("__SZ__50 132.").await;
            assert!(server.shutdown().await);
        },
        "the resize",
    )
    .await;
}

#[overlap::test]
async fn ctrl_c_interrupts_a_sleep_and_the_shell_goes_on() {
    within(
        HANG,
        async {
            let server = Server::start(Config::default()).await.unwrap();
            let mut c = Client::connect(server.addr).await;
            let pid = c.shell_pid().await;
            c.line("sleep 100").await;
            let mut sleep = None;
            until(
                || {
                    sleep = child_named(pid, "sleep");
                    sleep.is_some()
                },
                "the sleep",
            )
            .await;
            c.send(Frame::Interrupt).await;
            gone(sleep.unwrap(), "the interrupted sleep").await;
            c.line("echo __ST__$?.").await;
            assert_eq!(c.expect_number("__ST__").await, 130, "killed by SIGINT");
            c.line("echo __M__$((6*7))").await;
            c.expect("__M__42").await;
            assert!(server.shutdown().await);
        },
        "the interrupt",
    )
    .await;
}

#[overlap::test]
async fn exit_7_is_the_final_frame_after_all_output_and_eio_is_no_error() {
    within(
        HANG,
        async {
            let server = Server::start(Config::default()).await.unwrap();
            let mut c = Client::connect(server.addr).await;
            let pid = c.shell_pid().await;
            c.line("echo __BYE__$((3+4)); exit 7").await;
            assert_eq!(c.exit().await, Exit::Code(7));
            assert_eq!(c.rx.frames, [Frame::Exit(Exit::Code(7))], "no error frame");
            assert!(c.rx.ended);
            gone(pid, "the shell").await;
            until(|| server.stats.open.get() == 0, "the session closed").await;
            assert_eq!(server.stats.exited.get(), 1);
            assert_eq!(server.stats.errors.get(), 0, "EIO is the normal end");

            // A shell's last words before it exits are not lost to the EIO, and a shell
            // killed by a signal says so.
            let mut c = Client::connect(server.addr).await;
            c.line("printf '__LAST__%s.' $((8*8)); exit 3").await;
            assert_eq!(c.exit().await, Exit::Code(3));
            assert!(String::from_utf8_lossy(&c.rx.seen).contains("__LAST__64."));
            let mut c = Client::connect(server.addr).await;
            c.line("kill -KILL $$").await;
            assert_eq!(c.exit().await, Exit::Signal(libc::SIGKILL));
            assert!(server.shutdown().await);
            assert_eq!(server.stats.errors.get(), 0);
        },
        "exit 7",
    )
    .await;
}

#[overlap::test]
async fn a_client_gone_has_its_shell_and_foreground_job_hung_up_and_reaped() {
    within(
        HANG,
        async {
            // No SIGKILL after a grace: the hang-up alone must end them.
            let server = Server::start(Config {
                grace: 2 * HANG,
                ..Config::default()
            })
            .await
            .unwrap();
            let mut c = Client::connect(server.addr).await;
            let pid = c.shell_pid().await;
            c.line("sh -c 'echo __FG__$$.; exec sleep 100'").await;
            let fg = c.expect_number("__FG__").await as u32;
            until(|| child_named(pid, "sleep") == Some(fg), "the exec").await;
            drop(c);
            gone(pid, "the shell").await;
            gone(fg, "the foreground sleep").await;
            until(|| server.stats.open.get() == 0, "the session closed").await;
            assert_eq!(server.stats.client_gone.get(), 1);
            assert!(!support::children()
                .split_whitespace()
                .any(|p| p == pid.to_string()));
            assert!(server.shutdown().await);
        },
        "the client gone",
    )
    .await;
}

#[overlap::test]
async fn a_bad_frame_ends_the_session_with_a_reason() {
    within(
        HANG,
        async {
            let server = Server::start(Config::default()).await.unwrap();
            let mut c = Client::connect(server.addr).await;
            let pid = c.shell_pid().await;
            // An exit frame is the server's to send.
            c.send(Frame::Exit(Exit::Code(0))).await;
            let frames = c.finish().await;
            assert!(
                matches!(&frames[..], [Frame::Error(why), Frame::Exit(_)] if why.starts_with("bad frame")),
                "{frames:?}"
            );
            gone(pid, "the shell").await;
            until(|| server.stats.open.get() == 0, "the session closed").await;
            assert_eq!(server.stats.bad_input.get(), 1);
            assert!(server.shutdown().await);
        },
        "the bad frame",
    )
    .await;
}
