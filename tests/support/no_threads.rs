//! Making blocking-pool thread creation fail for a while, then work again: as uid `nobody`,
//! whose `RLIMIT_NPROC` of 1 this process's own threads already exceed. Only for a root
//! process (a child of its own, see [`run_in_child`](super::run_in_child)): it keeps root as
//! its saved uid to come back.

use std::future::Future;
use std::time::Duration;

/// Waits until every pool thread of the current runtime has expired (build it with a short
/// `blocking_keep_alive`).
pub async fn no_pool_threads() {
    let waited = std::time::Instant::now();
    while overlap::metrics().blocking_threads > 0 {
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "pool threads never expired"
        );
        overlap::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs `f`'s future while no thread can start, then lets threads start again.
pub async fn without_new_threads<T, F: Future<Output = T>>(f: impl FnOnce() -> F) -> T {
    // SAFETY: plain id-changing syscalls.
    assert_eq!(unsafe { libc::setresuid(65534, 65534, 0) }, 0);
    super::set_soft_limit(libc::RLIMIT_NPROC, 1);
    let out = f().await;
    super::set_soft_limit(libc::RLIMIT_NPROC, hard_nproc());
    // SAFETY: the saved uid is root, so going back is allowed.
    assert_eq!(unsafe { libc::setresuid(0, 0, 0) }, 0);
    out
}

fn hard_nproc() -> libc::rlim_t {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid rlimit buffer.
    unsafe { assert_eq!(libc::getrlimit(libc::RLIMIT_NPROC, &mut lim), 0) };
    lim.rlim_max
}
