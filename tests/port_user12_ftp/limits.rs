//! The server's limits: the session limit, the idle timeout, the data connection's
//! accept timeout, many sessions at once, and nothing left after a run.

use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};

use super::client::Client;
use super::server::{Config, End};
use super::support::{open_fds, pattern_seeded, run_in_child, until, within, TempDir};
use super::{on_disk, start, HANG};

#[overlap::test]
async fn the_session_limit_refuses_with_421_until_a_session_ends() {
    let root = TempDir::new("ftp-limit");
    within(
        HANG,
        async {
            let config = Config {
                max_sessions: 2,
                ..Config::default()
            };
            let server = start(&root, config).await;
            let a = Client::login(server.addr).await;
            let b = Client::login(server.addr).await;
            let mut c = Client::connect(server.addr).await;
            assert_eq!(c.greeting.code, 421, "{:?}", c.greeting);
            assert!(c.closed().await);
            a.quit().await;
            until(|| server.live() == 1, "a's end").await;
            let d = Client::login(server.addr).await;
            b.quit().await;
            d.quit().await;
            until(|| server.live() == 0, "every end").await;
            let mut ends = server.ends();
            ends.sort_by_key(|e| format!("{e:?}"));
            assert_eq!(ends, [End::Full, End::Quit, End::Quit, End::Quit]);
        },
        "the limit",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn an_idle_control_connection_is_closed_with_421() {
    let root = TempDir::new("ftp-idle");
    within(
        Duration::from_secs(3600),
        async {
            let config = Config {
                idle: Duration::from_secs(300),
                ..Config::default()
            };
            let server = start(&root, config).await;
            let mut c = Client::login(server.addr).await;
            let r = c.reply().await;
            assert_eq!(r.code, 421, "{r:?}");
            assert!(c.closed().await);
            until(|| server.ends() == [End::Idle], "the idle end").await;
        },
        "the idle timeout",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn a_pasv_nobody_connects_to_is_answered_425() {
    let root = TempDir::new("ftp-425");
    std::fs::write(root.join("f"), b"data").unwrap();
    within(
        Duration::from_secs(3600),
        async {
            let server = start(&root, Config::default()).await;
            let mut c = Client::login(server.addr).await;
            let _unused = c.pasv_addr().await;
            let r = c.cmd("RETR f").await;
            assert_eq!(r.code, 425, "{r:?}");
            // The PASV was used up: another transfer needs another.
            assert_eq!(c.cmd("LIST").await.code, 425);
            assert_eq!(c.retr("f", 0).await, b"data");
            c.quit().await;
        },
        "the accept timeout",
    )
    .await;
}

#[overlap::test]
async fn forty_sessions_at_once_each_upload_and_download() {
    let root = TempDir::new("ftp-many");
    within(
        HANG,
        async {
            let server = start(&root, Config::default()).await;
            let addr = server.addr;
            let sessions = (0..40u32).map(|i| async move {
                let mut c = Client::login(addr).await;
                let body = pattern_seeded(20_000 + i as usize * 1000, i);
                let name = format!("f{i}");
                assert_eq!(c.stor(&name, &body).await.code, 226);
                assert_eq!(c.retr(&name, 0).await, body);
                assert_eq!(c.retr(&name, 5).await, body[5..]);
                c.quit().await;
            });
            overlap::future::join_all(sessions).await;
            until(|| server.live() == 0, "every end").await;
            assert_eq!(on_disk(root.path()).len(), 40);
            assert_eq!(server.ends().len(), 40);
        },
        "forty sessions",
    )
    .await;
}

#[overlap::test]
async fn dropping_the_server_mid_upload_ends_every_session_and_leaves_nothing() {
    let root = TempDir::new("ftp-drop");
    within(
        HANG,
        async {
            let tasks = overlap::metrics().tasks_alive;
            let server = start(&root, Config::default()).await;
            let mut uploader = Client::login(server.addr).await;
            let mut idle = Client::login(server.addr).await;
            let mut data = uploader.pasv().await;
            assert_eq!(uploader.cmd("STOR f").await.code, 150);
            data.write_all(&pattern_seeded(1 << 20, 21)).await.unwrap();
            until(|| !on_disk(root.path()).is_empty(), "the temporary file").await;
            let shared = std::rc::Rc::clone(&server.shared);
            // The acceptor aborted; its JoinSet dropped with it aborts both sessions, and
            // the transfer, its cancel signal's sender gone, cleans up after itself.
            drop(server);
            assert!(uploader.closed().await);
            assert!(idle.closed().await);
            drop(data);
            until(|| overlap::metrics().tasks_alive == tasks, "the tasks gone").await;
            assert_eq!(on_disk(root.path()), Vec::<String>::new());
            assert_eq!(shared.aborted.get(), 1);
            assert!(shared.ends.borrow().is_empty(), "no session ran to its end");
        },
        "the dropped server",
    )
    .await;
}

#[test]
fn a_whole_run_leaves_no_fd_and_no_task() {
    const NAME: &str = "limits::a_whole_run_leaves_no_fd_and_no_task";
    run_in_child(NAME, || {
        let root = TempDir::new("ftp-fds");
        overlap::block_on(within(
            HANG,
            async {
                let fds = open_fds();
                let tasks = overlap::metrics().tasks_alive;
                let server = start(&root, Config::default()).await;
                let mut c = Client::login(server.addr).await;
                let body = pattern_seeded(1 << 20, 17);
                assert_eq!(c.stor("f", &body).await.code, 226);
                assert_eq!(c.retr("f", 100).await, body[100..]);
                c.list("").await;
                let mut data = c.pasv().await;
                assert_eq!(c.cmd("STOR cut").await.code, 150);
                data.write_all(&body).await.unwrap();
                c.send("ABOR").await;
                assert_eq!(c.reply().await.code, 426);
                assert_eq!(c.reply().await.code, 226);
                drop(data);
                // A download aborted with a `sendfile` run in flight on the pool (more than
                // loopback's socket buffers hold).
                std::fs::write(root.join("huge"), vec![b'h'; 32 << 20]).unwrap();
                let mut data = c.pasv().await;
                assert_eq!(c.cmd("RETR huge").await.code, 150);
                let mut first = [0; 10];
                data.read_exact(&mut first).await.unwrap();
                c.send("ABOR").await;
                assert_eq!(c.reply().await.code, 426);
                assert_eq!(c.reply().await.code, 226);
                drop(data);
                let _unused = c.pasv_addr().await; // a PASV never used
                let vanishing = Client::login(server.addr).await;
                drop(vanishing);
                c.quit().await;
                until(|| server.live() == 0, "every end").await;
                drop(server);
                until(|| overlap::metrics().tasks_alive == tasks, "the tasks gone").await;
                until(|| open_fds() == fds, "the fds back").await;
                assert_eq!(on_disk(root.path()), ["f", "huge"]);
            },
            "the whole run",
        ));
    });
}
