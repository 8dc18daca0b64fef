//! The ring thread: one `io_uring` instance, driven by a thread
//! (`ringpool-uring`) that sleeps in `io_uring_enter` until a completion
//! arrives. Futures hand it operations through a queue and wake it with an
//! eventfd whose read is always armed on the ring; completions wake the
//! futures.

use crate::sync::plain::Ordering;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use io_uring::{IoUring, opcode, squeue, types};

use super::op::{Completion, Kind, Op, UserData, WAKE};
use super::probe::{BackendError, probe};
use super::submit::push;
use super::watch::{POLL_TAG, REMOVE_TAG, TICK, WatchCell, WatchQueue, WatchRing, Watches};
use crate::sync::plain::Mutex;

const RING_ENTRIES: u32 = 256;

struct Shared {
    queue: Mutex<Vec<Arc<Op>>>,
    wake: OwnedFd,
    watch: WatchQueue,
}

/// A handle to the process's ring thread.
#[derive(Clone)]
pub(crate) struct Driver {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver").finish_non_exhaustive()
    }
}

impl WatchRing for Driver {
    fn stop_watching(&self) {
        Driver::stop_watching(self);
    }

    fn unwatch(&self, cell: Arc<WatchCell>, id: u64) {
        Driver::unwatch(self, cell, id);
    }
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
            watch: WatchQueue::default(),
        });
        let thread_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("ringpool-uring".into())
            .spawn(move || run(ring, &thread_shared))
            .map_err(BackendError::Thread)?;
        Ok(Driver { shared })
    }

    fn submit(&self, op: Arc<Op>) {
        self.shared.queue.lock().push(op);
        self.wake();
    }

    fn wake(&self) {
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
            let op = Op::new(Kind::Connect {
                socket: Mutex::new(Some(socket.into())),
                addr: addr.into(),
                timeout: types::Timespec::new()
                    .sec(timeout.as_secs())
                    .nsec(timeout.subsec_nanos()),
            });
            driver.submit(Arc::clone(&op));
            let result = Completion(Arc::clone(&op)).await[0];
            match result {
                0 => {
                    let Kind::Connect { socket, .. } = &op.kind else {
                        unreachable!("a connect op")
                    };
                    let socket = socket.lock().take();
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
        let op = Op::new(Kind::Barrier);
        self.submit(Arc::clone(&op));
        Completion(op).await;
    }

    /// Sends `request` on `fd` and receives exactly `reply_len` bytes, on
    /// the ring, linked, the whole under `timeout` (a linked timeout in the
    /// kernel, so a dropped future leaves nothing running past it).
    pub(crate) fn ping(
        &self,
        fd: RawFd,
        request: &[u8],
        reply_len: usize,
        timeout: Duration,
    ) -> impl Future<Output = io::Result<Vec<u8>>> + Send + 'static {
        let op = Op::new(Kind::Ping {
            fd,
            request: request.to_vec(),
            reply: Mutex::new(vec![0u8; reply_len]),
            timeout: types::Timespec::new()
                .sec(timeout.as_secs())
                .nsec(timeout.subsec_nanos()),
        });
        let driver = self.clone();
        async move {
            driver.submit(Arc::clone(&op));
            let results = Completion(Arc::clone(&op)).await;
            let (sent, received) = (results[0], results[1]);
            let Kind::Ping { request, reply, .. } = &op.kind else {
                unreachable!("a ping op")
            };
            let failed = |result: i32, what: &str| match -result {
                libc::ECANCELED => io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("ping {what} timed out after {timeout:?}"),
                ),
                errno => io::Error::from_raw_os_error(errno),
            };
            if sent < 0 {
                return Err(failed(sent, "send"));
            }
            if sent as usize != request.len() {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!("ping sent {sent} of {} bytes", request.len()),
                ));
            }
            if received < 0 {
                return Err(failed(received, "reply"));
            }
            let mut reply = std::mem::take(&mut *reply.lock());
            reply.truncate(received as usize);
            Ok(reply)
        }
    }

    /// Closes `fd` on the ring, without waiting, after removing the poll of
    /// its idle watch, if any.
    pub(crate) fn close(&self, fd: OwnedFd, watch: Option<Arc<WatchCell>>) {
        self.submit(Op::new(Kind::Close {
            fd: fd.into_raw_fd(),
            watch,
        }));
    }

    /// A manager turned its idle watch on: the ring ticks while any has.
    pub(crate) fn start_watching(&self) {
        self.shared.watch.watchers.fetch_add(1, Ordering::Relaxed);
        self.wake();
    }

    /// A manager with the watch on is gone.
    pub(crate) fn stop_watching(&self) {
        self.shared.watch.watchers.fetch_sub(1, Ordering::Relaxed);
    }

    /// The connection of `cell` went idle: it is watched once idle for its
    /// manager's threshold (at the next tick when that is zero).
    #[inline]
    pub(crate) fn went_idle(&self, cell: &Arc<WatchCell>) {
        let watch = &self.shared.watch;
        if !cell.went_idle(watch.tick.load(Ordering::Relaxed)) {
            return;
        }
        watch.tickets.push(Arc::clone(cell));
        if cell.at_once() && !watch.urgent.swap(true, Ordering::AcqRel) {
            self.wake();
        }
    }

    /// Removes poll `id` of `cell` (`0`: whichever the kernel holds),
    /// without waiting.
    pub(crate) fn unwatch(&self, cell: Arc<WatchCell>, id: u64) {
        self.submit(Op::new(Kind::Unwatch { cell, id }));
    }

    /// As `unwatch`, without waking the ring thread: the removal is made at
    /// its next wake-up (an operation, a completion, at the latest its next
    /// tick). For the checkout path: a completion in the meantime (the
    /// reply to the new user's request) finds the connection in use and
    /// removes the poll itself.
    pub(crate) fn unwatch_lazily(&self, cell: Arc<WatchCell>, id: u64) {
        self.shared
            .queue
            .lock()
            .push(Op::new(Kind::Unwatch { cell, id }));
    }
}

