//! Liveness of an idle TCP connection, judged without writing or consuming a
//! byte: end of file, a reset, an error or unread bytes (a reply nobody
//! asked for) all mean the connection cannot be handed out again.

use std::os::fd::{AsFd, AsRawFd, RawFd};

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

/// Whether an idle TCP socket cannot be reused, judged by a non-blocking
/// one-byte `MSG_PEEK`: end of file, a reset, an error, or unread bytes (a
/// reply nobody asked for). Nothing is written and nothing is consumed.
///
/// The TCP managers' checkout check; for a protocol manager whose socket
/// nobody else reads while it is idle. When a client library's own task
/// reads the socket (tokio-postgres, hyper), bytes it has not read yet are
/// not a fault: use [`peer_closed`] there.
///
/// # Examples
///
/// ```
/// use ringpool::tcp::peek_is_broken;
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let client = std::net::TcpStream::connect(listener.local_addr()?)?;
/// let (server, _) = listener.accept()?;
/// assert!(!peek_is_broken(&client));
/// drop(server);
/// # for _ in 0..1000 { if peek_is_broken(&client) { break; } std::thread::yield_now(); }
/// assert!(peek_is_broken(&client));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn peek_is_broken(socket: &impl AsFd) -> bool {
    peek_says_broken(socket.as_fd().as_raw_fd())
}

/// Whether the peer has closed or reset a TCP socket, or it has an error,
/// with one non-blocking `poll(2)` for `POLLRDHUP`: unread bytes do not
/// count, so it suits sockets a client library's task reads on its own.
///
/// # Examples
///
/// ```
/// use ringpool::tcp::peer_closed;
/// use std::io::Write;
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let client = std::net::TcpStream::connect(listener.local_addr()?)?;
/// let (mut server, _) = listener.accept()?;
/// server.write_all(b"unread")?;
/// assert!(!peer_closed(&client));
/// drop(server);
/// # for _ in 0..1000 { if peer_closed(&client) { break; } std::thread::yield_now(); }
/// assert!(peer_closed(&client));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn peer_closed(socket: &impl AsFd) -> bool {
    let mut polled = libc::pollfd {
        fd: socket.as_fd().as_raw_fd(),
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid pollfd that outlives the call; a zero timeout never
    // blocks.
    let ready = unsafe { libc::poll(&mut polled, 1, 0) };
    ready > 0
        && polled.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
}

/// [`peer_closed`] on a raw descriptor.
#[cfg(any(feature = "postgres", feature = "redis", feature = "http"))]
pub(crate) fn peer_closed_raw(fd: RawFd) -> bool {
    // SAFETY: the caller's descriptor is only polled, never closed or read;
    // a stale number polls as POLLNVAL, reported as closed.
    peer_closed(&unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) })
}
