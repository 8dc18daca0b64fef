//! The PostgreSQL wire protocol as it passes the socket, read for two facts
//! and nothing else: the transaction status of the last `ReadyForQuery`,
//! and how many requests still await theirs.
//!
//! Every message after the startup one is a type byte and a big-endian
//! length that counts itself; the startup message has no type byte. A
//! simple query (`Q`), a `Sync` (`S`) and a function call (`F`) are each
//! answered by exactly one `ReadyForQuery` (`Z`), whose one-byte body is
//! the status: `I` idle, `T` in a transaction, `E` in a failed one. The
//! startup is answered by one too.

use crate::sync::plain::{AtomicI64, AtomicU8, Ordering};
use std::sync::Arc;

use crate::clients::link::Observer;

/// Where a connection's session stands, as its last `ReadyForQuery` said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransactionStatus {
    /// Outside any transaction.
    Idle,
    /// Inside a transaction block (`BEGIN` without `COMMIT` or `ROLLBACK`).
    InTransaction,
    /// Inside a transaction block that failed: every statement fails until
    /// it is rolled back.
    Failed,
    /// No `ReadyForQuery` seen yet (the handshake did not finish).
    Unknown,
}

/// What the observer shares with the pooled connection.
#[derive(Debug)]
pub(crate) struct WireState {
    status: AtomicU8,
    awaiting: AtomicI64,
}

impl WireState {
    pub(crate) fn status(&self) -> TransactionStatus {
        match self.status.load(Ordering::Acquire) {
            b'I' => TransactionStatus::Idle,
            b'T' => TransactionStatus::InTransaction,
            b'E' => TransactionStatus::Failed,
            _ => TransactionStatus::Unknown,
        }
    }

    /// Requests written whose `ReadyForQuery` has not been read.
    pub(crate) fn awaiting(&self) -> i64 {
        self.awaiting.load(Ordering::Acquire)
    }
}

/// One direction's framing: where the current message's header or body
/// is.
#[derive(Debug)]
struct Framing {
    /// The next message has no type byte (the frontend's startup).
    untyped: bool,
    header: [u8; 5],
    have: usize,
    kind: u8,
    body_left: usize,
    /// The first body byte is still to come (for `Z`'s status).
    at_body_start: bool,
}

impl Framing {
    fn new(untyped_first: bool) -> Self {
        Framing {
            untyped: untyped_first,
            header: [0; 5],
            have: 0,
            kind: 0,
            body_left: 0,
            at_body_start: false,
        }
    }

    /// Feeds `bytes`; `on_type` is called as each message's header is
    /// complete, `on_first` with the first body byte of each message.
    fn feed(
        &mut self,
        mut bytes: &[u8],
        mut on_type: impl FnMut(u8),
        mut on_first: impl FnMut(u8, u8),
    ) {
        while !bytes.is_empty() {
            if self.body_left > 0 {
                if self.at_body_start {
                    on_first(self.kind, bytes[0]);
                    self.at_body_start = false;
                }
                let skip = self.body_left.min(bytes.len());
                self.body_left -= skip;
                bytes = &bytes[skip..];
                continue;
            }
            let header_len = if self.untyped { 4 } else { 5 };
            let take = (header_len - self.have).min(bytes.len());
            self.header[self.have..self.have + take].copy_from_slice(&bytes[..take]);
            self.have += take;
            bytes = &bytes[take..];
            if self.have < header_len {
                return;
            }
            let (kind, len) = match self.untyped {
                true => (0, &self.header[..4]),
                false => (self.header[0], &self.header[1..5]),
            };
            let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            self.untyped = false;
            self.have = 0;
            self.kind = kind;
            self.body_left = len.saturating_sub(4);
            self.at_body_start = self.body_left > 0;
            on_type(kind);
        }
    }
}

/// The observer on a PostgreSQL connection's socket.
#[derive(Debug)]
pub(crate) struct Wire {
    state: Arc<WireState>,
    frontend: Framing,
    backend: Framing,
}

impl Wire {
    /// A fresh connection's: the startup awaits one `ReadyForQuery`.
    pub(crate) fn new() -> (Wire, Arc<WireState>) {
        let state = Arc::new(WireState {
            status: AtomicU8::new(0),
            awaiting: AtomicI64::new(1),
        });
        let wire = Wire {
            state: Arc::clone(&state),
            frontend: Framing::new(true),
            backend: Framing::new(false),
        };
        (wire, state)
    }
}

