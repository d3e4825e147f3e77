//! The idioms one at a time: a sleep kept across a loop and reset, a connect against a
//! timer, handlers that leave the function or loop, `select!` in a macro, generic fns and
//! spawned tasks, output patterns, and reads that must lose nothing when they lose a race.

use std::io;
use std::time::Duration;

use overlap::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use overlap::net::{TcpListener, TcpStream};
use overlap::stream::StreamExt;
use overlap::sync::mpsc;
use overlap::time::{self, Instant};
use overlap::{block_on, select};

use crate::idioms::{first_or_none, first_or_none_pinned, write_numbered, Watched};
use crate::within_ms;

#[test]
fn an_idle_timeout_kept_across_the_loop_is_pushed_back_by_every_line() {
    block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (go_quiet_tx, mut go_quiet) = mpsc::channel::<()>(1);
        let peer = overlap::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            for i in 0..20 {
                s.write_all(format!("line {i}\n").as_bytes()).await.unwrap();
                overlap::task::yield_now().await;
            }
            go_quiet_tx.send(()).await.unwrap();
            // Stays open and silent until the reader gives up on it.
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).await.unwrap();
        });
        let (socket, _) = listener.accept().await.unwrap();
        let mut lines = BufReader::new(socket).lines();
        let idle = Duration::from_secs(3600);
        let sleep = time::sleep(idle);
        overlap::pin_mut!(sleep);
        let (mut seen, mut deadlines, mut quiet) = (Vec::new(), Vec::new(), false);
        let why = loop {
            // Once the peer says it went quiet, the idle time is short.
            let wait = if quiet {
                Duration::from_millis(5)
            } else {
                idle
            };
            select! {
                // A line ready always goes before the timer.
                biased;
                line = lines.next() => match line {
                    Some(Ok(line)) => {
                        seen.push(line);
                        sleep.as_mut().reset(Instant::now() + wait);
                        deadlines.push(sleep.deadline());
                    }
                    other => panic!("the peer ended: {other:?}"),
                },
                Some(()) = go_quiet.recv() => {
                    quiet = true;
                    sleep.as_mut().reset(Instant::now() + Duration::from_millis(5));
                }
                () = &mut sleep => break "idle",
            }
        };
        assert_eq!(why, "idle");
        assert_eq!(seen.len(), 20);
        assert_eq!(seen[19], "line 19");
        assert!(deadlines.windows(2).all(|w| w[0] <= w[1]));
        drop(lines);
        peer.await.unwrap();
    });
}

#[test]
fn a_connect_races_a_timer_and_a_refused_one_disables_its_branch() {
    block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let got = select! {
            Ok(s) = TcpStream::connect(addr) => Some(s),
            _ = time::sleep(Duration::from_secs(3600)) => None,
        };
        let s = got.expect("the timer won over a listening port");
        assert_eq!(s.peer_addr().unwrap(), addr);
        drop(listener);
        // Nothing listens now: the connect is refused, its `Ok(s)` fails, its branch is
        // disabled, and the timer's runs.
        let (refused, why) = select! {
            Ok(s) = TcpStream::connect(addr) => (false, format!("connected to {:?}", s.peer_addr())),
            _ = time::sleep(Duration::from_millis(20)) => (true, String::new()),
        };
        assert!(refused, "{why}");
        // With `else` instead of a timer: it runs as soon as the refusal comes.
        let what = select! {
            Ok(_) = TcpStream::connect(addr) => "connected",
            else => "refused",
        };
        assert_eq!(what, "refused");
    });
}

