//! The `select!` loop pattern, randomised: a consumer races each read, `recv` or `accept`
//! against a branch that wins after a random few turns of the event loop (0 turns: polled
//! once and dropped), and drops the loser; a producer task feeds it meanwhile, in random
//! chunks with random pauses. Whatever the interleaving, everything sent must come out
//! once, in order, and the loop must never stall. Seeds are fixed so a failure replays.

mod support;

use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use overlap::future::{select, Either};
use overlap::io::{AsyncRead, AsyncReadExt, AsyncReadIntExt, AsyncWrite, AsyncWriteExt, Unblock};
use overlap::net::{TcpListener, TcpStream, UnixStream};
use overlap::sync::{mpsc, Semaphore};
use support::{pattern_seeded, tcp_pair, within, Rng};

const HANG: Duration = Duration::from_secs(10);
const LEN: usize = 200_000;

/// Races `fut` against a branch that is ready after `turns % 4` yields to the loop: its
/// output if it won, `None` if it lost (and was dropped). An odd `turns / 4` looks at the
/// other branch first, so a future woken with its result (a permit handed over) may still
/// lose, as in a `select!` that picks its first branch at random.
async fn race<F: Future>(fut: F, turns: usize) -> Option<F::Output> {
    let lose = pin!(async {
        for _ in 0..turns % 4 {
            overlap::yield_now().await;
        }
    });
    if turns / 4 % 2 == 1 {
        return match select(lose, pin!(fut)).await {
            Either::Left(((), _)) => None,
            Either::Right((out, _)) => Some(out),
        };
    }
    match select(pin!(fut), lose).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(((), _)) => None,
    }
}

/// Writes `data` to `to` in random chunks with random pauses, then closes it.
async fn produce(mut to: impl AsyncWrite + Unpin, data: Rc<Vec<u8>>, seed: u64) {
    let mut rng = Rng(seed);
    let mut at = 0;
    while at < data.len() {
        let end = (at + 1 + rng.below(8000)).min(data.len());
        to.write_all(&data[at..end]).await.unwrap();
        at = end;
        for _ in 0..rng.below(3) {
            overlap::yield_now().await;
        }
    }
    to.close().await.unwrap();
}

/// Reads `from` to its end through reads that often lose a race and are dropped.
async fn consume(mut from: impl AsyncRead + Unpin, seed: u64) -> (Vec<u8>, usize) {
    let mut rng = Rng(seed);
    let (mut got, mut dropped) = (Vec::new(), 0);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let want = 1 + rng.below(buf.len());
        match race(from.read(&mut buf[..want]), rng.below(8)).await {
            Some(Ok(0)) => return (got, dropped),
            Some(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Some(Err(e)) => panic!("read failed after {} bytes: {e}", got.len()),
            None => dropped += 1,
        }
    }
}

/// Feeds `LEN` bytes from `to` to `from` for each seed, checking what comes out.
async fn stream_case<W, R>(pair: impl Fn() -> (W, R), what: &str)
where
    W: AsyncWrite + Unpin + 'static,
    R: AsyncRead + Unpin,
{
    for seed in 1..=4u64 {
        let data = Rc::new(pattern_seeded(LEN, seed as u32));
        let (to, from) = pair();
        let writer = overlap::spawn(produce(to, data.clone(), seed));
        let (got, dropped) = within(HANG, consume(from, seed * 7919), what).await;
        writer.await.unwrap();
        assert!(dropped > 0, "{what}: no read was ever dropped");
        assert!(
            got == *data,
            "{what}, seed {seed}: {} bytes out of {LEN}, first difference at {:?}",
            got.len(),
            got.iter().zip(data.iter()).position(|(a, b)| a != b)
        );
    }
}

