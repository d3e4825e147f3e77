//! Framing throughput: `overlap::codec` against tokio-util's codecs (on tokio's
//! current-thread runtime), and against hand-written framing on overlap (the limit: the
//! frames encoded into one buffer, written in large writes, and counted by scanning what
//! each read brings, with no per-frame call at all).
//!
//! Run: `cargo run --release -p overlap-benches --bin codec_bench [runs]`
//!
//! Each workload sends frames over a loopback TCP connection from a writer task to a
//! reader task on the same runtime: one million 32-byte lines through `LinesCodec`, and
//! 100,000 4 KiB frames through `LengthDelimitedCodec`. The figure is wall time per frame,
//! best of the runs, contenders interleaved; ratios above 1 mean overlap is faster.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use overlap_benches::executors::Tokio;
use overlap_benches::{ns_per, print_table, Row};

const LINES: usize = 1_000_000;
const FRAMES: usize = 100_000;
const FRAME: usize = 4096;

/// The lines sent: 31 bytes of text each (32 with the newline).
fn lines() -> Vec<String> {
    (0..LINES)
        .map(|i| format!("line {i:>10} of the log file"))
        .collect()
}

fn payload() -> Vec<u8> {
    (0..FRAME).map(|i| i as u8).collect()
}

async fn overlap_pair() -> (overlap::net::TcpStream, overlap::net::TcpStream) {
    let l = overlap::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap();
    let a = overlap::net::TcpStream::connect(l.local_addr().unwrap())
        .await
        .unwrap();
    let (b, _) = l.accept().await.unwrap();
    (a, b)
}

async fn tokio_pair() -> (tokio::net::TcpStream, tokio::net::TcpStream) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = tokio::net::TcpStream::connect(l.local_addr().unwrap())
        .await
        .unwrap();
    let (b, _) = l.accept().await.unwrap();
    (a, b)
}

/// One run: a writer task feeds each of `$items` (taken by value) through a `FramedWrite` of `$codec` (each as
/// `$feed` makes it, the sink closed as a sink of `$item`), and the reader counts the frames
/// of a `FramedRead` of the same codec, each passing `$check`, to `$expect`.
macro_rules! framed_run {
    (
        $block_on:expr, $spawn:expr, $pair:expr, $($codec:ident)::+, $items:expr,
        |$it:ident| $feed:expr, $item:ty, |$frame:ident| $check:expr, $expect:expr
    ) => {{
        use $($codec)::+ as Codec;
        let items = $items;
        $block_on(async move {
            let (a, b) = $pair.await;
            let start = Instant::now();
            let writer = $spawn(async move {
                let mut sink = FramedWrite::new(a, Codec::new());
                for $it in items {
                    sink.feed($feed).await.unwrap();
                }
                SinkExt::<$item>::close(&mut sink).await.unwrap();
            });
            let mut stream = FramedRead::new(b, Codec::new());
            let mut n = 0;
            while let Some($frame) = stream.next().await {
                let $frame = $frame.unwrap();
                assert!($check);
                n += 1;
            }
            assert_eq!(n, $expect);
            writer.await.unwrap();
            start.elapsed()
        })
    }};
}

fn overlap_lines(lines: &[String]) -> Duration {
    use overlap::codec::{FramedRead, FramedWrite};
    framed_run!(
        overlap::block_on,
        overlap::spawn,
        overlap_pair(),
        overlap::codec::LinesCodec,
        lines.to_vec(),
        |l| l.as_str(),
        &str,
        |line| line.starts_with("line"),
        LINES
    )
}

fn tokio_lines(lines: &[String]) -> Duration {
    use tokio_util::codec::{FramedRead, FramedWrite};
    framed_run!(
        |f| Tokio::new().0.block_on(f),
        tokio::spawn,
        tokio_pair(),
        tokio_util::codec::LinesCodec,
        lines.to_vec(),
        |l| l.as_str(),
        &str,
        |line| line.starts_with("line"),
        LINES
    )
}

/// The limit for lines: one buffer of every line written in 64 KiB writes; the reader
/// counts newlines in each read.
fn raw_lines(lines: &[String]) -> Duration {
    use overlap::io::{AsyncReadExt, AsyncWriteExt};
    let wire: Vec<u8> = lines
        .iter()
        .flat_map(|l| [l.as_bytes(), b"\n"].concat())
        .collect();
    overlap::block_on(async move {
        let (mut a, mut b) = overlap_pair().await;
        let start = Instant::now();
        let writer = overlap::spawn(async move {
            for chunk in wire.chunks(64 * 1024) {
                a.write_all(chunk).await.unwrap();
            }
        });
        let mut buf = vec![0u8; 64 * 1024];
        let mut n = 0;
        loop {
            let got = b.read(&mut buf).await.unwrap();
            if got == 0 {
                break;
            }
            n += buf[..got].iter().filter(|&&c| c == b'\n').count();
        }
        assert_eq!(n, LINES);
        writer.await.unwrap();
        start.elapsed()
    })
}