/// Operations the kernel still holds, by id, with the completions each
/// still owes; and barriers waiting for every operation before them.
#[derive(Default)]
struct InFlight {
    ops: BTreeMap<u64, (Arc<Op>, u8)>,
    /// Barriers in submission order, each with the id it was given: it
    /// completes once no operation with a smaller id is in flight.
    barriers: VecDeque<(u64, Arc<Op>)>,
}

impl InFlight {
    /// Completes every barrier that no earlier operation holds back.
    fn settle_barriers(&mut self) {
        let oldest = self.ops.keys().next().copied().unwrap_or(u64::MAX);
        while let Some((id, _)) = self.barriers.front() {
            if *id > oldest {
                break;
            }
            let (_, barrier) = self.barriers.pop_front().expect("a front barrier");
            barrier.complete(0);
        }
    }
}

fn run(mut ring: IoUring, shared: &Shared) {
    let mut in_flight = InFlight::default();
    let mut next_id: u64 = 1;
    let mut wake_buf = [0u8; 8];
    let arm_wake = |ring: &mut IoUring, buf: &mut [u8; 8]| {
        let read = opcode::Read::new(types::Fd(shared.wake.as_raw_fd()), buf.as_mut_ptr(), 8)
            .build()
            .user_data(WAKE);
        push(ring, &read);
    };
    arm_wake(&mut ring, &mut wake_buf);
    let mut watches = Watches::new();
    let mut last_tick = Instant::now();
    loop {
        let ticking = shared.watch.watchers.load(Ordering::Relaxed) > 0;
        let waited = match ticking {
            // While any manager watches, the wait ends at the next tick.
            true => {
                let left = TICK.saturating_sub(last_tick.elapsed());
                let until = types::Timespec::new()
                    .sec(left.as_secs())
                    .nsec(left.subsec_nanos());
                ring.submitter()
                    .submit_with_args(1, &types::SubmitArgs::new().timespec(&until))
            }
            false => ring.submit_and_wait(1),
        };
        match waited {
            Ok(_) => {}
            Err(error) if matches!(error.raw_os_error(), Some(libc::EINTR | libc::ETIME)) => {}
            Err(error) => {
                tracing::error!(%error, "io_uring wait failed");
                continue;
            }
        }
        // Operations queued without a wake-up (lazy poll removals) are
        // taken on each tick as well as on each wake-up.
        let mut drain = false;
        if ticking && last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            watches.on_tick(&mut ring, &shared.watch);
            drain = true;
        }
        let done: Vec<(u64, i32, u32)> = ring
            .completion()
            .map(|cqe| (cqe.user_data(), cqe.result(), cqe.flags()))
            .collect();
        for (user_data, result, flags) in done {
            if user_data & POLL_TAG != 0 {
                watches.on_poll(&mut ring, user_data & !POLL_TAG, result, flags);
                continue;
            }
            if user_data & REMOVE_TAG != 0 {
                watches.on_removed(&mut ring, user_data & !REMOVE_TAG, result);
                continue;
            }
            if user_data == WAKE {
                arm_wake(&mut ring, &mut wake_buf);
                drain = true;
                continue;
            }
            let UserData { id, is_timeout } = UserData::decode(user_data);
            let Some((op, remaining)) = in_flight.ops.get_mut(&id) else {
                continue;
            };
            if !is_timeout {
                op.complete(result);
            }
            *remaining -= 1;
            if *remaining == 0 {
                // Every completion is in: the kernel is done with the op.
                in_flight.ops.remove(&id);
            }
        }
        if drain {
            let ops = std::mem::take(&mut *shared.queue.lock());
            for op in ops {
                match &op.kind {
                    Kind::Unwatch { cell, id } => {
                        watches.remove(&mut ring, cell, *id);
                        continue;
                    }
                    Kind::Close {
                        watch: Some(cell), ..
                    } => watches.remove(&mut ring, cell, 0),
                    _ => {}
                }
                let id = next_id;
                next_id += 1;
                match start(&mut ring, &op, id) {
                    0 => in_flight.barriers.push_back((id, op)),
                    completions => {
                        in_flight.ops.insert(id, (op, completions));
                    }
                }
            }
            if shared.watch.urgent.load(Ordering::Acquire) {
                watches.arm_due(&mut ring, &shared.watch);
            }
        }
        in_flight.settle_barriers();
    }
}

