//! The tests of faults and limits: the deadline before and after the head (the script's
//! whole process group killed), what a script left in the background after its exit, a
//! client vanishing mid-response, while the script is
//! silent and mid-upload, a script that never reads its stdin under a 4 MiB upload, the
//! cap on running scripts with the queue served in order, and nothing left behind.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::TcpStream;

use super::client::{ended, exchange, get, parse, pid_in, post};
use super::http::simple;
use super::run::Outcome;
use super::support::{children, gone, open_fds, pattern, run_in_child, settle, until, within};
use super::{all_reaped, rig, ECHO_SH, ENV_SH, HANG};

/// The deadline of the tests that hit it: real time, since the scripts do not follow a
/// paused clock; long enough for `sh` to write its pid files first on a loaded machine.
const SHORT: Duration = Duration::from_millis(1500);

/// A script that writes its pid, starts a `sleep` in the background (in its group),
/// writes that pid, and waits for it: `head` is printed first if given.
fn sleeper(head: &str) -> String {
    format!("echo $$ > script.pid\n{head}sleep 30 &\necho $! > sleep.pid\nwait")
}

/// The pid in `name` in the script directory, which must be there already.
fn pid_file(dir: &super::TempDir, name: &str) -> u32 {
    let path = dir.join("cgi-bin").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{name}: {e} (the script was killed before writing it?)"));
    text.trim().parse().unwrap()
}

#[overlap::test]
async fn the_deadline_before_the_head_is_a_504_and_the_whole_group_dies() {
    within(
        HANG,
        async {
            let slow = sleeper("");
            let (dir, server) = rig("cgi-504", &[("slow.sh", &slow)], |c| c.deadline = SHORT).await;
            let resp = get(server.addr, "/cgi-bin/slow.sh").await;
            assert_eq!(resp.raw, simple(504, "Gateway Timeout"));
            let (script, sleep) = (pid_file(&dir, "script.pid"), pid_file(&dir, "sleep.pid"));
            let r = &server.records()[0];
            assert_eq!(
                (r.pid, r.outcome.clone(), r.head_sent),
                (script, Outcome::TimedOut, false)
            );
            assert_eq!(r.status.signal(), Some(libc::SIGKILL));
            gone(script, "the script reaped").await;
            until(|| ended(sleep), "its backgrounded sleep killed").await;
            let line = format!("slow.sh[{script}]: killed by signal 9");
            assert!(
                server.log.lines().contains(&line),
                "{:#?}",
                server.log.lines()
            );
            server.shutdown().await;
        },
        "504",
    )
    .await
}

#[overlap::test]
async fn the_deadline_after_the_head_cuts_the_body_and_the_group_dies() {
    within(
        HANG,
        async {
            let partial = sleeper("printf 'Content-Type: text/plain\\r\\n\\r\\npartial\\n'\n");
            let (dir, server) = rig("cgi-cut", &[("partial.sh", &partial)], |c| {
                c.deadline = SHORT
            })
            .await;
            let resp = get(server.addr, "/cgi-bin/partial.sh").await;
            assert_eq!(resp.status, 200);
            assert_eq!(
                (resp.body.as_slice(), resp.complete),
                (&b"partial\n"[..], false)
            );
            let (script, sleep) = (pid_file(&dir, "script.pid"), pid_file(&dir, "sleep.pid"));
            let r = &server.records()[0];
            assert_eq!(
                (r.outcome.clone(), r.head_sent, r.body_bytes),
                (Outcome::TimedOut, true, 8)
            );
            assert_eq!(r.status.signal(), Some(libc::SIGKILL));
            gone(script, "the script reaped").await;
            until(|| ended(sleep), "its sleep killed").await;
            assert_eq!(*server.stats.statuses.borrow(), [200]);
            server.shutdown().await;
        },
        "cut",
    )
    .await
}

#[overlap::test]
async fn what_a_script_leaves_in_the_background_is_killed_after_its_exit() {
    within(
        HANG,
        async {
            let leaver = "sleep 100 >/dev/null 2>&1 &\necho $! > bg.pid\n\
                      printf 'Content-Type: text/plain\\r\\n\\r\\nleft one behind\\n'";
            let (dir, server) = rig("cgi-leaver", &[("leaver.sh", leaver)], |_| {}).await;
            let resp = get(server.addr, "/cgi-bin/leaver.sh").await;
            assert_eq!(
                (resp.body.as_slice(), resp.complete),
                (&b"left one behind\n"[..], true)
            );
            let r = &server.records()[0];
            assert_eq!(
                (r.outcome.clone(), r.status.code()),
                (Outcome::Served, Some(0))
            );
            gone(r.pid, "the script reaped").await;
            // The script was reaped before its group was signalled: only the pidfd (Linux 6.9+)
            // names the group then.
            let bg = pid_file(&dir, "bg.pid");
            let unsupported = format!("leaver.sh[{}]: could not clean its group", r.pid);
            if server
                .log
                .lines()
                .iter()
                .any(|l| l.starts_with(&unsupported))
            {
                // SAFETY: kill takes integers only; the sleep is alive, its pid its own.
                unsafe { libc::kill(bg as libc::pid_t, libc::SIGKILL) };
            }
            until(|| ended(bg), "the background sleep killed").await;
            server.shutdown().await;
        },
        "leaver",
    )
    .await
}