impl Observer for Wire {
    fn read(&mut self, bytes: &[u8]) {
        let state = &self.state;
        self.backend.feed(
            bytes,
            |_| {},
            |kind, first| {
                if kind == b'Z' {
                    state.status.store(first, Ordering::Release);
                    state.awaiting.fetch_sub(1, Ordering::AcqRel);
                }
            },
        );
    }

    fn wrote(&mut self, bytes: &[u8]) {
        let state = &self.state;
        self.frontend.feed(
            bytes,
            |kind| {
                if matches!(kind, b'Q' | b'S' | b'F') {
                    state.awaiting.fetch_add(1, Ordering::AcqRel);
                }
            },
            |_, _| {},
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![kind];
        out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    fn startup() -> Vec<u8> {
        let body = b"\0\x03\0\0user\0me\0\0";
        let mut out = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    /// Feeds `bytes` split at every possible pair of points, so a message
    /// cut anywhere by the socket is read the same.
    fn fed_in_pieces(
        bytes: &[u8],
        into: impl Fn(&mut Wire, &[u8]),
    ) -> Vec<(TransactionStatus, i64)> {
        let mut seen = Vec::new();
        for cut in 0..=bytes.len() {
            let (mut wire, state) = Wire::new();
            into(&mut wire, &bytes[..cut]);
            into(&mut wire, &bytes[cut..]);
            seen.push((state.status(), state.awaiting()));
        }
        seen
    }

    #[test]
    fn the_startup_awaits_one_ready_for_query_and_a_query_another() {
        let (mut wire, state) = Wire::new();
        wire.wrote(&startup());
        assert_eq!(state.awaiting(), 1);
        assert_eq!(state.status(), TransactionStatus::Unknown);
        let mut reply = message(b'R', &[0, 0, 0, 0]);
        reply.extend(message(b'S', b"client_encoding\0UTF8\0"));
        reply.extend(message(b'Z', b"I"));
        wire.read(&reply);
        assert_eq!(
            (state.status(), state.awaiting()),
            (TransactionStatus::Idle, 0)
        );
        wire.wrote(&message(b'Q', b"BEGIN\0"));
        assert_eq!(state.awaiting(), 1);
        let mut reply = message(b'C', b"BEGIN\0");
        reply.extend(message(b'Z', b"T"));
        wire.read(&reply);
        assert_eq!(
            (state.status(), state.awaiting()),
            (TransactionStatus::InTransaction, 0)
        );
    }

    #[test]
    fn the_extended_protocol_counts_syncs_not_its_other_messages() {
        let (mut wire, state) = Wire::new();
        wire.wrote(&startup());
        wire.read(&message(b'Z', b"I"));
        let mut request = message(b'P', b"\0SELECT 1\0\0\0");
        request.extend(message(b'B', b"\0\0\0\0\0\0\0\0"));
        request.extend(message(b'E', b"\0\0\0\0\0"));
        request.extend(message(b'S', b""));
        wire.wrote(&request);
        assert_eq!(state.awaiting(), 1);
        let mut reply = message(b'1', b"");
        reply.extend(message(b'2', b""));
        reply.extend(message(b'E', b"SERROR\0C25P02\0\0"));
        reply.extend(message(b'Z', b"E"));
        wire.read(&reply);
        assert_eq!(
            (state.status(), state.awaiting()),
            (TransactionStatus::Failed, 0)
        );
    }

    #[test]
    fn messages_cut_anywhere_read_the_same() {
        let mut request = startup();
        request.extend(message(b'Q', b"SELECT 1\0"));
        request.extend(message(b'Q', b"BEGIN\0"));
        for seen in fed_in_pieces(&request, |wire, bytes| wire.wrote(bytes)) {
            assert_eq!(seen, (TransactionStatus::Unknown, 3));
        }
        let mut reply = message(b'Z', b"I");
        reply.extend(message(b'D', &[0, 1, 0, 0, 0, 1, b'1']));
        reply.extend(message(b'Z', b"I"));
        reply.extend(message(b'Z', b"T"));
        for seen in fed_in_pieces(&reply, |wire, bytes| wire.read(bytes)) {
            assert_eq!(seen, (TransactionStatus::InTransaction, -2));
        }
    }
}
