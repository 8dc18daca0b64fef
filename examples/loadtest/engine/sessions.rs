//! How one client task of each tokio mode sends a request, and the loop
//! every such task runs for a cell.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ringpool::multi::MultiPool;
use ringpool::tcp::{TlsConnector, TokioTcpManager};
use ringpool::{Pool, SendManager};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::cell::Plan;
use super::payment::{RequestError, authorize};
use super::peers::{Bb8Pool, DeadpoolPool, PeerConn};

/// Pause after a failed request before the next, so a task whose requests
/// fail at once (no free local port, say) records the failure instead of
/// spinning on it.
const AFTER_ERROR: Duration = Duration::from_millis(1);

/// One client task's way of sending requests.
pub trait Session: Send + 'static {
    /// Sends the authorisation `id` and checks its reply.
    fn request<'a>(
        &'a mut self,
        id: u64,
        amount: u64,
        buf: &'a mut Vec<u8>,
    ) -> impl Future<Output = Result<(), RequestError>> + Send + 'a;

    /// The last request failed or was cut off by its timeout: drop whatever
    /// connection state it may have left behind.
    fn abandon(&mut self) {}
}

/// Dials the target with the socket options every mode uses.
pub async fn dial(target: &str, dials: &AtomicU64) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(target).await?;
    dials.fetch_add(1, Ordering::Relaxed);
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// `no-pool`: a new connection per request, closed after it (an ordinary
/// close: the client ends up with the TIME_WAIT, as a real client does).
pub struct NoPool {
    pub target: Arc<str>,
    pub dials: Arc<AtomicU64>,
}

impl Session for NoPool {
    async fn request(
        &mut self,
        id: u64,
        amount: u64,
        buf: &mut Vec<u8>,
    ) -> Result<(), RequestError> {
        let mut stream = dial(&self.target, &self.dials).await?;
        authorize(&mut stream, buf, id, amount).await
    }
}

/// `no-pool` and `no-pool-resumed` over TLS: a new connection and
/// handshake per request, through the shared connector (its sessions
/// resume) or a fresh one each time (every handshake full).
pub struct NoPoolTls {
    pub target: Arc<str>,
    pub dials: Arc<AtomicU64>,
    pub shared: Option<TlsConnector>,
}

impl Session for NoPoolTls {
    async fn request(
        &mut self,
        id: u64,
        amount: u64,
        buf: &mut Vec<u8>,
    ) -> Result<(), RequestError> {
        let stream = dial(&self.target, &self.dials).await?;
        let connector = match &self.shared {
            Some(connector) => connector.clone(),
            None => super::test_certs::connector(),
        };
        let mut stream = connector
            .handshake(&self.target, stream)
            .await
            .map_err(std::io::Error::other)?;
        authorize(&mut stream, buf, id, amount).await
    }
}

/// `ringpool`: one checkout from the public tokio manager's pool (plain
/// or TLS) per request. A request that fails leaves its connection in an
/// unknown state, so it is discarded; one cut off by the timeout is closed
/// by the pool (the guard's connection is left dirty).
pub struct Ringpool<M: SendManager = TokioTcpManager> {
    pub pool: Pool<M>,
}

impl<M> Session for Ringpool<M>
where
    M: SendManager,
    M::Connection: AsyncRead + AsyncWrite + Unpin,
{
    async fn request(
        &mut self,
        id: u64,
        amount: u64,
        buf: &mut Vec<u8>,
    ) -> Result<(), RequestError> {
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|error| RequestError::Pool(error.to_string()))?;
        let outcome = authorize(&mut conn, buf, id, amount).await;
        if outcome.is_err() {
            conn.discard();
        }
        outcome
    }
}

/// `ringpool` over several endpoints (`--endpoints N`): one checkout from
/// a round-robin `MultiPool` per request, failed requests discarded as
/// above.
pub struct RingpoolMulti {
    pub pool: MultiPool<TokioTcpManager>,
}

