//! The contract between the pool and whatever makes its connections.

/// Whether a connect error is worth retrying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorClass {
    /// The target may come back (refused, reset, timed out): the pool backs
    /// off and dials again while gets wait.
    Retryable,
    /// Retrying cannot help (bad credentials, protocol mismatch): waiting
    /// gets fail at once with this error.
    Fatal,
}

/// Why the pool closed a connection; each reason has its own counter in
/// [`Stats`](crate::Stats).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The liveness check or a ping found it dead, or it was returned in a
    /// state that cannot be reused.
    Broken,
    /// It sat idle longer than `idle_timeout`.
    IdleTimeout,
    /// It outlived its (jittered) `max_lifetime`.
    Lifetime,
    /// `max_size` was lowered below the number of connections.
    Resize,
    /// Its user called [`Pooled::discard`](crate::Pooled::discard).
    Discarded,
    /// It was given back mid-request (an operation left pending, a reply
    /// not read), so its next user could read someone else's reply.
    Abandoned,
    /// [`Pool::retain`](crate::Pool::retain) evicted it.
    Evicted,
    /// A `before_checkout` or `on_return` hook refused it (see
    /// [`hooks`](crate::hooks)).
    Rejected,
    /// The manager's idle watch saw it die while it sat idle: the peer
    /// closed or reset it, or sent bytes nobody asked for (see
    /// [`Manager::idle_watcher`]).
    Hangup,
    /// The pool was closed or dropped.
    PoolClosed,
    /// It served its use and its peer ends it: the server said it closes
    /// the connection after the reply it sent (HTTP `Connection: close`).
    /// Not a failure: it never counts as a young death.
    Finished,
}

