//! COPY OUT and COPY IN, the pool, and what a whole run leaves behind.

use std::io::ErrorKind;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::AsyncReadExt;
use overlap::stream::StreamExt;
use overlap::time::{self, Instant};

use super::client::{Client, Config, CopyIn, Error};
use super::pool::{Pool, PoolConfig};
use super::server::{self, copy_row, Server};
use super::support::{open_fds, run_in_child, until, within, TempDir};
use super::{rows, start, until_sessions, HANG};

/// Waits until the server's count of COPY OUT rows sent stops moving: the server is
/// held back. Gives the count.
async fn until_still(sent: &std::cell::Cell<usize>) -> usize {
    let mut last = usize::MAX;
    while sent.get() != last {
        last = sent.get();
        time::sleep(Duration::from_millis(50)).await;
    }
    last
}

#[overlap::test]
async fn copy_out_streams_with_backpressure() {
    within(
        HANG,
        async {
            let server_config = server::Config {
                send_buffer: Some(16 * 1024),
                ..server::Config::default()
            };
            let server = Server::start("127.0.0.1", server_config).await.unwrap();
            let config = Config {
                recv_buffer: Some(16 * 1024),
                answer_queue: 4,
                ..Config::default()
            };
            let (client, _notes, _task) = Client::connect(server.addr, &config).await.unwrap();
            const ROWS: usize = 8192;
            const WIDTH: usize = 500; // about 4 MiB in all
            let mut copy = client
                .copy_out(&format!("copy out {ROWS} {WIDTH}"))
                .await
                .unwrap();
            let mut got = Vec::new();
            for _ in 0..10 {
                got.extend(copy.next().await.unwrap().unwrap());
            }
            // The consumer pauses: the server goes on only until the buffers between are
            // full (the answer's queue of 4, the socket buffers), then waits.
            let sent = &server.state.stats.copy_rows_sent;
            let last = until_still(sent).await;
            assert!(
                (10..1000).contains(&last),
                "the server held back at {last} rows"
            );
            // Then every row, exact and in order.
            while let Some(chunk) = copy.next().await {
                got.extend(chunk.unwrap());
            }
            let want: Vec<u8> = (0..ROWS).flat_map(|i| copy_row(i, WIDTH)).collect();
            assert_eq!(got.len(), want.len());
            assert!(got == want, "the rows differ");
            assert_eq!(sent.get(), ROWS);
            assert_eq!(
                client.simple_query("echo after").await.unwrap(),
                rows(&["after"])
            );
            // A COPY OUT the server refuses.
            let err = client.copy_out("copy out x 1").await.err().unwrap();
            assert_eq!(err.code(), Some("22P02"), "{err}");
            assert_eq!(
                client.simple_query("echo again").await.unwrap(),
                rows(&["again"])
            );
            // Killed mid-COPY with the consumer stalled (the server's writer waiting on a
            // full socket): the session goes at once all the same.
            let mut copy = client
                .copy_out(&format!("copy out {ROWS} {WIDTH}"))
                .await
                .unwrap();
            copy.next().await.unwrap().unwrap();
            sent.set(0);
            let stalled_at = until_still(sent).await;
            assert!(stalled_at < ROWS, "{stalled_at}");
            assert!(server.state.kill(client.shared.pid));
            until_sessions(&server, 0).await;
            let mut n = 1;
            let err = loop {
                match copy.next().await {
                    Some(Ok(_)) => n += 1,
                    Some(Err(e)) => break e,
                    None => panic!("ended cleanly after {n} rows"),
                }
            };
            let kind = err.io_kind();
            assert!(
                matches!(
                    kind,
                    Some(ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset)
                ),
                "{err}"
            );
            assert!(n < ROWS, "{n}");
            assert!(client.is_closed());
            server.stop().await;
        },
        "copy out",
    )
    .await;
}

/// Streams `path` into `sink` in 64 KiB reads, then finishes: the rows the server took,
/// or the first error.
async fn copy_file(mut sink: CopyIn, path: &std::path::Path) -> Result<u64, Error> {
    let mut file = overlap::fs::File::open(path).await.map_err(Error::Io)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).await.map_err(Error::Io)?;
        if n == 0 {
            break;
        }
        sink.send(buf[..n].to_vec()).await?;
    }
    sink.finish().await
}

