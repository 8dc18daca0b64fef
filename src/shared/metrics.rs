//! A shared pool's metrics in a `prometheus-client` registry, read at
//! scrape time from [`SharedPool::stats`]: registering costs a request
//! nothing. `docs/metrics.md` lists them.

use std::borrow::Cow;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::registry::Registry;

use super::manager::SharedManager;
use super::pool::{SharedPool, SharedStats, WeakPool};
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
        let label = (Cow::Borrowed("pool"), Cow::Owned(self.name().to_owned()));
        registry
            .sub_registry_with_label(label)
            .register_collector(Box::new(SharedCollector {
                read: Box::new(self.downgrade()),
            }));
    }
}

/// One scrape of a pool: its stats and its limits.
struct Reading {
    stats: SharedStats,
    max_size: usize,
    max_streams: usize,
}

/// Reads a pool of any manager type, weakly.
trait Read: Send + Sync + 'static {
    fn read(&self) -> Option<Reading>;
}

impl<M: SharedManager> Read for WeakPool<M> {
    fn read(&self) -> Option<Reading> {
        let pool = self.upgrade()?;
        let (max_size, max_streams) = pool.limits();
        Some(Reading {
            stats: pool.stats(),
            max_size,
            max_streams,
        })
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

/// Encodes one family: `(label value, value)` pairs under `label`, or one
/// unlabelled value when `label` is `None`.
fn family<V: EncodeMetric>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: Option<&str>,
    values: Vec<(&str, V)>,
) -> std::fmt::Result {
    let Some((_, first)) = values.first() else {
        return Ok(());
    };
    let mut metric = encoder.encode_descriptor(name, help, None, first.metric_type())?;
    for (value_label, value) in &values {
        let labels: Vec<(&str, &str)> = label
            .map(|label| (label, *value_label))
            .into_iter()
            .collect();
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for SharedCollector {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> std::fmt::Result {
        let Some(Reading {
            stats: s,
            max_size,
            max_streams,
        }) = self.read.read()
        else {
            return Ok(());
        };
        let e = &mut e;
        family(
            e,
            "ringpool_shared_connections",
            "Connections, by state: taking requests (open), finishing their last ones (draining), being dialed (dialing)",
            Some("state"),
            vec![
                ("open", gauge(s.open)),
                ("draining", gauge(s.draining)),
                ("dialing", gauge(s.dialing)),
            ],
        )?;
        family(
            e,
            "ringpool_shared_max_size",
            "The pool's max_size (open connections)",
            None,
            vec![("", gauge(max_size))],
        )?;
        family(
            e,
            "ringpool_shared_max_streams",
            "Requests one connection may carry at once, at most",
            None,
            vec![("", gauge(max_streams))],
        )?;
        family(
            e,
            "ringpool_shared_requests_in_flight",
            "Requests in flight on all connections",
            None,
            vec![("", gauge(s.in_flight))],
        )?;
        let busiest = s.per_connection.iter().map(|&(_, load)| load).max();
        family(
            e,
            "ringpool_shared_busiest_connection_requests",
            "Requests in flight on the most loaded open connection (against the mean, it shows uneven use)",
            None,
            vec![("", gauge(busiest.unwrap_or(0)))],
        )?;
        family(
            e,
            "ringpool_shared_waiters",
            "Callers queued for room",
            None,
            vec![("", gauge(s.waiting))],
        )?;
        family(
            e,
            "ringpool_shared_leases",
            "Places on a connection handed out (one per request)",
            None,
            vec![("", count(s.leases))],
        )?;
        family(
            e,
            "ringpool_shared_connects",
            "Connections opened",
            None,
            vec![("", count(s.connects))],
        )?;
        family(
            e,
            "ringpool_shared_connect_errors",
            "Dials that failed or timed out",
            None,
            vec![("", count(s.connect_failures))],
        )?;
        family(
            e,
            "ringpool_shared_failed_dials_in_a_row",
            "Dials that failed in a row: dials back off, and the breaker opens at breaker_threshold",
            None,
            vec![("", gauge(s.failed_dials_in_a_row as usize))],
        )?;
        family(
            e,
            "ringpool_shared_drained",
            "Connections that stopped taking requests, by reason",
            Some("reason"),
            vec![
                ("closed", count(s.drained_closed)),
                ("lifetime", count(s.drained_lifetime)),
                ("requests", count(s.drained_requests)),
                ("idle_timeout", count(s.drained_idle)),
            ],
        )
    }
}