#[overlap::test]
async fn a_client_vanishing_mid_response_gets_the_script_killed() {
    within(
        HANG,
        async {
            let stream = "echo $$ > script.pid\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\n\
                      while :; do echo tick; done";
            let (dir, server) = rig("cgi-vanish", &[("stream.sh", stream)], |_| {}).await;
            let mut s = TcpStream::connect(server.addr).await.unwrap();
            s.write_all(b"GET /cgi-bin/stream.sh HTTP/1.1\r\n\r\n")
                .await
                .unwrap();
            let mut got = vec![0u8; 64 * 1024];
            s.read_exact(&mut got).await.unwrap();
            assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"));
            assert!(String::from_utf8_lossy(&got).contains("tick\ntick\n"));
            drop(s); // with the ticks unread: a reset
            until(|| server.records().len() == 1, "the run's end").await;
            let r = &server.records()[0];
            assert_eq!(
                (r.outcome.clone(), r.status.signal()),
                (Outcome::ClientGone, Some(libc::SIGKILL))
            );
            assert_eq!(r.pid, pid_file(&dir, "script.pid"));
            all_reaped(&server).await;
            server.shutdown().await;
        },
        "vanish",
    )
    .await
}

#[overlap::test]
async fn a_client_vanishing_while_the_script_is_silent_gets_its_group_killed() {
    within(
        HANG,
        async {
            let silent = sleeper("printf 'Content-Type: text/plain\\r\\n\\r\\nstarted\\n'\n");
            let (dir, server) = rig("cgi-silent", &[("silent.sh", &silent)], |_| {}).await;
            let mut s = TcpStream::connect(server.addr).await.unwrap();
            s.write_all(b"GET /cgi-bin/silent.sh HTTP/1.1\r\n\r\n")
                .await
                .unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            while !String::from_utf8_lossy(&got).contains("started") {
                let n = s.read(&mut buf).await.unwrap();
                assert!(n > 0);
                got.extend_from_slice(&buf[..n]);
            }
            let bin = dir.join("cgi-bin");
            let (script, sleep) = (
                pid_in(&bin.join("script.pid")).await,
                pid_in(&bin.join("sleep.pid")).await,
            );
            drop(s); // all read: a plain end of file, with nothing written meanwhile
            until(|| server.records().len() == 1, "the run's end").await;
            let r = &server.records()[0];
            assert_eq!((r.outcome.clone(), r.pid), (Outcome::ClientGone, script));
            assert_eq!(r.status.signal(), Some(libc::SIGKILL));
            gone(script, "the script reaped").await;
            until(|| ended(sleep), "its sleep killed").await;
            server.shutdown().await;
        },
        "silent",
    )
    .await
}

#[overlap::test]
async fn a_client_vanishing_mid_upload_gets_the_script_killed() {
    within(HANG, async {
        let upload = "echo $$ > script.pid\ncat >/dev/null\nprintf 'Content-Type: text/plain\\r\\n\\r\\ndone\\n'";
        let (dir, server) = rig("cgi-upload-cut", &[("upload.sh", upload)], |_| {}).await;
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"POST /cgi-bin/upload.sh HTTP/1.1\r\nContent-Length: 1048576\r\n\r\n").await.unwrap();
        s.write_all(&pattern(65536)).await.unwrap();
        let script = pid_in(&dir.join("cgi-bin").join("script.pid")).await;
        drop(s);
        until(|| server.records().len() == 1, "the run's end").await;
        let r = &server.records()[0];
        assert_eq!((r.outcome.clone(), r.pid, r.head_sent), (Outcome::ClientGone, script, false));
        assert_eq!((r.stdin_bytes, r.status.signal()), (65536, Some(libc::SIGKILL)));
        all_reaped(&server).await;
        server.shutdown().await;
    }, "upload cut").await
}

