//! The pool's metrics in a `prometheus-client` registry, read at scrape
//! time from the counters `stats()` reads: registering costs the checkout
//! path nothing.
//!
//! The families are encoded by [`encode_pools`] from any number of pools'
//! readings, each told apart by an optional `endpoint` label: one pool
//! here, every sub-pool of a multi-endpoint pool in `multi::metrics`, each
//! family described once.

use std::borrow::Cow;
use std::sync::Weak;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use super::stats::WAIT_BUCKET_BOUNDS_NS;
use crate::manager::Manager;
use crate::pool::Pool;
use crate::pool::inner::Inner;
use crate::{Stats, Status};

impl<M: Manager> Pool<M> {
    /// Registers this pool's metrics in `registry`, labelled
    /// `pool="<name>"` ([`Builder::name`](crate::Builder::name)) and, when
    /// the manager names one ([`Manager::endpoint`]), `endpoint="<target>"`. Give a
    /// prefix or more labels with the registry's own
    /// `sub_registry_with_prefix` / `sub_registry_with_labels`. The metrics
    /// are read from the pool at each scrape; the registry holds the pool
    /// weakly and reports nothing once it is dropped. `docs/metrics.md`
    /// lists them, with the alerts to set on them.
    ///
    /// # Examples
    ///
    /// ```
    /// use prometheus_client::registry::Registry;
    /// # use ringpool::{Manager, Pool};
    /// # struct Numbers;
    /// # impl Manager for Numbers {
    /// #     type Connection = u64;
    /// #     type Error = std::io::Error;
    /// #     async fn connect(&self) -> Result<u64, std::io::Error> { Ok(7) }
    /// # }
    ///
    /// let pool = Pool::builder(Numbers).name("payments").build().unwrap();
    /// let mut registry = Registry::default();
    /// pool.register_metrics(registry.sub_registry_with_prefix("myservice"));
    /// drop(pool.get_blocking().unwrap());
    ///
    /// let mut text = String::new();
    /// prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    /// assert!(text.contains(r#"myservice_ringpool_connections{pool="payments",state="idle"} 1"#));
    /// ```
    pub fn register_metrics(&self, registry: &mut Registry) {
        let label = (Cow::Borrowed("pool"), Cow::Owned(self.name().to_owned()));
        let mut registry = registry.sub_registry_with_label(label);
        if !self.inner.endpoint.is_empty() {
            let endpoint = (
                Cow::Borrowed("endpoint"),
                Cow::Owned(self.inner.endpoint.to_string()),
            );
            registry = registry.sub_registry_with_label(endpoint);
        }
        registry.register_collector(Box::new(PoolCollector {
            read: Box::new(Reader(std::sync::Arc::downgrade(&self.inner))),
        }));
    }
}

/// One scrape's worth of a pool's state.
pub(crate) struct Reading {
    status: Status,
    stats: Stats,
    wait_buckets: [u64; WAIT_BUCKET_BOUNDS_NS.len() + 1],
}

impl<M: Manager> Pool<M> {
    /// This pool's state now, for a scrape.
    pub(crate) fn reading(&self) -> Reading {
        read(&self.inner)
    }
}

fn read<M: Manager>(inner: &Inner<M>) -> Reading {
    Reading {
        status: crate::metrics::status::status(inner),
        stats: inner.stats_now(),
        wait_buckets: inner.stats.wait_buckets(),
    }
}

/// Reads a pool of any manager type, weakly.
trait Read: Send + Sync + 'static {
    fn read(&self) -> Option<Reading>;
}

struct Reader<M: Manager>(Weak<Inner<M>>);

impl<M: Manager> Read for Reader<M> {
    fn read(&self) -> Option<Reading> {
        Some(read(&*self.0.upgrade()?))
    }
}

struct PoolCollector {
    read: Box<dyn Read>,
}

impl std::fmt::Debug for PoolCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolCollector").finish_non_exhaustive()
    }
}

/// A pool's reading and its `endpoint` label, if it needs one.
pub(crate) type Labelled<'a> = (Option<&'a str>, &'a Reading);

/// The labels of one sample: the pool's `endpoint`, if any, then `more`.
fn labels<'a>(
    endpoint: Option<&'a str>,
    more: Option<(&'a str, &'a str)>,
) -> Vec<(&'a str, &'a str)> {
    endpoint
        .map(|endpoint| ("endpoint", endpoint))
        .into_iter()
        .chain(more)
        .collect()
}

