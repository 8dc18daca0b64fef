//! Batched liveness checks: one non-blocking `MSG_PEEK` receive per socket,
//! all in one submission, instead of a system call each.

use std::cell::RefCell;
use std::os::fd::RawFd;

use io_uring::{IoUring, opcode, types};

/// Largest batch submitted at once.
const BATCH: usize = 1024;

thread_local! {
    static RING: RefCell<Option<IoUring>> = const { RefCell::new(None) };
}

/// What a non-blocking one-byte peek says about a socket: `EAGAIN` means
/// alive and quiet; end of file, a reset or unread bytes mean it cannot be
/// reused.
pub(crate) fn peek_says_broken(result: isize, errno: i32) -> bool {
    match result {
        0 => true,
        n if n > 0 => true,
        _ => errno != libc::EAGAIN && errno != libc::EWOULDBLOCK,
    }
}

/// Peeks every socket in `fds`; `broken[i]` tells whether `fds[i]` is dead.
/// Runs on a ring owned by the calling thread; falls back to a system call
/// per socket if that ring cannot be set up.
pub(crate) fn peek_all(fds: &[RawFd]) -> Vec<bool> {
    RING.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            // One thread submits and reaps: let the kernel defer its task
            // work to our wait instead of interrupting us.
            *cell = IoUring::builder()
                .setup_single_issuer()
                .setup_defer_taskrun()
                .setup_coop_taskrun()
                .build(BATCH as u32)
                .or_else(|_| IoUring::new(BATCH as u32))
                .ok();
        }
        match cell.as_mut() {
            Some(ring) => fds
                .chunks(BATCH)
                .flat_map(|chunk| peek_chunk(ring, chunk))
                .collect(),
            None => fds.iter().map(|&fd| peek_one(fd)).collect(),
        }
    })
}

fn peek_chunk(ring: &mut IoUring, fds: &[RawFd]) -> Vec<bool> {
    let mut scratch = vec![0u8; fds.len()];
    for (index, &fd) in fds.iter().enumerate() {
        let entry = opcode::Recv::new(types::Fd(fd), scratch[index..].as_mut_ptr(), 1)
            .flags(libc::MSG_PEEK | libc::MSG_DONTWAIT)
            .build()
            .user_data(index as u64);
        // SAFETY: `scratch` outlives the submission: every completion is
        // reaped below before it is dropped. The queue holds BATCH entries
        // and a chunk is at most BATCH long, so the push cannot fail.
        unsafe { ring.submission().push(&entry) }.expect("chunk fits the submission queue");
    }
    let mut broken = vec![true; fds.len()];
    let mut reaped = 0;
    while reaped < fds.len() {
        if let Err(error) = ring.submit_and_wait(fds.len() - reaped) {
            if error.raw_os_error() != Some(libc::EINTR) {
                tracing::error!(%error, "ringpool: batched liveness check failed");
                return fds.iter().map(|&fd| peek_one(fd)).collect();
            }
        }
        for cqe in ring.completion() {
            let result = cqe.result();
            broken[cqe.user_data() as usize] = peek_says_broken(result as isize, -result);
            reaped += 1;
        }
    }
    broken
}

/// The same check with one system call.
pub(crate) fn peek_one(fd: RawFd) -> bool {
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
    peek_says_broken(result, errno)
}

/// The same check for many sockets with one `poll(2)` call and a zero
/// timeout: a quiet, healthy socket reports no event; end of file, a reset,
/// an error or unread bytes report one.
pub(crate) fn poll_all(fds: &[RawFd]) -> Vec<bool> {
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
        return fds.iter().map(|&fd| peek_one(fd)).collect();
    }
    polled.iter().map(|p| p.revents != 0).collect()
}
