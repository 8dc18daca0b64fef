//! A multi-endpoint pool's metrics in a `prometheus-client` registry:
//! every sub-pool's (the single pool's families, told apart by an
//! `endpoint` label) and each endpoint's ejection state, read from the
//! endpoint set at each scrape, so endpoints that join later are reported
//! and removed ones stop being.

use std::borrow::Cow;
use std::sync::Weak;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::registry::Registry;

use super::MultiPool;
use super::shared::Shared;
use crate::manager::Manager;
use crate::metrics::prometheus::{Reading, count, encode_pools, gauge};

impl<M: Manager> MultiPool<M> {
    /// Registers this pool's metrics in `registry`, labelled
    /// `pool="<name>"`: every endpoint's sub-pool's metrics (those of
    /// [`Pool::register_metrics`](crate::Pool::register_metrics)), each
    /// labelled `endpoint="<endpoint>"`, and per endpoint
    /// `ringpool_endpoint_ejected` (1 while ejected),
    /// `ringpool_endpoint_ejections_total` and
    /// `ringpool_endpoint_consecutive_failures`; for the whole pool,
    /// `ringpool_total_connections` and `ringpool_max_total` (when a
    /// global cap is set). The endpoint set is read at each scrape:
    /// endpoints added later appear, removed ones disappear. The registry
    /// holds the pool weakly and reports nothing once it is dropped.
    /// `docs/metrics.md` lists the metrics, with the alerts to set on them.
    ///
    /// # Examples
    ///
    /// ```
    /// use prometheus_client::registry::Registry;
    /// use ringpool::multi::MultiPool;
    /// # use ringpool::Manager;
    /// # struct Numbers;
    /// # impl Manager for Numbers {
    /// #     type Connection = u64;
    /// #     type Error = std::io::Error;
    /// #     async fn connect(&self) -> Result<u64, std::io::Error> { Ok(7) }
    /// # }
    ///
    /// let pool = MultiPool::builder(|_| Numbers)
    ///     .name("users")
    ///     .endpoints(["a:1", "b:1"])
    ///     .build()
    ///     .unwrap();
    /// let mut registry = Registry::default();
    /// pool.register_metrics(&mut registry);
    /// drop(pool.get_blocking().unwrap());
    ///
    /// let mut text = String::new();
    /// prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    /// assert!(text.contains(r#"ringpool_connections{pool="users",endpoint="a:1",state="idle"} 1"#));
    /// assert!(text.contains(r#"ringpool_endpoint_ejected{pool="users",endpoint="b:1"} 0"#));
    /// ```
    pub fn register_metrics(&self, registry: &mut Registry) {
        let label = (Cow::Borrowed("pool"), Cow::Owned(self.name().to_owned()));
        registry
            .sub_registry_with_label(label)
            .register_collector(Box::new(MultiCollector {
                read: Box::new(Reader(std::sync::Arc::downgrade(&self.shared))),
            }));
    }
}

/// One endpoint at a scrape.
struct EndpointReading {
    endpoint: String,
    pool: Reading,
    ejected: bool,
    ejections: u64,
    consecutive_failures: u32,
}

/// The whole pool at a scrape.
struct MultiReading {
    endpoints: Vec<EndpointReading>,
    total: usize,
    max_total: Option<usize>,
}

/// Reads a multi-endpoint pool of any manager type, weakly.
trait Read: Send + Sync + 'static {
    fn read(&self) -> Option<MultiReading>;
}

struct Reader<M: Manager>(Weak<Shared<M>>);

impl<M: Manager> Read for Reader<M> {
    fn read(&self) -> Option<MultiReading> {
        let shared = self.0.upgrade()?;
        let endpoints = shared
            .set
            .load_full()
            .nodes
            .iter()
            .map(|node| EndpointReading {
                endpoint: node.endpoint.to_string(),
                pool: node.pool.reading(),
                ejected: node.health.is_ejected(),
                ejections: node.health.ejections(),
                consecutive_failures: node.health.consecutive_failures(),
            })
            .collect();
        Some(MultiReading {
            endpoints,
            total: shared.cap.used(),
            max_total: shared.cap.max(),
        })
    }
}

struct MultiCollector {
    read: Box<dyn Read>,
}

impl std::fmt::Debug for MultiCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiCollector").finish_non_exhaustive()
    }
}

/// Encodes one metric per endpoint, labelled `endpoint`.
fn per_endpoint<V: EncodeMetric>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    endpoints: &[EndpointReading],
    value: impl Fn(&EndpointReading) -> V,
) -> std::fmt::Result {
    let Some(first) = endpoints.first() else {
        return Ok(());
    };
    let mut metric = encoder.encode_descriptor(name, help, None, value(first).metric_type())?;
    for endpoint in endpoints {
        let labels = [("endpoint", endpoint.endpoint.as_str())];
        value(endpoint).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for MultiCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let Some(reading) = self.read.read() else {
            return Ok(());
        };
        let e = &mut encoder;
        let pools: Vec<_> = reading
            .endpoints
            .iter()
            .map(|endpoint| (Some(endpoint.endpoint.as_str()), &endpoint.pool))
            .collect();
        encode_pools(e, &pools)?;
        let endpoints = &reading.endpoints;
        per_endpoint(
            e,
            "ringpool_endpoint_ejected",
            "1 while the endpoint is ejected (out of rotation after failures in a row), else 0",
            endpoints,
            |endpoint| gauge(usize::from(endpoint.ejected)),
        )?;
        per_endpoint(
            e,
            "ringpool_endpoint_ejections",
            "Times the endpoint was ejected",
            endpoints,
            |endpoint| count(endpoint.ejections),
        )?;
        per_endpoint(
            e,
            "ringpool_endpoint_consecutive_failures",
            "Failures in a row at the endpoint (dials, or gets and health checks)",
            endpoints,
            |endpoint| gauge(endpoint.consecutive_failures as usize),
        )?;
        let total = gauge(reading.total);
        total.encode(e.encode_descriptor(
            "ringpool_total_connections",
            "Connections across every endpoint, draining ones included: what max_total bounds",
            None,
            total.metric_type(),
        )?)?;
        if let Some(max) = reading.max_total {
            let max = gauge(max);
            max.encode(e.encode_descriptor(
                "ringpool_max_total",
                "The global cap on connections across every endpoint",
                None,
                max.metric_type(),
            )?)?;
        }
        Ok(())
    }
}
