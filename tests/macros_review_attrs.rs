//! An adversarial review of `join!` and `try_join!` (futures-util's, re-exported), of
//! `#[overlap::test]` and `#[overlap::main]` with their settings and on functions of every
//! shape, and of every macro's hygiene in a module that shadows the names an expansion
//! might use. `select!` itself is in `macros_review.rs`.

mod support;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use overlap::time::{self, Instant};
use overlap::{join, try_join};
use support::DropFlag;

/// What the futures of one test did, in order.
type Log = Rc<RefCell<Vec<String>>>;

/// Yields `turns` times, logs `"{name} done"` and gives `out`; logs `"{name} dropped"` if
/// dropped before that.
async fn after<T>(log: &Log, name: &str, turns: usize, out: T) -> T {
    struct Unfinished<'a>(&'a Log, &'a str);
    impl Drop for Unfinished<'_> {
        fn drop(&mut self) {
            self.0.borrow_mut().push(format!("{} dropped", self.1));
        }
    }
    let guard = Unfinished(log, name);
    for _ in 0..turns {
        overlap::task::yield_now().await;
    }
    std::mem::forget(guard);
    log.borrow_mut().push(format!("{name} done"));
    out
}

#[overlap::test]
async fn join_of_none_one_and_twelve_futures_gives_the_outputs_in_the_order_written() {
    let log: Log = Rc::default();
    let () = join!();
    let (one,) = join!(after(&log, "one", 2, 1u8));
    assert_eq!(one, 1);
    let outs = join!(
        after(&log, "f0", 12, 0),
        after(&log, "f1", 11, 1),
        after(&log, "f2", 10, 2),
        after(&log, "f3", 9, 3),
        after(&log, "f4", 8, 4),
        after(&log, "f5", 7, 5),
        after(&log, "f6", 6, 6),
        after(&log, "f7", 5, 7),
        after(&log, "f8", 4, 8),
        after(&log, "f9", 3, 9),
        after(&log, "f10", 2, 10),
        after(&log, "f11", 1, 11),
    );
    assert_eq!(outs, (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11));
    // Run at once, not one after the other: the one with the fewest turns ends first.
    let done: Vec<String> = (0..12).rev().map(|i| format!("f{i} done")).collect();
    let mut expected = vec!["one done".to_string()];
    expected.extend(done);
    assert_eq!(*log.borrow(), expected);
}

#[overlap::test]
async fn try_join_gives_the_first_error_to_happen_and_drops_the_unfinished() {
    let log: Log = Rc::default();
    // Outputs of three types, in the order written.
    let got: Result<(u8, &str, Vec<u8>), String> = try_join!(
        after(&log, "a", 3, Ok(1u8)),
        after(&log, "b", 1, Ok("two")),
        after(&log, "c", 2, Ok(vec![3u8])),
    );
    assert_eq!(got, Ok((1, "two", vec![3])));
    assert_eq!(*log.borrow(), ["b done", "c done", "a done"]);
    log.borrow_mut().clear();
    // `c` fails first (after one turn) though `a`, written before it, fails later: the
    // error is `c`'s, and `a` and the never-ending `d` are dropped unfinished.
    let (flag, d_dropped) = DropFlag::new();
    let d = async move {
        let _flag = flag;
        std::future::pending::<Result<u8, String>>().await
    };
    let got = try_join!(
        after(&log, "a", 3, Err::<u8, String>("a failed".into())),
        after(&log, "b", 0, Ok::<u8, String>(2)),
        after(&log, "c", 1, Err::<u8, String>("c failed".into())),
        d,
    );
    assert_eq!(got, Err("c failed".to_string()));
    assert!(d_dropped.get());
    assert_eq!(*log.borrow(), ["b done", "c done", "a dropped"]);
    // One future, and an error at once.
    let got: Result<(u8,), u8> = try_join!(async { Err(9) });
    assert_eq!(got, Err(9));
}

#[overlap::test(start_paused = true)]
async fn start_paused_true_starts_the_clock_paused_and_a_long_timeout_fires() {
    assert!(time::is_paused());
    let start = Instant::now();
    let day = Duration::from_secs(86_400);
    let got = time::timeout(day, std::future::pending::<()>()).await;
    assert!(got.is_err());
    assert!(
        start.elapsed() >= day,
        "the paused clock jumped to the deadline"
    );
}

#[overlap::test(start_paused = false)]
async fn start_paused_false_leaves_the_clock_running() {
    assert!(!time::is_paused());
}

#[should_panic(expected = "should_panic written above the attribute")]
#[overlap::test]
async fn should_panic_written_above_the_attribute_applies_too() {
    overlap::task::yield_now().await;
    panic!("should_panic written above the attribute");
}

