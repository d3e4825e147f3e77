//! A user's line protocol, sketched as one would for tokio (`BufReader::lines()`, a
//! `timeout` around each request's work, an idle timer reset by each line, `??` to turn
//! a timeout into an `io::Error`) and then written for overlap. A client drives requests,
//! one slower than its budget, then goes idle, and checks every answer and the idle close.
//! The clock is paused (it moves only when every task waits), so a loaded machine's stalls
//! cannot fire a timer early.

mod support;

use std::time::Duration;

use overlap::io::{self, AsyncBufReadExt, AsyncWriteExt, BufReader};
use overlap::net::{TcpListener, TcpStream};
use overlap::stream::StreamExt;
use overlap::time::{sleep, timeout, Instant};
use support::within;

const HANG: Duration = Duration::from_secs(10);
/// Each request's budget; `SLEEP n` sleeps n ms.
const BUDGET: Duration = Duration::from_secs(2);

/// Answers one request line, or fails for a bad one.
async fn answer(line: &str) -> io::Result<String> {
    let mut words = line.split_whitespace();
    match (words.next(), words.next()) {
        (Some("ECHO"), _) => Ok(line["ECHO".len()..].trim_start().to_string()),
        (Some("ADD"), Some(_)) => {
            let sum: i64 = line[3..]
                .split_whitespace()
                .map(|w| w.parse::<i64>())
                .sum::<Result<i64, _>>()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            Ok(sum.to_string())
        }
        (Some("SLEEP"), Some(ms)) => {
            let ms = ms
                .parse()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            sleep(Duration::from_millis(ms)).await;
            Ok("slept".into())
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "unknown command",
        )),
    }
}

/// One connection: each line answered within `BUDGET`; a connection idle for `idle` is
/// told so and closed. Returns how many requests it answered.
async fn serve(stream: TcpStream, idle: Duration) -> io::Result<u32> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut answered = 0;
    loop {
        // tokio: `timeout(idle, lines.next_line()).await` is a
        // `Result<io::Result<Option<String>>, Elapsed>`.
        let line = match timeout(idle, lines.next()).await {
            Ok(Some(line)) => line?,
            Ok(None) => return Ok(answered),
            Err(_) => {
                write.write_all(b"IDLE\n").await?;
                write.close().await?;
                return Ok(answered);
            }
        };
        let reply = match timeout(BUDGET, answer(&line)).await {
            Ok(Ok(reply)) => format!("OK {reply}"),
            Ok(Err(e)) => format!("ERR {e}"),
            Err(elapsed) => format!("TIMEOUT {elapsed}"),
        };
        write.write_all(format!("{reply}\n").as_bytes()).await?;
        answered += 1;
    }
}

/// The client side: one request, one line back, both under `HANG`, with `??` turning the
/// timeout into an `io::Error` as in tokio.
async fn request(
    write: &mut overlap::net::OwnedWriteHalf,
    lines: &mut (impl StreamExt<Item = io::Result<String>> + Unpin),
    req: &str,
) -> io::Result<String> {
    write.write_all(format!("{req}\n").as_bytes()).await?;
    let line = timeout(HANG, lines.next()).await?;
    line.transpose()?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "server hung up"))
}

#[overlap::test(start_paused = true)]
async fn requests_are_answered_within_their_budget_and_idle_clients_are_closed() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let idle = Duration::from_secs(1);
    let server = overlap::spawn(async move {
        let (stream, _) = listener.accept().await?;
        serve(stream, idle).await
    });

    let (read, mut write) = TcpStream::connect(addr).await.unwrap().into_split();
    let mut lines = BufReader::new(read).lines();
    let cases = [
        ("ECHO hello  world", "OK hello  world"),
        ("ADD 1 2 39", "OK 42"),
        ("ADD 1 x", "ERR invalid digit found in string"),
        ("SLEEP 1", "OK slept"),
        ("SLEEP 60000", "TIMEOUT deadline has elapsed"),
        ("NOPE", "ERR unknown command"),
        ("", "ERR unknown command"),
    ];
    for (req, want) in cases {
        assert_eq!(
            request(&mut write, &mut lines, req).await.unwrap(),
            want,
            "{req}"
        );
    }
    // Silence: the server says so, then hangs up.
    assert_eq!(
        within(HANG, lines.next(), "idle notice")
            .await
            .unwrap()
            .unwrap(),
        "IDLE"
    );
    assert!(within(HANG, lines.next(), "eof").await.is_none());
    assert_eq!(server.await.unwrap().unwrap(), cases.len() as u32);
}

/// The idle timer as tokio users write it: one pinned `Sleep`, re-armed by each line with
/// `reset`, raced against the lines in `select!`.
#[overlap::test(start_paused = true)]
async fn an_idle_timer_reset_by_each_line_closes_only_a_quiet_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let idle = Duration::from_secs(1);
    let server = overlap::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines().fuse();
        let timer = sleep(idle);
        overlap::pin_mut!(timer);
        let mut seen = 0u32;
        loop {
            overlap::select! {
                _ = timer => break,
                line = lines.next() => match line {
                    Some(_) => {
                        seen += 1;
                        timer.as_mut().reset(Instant::now() + idle);
                    }
                    None => return seen,
                },
            }
        }
        write
            .write_all(format!("IDLE after {seen}\n").as_bytes())
            .await
            .unwrap();
        seen
    });

    let mut client = TcpStream::connect(addr).await.unwrap();
    // Lines at a quarter of the idle time keep it open for twice its length.
    for _ in 0..8 {
        client.write_all(b"ping\n").await.unwrap();
        sleep(idle / 4).await;
    }
    let mut lines = BufReader::new(client).lines();
    let notice = within(HANG, lines.next(), "idle notice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(notice, "IDLE after 8");
    assert_eq!(server.await.unwrap(), 8);
}
