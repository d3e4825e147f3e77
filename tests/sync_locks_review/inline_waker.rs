//! A waker that polls its future inside `wake`, as an executor running a woken task inline
//! would: the lock review's way to hand a lock over while the releasing guard is still
//! being dropped.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Wake, Waker};

thread_local! {
    /// The futures an [`Inline`] waker polls, by id, and what their holders saw, in order.
    static INLINE: RefCell<InlineFutures> = Default::default();
}

#[derive(Default)]
pub struct InlineFutures {
    waiting: HashMap<usize, Pin<Box<dyn Future<Output = ()>>>>,
    seen: Vec<String>,
}

/// Notes what a holder saw, while it holds the lock.
pub fn saw(what: String) {
    INLINE.with(|f| f.borrow_mut().seen.push(what));
}

/// A waker that polls its future at once, inside `wake` (an executor that runs a woken task
/// inline): the lock then hands over while the releasing guard is still being dropped.
pub struct Inline(usize);

impl Wake for Inline {
    fn wake(self: Arc<Self>) {
        let fut = INLINE.with(|f| f.borrow_mut().waiting.remove(&self.0));
        let Some(mut fut) = fut else { return };
        let waker = Waker::from(self.clone());
        if fut
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
        {
            INLINE.with(|f| f.borrow_mut().waiting.insert(self.0, fut));
        }
    }
}

/// Polls `fut` once under an [`Inline`] waker, leaving it to be polled inside its wake.
pub fn wait_inline(id: usize, fut: impl Future<Output = ()> + 'static) {
    let mut fut: Pin<Box<dyn Future<Output = ()>>> = Box::pin(fut);
    let waker = Waker::from(Arc::new(Inline(id)));
    assert!(fut
        .as_mut()
        .poll(&mut Context::from_waker(&waker))
        .is_pending());
    INLINE.with(|f| f.borrow_mut().waiting.insert(id, fut));
}

/// What the holders saw, in order, taken; and whether any future is still waiting.
pub fn take_seen() -> (Vec<String>, bool) {
    INLINE.with(|f| {
        let mut f = f.borrow_mut();
        (std::mem::take(&mut f.seen), !f.waiting.is_empty())
    })
}