/// The manager's items, written once: [`Manager`] has them with futures
/// that need not be `Send`, [`SendManager`](crate::SendManager) the same
/// with `Send` futures, and the blanket implementation of `Manager` for
/// every `SendManager` forwards each of them. `manager_items!(trait)` and
/// `manager_items!(trait + Send)` expand to a trait's items,
/// `manager_items!(forward SendManager)` to the forwarding implementation.
macro_rules! manager_items {
    (@emit [trait]
        types { $($types:tt)* }
        required { $( $(#[$rm:meta])* fn $rname:ident(&$rself:ident) -> $rout:ty; )* }
        futures {
            $( $(#[$fm:meta])* fn $fname:ident(&$fself:ident $(, $farg:ident : $fty:ty)*) -> $fout:ty $fbody:block )*
        }
        methods {
            $( $(#[$mm:meta])* fn $mname:ident(&$mself:ident $(, $marg:ident : $mty:ty)*) $(-> $mret:ty)? $mbody:block )*
        }
    ) => {
        $($types)*
        $(
            $(#[$rm])*
            fn $rname(&$rself) -> impl ::core::future::Future<Output = $rout>;
        )*
        $(
            $(#[$fm])*
            fn $fname(&$fself $(, $farg: $fty)*) -> impl ::core::future::Future<Output = $fout> $fbody
        )*
        $(
            $(#[$mm])*
            fn $mname(&$mself $(, $marg: $mty)*) $(-> $mret)? $mbody
        )*
    };
    (@emit [trait + Send]
        types { $($types:tt)* }
        required { $( $(#[$rm:meta])* fn $rname:ident(&$rself:ident) -> $rout:ty; )* }
        futures {
            $( $(#[$fm:meta])* fn $fname:ident(&$fself:ident $(, $farg:ident : $fty:ty)*) -> $fout:ty $fbody:block )*
        }
        methods {
            $( $(#[$mm:meta])* fn $mname:ident(&$mself:ident $(, $marg:ident : $mty:ty)*) $(-> $mret:ty)? $mbody:block )*
        }
    ) => {
        $($types)*
        $(
            $(#[$rm])*
            fn $rname(&$rself) -> impl ::core::future::Future<Output = $rout> + Send;
        )*
        $(
            $(#[$fm])*
            fn $fname(&$fself $(, $farg: $fty)*) -> impl ::core::future::Future<Output = $fout> + Send $fbody
        )*
        $(
            $(#[$mm])*
            fn $mname(&$mself $(, $marg: $mty)*) $(-> $mret)? $mbody
        )*
    };
    (@emit [forward $variant:ident]
        types { $($types:tt)* }
        required { $( $(#[$rm:meta])* fn $rname:ident(&self) -> $rout:ty; )* }
        futures {
            $( $(#[$fm:meta])* fn $fname:ident(&self $(, $farg:ident : $fty:ty)*) -> $fout:ty $fbody:block )*
        }
        methods {
            $( $(#[$mm:meta])* fn $mname:ident(&self $(, $marg:ident : $mty:ty)*) $(-> $mret:ty)? $mbody:block )*
        }
    ) => {
        type Connection = <Self as $variant>::Connection;
        type Error = <Self as $variant>::Error;
        $(
            fn $rname(&self) -> impl ::core::future::Future<Output = $rout> {
                <Self as $variant>::$rname(self)
            }
        )*
        $(
            fn $fname(&self $(, $farg: $fty)*) -> impl ::core::future::Future<Output = $fout> {
                <Self as $variant>::$fname(self $(, $farg)*)
            }
        )*
        $(
            fn $mname(&self $(, $marg: $mty)*) $(-> $mret)? {
                <Self as $variant>::$mname(self $(, $marg)*)
            }
        )*
    };
    ($($mode:tt)*) => {
        $crate::manager::manager_items! { @emit [$($mode)*]
        types {
            /// What the pool hands out. `Send`, because idle connections are shared
            /// by every thread that uses the pool and closed by whichever thread
            /// finds them expired.
            type Connection: Send + 'static;
            /// What `connect` and `ping` fail with.
            type Error: std::error::Error + Send + Sync + 'static;
        }
        required {
            /// Opens a new connection.
            fn connect(&self) -> Result<Self::Connection, Self::Error>;
        }
        futures {
            /// The asynchronous recycle step (as `ROLLBACK`, `DISCARD ALL`, a
            /// session reset): run on a connection given back for which
            /// [`needs_recycle`](Manager::needs_recycle) said yes, off the
            /// returning caller's path, before the connection is reused.
            ///
            /// The returned connection waits, counted in the pool's size but not
            /// idle, until the maintenance task (woken at once) or the next get
            /// that finds nothing idle runs this step on it, under
            /// `recycle_timeout` (and the get's own deadline). `Ok` puts it back
            /// into use; an error, the timeout or a panic closes it
            /// ([`CloseReason::Broken`]) and frees its slot. A get or maintenance
            /// task dropped mid-step closes it too: its state is unknown.
            fn recycle(&self, _conn: &mut Self::Connection) -> Result<(), Self::Error> {
                std::future::ready(Ok(()))
            }

            /// Protocol-level health check used by health checks (for Redis, `PING`).
            fn ping(&self, _conn: &mut Self::Connection) -> Result<(), Self::Error> {
                std::future::ready(Ok(()))
            }
        }
        methods {
            /// Cheap synchronous liveness check run at checkout (for TCP: a
            /// non-blocking peek). `true` means the connection is dead; it is closed
            /// and the get moves on without the caller seeing an error.
            fn is_broken(&self, _conn: &mut Self::Connection) -> bool {
                false
            }

            /// The liveness check of many idle connections at once, used by
            /// background maintenance; `result[i]` is `true` when `conns[i]` is
            /// dead. The default runs [`is_broken`](Manager::is_broken) on each; the
            /// TCP manager checks them all in one io_uring submission.
            fn is_broken_batch(&self, conns: &mut [&mut Self::Connection]) -> Vec<bool> {
                conns.iter_mut().map(|conn| self.is_broken(conn)).collect()
            }

            /// Whether a connection given back to the pool may be reused. Must not
            /// block or do I/O; `false` closes it with [`CloseReason::Broken`].
            fn can_recycle(&self, _conn: &mut Self::Connection) -> bool {
                true
            }

            /// Why a connection given back may not be reused, if it may not: the
            /// reason it is closed with. The default asks
            /// [`can_recycle`](Manager::can_recycle) and answers
            /// [`CloseReason::Broken`] when it says no. A manager whose connections
            /// know they were given back mid-request answers
            /// [`CloseReason::Abandoned`]. Must not block or do I/O.
            fn check_return(&self, conn: &mut Self::Connection) -> Result<(), CloseReason> {
                match self.can_recycle(conn) {
                    true => Ok(()),
                    false => Err(CloseReason::Broken),
        }
            }

            /// Whether a connection given back, and accepted by
            /// [`check_return`](Manager::check_return), needs the asynchronous
            /// [`recycle`](Manager::recycle) step before anybody reuses it (a
            /// session left inside a transaction, state to reset). Called on every
            /// return, so it must be cheap, must not block and must do no I/O. The
            /// default says no, and a manager that keeps it pays nothing.
            fn needs_recycle(&self, _conn: &mut Self::Connection) -> bool {
                false
            }

            /// Classifies a connect error. Everything is retryable by default.
            fn classify(&self, _error: &Self::Error) -> ErrorClass {
                ErrorClass::Retryable
            }

            /// What this manager connects to (for TCP, the target as given), for
            /// the pool's logs and metrics: every event the pool emits carries it
            /// as the `endpoint` field. `None` (the default) leaves it empty.
            fn endpoint(&self) -> Option<String> {
                None
            }

            /// The TLS handshakes its dials completed so far, full and resumed, if
            /// it dials TLS: [`Pool::stats`](crate::Pool::stats) reports them as
            /// [`Stats::tls_handshakes`](crate::Stats::tls_handshakes) and the
            /// Prometheus exporter as `ringpool_tls_handshakes_total`. The default
            /// has none.
            fn tls_handshakes(&self) -> Option<TlsHandshakes> {
                None
            }

            /// The manager's idle watch, if it has one (see [`IdleWatcher`]): the
            /// pool asks for it as it is built and at every move of a connection in
            /// and out of the idle store. The default has none, and maintenance
            /// checks idle connections itself.
            ///
            /// All of the watch sits behind this one method, so a manager that
            /// wraps another (to count dials, to log, as a test double) keeps the
            /// inner manager's watch by forwarding it alone:
            ///
            /// ```
            /// use ringpool::{IdleWatcher, Manager};
            ///
            /// /// Counts dials, and is otherwise the manager it wraps.
            /// struct Counting<M> {
            ///     inner: M,
            ///     dials: std::sync::atomic::AtomicU64,
            /// }
            ///
            /// impl<M: Manager> Manager for Counting<M> {
            ///     type Connection = M::Connection;
            ///     type Error = M::Error;
            ///     async fn connect(&self) -> Result<M::Connection, M::Error> {
            ///         self.dials.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            ///         self.inner.connect().await
            ///     }
            ///     fn is_broken(&self, conn: &mut M::Connection) -> bool {
            ///         self.inner.is_broken(conn)
            ///     }
            ///     // ... the other methods, each forwarded ...
            ///     fn idle_watcher(&self) -> Option<&dyn IdleWatcher<M::Connection>> {
            ///         self.inner.idle_watcher()
            ///     }
            /// }
            /// ```
            ///
            /// A manager whose connection type wraps the inner one's implements
            /// [`IdleWatcher`] for its own type by forwarding each call to the inner
            /// watcher with the inner connection, and answers `Some(self)` when the
            /// inner manager has a watcher. The TCP manager logs a warning at its
            /// first dial if no pool asked for its watch, which is what a wrapper
            /// that forgot this method looks like.
            fn idle_watcher(&self) -> Option<&dyn IdleWatcher<Self::Connection>> {
                None
            }

            /// Closes a connection the pool is done with. Dropping it is the default.
            ///
            /// Background expiry calls it from the clock's timer thread, so it must
            /// not block for long (the TCP manager hands the close to io_uring).
            fn close(&self, conn: Self::Connection, _reason: CloseReason) {
                drop(conn);
            }
        }
        }
    };
}
pub(crate) use manager_items;

/// Makes, checks and closes connections for a [`Pool`](crate::Pool).
///
/// The futures it returns need not be `Send`: a manager for a thread-per-core
/// runtime (tokio-uring) works as it is. When they are `Send`, so are the
/// pool's `get` futures.
///
/// # Examples
///
/// ```
/// use ringpool::Manager;
///
/// struct Numbers;
///
/// impl Manager for Numbers {
///     type Connection = u64;
///     type Error = std::io::Error;
///
///     async fn connect(&self) -> Result<u64, std::io::Error> {
///         Ok(42)
///     }
/// }
/// ```
pub trait Manager: Send + Sync + 'static {
    manager_items!(trait);
}

/// A manager's idle watch ([`Manager::idle_watcher`]): instead of being
/// swept by maintenance, idle connections are watched (the TCP manager: a
/// multishot poll on io_uring; the client managers: the library's own
/// connection task), and the watch calls `deaths.notify()` whenever one
/// dies, so the pool closes it and frees its slot at once.
///
/// Every method must be cheap and must not block: `idle` and `unwatch` run
/// on every return and checkout. If one panics, the pool closes the
/// connection it was called with and frees its slot as the panic passes.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use ringpool::{IdleDeaths, IdleWatch, IdleWatcher, Manager, Pool};
///
/// /// Connections that know whether their peer hung up.
/// struct Conn { hung_up: std::sync::Arc<AtomicBool> }
///
/// struct Watching;
///
/// impl IdleWatcher<Conn> for Watching {
///     fn start(&self, _deaths: IdleDeaths) -> IdleWatch {
///         IdleWatch::Watched
///     }
///     fn idle(&self, _conn: &mut Conn) {}
///     fn unwatch(&self, conn: &mut Conn) -> bool {
///         conn.hung_up.load(Ordering::Acquire)
///     }
///     fn died_idle(&self, conn: &Conn) -> bool {
///         conn.hung_up.load(Ordering::Acquire)
///     }
/// }
///
/// impl Manager for Watching {
///     type Connection = Conn;
///     type Error = std::io::Error;
///     async fn connect(&self) -> std::io::Result<Conn> {
///         Ok(Conn { hung_up: Default::default() })
///     }
///     fn idle_watcher(&self) -> Option<&dyn IdleWatcher<Conn>> {
///         Some(self)
///     }
/// }
///
/// let pool = Pool::builder(Watching).build().unwrap();
/// let conn = pool.get_blocking().unwrap();
/// conn.hung_up.store(true, Ordering::Release);
/// drop(conn);
/// // The watch saw it die while idle: the next get closes it and dials.
/// drop(pool.get_blocking().unwrap());
/// assert_eq!(pool.stats().closed.hangup, 1);
/// ```
pub trait IdleWatcher<C>: Send + Sync {
    /// Turns the watch on and says what it covers; `deaths` is how it
    /// reports a death. Called once, as the pool is built. Answering
    /// [`IdleWatch::Off`] turns it off, and the other methods are then
    /// never called.
    fn start(&self, deaths: IdleDeaths) -> IdleWatch;

    /// `conn` has just gone into the idle store: start watching it.
    fn idle(&self, conn: &mut C);

    /// `conn` has just left the idle store to be used (a checkout, a
    /// ping): stop watching it, without waiting; `true` if the watch saw it
    /// die while it was idle (it is then closed with
    /// [`CloseReason::Hangup`] and the get moves on).
    fn unwatch(&self, conn: &mut C) -> bool;

    /// Whether the watch saw this idle connection die (a load; no I/O).
    /// Maintenance asks it of each idle connection after a
    /// `deaths.notify()`.
    fn died_idle(&self, conn: &C) -> bool;
}

/// How many TLS handshakes a manager's dials completed, by kind (see
/// [`Stats::tls_handshakes`](crate::Stats::tls_handshakes)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsHandshakes {
    /// Full handshakes: a certificate chain verified, a key exchange.
    pub full: u64,
    /// Resumed handshakes: a session from an earlier connection reused.
    pub resumed: u64,
}

/// What a manager's idle watch covers ([`IdleWatcher::start`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdleWatch {
    /// No watch: maintenance checks idle connections itself (the
    /// manager's batched liveness check and ping, after `check_after`).
    Off,
    /// Idle connections are watched and the manager has no protocol ping:
    /// maintenance leaves them alone and only reaps the dead.
    Watched,
    /// Idle connections are watched, and maintenance still pings those due
    /// (after `check_after`), for servers that hang without closing.
    WatchedAndPinged,
}

/// How a manager's idle watch tells the pool that a watched connection
/// died ([`IdleWatcher::start`]). Cheap to clone; callable from any
/// thread; does nothing once the pool is gone.
#[derive(Clone)]
pub struct IdleDeaths {
    notify: std::sync::Arc<dyn Fn() + Send + Sync>,
}

impl IdleDeaths {
    pub(crate) fn new(notify: impl Fn() + Send + Sync + 'static) -> Self {
        IdleDeaths {
            notify: std::sync::Arc::new(notify),
        }
    }

    /// At least one watched idle connection died: the pool's maintenance
    /// asks [`IdleWatcher::died_idle`] of its idle connections, closes the
    /// dead with [`CloseReason::Hangup`] and frees their slots.
    pub fn notify(&self) {
        (self.notify)();
    }
}

impl std::fmt::Debug for IdleDeaths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdleDeaths").finish_non_exhaustive()
    }
}
