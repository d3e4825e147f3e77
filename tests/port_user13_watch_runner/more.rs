//! The runner's time limit, its output and exit statuses, a program that cannot start,
//! inotify's overflow (parsed, and for real), the control socket, and what a shutdown
//! leaves.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use overlap::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use overlap::net::UnixStream;

use super::inotify::{encode, parse, ParseError, RawEvent, HEADER};
use super::run::Outcome;
use super::runner::{Control, Event, State};
use super::support::{gone, open_fds, run_in_child, until, within, TempDir};
use super::{dead, sleeper, started, Rig, HANG};

#[overlap::test]
async fn a_run_over_its_time_limit_is_killed_and_the_runner_goes_on() {
    within(
        HANG,
        async {
            let script = "echo begin; sleep 30 & echo sleeper $!; wait; echo never";
            let mut rig = Rig::start(
                script,
                |_| {},
                |c| c.timeout = Some(Duration::from_millis(300)),
            )
            .await;
            rig.write("a", "1");
            let r = rig.run(1).await;
            assert_eq!(r.outcome, Outcome::TimedOut);
            assert_eq!(r.out[0], "[build 1] begin");
            assert_eq!(r.out.len(), 2, "{:?}", r.out);
            gone(r.pid, "the timed-out child reaped").await;
            until(|| dead(sleeper(&r.out[1])), "its sleep killed").await;
            rig.idle_after(1).await;
            assert_eq!(rig.status().last, Some(Outcome::TimedOut));
            // The runner goes on: a rerun asked for runs (and times out) again.
            rig.handles.control.send(Control::Rerun).unwrap();
            let r = rig.run(2).await;
            assert_eq!(r.changes, ["<rerun>"]);
            assert_eq!(r.outcome, Outcome::TimedOut);
            rig.idle_after(2).await;
            rig.quit().await;
        },
        "the time limit",
    )
    .await;
}

#[overlap::test]
async fn stdout_and_stderr_are_forwarded_each_in_order() {
    within(
        HANG,
        async {
            // Interleaved writes to both pipes, a last line without its newline, and a
            // byte that is not UTF-8.
            let script = r#"i=1; while [ $i -le 300 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done
printf 'bad \377 byte\n' >&2; printf 'no newline'"#;
            let mut rig = Rig::start(script, |_| {}, |c| c.prefix = "check".into()).await;
            rig.write("a", "1");
            let r = rig.run(1).await;
            assert_eq!(r.outcome, Outcome::Exited(0));
            let mut out: Vec<String> = (1..=300).map(|i| format!("[check 1] out {i}")).collect();
            out.push("[check 1] no newline".into());
            let mut err: Vec<String> = (1..=300).map(|i| format!("[check 1] err {i}")).collect();
            err.push("[check 1] bad \u{fffd} byte".into());
            assert_eq!(r.out, out);
            assert_eq!(r.err, err);
            rig.quit().await;
        },
        "the output",
    )
    .await;
}

#[overlap::test]
async fn failing_commands_report_their_exit_status() {
    within(
        HANG,
        async {
            let script = r#"c=$(cat code); echo "exiting with $c"; [ "$c" = term ] && kill -TERM $$; exit $c"#;
            let mut rig = Rig::start(script, |_| {}, |_| {}).await;
            for (n, (code, outcome)) in [
                ("3", Outcome::Exited(3)),
                ("0", Outcome::Exited(0)),
                ("term", Outcome::Signaled(libc::SIGTERM)),
                ("255", Outcome::Exited(255)),
            ]
            .into_iter()
            .enumerate()
            {
                rig.write("code", code);
                let r = rig.run(n as u64 + 1).await;
                assert_eq!(r.outcome, outcome, "{code}");
                assert_eq!(r.out, [format!("[build {}] exiting with {code}", n + 1)]);
                rig.idle_after(n as u64 + 1).await;
                assert_eq!(rig.status().last, Some(outcome));
            }
            rig.quit().await;
        },
        "the exit statuses",
    )
    .await;
}

