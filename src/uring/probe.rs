//! Detecting io_uring: containers often block it (seccomp), old kernels
//! lack opcodes. Detection happens when a manager is built, and the error
//! names the cause and the fix.

use io_uring::{IoUring, Probe, opcode};

/// Why the io_uring backend cannot be used here.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// `io_uring_setup` failed.
    #[error("io_uring is unavailable: io_uring_setup failed; {fix}")]
    Setup {
        /// The OS error.
        source: std::io::Error,
        /// What to do about it.
        fix: &'static str,
    },
    /// The kernel's io_uring lacks an operation the backend needs.
    #[error(
        "io_uring lacks the {opcode} operation (kernel too old); upgrade to Linux 5.19 or newer, \
         or build the manager with Backend::Blocking"
    )]
    MissingOpcode {
        /// The missing operation.
        opcode: &'static str,
    },
    /// The ring thread could not be started.
    #[error("cannot start the io_uring thread")]
    Thread(#[source] std::io::Error),
    /// The target address did not resolve.
    #[error("cannot resolve the target address")]
    Address(#[source] std::io::Error),
}

fn fix_for(error: &std::io::Error) -> &'static str {
    match error.raw_os_error() {
        Some(libc::EPERM) => {
            "it is blocked: a seccomp profile (Docker's and many Kubernetes defaults block io_uring) \
             or sysctl kernel.io_uring_disabled; allow io_uring_setup, io_uring_enter and \
             io_uring_register, set kernel.io_uring_disabled=0, or build the manager with \
             Backend::Blocking"
        }
        Some(libc::ENOSYS) => {
            "this kernel has no io_uring (it needs Linux 5.6 or newer, 5.19 or newer for every \
             operation used here); upgrade the kernel or build the manager with Backend::Blocking"
        }
        Some(libc::ENOMEM) => {
            "the ring's memory could not be locked; raise RLIMIT_MEMLOCK (ulimit -l) or build the \
             manager with Backend::Blocking"
        }
        _ => "build the manager with Backend::Blocking to run without io_uring",
    }
}

/// Checks that io_uring can be set up here and supports every operation the
/// backend uses (connect, link timeout, close, recv, send, read).
///
/// # Errors
///
/// A [`BackendError`] naming the cause and the fix.
pub fn probe() -> Result<(), BackendError> {
    let ring = IoUring::new(4).map_err(|source| BackendError::Setup {
        fix: fix_for(&source),
        source,
    })?;
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|source| BackendError::Setup {
            fix: fix_for(&source),
            source,
        })?;
    let needed = [
        ("connect", opcode::Connect::CODE),
        ("link timeout", opcode::LinkTimeout::CODE),
        ("close", opcode::Close::CODE),
        ("recv", opcode::Recv::CODE),
        ("send", opcode::Send::CODE),
        ("read", opcode::Read::CODE),
    ];
    match needed.iter().find(|(_, code)| !probe.is_supported(*code)) {
        Some((name, _)) => Err(BackendError::MissingOpcode { opcode: name }),
        None => Ok(()),
    }
}

/// Whether this kernel's io_uring has multishot poll (Linux 5.13), which
/// the idle watch needs: arms one on an eventfd and checks that it fires
/// and stays armed. The answer is found once per process.
pub(crate) fn multishot_poll() -> Result<(), &'static str> {
    static ANSWER: std::sync::OnceLock<Result<(), &'static str>> = std::sync::OnceLock::new();
    *ANSWER.get_or_init(try_multishot_poll)
}

fn try_multishot_poll() -> Result<(), &'static str> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    const NO: &str = "this kernel's io_uring has no multishot poll (Linux 5.13 or newer has it)";
    let mut ring = IoUring::new(4).map_err(|_| "io_uring is unavailable")?;
    // SAFETY: eventfd has no memory-safety preconditions; the result is
    // checked before it is used as a descriptor.
    let raw = unsafe { libc::eventfd(1, libc::EFD_CLOEXEC) };
    if raw < 0 {
        return Err("cannot make an eventfd to probe multishot poll");
    }
    // SAFETY: `raw` is a fresh, valid descriptor owned by nobody else.
    let event = unsafe { OwnedFd::from_raw_fd(raw) };
    let poll = opcode::PollAdd::new(io_uring::types::Fd(event.as_raw_fd()), libc::POLLIN as u32)
        .multi(true)
        .build()
        .user_data(1);
    // SAFETY: the entry refers to no memory; the eventfd outlives the ring's
    // use of it (the ring is dropped first, below).
    unsafe { ring.submission().push(&poll) }.map_err(|_| NO)?;
    ring.submit_and_wait(1).map_err(|_| NO)?;
    let cqe = ring.completion().next().ok_or(NO)?;
    let answer = match cqe.result() > 0 && io_uring::cqueue::more(cqe.flags()) {
        true => Ok(()),
        false => Err(NO),
    };
    drop(ring);
    drop(event);
    answer
}