#[overlap::test]
async fn stream_reads_dropped_at_random_lose_no_byte() {
    let (a, b) = tcp_pair().await;
    let tcp = std::cell::RefCell::new(Some((a, b)));
    // One TCP pair (the first seed); the others use fresh ones made below.
    stream_case(
        || match tcp.borrow_mut().take() {
            Some((a, b)) => (a, b),
            None => {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let a = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
                let b = l.accept().unwrap().0;
                a.set_nonblocking(true).unwrap();
                b.set_nonblocking(true).unwrap();
                (
                    TcpStream::from_std(a).unwrap(),
                    TcpStream::from_std(b).unwrap(),
                )
            }
        },
        "tcp",
    )
    .await;
    stream_case(|| UnixStream::pair().unwrap(), "unix").await;
    stream_case(|| overlap::pipe::pipe().unwrap(), "pipe").await;
    stream_case(|| overlap::io::duplex(4096), "duplex").await;
    stream_case(
        || {
            let (near, far) = std::os::unix::net::UnixStream::pair().unwrap();
            (UnixStream::from_std(near).unwrap(), Unblock::new(far))
        },
        "unblock",
    )
    .await;
}

#[overlap::test]
async fn file_reads_dropped_at_random_lose_no_byte() {
    let dir = support::TempDir::new("cancel-loop-file");
    for seed in 1..=4u64 {
        let data = pattern_seeded(3 << 20, seed as u32);
        let path = dir.join("data");
        std::fs::write(&path, &data).unwrap();
        let file = overlap::fs::File::open(&path).await.unwrap();
        let (got, dropped) = within(HANG, consume(file, seed), "file").await;
        assert!(dropped > 0, "no read was ever dropped");
        assert!(
            got == data,
            "seed {seed}: {} bytes out of {}",
            got.len(),
            data.len()
        );
    }
}

#[overlap::test]
async fn channel_receives_dropped_at_random_lose_no_message() {
    for seed in 1..=4u64 {
        let (tx, mut rx) = mpsc::channel::<u32>(8);
        let writer = overlap::spawn(async move {
            let mut rng = Rng(seed);
            for i in 0..5000 {
                tx.send(i).await.unwrap();
                for _ in 0..rng.below(3) {
                    overlap::yield_now().await;
                }
            }
        });
        let mut rng = Rng(seed * 31);
        let (mut next, mut dropped) = (0, 0);
        let reader = async {
            loop {
                match race(rx.recv(), rng.below(8)).await {
                    Some(Some(i)) => {
                        assert_eq!(i, next, "seed {seed}: out of order or lost");
                        next += 1;
                    }
                    Some(None) => break,
                    None => dropped += 1,
                }
            }
        };
        within(HANG, reader, "mpsc").await;
        writer.await.unwrap();
        assert_eq!(next, 5000);
        assert!(dropped > 0);
    }
}

#[overlap::test]
async fn accepts_dropped_at_random_lose_no_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    const N: usize = 200;
    let connector = overlap::spawn(async move {
        let mut rng = Rng(99);
        let mut kept = Vec::new();
        for i in 0..N {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(&(i as u32).to_be_bytes()).await.unwrap();
            kept.push(s);
            for _ in 0..rng.below(3) {
                overlap::yield_now().await;
            }
        }
        kept
    });
    let mut rng = Rng(7);
    let (mut seen, mut dropped) = (Vec::new(), 0);
    let acceptor = async {
        while seen.len() < N {
            match race(listener.accept(), rng.below(8)).await {
                Some(Ok((mut s, _))) => seen.push(s.read_u32().await.unwrap()),
                Some(Err(e)) => panic!("{e}"),
                None => dropped += 1,
            }
        }
    };
    within(HANG, acceptor, "accept").await;
    drop(connector.await.unwrap());
    seen.sort();
    assert_eq!(seen, (0..N as u32).collect::<Vec<_>>());
    assert!(dropped > 0);
}

#[overlap::test]
async fn acquires_dropped_at_random_lose_no_permit() {
    let sem = Rc::new(Semaphore::new(3));
    let mut tasks = Vec::new();
    for seed in 1..=8u64 {
        let sem = sem.clone();
        tasks.push(overlap::spawn(async move {
            let mut rng = Rng(seed);
            let mut done = 0;
            while done < 200 {
                let n = 1 + rng.below(3) as u32;
                if let Some(permit) = race(sem.acquire_many(n), rng.below(8)).await {
                    let _permit = permit.unwrap();
                    assert!(sem.available_permits() <= 3 - n as usize);
                    for _ in 0..rng.below(3) {
                        overlap::yield_now().await;
                    }
                    done += 1;
                }
            }
        }));
    }
    for t in tasks {
        within(HANG, t, "a task starved").await.unwrap();
    }
    assert_eq!(sem.available_permits(), 3, "permits lost or made up");
}
