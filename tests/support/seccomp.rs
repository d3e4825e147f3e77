//! Fault injection: a seccomp filter that makes chosen syscalls fail with a chosen errno,
//! for the rest of the calling process's life (all its threads, present and future). Call
//! it only in a child of its own (see [`run_in_child`](super::run_in_child)). A rule may
//! also only count its calls ([`trap_arg0`]), which then do nothing and return 0.

use std::sync::atomic::{AtomicUsize, Ordering};

/// One syscall to fail: its number (`libc::SYS_*`), the errno to fail with, and optionally
/// the value its first argument must have (low 32 bits) for the rule to apply. With `trap`,
/// the call is counted in [`trapped`] and returns 0 instead (`errno` unused).
#[derive(Clone, Copy, Debug)]
pub struct Deny {
    pub nr: libc::c_long,
    pub errno: i32,
    pub arg0: Option<u32>,
    pub trap: bool,
}

/// Fails the syscall `nr` with `errno`, whatever its arguments.
pub fn rule(nr: libc::c_long, errno: i32) -> Deny {
    Deny {
        nr,
        errno,
        arg0: None,
        trap: false,
    }
}

/// Fails the syscall `nr` with `errno` when its first argument is `arg0` (an fd, say).
pub fn rule_arg0(nr: libc::c_long, arg0: u32, errno: i32) -> Deny {
    Deny {
        nr,
        errno,
        arg0: Some(arg0),
        trap: false,
    }
}

/// Counts the calls of `nr` whose first argument is `arg0` (see [`trapped`]) instead of
/// making them: each returns 0 at once, having done nothing.
pub fn trap_arg0(nr: libc::c_long, arg0: u32) -> Deny {
    Deny {
        nr,
        errno: 0,
        arg0: Some(arg0),
        trap: true,
    }
}

/// Counts every call of `nr` (see [`trapped`]) instead of making it: each returns 0 at
/// once, having done nothing.
pub fn trap(nr: libc::c_long) -> Deny {
    Deny {
        nr,
        errno: 0,
        arg0: None,
        trap: true,
    }
}

/// How many calls the trap rules caught so far.
pub fn trapped() -> usize {
    TRAPPED.load(Ordering::SeqCst)
}

static TRAPPED: AtomicUsize = AtomicUsize::new(0);

/// The `SIGSYS` handler of the trap rules: counts the call and makes it return 0.
extern "C" fn on_sigsys(_: libc::c_int, _: *mut libc::siginfo_t, context: *mut libc::c_void) {
    TRAPPED.fetch_add(1, Ordering::SeqCst);
    let context = context.cast::<libc::ucontext_t>();
    // SAFETY: the kernel passes the interrupted thread's context, which is ours to change
    // until the handler returns; its return-value register is what the call returns.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        {
            (*context).uc_mcontext.gregs[libc::REG_RAX as usize] = 0;
        }
        #[cfg(target_arch = "aarch64")]
        {
            (*context).uc_mcontext.regs[0] = 0;
        }
    }
}

/// Installs [`on_sigsys`] for `SIGSYS`.
fn install_trap_handler() {
    // SAFETY: a zeroed sigaction is "no flags, empty mask"; the handler only touches an
    // atomic and the context the kernel hands it.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            on_sigsys;
        sa.sa_sigaction = handler as libc::sighandler_t;
        sa.sa_flags = libc::SA_SIGINFO;
        assert_eq!(libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut()), 0);
    }
}

/// Makes each syscall of `pairs` fail with its errno from now on, in every thread.
pub fn deny(pairs: &[(libc::c_long, i32)]) {
    let rules: Vec<Deny> = pairs.iter().map(|&(nr, errno)| rule(nr, errno)).collect();
    install(&rules);
}

/// Installs `rules` (the first that matches applies); other syscalls are allowed.
pub fn install(rules: &[Deny]) {
    const LD_NR: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET: u16 = 0x06; // BPF_RET | BPF_K
    const NR_OFFSET: u32 = 0; // seccomp_data.nr
    const ARG0_OFFSET: u32 = 16; // seccomp_data.args[0], low half on little-endian
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    const SECCOMP_RET_TRAP: u32 = 0x0003_0000;
    if rules.iter().any(|r| r.trap) {
        install_trap_handler();
    }
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let mut filter = Vec::new();
    for r in rules {
        // Each rule: load nr; skip the rule unless it matches; [load arg0; skip unless it
        // matches]; return the errno.
        let rest = if r.arg0.is_some() { 3 } else { 1 };
        filter.push(op(LD_NR, 0, 0, NR_OFFSET));
        filter.push(op(JEQ, 0, rest, r.nr as u32));
        if let Some(arg0) = r.arg0 {
            filter.push(op(LD_NR, 0, 0, ARG0_OFFSET));
            filter.push(op(JEQ, 0, 1, arg0));
        }
        let action = if r.trap {
            SECCOMP_RET_TRAP
        } else {
            SECCOMP_RET_ERRNO | (r.errno as u32 & 0xffff)
        };
        filter.push(op(RET, 0, 0, action));
    }
    filter.push(op(RET, 0, 0, SECCOMP_RET_ALLOW));
    let prog = libc::sock_fprog {
        len: u16::try_from(filter.len()).unwrap(),
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    // SECCOMP_FILTER_FLAG_TSYNC applies the filter to every thread of the process.
    // SAFETY: `prog` points at `filter`, both alive for the call; the kernel copies them.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_TSYNC,
            &prog as *const libc::sock_fprog,
        )
    };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
}