/// `?` and `return` in handlers, `break 'outer` with a value from a nested `select!`.
async fn session(script: &[u8], tick: Option<u32>) -> io::Result<u32> {
    let (mut tx, mut rx) = overlap::pipe::pipe()?;
    tx.write_all(script).await?;
    drop(tx);
    let (ticks_tx, mut ticks) = mpsc::channel::<u32>(4);
    if let Some(t) = tick {
        ticks_tx.send(t).await.unwrap();
    }
    drop(ticks_tx);
    let mut total = 0u32;
    let found = 'outer: loop {
        let mut byte = [0u8; 1];
        select! {
            n = rx.read(&mut byte) => {
                if n? == 0 {
                    return Ok(total);
                }
                match byte[0] {
                    b'e' => Err(io::Error::new(io::ErrorKind::InvalidData, "an e"))?,
                    b'r' => return Ok(total + 1000),
                    b'n' => {
                        // A nested select! whose handler breaks the outer loop.
                        select! {
                            Some(t) = ticks.recv() => break 'outer t + total,
                            else => continue 'outer,
                        }
                    }
                    d => total += u32::from(d - b'0'),
                }
            }
            _ = time::sleep(Duration::from_secs(3600)) => {
                return Err(io::ErrorKind::TimedOut.into());
            }
        }
    };
    Ok(found * 2)
}

#[test]
fn handlers_return_question_mark_and_break_an_outer_loop_from_a_nested_select() {
    block_on(async {
        assert_eq!(session(b"12", None).await.unwrap(), 3);
        assert_eq!(session(b"12r9", None).await.unwrap(), 1003);
        let err = session(b"1e", None).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        // `n` takes the queued tick in the nested select and breaks out: (100 + 3) * 2;
        // with no tick (the channel closed) its `else` continues the outer loop.
        assert_eq!(session(b"12n", Some(100)).await.unwrap(), 206);
        assert_eq!(session(b"1n2", None).await.unwrap(), 3);
    });
}

#[test]
fn select_in_a_macro_generic_fns_and_spawned_tasks() {
    block_on(async {
        assert_eq!(within_ms!(3_600_000, async { 5 }), Some(5));
        assert_eq!(within_ms!(1, std::future::pending::<u8>()), None);
        assert_eq!(first_or_none(async { "a" }, 3_600_000).await, Some("a"));
        assert_eq!(first_or_none(std::future::pending::<()>(), 1).await, None);
        assert_eq!(first_or_none_pinned(async { 7 }, 3_600_000).await, Some(7));
        // `async move` blocks spawned as tasks, each racing its own channel and a stop.
        let (stop_tx, _) = overlap::sync::broadcast::channel::<()>(1);
        let mut tasks = Vec::new();
        let mut inputs = Vec::new();
        for id in 0..4u32 {
            let (tx, mut rx) = mpsc::channel::<u32>(4);
            let mut stop = stop_tx.subscribe();
            inputs.push(tx);
            tasks.push(overlap::spawn(async move {
                let mut sum = 0;
                loop {
                    select! {
                        Some(v) = rx.recv() => sum += v * id,
                        _ = stop.recv() => return sum,
                    }
                }
            }));
        }
        for (i, tx) in inputs.iter().enumerate() {
            tx.send(i as u32 + 1).await.unwrap();
            tx.send(10).await.unwrap();
        }
        // Every value is read before the stop: the channels are drained first.
        support_until_drained(&inputs).await;
        stop_tx.send(()).unwrap();
        let mut sums = Vec::new();
        for t in tasks {
            sums.push(t.await.unwrap());
        }
        assert_eq!(sums, [0, 12, 26, 42]);
    });
}

async fn support_until_drained(inputs: &[mpsc::Sender<u32>]) {
    crate::support::until(
        || inputs.iter().all(|tx| tx.capacity() == tx.max_capacity()),
        "the tasks to read every value",
    )
    .await;
}

#[derive(Debug, PartialEq)]
struct Reply {
    code: u16,
    body: Vec<u8>,
}

