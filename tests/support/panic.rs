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

/// What a [`Loud`] value's destructor panics with.
pub const LOUD_DROPPED: &str = "a loud value dropped";

/// A value whose destructor counts into its counter, then panics with [`LOUD_DROPPED`]: an
/// output, or a panic payload, that a careless drop lets unwind into whatever dropped it.
pub struct Loud(pub std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Loud {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        panic!("{LOUD_DROPPED}");
    }
}

/// Silences the panics a test binary makes on purpose (a [`Loud`] payload, a [`Loud`]
/// value's drop, a message starting with `prefix`); any other is reported as usual. The
/// hook is set once per process: the first call's `prefix` stands.
pub fn quiet_panics(prefix: &'static str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied());
            let loud = payload.downcast_ref::<Loud>().is_some();
            let on_purpose = message.is_some_and(|m| m.starts_with(prefix) || m == LOUD_DROPPED);
            if !loud && !on_purpose {
                report(info);
            }
        }));
    });
}
