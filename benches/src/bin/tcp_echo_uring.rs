//! A hand-written TCP echo server on io_uring: one thread, no runtime. Not a server overlap
//! could become by tuning; it measures what a *completion* I/O model reaches on this kernel,
//! next to the epoll loop's readiness limit, in `tcp_bench`.
//!
//! Each connection owns one buffer and has exactly one request in flight: a `recv`; when it
//! completes with data, a `send` of those bytes linked to the next `recv` into the same
//! buffer (the link starts the `recv` only once the `send` has finished, and `MSG_WAITALL`
//! makes the kernel finish a short `send` itself). The `send` asks for no completion when it
//! succeeds, so a round trip is one completion, and one `io_uring_enter` submits every
//! connection's answers and waits for the next requests. A `send` completes only when it
//! failed (at once, or after part of its bytes: its count is then short), and then the
//! `recv` linked to it is cancelled without a completion of its own (the kernel hides the
//! completions of a link that a skip-success request's failure cancels): its connection is
//! closed on the `send`'s. Accepts are multishot. The ring is set up single-issuer with
//! deferred task work, the cheapest mode for one thread.

use std::collections::HashMap;
use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use io_uring::{cqueue, opcode, squeue, types, IoUring};

const ACCEPT: u64 = u64::MAX;
/// Set in a `send`'s user data, next to its connection's token.
const SEND: u64 = 1 << 63;
const BUF: usize = 16 * 1024;

/// A connection: its socket and the buffer its one request in flight uses.
struct Conn {
    fd: OwnedFd,
    buf: Box<[u8]>,
}

fn push(ring: &mut IoUring, entry: squeue::Entry) -> io::Result<()> {
    loop {
        // SAFETY: every buffer an entry points to is owned by a `Conn` that stays in the map
        // (its boxed buffer never moves) until the entry's completion has been reaped.
        if unsafe { ring.submission().push(&entry) }.is_ok() {
            return Ok(());
        }
        ring.submit()?; // the queue is full: hand it to the kernel and retry
    }
}

fn recv(token: u64, conn: &mut Conn) -> squeue::Entry {
    opcode::Recv::new(
        types::Fd(conn.fd.as_raw_fd()),
        conn.buf.as_mut_ptr(),
        BUF as u32,
    )
    .build()
    .user_data(token)
}

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7000".to_string());
    // The ring first: where io_uring is disabled, the server exits before it says it listens.
    let mut ring: IoUring = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_coop_taskrun()
        .build(4096)?;
    let listener = TcpListener::bind(addr.as_str())?;
    println!("listening on {}", listener.local_addr()?);
    let accept = opcode::AcceptMulti::new(types::Fd(listener.as_raw_fd()))
        .build()
        .user_data(ACCEPT);
    push(&mut ring, accept)?;

    let mut conns: HashMap<u64, Conn> = HashMap::new();
    let mut next_token = 0u64;
    let mut done: Vec<(u64, i32, u32)> = Vec::with_capacity(1024);
    loop {
        match ring.submit_and_wait(1) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        done.extend(
            ring.completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
        for (token, res, flags) in done.drain(..) {
            if token == ACCEPT {
                if res >= 0 {
                    // SAFETY: a successful accept completion carries a new fd we now own.
                    let fd = unsafe { OwnedFd::from_raw_fd(res as RawFd) };
                    nodelay(&fd)?;
                    let mut conn = Conn {
                        fd,
                        buf: vec![0u8; BUF].into_boxed_slice(),
                    };
                    push(&mut ring, recv(next_token, &mut conn))?;
                    conns.insert(next_token, conn);
                    next_token += 1;
                }
                if !cqueue::more(flags) {
                    let accept = opcode::AcceptMulti::new(types::Fd(listener.as_raw_fd()))
                        .build()
                        .user_data(ACCEPT);
                    push(&mut ring, accept)?;
                }
                continue;
            }
            // A send's completion: it failed, wholly or after part of its bytes (a count
            // that must not be taken for received data and sent again). Its linked recv was
            // cancelled without a completion, so nothing of this connection is in flight
            // any more: it closes.
            if token & SEND != 0 {
                conns.remove(&(token & !SEND));
                continue;
            }
            // A recv's completion: data is echoed, the end or an error closes the connection.
            if res <= 0 {
                conns.remove(&token);
                continue;
            }
            let Some(conn) = conns.get_mut(&token) else {
                continue;
            };
            let send = opcode::Send::new(
                types::Fd(conn.fd.as_raw_fd()),
                conn.buf.as_ptr(),
                res as u32,
            )
            .flags(libc::MSG_NOSIGNAL | libc::MSG_WAITALL)
            .build()
            .flags(squeue::Flags::IO_LINK | squeue::Flags::SKIP_SUCCESS)
            .user_data(token | SEND);
            push(&mut ring, send)?;
            push(&mut ring, recv(token, conn))?;
        }
    }
}

fn nodelay(fd: &OwnedFd) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: `one` is a valid c_int for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
