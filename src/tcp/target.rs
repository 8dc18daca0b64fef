//! What the TCP manager dials: a socket address, or a `host:port` name
//! resolved again on every dial (so a changed DNS record reaches the next
//! dial), off the calling thread, every address tried in order.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use crate::uring::BackendError;

/// A name lookup of the application's own (a service-discovery client, a
/// test's changing answer); it may block.
pub(crate) type Resolver = dyn Fn() -> io::Result<Vec<SocketAddr>> + Send + Sync;

/// A dial target.
#[derive(Clone)]
pub(crate) enum Target {
    /// A numeric address: nothing to resolve.
    Addr(SocketAddr),
    /// A `host:port` name.
    Name(String),
    /// A name the application resolves itself, on every dial.
    Resolved(String, Arc<Resolver>),
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Addr(addr) => f.debug_tuple("Addr").field(addr).finish(),
            Target::Name(name) => f.debug_tuple("Name").field(name).finish(),
            Target::Resolved(name, _) => f.debug_tuple("Resolved").field(name).finish(),
        }
    }
}

impl Target {
    /// Reads `host:port` or a socket address. Nothing is resolved here.
    pub(crate) fn parse(text: &str) -> Result<Target, BackendError> {
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(Target::Addr(addr));
        }
        match text.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(Target::Name(text.to_string()))
            }
            _ => Err(BackendError::Address(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "`{text}` is not host:port or a socket address (for example redis.internal:6379)"
                ),
            ))),
        }
    }

    /// The addresses to try, in order. A name is resolved on a thread of
    /// its own when `off_thread` (the io_uring backend, whose dials run
    /// inside async tasks), so `getaddrinfo` never blocks an executor; in
    /// place otherwise (the blocking backend blocks anyway).
    pub(crate) async fn resolve(&self, off_thread: bool) -> io::Result<Vec<SocketAddr>> {
        let (name, resolver) = match self {
            Target::Addr(addr) => return Ok(vec![*addr]),
            Target::Name(name) => (name.clone(), None),
            Target::Resolved(name, resolver) => (name.clone(), Some(Arc::clone(resolver))),
        };
        let lookup = move || -> io::Result<Vec<SocketAddr>> {
            let addrs: Vec<SocketAddr> = match resolver {
                Some(resolve) => resolve()?,
                None => name.to_socket_addrs()?.collect(),
            };
            match addrs.is_empty() {
                true => Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{name} resolved to no address"),
                )),
                false => Ok(addrs),
            }
        };
        if !off_thread {
            return lookup();
        }
        let (answer, answered) = futures_channel::oneshot::channel();
        std::thread::Builder::new()
            .name("ringpool-resolve".into())
            .spawn(move || {
                let _ = answer.send(lookup());
            })?;
        answered
            .await
            .map_err(|_| io::Error::other("the name resolution thread ended without an answer"))?
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Addr(addr) => addr.fmt(f),
            Target::Name(name) | Target::Resolved(name, _) => name.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn addresses_and_names_parse_and_nonsense_is_refused() {
        assert!(matches!(
            Target::parse("127.0.0.1:6379"),
            Ok(Target::Addr(_))
        ));
        assert!(matches!(Target::parse("[::1]:80"), Ok(Target::Addr(_))));
        assert!(matches!(
            Target::parse("redis.internal:6379"),
            Ok(Target::Name(_))
        ));
        let error = Target::parse("redis.internal").unwrap_err();
        assert!(error.to_string().contains("cannot resolve"), "{error}");
        assert!(Target::parse("host:port").is_err());
    }

    #[test]
    fn a_name_resolves_on_every_call_off_the_thread() {
        let target = Target::parse("localhost:80").unwrap();
        let addrs = futures_executor::block_on(target.resolve(true)).unwrap();
        assert!(
            addrs
                .iter()
                .all(|addr| addr.ip().is_loopback() && addr.port() == 80)
        );
    }
}
