//! Thin wrappers over the Linux syscalls the runtime uses.
//!
//! Every `unsafe` call into `libc` made by the runtime lives below this module, so the
//! executor, reactor and timer logic above it are plain safe Rust.

/// Calls a `libc` function and turns a `-1` return into `io::Error::last_os_error()`.
///
/// The macro itself is safe to invoke only inside an `unsafe` block whose `// SAFETY:` comment
/// justifies the arguments passed to the function.
#[macro_export]
#[doc(hidden)]
macro_rules! syscall {
    ($fn: ident ( $($arg: expr),* $(,)? ) ) => {{
        #[allow(unused_unsafe)]
        let res = unsafe { ::libc::$fn($($arg, )*) };
        if res == -1 {
            Err(::std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}

pub(crate) mod epoll;
pub(crate) mod eventfd;
pub(crate) mod timerslack;