#[overlap::test]
#[should_panic(expected = "an awaited task's panic")]
async fn a_panic_of_an_awaited_task_unwrapped_fails_the_test() {
    let task = overlap::spawn(async { panic!("an awaited task's panic") });
    if let Err(e) = task.await {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[test]
fn main_runs_functions_of_every_shape_and_gives_back_their_result() {
    struct NotANumber(String);
    #[overlap::main]
    async fn parse(s: &str) -> Result<u32, NotANumber> {
        overlap::task::yield_now().await;
        s.parse().map_err(|_| NotANumber(s.to_string()))
    }
    #[overlap::main]
    async fn longest<'a, T>(items: &'a [T], len: impl Fn(&T) -> usize) -> Option<&'a T>
    where
        T: std::fmt::Debug,
    {
        overlap::task::yield_now().await;
        items.iter().max_by_key(|item| len(item))
    }
    #[overlap::main(start_paused = true)]
    async fn sum((a, b): (u32, u32), [c, d]: [u32; 2]) -> u32 {
        time::sleep(Duration::from_secs(60)).await;
        a + b + c + d
    }
    assert_eq!(parse("42").ok(), Some(42));
    assert_eq!(parse("4x2").err().map(|e| e.0), Some("4x2".to_string()));
    assert_eq!(longest(&["a", "ccc", "bb"], |s| s.len()), Some(&"ccc"));
    assert_eq!(longest::<u8>(&[], |_| 0), None);
    assert_eq!(sum((1, 2), [3, 4]), 10);
}

/// A module that shadows the names a macro's expansion might reach for unqualified: each
/// macro must still compile and run here.
#[allow(
    dead_code,
    non_camel_case_types,
    unused_imports,
    unused_macros,
    clippy::all
)]
mod shadowed {
    use super::Log;

    pub struct Pin;
    pub struct Poll;
    pub struct Context;
    pub struct Box;
    pub trait Future {}
    pub trait IntoFuture {}
    pub trait Unpin {}
    pub trait Default {}
    pub trait Drop {}
    pub struct u64;
    pub struct usize;
    pub struct bool;
    pub struct Vec;
    pub struct String;
    pub enum Option<T> {
        Some(T),
        None,
    }
    pub use Option::{None, Some};
    pub enum Result<T, E> {
        Ok(T),
        Err(E),
    }
    pub use Result::{Err, Ok};
    macro_rules! select {
        ($($t:tt)*) => {
            compile_error!("the user's own select! was reached")
        };
    }
    macro_rules! join {
        ($($t:tt)*) => {
            compile_error!("the user's own join! was reached")
        };
    }
    macro_rules! panic {
        ($($t:tt)*) => {
            compile_error!("the user's own panic! was reached")
        };
    }
    macro_rules! unreachable {
        ($($t:tt)*) => {
            compile_error!("the user's own unreachable! was reached")
        };
    }
    mod core {}
    mod std {}
    mod overlap {}
    mod futures_util {}

    fn log_of(log: &Log) -> ::std::vec::Vec<::std::string::String> {
        log.borrow().clone()
    }

    #[::overlap::test]
    async fn every_macro_expands_where_the_usual_names_are_shadowed() {
        let log: Log = ::std::rc::Rc::default();
        let some = |v: u32| Some(v);
        let got = ::overlap::select! {
            Some(n) = async { some(1) } => n,
            _ = ::std::future::pending::<()>() => 0,
            else => 2,
        };
        ::std::assert_eq!(got, 1);
        let got = ::overlap::select! {
            biased;
            None = async { Option::<u32>::None }, if true => 3,
            n = async { 4 } => n,
            default => 5,
        };
        ::std::assert_eq!(got, 3);
        let got =
            ::overlap::select_biased! { Ok(n) = async { Ok::<u32, ()>(6) } => n, complete => 0 };
        ::std::assert_eq!(got, 6);
        let (a, b) = ::overlap::join!(async { 7 }, async { 8 });
        ::std::assert_eq!((a, b), (7, 8));
        let got = ::overlap::try_join!(async { ::core::result::Result::<u32, ()>::Ok(9) }, async {
            ::core::result::Result::<u32, ()>::Ok(10)
        });
        ::std::assert_eq!(got, ::core::result::Result::Ok((9, 10)));
        let fut = async { 11 };
        ::overlap::pin!(fut);
        let other = async { 12 };
        ::overlap::pin_mut!(other);
        let got = ::overlap::select! { n = fut => n, _ = ::std::future::pending::<()>() => 0 };
        ::std::assert_eq!(got + other.await, 23);
        log.borrow_mut().push("ran".into());
        ::std::assert_eq!(log_of(&log), ["ran"]);
    }

    #[::overlap::main]
    pub async fn main_here(n: u32) -> ::core::result::Result<u32, ()> {
        ::core::result::Result::Ok(::overlap::spawn(async move { n + 1 }).await.unwrap())
    }
}

#[test]
fn main_expands_where_the_usual_names_are_shadowed() {
    assert_eq!(shadowed::main_here(41), Ok(42));
}
