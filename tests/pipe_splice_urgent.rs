//! `splice` cannot pass a TCP urgent mark (the peer sent `MSG_OOB` data): it says `EAGAIN`,
//! or 0 once the peer's FIN is in, with data still queued behind the mark. overlap steps
//! over the mark with a `recv`, so the data behind it is forwarded, as a plain read would
//! return it (the urgent byte itself is out of band, not part of the stream).

mod support;

use std::time::Duration;

use overlap::io::AsyncReadExt;
use overlap::net::{TcpListener, TcpStream};
use overlap::pipe::{pipe, splice_copy};
use support::{conn_with_urgent_mark, within};

const HANG: Duration = Duration::from_secs(10);

/// A connection whose peer has sent "ab", one urgent byte and "cd"; returns (peer, ours).
async fn urgent_conn() -> (std::net::TcpStream, TcpStream) {
    conn_with_urgent_mark(b"ab", b"cd").await
}

#[test]
fn splice_from_moves_the_data_behind_an_urgent_mark() {
    overlap::block_on(async {
        let (_peer, conn) = urgent_conn().await;
        let (mut tx, mut rx) = pipe().unwrap();
        let mut moved = 0;
        while moved < 4 {
            let n = within(
                HANG,
                tx.splice_from(&conn, 1024),
                "splice_from stuck at the mark",
            )
            .await
            .unwrap();
            assert!(n > 0, "end of file reported with data queued");
            moved += n;
        }
        let mut got = [0u8; 4];
        rx.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"abcd");
    });
}

#[test]
fn splice_copy_forwards_past_an_urgent_mark_with_and_without_the_peers_fin() {
    overlap::block_on(async {
        for fin in [false, true] {
            let (peer, proxy_in) = urgent_conn().await;
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let proxy_out = TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let (mut server, _) = listener.accept().await.unwrap();
            if fin {
                peer.shutdown(std::net::Shutdown::Write).unwrap();
            }
            let proxy = overlap::spawn(async move { splice_copy(&proxy_in, &proxy_out).await });
            let mut got = [0u8; 4];
            within(
                HANG,
                server.read_exact(&mut got),
                "the data behind the mark never came",
            )
            .await
            .unwrap();
            assert_eq!(&got, b"abcd", "fin: {fin}");
            peer.shutdown(std::net::Shutdown::Write).ok();
            let n = within(HANG, proxy, "the copy did not end").await.unwrap();
            assert_eq!(n.unwrap(), 4, "fin: {fin}");
        }
    });
}
