//! A hand-written TCP echo server: one thread, one edge-triggered epoll loop, no runtime.
//! The floor in `tcp_bench`.
//!
//! Like overlap, it stops reading after a short read (the buffer is drained) instead of
//! paying for an `EAGAIN`, so a round trip costs one `recv`, one `send` and a share of one
//! `epoll_wait`. Partial sends are kept and finished on `EPOLLOUT`.

use std::collections::HashMap;
use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};

const LISTENER: u64 = u64::MAX;

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn ctl(ep: RawFd, op: libc::c_int, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: token };
    // SAFETY: `ev` is a valid epoll_event for the duration of the call.
    check(unsafe { libc::epoll_ctl(ep, op, fd, &mut ev) })?;
    Ok(())
}

/// A connection and the bytes it still owes its peer.
struct Conn {
    fd: RawFd,
    pending: Vec<u8>,
}

impl Conn {
    /// Sends what is pending; returns false when the socket is closed or failed.
    fn flush(&mut self) -> bool {
        while !self.pending.is_empty() {
            // SAFETY: the pointer and length describe `pending`, which outlives the call.
            let n = unsafe {
                libc::send(
                    self.fd,
                    self.pending.as_ptr().cast(),
                    self.pending.len(),
                    libc::MSG_NOSIGNAL,
                )
            };
            if n < 0 {
                return io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock;
            }
            self.pending.drain(..n as usize);
        }
        true
    }

    /// Reads and echoes until a short read; returns false at EOF or on error.
    fn serve(&mut self, buf: &mut [u8]) -> bool {
        if !self.flush() {
            return false;
        }
        if !self.pending.is_empty() {
            return true; // the peer is slow: wait for EPOLLOUT before reading more
        }
        loop {
            // SAFETY: `buf` is valid for writes of its length.
            let n = unsafe { libc::recv(self.fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock;
            }
            if n == 0 {
                return false;
            }
            let n = n as usize;
            self.pending.extend_from_slice(&buf[..n]);
            if !self.flush() {
                return false;
            }
            if n < buf.len() || !self.pending.is_empty() {
                return true;
            }
        }
    }
}

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7000".to_string());
    let listener = TcpListener::bind(addr.as_str())?;
    listener.set_nonblocking(true)?;
    println!("listening on {}", listener.local_addr()?);
    // SAFETY: epoll_create1 takes only a flag.
    let ep = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    let et = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
    ctl(
        ep,
        libc::EPOLL_CTL_ADD,
        listener.as_raw_fd(),
        libc::EPOLLIN as u32 | libc::EPOLLET as u32,
        LISTENER,
    )?;

    let mut conns: HashMap<u64, Conn> = HashMap::new();
    let mut next_token = 0u64;
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // SAFETY: `events` is a writable array of the length passed.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, -1) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in &events[..n as usize] {
            let token = ev.u64;
            if token == LISTENER {
                while let Ok((stream, _)) = listener.accept() {
                    stream.set_nonblocking(true)?;
                    stream.set_nodelay(true)?;
                    let fd = stream.into_raw_fd();
                    ctl(ep, libc::EPOLL_CTL_ADD, fd, et, next_token)?;
                    conns.insert(
                        next_token,
                        Conn {
                            fd,
                            pending: Vec::new(),
                        },
                    );
                    next_token += 1;
                }
                continue;
            }
            let Some(conn) = conns.get_mut(&token) else {
                continue;
            };
            // An EPOLLOUT-only edge matters only while a send is pending.
            let readish =
                (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
            if ev.events & readish == 0 && conn.pending.is_empty() {
                continue;
            }
            let alive = conn.serve(&mut buf);
            if !alive {
                let conn = conns.remove(&token).expect("present");
                // SAFETY: the fd is owned by this connection and closed once, here.
                unsafe { libc::close(conn.fd) };
            }
        }
    }
}
