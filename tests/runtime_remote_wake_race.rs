//! A task waker woken by value on another thread gives up its own claim on the runtime: the
//! queued wake is then the only one. The runtime thread may drain it, finish, and drop the
//! runtime while the waking thread is still inside `wake()`; the waking thread must touch
//! nothing of the runtime after queueing (it used to bump a counter and signal through the
//! freed `Shared`). Realistic triggers: a blocking-pool job handing its result back, any std
//! thread finishing work, while the program drops its runtime.
//!
//! The window is widened without changing the runtime: the waking thread runs at
//! `SCHED_IDLE` on the runtime thread's CPU, so it loses the CPU as soon as the runtime thread
//! becomes runnable; an allocator hook (the remote queue's first push allocates) makes the
//! runtime's epoll fd ready while the waker holds the lock (standing for any fd event or
//! timer expiring at that moment), so the unlock hands the CPU to the runtime thread right
//! before the signal. Freed blocks are poisoned and never returned to malloc, then checked
//! for writes. With the old code 2–6 rounds in 100 wrote into a freed block.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::poll_fn;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::task::{Poll, Waker};

const POISON: u8 = 0x5A;
const Q: usize = 1 << 16;
static QPTR: [AtomicUsize; Q] = [const { AtomicUsize::new(0) }; Q];
static QSIZE: [AtomicUsize; Q] = [const { AtomicUsize::new(0) }; Q];
static QLEN: AtomicUsize = AtomicUsize::new(0);
static QUARANTINE: AtomicBool = AtomicBool::new(false);
static HOOK_FD: AtomicI32 = AtomicI32::new(-1);
static RT_DROPPED: AtomicBool = AtomicBool::new(false);

thread_local! {
    static HOOK_ARMED: Cell<bool> = const { Cell::new(false) };
}

struct Quarantine;

// SAFETY: forwards to System; quarantined blocks are simply never freed.
unsafe impl GlobalAlloc for Quarantine {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { System.alloc(l) };
        if HOOK_ARMED.try_with(|a| a.replace(false)).unwrap_or(false) {
            // The remote queue's first push, under `Shared`'s lock: the runtime's epoll fd
            // becomes ready right now.
            QUARANTINE.store(true, Ordering::SeqCst);
            let one = 1u64;
            // SAFETY: 8 readable bytes.
            unsafe {
                libc::write(
                    HOOK_FD.load(Ordering::SeqCst),
                    (&one as *const u64).cast(),
                    8,
                )
            };
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if QUARANTINE.load(Ordering::SeqCst) {
            let i = QLEN.fetch_add(1, Ordering::SeqCst);
            if i < Q {
                // SAFETY: the block is ours until freed, which it never is now.
                unsafe { std::ptr::write_bytes(p, POISON, l.size()) };
                QSIZE[i].store(l.size(), Ordering::SeqCst);
                QPTR[i].store(p as usize, Ordering::SeqCst);
                return;
            }
        }
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(p, l) };
    }
}

#[global_allocator]
static A: Quarantine = Quarantine;

fn pin_to(cpu: usize) {
    // SAFETY: plain cpu_set_t manipulation and a syscall on this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        assert_eq!(
            libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set),
            0
        );
    }
}

fn first_cpu() -> usize {
    // SAFETY: as above.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(
            libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set),
            0
        );
        (0..libc::CPU_SETSIZE as usize)
            .find(|&c| libc::CPU_ISSET(c, &set))
            .unwrap()
    }
}

/// One runtime, one foreign wake racing its drop. Returns whether the runtime was dropped
/// while the foreign thread was still inside `wake()`.
fn round(cpu: usize, efd: i32) -> bool {
    RT_DROPPED.store(false, Ordering::SeqCst);
    let mut drain = 0u64;
    // SAFETY: 8 writable bytes; resets the (non-blocking) eventfd left readable by the last round.
    unsafe { libc::read(efd, (&mut drain as *mut u64).cast(), 8) };
    let (wtx, wrx) = std::sync::mpsc::channel::<Waker>();
    let waker_thread = std::thread::spawn(move || {
        pin_to(cpu);
        // SAFETY: sched_param is plain data; SCHED_IDLE needs no privilege.
        let rc = unsafe {
            let p: libc::sched_param = std::mem::zeroed();
            libc::sched_setscheduler(0, libc::SCHED_IDLE, &p)
        };
        assert_eq!(rc, 0, "SCHED_IDLE: {}", std::io::Error::last_os_error());
        let w = wrx.recv().unwrap();
        HOOK_ARMED.with(|a| a.set(true));
        // Any foreign thread waking a task by value: a blocking-pool job handing its result
        // back, a std thread finishing work, ...
        w.wake();
        RT_DROPPED.load(Ordering::SeqCst)
    });
    overlap::block_on(async {
        // Some fd on the reactor, so the loop sleeps in epoll.
        // SAFETY: a fresh dup of a valid fd, owned by nobody else.
        let fd = overlap::AsyncFd::new(unsafe { OwnedFd::from_raw_fd(libc::dup(efd)) }).unwrap();
        let mut sent = false;
        poll_fn(|cx| {
            if sent {
                return Poll::Ready(());
            }
            sent = true;
            wtx.send(cx.waker().clone()).unwrap();
            Poll::Pending
        })
        .await;
        drop(fd);
    });
    // `overlap::block_on` dropped its runtime: `Shared` is freed (no Handle, no task left).
    RT_DROPPED.store(true, Ordering::SeqCst);
    waker_thread.join().unwrap()
}

#[test]
fn a_remote_wake_never_touches_a_dropped_runtime() {
    let cpu = first_cpu();
    pin_to(cpu);
    // SAFETY: eventfd takes no pointers.
    let efd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    assert!(efd >= 0);
    HOOK_FD.store(efd, Ordering::SeqCst);
    // Rounds until the runtime was dropped inside `wake()` a few times: that is the window
    // checked. (On this kind of machine it happens in a few rounds per hundred; with every
    // CPU busy with other work, sometimes in none of 2,000, which the quarantine's size
    // bounds.)
    let (mut rounds, mut raced) = (0, 0);
    while raced < 5 && rounds < 2000 {
        rounds += 1;
        raced += usize::from(round(cpu, efd));
    }
    QUARANTINE.store(false, Ordering::SeqCst);

    let mut hits = Vec::new();
    for i in 0..QLEN.load(Ordering::SeqCst).min(Q) {
        let (p, size) = (
            QPTR[i].load(Ordering::SeqCst),
            QSIZE[i].load(Ordering::SeqCst),
        );
        // SAFETY: quarantined blocks are never freed.
        let bytes = unsafe { std::slice::from_raw_parts(p as *const u8, size) };
        if let Some(off) = bytes.iter().position(|&b| b != POISON) {
            let word = &bytes[off & !7..(off & !7) + 8];
            hits.push(format!(
                "freed block of {size} B, u64 at offset {} now {word:02x?}",
                off & !7
            ));
        }
    }
    assert!(
        hits.is_empty(),
        "{raced}/{rounds} rounds dropped the runtime while wake() ran; writes after free: {hits:#?}"
    );
    if raced == 0 {
        // Not a pass to rely on: say so where the test output shows it.
        eprintln!("in {rounds} rounds the runtime was never dropped while wake() ran: the race was not exercised (a loaded machine?)");
    }
}
