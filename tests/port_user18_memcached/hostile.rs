//! Tests of what clients get wrong or do to the server: bad input of every kind, overlong
//! lines, a client pipelining without reading, clients vanishing, idle clients (on the
//! paused clock), and the graceful shutdown.

use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::TcpStream;
use overlap::time::Instant;

use super::client::Rig;
use super::conn::End;
use super::server::Config;
use super::support::{settle, until, within};

const KIB: usize = 1024;

/// Sockets of this process whose local port is `port`, listeners left out: the server's
/// side of its connections, closed or not yet.
fn server_sockets(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f[1].ends_with(&format!(":{port:04X}")) && f[3] != "0A")
        .map(|f| format!("socket:[{}]", f[9]))
        .collect();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|t| inodes.iter().any(|i| t.as_os_str() == i.as_str()))
        .count()
}

/// Every kind of bad line in one pipelined write, each answered with memcached's error
/// (a refused storage line's data block swallowed, a bad data chunk's stray byte read as
/// an empty line), and the good commands after them still served, byte for byte.
#[overlap::test]
async fn bad_input_of_every_kind_is_answered_and_the_connection_goes_on() {
    let rig = Rig::new(Config::default()).await;
    let mut c = rig.client().await;
    let long_key = "k".repeat(251);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"bogus\r\n".to_vec(), "ERROR"),
        (b"\r\n".to_vec(), "ERROR"),
        (b"GET k\r\n".to_vec(), "ERROR"),
        (b"get\r\n".to_vec(), "ERROR"),
        (b"set k 0 0\r\n".to_vec(), "ERROR"),
        (b"verbosity\r\n".to_vec(), "ERROR"),
        (
            b"set k 0 0 abc\r\n".to_vec(),
            "CLIENT_ERROR bad command line format",
        ),
        (
            b"set k 0 0 -1\r\n".to_vec(),
            "CLIENT_ERROR bad command line format",
        ),
        (
            format!("set {long_key} 0 0 3\r\nabc\r\n").into_bytes(),
            "CLIENT_ERROR bad command line format",
        ),
        (
            b"set k\x01y 0 0 3\r\nabc\r\n".to_vec(),
            "CLIENT_ERROR bad command line format",
        ),
        (
            b"set k 4294967296 0 3\r\nabc\r\n".to_vec(),
            "CLIENT_ERROR bad command line format",
        ),
        (
            b"add k 0 soon 3\r\nabc\r\n".to_vec(),
            "CLIENT_ERROR bad command line format",
        ),
        (
            b"cas k 0 0 3 x\r\nabc\r\n".to_vec(),
            "CLIENT_ERROR bad command line format",
        ),
        (
            b"set k 0 0 3\r\nabcd\r\n".to_vec(),
            "CLIENT_ERROR bad data chunk\r\nERROR",
        ),
        (
            format!("get ok {long_key}\r\n").into_bytes(),
            "CLIENT_ERROR bad command line format",
        ),
        (
            b"get k\x7f\r\n".to_vec(),
            "CLIENT_ERROR bad command line format",
        ),
        (
            b"incr k abc\r\n".to_vec(),
            "CLIENT_ERROR invalid numeric delta argument",
        ),
        (
            b"delete k 5\r\n".to_vec(),
            "CLIENT_ERROR bad command line format",
        ),
        (
            b"touch k soon\r\n".to_vec(),
            "CLIENT_ERROR bad command line format",
        ),
        (
            b"gat soon k\r\n".to_vec(),
            "CLIENT_ERROR bad command line format",
        ),
        (
            b"flush_all soon\r\n".to_vec(),
            "CLIENT_ERROR bad command line format",
        ),
        (
            b"verbosity x\r\n".to_vec(),
            "CLIENT_ERROR bad command line format",
        ),
        // A bare `\n` ends a line too; the data block still needs its `\r\n`.
        (b"set lf 7 0 2\nhi\r\n".to_vec(), "STORED"),
        (
            b"get k lf noreply\r\n".to_vec(),
            "VALUE lf 7 2\r\nhi\r\nEND",
        ),
    ];
    let all: Vec<u8> = cases.iter().flat_map(|(sent, _)| sent.clone()).collect();
    let want: String = cases
        .iter()
        .map(|(_, reply)| format!("{reply}\r\n"))
        .collect();
    c.send(&all).await;
    let got = c.exact(want.len()).await;
    assert_eq!(String::from_utf8_lossy(&got), want);
    assert_eq!(
        c.cmd("version").await,
        format!("VERSION {}", super::VERSION)
    );
    assert_eq!(rig.stat("curr_items"), "1", "only lf was stored");
    assert!(rig.server.shared.counters.ends.borrow().is_empty());
}

