//! Small managers for deadpool and bb8 over the same tokio `TcpStream`s the
//! other modes use: dial with the same options, and drop a connection whose
//! request did not finish cleanly. Both pools keep their defaults apart from
//! `max_size`.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use tokio::net::TcpStream;

use super::sessions::dial;

/// A pooled connection and whether a request on it is unfinished.
pub struct PeerConn {
    pub stream: TcpStream,
    pub dirty: bool,
}

/// Dials for either pool, counting its dials.
pub struct PeerManager {
    pub target: Arc<str>,
    pub dials: Arc<AtomicU64>,
}

impl PeerManager {
    async fn open(&self) -> std::io::Result<PeerConn> {
        let stream = dial(&self.target, &self.dials).await?;
        Ok(PeerConn {
            stream,
            dirty: false,
        })
    }
}

impl deadpool::managed::Manager for PeerManager {
    type Type = PeerConn;
    type Error = std::io::Error;

    async fn create(&self) -> std::io::Result<PeerConn> {
        self.open().await
    }

    async fn recycle(
        &self,
        conn: &mut PeerConn,
        _metrics: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<std::io::Error> {
        match conn.dirty {
            true => Err(deadpool::managed::RecycleError::message(
                "a request on it did not finish",
            )),
            false => Ok(()),
        }
    }
}

impl bb8::ManageConnection for PeerManager {
    type Connection = PeerConn;
    type Error = std::io::Error;

    async fn connect(&self) -> std::io::Result<PeerConn> {
        self.open().await
    }

    async fn is_valid(&self, _conn: &mut PeerConn) -> std::io::Result<()> {
        Ok(())
    }

    fn has_broken(&self, conn: &mut PeerConn) -> bool {
        conn.dirty
    }
}

pub type DeadpoolPool = deadpool::managed::Pool<PeerManager>;
pub type Bb8Pool = bb8::Pool<PeerManager>;

/// A deadpool pool of `size`.
pub fn deadpool(manager: PeerManager, size: usize) -> Result<DeadpoolPool, String> {
    DeadpoolPool::builder(manager)
        .max_size(size)
        .build()
        .map_err(|error| error.to_string())
}

/// A bb8 pool of `size` (built without dialing).
pub fn bb8(manager: PeerManager, size: usize) -> Bb8Pool {
    bb8::Pool::builder()
        .max_size(u32::try_from(size).unwrap_or(u32::MAX))
        .build_unchecked(manager)
}