impl Session for RingpoolMulti {
    async fn request(
        &mut self,
        id: u64,
        amount: u64,
        buf: &mut Vec<u8>,
    ) -> Result<(), RequestError> {
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|error| RequestError::Pool(error.to_string()))?;
        let outcome = authorize(&mut *conn, buf, id, amount).await;
        if outcome.is_err() {
            conn.discard();
        }
        outcome
    }
}

/// `dedicated`: the task's own connection, dialed at its first request and
/// again after a failure.
pub struct Dedicated {
    pub target: Arc<str>,
    pub dials: Arc<AtomicU64>,
    pub stream: Option<TcpStream>,
}

impl Session for Dedicated {
    async fn request(
        &mut self,
        id: u64,
        amount: u64,
        buf: &mut Vec<u8>,
    ) -> Result<(), RequestError> {
        let stream = match &mut self.stream {
            Some(stream) => stream,
            None => self.stream.insert(dial(&self.target, &self.dials).await?),
        };
        authorize(stream, buf, id, amount).await
    }

    fn abandon(&mut self) {
        self.stream = None;
    }
}

/// `deadpool`: one checkout per request.
pub struct Deadpool {
    pub pool: DeadpoolPool,
}

impl Session for Deadpool {
    async fn request(
        &mut self,
        id: u64,
        amount: u64,
        buf: &mut Vec<u8>,
    ) -> Result<(), RequestError> {
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|error| RequestError::Pool(error.to_string()))?;
        peer_request(&mut conn, buf, id, amount).await
    }
}

/// `bb8`: one checkout per request.
pub struct Bb8 {
    pub pool: Bb8Pool,
}

impl Session for Bb8 {
    async fn request(
        &mut self,
        id: u64,
        amount: u64,
        buf: &mut Vec<u8>,
    ) -> Result<(), RequestError> {
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|error| RequestError::Pool(error.to_string()))?;
        peer_request(&mut conn, buf, id, amount).await
    }
}

/// One request over a peer pool's connection: dirty until the reply is
/// checked, so a request cut off or failed leaves it dirty and the manager
/// drops it instead of reusing it.
async fn peer_request(
    conn: &mut PeerConn,
    buf: &mut Vec<u8>,
    id: u64,
    amount: u64,
) -> Result<(), RequestError> {
    conn.dirty = true;
    authorize(&mut conn.stream, buf, id, amount).await?;
    conn.dirty = false;
    Ok(())
}

/// A request id unique within the run: the task in the high bits, its
/// sequence number in the low ones.
pub fn request_id(task: usize, seq: u64) -> u64 {
    ((task as u64) << 40) | seq
}

/// A payment amount, in cents.
pub fn amount() -> u64 {
    fastrand::u64(100..1_000_000)
}

/// One task's requests for a cell: back to back until the cell ends, each
/// under the plan's timeout. A request is recorded if it finishes in the
/// measured window or after it (requests in flight at the end are waited
/// for), whenever it started: a request a pool kept waiting since the
/// warm-up counts, with its whole latency.
pub async fn drive<S: Session>(mut session: S, task: usize, plan: Arc<Plan>) {
    let mut buf = Vec::with_capacity(64);
    for seq in 0.. {
        let started = Instant::now();
        if started >= plan.end {
            break;
        }
        if started >= plan.measure_from {
            plan.started.fetch_add(1, Ordering::Relaxed);
        }
        let request = session.request(request_id(task, seq), amount(), &mut buf);
        let outcome = tokio::time::timeout(plan.timeout, request).await;
        let finished = Instant::now();
        let measured = finished >= plan.measure_from;
        match outcome {
            Ok(Ok(())) if measured => plan.recorder.answered(finished - started),
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                if measured {
                    plan.recorder.failed(&error);
                }
                session.abandon();
                tokio::time::sleep(AFTER_ERROR).await;
            }
            Err(_) => {
                if measured {
                    plan.recorder.timed_out(plan.timeout);
                }
                session.abandon();
            }
        }
    }
}
