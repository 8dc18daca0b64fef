//! The ring thread: one `io_uring` instance, driven by a thread that sleeps
//! in `io_uring_enter` until a completion arrives. Futures hand it
//! operations through a queue and wake it with an eventfd whose read is
//! always armed on the ring; completions wake the futures.
//!
//! Invariant: an operation's buffers (socket address, timeout, the socket
//! itself) live in its `Op`, and the ring thread holds that `Op` until every
//! completion the operation produces has arrived, so the kernel never sees a
//! dangling pointer, and a future dropped mid-operation only marks it
//! abandoned (the socket is closed once the kernel is done with it).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use io_uring::{IoUring, opcode, squeue, types};

use super::probe::{BackendError, probe};

const RING_ENTRIES: u32 = 256;
/// `user_data` of the eventfd read that wakes the ring thread.
const WAKE: u64 = 0;

/// What an operation needs the kernel to see until it completes.
enum Kind {
    Connect {
        socket: Mutex<Option<OwnedFd>>,
        addr: socket2::SockAddr,
        timeout: types::Timespec,
    },
    Close {
        fd: RawFd,
    },
    /// Completes once every operation submitted before it has completed.
    Barrier,
}

struct Op {
    kind: Kind,
    state: Mutex<OpState>,
}

#[derive(Default)]
struct OpState {
    result: Option<i32>,
    waker: Option<Waker>,
}

