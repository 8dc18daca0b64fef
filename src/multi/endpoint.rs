//! What a multi-endpoint pool connects to: one address of a service.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

/// One endpoint of a [`MultiPool`](super::MultiPool): a target as its
/// manager understands it (`host:port`, or an address from discovery).
///
/// Cheap to clone; two endpoints are the same when their text is.
///
/// # Examples
///
/// ```
/// use ringpool::multi::Endpoint;
///
/// let from_text = Endpoint::new("10.0.0.7:6379");
/// let from_addr = Endpoint::from("10.0.0.7:6379".parse::<std::net::SocketAddr>().unwrap());
/// assert_eq!(from_text, from_addr);
/// assert_eq!(from_text.as_str(), "10.0.0.7:6379");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint(Arc<str>);

impl Endpoint {
    /// An endpoint for `target` (what the factory's manager dials).
    pub fn new(target: impl Into<String>) -> Self {
        Endpoint(target.into().into())
    }

    /// The target as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The target as a socket address, if it is one (discovery's endpoints
    /// always are).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.0.parse().ok()
    }
}

impl From<SocketAddr> for Endpoint {
    fn from(addr: SocketAddr) -> Self {
        Endpoint::new(addr.to_string())
    }
}

impl From<&str> for Endpoint {
    fn from(target: &str) -> Self {
        Endpoint::new(target)
    }
}

impl From<String> for Endpoint {
    fn from(target: String) -> Self {
        Endpoint::new(target)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}
