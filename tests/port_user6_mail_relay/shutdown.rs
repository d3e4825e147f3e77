//! The shutdown tests: a graceful one (idle sessions told 421, one mid-message let
//! finish, the queue kept for the next start), one whose grace runs out mid-DATA, and a
//! runtime dropped with no shutdown at all: none leaves a task, an fd or a spool file.

use std::time::Duration;

use crate::client::stuffed;
use crate::harness::*;
use crate::relay::Relay;
use crate::session::Config;
use crate::support::{open_fds, run_in_child, settle, within, TempDir};

/// A shutdown with a session idle, a session mid-message and mail still queued: the idle
/// session gets 421, the one mid-message finishes (250) and is then told 421, the queue is
/// delivered, and afterwards no task, no fd and no temp file is left; the message that
/// came in after the delivery task stopped is delivered by the next start.
#[test]
fn a_shutdown_leaves_no_task_no_fd_and_no_temp_file() {
    run_in_child(
        "shutdown::a_shutdown_leaves_no_task_no_fd_and_no_temp_file",
        || {
            overlap::block_on(async {
                let fds = open_fds();
                let tasks = overlap::metrics().tasks_alive;
                let p = pair("mail-shutdown", config()).await;
                let mut idle = connect(p.front.addr).await;
                let mut busy = connect(p.front.addr).await;
                let sent = body(64 * KIB, 30);
                let reply = busy.send_mail("a@x", &["b@y"], &sent).await.unwrap();
                assert_eq!(reply.code, 250);
                busy.expect("MAIL FROM:<c@x>", 250).await.unwrap();
                busy.expect("RCPT TO:<d@y>", 250).await.unwrap();
                busy.expect("DATA", 354).await.unwrap();
                let second = body(8 * KIB, 31);
                let stuffed_second = stuffed(&second);
                let (head, tail) = stuffed_second.split_at(1000);
                busy.send_raw(head).await.unwrap();
                let next_stats = p.next.stats();
                until(
                    || next_stats.spooled.get() == 1,
                    "the first message at the next hop",
                )
                .await;
                let Pair { dir, front, next } = p;
                let stopping = overlap::spawn(front.shut_down());
                assert_eq!(codes(&mut idle, 1).await, [421]);
                busy.send_raw(tail).await.unwrap();
                assert_eq!(codes(&mut busy, 2).await, [250, 421]);
                within(HANG, stopping, "the front's shutdown")
                    .await
                    .unwrap()
                    .unwrap();
                next.shut_down().await.unwrap();
                let mail = mail_in(&dir.join("next/queue"));
                // The second message was spooled after the delivery task stopped: it waits in
                // the front's queue for the next start.
                assert_eq!(mail.len(), 1);
                assert!(mail[0].2 == sent);
                assert_eq!(mail_in(&dir.join("front/queue")).len(), 1);
                for tmp in ["front/tmp", "next/tmp"] {
                    assert_eq!(entries(&dir.join(tmp)), 0, "{tmp}");
                }
                drop((idle, busy));
                // Started again on the same spools, the front delivers what it kept.
                let next_listener = listener().await;
                let next_addr = next_listener.local_addr().unwrap();
                let next = Relay::start(next_listener, config(), &dir.join("next"), None)
                    .await
                    .unwrap();
                let front_dir = dir.join("front");
                let front =
                    Relay::start(listener().await, config(), &front_dir, Some(hop(next_addr)))
                        .await
                        .unwrap();
                until(|| entries(front.queue()) == 0, "the kept message to go").await;
                let mail = mail_in(next.queue());
                assert_eq!(mail.len(), 2);
                assert!(mail[0].2 == sent && mail[1].2 == second);
                front.shut_down().await.unwrap();
                next.shut_down().await.unwrap();
                drop(dir);
                settle().await;
                assert_eq!(overlap::metrics().tasks_alive, tasks, "tasks left");
                // A dropped File's last write job closes its fd when it ends, on the pool.
                until(|| open_fds() == fds, "the fds to close").await;
            })
        },
    );
}

/// A shutdown whose grace runs out with a client stalled mid-DATA: the session is aborted,
/// its partial spool file removed, and no fd or task is left.
#[test]
fn a_session_aborted_at_shutdown_leaves_no_spool_file() {
    run_in_child(
        "shutdown::a_session_aborted_at_shutdown_leaves_no_spool_file",
        || {
            overlap::block_on(async {
                let fds = open_fds();
                let tasks = overlap::metrics().tasks_alive;
                let dir = TempDir::new("mail-abort");
                let config = Config {
                    command_timeout: Duration::from_millis(200),
                    ..config()
                };
                let relay = Relay::start(listener().await, config, dir.path(), None)
                    .await
                    .unwrap();
                let mut client = connect(relay.addr).await;
                client.expect("MAIL FROM:<a@x>", 250).await.unwrap();
                client.expect("RCPT TO:<b@y>", 250).await.unwrap();
                client.expect("DATA", 354).await.unwrap();
                client.send_raw(&body(200 * KIB, 8)).await.unwrap();
                let tmp = dir.join("tmp");
                until(|| entries(&tmp) == 1, "the spool file").await;
                within(HANG, relay.shut_down(), "the shutdown")
                    .await
                    .unwrap();
                assert_eq!(entries(&tmp), 0);
                drop(client);
                drop(dir);
                settle().await;
                assert_eq!(overlap::metrics().tasks_alive, tasks, "tasks left");
                // A dropped File's last write job closes its fd when it ends, on the pool.
                until(|| open_fds() == fds, "the fds to close").await;
            })
        },
    );
}

/// A runtime dropped with a session mid-DATA (no shutdown at all): the session's draft is
/// removed as its task is dropped, the bytes its File still held land in the unlinked file,
/// and afterwards no fd is left.
#[test]
fn a_runtime_dropped_mid_data_leaves_no_spool_file_and_no_fd() {
    run_in_child(
        "shutdown::a_runtime_dropped_mid_data_leaves_no_spool_file_and_no_fd",
        || {
            let fds = open_fds();
            let dir = TempDir::new("mail-rt-drop");
            let rt = overlap::Runtime::new().unwrap();
            rt.block_on(async {
                let relay = Relay::start(listener().await, config(), dir.path(), None)
                    .await
                    .unwrap();
                let addr = relay.addr;
                // The relay and a client stay with tasks of the runtime, to be dropped with it.
                overlap::spawn(async move {
                    let _relay = relay;
                    std::future::pending::<()>().await
                });
                let (sent, half_sent) = overlap::sync::oneshot::channel();
                overlap::spawn(async move {
                    let mut client = connect(addr).await;
                    client.expect("MAIL FROM:<a@x>", 250).await.unwrap();
                    client.expect("RCPT TO:<b@y>", 250).await.unwrap();
                    client.expect("DATA", 354).await.unwrap();
                    let half = stuffed(&body(300 * KIB, 70));
                    client.send_raw(&half[..half.len() / 2]).await.unwrap();
                    let _ = sent.send(());
                    std::future::pending::<()>().await
                });
                // After the 354 the draft exists: the file alone could be a create_new
                // whose result the session has not had yet (dropped then, its file is
                // left for the next start's sweep).
                within(HANG, half_sent, "half a body").await.unwrap();
                let tmp = dir.join("tmp");
                until(|| entries(&tmp) == 1, "the spool file").await;
            });
            drop(rt);
            assert_eq!(entries(&dir.join("tmp")), 0, "the draft is gone");
            drop(dir);
            assert_eq!(open_fds(), fds, "fds left open");
        },
    );
}