impl Op {
    fn complete(&self, result: i32) {
        let waker = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.result = Some(result);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

struct Shared {
    queue: Mutex<Vec<Arc<Op>>>,
    wake: OwnedFd,
}

/// A handle to the process's ring thread.
#[derive(Clone)]
pub(crate) struct Driver {
    shared: Arc<Shared>,
}

impl Driver {
    /// The process's ring thread, started on first use after a successful
    /// [`probe`].
    pub(crate) fn get() -> Result<Driver, BackendError> {
        static DRIVER: OnceLock<Result<Driver, String>> = OnceLock::new();
        let started = DRIVER.get_or_init(|| Driver::start().map_err(|error| error.to_string()));
        match started {
            Ok(driver) => Ok(driver.clone()),
            Err(_) => Driver::start(), // report the real error again
        }
    }

    fn start() -> Result<Driver, BackendError> {
        probe()?;
        let ring = IoUring::new(RING_ENTRIES).map_err(|source| BackendError::Setup {
            source,
            fix: "build the manager with Backend::Blocking",
        })?;
        // SAFETY: eventfd has no memory-safety preconditions; the result is
        // checked before it is used as a descriptor.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if raw < 0 {
            return Err(BackendError::Thread(io::Error::last_os_error()));
        }
        // SAFETY: `raw` is a fresh, valid descriptor owned by nobody else.
        let wake = unsafe { OwnedFd::from_raw_fd(raw) };
        let shared = Arc::new(Shared {
            queue: Mutex::new(Vec::new()),
            wake,
        });
        let thread_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("ringpool-uring".into())
            .spawn(move || run(ring, &thread_shared))
            .map_err(BackendError::Thread)?;
        Ok(Driver { shared })
    }

    fn submit(&self, op: Arc<Op>) {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(op);
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our eventfd.
        let written = unsafe {
            libc::write(
                self.shared.wake.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
        debug_assert_eq!(written, 8, "eventfd write");
    }

    /// Dials `addr`, giving up after `timeout` (a linked timeout on the ring).
    pub(crate) fn connect(
        &self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> impl Future<Output = io::Result<OwnedFd>> + Send + 'static {
        let driver = self.clone();
        async move {
            let socket = socket2::Socket::new(
                socket2::Domain::for_address(addr),
                socket2::Type::STREAM.cloexec(),
                Some(socket2::Protocol::TCP),
            )?;
            let op = Arc::new(Op {
                kind: Kind::Connect {
                    socket: Mutex::new(Some(socket.into())),
                    addr: addr.into(),
                    timeout: types::Timespec::new()
                        .sec(timeout.as_secs())
                        .nsec(timeout.subsec_nanos()),
                },
                state: Mutex::new(OpState::default()),
            });
            driver.submit(Arc::clone(&op));
            let result = Completion(Arc::clone(&op)).await;
            match result {
                0 => {
                    let Kind::Connect { socket, .. } = &op.kind else {
                        unreachable!("a connect op")
                    };
                    let socket = socket.lock().unwrap_or_else(|p| p.into_inner()).take();
                    socket.ok_or_else(|| io::Error::other("connected socket already taken"))
                }
                error if -error == libc::ECANCELED => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connect to {addr} timed out after {timeout:?}"),
                )),
                error => Err(io::Error::from_raw_os_error(-error)),
            }
        }
    }

    /// Completes once every operation submitted before it (closes included)
    /// has completed.
    pub(crate) async fn barrier(&self) {
        let op = Arc::new(Op {
            kind: Kind::Barrier,
            state: Mutex::new(OpState::default()),
        });
        self.submit(Arc::clone(&op));
        Completion(op).await;
    }

    /// Closes `fd` on the ring, without waiting.
    pub(crate) fn close(&self, fd: OwnedFd) {
        self.submit(Arc::new(Op {
            kind: Kind::Close {
                fd: fd.into_raw_fd(),
            },
            state: Mutex::new(OpState::default()),
        }));
    }
}

/// Waits for an operation's result.
struct Completion(Arc<Op>);

impl Future for Completion {
    type Output = i32;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<i32> {
        let mut state = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        match state.result {
            Some(result) => Poll::Ready(result),
            None => {
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Pushes `entry`, submitting first if the submission queue is full.
fn push(ring: &mut IoUring, entry: &squeue::Entry) {
    loop {
        // SAFETY: every pointer in `entry` points into an `Op` (or the wake
        // buffer) that outlives the operation: the caller keeps it in
        // `in_flight` (or owns the buffer for the thread's life).
        if unsafe { ring.submission().push(entry) }.is_ok() {
            return;
        }
        if let Err(error) = ring.submit() {
            tracing::error!(%error, "ringpool: io_uring submit failed");
        }
    }
}

fn run(mut ring: IoUring, shared: &Shared) {
    let mut in_flight: HashMap<u64, (Arc<Op>, u8)> = HashMap::new();
    let mut next_id: u64 = 1;
    let mut wake_buf = [0u8; 8];
    let arm_wake = |ring: &mut IoUring, buf: &mut [u8; 8]| {
        let read = opcode::Read::new(types::Fd(shared.wake.as_raw_fd()), buf.as_mut_ptr(), 8)
            .build()
            .user_data(WAKE);
        push(ring, &read);
    };
    arm_wake(&mut ring, &mut wake_buf);
    loop {
        match ring.submit_and_wait(1) {
            Ok(_) => {}
            Err(error) if error.raw_os_error() == Some(libc::EINTR) => continue,
            Err(error) => {
                tracing::error!(%error, "ringpool: io_uring wait failed");
                continue;
            }
        }
        let done: Vec<(u64, i32)> = ring
            .completion()
            .map(|cqe| (cqe.user_data(), cqe.result()))
            .collect();
        for (user_data, result) in done {
            if user_data == WAKE {
                arm_wake(&mut ring, &mut wake_buf);
                let ops =
                    std::mem::take(&mut *shared.queue.lock().unwrap_or_else(|p| p.into_inner()));
                for op in ops {
                    let id = next_id;
                    next_id += 1;
                    let completions = start(&mut ring, &op, id);
                    in_flight.insert(id, (op, completions));
                }
                continue;
            }
            let (id, is_timeout) = (user_data >> 1, user_data & 1 == 1);
            let Some((op, remaining)) = in_flight.get_mut(&id) else {
                continue;
            };
            if !is_timeout {
                op.complete(result);
            }
            *remaining -= 1;
            if *remaining == 0 {
                // Every completion is in: the kernel is done with the op.
                in_flight.remove(&id);
            }
        }
    }
}

/// Queues the entries of `op`; returns how many completions it will produce.
fn start(ring: &mut IoUring, op: &Op, id: u64) -> u8 {
    match &op.kind {
        Kind::Connect {
            socket,
            addr,
            timeout,
        } => {
            let fd = socket
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .map_or(-1, AsRawFd::as_raw_fd);
            let connect = opcode::Connect::new(types::Fd(fd), addr.as_ptr().cast(), addr.len())
                .build()
                .flags(squeue::Flags::IO_LINK)
                .user_data(id << 1);
            let limit = opcode::LinkTimeout::new(timeout)
                .build()
                .user_data(id << 1 | 1);
            push(ring, &connect);
            push(ring, &limit);
            2
        }
        Kind::Close { fd } => {
            push(
                ring,
                &opcode::Close::new(types::Fd(*fd))
                    .build()
                    .user_data(id << 1),
            );
            1
        }
        Kind::Barrier => {
            let drain = opcode::Nop::new()
                .build()
                .flags(squeue::Flags::IO_DRAIN)
                .user_data(id << 1);
            push(ring, &drain);
            1
        }
    }
}
