//! Replacing the live config: validate, then swap, then bring the pool in
//! line (shed surplus idle connections, serve waiters a raised bound lets
//! in, wake maintenance for new targets).

use crate::config::{Config, ConfigError, Settings};
use crate::manager::{CloseReason, Manager};
use crate::pool::Pool;
use crate::pool::handoff::put;
use crate::pool::inner::Inner;
use crate::pool::release::dispatch;
use crate::sync::{Ordering, fence};

fn reconfigure<M: Manager>(inner: &Inner<M>, config: Config) -> Result<(), ConfigError> {
    config.validate(inner.core.idle.capacity())?;
    let _one_at_a_time = inner.reconfiguring.lock();
    let settings = Settings::new(config);
    inner.hot.update(&settings.config);
    inner.core.waiters.set_flags(
        crate::pool::inner::path::FROM_CONFIG,
        crate::pool::inner::path::from_config(&settings.config),
    );
    inner.gate.set_limits(&settings.config);
    inner.core.slots.set_max(settings.config.max_size);
    inner
        .core
        .idle
        .set_lifo(settings.config.idle_order == crate::config::IdleOrder::Lifo);
    tracing::info!(pool = %inner.name, endpoint = %inner.endpoint, config = %settings.config, "config replaced");
    let leak_threshold = settings.config.leak_threshold;
    inner.settings.store(settings);
    crate::lifecycle::leak::reconfigured(inner, leak_threshold);
    // Pairs with the fence in `Waiters::register`: a waiter queued before
    // the new limits were visible is served by the dispatch below.
    fence(Ordering::SeqCst);
    shed_idle(inner);
    dispatch(inner);
    inner.lifecycle.wake_maintenance();
    Ok(())
}

/// Closes idle connections while the pool is above its bound.
pub(crate) fn shed_idle<M: Manager>(inner: &Inner<M>) {
    while inner.core.slots.size() > inner.core.slots.max() {
        let Some(entry) = inner.core.idle.pop() else {
            break;
        };
        if inner.core.slots.try_shed() {
            inner.close_conn(entry, CloseReason::Resize);
        } else {
            put(inner, entry);
            break;
        }
    }
}

impl<M: Manager> Pool<M> {
    /// Validates `config` and, if it is good, makes it the live config.
    ///
    /// Every setting takes effect at once, on connections that already
    /// exist too (a shorter `max_lifetime` retires old connections at their
    /// next checkout, return or maintenance round). Raising `max_size`
    /// serves waiters at once. Lowering it never touches a connection in
    /// use: surplus idle connections are closed now, and returned ones are
    /// closed until the pool is within the new bound. A rejected config
    /// changes nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ringpool::{Manager, Pool};
    /// # struct Numbers;
    /// # impl Manager for Numbers {
    /// #     type Connection = u64;
    /// #     type Error = std::io::Error;
    /// #     async fn connect(&self) -> Result<u64, std::io::Error> { Ok(7) }
    /// # }
    /// let pool = Pool::builder(Numbers).max_size(4).build().unwrap();
    /// let mut config = pool.config();
    /// config.max_size = 8;
    /// pool.reconfigure(config).unwrap();
    /// assert_eq!(pool.status().max_size, 8);
    ///
    /// let mut bad = pool.config();
    /// bad.max_size = 0;
    /// let error = pool.reconfigure(bad).unwrap_err();
    /// assert_eq!(error.field, "max_size");
    /// assert_eq!(pool.status().max_size, 8);
    /// ```
    pub fn reconfigure(&self, config: Config) -> Result<(), ConfigError> {
        reconfigure(&self.inner, config)
    }
}
