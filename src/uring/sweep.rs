//! Batched liveness checks: one non-blocking `MSG_PEEK` receive per socket,
//! all in one submission, instead of a system call each.

use std::cell::RefCell;
use std::os::fd::RawFd;

use io_uring::{IoUring, opcode, types};

use crate::tcp::liveness::{peek_result_says_broken, peek_says_broken};

/// Largest batch submitted at once.
const BATCH: usize = 1024;

thread_local! {
    static RING: RefCell<Option<IoUring>> = const { RefCell::new(None) };
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
            None => fds.iter().map(|&fd| peek_says_broken(fd)).collect(),
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
        if let Err(error) = ring.submit_and_wait(fds.len() - reaped)
            && error.raw_os_error() != Some(libc::EINTR)
        {
            tracing::error!(%error, "batched liveness check failed");
            return fds.iter().map(|&fd| peek_says_broken(fd)).collect();
        }
        for cqe in ring.completion() {
            let result = cqe.result();
            broken[cqe.user_data() as usize] = peek_result_says_broken(result as isize, -result);
            reaped += 1;
        }
    }
    broken
}
