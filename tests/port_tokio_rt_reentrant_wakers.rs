//! tokio's `rt_common.rs` checks that timers and I/O reach their futures while the loop
//! runs; this takes its timer and I/O driver cases further, with wakers that run code. A
//! future polled by hand with such a waker gets woken by the loop itself, in the middle of
//! firing timers or dispatching I/O events; the waker then spawns a task, registers a new
//! timer, drops a pending one and drops a registered socket. The loop must carry on with
//! each of those in a consistent state.

mod support;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream};
use overlap::time::{self, Sleep};
use support::within;

const HANG: Duration = Duration::from_secs(10);

/// What the waker below finds on the runtime's thread when it is woken.
#[derive(Default)]
struct Stage {
    /// A pending timer, dropped by the wake.
    doomed_sleep: Option<Pin<Box<Sleep>>>,
    /// A registered socket, dropped by the wake.
    doomed_socket: Option<TcpStream>,
    /// The timer the wake registers.
    new_sleep: Option<Pin<Box<Sleep>>>,
    /// Set by the task the wake spawns.
    spawned_ran: Rc<Cell<bool>>,
    wakes: u32,
}

thread_local! {
    static STAGE: RefCell<Stage> = RefCell::default();
}

/// A waker that, when woken on the runtime's thread, rearranges the loop's state.
struct Meddler;

impl Wake for Meddler {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let (sleep, socket, ran) = STAGE.with(|s| {
            let mut s = s.borrow_mut();
            s.wakes += 1;
            (
                s.doomed_sleep.take(),
                s.doomed_socket.take(),
                s.spawned_ran.clone(),
            )
        });
        // Dropped with no borrow held: each reaches into the timers or the reactor.
        drop(sleep);
        drop(socket);
        overlap::spawn(async move { ran.set(true) }).detach();
        let mut fresh = Box::pin(time::sleep(Duration::from_millis(2)));
        let noop = Waker::noop();
        assert!(fresh
            .as_mut()
            .poll(&mut Context::from_waker(noop))
            .is_pending());
        STAGE.with(|s| s.borrow_mut().new_sleep = Some(fresh));
    }
}

/// Polls `fut` once with the meddling waker.
fn poll_with_meddler<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    let waker = Waker::from(Arc::new(Meddler));
    Pin::new(fut).poll(&mut Context::from_waker(&waker))
}

/// Sets the stage: a pending timer and a registered socket for the wake to drop.
async fn stage(spare: TcpStream) {
    let mut doomed = Box::pin(time::sleep(Duration::from_secs(3600)));
    assert!(support::poll_once(doomed.as_mut()).await.is_pending());
    STAGE.with(|s| {
        let mut s = s.borrow_mut();
        s.doomed_sleep = Some(doomed);
        s.doomed_socket = Some(spare);
    });
}

/// After the wake: the spawned task ran, the dropped timer and socket are gone, and the
/// new timer fires.
async fn check_aftermath(base_fds: u64) {
    within(
        HANG,
        async {
            while STAGE.with(|s| !s.borrow().spawned_ran.get()) {
                overlap::yield_now().await;
            }
        },
        "the task spawned by the wake never ran",
    )
    .await;
    let stage = STAGE.with(|s| std::mem::take(&mut *s.borrow_mut()));
    assert_eq!(stage.wakes, 1);
    assert!(stage.doomed_sleep.is_none() && stage.doomed_socket.is_none());
    assert_eq!(overlap::metrics().registered_fds, base_fds);
    let fresh = stage.new_sleep.expect("the wake registered no timer");
    within(HANG, fresh, "the timer registered by the wake").await;
    assert_eq!(overlap::metrics().timers_active, 0);
}

/// A connected pair of sockets.
async fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    (client, listener.accept().await.unwrap().0)
}

#[test]
fn a_waker_woken_while_timers_fire_may_spawn_and_add_or_drop_timers_and_sockets() {
    overlap::block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (spare, _spare_peer) = pair(&listener).await;
        let base_fds = overlap::metrics().registered_fds - 1;
        stage(spare).await;
        // Due together with other timers, so the wake lands mid-batch.
        let mut others: Vec<_> = (0..16)
            .map(|_| Box::pin(time::sleep(Duration::from_millis(1))))
            .collect();
        for s in &mut others {
            assert!(support::poll_once(s.as_mut()).await.is_pending());
        }
        let mut meddled = Box::pin(time::sleep(Duration::from_millis(1)));
        assert!(poll_with_meddler(&mut meddled).is_pending());
        within(HANG, overlap::future::join_all(others), "the other timers").await;
        check_aftermath(base_fds).await;
        assert!(poll_with_meddler(&mut meddled).is_ready());
    });
}

#[test]
fn a_waker_woken_while_io_events_are_dispatched_may_do_the_same() {
    overlap::block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (spare, mut spare_peer) = pair(&listener).await;
        let (mut client, mut server) = pair(&listener).await;
        let base_fds = overlap::metrics().registered_fds - 1;
        stage(spare).await;
        let mut buf = [0u8; 1];
        {
            let mut read = server.read(&mut buf);
            assert!(poll_with_meddler(&mut read).is_pending());
            // Both become ready in the same wait: the dropped socket's event may be in the
            // batch being dispatched.
            spare_peer.write_all(b"s").await.unwrap();
            client.write_all(b"c").await.unwrap();
            check_aftermath(base_fds).await;
            match poll_with_meddler(&mut read) {
                Poll::Ready(n) => assert_eq!(n.unwrap(), 1),
                Poll::Pending => panic!("the read was woken but is not ready"),
            }
        }
        assert_eq!(&buf, b"c");
        // The dropped socket was closed: its peer sees the stream end, with a reset since
        // the byte sent to it was never read.
        let mut rest = Vec::new();
        match within(HANG, spare_peer.read_to_end(&mut rest), "EOF").await {
            Ok(n) => assert_eq!(n, 0),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
        }
    });
}