#[overlap::test]
async fn a_program_that_cannot_start_is_reported_and_the_runner_goes_on() {
    within(
        HANG,
        async {
            let bin = TempDir::new("watch-runner-bin");
            let tool = bin.join("tool");
            let mut rig = Rig::start(
                "",
                |_| {},
                |c| c.command = vec![tool.to_string_lossy().into_owned()],
            )
            .await;
            rig.write("a", "1");
            let r = rig.run(1).await;
            assert_eq!(r.pid, 0);
            let Outcome::SpawnFailed(why) = &r.outcome else {
                panic!("{:?}", r.outcome)
            };
            let want = format!("cannot run `{}`: No such file or directory", tool.display());
            assert!(why.starts_with(&want), "{why}");
            rig.idle_after(1).await;
            // Not executable: another clear error.
            std::fs::write(&tool, "#!/bin/sh\necho tool ran in $(basename $PWD)\n").unwrap();
            rig.write("a", "2");
            let r = rig.run(2).await;
            let Outcome::SpawnFailed(why) = &r.outcome else {
                panic!("{:?}", r.outcome)
            };
            assert!(why.contains("Permission denied"), "{why}");
            rig.idle_after(2).await;
            // There now: the next change runs it.
            std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
            rig.write("a", "3");
            let r = rig.run(3).await;
            assert_eq!(r.outcome, Outcome::Exited(0));
            assert_eq!(r.out.len(), 1);
            assert!(r.out[0].starts_with("[build 3] tool ran in overlap-test-watch-runner-"));
            rig.idle_after(3).await;
            rig.quit().await;
        },
        "the missing program",
    )
    .await;
}

#[test]
fn the_parser_reads_records_as_the_kernel_lays_them_out() {
    let mut buf = encode(1, libc::IN_CREATE, 0, "main.rs");
    assert_eq!(buf.len(), HEADER + 16, "a name padded to 16 bytes");
    buf.extend(encode(1, libc::IN_MOVED_FROM, 77, &"n".repeat(16)));
    buf.extend(encode(-1, libc::IN_Q_OVERFLOW, 0, ""));
    buf.extend(encode(2, libc::IN_DELETE_SELF, 0, ""));
    buf.extend(encode(2, libc::IN_IGNORED, 0, ""));
    let events = parse(&buf).unwrap();
    let ev = |wd, mask, cookie, name: Option<&str>| RawEvent {
        wd,
        mask,
        cookie,
        name: name.map(Into::into),
    };
    assert_eq!(
        events,
        [
            ev(1, libc::IN_CREATE, 0, Some("main.rs")),
            ev(1, libc::IN_MOVED_FROM, 77, Some(&"n".repeat(16))),
            ev(-1, libc::IN_Q_OVERFLOW, 0, None),
            ev(2, libc::IN_DELETE_SELF, 0, None),
            ev(2, libc::IN_IGNORED, 0, None),
        ]
    );
    assert!(events[2].is(libc::IN_Q_OVERFLOW));
    assert_eq!(parse(&[]).unwrap(), []);
    // Cut anywhere inside a record: an error naming where that record starts, no panic.
    let first = HEADER + 16;
    let whole = [first, first + HEADER + 32, first + 2 * HEADER + 32];
    let whole = [whole[0], whole[1], whole[2], whole[2] + HEADER];
    for cut in 1..buf.len() {
        let res = parse(&buf[..cut]);
        if whole.contains(&cut) {
            assert!(res.is_ok(), "{cut}");
        } else if cut < first {
            let want = if cut < HEADER {
                ParseError::ShortHeader(0)
            } else {
                ParseError::ShortName(0)
            };
            assert_eq!(res.unwrap_err(), want, "{cut}");
        } else {
            assert!(res.is_err(), "{cut}");
        }
    }
    // A length that points past the end.
    let mut lying = encode(3, libc::IN_MODIFY, 0, "x");
    lying[12..16].copy_from_slice(&1000u32.to_ne_bytes());
    assert_eq!(parse(&lying).unwrap_err(), ParseError::ShortName(0));
}

