//! `select!` and `select_biased!`, and what their expansion calls; and tokio's `pin!`.

/// Waits on several futures at once in one task, and runs the handler of the first that
/// finishes with output matching its pattern; the others are dropped.
///
/// The syntax is tokio's, and futures-util's runs unchanged:
///
/// ```text
/// overlap::select! {
///     biased;                                   // optional: poll in order
///     <pattern> = <future>, if <condition> => <handler>,
///     ..
///     else => <handler>,                        // optional; `complete =>` is the same
///     default => <handler>,                     // optional: nothing ready at once
/// }
/// ```
///
/// 1. Every `if` condition is evaluated: a `false` one disables its branch for this call.
///    Then every future expression is evaluated, in order, disabled or not.
/// 2. The enabled branches are polled, from a random one each time (in the order written
///    after `biased;`, or with [`select_biased!`](crate::select_biased!)), so that no branch starves another.
///    A branch whose output does not match its pattern (`Some(v) = rx.recv()` seeing
///    `None`) is disabled and the others polled on; a fused future that has already
///    ended (`FusedFuture::is_terminated`) is disabled without being polled.
/// 3. The first branch ready with output that matches has its pattern bound and its
///    handler run; `select!` evaluates to the handler's value. The other futures are
///    dropped unfinished: give it futures documented as cancel-safe (`recv`, `sleep`,
///    `accept`, `read` do not lose data when dropped) or `&mut` a future kept across
///    iterations of a loop.
/// 4. If every branch is disabled, the `else` (or `complete`) handler runs; without one,
///    `select!` panics. With a `default` branch, `select!` does not wait for a branch: if
///    none is ready when they are first polled, the `default` handler runs (the `else`
///    one still, if every branch is disabled).
///
/// Handlers run in the caller's body, so `return`, `break`, `continue`, `?` and `.await` in
/// them act on the enclosing function or loop. At most 64 branches.
///
/// A `select!` that does not wait (a branch ready, or its `else` or `default` run) spends a
/// unit of the task's budget (one that waits gives it back), as overlap's channels and
/// sockets do: a loop whose branches never wait and know nothing of the budget (a stream of
/// ready items, CPU work in an `async` block, a `default` taken again and again) still lets
/// the other tasks and the reactor run every 128 rounds. Once the budget is spent, a
/// `select!` yields before polling its branches, with a `default` branch too. tokio's only
/// checks the budget before polling.
///
/// From tokio, code moves over as written but in one case; from futures-util, too. The
/// case: a future given by bare name (`_ = fut =>`) is borrowed, as futures-util's is, not
/// moved, as tokio's is, so that a loop polls the same future again; so it must be `Unpin`
/// (the compile error says so: pin it first with [`std::pin::pin!`] or
/// [`pin_mut!`](crate::pin_mut), or write `{ fut }` to move it in as tokio's does). A fused
/// one is skipped once it has ended, where futures-util's would refuse an unfused one. An
/// `IntoFuture` that is not a future cannot be borrowed: by name it is refused, `{ value }`
/// moves it in. Nor can a `&mut` future bound without `mut`, as the `Some(d)` of a
/// `match &mut deadline` binds it: tokio's moves the reference in, this one refuses the
/// borrow (E0596, "cannot borrow `d` as mutable"), and `{ d }` moves it in. Futures need
/// not be fused (`.fuse()` is not needed, and does no harm).
///
/// ```
/// use overlap::sync::mpsc;
///
/// overlap::block_on(async {
///     let (num_tx, mut nums) = mpsc::channel(8);
///     let (word_tx, mut words) = mpsc::channel(8);
///     overlap::spawn(async move {
///         for n in 1..=3 {
///             num_tx.send(n).await.unwrap();
///         }
///     });
///     overlap::spawn(async move { word_tx.send("four").await.unwrap() });
///     let (mut sum, mut said) = (0, Vec::new());
///     loop {
///         overlap::select! {
///             Some(n) = nums.recv() => sum += n,
///             Some(w) = words.recv() => said.push(w),
///             else => break, // both gave `None`: every sender is gone
///         }
///     }
///     assert_eq!((sum, said), (6, vec!["four"]));
/// });
/// ```
///
/// A branch's pattern is matched against the output itself, as tokio's is, in the
/// caller's edition: string literals, constants of a reference type, `&` patterns and
/// `ref` bindings (which edition 2024 refuses under a reference) all check the output:
///
/// ```edition2024
/// overlap::block_on(async {
///     let one = (1, String::from("one"));
///     let got = overlap::select! {
///         "quit" = async { "stay" } => None,
///         Some(&(n, ref name)) = async { Some(&one) } => Some((n, name.len())),
///         else => None,
///     };
///     assert_eq!(got, Some((1, 3)));
/// });
/// ```
///
/// A precondition, and a future kept across the loop by `&mut`:
///
/// ```
/// use std::time::Duration;
/// use overlap::time::{self, Instant};
///
/// # overlap::block_on(async {
/// let deadline = time::sleep(Duration::from_millis(50));
/// overlap::pin_mut!(deadline);
/// let mut ticks = time::interval(Duration::from_millis(10));
/// let mut count = 0;
/// loop {
///     overlap::select! {
///         _ = ticks.tick(), if count < 3 => count += 1,
///         _ = &mut deadline => break,
///     }
/// }
/// assert_eq!(count, 3);
/// # });
/// ```
#[macro_export]
macro_rules! select {
    ($($tokens:tt)*) => {
        $crate::__private::select_impl!(($crate) false $($tokens)*)
    };
}