fn overlap_frames(payload: &[u8]) -> Duration {
    use overlap::codec::{FramedRead, FramedWrite};
    framed_run!(
        overlap::block_on,
        overlap::spawn,
        overlap_pair(),
        overlap::codec::LengthDelimitedCodec,
        std::iter::repeat_n(std::rc::Rc::<[u8]>::from(payload), FRAMES),
        |p| &p[..],
        &[u8],
        |frame| frame.len() == FRAME,
        FRAMES
    )
}

fn tokio_frames(payload: &[u8]) -> Duration {
    use tokio_util::codec::{FramedRead, FramedWrite};
    let payload = bytes::Bytes::copy_from_slice(payload);
    framed_run!(
        |f| Tokio::new().0.block_on(f),
        tokio::spawn,
        tokio_pair(),
        tokio_util::codec::LengthDelimitedCodec,
        std::iter::repeat_n(payload, FRAMES),
        |p| p,
        bytes::Bytes,
        |frame| frame.len() == FRAME,
        FRAMES
    )
}

/// The limit for frames: every frame encoded into one buffer, written in 64 KiB writes;
/// the reader walks the length prefixes across its reads without copying a frame.
fn raw_frames(payload: &[u8]) -> Duration {
    use overlap::io::{AsyncReadExt, AsyncWriteExt};
    let mut wire = Vec::with_capacity(FRAMES * (FRAME + 4));
    for _ in 0..FRAMES {
        wire.extend_from_slice(&(FRAME as u32).to_be_bytes());
        wire.extend_from_slice(payload);
    }
    overlap::block_on(async move {
        let (mut a, mut b) = overlap_pair().await;
        let start = Instant::now();
        let writer = overlap::spawn(async move {
            for chunk in wire.chunks(64 * 1024) {
                a.write_all(chunk).await.unwrap();
            }
        });
        let mut buf = vec![0u8; 64 * 1024];
        // Bytes still to skip of the current frame's body, and a header split across reads.
        let (mut skip, mut header, mut have) = (0usize, [0u8; 4], 0usize);
        let mut n = 0;
        loop {
            let got = b.read(&mut buf).await.unwrap();
            if got == 0 {
                break;
            }
            let mut at = 0;
            while at < got {
                if skip > 0 {
                    let take = skip.min(got - at);
                    skip -= take;
                    at += take;
                    continue;
                }
                let take = (4 - have).min(got - at);
                header[have..have + take].copy_from_slice(&buf[at..at + take]);
                have += take;
                at += take;
                if have == 4 {
                    skip = u32::from_be_bytes(header) as usize;
                    have = 0;
                    n += 1;
                }
            }
        }
        assert_eq!(n, FRAMES);
        writer.await.unwrap();
        start.elapsed()
    })
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .map_or(5, |s| s.parse().expect("runs: a number"));
    let (lines, payload) = (lines(), payload());
    let mut best = [[Duration::MAX; 3]; 2];
    for _ in 0..runs {
        best[0][0] = best[0][0].min(overlap_lines(&lines));
        best[0][1] = best[0][1].min(tokio_lines(&lines));
        best[0][2] = best[0][2].min(raw_lines(&lines));
        best[1][0] = best[1][0].min(overlap_frames(&payload));
        best[1][1] = best[1][1].min(tokio_frames(&payload));
        best[1][2] = best[1][2].min(raw_frames(&payload));
    }
    let rows = vec![
        Row {
            name: "LinesCodec, 32-byte lines".into(),
            unit: "ns/frame",
            values: best[0].iter().map(|d| ns_per(*d, LINES as u64)).collect(),
        },
        Row {
            name: "LengthDelimitedCodec, 4 KiB".into(),
            unit: "ns/frame",
            values: best[1].iter().map(|d| ns_per(*d, FRAMES as u64)).collect(),
        },
    ];
    println!(
        "overlap codec_bench: best of {runs} runs, same process; tokio-util/overlap > 1 means \
         overlap is faster, hand-framed/overlap is how near overlap is to the limit (< 1)"
    );
    print_table(&["overlap", "tokio-util", "hand-framed"], &rows);
}