/// A line over 2048 bytes without its `\r\n` is refused and closes its connection, and
/// only it; a `get` line may grow longer, and one of 600 keys is answered.
#[overlap::test]
async fn an_overlong_line_closes_only_its_connection() {
    let rig = Rig::new(Config::default()).await;
    let mut bad = rig.client().await;
    let mut good = rig.client().await;
    assert_eq!(good.set("k0", b"v").await, "STORED");
    bad.send(format!("set k 0 0 1 {}", "x".repeat(3000)).as_bytes())
        .await;
    assert_eq!(bad.line().await.unwrap(), "CLIENT_ERROR line too long");
    assert!(bad.closed().await);
    let keys: Vec<String> = (0..600).map(|i| format!("k{i}")).collect();
    let line = format!("get {}", keys.join(" "));
    assert!(line.len() > 2048);
    good.send(line.as_bytes()).await;
    settle().await;
    good.send(b"\r\n").await;
    let got = good.values().await;
    assert_eq!((got.len(), got[0].key.as_str()), (1, "k0"));
    assert_eq!(
        *rig.server.shared.counters.ends.borrow(),
        [End::LineTooLong]
    );
    assert_eq!(rig.stat("curr_connections"), "1");
}

/// 10 000 pipelined `get`s of a 100 KiB value from a client that reads nothing for a
/// while: the server stops running them (and reading) at its output limit instead of
/// queueing a gigabyte; then the client reads every reply, each intact.
#[overlap::test]
async fn a_client_not_reading_its_replies_is_held_back() {
    let limit = 1 << 20;
    let rig = Rig::new(Config {
        output_limit: limit,
        ..Config::default()
    })
    .await;
    let value = super::support::pattern_seeded(100 * KIB, 4);
    let mut c = rig.client().await;
    assert_eq!(c.set("big", &value).await, "STORED");
    let (mut rd, mut wr) = c.s.into_split();
    let writer = overlap::spawn(async move {
        wr.write_all(&b"get big\r\n".repeat(10_000)).await.unwrap();
        wr
    });
    let counters = &rig.server.shared.counters;
    until(|| counters.output_waiting.get() == 1, "the server to wait").await;
    let ran = counters.commands.get();
    overlap::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(counters.commands.get(), ran, "nothing more ran meanwhile");
    assert!(ran < 10_000 / 4, "{ran} gets ran unread");
    let reply = 100 * KIB + 40;
    assert!(counters.peak_output.get() <= limit + reply);
    let head = format!("VALUE big 0 {}\r\n", value.len());
    let mut one = vec![0u8; head.len() + value.len() + 7];
    for i in 0..10_000 {
        rd.read_exact(&mut one).await.unwrap();
        let (h, rest) = one.split_at(head.len());
        assert_eq!(h, head.as_bytes(), "reply {i}");
        assert!(rest[..value.len()] == value[..], "reply {i}'s value");
        assert_eq!(&rest[value.len()..], b"\r\nEND\r\n", "reply {i}");
    }
    let _wr = writer.await.unwrap();
    assert_eq!(rig.stat("get_hits"), "10000");
    assert!(counters.peak_output.get() <= limit + reply);
    let waits = counters.output_waits.get();
    // About one stop per 11 replies (11 x 100 KiB pass 1 MiB), all along.
    assert!(waits >= 10_000 / 12, "stopped all along: {waits}");
}

