//! Passing descriptors over Unix sockets: which file a descriptor is, sets of distinct
//! files to send, and a peer that writes its own control data with raw `sendmsg`.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use overlap::net::unix::UCred;

/// The file `fd` refers to: its device and inode.
pub fn inode(fd: BorrowedFd<'_>) -> (u64, u64) {
    // SAFETY: an all-zero stat is a valid buffer for fstat to fill.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is open (borrowed) and `st` is writable.
    assert_eq!(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) }, 0);
    (st.st_dev, st.st_ino)
}

pub fn inodes(fds: &[OwnedFd]) -> Vec<(u64, u64)> {
    fds.iter().map(|fd| inode(fd.as_fd())).collect()
}

pub fn is_cloexec(fd: &OwnedFd) -> bool {
    // SAFETY: F_GETFD takes an fd and no pointer; the fd is open (owned).
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
    assert!(flags >= 0);
    flags & libc::FD_CLOEXEC != 0
}

/// `n` descriptors of `n` different files: write ends of pipes whose read ends are closed.
pub fn distinct_files(n: usize) -> Vec<OwnedFd> {
    (0..n).map(|_| super::pipe().1).collect()
}

pub fn borrow_all(fds: &[OwnedFd]) -> Vec<BorrowedFd<'_>> {
    fds.iter().map(AsFd::as_fd).collect()
}

pub fn own_cred() -> libc::ucred {
    // SAFETY: getpid, geteuid and getegid take nothing and cannot fail.
    unsafe {
        libc::ucred {
            pid: libc::getpid(),
            uid: libc::geteuid(),
            gid: libc::getegid(),
        }
    }
}

pub fn own_ucred() -> UCred {
    let c = own_cred();
    UCred {
        pid: c.pid,
        uid: c.uid,
        gid: c.gid,
    }
}

/// One part of the control data of a crafted message.
pub enum Part<'a> {
    /// An `SCM_RIGHTS` part carrying these descriptors.
    Rights(&'a [RawFd]),
    /// An `SCM_CREDENTIALS` part claiming these credentials.
    Cred(libc::ucred),
}

/// One `sendmsg` (not waiting, no `SIGPIPE`) of `data` with `parts` as its control data,
/// in that order, each its own `cmsghdr`: a peer that says things `send_with_fds` never
/// does.
pub fn sendmsg_parts(sock: RawFd, data: &[u8], parts: &[Part<'_>]) -> std::io::Result<usize> {
    let payload = |p: &Part<'_>| match p {
        Part::Rights(fds) => std::mem::size_of_val(*fds),
        Part::Cred(_) => std::mem::size_of::<libc::ucred>(),
    };
    // SAFETY: CMSG_SPACE only computes a size.
    let space = |len: usize| unsafe { libc::CMSG_SPACE(len as u32) } as usize;
    let total: usize = parts.iter().map(|p| space(payload(p))).sum();
    let mut control = vec![0u64; total.div_ceil(8)];
    let base = control.as_mut_ptr().cast::<u8>();
    let mut offset = 0;
    for part in parts {
        let len = payload(part);
        // SAFETY: each header starts at a multiple of CMSG_SPACE (8-aligned, as the u64
        // buffer is) and its header and data lie within `total` bytes; the data, which
        // need not be aligned for its type, is written byte-wise.
        unsafe {
            let hdr = base.add(offset).cast::<libc::cmsghdr>();
            (*hdr).cmsg_level = libc::SOL_SOCKET;
            (*hdr).cmsg_len = libc::CMSG_LEN(len as u32) as _;
            let data = libc::CMSG_DATA(hdr);
            match part {
                Part::Rights(fds) => {
                    (*hdr).cmsg_type = libc::SCM_RIGHTS;
                    std::ptr::copy_nonoverlapping(fds.as_ptr().cast::<u8>(), data, len);
                }
                Part::Cred(cred) => {
                    (*hdr).cmsg_type = libc::SCM_CREDENTIALS;
                    std::ptr::write_unaligned(data.cast::<libc::ucred>(), *cred);
                }
            }
        }
        offset += space(len);
    }
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut _,
        iov_len: data.len(),
    };
    // SAFETY: an all-zero msghdr is valid; it is filled in below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = total as _;
    // SAFETY: `msg` describes buffers that outlive the call; the kernel only reads them.
    let n = unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(n as usize)
}
