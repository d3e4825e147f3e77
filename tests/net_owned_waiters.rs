//! Waits made by I/O `async fn`s own their entry in the fd's waiter list: any number of
//! tasks may wait on one fd, and a wait that was cancelled leaves nothing to wake.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use overlap::net::{TcpListener, TcpStream, UdpSocket};
use overlap::time::{sleep, timeout};

/// A hang guard: every waiter should wake at once.
const HANG: Duration = Duration::from_secs(20);

/// Counts the polls of the future it wraps.
struct CountPolls<F> {
    inner: Pin<Box<F>>,
    polls: Rc<Cell<u32>>,
}

impl<F: Future> Future for CountPolls<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.set(self.polls.get() + 1);
        self.inner.as_mut().poll(cx)
    }
}

/// Far more acceptors than the shared per-direction list kept (65) when `accept` used it,
/// and than its overflow then (about 1,090, past which they woke one another for ever):
/// the idle listener costs no task polls, and every connection is accepted.
#[overlap::test]
async fn two_thousand_acceptors_on_an_idle_listener_sleep() {
    const N: usize = 2000;
    let listener = Rc::new(TcpListener::bind("127.0.0.1:0").await.unwrap());
    let addr = listener.local_addr().unwrap();
    let acceptors: Vec<_> = (0..N)
        .map(|_| {
            let listener = listener.clone();
            overlap::spawn(async move { listener.accept().await.unwrap().0 })
        })
        .collect();
    // A yield from the `block_on` future waits behind every ready task: all have polled.
    overlap::yield_now().await;
    let before = overlap::metrics().task_polls;
    sleep(Duration::from_millis(200)).await;
    let polls = overlap::metrics().task_polls - before;
    // Nothing (this test's own future is not a task).
    assert!(polls < 10, "{polls} task polls while the listener was idle");

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

/// A `recv_from` cancelled by a timeout takes its waker with it: the datagram that arrives
/// later does not wake the task, which by then waits for something else.
#[overlap::test]
async fn a_cancelled_recv_leaves_no_waker_behind() {
    let socket = Rc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let to = socket.local_addr().unwrap();
    let (tx, rx) = overlap::sync::oneshot::channel::<()>();
    let polls = Rc::new(Cell::new(0));
    let parked = Rc::new(Cell::new(false));
    let task = overlap::spawn(CountPolls {
        inner: Box::pin({
            let (socket, parked) = (socket.clone(), parked.clone());
            async move {
                let mut buf = [0u8; 8];
                let waited = timeout(Duration::from_millis(5), socket.recv_from(&mut buf)).await;
                assert!(waited.is_err(), "nothing was sent yet");
                parked.set(true);
                rx.await.unwrap();
            }
        }),
        polls: polls.clone(),
    });
    while !parked.get() {
        sleep(Duration::from_millis(1)).await; // until the recv timed out
    }
    let polls_before = polls.get(); // the task waits on `rx` now
    let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sender.send_to(b"late", to).await.unwrap();
    // This recv waits for the datagram's edge, which wakes every waiter still listed.
    let mut buf = [0u8; 8];
    let (n, _) = timeout(HANG, socket.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"late");
    // Behind every ready task: one woken by that edge would have been polled by now.
    overlap::yield_now().await;
    assert_eq!(
        polls.get(),
        polls_before,
        "the datagram woke a task whose recv had been cancelled"
    );
    tx.send(()).unwrap();
    timeout(HANG, task).await.unwrap().unwrap();
}

/// Dropping the listener that waiting acceptors share (through `Rc<RefCell<Option<_>>>`)
/// wakes them all, to find it gone.
#[overlap::test]
async fn dropping_a_shared_listener_wakes_its_owned_waiters() {
    use std::cell::RefCell;
    let listener = Rc::new(RefCell::new(Some(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
    )));
    let woke = Rc::new(Cell::new(0));
    let acceptors: Vec<_> = (0..100)
        .map(|_| {
            let (listener, woke) = (listener.clone(), woke.clone());
            overlap::spawn(async move {
                // The listener is borrowed only while polled; the wait's entry lives
                // as long as this future.
                let accept = overlap::own_waits(|cx| match listener.borrow().as_ref() {
                    Some(l) => l.poll_accept(cx).map(|r| Some(r.map(drop))),
                    None => Poll::Ready(None),
                });
                let got = accept.await;
                woke.set(woke.get() + 1);
                got.is_none()
            })
        })
        .collect();
    sleep(Duration::from_millis(20)).await;
    assert_eq!(woke.get(), 0);
    listener.borrow_mut().take();
    for acceptor in acceptors {
        let saw_gone = timeout(HANG, acceptor)
            .await
            .expect("an acceptor slept through the drop")
            .unwrap();
        assert!(saw_gone);
    }
}

/// One long-lived wait over whatever fd an `Rc<RefCell<Option<_>>>` holds now, the fd
/// replaced a thousand times: the future keeps an entry per slot in use, not one per fd
/// it ever waited on.
#[overlap::test]
async fn a_wait_that_outlives_many_fds_keeps_no_entry_per_fd() {
    use std::cell::RefCell;
    use std::os::unix::net::UnixStream as StdUnix;
    let current: Rc<RefCell<Option<overlap::AsyncFd<StdUnix>>>> = Rc::new(RefCell::new(None));
    let mut wait = {
        let current = current.clone();
        overlap::own_waits(move |cx| match current.borrow().as_ref() {
            Some(fd) => fd.poll_read_ready(cx).map(|r| r.map(drop)),
            None => Poll::Pending,
        })
    };
    let mut peers = Vec::new();
    for _ in 0..1000 {
        let (a, b) = StdUnix::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        // The new fd is registered before the old one goes: two slots take turns.
        *current.borrow_mut() = Some(overlap::AsyncFd::new(a).unwrap());
        peers.push(b);
        let polled = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut wait).poll(cx))).await;
        assert!(polled.is_pending());
    }
    let debug = format!("{wait:?}");
    assert!(
        debug.contains("entries: 1,") || debug.contains("entries: 2,"),
        "{debug}"
    );
    // It still wakes: the peer of the fd it waits on now writes.
    std::io::Write::write_all(&mut &peers[999], b"x").unwrap();
    timeout(HANG, wait).await.unwrap().unwrap();
}