/// Clients vanishing: in the middle of a data block, in the middle of a line, and while
/// the server waits to write them replies they will never read. Each connection ends
/// (nothing half-stored), and no server socket is left open.
#[overlap::test]
async fn vanishing_clients_leave_no_connection_behind() {
    let rig = Rig::new(Config::default()).await;
    let port = rig.addr.port();
    let mut mid_block = rig.client().await;
    mid_block.send(b"set k 0 0 100\r\nonly half").await;
    let mut mid_line = rig.client().await;
    mid_line.send(b"get k").await;
    let mut stuck = rig.client().await;
    assert_eq!(stuck.set("big", &vec![7u8; 100 * KIB]).await, "STORED");
    stuck.send(&b"get big\r\n".repeat(2000)).await;
    let counters = &rig.server.shared.counters;
    until(|| counters.output_waiting.get() == 1, "the server to wait").await;
    assert_eq!(server_sockets(port), 3);
    drop((mid_block, mid_line, stuck));
    until(|| rig.stat("curr_connections") == "0", "every close").await;
    let mut ends = counters.ends.borrow().clone();
    ends.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(ends, [End::Io, End::Truncated, End::Truncated]);
    assert_eq!(server_sockets(port), 0);
    let mut c = rig.client().await;
    assert_eq!(c.get_with("get", &["k", "big"]).await.len(), 1);
    assert_eq!(rig.stat("curr_items"), "1");
}

/// On the paused clock, with a 60 s idle timeout: a silent client is closed at its 60th
/// second exactly; one that sends a command every 40 s stays.
#[overlap::test(start_paused = true)]
async fn idle_clients_are_closed_at_the_timeout() {
    let rig = Rig::new(Config {
        idle_timeout: Some(Duration::from_secs(60)),
        ..Config::default()
    })
    .await;
    within(
        Duration::from_secs(600),
        async {
            let start = Instant::now();
            let mut silent = rig.client().await;
            let mut busy = rig.client().await;
            let keep_busy = async {
                for _ in 0..3 {
                    overlap::time::sleep(Duration::from_secs(40)).await;
                    assert_eq!(
                        busy.cmd("version").await,
                        format!("VERSION {}", super::VERSION)
                    );
                }
                busy
            };
            let closed = async {
                assert!(silent.closed().await);
                Instant::now() - start
            };
            let (mut busy, at) = overlap::join!(keep_busy, closed);
            assert_eq!(at, Duration::from_secs(60));
            assert_eq!(
                busy.cmd("version").await,
                format!("VERSION {}", super::VERSION)
            );
            assert_eq!(*rig.server.shared.counters.ends.borrow(), [End::Idle]);
        },
        "the test, on the paused clock",
    )
    .await;
}

/// The graceful shutdown: a client held back at the output limit gets every reply to the
/// commands the server had read (each whole), then EOF; an idle client gets EOF; nothing
/// is accepted any more, and every connection is gone when it returns.
#[overlap::test]
async fn a_graceful_shutdown_answers_what_was_run_then_closes() {
    let rig = Rig::new(Config::default()).await;
    let addr = rig.addr;
    let mut idle = rig.client().await;
    let mut c = rig.client().await;
    let value = vec![3u8; 100 * KIB];
    assert_eq!(c.set("big", &value).await, "STORED");
    c.send(&b"get big\r\n".repeat(200)).await;
    let shared = rig.server.shared.clone();
    let counters = &shared.counters;
    until(|| counters.output_waiting.get() == 1, "the server to wait").await;
    let shutdown = overlap::spawn(rig.server.shutdown());
    assert!(idle.closed().await);
    settle().await;
    assert!(!shutdown.is_finished(), "waiting for the held-back client");
    let mut replies = 0;
    while let Some(line) = c.line().await {
        assert_eq!(line, "VALUE big 0 102400");
        assert!(c.exact(value.len()).await == value);
        assert_eq!(c.exact(7).await, b"\r\nEND\r\n");
        replies += 1;
    }
    shutdown.await.unwrap();
    // All 200 came in one read (one write of 1800 bytes, on loopback), so all ran.
    assert_eq!((replies, counters.commands.get()), (200, 201));
    assert!(TcpStream::connect(addr).await.is_err(), "no more accepts");
    assert_eq!(counters.curr_connections.get(), 0);
    assert_eq!(*counters.ends.borrow(), [End::Shutdown, End::Shutdown]);
    let _ = c.s.read(&mut [0u8; 1]).await;
}
