//! The macros' misuses that must not compile, as `compile_fail` doctests (compiled only
//! under `cargo test --doc`).

/// Misuses of `#[overlap::main]` and `#[overlap::test]` that must not compile, each with a
/// clear message (checked as doctests).
///
/// A function that is not `async`, under either attribute:
/// ```compile_fail
/// #[overlap::main]
/// fn main() {}
/// ```
/// ```compile_fail
/// #[overlap::test]
/// fn not_async() {}
/// ```
/// Arguments to `main` (another function may take some), or unknown ones to the attribute:
/// ```compile_fail
/// #[overlap::main]
/// async fn main(_n: u32) {}
/// ```
/// ```compile_fail
/// #[overlap::main(event_interval = 7)]
/// async fn main() {}
/// ```
/// tokio's multi-threaded flavor (`flavor = "current_thread"` is accepted), alone or with
/// its usual `worker_threads`:
/// ```compile_fail
/// #[overlap::main(flavor = "multi_thread")]
/// async fn main() {}
/// ```
/// ```compile_fail
/// #[overlap::main(flavor = "multi_thread", worker_threads = 2)]
/// async fn main() {}
/// ```
/// `worker_threads` alone (tokio's multi-threaded runtime by default), and the
/// multi-threaded flavor under `#[overlap::test]` too:
/// ```compile_fail
/// #[overlap::main(worker_threads = 2)]
/// async fn main() {}
/// ```
/// ```compile_fail
/// #[overlap::test(flavor = "multi_thread")]
/// async fn multi() {}
/// ```
/// A setting given twice (tokio refuses it too), which would otherwise take the last value
/// unseen:
/// ```compile_fail
/// #[overlap::main(start_paused = true, start_paused = false)]
/// async fn main() {}
/// ```
/// ```compile_fail
/// #[overlap::test(flavor = "current_thread", flavor = "current_thread")]
/// async fn twice() {}
/// ```
/// A `#[test]` of its own under `#[overlap::test]` (which adds one), that would register the
/// test twice and run its body twice, each time on a fresh runtime:
/// ```compile_fail
/// #[overlap::test]
/// #[test]
/// async fn twice() {}
/// ```
/// ```compile_fail
/// #[overlap::test]
/// #[::core::prelude::v1::test]
/// async fn twice() {}
/// ```
/// Something other than a function:
/// ```compile_fail
/// #[overlap::test]
/// struct NotAFunction {}
/// ```
/// A test that takes an argument, a setting without its value or with one of the wrong kind,
/// two settings without a comma between them:
/// ```compile_fail
/// #[overlap::test]
/// async fn takes(_n: u32) {}
/// ```
/// ```compile_fail
/// #[overlap::test(start_paused)]
/// async fn bare() {}
/// ```
/// ```compile_fail
/// #[overlap::test(start_paused = 1)]
/// async fn a_number() {}
/// ```
/// ```compile_fail
/// #[overlap::test(crate = 5)]
/// async fn not_a_string() {}
/// ```
/// ```compile_fail
/// #[overlap::test(start_paused = true flavor = "current_thread")]
/// async fn no_comma() {}
/// ```
///
/// `select!` with two `default` branches, or with 65 branches:
/// ```compile_fail
/// overlap::block_on(async {
///     overlap::select! { x = async { 1 } => x, default => 0, default => 1 }
/// });
/// ```
/// ```compile_fail
/// macro_rules! branches {
///     ($($i:literal)*) => { overlap::select! { $( _ = async { $i } => $i, )* } };
/// }
/// overlap::block_on(async {
///     branches!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28
///         29 30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56
///         57 58 59 60 61 62 63 64)
/// });
/// ```
///
/// `select!` with no future to wait on, a branch without its `=>`, two `else` branches
/// (`complete` is the same), and `biased` without its `;` or after a branch (each error
/// the only one, where `select!` in an expression added that rustc ignored a `;`):
/// ```compile_fail
/// overlap::block_on(async { overlap::select! {} });
/// ```
/// ```compile_fail
/// overlap::block_on(async { overlap::select! { x = async { 1 } } });
/// ```
/// ```compile_fail
/// overlap::block_on(async {
///     overlap::select! { x = async { 1 } => x, else => 0, complete => 0 }
/// });
/// ```
/// ```compile_fail
/// overlap::block_on(async { overlap::select! { biased x = async { 1 } => x } });
/// ```
/// ```compile_fail
/// overlap::block_on(async { overlap::select! { x = async { 1 } => x, biased; } });
/// ```
/// A precondition without the comma before its `if` (the error says where it goes):
/// ```compile_fail
/// overlap::block_on(async {
///     let ready = true;
///     overlap::select! { x = async { 1 } if ready => x, else => 0 }
/// });
/// ```
/// A `!Unpin` future given to `select!` by name, which borrows it (`{ fut }` moves it in;
/// the error says so, as `UnpinFuture`'s message, where a plain `Unpin` bound would give
/// rustc's "cannot be unpinned"), an `async fn`'s future as well as an `async` block's:
/// ```compile_fail,E0277
/// overlap::block_on(async {
///     let fut = async { 1 };
///     overlap::select! { x = fut => x }
/// });
/// ```
/// ```compile_fail,E0277
/// async fn work() -> u32 {
///     1
/// }
/// overlap::block_on(async {
///     let run = work();
///     overlap::select! { x = run => x }
/// });
/// ```
/// A `&mut` future bound without `mut` (the `Some(d)` of a `match &mut deadline`), given
/// by name: `select!` borrows it, so it needs `mut` (tokio's moves the reference in; `{ d }`
/// does that here):
/// ```compile_fail,E0596
/// overlap::block_on(async {
///     let mut deadline = Some(Box::pin(overlap::time::sleep(std::time::Duration::ZERO)));
///     if let Some(d) = &mut deadline {
///         overlap::select! { () = d => {} }
///     }
/// });
/// ```
/// An `IntoFuture` that is not a future given by name, which tokio's moves in and
/// `select!` cannot borrow (the error says to write `{ value }`):
/// ```compile_fail,E0277
/// struct Later(u32);
/// impl std::future::IntoFuture for Later {
///     type Output = u32;
///     type IntoFuture = std::future::Ready<u32>;
///     fn into_future(self) -> Self::IntoFuture {
///         std::future::ready(self.0)
///     }
/// }
/// overlap::block_on(async {
///     let later = Later(1);
///     overlap::select! { x = later => x }
/// });
/// ```
struct MacroMisuse;
