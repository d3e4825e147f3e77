//! The tests of the session limit, the idle timeout, sessions side by side, the shutdown,
//! and what a whole run leaves behind.

use std::time::Duration;

use super::client::{find, Client};
use super::proto::{Exit, Frame};
use super::server::{Config, Server};
use super::support::{children, gone, open_fds, run_in_child, until, within};
use super::{child_named, HANG};

#[overlap::test]
async fn a_session_past_the_maximum_is_refused_with_a_reason() {
    within(
        HANG,
        async {
            let server = Server::start(Config {
                max_sessions: 2,
                ..Config::default()
            })
            .await
            .unwrap();
            let mut a = Client::connect(server.addr).await;
            let mut b = Client::connect(server.addr).await;
            a.shell_pid().await;
            b.shell_pid().await;
            let mut c = Client::connect(server.addr).await;
            assert_eq!(
                c.finish().await,
                [Frame::Error("server busy: 2 sessions at most".into())]
            );
            assert!(c.rx.seen.is_empty(), "no shell for the refused");
            assert_eq!(server.stats.rejected.get(), 1);
            assert_eq!(server.stats.started.get(), 2);
            // The others go on; one leaving frees a place.
            b.line("echo __M__$((1+1))").await;
            b.expect("__M__2").await;
            a.line("exit 0").await;
            assert_eq!(a.exit().await, Exit::Code(0));
            until(|| server.stats.open.get() == 1, "a place free").await;
            let mut d = Client::connect(server.addr).await;
            d.line("echo __M__$((2+2))").await;
            d.expect("__M__4").await;
            assert_eq!(server.stats.started.get(), 3);
            assert!(server.shutdown().await);
        },
        "the maximum",
    )
    .await;
}

#[overlap::test]
async fn an_idle_session_is_ended_with_a_reason_and_its_shell_reaped() {
    within(
        HANG,
        async {
            let server = Server::start(Config {
                idle: Duration::from_millis(500),
                ..Config::default()
            })
            .await
            .unwrap();
            let mut c = Client::connect(server.addr).await;
            until(|| !server.stats.pids.borrow().is_empty(), "the shell").await;
            let pid = server.stats.pids.borrow()[0];
            let frames = c.finish().await;
            assert!(
                matches!(&frames[..], [Frame::Error(why), Frame::Exit(_)] if why.starts_with("idle timeout")),
                "{frames:?}"
            );
            gone(pid, "the idle shell").await;
            assert_eq!(server.stats.idle.get(), 1);
            assert!(server.shutdown().await);
        },
        "the idle session",
    )
    .await;
}

/// Whether `text` has `tag` followed by a digit (the output of `echo {tag}$i`, where the
/// terminal's echo of the command has `$` after the tag).
fn has_output_of(text: &[u8], tag: &str) -> bool {
    let mut from = 0;
    while let Some(at) = find(&text[from..], tag.as_bytes()) {
        let next = from + at + tag.len();
        if text.get(next).is_some_and(u8::is_ascii_digit) {
            return true;
        }
        from = next;
    }
    false
}

#[overlap::test]
async fn two_sessions_at_once_keep_their_output_apart() {
    within(
        HANG,
        async {
            let server = Server::start(Config::default()).await.unwrap();
            let mut a = Client::connect(server.addr).await;
            let mut b = Client::connect(server.addr).await;
            let loop_of = |tag: &str| {
                format!(
                    "i=0; while [ $i -lt 300 ]; do echo {tag}$i.; i=$((i+1)); done; \
                     echo __DONE__$((1+1))"
                )
            };
            a.line(&loop_of("__AAA__")).await;
            b.line(&loop_of("__BBB__")).await;
            let (ta, tb) = overlap::join!(a.expect("__DONE__2"), b.expect("__DONE__2"));
            for (text, mine, theirs) in [(&ta, "__AAA__", "__BBB__"), (&tb, "__BBB__", "__AAA__")] {
                let mut rest = text.as_str();
                for i in 0..300 {
                    let line = format!("{mine}{i}.");
                    let at = rest.find(&line).unwrap_or_else(|| panic!("no {line}"));
                    rest = &rest[at + line.len()..];
                }
                assert!(
                    !has_output_of(text.as_bytes(), theirs),
                    "the other's output"
                );
            }
            assert!(!has_output_of(&a.rx.seen, "__BBB__"));
            assert!(!has_output_of(&b.rx.seen, "__AAA__"));
            assert!(server.shutdown().await);
        },
        "two sessions",
    )
    .await;
}

