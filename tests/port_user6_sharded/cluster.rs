//! Starting the shard threads, and the control thread that watches and stops them: a
//! runtime of its own that collects every shard's stats on an interval through their
//! `Handle`s, changes their settings, notices a shard thread that died, and runs the
//! coordinated shutdown. The test talks to it through a `cross_thread` channel of commands.

use std::net::SocketAddr;
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use overlap::future::{join_all, FutureExt};
use overlap::net::TcpSocket;
use overlap::runtime::Builder;
use overlap::sync::mpsc::cross_thread::{self, UnboundedReceiver, UnboundedSender};
use overlap::sync::oneshot::cross_thread as oneshot;
use overlap::task::JoinSet;
use overlap::time::interval;
use overlap::Handle;

use super::shard::{self, Directory, Shard, Stats};

/// How often the control thread collects stats.
const TICK: Duration = Duration::from_millis(5);

/// What the test asks of the control thread; each carries its reply channel.
pub enum Command {
    /// The latest stats of every shard (`None`: the shard is down), collected now.
    Stats(oneshot::Sender<Vec<Option<Stats>>>),
    /// What the control thread knows of the shards' health.
    Health(oneshot::Sender<Health>),
    /// Sets every live shard's largest `INCR`.
    Limit(i64, oneshot::Sender<()>),
    /// Pauses shard `n`'s clock (its timers then jump ahead whenever it idles).
    Pause(usize, oneshot::Sender<()>),
    /// Drains every live shard, then ends them and joins their threads: their final stats.
    Shutdown(oneshot::Sender<Vec<Option<Stats>>>),
}

/// What the control thread knows of the shards' health.
#[derive(Clone, Debug)]
pub struct Health {
    /// How many stats collections the interval made so far.
    pub collections: usize,
    /// The shard threads found ended, with their panic messages (from their `JoinHandle`s).
    pub down: Vec<Option<String>>,
    /// The shards whose inbox was found closed (its receiver dropped with the runtime).
    pub inbox_closed: Vec<bool>,
}

pub struct Cluster {
    pub addr: SocketAddr,
    /// Every shard's handle, as the test may keep one past its runtime.
    pub handles: Vec<Handle>,
    commands: UnboundedSender<Command>,
    control: Option<JoinHandle<()>>,
}

impl Cluster {
    /// Starts `shards` shard threads on one `SO_REUSEPORT` port of 127.0.0.1, and the
    /// control thread; returns once every shard listens and knows the others.
    pub fn start(shards: usize) -> Cluster {
        let first = reuseport_socket("127.0.0.1:0".parse().unwrap());
        let addr = first.local_addr().unwrap();
        let mut sockets = vec![first];
        sockets.extend((1..shards).map(|_| reuseport_socket(addr)));
        let (handle_tx, handle_rx) = mpsc::channel();
        let mut inboxes = Vec::new();
        let mut threads = Vec::new();
        for (id, socket) in sockets.into_iter().enumerate() {
            let (inbox, inbox_rx) = cross_thread::unbounded_channel();
            inboxes.push(inbox);
            let handle_tx = handle_tx.clone();
            let thread = thread::Builder::new()
                .name(format!("shard-{id}"))
                .spawn(move || shard_thread(id, socket, inbox_rx, handle_tx))
                .unwrap();
            threads.push(Some(thread));
        }
        let mut handles: Vec<Option<Handle>> = vec![None; shards];
        for _ in 0..shards {
            let (id, handle) = handle_rx.recv().expect("a shard thread failed to start");
            handles[id] = Some(handle);
        }
        let handles: Vec<Handle> = handles.into_iter().map(Option::unwrap).collect();
        let dir = Arc::new(Directory {
            inboxes,
            handles: handles.clone(),
        });
        // Every shard learns the others before the first client comes.
        for handle in &handles {
            let dir = dir.clone();
            let installed = handle.spawn_with(move || async move {
                shard::current().set_directory(dir);
            });
            handle.block_on(installed).unwrap();
        }
        let (commands, commands_rx) = cross_thread::unbounded_channel();
        let control = thread::Builder::new()
            .name("control".into())
            .spawn(move || control(dir, threads, commands_rx))
            .unwrap();
        Cluster {
            addr,
            handles,
            commands,
            control: Some(control),
        }
    }

    /// Asks the control thread `make(reply)` and waits for its answer.
    pub fn ask<T: Send + 'static>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> T {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .unwrap_or_else(|_| panic!("the control thread is gone"));
        answer
            .blocking_recv()
            .expect("the control thread dropped the command")
    }

    /// The coordinated shutdown; then the control thread ends too.
    pub fn shutdown(mut self) -> Vec<Option<Stats>> {
        let stats = self.ask(Command::Shutdown);
        self.control.take().unwrap().join().unwrap();
        stats
    }
}

