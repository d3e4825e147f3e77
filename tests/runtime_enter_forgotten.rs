//! A `Runtime::enter` guard that is forgotten (`mem::forget`) keeps its runtime current for
//! good; once that runtime is dropped it must act closed, never as a live runtime. (Apart
//! from the runtime_enter suite because the forgotten guard leaks by design, which valgrind
//! would report.)

use overlap::Runtime;

#[test]
fn a_forgotten_guard_leaves_its_dropped_runtime_closed() {
    let rt = Runtime::new().unwrap();
    std::mem::forget(rt.enter());
    drop(rt);
    // Still current (the forgotten guard keeps it), but closed: a spawn is cancelled at once
    // rather than touched as a live runtime's task.
    let task = overlap::spawn(async { 1 });
    assert!(task.is_finished());
    let other = Runtime::new().unwrap();
    assert!(other.block_on(task).unwrap_err().is_cancelled());
}
