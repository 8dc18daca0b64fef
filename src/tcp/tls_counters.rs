//! The TLS handshake counters a [`TlsConnector`](super::TlsConnector)
//! keeps: full and resumed handshakes, counted once each as a dial's
//! handshake completes.
//!
//! Bookkeeping outside the pool's protocol, so the counters are the sync
//! facade's plain atomics. Relaxed ordering throughout: each counter is a
//! monotonic tally that orders nothing else.

use crate::manager::TlsHandshakes;
use crate::sync::plain::{AtomicU64, Ordering};

/// Full and resumed handshakes, shared by every clone of a connector.
#[derive(Debug, Default)]
pub(crate) struct HandshakeCounters {
    full: AtomicU64,
    resumed: AtomicU64,
}

impl HandshakeCounters {
    /// One completed handshake, resumed or full.
    pub(crate) fn count(&self, resumed: bool) {
        let counter = match resumed {
            true => &self.resumed,
            false => &self.full,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts so far.
    pub(crate) fn read(&self) -> TlsHandshakes {
        TlsHandshakes {
            full: self.full.load(Ordering::Relaxed),
            resumed: self.resumed.load(Ordering::Relaxed),
        }
    }
}
