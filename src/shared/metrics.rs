//! A shared pool's metrics in a `prometheus-client` registry, read at
//! scrape time from [`SharedPool::stats`]: registering costs a request
//! nothing. `docs/metrics.md` lists them.

use std::borrow::Cow;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::registry::Registry;

use super::manager::SharedManager;
use super::pool::{SharedPool, SharedStats, WeakPool};
use super::set::{SharedSet, WeakSet};
use crate::metrics::prometheus::{count, gauge};

impl<M: SharedManager> SharedPool<M> {
    /// Registers this pool's metrics in `registry` (the `ringpool_shared_`
    /// families), labelled `pool="<name>"`
    /// ([`SharedBuilder::name`](super::SharedBuilder::name)). The registry
    /// holds the pool weakly and reports nothing once it is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use prometheus_client::registry::Registry;
    /// # use ringpool::shared::{SharedManager, SharedPool};
    /// # struct Links;
    /// # impl SharedManager for Links {
    /// #     type Connection = ();
    /// #     type Error = std::io::Error;
    /// #     async fn connect(&self) -> Result<(), std::io::Error> { Ok(()) }
    /// #     fn capacity(&self, _: &()) -> usize { 100 }
    /// # }
    /// # futures_executor::block_on(async {
    /// let pool = SharedPool::builder(Links).name("orders").build().unwrap();
    /// let mut registry = Registry::default();
    /// pool.register_metrics(&mut registry);
    /// let lease = pool.get().await.unwrap();
    ///
    /// let mut text = String::new();
    /// prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    /// assert!(text.contains(r#"ringpool_shared_requests_in_flight{pool="orders"} 1"#));
    /// # drop(lease);
    /// # });
    /// ```
    pub fn register_metrics(&self, registry: &mut Registry) {
        register(registry, self.name(), Box::new(self.downgrade()));
    }
}

impl<M: SharedManager> SharedSet<M> {
    /// Registers the metrics of every endpoint's pool in `registry`: the
    /// `ringpool_shared_` families, labelled `pool="<name>"` and
    /// `endpoint="<address>"`, for the endpoints in the set at each scrape
    /// (the registry holds the set weakly).
    pub fn register_metrics(&self, registry: &mut Registry) {
        register(registry, self.name(), Box::new(self.downgrade()));
    }
}

/// Registers a collector over `read`, labelled `pool="<name>"`.
fn register(registry: &mut Registry, name: &str, read: Box<dyn Read>) {
    let label = (Cow::Borrowed("pool"), Cow::Owned(name.to_owned()));
    registry
        .sub_registry_with_label(label)
        .register_collector(Box::new(SharedCollector { read }));
}

/// One scrape of a pool: its endpoint (in a set), its stats and its
/// limits.
struct Reading {
    endpoint: Option<String>,
    stats: SharedStats,
    max_size: usize,
    max_streams: usize,
}

fn reading<M: SharedManager>(endpoint: Option<String>, pool: &SharedPool<M>) -> Reading {
    let (max_size, max_streams) = pool.limits();
    Reading {
        endpoint,
        stats: pool.stats(),
        max_size,
        max_streams,
    }
}

/// Reads a pool, or every pool of a set, of any manager type, weakly.
trait Read: Send + Sync + 'static {
    fn read(&self) -> Vec<Reading>;
}

impl<M: SharedManager> Read for WeakPool<M> {
    fn read(&self) -> Vec<Reading> {
        self.upgrade()
            .map(|pool| reading(None, &pool))
            .into_iter()
            .collect()
    }
}

impl<M: SharedManager> Read for WeakSet<M> {
    fn read(&self) -> Vec<Reading> {
        let Some(set) = self.upgrade() else {
            return Vec::new();
        };
        set.members()
            .iter()
            .map(|(endpoint, pool)| reading(Some(endpoint.to_string()), pool))
            .collect()
    }
}

struct SharedCollector {
    read: Box<dyn Read>,
}

impl std::fmt::Debug for SharedCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCollector").finish_non_exhaustive()
    }
}

