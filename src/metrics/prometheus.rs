//! The pool's metrics in a `prometheus-client` registry, read at scrape
//! time from the counters `stats()` reads: registering costs the checkout
//! path nothing.

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

/// One scrape's worth of the pool's state.
struct Reading {
    status: Status,
    stats: Stats,
    wait_buckets: [u64; WAIT_BUCKET_BOUNDS_NS.len() + 1],
}

/// Reads a pool of any manager type, weakly.
trait Read: Send + Sync + 'static {
    fn read(&self) -> Option<Reading>;
}

struct Reader<M: Manager>(Weak<Inner<M>>);

impl<M: Manager> Read for Reader<M> {
    fn read(&self) -> Option<Reading> {
        let inner = self.0.upgrade()?;
        Some(Reading {
            status: crate::metrics::status::status(&inner),
            stats: inner.stats.snapshot(),
            wait_buckets: inner.stats.wait_buckets(),
        })
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

/// Encodes one metric family: `(label value, value)` pairs under `label`.
fn family<V: EncodeMetric>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &str,
    values: &[(&str, V)],
) -> std::fmt::Result {
    let Some((_, first)) = values.first() else {
        return Ok(());
    };
    let mut metric = encoder.encode_descriptor(name, help, None, first.metric_type())?;
    for (value_label, value) in values {
        let labels = [(label, *value_label)];
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Encodes one unlabelled metric.
fn single<V: EncodeMetric>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: V,
) -> std::fmt::Result {
    value.encode(encoder.encode_descriptor(name, help, None, value.metric_type())?)
}

fn count(value: u64) -> ConstCounter<u64> {
    ConstCounter::new(value)
}

fn gauge(value: usize) -> ConstGauge<i64> {
    ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX))
}

impl Collector for PoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let Some(Reading {
            status,
            stats,
            wait_buckets,
        }) = self.read.read()
        else {
            return Ok(());
        };
        let e = &mut encoder;
        family(
            e,
            "ringpool_connections",
            "Connections the pool owns, by state",
            "state",
            &[
                ("idle", gauge(status.idle)),
                ("in_use", gauge(status.in_use)),
                ("creating", gauge(status.creating)),
            ],
        )?;
        single(
            e,
            "ringpool_max_size",
            "The pool's max_size",
            gauge(status.max_size),
        )?;
        single(
            e,
            "ringpool_waiters",
            "Gets waiting for a connection",
            gauge(status.waiting),
        )?;
        let c = &stats.closed;
        family(
            e,
            "ringpool_gets",
            "Gets, by outcome: served with an open connection (reused) or a new one (new), timed out, failed",
            "outcome",
            &[
                ("reused", count(stats.reused)),
                ("new", count(stats.dialed)),
                ("timed_out", count(stats.timeouts)),
                ("failed", count(stats.get_failures)),
            ],
        )?;
        single(
            e,
            "ringpool_gets_waited",
            "Gets that had to wait",
            count(stats.waited),
        )?;
        single(
            e,
            "ringpool_connects",
            "Connections opened",
            count(stats.connects),
        )?;
        single(
            e,
            "ringpool_connect_errors",
            "Dials that failed (refused, timed out, an after_connect hook's error)",
            count(stats.connect_errors),
        )?;
        single(
            e,
            "ringpool_young_deaths",
            "New connections found dead within young_death_window, backed off as failed dials",
            count(stats.young_deaths),
        )?;
        family(
            e,
            "ringpool_closed",
            "Connections closed, by reason",
            "reason",
            &[
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
            ],
        )?;
        family(
            e,
            "ringpool_health_checks",
            "Liveness checks and pings, by result",
            "result",
            &[
                (
                    "alive",
                    count(
                        stats
                            .health_checks
                            .saturating_sub(stats.health_check_failures),
                    ),
                ),
                ("dead", count(stats.health_check_failures)),
            ],
        )?;
        single(
            e,
            "ringpool_leaks",
            "Checkouts held longer than leak_threshold",
            count(stats.leaks),
        )?;
        let buckets: Vec<(f64, u64)> = WAIT_BUCKET_BOUNDS_NS
            .iter()
            .map(|&bound| bound as f64 / 1e9)
            .chain([f64::MAX])
            .zip(wait_buckets)
            .collect();
        let waits: u64 = wait_buckets.iter().sum();
        let mut metric = e.encode_descriptor(
            "ringpool_acquire_wait",
            "How long gets that waited waited",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        metric.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            stats.wait_time.as_secs_f64(),
            waits,
            &buckets,
            None,
        )
    }
}
