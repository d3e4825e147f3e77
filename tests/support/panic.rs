//! Reading caught panics.

/// The message of a caught panic (`panic!` with a literal or a format), or "" for another
/// payload.
pub fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<&str>() {
        Ok(m) => m.to_string(),
        Err(p) => p.downcast::<String>().map(|m| *m).unwrap_or_default(),
    }
}

/// A panic payload whose own destructor panics too: what code that catches a user's panic
/// must contain twice (dropping the payload is user code as well).
pub struct PanickingPayload;

impl Drop for PanickingPayload {
    fn drop(&mut self) {
        panic!("the payload of a panic panics when dropped");
    }
}

/// Panics with a [`PanickingPayload`].
pub fn panic_twice() -> ! {
    std::panic::panic_any(PanickingPayload)
}

/// A waker that panics with a [`PanickingPayload`] when woken.
pub fn waker_panicking_twice() -> std::task::Waker {
    struct PanicOnWake;
    impl std::task::Wake for PanicOnWake {
        fn wake(self: std::sync::Arc<Self>) {
            panic_twice()
        }
    }
    std::task::Waker::from(std::sync::Arc::new(PanicOnWake))
}
