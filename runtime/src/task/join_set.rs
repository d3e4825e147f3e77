//! `JoinSet`: a set of tasks awaited in the order they finish.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use super::join_next::{JoinNext, JoinNextWithId};
use super::{spawn, AbortHandle, Id, JoinError, JoinHandle};
use crate::slab::Slab;

/// Members an emptied set keeps room for.
const KEEP_WHEN_EMPTY: usize = 1024;

/// A set of tasks on the current runtime, whose outputs come out in the order the tasks
/// finish.
///
/// Dropping the set **aborts** every task still in it (their futures are dropped at the
/// runtime's next turn); [`detach_all`](JoinSet::detach_all) lets them run on instead. Each
/// task tells the set when it finishes, from the moment it is spawned, so outputs come out
/// in finishing order even when several finished before the set was first asked, and only
/// finished tasks are looked at when waiting: a set of many tasks costs nothing per idle
/// task.
///
/// ```
/// use overlap::JoinSet;
///
/// overlap::block_on(async {
///     let mut set = JoinSet::new();
///     for i in 0..10u64 {
///         set.spawn(async move { i * i });
///     }
///     let mut sum = 0;
///     while let Some(out) = set.join_next().await {
///         sum += out.unwrap();
///     }
///     assert_eq!(sum, 285);
/// });
/// ```
pub struct JoinSet<T> {
    tasks: Slab<Member<T>>,
    /// Members whose tasks finished (or may have), in the order they did.
    finished: Arc<Finished>,
    /// Tells members apart across reused slab keys.
    next_id: u64,
}

/// A task of the set.
struct Member<T> {
    id: u64,
    handle: JoinHandle<T>,
    /// Queues this member on [`Finished`]; the task holds a clone as its join waker.
    waker: Waker,
    /// The output, if the task was already complete when spawned (a spawn on a runtime
    /// that is shutting down cancels the task at once).
    early: Option<Result<T, JoinError>>,
}

/// Where members' wakers report; shared with them (they are `Send + Sync`, as every waker).
#[derive(Default)]
struct Finished(Mutex<FinishedState>);

#[derive(Default)]
struct FinishedState {
    /// `(slab key, member id)` in the order the tasks finished; a stale pair (a member
    /// already gone) is skipped.
    queue: VecDeque<(usize, u64)>,
    /// The task waiting in `join_next`, if any.
    waiter: Option<Waker>,
}

impl Finished {
    fn lock(&self) -> MutexGuard<'_, FinishedState> {
        // Only plain queue operations happen under the lock: a poisoned one is consistent.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A member's join waker.
struct MemberWaker {
    key: usize,
    id: u64,
    finished: Arc<Finished>,
}

impl Wake for MemberWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let waiter = {
            let mut st = self.finished.lock();
            st.queue.push_back((self.key, self.id));
            st.waiter.take()
        };
        if let Some(w) = waiter {
            w.wake();
        }
    }
}

