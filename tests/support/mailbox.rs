//! A one-value mailbox that any thread fills and a task awaits: a minimal cross-thread
//! channel built only on `Waker`, for the wake tests.

use std::future::poll_fn;
use std::sync::Mutex;
use std::task::{Poll, Waker};

/// A one-slot mailbox: whoever fills it wakes whoever waits.
pub struct Mailbox<T> {
    slot: Mutex<(Option<T>, Option<Waker>)>,
}

impl<T> Default for Mailbox<T> {
    fn default() -> Self {
        Mailbox {
            slot: Mutex::new((None, None)),
        }
    }
}

impl<T> Mailbox<T> {
    pub fn put(&self, v: T) {
        let w = {
            let mut g = self.slot.lock().unwrap();
            g.0 = Some(v);
            g.1.take()
        };
        if let Some(w) = w {
            w.wake();
        }
    }

    pub async fn take(&self) -> T {
        poll_fn(|cx| {
            let mut g = self.slot.lock().unwrap();
            match g.0.take() {
                Some(v) => Poll::Ready(v),
                None => {
                    g.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }
}
