//! `overlap::either::Either`, tokio-util's `Either` at tokio-util's path: one type for a TCP
//! or a Unix stream, read, written, buffered, closed and reached inside; a stream and a
//! future of either of two kinds.

mod support;

use std::time::Duration;

use overlap::either::Either;
use overlap::future::{self, FutureExt};
use overlap::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use overlap::net::{TcpStream, UnixStream};
use overlap::stream::{self, StreamExt};
use support::{tcp_pair, within};

const HANG: Duration = Duration::from_secs(10);

type Upstream = Either<TcpStream, UnixStream>;

/// Sends `req` over `up`, closes its write side, reads the peer's answer to the end.
async fn exchange(up: &mut Upstream, req: &[u8]) -> Vec<u8> {
    up.write_all(req).await.unwrap();
    up.flush().await.unwrap();
    up.close().await.unwrap();
    let mut got = Vec::new();
    up.read_to_end(&mut got).await.unwrap();
    got
}

#[overlap::test]
async fn either_stream_reads_writes_and_closes_both_kinds() {
    within(
        HANG,
        async {
            let (tcp, mut tcp_peer) = tcp_pair().await;
            let (unix, mut unix_peer) = UnixStream::pair().unwrap();
            let mut ups: [Upstream; 2] = [Either::Left(tcp), Either::Right(unix)];
            // The peers echo what they get, upper-cased, until end of file.
            let echo_tcp = overlap::spawn(async move {
                let mut got = Vec::new();
                tcp_peer.read_to_end(&mut got).await.unwrap();
                tcp_peer.write_all(&got.to_ascii_uppercase()).await.unwrap();
            });
            let echo_unix = overlap::spawn(async move {
                let mut got = Vec::new();
                unix_peer.read_to_end(&mut got).await.unwrap();
                unix_peer
                    .write_all(&got.to_ascii_uppercase())
                    .await
                    .unwrap();
            });
            assert_eq!(exchange(&mut ups[0], b"over tcp").await, b"OVER TCP");
            assert_eq!(exchange(&mut ups[1], b"over unix").await, b"OVER UNIX");
            echo_tcp.await.unwrap();
            echo_unix.await.unwrap();
            // What the traits do not cover, reached by a match: `try_read` at end of file.
            for up in &ups {
                let mut one = [0u8; 1];
                let n = match up {
                    Either::Left(tcp) => tcp.try_read(&mut one).unwrap(),
                    Either::Right(unix) => unix.try_read(&mut one).unwrap(),
                };
                assert_eq!(n, 0);
            }
        },
        "either streams",
    )
    .await;
}

#[overlap::test]
async fn either_is_a_buffered_reader_a_stream_and_a_future() {
    within(
        HANG,
        async {
            let (unix, mut peer) = UnixStream::pair().unwrap();
            let up: Upstream = Either::Right(unix);
            let mut lines = BufReader::new(up).lines();
            peer.write_all(b"one\ntwo\n").await.unwrap();
            drop(peer);
            let got: Vec<String> = (&mut lines).map(Result::unwrap).collect().await;
            assert_eq!(got, ["one", "two"]);

            let pick = |left: bool| {
                if left {
                    Either::Left(stream::iter([1, 2]))
                } else {
                    Either::Right(stream::repeat(7).take(3))
                }
            };
            assert_eq!(pick(true).collect::<Vec<_>>().await, [1, 2]);
            assert_eq!(pick(false).collect::<Vec<_>>().await, [7, 7, 7]);

            let fut = |left: bool| {
                if left {
                    Either::Left(future::ready(1))
                } else {
                    Either::Right(
                        async {
                            overlap::time::sleep(Duration::from_millis(1)).await;
                            2
                        }
                        .boxed_local(),
                    )
                }
            };
            assert_eq!(fut(true).await + fut(false).await, 3);
        },
        "either adapters",
    )
    .await;
}
