//! A protocol's own health check: a request and the exact reply it must
//! get (Redis `PING` / `+PONG`), shared by the TCP managers.

use std::io;

/// A request the protocol itself defines as a health check, and its reply.
#[derive(Clone, Debug)]
pub(crate) struct ProtocolPing {
    pub(crate) request: Vec<u8>,
    pub(crate) reply: Vec<u8>,
}

impl ProtocolPing {
    pub(crate) fn new(request: impl Into<Vec<u8>>, reply: impl Into<Vec<u8>>) -> Self {
        ProtocolPing {
            request: request.into(),
            reply: reply.into(),
        }
    }

    /// Checks what the peer answered.
    pub(crate) fn check(&self, reply: &[u8]) -> io::Result<()> {
        if reply == self.reply {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "ping reply {:?}, expected {:?}",
                String::from_utf8_lossy(reply),
                String::from_utf8_lossy(&self.reply)
            ),
        ))
    }
}

/// Refused, reset, unreachable and timed-out dials are worth retrying; a
/// dial the host forbids (`EACCES`, `EPERM`) is not.
pub(crate) fn classify(error: &io::Error) -> crate::ErrorClass {
    match error.kind() {
        io::ErrorKind::PermissionDenied => crate::ErrorClass::Fatal,
        _ => crate::ErrorClass::Retryable,
    }
}
