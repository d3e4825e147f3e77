//! `UdpSocket::send_to` given a literal address allocates nothing: a server answering each
//! datagram with `send_to(buf, peer)` pays no allocator round trip per datagram (tokio's
//! does not either). A host name still goes through the resolver.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;

use overlap::net::UdpSocket;

/// Counts this thread's allocations, passing them on to the system allocator.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is passed on unchanged to `System`, which upholds the contract; the
// counter is a thread-local `Cell` with a const initialiser, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's guarantees for `alloc` are passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with `layout` (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn send_to_a_literal_address_allocates_nothing() {
    overlap::block_on(async {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to: SocketAddr = rx.local_addr().unwrap();
        // Warm-up: the first operations may set up per-socket state.
        tx.send_to(b"warm", to).await.unwrap();
        let mut buf = [0u8; 16];
        rx.recv_from(&mut buf).await.unwrap();

        let before = allocations();
        for _ in 0..32 {
            assert_eq!(tx.send_to(b"datagram", to).await.unwrap(), 8);
        }
        let spent = allocations() - before;
        assert_eq!(
            spent, 0,
            "32 send_to calls to a SocketAddr allocated {spent} times"
        );

        for _ in 0..32 {
            assert_eq!(
                rx.recv_from(&mut buf).await.unwrap(),
                (8, tx.local_addr().unwrap())
            );
        }
    });
}
