//! Passing file descriptors over Unix sockets: `sendmsg` and `recvmsg` with `SCM_RIGHTS`,
//! and the sender's credentials a receive gets (`SCM_CREDENTIALS`).

use std::io;
use std::mem;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;

use overlap_runtime::syscall;

use super::{SockAddr, Socket};

/// The most descriptors one message carries (the kernel's `SCM_MAX_FD`; more is `EINVAL`).
pub(crate) const MAX_FDS: usize = 253;

const FD_SIZE: usize = mem::size_of::<RawFd>();

/// The control message holding a pidfd of the sender that the kernel installs with each
/// message received by a socket with `SO_PASSPIDFD` on (Linux 6.5; `linux/socket.h`,
/// which the libc crate does not name for Linux).
const SCM_PIDFD: libc::c_int = 0x04;

// SAFETY: CMSG_SPACE only computes a length from its argument; it touches no memory.
const CONTROL_LEN: usize = unsafe {
    libc::CMSG_SPACE((MAX_FDS * FD_SIZE) as u32) as usize
        + libc::CMSG_SPACE(mem::size_of::<libc::ucred>() as u32) as usize
        + libc::CMSG_SPACE(FD_SIZE as u32) as usize
};

/// A control buffer with room for [`MAX_FDS`] descriptors, a credentials message (sent
/// along when the receiver has `SO_PASSCRED` on) and a pidfd message (`SO_PASSPIDFD`, set
/// by hand: without room for it, the most descriptors would be cut and the message lost),
/// aligned for `cmsghdr`.
#[repr(C)]
struct Control {
    _align: [libc::cmsghdr; 0],
    bytes: [u8; CONTROL_LEN],
}

impl Control {
    fn new() -> Control {
        Control {
            _align: [],
            bytes: [0; CONTROL_LEN],
        }
    }
}

/// What one `recvmsg` with room for descriptors took.
pub(crate) struct Received {
    /// Bytes received into the buffer.
    pub(crate) len: usize,
    /// The kernel had more ancillary data than it gave (`MSG_CTRUNC`): descriptors it could
    /// not install (the process is out of them) were closed.
    pub(crate) fds_cut: bool,
    /// The sender's credentials, if the message carried them (`SCM_CREDENTIALS`: the
    /// receiver has `SO_PASSCRED` on).
    pub(crate) cred: Option<libc::ucred>,
}

impl Socket {
    /// `sendmsg` of `buf` (`MSG_NOSIGNAL`) with `fds` in one `SCM_RIGHTS` message; none if
    /// `fds` is empty. The caller keeps `fds` at most [`MAX_FDS`] long.
    pub(crate) fn send_with_fds(&self, buf: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
        self.send_to_with_fds(buf, fds, None)
    }

