//! Liveness of an idle TCP connection, judged without writing or consuming a
//! byte: end of file, a reset, an error or unread bytes (a reply nobody
//! asked for) all mean the connection cannot be handed out again.

use std::os::fd::RawFd;

/// What a non-blocking one-byte peek says about a socket: `EAGAIN` means
/// alive and quiet; end of file, a reset or unread bytes mean it cannot be
/// reused.
pub(crate) fn peek_result_says_broken(result: isize, errno: i32) -> bool {
    match result {
        0 => true,
        n if n > 0 => true,
        _ => errno != libc::EAGAIN && errno != libc::EWOULDBLOCK,
    }
}

/// A non-blocking one-byte `MSG_PEEK` on `fd`: `true` if the socket cannot
/// be reused. Nothing is written and nothing is consumed.
pub(crate) fn peek_says_broken(fd: RawFd) -> bool {
    let mut byte = 0u8;
    // SAFETY: receives at most one byte into a valid local buffer.
    let result = unsafe {
        libc::recv(
            fd,
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    let errno = if result < 0 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    } else {
        0
    };
    peek_result_says_broken(result, errno)
}

/// The peek's verdict for many sockets with one `poll(2)` call and a zero
/// timeout: a quiet, healthy socket reports no event; end of file, a reset,
/// an error or unread bytes report one.
pub(crate) fn poll_says_broken(fds: &[RawFd]) -> Vec<bool> {
    let mut polled: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN | libc::POLLRDHUP,
            revents: 0,
        })
        .collect();
    // SAFETY: `polled` is a valid array of `polled.len()` pollfd structs
    // that outlives the call; a zero timeout never blocks.
    let ready = unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, 0) };
    if ready < 0 {
        return fds.iter().map(|&fd| peek_says_broken(fd)).collect();
    }
    polled.iter().map(|p| p.revents != 0).collect()
}
