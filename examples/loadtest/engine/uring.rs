//! `ringpool-uring`: the pool's tokio-uring path. One pool of
//! `ringpool::tcp::TcpManager` connections (dialed and closed on ringpool's
//! io_uring thread) is shared by one tokio-uring runtime per client thread;
//! each request checks a connection out with `Pool::get_uring` and does its
//! I/O on that thread's ring.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ringpool::Pool;
use ringpool::tcp::TcpManager;
use tokio_uring::buf::BoundedBuf;

use super::cell::Plan;
use super::payment::{MAX_REPLY, RequestError, check_reply, encode};
use super::sessions::{amount, request_id};

/// As in the tokio modes: a short pause after a failed request.
const AFTER_ERROR: Duration = Duration::from_millis(1);

/// Runs `concurrency` tasks spread over `threads` tokio-uring runtimes until
/// the plan's end; returns when every task has finished.
pub fn run(
    pool: &Pool<TcpManager>,
    threads: usize,
    concurrency: usize,
    plan: &Arc<Plan>,
) -> std::io::Result<()> {
    let threads = threads.clamp(1, concurrency);
    let handles = (0..threads)
        .map(|thread| {
            let (pool, plan) = (pool.clone(), Arc::clone(plan));
            let tasks: Vec<usize> = (thread..concurrency).step_by(threads).collect();
            std::thread::Builder::new()
                .name(format!("uring-client-{thread}"))
                .spawn(move || {
                    tokio_uring::start(async move {
                        let running: Vec<_> = tasks
                            .into_iter()
                            .map(|task| tokio_uring::spawn(drive(pool.clone(), task, plan.clone())))
                            .collect();
                        for task in running {
                            // A task that panicked has already reported it.
                            let _ = task.await;
                        }
                    })
                })
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    for handle in handles {
        handle
            .join()
            .map_err(|_| std::io::Error::other("a tokio-uring client thread panicked"))?;
    }
    Ok(())
}

/// One task's requests, as `sessions::drive` does for the tokio modes.
async fn drive(pool: Pool<TcpManager>, task: usize, plan: Arc<Plan>) {
    let mut bufs = Some((Vec::with_capacity(64), Vec::with_capacity(MAX_REPLY)));
    for seq in 0.. {
        let started = Instant::now();
        if started >= plan.end {
            break;
        }
        if started >= plan.measure_from {
            plan.started.fetch_add(1, Ordering::Relaxed);
        }
        let (request, reply) = bufs
            .take()
            .unwrap_or_else(|| (Vec::with_capacity(64), Vec::with_capacity(MAX_REPLY)));
        let id = request_id(task, seq);
        let sent = authorize(&pool, request, reply, id, amount());
        let outcome = tokio::time::timeout(plan.timeout, sent).await;
        let finished = Instant::now();
        let measured = finished >= plan.measure_from;
        match outcome {
            Ok((Ok(()), returned)) => {
                bufs = Some(returned);
                if measured {
                    plan.recorder.answered(finished - started);
                }
            }
            Ok((Err(error), returned)) => {
                bufs = Some(returned);
                if measured {
                    plan.recorder.failed(&error);
                }
                tokio::time::sleep(AFTER_ERROR).await;
            }
            // The buffers went with the cancelled operation; the connection
            // was shut down and closed by its guard (an orphaned operation).
            Err(_) => {
                if measured {
                    plan.recorder.timed_out(plan.timeout);
                }
            }
        }
    }
}

type Buffers = (Vec<u8>, Vec<u8>);

/// One authorisation through `get_uring`; the buffers come back for reuse.
async fn authorize(
    pool: &Pool<TcpManager>,
    mut request: Vec<u8>,
    mut reply: Vec<u8>,
    id: u64,
    amount: u64,
) -> (Result<(), RequestError>, Buffers) {
    let conn = match pool.get_uring().await {
        Ok(conn) => conn,
        Err(error) => return (Err(RequestError::Pool(error.to_string())), (request, reply)),
    };
    encode(&mut request, id, amount);
    let (written, buf) = conn.write_all(request).await;
    request = buf;
    if let Err(error) = written {
        conn.discard();
        return (Err(error.into()), (request, reply));
    }
    reply.clear();
    let outcome = loop {
        let filled = reply.len();
        if filled == reply.capacity() {
            break Err(RequestError::Rejected("reply line too long".into()));
        }
        let (read, slice) = conn.read(reply.slice(filled..)).await;
        reply = slice.into_inner();
        match read {
            Ok(0) => break Err(RequestError::Closed),
            Ok(_) if reply.contains(&b'\n') => break check_reply(&reply, id),
            Ok(_) => {}
            Err(error) => break Err(error.into()),
        }
    };
    if outcome.is_err() {
        conn.discard();
    }
    (outcome, (request, reply))
}