/// The timeout linked to operation `id`'s submissions before it.
fn link_timeout(id: u64, timeout: &types::Timespec) -> squeue::Entry {
    let data = UserData {
        id,
        is_timeout: true,
    };
    opcode::LinkTimeout::new(timeout)
        .build()
        .user_data(data.encode())
}

/// Queues the entries of `op`; returns how many completions it will produce
/// (0 for a barrier, which the ring thread settles itself).
fn start(ring: &mut IoUring, op: &Op, id: u64) -> u8 {
    let main = UserData {
        id,
        is_timeout: false,
    }
    .encode();
    match &op.kind {
        Kind::Connect {
            socket,
            addr,
            timeout,
        } => {
            let fd = socket.lock().as_ref().map_or(-1, AsRawFd::as_raw_fd);
            let connect = opcode::Connect::new(types::Fd(fd), addr.as_ptr().cast(), addr.len())
                .build()
                .flags(squeue::Flags::IO_LINK)
                .user_data(main);
            push(ring, &connect);
            push(ring, &link_timeout(id, timeout));
            2
        }
        Kind::Close { fd, .. } => {
            push(
                ring,
                &opcode::Close::new(types::Fd(*fd)).build().user_data(main),
            );
            1
        }
        Kind::Barrier => 0,
        Kind::Unwatch { .. } => unreachable!("settled by the ring thread"),
        Kind::Ping {
            fd,
            request,
            reply,
            timeout,
        } => {
            let send = opcode::Send::new(types::Fd(*fd), request.as_ptr(), request.len() as u32)
                .flags(libc::MSG_NOSIGNAL)
                .build()
                .flags(squeue::Flags::IO_LINK)
                .user_data(main);
            let buffer = reply.lock().as_mut_ptr();
            let len = reply.lock().len() as u32;
            let recv = opcode::Recv::new(types::Fd(*fd), buffer, len)
                .flags(libc::MSG_WAITALL)
                .build()
                .flags(squeue::Flags::IO_LINK)
                .user_data(main);
            push(ring, &send);
            push(ring, &recv);
            push(ring, &link_timeout(id, timeout));
            3
        }
    }
}