/// Encodes one metric family: for each pool, `(label value, value)` pairs
/// under `label`.
fn family<V: EncodeMetric>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &str,
    pools: &[Labelled<'_>],
    values: impl Fn(&Reading) -> Vec<(&'static str, V)>,
) -> std::fmt::Result {
    let Some((_, first)) = pools.first() else {
        return Ok(());
    };
    let Some((_, value)) = values(first).into_iter().next() else {
        return Ok(());
    };
    let mut metric = encoder.encode_descriptor(name, help, None, value.metric_type())?;
    for (endpoint, reading) in pools {
        for (value_label, value) in values(reading) {
            let labels = labels(*endpoint, Some((label, value_label)));
            value.encode(metric.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

/// Encodes one metric with no label of its own, for each pool.
fn single<V: EncodeMetric>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    pools: &[Labelled<'_>],
    value: impl Fn(&Reading) -> V,
) -> std::fmt::Result {
    let Some((_, first)) = pools.first() else {
        return Ok(());
    };
    let mut metric = encoder.encode_descriptor(name, help, None, value(first).metric_type())?;
    for (endpoint, reading) in pools {
        let labels = labels(*endpoint, None);
        value(reading).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

pub(crate) fn count(value: u64) -> ConstCounter<u64> {
    ConstCounter::new(value)
}

pub(crate) fn gauge(value: usize) -> ConstGauge<i64> {
    ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX))
}

impl Collector for PoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let Some(reading) = self.read.read() else {
            return Ok(());
        };
        encode_pools(&mut encoder, &[(None, &reading)])
    }
}

/// Encodes every pool family for `pools`, each family described once.
pub(crate) fn encode_pools(
    e: &mut DescriptorEncoder<'_>,
    pools: &[Labelled<'_>],
) -> std::fmt::Result {
    family(
        e,
        "ringpool_connections",
        "Connections the pool owns, by state",
        "state",
        pools,
        |r| {
            vec![
                ("idle", gauge(r.status.idle)),
                ("in_use", gauge(r.status.in_use)),
                ("creating", gauge(r.status.creating)),
            ]
        },
    )?;
    single(e, "ringpool_max_size", "The pool's max_size", pools, |r| {
        gauge(r.status.max_size)
    })?;
    single(
        e,
        "ringpool_waiters",
        "Gets waiting for a connection",
        pools,
        |r| gauge(r.status.waiting),
    )?;
    family(
        e,
        "ringpool_gets",
        "Gets, by outcome: served with an open connection (reused) or a new one (new), timed out, failed",
        "outcome",
        pools,
        |r| {
            vec![
                ("reused", count(r.stats.reused)),
                ("new", count(r.stats.dialed)),
                ("timed_out", count(r.stats.timeouts)),
                ("failed", count(r.stats.get_failures)),
            ]
        },
    )?;
    single(
        e,
        "ringpool_gets_waited",
        "Gets that had to wait",
        pools,
        |r| count(r.stats.waited),
    )?;
    single(e, "ringpool_connects", "Connections opened", pools, |r| {
        count(r.stats.connects)
    })?;
    single(
        e,
        "ringpool_connect_errors",
        "Dials that failed (refused, timed out, an after_connect hook's error)",
        pools,
        |r| count(r.stats.connect_errors),
    )?;
    single(
        e,
        "ringpool_young_deaths",
        "New connections found dead within young_death_window, backed off as failed dials",
        pools,
        |r| count(r.stats.young_deaths),
    )?;
    family(
        e,
        "ringpool_closed",
        "Connections closed, by reason",
        "reason",
        pools,
        |r| {
            let c = &r.stats.closed;
            vec![
                ("broken", count(c.broken)),
                ("idle_timeout", count(c.idle_timeout)),
                ("lifetime", count(c.lifetime)),
                ("resize", count(c.resize)),
                ("discarded", count(c.discarded)),
                ("abandoned", count(c.abandoned)),
                ("evicted", count(c.evicted)),
                ("rejected", count(c.rejected)),
                ("pool_closed", count(c.pool_closed)),
                ("hangup", count(c.hangup)),
                ("finished", count(c.finished)),
            ]
        },
    )?;
    family(
        e,
        "ringpool_health_checks",
        "Liveness checks and pings, by result",
        "result",
        pools,
        |r| {
            let failures = r.stats.health_check_failures;
            vec![
                (
                    "alive",
                    count(r.stats.health_checks.saturating_sub(failures)),
                ),
                ("dead", count(failures)),
            ]
        },
    )?;
    family(
        e,
        "ringpool_tls_handshakes",
        "TLS handshakes the pool's dials completed, full or resumed",
        "kind",
        pools,
        |r| {
            let handshakes = r.stats.tls_handshakes;
            vec![
                ("full", count(handshakes.full)),
                ("resumed", count(handshakes.resumed)),
            ]
        },
    )?;
    single(
        e,
        "ringpool_leaks",
        "Checkouts held longer than leak_threshold",
        pools,
        |r| count(r.stats.leaks),
    )?;
    if pools.is_empty() {
        return Ok(());
    }
    let mut metric = e.encode_descriptor(
        "ringpool_acquire_wait",
        "How long gets that waited waited",
        Some(&Unit::Seconds),
        MetricType::Histogram,
    )?;
    for (endpoint, reading) in pools {
        let buckets: Vec<(f64, u64)> = WAIT_BUCKET_BOUNDS_NS
            .iter()
            .map(|&bound| bound as f64 / 1e9)
            .chain([f64::MAX])
            .zip(reading.wait_buckets)
            .collect();
        let waits: u64 = reading.wait_buckets.iter().sum();
        let labels = labels(*endpoint, None);
        metric
            .encode_family(&labels)?
            .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                reading.stats.wait_time.as_secs_f64(),
                waits,
                &buckets,
                None,
            )?;
    }
    Ok(())
}