impl Drop for Cluster {
    /// A test that failed midway still stops the threads (its own failure is the one shown).
    fn drop(&mut self) {
        if let Some(control) = self.control.take() {
            let (reply, _answer) = oneshot::channel();
            let _ = self.commands.send(Command::Shutdown(reply));
            let _ = control.join();
        }
    }
}

fn reuseport_socket(addr: SocketAddr) -> TcpSocket {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_reuseport(true).unwrap();
    socket.bind(addr).unwrap();
    socket
}

/// A shard thread: its own runtime, its listener, its shard; returns when the cluster
/// shuts down (or unwinds when a connection of it panics).
fn shard_thread(
    id: usize,
    socket: TcpSocket,
    inbox: UnboundedReceiver<shard::Forward>,
    started: mpsc::Sender<(usize, Handle)>,
) {
    let rt = Builder::new_current_thread().enable_all().build().unwrap();
    let shard = Shard::install(id);
    rt.block_on(async move {
        // Listening before the handle goes out: the port's group has every shard in it
        // when the first client connects.
        let listener = socket.listen(1024).unwrap();
        started.send((id, Handle::current())).unwrap();
        shard::run(shard, listener, inbox).await;
    });
    Shard::uninstall();
}

/// The control thread: a runtime of its own.
fn control(
    dir: Arc<Directory>,
    mut threads: Vec<Option<JoinHandle<()>>>,
    mut commands: UnboundedReceiver<Command>,
) {
    let rt = overlap::Runtime::new().unwrap();
    rt.block_on(async move {
        let handles = dir.handles.clone();
        let mut dir = Some(dir);
        let mut health = Health {
            collections: 0,
            down: vec![None; handles.len()],
            inbox_closed: vec![false; handles.len()],
        };
        // A task per shard waits for its inbox to close: a shard that dies drops it.
        let mut closed = JoinSet::new();
        for (n, inbox) in dir.as_ref().unwrap().inboxes.iter().enumerate() {
            let inbox = inbox.clone();
            closed.spawn(async move {
                inbox.closed().await;
                n
            });
        }
        let mut tick = interval(TICK);
        loop {
            let command = overlap::select_biased! {
                cmd = commands.recv().fuse() => cmd,
                n = closed.join_next() => {
                    if let Some(Ok(n)) = n {
                        health.inbox_closed[n] = true;
                    }
                    continue;
                }
                _ = tick.tick().fuse() => {
                    collect(&handles).await;
                    health.collections += 1;
                    notice_dead(&mut threads, &mut health.down);
                    continue;
                }
            };
            match command {
                Some(Command::Stats(reply)) => {
                    let _ = reply.send(collect(&handles).await);
                }
                Some(Command::Health(reply)) => {
                    notice_dead(&mut threads, &mut health.down);
                    let _ = reply.send(health.clone());
                }
                Some(Command::Limit(max, reply)) => {
                    let set = handles.iter().map(|h| {
                        h.spawn_with(move || async move { shard::current().set_max_delta(max) })
                    });
                    join_all(set).await;
                    let _ = reply.send(());
                }
                Some(Command::Pause(n, reply)) => {
                    let paused = handles[n].spawn_with(|| async { overlap::time::pause() });
                    let _ = paused.await;
                    let _ = reply.send(());
                }
                Some(Command::Shutdown(reply)) => {
                    // Every shard stops accepting and drains, all at once; a shard still
                    // draining may forward to one that is done, whose inbox stays open.
                    let drains = handles
                        .iter()
                        .map(|h| h.spawn_with(|| async { shard::current().drain().await }));
                    let mut last: Vec<Option<Stats>> =
                        join_all(drains).await.into_iter().map(Result::ok).collect();
                    // The last senders to every inbox: each shard's main future ends.
                    closed.shutdown().await;
                    dir.take();
                    for (n, thread) in threads.iter_mut().enumerate() {
                        if let Some(thread) = thread.take() {
                            let joined = overlap::spawn_blocking(move || thread.join()).await;
                            if !matches!(joined, Ok(Ok(()))) {
                                last[n] = None;
                            }
                        }
                    }
                    let _ = reply.send(last);
                    return;
                }
                None => return,
            }
        }
    });
}

/// Every shard's stats, asked of each through its handle at once.
async fn collect(handles: &[Handle]) -> Vec<Option<Stats>> {
    let asks = handles
        .iter()
        .map(|h| h.spawn_with(|| async { shard::current().stats() }));
    join_all(asks).await.into_iter().map(Result::ok).collect()
}

/// Joins the shard threads that ended on their own, keeping their panic messages.
fn notice_dead(threads: &mut [Option<JoinHandle<()>>], down: &mut [Option<String>]) {
    for (n, slot) in threads.iter_mut().enumerate() {
        if slot.as_ref().is_some_and(|t| t.is_finished()) {
            let payload = slot.take().unwrap().join().err();
            let message = payload.map_or_else(|| "exited".to_string(), |p| message(&*p));
            down[n] = Some(message);
        }
    }
}

fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}