/// Encodes one family over every reading: `(label value, value)` pairs
/// under `label` (one unlabelled value when `label` is `None`), each
/// sample also labelled with its reading's endpoint, if any.
fn family<V: EncodeMetric>(
    encoder: &mut DescriptorEncoder<'_>,
    readings: &[Reading],
    name: &str,
    help: &str,
    label: Option<&str>,
    values: impl Fn(&Reading) -> Vec<(&'static str, V)>,
) -> std::fmt::Result {
    let Some(first) = readings.first() else {
        return Ok(());
    };
    let Some((_, sample)) = values(first).into_iter().next() else {
        return Ok(());
    };
    let mut metric = encoder.encode_descriptor(name, help, None, sample.metric_type())?;
    for reading in readings {
        for (value_label, value) in values(reading) {
            let labels: Vec<(&str, &str)> = reading
                .endpoint
                .as_deref()
                .map(|endpoint| ("endpoint", endpoint))
                .into_iter()
                .chain(label.map(|label| (label, value_label)))
                .collect();
            value.encode(metric.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

impl Collector for SharedCollector {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> std::fmt::Result {
        let r = &self.read.read();
        let e = &mut e;
        family(
            e,
            r,
            "ringpool_shared_connections",
            "Connections, by state: taking requests (open), finishing their last ones (draining), being dialed (dialing)",
            Some("state"),
            |r| {
                vec![
                    ("open", gauge(r.stats.open)),
                    ("draining", gauge(r.stats.draining)),
                    ("dialing", gauge(r.stats.dialing)),
                ]
            },
        )?;
        family(
            e,
            r,
            "ringpool_shared_max_size",
            "The pool's max_size (open connections)",
            None,
            |r| vec![("", gauge(r.max_size))],
        )?;
        family(
            e,
            r,
            "ringpool_shared_max_streams",
            "Requests one connection may carry at once, at most",
            None,
            |r| vec![("", gauge(r.max_streams))],
        )?;
        family(
            e,
            r,
            "ringpool_shared_requests_in_flight",
            "Requests in flight on all connections",
            None,
            |r| vec![("", gauge(r.stats.in_flight))],
        )?;
        family(
            e,
            r,
            "ringpool_shared_busiest_connection_requests",
            "Requests in flight on the most loaded open connection (against the mean, it shows uneven use)",
            None,
            |r| {
                let busiest = r.stats.per_connection.iter().map(|&(_, load)| load).max();
                vec![("", gauge(busiest.unwrap_or(0)))]
            },
        )?;
        family(
            e,
            r,
            "ringpool_shared_waiters",
            "Callers queued for room",
            None,
            |r| vec![("", gauge(r.stats.waiting))],
        )?;
        family(
            e,
            r,
            "ringpool_shared_leases",
            "Places on a connection handed out (one per request)",
            None,
            |r| vec![("", count(r.stats.leases))],
        )?;
        family(
            e,
            r,
            "ringpool_shared_connects",
            "Connections opened",
            None,
            |r| vec![("", count(r.stats.connects))],
        )?;
        family(
            e,
            r,
            "ringpool_shared_connect_errors",
            "Dials that failed or timed out",
            None,
            |r| vec![("", count(r.stats.connect_failures))],
        )?;
        family(
            e,
            r,
            "ringpool_shared_failed_dials_in_a_row",
            "Dials that failed in a row: dials back off, and the breaker opens at breaker_threshold",
            None,
            |r| vec![("", gauge(r.stats.failed_dials_in_a_row as usize))],
        )?;
        family(
            e,
            r,
            "ringpool_shared_drained",
            "Connections that stopped taking requests, by reason",
            Some("reason"),
            |r| {
                vec![
                    ("closed", count(r.stats.drained_closed)),
                    ("lifetime", count(r.stats.drained_lifetime)),
                    ("requests", count(r.stats.drained_requests)),
                    ("idle_timeout", count(r.stats.drained_idle)),
                ]
            },
        )
    }
}