    /// [`send_with_fds`](Self::send_with_fds) to the address `to`, if any (an unconnected
    /// datagram socket's `sendto`).
    pub(crate) fn send_to_with_fds(
        &self,
        buf: &[u8],
        fds: &[BorrowedFd<'_>],
        to: Option<&SockAddr>,
    ) -> io::Result<usize> {
        assert!(fds.len() <= MAX_FDS, "checked by the caller");
        let mut iov = libc::iovec {
            iov_base: buf.as_ptr().cast_mut().cast(),
            iov_len: buf.len(),
        };
        let mut control = Control::new();
        // SAFETY: an all-zero msghdr is valid: no name, no iovecs, no control buffer.
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if let Some(to) = to {
            msg.msg_name = to.as_ptr().cast_mut().cast();
            msg.msg_namelen = to.len();
        }
        if !fds.is_empty() {
            let data_len = (fds.len() * FD_SIZE) as u32;
            msg.msg_control = control.bytes.as_mut_ptr().cast();
            // SAFETY: a length computation only.
            msg.msg_controllen = unsafe { libc::CMSG_SPACE(data_len) } as _;
            // The fds are written byte-wise: the data is not aligned for RawFd as such.
            // SAFETY: `msg_control` points at `msg_controllen` (<= CONTROL_LEN, as fds <=
            // MAX_FDS) bytes aligned for a cmsghdr, holding the first header and its data.
            unsafe {
                let cmsg = libc::CMSG_FIRSTHDR(&msg);
                (*cmsg).cmsg_level = libc::SOL_SOCKET;
                (*cmsg).cmsg_type = libc::SCM_RIGHTS;
                (*cmsg).cmsg_len = libc::CMSG_LEN(data_len) as _;
                let data = libc::CMSG_DATA(cmsg);
                for (i, fd) in fds.iter().enumerate() {
                    let raw: RawFd = std::os::fd::AsRawFd::as_raw_fd(fd);
                    ptr::write_unaligned(data.add(i * FD_SIZE).cast::<RawFd>(), raw);
                }
            }
        }
        // SAFETY: `msg` points at one iovec describing `buf`, valid for reads of its length,
        // at a control buffer holding one well-formed SCM_RIGHTS message of open fds
        // (borrowed for the call), or at none, and at `to`'s address of `msg_namelen`
        // bytes, which the kernel only reads, or at none; all outlive the call.
        let n = syscall!(sendmsg(self.raw(), &msg, libc::MSG_NOSIGNAL))?;
        Ok(n as usize)
    }

    /// `recvmsg` into `buf` with room for [`MAX_FDS`] descriptors, which it appends to `fds`
    /// as they come (made close-on-exec by the kernel: `MSG_CMSG_CLOEXEC`), and the
    /// sender's credentials if the message carried them. A pidfd the kernel added (the
    /// socket has `SO_PASSPIDFD` on, by hand: nothing here returns it) is closed.
    pub(crate) fn recv_with_fds(
        &self,
        buf: &mut [u8],
        fds: &mut Vec<OwnedFd>,
    ) -> io::Result<Received> {
        self.recv_from_with_fds(buf, fds, None)
    }

    /// [`recv_with_fds`](Self::recv_with_fds), writing the sender's address into `from`,
    /// if any.
    pub(crate) fn recv_from_with_fds(
        &self,
        buf: &mut [u8],
        fds: &mut Vec<OwnedFd>,
        mut from: Option<&mut SockAddr>,
    ) -> io::Result<Received> {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut control = Control::new();
        // SAFETY: an all-zero msghdr is valid: no name, no iovecs, no control buffer.
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.bytes.as_mut_ptr().cast();
        msg.msg_controllen = CONTROL_LEN as _;
        if let Some(from) = from.as_deref_mut() {
            msg.msg_name = from.as_mut_ptr().cast();
            msg.msg_namelen = from.len();
        }
        // SAFETY: `msg` points at one iovec describing `buf`, valid for writes of its length,
        // at a control buffer of `msg_controllen` writable bytes, and at `from`'s storage of
        // `msg_namelen` writable bytes or at none; all outlive the call.
        let n = syscall!(recvmsg(self.raw(), &mut msg, libc::MSG_CMSG_CLOEXEC))?;
        if let Some(from) = from {
            *from.len_mut() = msg.msg_namelen;
            from.clamp_len();
        }
        let mut cred = None;
        // CMSG_FIRSTHDR/CMSG_NXTHDR walk the headers within `msg_controllen` and give null
        // past the last; an SCM_RIGHTS data part holds `cmsg_len - CMSG_LEN(0)` bytes of
        // fds, an SCM_CREDENTIALS one a `ucred`, both read byte-wise as the data need not
        // be aligned for their types.
        // A credentials part is checked to hold a whole `ucred` before it is read, a pidfd
        // part a whole fd.
        // SAFETY: the kernel wrote well-formed cmsg headers, and each fd it installed is new
        // in this process and owned here alone, exactly once.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                let data = libc::CMSG_DATA(cmsg);
                let len = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                match ((*cmsg).cmsg_level, (*cmsg).cmsg_type) {
                    (libc::SOL_SOCKET, libc::SCM_RIGHTS) => {
                        for i in 0..len / FD_SIZE {
                            let raw = ptr::read_unaligned(data.add(i * FD_SIZE).cast::<RawFd>());
                            fds.push(OwnedFd::from_raw_fd(raw));
                        }
                    }
                    (libc::SOL_SOCKET, libc::SCM_CREDENTIALS)
                        if len >= mem::size_of::<libc::ucred>() =>
                    {
                        cred = Some(ptr::read_unaligned(data.cast::<libc::ucred>()));
                    }
                    // Installed in this process like the passed fds: left alone, it leaked
                    // one fd per message.
                    (libc::SOL_SOCKET, SCM_PIDFD) if len >= FD_SIZE => {
                        let raw = ptr::read_unaligned(data.cast::<RawFd>());
                        drop(OwnedFd::from_raw_fd(raw));
                    }
                    _ => {}
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        Ok(Received {
            len: n as usize,
            fds_cut: msg.msg_flags & libc::MSG_CTRUNC != 0,
            cred,
        })
    }
}