#[overlap::test]
async fn a_script_that_never_reads_stdin_still_answers_a_4_mib_upload() {
    within(
        HANG,
        async {
            let nostdin = "printf 'Content-Type: text/plain\\r\\n\\r\\nnot reading\\n'";
            let (_dir, server) = rig("cgi-nostdin", &[("nostdin.sh", nostdin)], |_| {}).await;
            let body = pattern(4 << 20);
            let mut req = format!(
                "POST /cgi-bin/nostdin.sh HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            req.extend_from_slice(&body);
            let (mut rh, mut wh) = TcpStream::connect(server.addr).await.unwrap().into_split();
            let (sent, raw) = overlap::join!(wh.write_all(&req), async {
                let mut raw = Vec::new();
                rh.read_to_end(&mut raw).await.map(|_| raw)
            });
            sent.unwrap(); // the whole upload was taken, none of it refused with a reset
            assert_eq!(
                String::from_utf8(raw.unwrap()).unwrap(),
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\
             Connection: close\r\n\r\nc\r\nnot reading\n\r\n0\r\n\r\n"
            );
            let r = &server.records()[0];
            assert_eq!(
                (r.outcome.clone(), r.status.code()),
                (Outcome::Served, Some(0))
            );
            assert!(
                r.stdin_bytes < 4 << 20,
                "{} bytes went to a script that read none",
                r.stdin_bytes
            );
            all_reaped(&server).await;
            server.shutdown().await;
        },
        "no stdin",
    )
    .await
}

#[overlap::test]
async fn the_cap_queues_requests_and_serves_them_in_order() {
    within(
        HANG,
        async {
            let order = "echo \"start $QUERY_STRING\" >> order.log\ncat >/dev/null\n\
                     echo \"end $QUERY_STRING\" >> order.log\n\
                     printf 'Content-Type: text/plain\\r\\n\\r\\n%s\\n' \"$QUERY_STRING\"";
            let (dir, server) =
                rig("cgi-cap", &[("order.sh", order)], |c| c.max_children = 1).await;
            let stats = server.stats.clone();
            // The first holds the only slot: its script waits for a body held back.
            let mut first = TcpStream::connect(server.addr).await.unwrap();
            first
                .write_all(b"POST /cgi-bin/order.sh?1 HTTP/1.1\r\nContent-Length: 3\r\n\r\n")
                .await
                .unwrap();
            until(|| stats.running.get() == 1, "the first script running").await;
            let mut queued = Vec::new();
            for i in 2..=4 {
                let (addr, target) = (server.addr, format!("/cgi-bin/order.sh?{i}"));
                queued.push(overlap::spawn(async move { get(addr, &target).await }));
                until(|| stats.queued.get() == i - 1, "the request queued").await;
            }
            settle().await;
            assert_eq!((stats.running.get(), stats.started.borrow().len()), (1, 1));
            first.write_all(b"abc").await.unwrap();
            let mut raw = Vec::new();
            first.read_to_end(&mut raw).await.unwrap();
            assert_eq!(parse(raw).body, b"1\n");
            for (i, task) in (2..=4).zip(queued) {
                assert_eq!(task.await.unwrap().body, format!("{i}\n").into_bytes());
            }
            let log = std::fs::read_to_string(dir.join("cgi-bin").join("order.log")).unwrap();
            assert_eq!(
                log,
                "start 1\nend 1\nstart 2\nend 2\nstart 3\nend 3\nstart 4\nend 4\n"
            );
            assert_eq!(
                (
                    stats.peak_running.get(),
                    stats.queued.get(),
                    stats.running.get()
                ),
                (1, 0, 0)
            );
            all_reaped(&server).await;
            server.shutdown().await;
        },
        "cap",
    )
    .await
}

#[test]
fn nothing_is_left_after_a_mix_of_requests() {
    run_in_child("faults::nothing_is_left_after_a_mix_of_requests", || {
        let before = open_fds();
        let rt = overlap::Runtime::new().unwrap();
        rt.block_on(async {
            let slow = sleeper("");
            let fail = "echo oops >&2\nexit 1";
            let stream =
                "printf 'Content-Type: text/plain\\r\\n\\r\\n'\nwhile :; do echo tick; done";
            let scripts = [
                ("env.sh", ENV_SH),
                ("echo.sh", ECHO_SH),
                ("slow.sh", &slow),
                ("fail.sh", fail),
                ("stream.sh", stream),
            ];
            let (dir, server) = rig("cgi-leaks", &scripts, |c| c.deadline = SHORT).await;
            assert_eq!(get(server.addr, "/cgi-bin/env.sh").await.status, 200);
            assert_eq!(
                post(server.addr, "/cgi-bin/echo.sh", &pattern(300_000))
                    .await
                    .body
                    .len(),
                300_000
            );
            assert_eq!(get(server.addr, "/cgi-bin/fail.sh").await.status, 502);
            assert_eq!(get(server.addr, "/cgi-bin/slow.sh").await.status, 504);
            assert_eq!(get(server.addr, "/cgi-bin/../x").await.status, 403);
            assert_eq!(exchange(server.addr, b"BAD\r\n\r\n").await.status, 400);
            let mut s = TcpStream::connect(server.addr).await.unwrap();
            s.write_all(b"GET /cgi-bin/stream.sh HTTP/1.1\r\n\r\n")
                .await
                .unwrap();
            let mut some = [0u8; 4096];
            s.read_exact(&mut some).await.unwrap();
            drop(s);
            until(|| server.records().len() == 5, "five runs ended").await;
            let sleep = pid_file(&dir, "sleep.pid");
            all_reaped(&server).await;
            until(|| ended(sleep), "the sleep killed").await;
            server.shutdown().await;
            settle().await;
            assert_eq!(overlap::metrics().tasks_alive, 0, "a task left");
            assert_eq!(children(), "", "a child left");
        });
        drop(rt);
        assert_eq!(open_fds(), before, "an fd left");
    });
}
