//! Thin wrappers over the Linux syscalls the runtime uses.
//!
//! Every `unsafe` call into `libc` made by the runtime lives below this module, so the
//! executor, reactor and timer logic above it are plain safe Rust.

/// Calls a `libc` function and turns a `-1` return into `io::Error::last_os_error()`.
///
/// Every call site carries a `// SAFETY:` comment that justifies the arguments it passes
/// (pointers valid for the lengths given, fds owned by the caller).
#[macro_export]
#[doc(hidden)]
macro_rules! syscall {
    ($fn: ident ( $($arg: expr),* $(,)? ) ) => {{
        #[allow(unused_unsafe)]
        // SAFETY: the call site's `// SAFETY:` comment justifies these arguments.
        let res = unsafe { ::libc::$fn($($arg, )*) };
        if res == -1 {
            Err(::std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}

pub(crate) mod affinity;
pub(crate) mod epoll;
pub(crate) mod eventfd;
pub(crate) mod fd;
pub(crate) mod poll;
pub(crate) mod signal;
pub(crate) mod timerslack;