#[overlap::test]
async fn a_real_queue_overflow_gives_one_run_and_a_rescan() {
    within(
        HANG,
        async {
            let max: usize = std::fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            let mut rig = Rig::start("echo ran", |_| {}, |_| {}).await;
            // Three records a file, more than the queue holds, with no await in between:
            // the runner cannot read until all are written.
            let files = max / 3 + 100;
            for i in 0..files {
                rig.write(&format!("f{i}"), "x");
            }
            // Made after the overflow: only the rescan can find it.
            std::fs::create_dir(rig.root.join("lost")).unwrap();
            let r = rig.run(1).await;
            assert!(r.changes.contains(&"<overflow>".to_string()));
            assert_eq!(r.out, ["[build 1] ran"]);
            rig.idle_after(1).await;
            let s = rig.status();
            assert_eq!(s.overflows, 1, "{s:?}");
            assert_eq!(
                s.records as usize,
                max + 1,
                "the queue's worth, then the overflow"
            );
            assert_eq!(s.watches, 2, "lost/ watched by the rescan");
            rig.write("lost/found", "x");
            assert_eq!(rig.run(2).await.changes, ["lost/found"]);
            rig.idle_after(2).await;
            rig.quit().await;
        },
        "the overflow",
    )
    .await;
}

/// A control socket client: one line out, one line back.
async fn ask(stream: &mut BufReader<UnixStream>, line: &str) -> String {
    stream
        .get_mut()
        .write_all(format!("{line}\n").as_bytes())
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_line(&mut answer).await.unwrap();
    answer.trim_end().to_owned()
}

#[test]
fn a_shutdown_through_the_socket_leaves_no_child_no_fd_and_no_task() {
    const NAME: &str = "more::a_shutdown_through_the_socket_leaves_no_child_no_fd_and_no_task";
    run_in_child(NAME, || {
        overlap::block_on(within(
            HANG,
            async {
                let ctl = TempDir::new("watch-runner-ctl");
                let sock = ctl.join("ctl.sock");
                let fds = open_fds();
                let tasks = overlap::metrics().tasks_alive;
                let script = "echo up; sleep 30 & echo sleeper $!; wait";
                let path = sock.clone();
                let mut rig = Rig::start(script, |_| {}, |c| c.socket = Some(path)).await;
                let mut client = BufReader::new(UnixStream::connect(&sock).await.unwrap());
                assert_eq!(
                    ask(&mut client, "status").await,
                    "Idle started=0 finished=0"
                );
                assert_eq!(ask(&mut client, "rerun").await, "ok");
                let line = rig.line(1, |l| l.contains("sleeper")).await;
                let pid = match rig.status().state {
                    State::Running { run: 1, pid } => pid,
                    other => panic!("{other:?}"),
                };
                let answer = ask(&mut client, "status").await;
                assert_eq!(
                    answer,
                    format!("Running {{ run: 1, pid: {pid} }} started=1 finished=0")
                );
                assert_eq!(
                    ask(&mut client, "make coffee").await,
                    "error: unknown command \"make coffee\""
                );
                assert_eq!(ask(&mut client, "quit").await, "bye");
                // The runner ends: the child killed and reaped, and its sleep.
                (&mut rig.task).await.unwrap().unwrap();
                let ended = Event::Finished {
                    run: 1,
                    outcome: Outcome::Superseded,
                };
                while rig.next().await != ended {}
                assert!(super::support::children().is_empty(), "no zombie");
                gone(pid, "the child").await;
                until(|| dead(sleeper(&line)), "its sleep").await;
                // The socket's session ends with it, and its file is gone.
                let mut rest = String::new();
                assert_eq!(client.read_line(&mut rest).await.unwrap(), 0);
                assert!(!sock.exists());
                assert_eq!(started(&rig.seen), 1);
                drop((client, rig));
                until(|| overlap::metrics().tasks_alive == tasks, "the tasks gone").await;
                until(|| open_fds() == fds, "the fds back").await;
            },
            "the shutdown",
        ));
    });
}