#[test]
fn output_patterns_of_many_shapes() {
    block_on(async {
        let got = select! {
            (code, _) = async { (200u16, "ignored") } => code,
        };
        assert_eq!(got, 200);
        let got = select! {
            Reply { code: 500, .. } = async { Reply { code: 200, body: b"hi".to_vec() } } => "error",
            Reply { code, ref body } = async { Reply { code: 201, body: b"made".to_vec() } } => {
                assert_eq!(body, b"made");
                if code == 201 { "created" } else { "other" }
            }
        };
        assert_eq!(got, "created");
        let got = select! {
            n @ 1..=5 = async { 9u8 } => n,
            n @ 6..=10 = async { 7u8 } => n * 10,
        };
        assert_eq!(got, 70);
        let got = select! {
            Ok(0) = async { Ok::<usize, io::Error>(0) } => "eof",
            Err(_) = async { Err::<usize, io::Error>(io::ErrorKind::Other.into()) } => "err",
            else => "none",
        };
        assert!(got == "eof" || got == "err");
        let got = select! {
            Some(mut v) = async { Some(vec![3, 1, 2]) } => { v.sort_unstable(); v }
            else => Vec::new(),
        };
        assert_eq!(got, [1, 2, 3]);
        let got = select! {
            Some(ref mut s) = async { Some(String::from("a")) } => { s.push('b'); s.clone() }
            else => String::new(),
        };
        assert_eq!(got, "ab");
        let got = select! {
            _ = async { 1 } => 'x',
        };
        assert_eq!(got, 'x');
        let got = select! {
            [first, .., last] = async { [1, 2, 3, 4] } => first + last,
        };
        assert_eq!(got, 5);
        let got = select! {
            Ok(n) | Err(n) = async { Err::<u32, u32>(4) } => n,
        };
        assert_eq!(got, 4);
    });
}

#[test]
fn a_disabled_branch_is_never_polled_and_the_losers_are_dropped_before_the_handler() {
    block_on(async {
        let mut off = Watched::new(Some(1));
        let (off_polls, off_dropped) = (off.polls.clone(), off.dropped.clone());
        let slow = Watched::new(None);
        let (slow_polls, slow_dropped) = (slow.polls.clone(), slow.dropped.clone());
        let fast = Watched::new(Some(3));
        let fast_polls = fast.polls.clone();
        let enabled = false;
        let got = select! {
            n = off, if enabled => ("off", n),
            n = { slow } => ("slow", n),
            n = { fast } => {
                assert!(slow_dropped.get(), "the loser outlived the select");
                // Given by name, `off` is borrowed, not moved in as tokio's would: it
                // lives on.
                assert!(!off_dropped.get());
                ("fast", n)
            }
        };
        drop(off);
        assert!(off_dropped.get());
        assert_eq!(got, ("fast", 3));
        assert_eq!(off_polls.get(), 0, "the disabled branch was polled");
        assert_eq!(fast_polls.get(), 3);
        assert!((2..=3).contains(&slow_polls.get()));
    });
}

/// Reads `total` bytes in 1000 or more rounds of a read racing a 1 ms timer.
async fn read_racing_a_timer<R: overlap::io::AsyncRead + Unpin>(mut r: R, total: usize) -> Vec<u8> {
    let mut got = Vec::with_capacity(total);
    let (mut rounds, mut timeouts) = (0u32, 0u32);
    let mut buf = [0u8; 64];
    loop {
        rounds += 1;
        select! {
            n = r.read(&mut buf) => {
                let n = n.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            _ = time::sleep(Duration::from_millis(1)) => timeouts += 1,
        }
    }
    assert!(rounds >= 1000, "only {rounds} rounds ({timeouts} timeouts)");
    got
}

#[test]
fn cancel_safe_reads_lose_no_byte_across_1000_rounds_racing_a_timer() {
    block_on(async {
        let total = 64 * 1000;
        let expected: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
        let (tx, rx) = overlap::pipe::pipe().unwrap();
        let writer = overlap::spawn(write_numbered(tx, total));
        assert!(
            read_racing_a_timer(rx, total).await == expected,
            "the pipe lost bytes"
        );
        writer.await.unwrap();

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let writer = overlap::spawn(async move {
            write_numbered(TcpStream::connect(addr).await.unwrap(), total).await;
        });
        let (socket, _) = listener.accept().await.unwrap();
        assert!(
            read_racing_a_timer(socket, total).await == expected,
            "TCP lost bytes"
        );
        writer.await.unwrap();
    });
}
