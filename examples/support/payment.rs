//! The client half of the mock payment API's line protocol
//! (`AUTH <id> <amount>\n` -> `OK <id>\n`): encoding a request, and checking
//! that a reply answers that request and no other.

use std::fmt;
use std::io::{self, Write};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Longest reply line accepted.
pub const MAX_REPLY: usize = 64;

/// Why a request failed.
#[derive(Debug)]
pub enum RequestError {
    /// Dialing, writing or reading failed.
    Io(io::Error),
    /// The server closed the connection before the whole reply came.
    Closed,
    /// The reply was for another request, or more than one reply came: the
    /// connection was out of step with its requests.
    Desync(String),
    /// The server answered with something other than `OK <id>`.
    Rejected(String),
    /// The pool could not hand out a connection.
    Pool(String),
    /// A gRPC call ended with a status other than OK.
    #[allow(dead_code)] // made by the loadtest's gRPC modes, not by every example
    Status(String),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Io(error) => write!(f, "I/O: {error}"),
            RequestError::Closed => write!(f, "closed by the server mid-request"),
            RequestError::Desync(what) => write!(f, "desync: {what}"),
            RequestError::Rejected(reply) => write!(f, "rejected: {reply}"),
            RequestError::Pool(error) => write!(f, "pool: {error}"),
            RequestError::Status(status) => write!(f, "gRPC status: {status}"),
        }
    }
}

impl std::error::Error for RequestError {}

impl From<io::Error> for RequestError {
    fn from(error: io::Error) -> Self {
        RequestError::Io(error)
    }
}

/// Writes the request line for `id` into `buf` (cleared first).
pub fn encode(buf: &mut Vec<u8>, id: u64, amount_cents: u64) {
    buf.clear();
    // Writing to a Vec cannot fail.
    let _ = writeln!(buf, "AUTH {id} {amount_cents}");
}

/// Checks `reply` (everything read, up to and including its newline)
/// against the request `id`.
pub fn check_reply(reply: &[u8], id: u64) -> Result<(), RequestError> {
    let Some(newline) = reply.iter().position(|&b| b == b'\n') else {
        return Err(RequestError::Closed);
    };
    if newline + 1 != reply.len() {
        return Err(RequestError::Desync(format!(
            "{} bytes after the reply to {id}",
            reply.len() - newline - 1
        )));
    }
    check_line(&reply[..newline], id)
}

/// Checks a reply's text, without its newline (`OK <id>`), against the
/// request `id`.
pub fn check_line(line: &[u8], id: u64) -> Result<(), RequestError> {
    let Some(digits) = line.strip_prefix(b"OK ") else {
        return Err(RequestError::Rejected(
            String::from_utf8_lossy(line).into_owned(),
        ));
    };
    match std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        Some(got) if got == id => Ok(()),
        _ => Err(RequestError::Desync(format!(
            "reply {:?} to request {id}",
            String::from_utf8_lossy(line)
        ))),
    }
}

/// Sends one authorisation over `stream` and checks its reply. `buf` is
/// scratch space kept by the caller across requests.
pub async fn authorize<S>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    id: u64,
    amount_cents: u64,
) -> Result<(), RequestError>
where
    S: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    encode(buf, id, amount_cents);
    stream.write_all(buf).await?;
    let mut reply = [0u8; MAX_REPLY];
    let mut filled = 0;
    loop {
        let read = stream.read(&mut reply[filled..]).await?;
        if read == 0 {
            return Err(RequestError::Closed);
        }
        filled += read;
        if reply[..filled].contains(&b'\n') {
            return check_reply(&reply[..filled], id);
        }
        if filled == reply.len() {
            return Err(RequestError::Rejected("reply line too long".into()));
        }
    }
}
