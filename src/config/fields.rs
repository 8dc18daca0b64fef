//! Every setting, declared once: name, type, default and documentation.
//!
//! The `declare_config!` invocation below generates the [`Config`] struct,
//! its `Default`, the [`SETTINGS`] list, the text form's parser and printer
//! (and with them the `RINGPOOL_*` environment variables) and one
//! [`Builder`](crate::Builder) setter per setting (the `builder_setters!`
//! macro, expanded by the builder). Adding a setting means
//! adding it here, a rule in `validate.rs` if it has one, and a line in
//! `docs/tuning.md`.

use std::time::Duration;

use super::error::ConfigError;
use super::value::{IdleOrder, SettingValue};

macro_rules! declare_config {
    ($( $(#[doc = $doc:literal])* $name:ident : $ty:ty = $default:expr; )*) => {
        /// The tunable settings of a pool. Every field can be changed at run
        /// time with [`Pool::reconfigure`](crate::Pool::reconfigure) and
        /// takes effect on connections that already exist.
        ///
        /// See `docs/tuning.md` for how to pick each value.
        ///
        /// # Examples
        ///
        /// ```
        /// use std::time::Duration;
        /// use ringpool::Config;
        ///
        /// let mut config = Config::default();
        /// config.max_size = 64;
        /// config.acquire_timeout = Duration::from_millis(250);
        /// assert!(config.validate(1024).is_ok());
        /// ```
        #[derive(Clone, Debug, PartialEq)]
        #[non_exhaustive]
        pub struct Config {
            $( $(#[doc = $doc])* pub $name: $ty, )*
        }

        impl Default for Config {
            fn default() -> Self {
                Config { $( $name: $default, )* }
            }
        }

        /// Every setting's name, in the order the text form writes them.
        pub const SETTINGS: &[&str] = &[$( stringify!($name) ),*];

        impl Config {
            /// Parses `value` into the setting called `name`; `None` if
            /// there is no such setting.
            pub(super) fn set_field(
                &mut self,
                name: &str,
                value: &str,
            ) -> Option<Result<(), ConfigError>> {
                match name {
                    $( stringify!($name) => Some(
                        <$ty as SettingValue>::parse(stringify!($name), value)
                            .map(|parsed| self.$name = parsed),
                    ), )*
                    _ => None,
                }
            }

            /// Every setting's name and its value as text, in order.
            pub(super) fn fields_as_text(&self) -> Vec<(&'static str, String)> {
                vec![$( (stringify!($name), SettingValue::show(&self.$name)) ),*]
            }
        }

        /// One setter per setting, for the pool's builder (expanded inside
        /// `impl Builder`, which holds the config as `self.config`).
        macro_rules! builder_setters {
            () => {
                $(
                    #[doc = concat!("Sets [`Config::", stringify!($name), "`].")]
                    pub fn $name(mut self, value: $ty) -> Self {
                        self.config_mut().$name = value;
                        self
                    }
                )*
            };
        }
        pub(crate) use builder_setters;
    };
}

declare_config! {
    /// Most connections the pool owns at once: idle + in use + being
    /// created. Default 16.
    max_size: usize = 16;
    /// Idle connections the pool tries to keep ready. Default 0.
    min_idle: usize = 0;
    /// How long `get` waits for a connection before failing. Default 5 s.
    acquire_timeout: Duration = Duration::from_secs(5);
    /// Idle connections unused for longer are closed (down to `min_idle`).
    /// `None` keeps them forever. Default 30 s.
    idle_timeout: Option<Duration> = Some(Duration::from_secs(30));
    /// Connections older than this (shortened by up to `lifetime_jitter` of
    /// it, per connection) are closed instead of being handed out or taken
    /// back. `None` keeps them forever. Default 30 min.
    max_lifetime: Option<Duration> = Some(Duration::from_secs(30 * 60));
    /// Fraction in `[0, 1)` by which each connection's lifetime is randomly
    /// shortened, so connections opened together do not expire together.
    /// Default 0.025.
    lifetime_jitter: f64 = 0.025;
    /// A connection returned less than this long ago is handed out without
    /// the manager's liveness check (`Manager::is_broken`). Zero checks
    /// every checkout. Default 500 ms.
    ///
    /// One exception, from `young_death_window`: a connection younger than
    /// that window that has not yet passed a liveness check after a use is
    /// checked at every checkout, however recently it was returned (a
    /// server at its client limit accepts and then drops connections, and
    /// that must be seen before the connection is handed out again). After
    /// a check finds it alive at least a tenth of the window after its dial
    /// (100 ms by default), or once it is older than the window, this
    /// setting alone decides. Set `young_death_window` to `None` to make
    /// this setting the only rule.
    check_after: Duration = Duration::from_millis(500);
    /// Wait before the first retry after a failed dial; it doubles with each
    /// consecutive failure. Default 50 ms.
    connect_backoff: Duration = Duration::from_millis(50);
    /// Upper bound of the dial backoff, and so of the breaker's probe
    /// interval: while the target is down one pool dials at most about
    /// once per `connect_backoff_max / 2` (each step is drawn from the upper
    /// half), and it notices the target is back within
    /// `connect_backoff_max`. Default 200 ms: at most 10 dials a second
    /// while down, back within 200 ms (see `docs/tuning.md`).
    connect_backoff_max: Duration = Duration::from_millis(200);
    /// A connection idle at least this long is pinged (`Manager::ping`)
    /// before it is handed out; a failed or timed-out ping closes it and the
    /// get moves on. `None` never pings at checkout. Default `None`.
    ping_after: Option<Duration> = None;
    /// Every ping (at checkout and in maintenance) runs under this timeout,
    /// so a dead peer cannot hang a get or the maintenance task. Default 1 s.
    ping_timeout: Duration = Duration::from_secs(1);
    /// The manager's asynchronous recycle step on a returned connection
    /// (`Manager::recycle`: a `ROLLBACK`, a session reset) runs under this
    /// timeout; past it the connection is closed. Takes effect on the next
    /// step, connections already waiting for one included. Default 5 s.
    recycle_timeout: Duration = Duration::from_secs(5);
    /// Longest a dial may take, whoever asked for it (a get, a refill or a
    /// warm-up); a dial that takes longer is cancelled and counted as a
    /// failed dial for backoff and the breaker. A get's dial is also bound
    /// by the get's own `acquire_timeout`. Default 5 s.
    create_timeout: Duration = Duration::from_secs(5);
    /// A new connection that ends badly within this long of its dial
    /// (found dead by the liveness check, a ping or the idle watch, refused
    /// by `can_recycle`, or discarded by its user) is a young death: a
    /// server at its client limit accepts, answers with an error and
    /// closes, so every dial succeeds and only this throttles the storm.
    /// Young deaths pace dials (the next dial waits until a spacing after
    /// the dying connection's own dial, growing from `connect_backoff` to
    /// `connect_backoff_max` with each death in a row) until a connection
    /// dialed after the last death passes a liveness check after use, a
    /// tenth of this window or more after its dial. They
    /// never open the breaker and never fail a get: a get waits for the
    /// paced dial within its own timeout. A connection its peer ended after
    /// serving it (`CloseReason::Finished`) is no death. Connections this
    /// young get the liveness check at every checkout, whatever
    /// `check_after` says, until one finds them alive after use at least a
    /// tenth of this window after their dial (earlier checks prove nothing:
    /// a busy server closes late after its error reply). `None` disables
    /// it. Default 1 s.
    young_death_window: Option<Duration> = Some(Duration::from_secs(1));
    /// Most dials in flight at once, for gets and refills together, so a
    /// cold start or a recovery is no dial storm. Default 8.
    max_concurrent_dials: usize = 8;
    /// After this many consecutive failed dials the breaker opens: gets that
    /// need a new connection fail at once with the last connect error, and
    /// one probe dial per backoff interval decides when to close it. Idle
    /// connections are still served. `None` disables it. Default 5.
    breaker_threshold: Option<u32> = Some(5);
    /// How often the background maintenance runs (idle expiry, leak checks,
    /// refills, health checks), jittered by up to 10 %. Default 5 s.
    maintenance_interval: Duration = Duration::from_secs(5);
    /// A connection held longer than this is reported once (a `tracing`
    /// warning naming where it was checked out, and a counter), between one
    /// and one and a quarter thresholds after its checkout. `None`
    /// disables leak detection, which then costs nothing. Default `None`.
    leak_threshold: Option<Duration> = None;
    /// Keep the pool sized to the recent peak of concurrent use (in use plus
    /// waiting), decaying with this half-life, within `[min_idle,
    /// max_size]`: a burst finds connections ready and a quiet hour releases
    /// them. `None` keeps only `min_idle`. Default `None`.
    demand_half_life: Option<Duration> = None;
    /// Which idle connection a checkout takes: `lifo`, the connection its
    /// own thread returned last when that one is idle (a warm connection,
    /// and a lightly used pool shrinks to the connections it uses, the rest
    /// timing out from the cold end), or `fifo`, always the one idle
    /// longest (every connection exercised in turn). Default `lifo`.
    idle_order: IdleOrder = IdleOrder::Lifo;
}