/// [`select!`](crate::select!) polling its branches in the order written, the first one first every time
/// (futures-util's name for tokio's `biased;`, which [`select!`](crate::select!) takes too).
///
/// ```
/// overlap::block_on(async {
///     let first = overlap::select_biased! {
///         a = async { 1 } => a,
///         b = async { 2 } => b,
///     };
///     assert_eq!(first, 1);
/// });
/// ```
#[macro_export]
macro_rules! select_biased {
    ($($tokens:tt)*) => {
        $crate::__private::select_impl!(($crate) true $($tokens)*)
    };
}

/// What a `select!` expansion calls; not a public interface.
pub mod support {
    use std::future::Future;
    use std::pin::Pin;

    use futures_util::future::FusedFuture;

    /// Polls a `select!` under the task's budget: a unit spent first (`Pending`, the task
    /// scheduled again, once none is left), given back if no branch was ready.
    pub use overlap_runtime::coop_budgeted as budgeted;

    /// A future given to `select!` by name, to be borrowed for the call: its inherent
    /// [`by_name`](ByName::by_name) pins the borrow of an `Unpin` future; anything else
    /// gets [`ByNameFallback::by_name`], whose bound says what to do.
    ///
    /// (A bound `F: Unpin` on a function would do for the `Unpin` futures, but rustc
    /// reports its failure as its own "cannot be unpinned", looking through any trait of
    /// ours implemented for every `Unpin` future: a message on that trait is never shown.)
    #[derive(Debug)]
    pub struct ByName<'a, F: ?Sized>(pub &'a mut F);

    impl<'a, F: Future + Unpin + ?Sized> ByName<'a, F> {
        /// The borrowed future, pinned.
        pub fn by_name(self) -> Pin<&'a mut F> {
            Pin::new(self.0)
        }
    }

    /// The bound of [`ByNameFallback::by_name`], met by no type: its message is the error
    /// for a future given by name that `select!` cannot borrow.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` is given to `select!` by name, so it is borrowed, and it is not an `Unpin` future",
        label = "borrowed by `select!`, so that a loop can poll it again",
        note = "a future that is not `Unpin`: pin it first (`let fut = std::pin::pin!(fut);`), or write `{{ fut }}` to move it into the `select!` as tokio's does",
        note = "an `IntoFuture` that is not a future: write `{{ fut }}` to move it in, as tokio's does, and `into_future` is called on it"
    )]
    pub trait UnpinFuture: unimplementable::Never {}

    /// What [`UnpinFuture`] requires: a trait no type implements, and none outside this
    /// module can, so that [`ByNameFallback::by_name`] can never be called.
    mod unimplementable {
        pub trait Never {}
    }

    /// The `by_name` method call resolves to when [`ByName`]'s inherent one does not apply
    /// (the future is not `Unpin`, or not a future at all): a compile error, through its
    /// bound.
    pub trait ByNameFallback<'a, F: ?Sized> {
        /// Never called: no type meets the bound.
        fn by_name(self) -> Pin<&'a mut F>
        where
            F: UnpinFuture;
    }

    impl<'a, F: ?Sized> ByNameFallback<'a, F> for ByName<'a, F> {
        fn by_name(self) -> Pin<&'a mut F>
        where
            F: UnpinFuture,
        {
            unreachable!("`UnpinFuture` is sealed and implemented for no type")
        }
    }

    /// Which branch a `select!` of `n` branches polls first: a random one.
    pub fn start(n: usize) -> usize {
        overlap_runtime::random_below(n)
    }

    /// A future's reference, probed for whether it is a fused future that has ended.
    #[derive(Debug)]
    pub struct Probe<'a, F: ?Sized>(pub &'a F);

    /// The probe of a fused future: it has ended if it says so.
    pub trait FusedProbe {
        /// Whether the branch's future has ended and must not be polled again.
        fn is_terminated_branch(&self) -> bool;
    }

    impl<F: FusedFuture + ?Sized> FusedProbe for Probe<'_, F> {
        fn is_terminated_branch(&self) -> bool {
            self.0.is_terminated()
        }
    }

    /// The probe of any other future (reached through one more `&`, so that a fused
    /// future's probe is picked first): it has not ended as far as `select!` knows.
    pub trait PlainProbe {
        /// Always `false`.
        fn is_terminated_branch(&self) -> bool;
    }

    impl<F: ?Sized> PlainProbe for &Probe<'_, F> {
        fn is_terminated_branch(&self) -> bool {
            false
        }
    }
}

/// Pins futures (or any values) to the stack, in place, as tokio's `pin!`: each named
/// variable becomes a `Pin<&mut T>` of the same name, so that it can be polled by `&mut`
/// across the turns of a loop (in [`select!`](crate::select!), say). Also takes tokio's
/// second form, `let` statements that bind and pin at once. futures-util's
/// [`pin_mut!`](crate::pin_mut) is the first form.
///
/// ```
/// use std::time::Duration;
///
/// overlap::block_on(async {
///     let sleep = overlap::time::sleep(Duration::from_millis(5));
///     overlap::pin!(sleep);
///     overlap::pin! {
///         let answer = async { 42 };
///     }
///     let mut got = None;
///     loop {
///         overlap::select! {
///             n = &mut answer, if got.is_none() => got = Some(n),
///             () = &mut sleep => break,
///         }
///     }
///     assert_eq!(got, Some(42));
/// });
/// ```
#[macro_export]
macro_rules! pin {
    ($($x:ident),* $(,)?) => {
        $( let mut $x = ::core::pin::pin!($x); )*
    };
    ($(let $x:ident = $init:expr;)*) => {
        $(
            let $x = $init;
            $crate::pin!($x);
        )*
    };
}
