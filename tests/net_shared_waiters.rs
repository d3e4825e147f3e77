//! Several tasks waiting on one direction of one socket (shared through an `Rc`): each is
//! woken by the next edge, and one that gives up (a `peek` cancelled by a timeout) does not
//! strand another.

use std::rc::Rc;
use std::time::Duration;

use overlap::net::{TcpListener, TcpStream, UdpSocket};
use overlap::time::{sleep, timeout};

/// A hang guard: every waiter should wake at once.
const HANG: Duration = Duration::from_secs(20);

#[overlap::test]
async fn two_readers_on_one_udp_socket_both_get_a_datagram() {
    let socket = Rc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let to = socket.local_addr().unwrap();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let socket = socket.clone();
            overlap::spawn(async move {
                let mut buf = [0u8; 16];
                let (n, _) = socket.recv_from(&mut buf).await.unwrap();
                buf[..n].to_vec()
            })
        })
        .collect();
    sleep(Duration::from_millis(20)).await; // both wait
    let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sender.send_to(b"1", to).await.unwrap();
    sleep(Duration::from_millis(20)).await;
    sender.send_to(b"2", to).await.unwrap();
    let mut got = Vec::new();
    for reader in readers {
        got.push(
            timeout(HANG, reader)
                .await
                .expect("a reader never woke")
                .unwrap(),
        );
    }
    got.sort();
    assert_eq!(got, [b"1".to_vec(), b"2".to_vec()]);
}

#[overlap::test]
async fn a_cancelled_peek_does_not_strand_the_reader() {
    let socket = Rc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let to = socket.local_addr().unwrap();
    let reader = overlap::spawn({
        let socket = socket.clone();
        async move {
            let mut buf = [0u8; 8];
            let (n, _) = socket.recv_from(&mut buf).await.unwrap();
            buf[..n].to_vec()
        }
    });
    sleep(Duration::from_millis(10)).await; // the reader waits
    let mut buf = [0u8; 8];
    assert!(
        timeout(Duration::from_millis(10), socket.peek_from(&mut buf))
            .await
            .is_err()
    );
    let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sender.send_to(b"x", to).await.unwrap();
    let got = timeout(HANG, reader)
        .await
        .expect("the reader was stranded with a datagram queued")
        .unwrap();
    assert_eq!(got, b"x");
}

#[overlap::test]
async fn several_acceptors_on_one_listener_each_get_a_connection() {
    let listener = Rc::new(TcpListener::bind("127.0.0.1:0").await.unwrap());
    let addr = listener.local_addr().unwrap();
    let acceptors: Vec<_> = (0..3)
        .map(|_| {
            let listener = listener.clone();
            overlap::spawn(async move { listener.accept().await.unwrap().1 })
        })
        .collect();
    sleep(Duration::from_millis(20)).await; // all wait
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(TcpStream::connect(addr).await.unwrap());
        sleep(Duration::from_millis(5)).await;
    }
    for acceptor in acceptors {
        timeout(HANG, acceptor)
            .await
            .expect("an acceptor never woke")
            .unwrap();
    }
}

/// More poll-function waiters (sharing the fd's per-direction slot, unlike `accept().await`,
/// whose wait owns its entry) than the slot keeps (1,025): the ones set aside wait for the
/// loop's next event instead of waking one another, so an idle listener costs few task
/// polls, and every acceptor is still served.
#[overlap::test]
async fn more_acceptors_than_the_slot_keeps_do_not_spin() {
    const N: usize = 1040;
    let listener = Rc::new(TcpListener::bind("127.0.0.1:0").await.unwrap());
    let addr = listener.local_addr().unwrap();
    let acceptors: Vec<_> = (0..N)
        .map(|_| {
            let listener = listener.clone();
            overlap::spawn(async move {
                std::future::poll_fn(|cx| listener.poll_accept(cx))
                    .await
                    .unwrap()
                    .1
            })
        })
        .collect();
    // A yield from the `block_on` future waits behind every ready task: all have polled.
    overlap::yield_now().await;
    let before = overlap::metrics().task_polls;
    sleep(Duration::from_millis(200)).await;
    let polls = overlap::metrics().task_polls - before;
    // This task's own sleep, and a round of the 15 set aside per turn that blocked.
    assert!(
        polls < 200,
        "{polls} task polls while the listener was idle"
    );
    let mut clients = Vec::new();
    for _ in 0..N {
        clients.push(TcpStream::connect(addr).await.unwrap());
    }
    for acceptor in acceptors {
        timeout(HANG, acceptor)
            .await
            .expect("an acceptor never woke")
            .unwrap();
    }
}