impl<T: 'static> JoinSet<T> {
    /// An empty set.
    pub fn new() -> JoinSet<T> {
        JoinSet {
            tasks: Slab::new(),
            finished: Arc::default(),
            next_id: 0,
        }
    }

    /// Spawns `future` on the current runtime as a task of this set. The returned
    /// [`AbortHandle`] can stop that one task (it then comes out of
    /// [`join_next`](JoinSet::join_next) as cancelled); ignoring it is fine.
    ///
    /// # Panics
    /// Outside a runtime, like [`spawn`](crate::spawn).
    #[track_caller]
    pub fn spawn<F>(&mut self, future: F) -> AbortHandle
    where
        F: Future<Output = T> + 'static,
    {
        self.insert(spawn(future))
    }

    /// The same as [`spawn`](JoinSet::spawn), under tokio's name for spawning a `!Send`
    /// future: every overlap task may be `!Send`.
    ///
    /// # Panics
    /// Outside a runtime, like [`spawn`](crate::spawn).
    #[track_caller]
    pub fn spawn_local<F>(&mut self, future: F) -> AbortHandle
    where
        F: Future<Output = T> + 'static,
    {
        self.spawn(future)
    }

    /// Runs `f` on the blocking pool, as [`spawn_blocking`](crate::spawn_blocking) does, as
    /// a task of this set: its return value comes out of [`join_next`](JoinSet::join_next),
    /// a panic in it as a panic [`JoinError`]. Aborting it (with the returned handle, or by
    /// dropping the set) only drops its result: a closure already running runs to the end.
    ///
    /// # Panics
    /// Outside a runtime, like [`spawn_blocking`](crate::spawn_blocking).
    ///
    /// ```
    /// use overlap::JoinSet;
    ///
    /// overlap::block_on(async {
    ///     let mut set = JoinSet::new();
    ///     set.spawn_blocking(|| std::thread::current().name().map(str::to_owned));
    ///     let name = set.join_next().await.unwrap().unwrap();
    ///     assert_eq!(name.as_deref(), Some("overlap-blocking"));
    /// });
    /// ```
    #[track_caller]
    pub fn spawn_blocking<F>(&mut self, f: F) -> AbortHandle
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send,
    {
        self.insert(crate::spawn_blocking(f))
    }

    /// Adds a task just spawned to the set.
    fn insert(&mut self, handle: JoinHandle<T>) -> AbortHandle {
        let abort = handle.abort_handle();
        let id = self.next_id;
        self.next_id += 1;
        let key = self.tasks.insert(Member {
            id,
            handle,
            waker: Waker::noop().clone(),
            early: None,
        });
        let waker = Waker::from(Arc::new(MemberWaker {
            key,
            id,
            finished: self.finished.clone(),
        }));
        let member = self.tasks.get_mut(key).expect("just inserted");
        // Leaves the waker with the task, to be woken when it finishes. A task just spawned
        // has not run yet, so this is `Pending`, unless the runtime cancelled it at once.
        if let Poll::Ready(out) = member
            .handle
            .poll_unbudgeted(&mut Context::from_waker(&waker))
        {
            member.early = Some(out);
            waker.wake_by_ref();
        }
        member.waker = waker;
        abort
    }

    /// The number of tasks in the set: running, or finished but not yet joined.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether the set holds no task.
    pub fn is_empty(&self) -> bool {
        self.tasks.len() == 0
    }

    /// Waits for the next task to finish and removes it from the set: `Some(Ok(output))`,
    /// `Some(Err(_))` if it panicked or was aborted, or `None` once the set is empty.
    ///
    /// Cancel-safe: dropping the future (in a `select`, say) loses no output; a task that
    /// finished meanwhile is still returned by the next call.
    ///
    /// The future is a `FusedFuture` that counts as terminated while the set is empty, so in
    /// `select!` the branch `out = set.join_next() =>` waits for a member, as tokio's
    /// `Some(out) = set.join_next() =>` does, instead of taking `None` on every turn (see
    /// [`JoinNext`]). Awaited on an empty set, it gives `None` at once, and spends a unit of
    /// the task's budget, so even a loop that keeps asking an empty set yields now and then.
    pub fn join_next(&mut self) -> JoinNext<'_, T> {
        JoinNext::new(self)
    }

    /// [`join_next`](JoinSet::join_next), also saying which task finished: its output comes
    /// with its [`Id`] (the one [`AbortHandle::id`] of the handle returned by
    /// [`spawn`](JoinSet::spawn) reports), and an error tells it by [`JoinError::id`].
    ///
    /// Cancel-safe, as `join_next` is.
    ///
    /// ```
    /// use overlap::JoinSet;
    ///
    /// overlap::block_on(async {
    ///     let mut set = JoinSet::new();
    ///     let first = set.spawn(async { "done" }).id();
    ///     let second = set.spawn(std::future::pending());
    ///     second.abort();
    ///     let mut seen = Vec::new();
    ///     while let Some(res) = set.join_next_with_id().await {
    ///         match res {
    ///             Ok((id, out)) => seen.push((id, Some(out))),
    ///             Err(err) => seen.push((err.id(), None)),
    ///         }
    ///     }
    ///     seen.sort();
    ///     let mut expected = vec![(first, Some("done")), (second.id(), None)];
    ///     expected.sort();
    ///     assert_eq!(seen, expected);
    /// });
    /// ```
    pub fn join_next_with_id(&mut self) -> JoinNextWithId<'_, T> {
        JoinNextWithId::new(self)
    }

    /// [`try_join_next`](JoinSet::try_join_next), with the finished task's [`Id`] as
    /// [`join_next_with_id`](JoinSet::join_next_with_id) gives it.
    pub fn try_join_next_with_id(&mut self) -> Option<Result<(Id, T), JoinError>> {
        self.next_finished()
    }

    /// Takes the output of a task that has already finished, without waiting: `None` if no
    /// task has finished yet (or the set is empty).
    ///
    /// ```
    /// use overlap::JoinSet;
    ///
    /// overlap::block_on(async {
    ///     let mut set = JoinSet::new();
    ///     set.spawn(async { 1 });
    ///     assert!(set.try_join_next().is_none(), "the task has not run yet");
    ///     overlap::yield_now().await;
    ///     assert_eq!(set.try_join_next().unwrap().unwrap(), 1);
    /// });
    /// ```
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        self.next_finished().map(without_id)
    }

    /// Waits for every task and returns their outputs, in the order they finished.
    ///
    /// # Panics
    /// If a task panicked, its panic resumes here (the other tasks are aborted when the set
    /// drops); if a task was aborted, this panics with a message saying so.
    ///
    /// ```
    /// use overlap::JoinSet;
    ///
    /// overlap::block_on(async {
    ///     let mut set = JoinSet::new();
    ///     for word in ["a", "b", "c"] {
    ///         set.spawn(async move { word.to_uppercase() });
    ///     }
    ///     let mut out = set.join_all().await;
    ///     out.sort();
    ///     assert_eq!(out, ["A", "B", "C"]);
    /// });
    /// ```
    pub async fn join_all(mut self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.len());
        while let Some(res) = self.join_next().await {
            match res {
                Ok(v) => out.push(v),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => panic!("JoinSet::join_all: a task was aborted"),
            }
        }
        out
    }

    /// [`join_next`](JoinSet::join_next) as a poll function, for hand-written futures.
    pub fn poll_join_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, JoinError>>> {
        self.poll_join_next_with_id(cx)
            .map(|res| res.map(without_id))
    }

    /// [`join_next_with_id`](JoinSet::join_next_with_id) as a poll function.
    pub fn poll_join_next_with_id(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<(Id, T), JoinError>>> {
        if self.tasks.len() == 0 {
            // Spends a unit too: a loop that keeps asking an empty set (a `select!` branch
            // wrapped in `fuse()`) yields now and then instead of holding the thread.
            return crate::coop::budgeted(cx, |_| Poll::Ready(None));
        }
        // A task's output spends a unit of the budget (as awaiting its `JoinHandle` does): a
        // loop over many finished members yields now and then, as tokio's does.
        crate::coop::budgeted(cx, |cx| self.poll_finished(cx))
    }

    /// [`poll_join_next_with_id`](JoinSet::poll_join_next_with_id) for a set with members,
    /// under the budget.
    fn poll_finished(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<(Id, T), JoinError>>> {
        if let Some(out) = self.next_finished() {
            return Poll::Ready(Some(out));
        }
        let mut st = self.finished.lock();
        if st.queue.is_empty() {
            match &st.waiter {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => st.waiter = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        // A task finished between the two looks: take it on the next poll.
        drop(st);
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// The output of the member that finished first, if any has, removing it from the set;
    /// with the task's ID.
    fn next_finished(&mut self) -> Option<Result<(Id, T), JoinError>> {
        loop {
            let (key, id) = self.finished.lock().queue.pop_front()?;
            let Some(member) = self.tasks.get_mut(key).filter(|m| m.id == id) else {
                continue; // a member already gone
            };
            let task_id = member.handle.id();
            if let Some(out) = member.early.take() {
                self.remove(key);
                return Some(out.map(|v| (task_id, v)));
            }
            let mut cx = Context::from_waker(&member.waker);
            if let Poll::Ready(out) = member.handle.poll_unbudgeted(&mut cx) {
                self.remove(key);
                return Some(out.map(|v| (task_id, v)));
            }
            // Not finished after all (a stray wake): its waker stays with the task.
        }
    }

    /// Removes a joined member. A set left empty gives back the room a burst of members grew
    /// it to (a long-lived set, such as a server's connections, would otherwise keep it for
    /// life); the member ids go on, so pairs still queued for old keys stay stale.
    fn remove(&mut self, key: usize) {
        self.tasks.remove(key);
        if self.tasks.len() == 0 && self.tasks.capacity() > KEEP_WHEN_EMPTY {
            self.tasks = Slab::new();
            let mut st = self.finished.lock();
            if st.queue.capacity() > KEEP_WHEN_EMPTY {
                st.queue.shrink_to(KEEP_WHEN_EMPTY);
            }
        }
    }

    /// Asks every task in the set to stop; each then comes out of
    /// [`join_next`](JoinSet::join_next) as a cancelled [`JoinError`] (or with its output, if
    /// it had already finished).
    ///
    /// ```
    /// use overlap::JoinSet;
    ///
    /// overlap::block_on(async {
    ///     let mut set = JoinSet::new();
    ///     set.spawn(std::future::pending::<()>());
    ///     set.spawn(std::future::pending::<()>());
    ///     set.abort_all();
    ///     while let Some(res) = set.join_next().await {
    ///         assert!(res.unwrap_err().is_cancelled());
    ///     }
    ///     // `shutdown` is the same as `abort_all` and that loop.
    /// });
    /// ```
    pub fn abort_all(&mut self) {
        for member in self.tasks.values() {
            member.handle.abort();
        }
    }

    /// Aborts every task and waits until all have stopped, dropping their outputs.
    ///
    /// Each output or error is dropped as dropping its task's [`JoinHandle`] would drop it:
    /// a destructor that panics (an output's, or a panic payload's) is contained, so that
    /// it neither ends the call early nor unwinds into the caller.
    ///
    /// Dropped before it completes, it has aborted every task, and those it had not yet
    /// joined stay in the set: `join_next` returns their cancelled errors (or the output of
    /// one that had finished before the abort).
    pub async fn shutdown(&mut self) {
        self.abort_all();
        while let Some(out) = self.join_next().await {
            crate::unwind::contain(move || drop(out));
        }
    }

    /// Empties the set without stopping its tasks: they run on, detached, and their outputs
    /// are dropped.
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use overlap::JoinSet;
    ///
    /// overlap::block_on(async {
    ///     let done = Rc::new(Cell::new(false));
    ///     let mut set = JoinSet::new();
    ///     let flag = done.clone();
    ///     set.spawn(async move {
    ///         overlap::yield_now().await;
    ///         flag.set(true);
    ///     });
    ///     set.detach_all();
    ///     drop(set); // would have aborted the task, had it still held it
    ///     while !done.get() {
    ///         overlap::yield_now().await;
    ///     }
    /// });
    /// ```
    pub fn detach_all(&mut self) {
        // Dropping a handle detaches its task.
        drop(self.tasks.drain());
        self.finished.lock().queue.clear();
    }
}

/// Drops the task ID from a [`JoinSet::join_next_with_id`] result.
fn without_id<T>(res: Result<(Id, T), JoinError>) -> Result<T, JoinError> {
    res.map(|(_, v)| v)
}

/// Spawns every future of the iterator as a task of the set, as
/// [`spawn`](JoinSet::spawn) does.
///
/// # Panics
/// Outside a runtime, like [`spawn`](crate::spawn).
impl<T: 'static, F> Extend<F> for JoinSet<T>
where
    F: Future<Output = T> + 'static,
{
    fn extend<I: IntoIterator<Item = F>>(&mut self, futures: I) {
        for future in futures {
            self.spawn(future);
        }
    }
}

/// A set of one task per future of the iterator, each spawned as by
/// [`spawn`](JoinSet::spawn).
///
/// # Panics
/// Outside a runtime, like [`spawn`](crate::spawn).
///
/// ```
/// use overlap::JoinSet;
///
/// overlap::block_on(async {
///     let set: JoinSet<u32> = (1..=4).map(|i| async move { i * 10 }).collect();
///     let mut outputs = set.join_all().await;
///     outputs.sort();
///     assert_eq!(outputs, [10, 20, 30, 40]);
/// });
/// ```
impl<T: 'static, F> FromIterator<F> for JoinSet<T>
where
    F: Future<Output = T> + 'static,
{
    fn from_iter<I: IntoIterator<Item = F>>(futures: I) -> JoinSet<T> {
        let mut set = JoinSet::new();
        set.extend(futures);
        set
    }
}

impl<T: 'static> Default for JoinSet<T> {
    fn default() -> JoinSet<T> {
        JoinSet::new()
    }
}

impl<T> Drop for JoinSet<T> {
    fn drop(&mut self) {
        for member in self.tasks.values() {
            member.handle.abort();
        }
    }
}

impl<T> fmt::Debug for JoinSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinSet")
            .field("len", &self.tasks.len())
            .finish()
    }
}
