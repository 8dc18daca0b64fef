//! The checked-out connection: returned on drop, so nobody can forget.

use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::time::Duration;

use crate::core::entry::Entry;
use crate::lifecycle::leak::{LeakWatch, Track, unwatch, watch_for_leak};
use crate::manager::{CloseReason, Manager};
use crate::metrics::stats::Counter;
use crate::pool::Pool;
use crate::pool::handoff::put_from;
use crate::pool::release::{close_and_release, release_slot};

/// A connection checked out of a [`Pool`]. Dereferences to the connection;
/// dropping it gives the connection back.
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
/// let pool = Pool::builder(Numbers).max_size(1).build().unwrap();
/// {
///     let mut conn = pool.get_blocking().unwrap();
///     *conn += 1; // use it like the connection itself
/// } // back in the pool here
/// assert_eq!(*pool.get_blocking().unwrap(), 8);
///
/// pool.get_blocking().unwrap().discard(); // closed, slot freed
/// assert_eq!(pool.status().size, 0);
/// ```
///
/// [`Pool::get`] returns a guard that borrows its pool (the cheapest, for
/// hot loops); [`Pool::get_owned`] returns a `Pooled<'static, M>` that holds
/// a handle of its own, so it can be moved into a spawned task, stored in a
/// struct or returned from a function.
pub struct Pooled<'a, M: Manager> {
    pool: Handle<'a, M>,
    entry: Option<Entry<M::Connection>>,
    leak: Option<LeakWatch>,
}

/// The pool a guard returns its connection to: borrowed, or a handle of
/// its own.
enum Handle<'a, M: Manager> {
    Borrowed(&'a Pool<M>),
    Owned(Pool<M>),
}

impl<M: Manager> Deref for Handle<'_, M> {
    type Target = Pool<M>;

    #[inline]
    fn deref(&self) -> &Pool<M> {
        match self {
            Handle::Borrowed(pool) => pool,
            Handle::Owned(pool) => pool,
        }
    }
}

impl<'a, M: Manager> Pooled<'a, M> {
    #[inline]
    pub(crate) fn new(
        pool: &'a Pool<M>,
        entry: Entry<M::Connection>,
        caller: &'static Location<'static>,
    ) -> Self {
        Pooled::in_handle(Handle::Borrowed(pool), entry, caller, Track::Unknown)
    }

    /// A guard for a fast-path hit: leak tracking only when the pool's
    /// state word said it is on (`track`), so a pool without it reads
    /// nothing more.
    #[inline]
    pub(crate) fn hit(
        pool: &'a Pool<M>,
        entry: Entry<M::Connection>,
        caller: &'static Location<'static>,
        track: Track,
    ) -> Self {
        Pooled::in_handle(Handle::Borrowed(pool), entry, caller, track)
    }

    /// A guard over `entry` returning it to `pool`, leak-tracked at
    /// `caller` as `track` says.
    #[inline]
    fn in_handle(
        pool: Handle<'a, M>,
        entry: Entry<M::Connection>,
        caller: &'static Location<'static>,
        track: Track,
    ) -> Self {
        Pooled {
            leak: watch_for_leak(&pool.inner, caller, track),
            pool,
            entry: Some(entry),
        }
    }

    /// Turns this guard into one that holds a pool handle of its own, so
    /// it can be moved into a spawned task, stored in a struct or returned
    /// from a function. Costs one handle clone (an atomic increment, and a
    /// decrement when the guard is dropped) and nothing else.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ringpool::{Manager, Pool, Pooled};
    /// # struct Numbers;
    /// # impl Manager for Numbers {
    /// #     type Connection = u64;
    /// #     type Error = std::io::Error;
    /// #     async fn connect(&self) -> Result<u64, std::io::Error> { Ok(7) }
    /// # }
    /// let pool = Pool::builder(Numbers).build().unwrap();
    /// let conn: Pooled<'static, Numbers> = pool.get_blocking().unwrap().into_owned();
    /// let worker = std::thread::spawn(move || *conn + 1);
    /// assert_eq!(worker.join().unwrap(), 8);
    /// ```
    #[must_use = "dropping the owned guard returns the connection at once"]
    pub fn into_owned(mut self) -> Pooled<'static, M> {
        // Taken out, this guard's drop then does nothing.
        Pooled {
            pool: Handle::Owned((*self.pool).clone()),
            entry: self.entry.take(),
            leak: self.leak.take(),
        }
    }

    /// [`Pooled::hit`] for a guard that owns `pool`: built in place from
    /// the checkout, so the connection is not moved out of a borrowing
    /// guard into an owning one (each move of the guard through memory
    /// costs a checkout nanoseconds).
    #[inline]
    pub(crate) fn hit_owning(
        pool: Pool<M>,
        entry: Entry<M::Connection>,
        caller: &'static Location<'static>,
        track: Track,
    ) -> Pooled<'static, M> {
        Pooled::in_handle(Handle::Owned(pool), entry, caller, track)
    }

    fn entry(&self) -> &Entry<M::Connection> {
        self.entry
            .as_ref()
            .expect("a guard holds its connection until consumed")
    }

    /// Takes the connection out; the guard's drop then does nothing.
    fn take(&mut self) -> Entry<M::Connection> {
        if let Some(watch) = self.leak.take() {
            unwatch(&self.pool.inner, watch);
        }
        self.entry
            .take()
            .expect("a guard holds its connection until consumed")
    }

    /// Closes the connection instead of returning it (for example after a
    /// protocol error left it in an unknown state). Its slot is freed.
    pub fn discard(self) {
        self.close(CloseReason::Discarded);
    }

    /// Closes the connection with `reason` instead of returning it.
    pub(crate) fn close(mut self, reason: CloseReason) {
        let entry = self.take();
        let inner = &self.pool.inner;
        close_and_release(inner, entry, reason);
    }

    /// Takes the connection out of the pool for good; its slot is freed and
    /// the pool no longer counts or closes it.
    pub fn detach(mut self) -> M::Connection {
        let entry = self.take();
        let inner = &self.pool.inner;
        inner.stats.incr(Counter::Detached);
        release_slot(inner);
        entry.conn
    }

    /// How long ago the connection was dialed.
    pub fn age(&self) -> Duration {
        let now = self.pool.inner.clock.recent();
        Duration::from_nanos(now.saturating_sub(self.entry().created))
    }

    /// The pool this connection belongs to.
    pub fn pool(&self) -> &Pool<M> {
        &self.pool
    }
}

impl<M: Manager> Deref for Pooled<'_, M> {
    type Target = M::Connection;

    #[inline]
    fn deref(&self) -> &M::Connection {
        &self.entry().conn
    }
}

impl<M: Manager> DerefMut for Pooled<'_, M> {
    #[inline]
    fn deref_mut(&mut self) -> &mut M::Connection {
        &mut self
            .entry
            .as_mut()
            .expect("a guard holds its connection until consumed")
            .conn
    }
}

impl<M: Manager> Drop for Pooled<'_, M> {
    #[inline]
    fn drop(&mut self) {
        if let Some(watch) = self.leak.take() {
            unwatch(&self.pool.inner, watch);
        }
        put_from(&self.pool.inner, &mut self.entry);
    }
}

impl<M: Manager> std::fmt::Debug for Pooled<'_, M>
where
    M::Connection: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pooled")
            .field("conn", &self.entry().conn)
            .finish_non_exhaustive()
    }
}
