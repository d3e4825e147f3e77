//! Reading caught panics.

/// The message of a caught panic (`panic!` with a literal or a format), or "" for another
/// payload.
pub fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<&str>() {
        Ok(m) => m.to_string(),
        Err(p) => p.downcast::<String>().map(|m| *m).unwrap_or_default(),
    }
}