#[overlap::test]
async fn copy_in_from_a_file() {
    within(
        HANG,
        async {
            let dir = TempDir::new("pg-wire-copy-in");
            let (server, client, _notes) = start("127.0.0.1").await;
            let good: String = (0..20_000).map(|i| format!("{i}\tvalue {i}\n")).collect();
            let path = dir.join("items.tsv");
            overlap::fs::write(&path, good.as_bytes()).await.unwrap();
            let sink = client.copy_in("copy in items").await.unwrap();
            assert_eq!(copy_file(sink, &path).await.unwrap(), 20_000);
            let stored = server.state.tables.borrow().get("items").cloned().unwrap();
            assert!(stored == good.as_bytes(), "stored byte for byte");
            // A bad line far into the file: refused with the line's number.
            let mut bad: String = (0..5000).map(|i| format!("{i}\tv\n")).collect();
            bad.push_str("no tab here\n");
            bad.extend((0..5000).map(|i| format!("{i}\tv\n")));
            let path = dir.join("bad.tsv");
            overlap::fs::write(&path, bad.as_bytes()).await.unwrap();
            let sink = client.copy_in("copy in bad").await.unwrap();
            match copy_file(sink, &path).await.unwrap_err() {
                Error::Db { code, message } => {
                    assert_eq!(code, "22P04");
                    assert_eq!(message, "missing data for column \"v\" at line 5001");
                }
                other => panic!("{other:?}"),
            }
            assert!(!server.state.tables.borrow().contains_key("bad"));
            assert_eq!(
                client.simple_query("echo after").await.unwrap(),
                rows(&["after"])
            );
            // A sink dropped part way: CopyFail, nothing stored, the connection fine.
            let mut sink = client.copy_in("copy in dropped").await.unwrap();
            sink.send(b"1\tone\n".to_vec()).await.unwrap();
            drop(sink);
            assert_eq!(
                client.simple_query("echo next").await.unwrap(),
                rows(&["next"])
            );
            assert!(!server.state.tables.borrow().contains_key("dropped"));
            // A missing file: the user's error, and the sink's drop fails the copy.
            let sink = client.copy_in("copy in missing").await.unwrap();
            let err = copy_file(sink, &dir.join("no-such-file"))
                .await
                .unwrap_err();
            assert_eq!(err.io_kind(), Some(std::io::ErrorKind::NotFound), "{err}");
            assert_eq!(
                client.simple_query("echo last").await.unwrap(),
                rows(&["last"])
            );
            assert!(!server.state.tables.borrow().contains_key("missing"));
            assert_eq!(server.state.stats.sessions_total.get(), 1);
            server.stop().await;
        },
        "copy in",
    )
    .await;
}

fn pool_config(server: &Server, max_size: usize) -> PoolConfig {
    PoolConfig {
        addr: server.addr,
        max_size,
        checkout_timeout: Duration::from_secs(5),
        client: Config::default(),
    }
}

