//! async-io's `async.rs` shares one `Async<TcpStream>` between tasks through an `Arc` and
//! reads and writes it from all of them (`tcp_duplex`). overlap's streams are shared the
//! same way through `&TcpStream` (and `&UnixStream`), and any number of tasks may wait on
//! one direction: these tests put several readers, or several writers, on one stream and
//! check that every byte lands once and every task hears the end.

mod support;

use std::rc::Rc;
use std::time::Duration;

use overlap::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use overlap::net::{TcpStream, UnixStream};
use support::{settle, tcp_pair, within};

const HANG: Duration = Duration::from_secs(10);
const READERS: usize = 4;
const CHUNK: usize = 1000;
const CHUNKS: usize = 2000;

/// Reads until EOF; the bytes read (each chunk's bytes sum to a known value).
async fn read_to_eof<S>(s: Rc<S>) -> (usize, u64)
where
    for<'a> &'a S: AsyncRead,
{
    let mut buf = vec![0u8; 700];
    let (mut n, mut sum) = (0, 0u64);
    loop {
        match (&mut &*s).read(&mut buf).await.unwrap() {
            0 => return (n, sum),
            k => {
                n += k;
                sum += buf[..k].iter().map(|&b| u64::from(b)).sum::<u64>();
            }
        }
    }
}

fn chunk(i: usize) -> Vec<u8> {
    vec![(i % 251) as u8; CHUNK]
}

fn expected_sum() -> u64 {
    (0..CHUNKS).map(|i| (i % 251) as u64 * CHUNK as u64).sum()
}

async fn many_readers_one_writer<S: 'static>(reader: S, mut writer: impl AsyncWrite + Unpin)
where
    for<'a> &'a S: AsyncRead,
{
    let reader = Rc::new(reader);
    let tasks: Vec<_> = (0..READERS)
        .map(|_| overlap::spawn(read_to_eof(reader.clone())))
        .collect();
    settle().await;
    for i in 0..CHUNKS {
        writer.write_all(&chunk(i)).await.unwrap();
        if i % 97 == 0 {
            overlap::yield_now().await;
        }
    }
    writer.close().await.unwrap();
    let (mut n, mut sum) = (0, 0);
    for t in tasks {
        let (k, s) = within(HANG, t, "a reader never heard the end")
            .await
            .unwrap();
        n += k;
        sum += s;
    }
    assert_eq!(n, CHUNK * CHUNKS);
    assert_eq!(sum, expected_sum());
}

// async-io: async.rs tcp_duplex, with several readers on one side
#[overlap::test]
async fn several_readers_on_one_tcp_stream_share_the_bytes_and_all_see_eof() {
    let (a, b) = tcp_pair().await;
    many_readers_one_writer(a, b).await;
}

// async-io: async.rs tcp_duplex, on a Unix stream
#[overlap::test]
async fn several_readers_on_one_unix_stream_share_the_bytes_and_all_see_eof() {
    let (a, b) = UnixStream::pair().unwrap();
    many_readers_one_writer(a, b).await;
}

/// `writers` tasks each write `CHUNKS / writers` chunks through one shared stream while the
/// reader only starts once all of them are blocked on a full buffer.
async fn many_writers_one_reader<S: 'static>(writer: S, mut reader: impl AsyncRead + Unpin)
where
    for<'a> &'a S: AsyncWrite,
{
    const WRITERS: usize = 4;
    let writer = Rc::new(writer);
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let writer = writer.clone();
            overlap::spawn(async move {
                for i in (w..CHUNKS).step_by(WRITERS) {
                    (&mut &*writer).write_all(&chunk(i)).await.unwrap();
                }
            })
        })
        .collect();
    settle().await;
    let mut got = 0usize;
    let mut sum = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    let mut tasks = tasks.into_iter().peekable();
    while got < CHUNK * CHUNKS {
        let n = within(HANG, reader.read(&mut buf), "the writers stalled")
            .await
            .unwrap();
        assert_ne!(n, 0, "EOF before every byte came");
        got += n;
        sum += buf[..n].iter().map(|&b| u64::from(b)).sum::<u64>();
        while tasks.peek().is_some_and(|t| t.is_finished()) {
            tasks.next().unwrap().await.unwrap();
        }
    }
    for t in tasks {
        within(HANG, t, "a writer never finished").await.unwrap();
    }
    assert_eq!(sum, expected_sum());
    // The last handle gone, the stream closes: the reader sees the end.
    drop(writer);
    let end = within(HANG, reader.read(&mut buf), "no EOF").await;
    assert_eq!(end.unwrap(), 0);
}

// async-io: async.rs tcp_duplex, with several writers blocked on one side
#[overlap::test]
async fn several_writers_blocked_on_one_tcp_stream_all_finish() {
    let (a, b): (TcpStream, TcpStream) = tcp_pair().await;
    many_writers_one_reader(a, b).await;
}

// async-io: async.rs tcp_duplex, with several writers on a Unix stream
#[overlap::test]
async fn several_writers_blocked_on_one_unix_stream_all_finish() {
    let (a, b) = UnixStream::pair().unwrap();
    many_writers_one_reader(a, b).await;
}