#[overlap::test]
async fn shutdown_ends_every_session_and_reaps_every_shell() {
    within(
        HANG,
        async {
            // No SIGKILL after a grace: the hang-up alone must end them.
            let server = Server::start(Config {
                grace: 2 * HANG,
                drain: 2 * HANG,
                ..Config::default()
            })
            .await
            .unwrap();
            let mut busy = Client::connect(server.addr).await;
            let mut idle = Client::connect(server.addr).await;
            let busy_pid = busy.shell_pid().await;
            let idle_pid = idle.shell_pid().await;
            busy.line("sh -c 'echo __FG__$$.; exec sleep 100'").await;
            let fg = busy.expect_number("__FG__").await as u32;
            until(|| child_named(busy_pid, "sleep") == Some(fg), "the exec").await;
            assert!(server.shutdown().await, "every session ended in time");
            for c in [&mut busy, &mut idle] {
                let frames = c.finish().await;
                assert!(
                    matches!(
                        &frames[..],
                        [Frame::Error(why), Frame::Exit(Exit::Signal(libc::SIGHUP))]
                            if why == "server shutting down"
                    ),
                    "{frames:?}"
                );
            }
            for pid in [busy_pid, idle_pid, fg] {
                gone(pid, "a process of a session").await;
            }
            assert_eq!(server.stats.shut_down.get(), 2);
            assert_eq!(server.stats.open.get(), 0);
            let refused = overlap::net::TcpStream::connect(server.addr).await;
            assert!(refused.is_err(), "the listener closed");
        },
        "the shutdown",
    )
    .await;
}

#[test]
fn a_whole_run_leaves_no_fd_no_child_and_no_task() {
    const NAME: &str = "more::a_whole_run_leaves_no_fd_no_child_and_no_task";
    run_in_child(NAME, || {
        overlap::block_on(within(
            HANG,
            async {
                let fds = open_fds();
                let tasks = overlap::metrics().tasks_alive;
                let server = Server::start(Config {
                    max_sessions: 2,
                    ..Config::default()
                })
                .await
                .unwrap();
                let mut done = Client::connect(server.addr).await;
                done.line("echo __M__$((1+1)); exit 5").await;
                assert_eq!(done.exit().await, Exit::Code(5));
                let mut left = Client::connect(server.addr).await;
                left.shell_pid().await;
                drop(left);
                until(|| server.stats.client_gone.get() == 1, "the client gone").await;
                until(|| server.stats.open.get() == 0, "both places free").await;
                let mut open = Client::connect(server.addr).await;
                let pid = open.shell_pid().await;
                open.line("sleep 100").await;
                until(|| child_named(pid, "sleep").is_some(), "the sleep").await;
                let mut busy = Client::connect(server.addr).await;
                busy.shell_pid().await;
                let mut refused = Client::connect(server.addr).await;
                assert_eq!(refused.finish().await.len(), 1, "refused");
                assert!(server.shutdown().await);
                open.finish().await;
                busy.finish().await;
                let (stats, addr) = (server.stats.clone(), server.addr);
                drop((server, done, open, busy, refused));
                assert_eq!(stats.errors.get(), 0);
                assert!(overlap::net::TcpStream::connect(addr).await.is_err());
                until(|| overlap::metrics().tasks_alive == tasks, "the tasks gone").await;
                until(|| open_fds() == fds, "the fds back").await;
                until(|| children().is_empty(), "no child left").await;
            },
            "the whole run",
        ));
    });
}

#[test]
fn a_server_started_with_signals_ignored_gives_its_shells_the_defaults() {
    const NAME: &str = "more::a_server_started_with_signals_ignored_gives_its_shells_the_defaults";
    run_in_child(NAME, || {
        // As `nohup server &` from a script leaves a server: SIGHUP, SIGINT and SIGQUIT
        // ignored, which exec keeps.
        for sig in [libc::SIGHUP, libc::SIGINT, libc::SIGQUIT] {
            // SAFETY: signal takes no pointers; SIG_IGN is a valid disposition.
            assert_ne!(unsafe { libc::signal(sig, libc::SIG_IGN) }, libc::SIG_ERR);
        }
        overlap::block_on(within(
            HANG,
            async {
                let server = Server::start(Config {
                    grace: 2 * HANG,
                    ..Config::default()
                })
                .await
                .unwrap();
                let mut c = Client::connect(server.addr).await;
                let pid = c.shell_pid().await;
                c.line("sleep 100").await;
                until(|| child_named(pid, "sleep").is_some(), "the sleep").await;
                let sleep = child_named(pid, "sleep").unwrap();
                c.send(Frame::Interrupt).await;
                gone(sleep, "the interrupted sleep").await;
                c.line("echo __ST__$?.").await;
                assert_eq!(c.expect_number("__ST__").await, 130, "killed by SIGINT");
                // The hang-up alone (no SIGKILL within the hang guard) ends the shell.
                drop(c);
                gone(pid, "the hung-up shell").await;
                assert!(server.shutdown().await);
            },
            "signals ignored",
        ));
    });
}