#[overlap::test]
async fn a_pool_of_three_serves_forty_tasks() {
    within(
        HANG,
        async {
            let server = Server::start("127.0.0.1", server::Config::default())
                .await
                .unwrap();
            let pool = Pool::new(pool_config(&server, 3));
            let mut tasks = overlap::task::JoinSet::new();
            for i in 0..40 {
                let pool = pool.clone();
                tasks.spawn(async move {
                    let conn = pool.get().await.unwrap();
                    let got = conn
                        .simple_query(&format!("echo {i}; rows 3"))
                        .await
                        .unwrap();
                    assert_eq!(got, rows(&[&i.to_string(), "0", "1", "2"]));
                });
            }
            while let Some(r) = tasks.join_next().await {
                r.unwrap();
            }
            let stats = &server.state.stats;
            assert_eq!(stats.sessions_max.get(), 3);
            assert_eq!(pool.stats.created.get(), 3);
            assert_eq!(pool.idle(), 3);
            assert_eq!(pool.stats.discarded.get(), 0);
            assert!(pool.stats.health_checks.get() >= 37);
            drop(pool);
            until_sessions(&server, 0).await;
            server.stop().await;
        },
        "pool",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn pool_timeouts_and_broken_connections() {
    within(
        HANG,
        async {
            let server = Server::start("127.0.0.1", server::Config::default())
                .await
                .unwrap();
            let pool = Pool::new(pool_config(&server, 2));
            let a = pool.get().await.unwrap();
            let b = pool.get().await.unwrap();
            // Exhausted: a checkout fails at exactly its deadline.
            let start = Instant::now();
            assert!(matches!(pool.get().await, Err(Error::Timeout)));
            assert_eq!(start.elapsed(), Duration::from_secs(5));
            assert_eq!(pool.stats.timeouts.get(), 1);
            // A waiter gets the connection given back.
            let waiter = overlap::spawn({
                let pool = pool.clone();
                async move { pool.get().await.map(|c| c.shared.pid) }
            });
            time::sleep(Duration::from_secs(1)).await;
            let a_pid = a.shared.pid;
            drop(a);
            assert_eq!(waiter.await.unwrap().unwrap(), a_pid);
            assert_eq!(pool.stats.created.get(), 2);
            // The server kills an idle connection: the checkout's health check finds it
            // broken, discards it and connects anew.
            assert!(server.state.kill(a_pid));
            let c = pool.get().await.unwrap();
            assert_ne!(c.shared.pid, a_pid);
            assert_eq!(
                c.simple_query("echo fresh").await.unwrap(),
                rows(&["fresh"])
            );
            assert_eq!(
                (pool.stats.discarded.get(), pool.stats.created.get()),
                (1, 3)
            );
            // Killed while checked out: discarded on its way back.
            let b_pid = b.shared.pid;
            assert!(server.state.kill(b_pid));
            let err = b.simple_query("echo dead").await.unwrap_err();
            assert!(err.io_kind().is_some(), "{err}");
            drop(b);
            assert_eq!(pool.stats.discarded.get(), 2);
            drop(c);
            assert_eq!(pool.idle(), 1);
            let d = pool.get().await.unwrap();
            assert_eq!(d.simple_query("echo ok").await.unwrap(), rows(&["ok"]));
            // Closing the pool fails a waiting checkout at once, and every later one.
            let e = pool.get().await.unwrap();
            let waiter = overlap::spawn({
                let pool = pool.clone();
                async move { pool.get().await.err() }
            });
            time::sleep(Duration::from_secs(1)).await;
            let closed_at = Instant::now();
            pool.close();
            assert!(matches!(waiter.await.unwrap(), Some(Error::PoolClosed)));
            assert_eq!(closed_at.elapsed(), Duration::ZERO);
            assert!(matches!(pool.get().await, Err(Error::PoolClosed)));
            drop((d, e));
            drop(pool);
            until_sessions(&server, 0).await;
            server.stop().await;
        },
        "pool faults",
    )
    .await;
}

#[test]
fn nothing_is_left_behind() {
    run_in_child("copy_and_pool::nothing_is_left_behind", || {
        let fds = open_fds();
        overlap::block_on(async {
            let base = overlap::metrics();
            {
                let dir = TempDir::new("pg-wire-leaks");
                let server = Server::start("127.0.0.1", server::Config::default())
                    .await
                    .unwrap();
                let pool = Pool::new(pool_config(&server, 2));
                let conn = pool.get().await.unwrap();
                let path = dir.join("rows.tsv");
                overlap::fs::write(&path, b"1\ta\n2\tb\n").await.unwrap();
                let sink = conn.copy_in("copy in t").await.unwrap();
                assert_eq!(copy_file(sink, &path).await.unwrap(), 2);
                let mut copy = conn.copy_out("copy out 100 10").await.unwrap();
                copy.next().await.unwrap().unwrap();
                drop(copy);
                let (other, _notes, task) = Client::connect(server.addr, &Config::default())
                    .await
                    .unwrap();
                other.simple_query("listen x").await.unwrap();
                let _ =
                    time::timeout(Duration::from_millis(5), other.simple_query("sleep 50")).await;
                conn.simple_query("notify x bye").await.unwrap();
                drop(conn);
                let other = Rc::new(other);
                let err = other.simple_query("malformed").await.unwrap_err();
                assert!(err.io_kind().is_some());
                task.await.unwrap();
                drop(pool);
                until_sessions(&server, 0).await;
                server.stop().await;
            }
            let what = "every task and registered fd gone";
            until(
                || {
                    let m = overlap::metrics();
                    m.tasks_alive == base.tasks_alive && m.registered_fds == base.registered_fds
                },
                what,
            )
            .await;
        });
        assert_eq!(open_fds(), fds, "every fd closed");
    });
}
