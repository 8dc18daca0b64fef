//! Discovery: where the endpoint set comes from, polled off the executor.
//!
//! Owns: the [`EndpointSource`] trait, its DNS implementation
//! ([`DnsSource`]), and the thread that polls a source on an interval and
//! applies each answer ([`Discovery`]). The thread is the pool's only
//! blocking work: a name lookup can take seconds, so it never runs on the
//! application's runtime.
//!
//! An answer that fails or lists nothing keeps the current set: a DNS
//! outage or an empty answer in the middle of a rollout must not drain
//! every connection of a service that is still up.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Condvar, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use super::endpoint::Endpoint;
use super::shared::{SetChange, Shared};
use crate::config::ConfigError;
use crate::manager::Manager;
use crate::sync::{Ordering, plain};

/// What a discovery thread keeps up to date: a multi-endpoint pool, or a
/// set of shared pools.
pub(crate) trait Discovered: Send + Sync + 'static {
    /// The name its logs give.
    fn name(&self) -> &str;
    /// Whether it was closed (the thread then ends).
    fn is_closed(&self) -> bool;
    /// Makes `endpoints` the set.
    fn apply(&self, endpoints: Vec<Endpoint>) -> Result<SetChange, ConfigError>;
}

impl<M: Manager> Discovered for Shared<M> {
    fn name(&self) -> &str {
        &self.name
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn apply(&self, endpoints: Vec<Endpoint>) -> Result<SetChange, ConfigError> {
        self.update(endpoints)
    }
}

/// Where a [`MultiPool`](super::MultiPool)'s endpoints come from: each
/// poll answers with every endpoint the service has now. Polls run on the
/// discovery thread, so they may block.
///
/// A closure returning the endpoints is a source too.
///
/// # Examples
///
/// ```
/// use ringpool::multi::{Endpoint, EndpointSource};
///
/// let mut fixed = || Ok(vec![Endpoint::new("10.0.0.1:80"), Endpoint::new("10.0.0.2:80")]);
/// assert_eq!(fixed.poll().unwrap().len(), 2);
/// ```
pub trait EndpointSource: Send + 'static {
    /// Every endpoint the service has now.
    ///
    /// # Errors
    ///
    /// Whatever kept the source from answering; the pool keeps its current
    /// set and asks again at the next poll.
    fn poll(&mut self) -> io::Result<Vec<Endpoint>>;
}

impl<F> EndpointSource for F
where
    F: FnMut() -> io::Result<Vec<Endpoint>> + Send + 'static,
{
    fn poll(&mut self) -> io::Result<Vec<Endpoint>> {
        self()
    }
}

type Resolve = Box<dyn FnMut(&str) -> io::Result<Vec<SocketAddr>> + Send>;

/// Resolves a name on every poll and answers with every address it
/// returns: for a Kubernetes headless service, one A record per ready pod,
/// so the pool follows scale-ups, scale-downs and rollouts.
///
/// # Examples
///
/// ```
/// use ringpool::multi::{DnsSource, EndpointSource};
///
/// let mut source = DnsSource::new("localhost:6379");
/// let endpoints = source.poll().unwrap();
/// assert!(endpoints.iter().any(|e| e.as_str().ends_with(":6379")));
/// ```
pub struct DnsSource {
    target: String,
    resolve: Resolve,
}

impl DnsSource {
    /// A source for `target` (`host:port`), resolved by the system
    /// resolver (`getaddrinfo`, as `std::net::ToSocketAddrs` does).
    pub fn new(target: impl Into<String>) -> Self {
        DnsSource::with_resolver(target, |target| {
            target.to_socket_addrs().map(Iterator::collect)
        })
    }

    /// A source for `target` resolved by `resolve` (a resolver of the
    /// application's own, or a test's changing answer).
    pub fn with_resolver(
        target: impl Into<String>,
        resolve: impl FnMut(&str) -> io::Result<Vec<SocketAddr>> + Send + 'static,
    ) -> Self {
        DnsSource {
            target: target.into(),
            resolve: Box::new(resolve),
        }
    }
}

impl std::fmt::Debug for DnsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsSource")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl EndpointSource for DnsSource {
    fn poll(&mut self) -> io::Result<Vec<Endpoint>> {
        let mut addrs = (self.resolve)(&self.target)?;
        addrs.sort();
        addrs.dedup();
        Ok(addrs.into_iter().map(Endpoint::from).collect())
    }
}

/// Applies one answer of `source` to the pool; an error or an empty answer
/// leaves the set as it is.
pub(crate) fn refresh(
    shared: &dyn Discovered,
    source: &mut dyn EndpointSource,
) -> io::Result<SetChange> {
    let endpoints = source.poll()?;
    if endpoints.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "the endpoint source answered with no endpoints; the current set is kept",
        ));
    }
    shared.apply(endpoints).map_err(io::Error::other)
}

/// The discovery thread of a pool
/// ([`MultiPool::discover`](super::MultiPool::discover)): it polls its
/// source on an interval until stopped, dropped, or the pool is gone.
#[derive(Debug)]
pub struct Discovery {
    stop: Arc<Stop>,
    thread: Option<JoinHandle<()>>,
}

/// The stop flag and the condition variable the thread waits on between
/// polls.
struct Stop {
    stopped: plain::Mutex<bool>,
    wake: Condvar,
}

impl std::fmt::Debug for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stop")
            .field("stopped", &*self.stopped.lock())
            .finish_non_exhaustive()
    }
}

impl Discovery {
    pub(crate) fn spawn<T: Discovered>(
        shared: Weak<T>,
        mut source: impl EndpointSource,
        interval: Duration,
    ) -> io::Result<Discovery> {
        let stop = Arc::new(Stop {
            stopped: plain::Mutex::new(false),
            wake: Condvar::new(),
        });
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("ringpool-discovery".into())
            .spawn(move || {
                loop {
                    let Some(pool) = shared.upgrade() else { return };
                    if pool.is_closed() {
                        return;
                    }
                    if let Err(error) = refresh(&*pool, &mut source) {
                        tracing::warn!(pool = %pool.name(), %error, "discovery failed; keeping the current endpoints");
                    }
                    drop(pool);
                    let stopped = stopping.stopped.lock();
                    if *stopped {
                        return;
                    }
                    let stopped = plain::wait(&stopping.wake, stopped, Some(interval));
                    if *stopped {
                        return;
                    }
                }
            })?;
        Ok(Discovery {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops polling and waits for a poll in progress to end.
    pub fn stop(mut self) {
        self.signal();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    fn signal(&self) {
        *self.stop.stopped.lock() = true;
        self.stop.wake.notify_all();
    }
}

/// Stops polling without waiting for a poll in progress.
impl Drop for Discovery {
    fn drop(&mut self) {
        self.signal();
    }
}
