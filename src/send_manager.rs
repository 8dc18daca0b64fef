//! Managers whose futures are `Send`, for code generic over the manager
//! that spawns gets on a multi-threaded runtime.
//!
//! [`Manager`] lets a manager's futures be `!Send` (a thread-per-core
//! runtime needs that), so generic code cannot know that a `get` future may
//! move between threads. A manager that implements [`SendManager`] instead
//! states it: its `connect` and `ping` futures are `Send`, it is a
//! [`Manager`] through the blanket implementation below, and code bounded
//! by `M: SendManager` can `tokio::spawn` a `pool.get()`.

use std::future::Future;

use crate::manager::{CloseReason, ErrorClass, IdleWatcher, Manager};

/// A [`Manager`] whose futures are `Send`, for code generic over the
/// manager that spawns gets on a multi-threaded runtime.
///
/// [`Manager`] lets a manager's futures be `!Send` (a thread-per-core
/// runtime needs that), so generic code cannot know that a `get` future may
/// move between threads. A manager that implements `SendManager` instead
/// states it: its `connect` and `ping` futures are `Send`, it is a
/// [`Manager`] through a blanket implementation, and code bounded by
/// `M: SendManager` can `tokio::spawn` a `pool.get()`. Each method means
/// what the [`Manager`] method of the same name means, with the same
/// defaults.
///
/// # Examples
///
/// ```
/// use ringpool::{Pool, SendManager};
///
/// struct Numbers;
/// impl SendManager for Numbers {
///     type Connection = u64;
///     type Error = std::io::Error;
///     async fn connect(&self) -> Result<u64, std::io::Error> {
///         Ok(7)
///     }
/// }
///
/// // Generic code that spawns gets: it compiles because of the bound.
/// fn spawn_get<M: SendManager>(pool: Pool<M>) -> std::thread::JoinHandle<bool> {
///     std::thread::spawn(move || futures_executor::block_on(async move {
///         let get = pool.get();
///         fn assert_send<T: Send>(t: T) -> T { t }
///         assert_send(get).await.is_ok()
///     }))
/// }
/// let pool = Pool::builder(Numbers).build().unwrap();
/// assert!(spawn_get(pool).join().unwrap());
/// ```
pub trait SendManager: Send + Sync + 'static {
    /// See [`Manager::Connection`].
    type Connection: Send + 'static;
    /// See [`Manager::Error`].
    type Error: std::error::Error + Send + Sync + 'static;

    /// See [`Manager::connect`].
    fn connect(&self) -> impl Future<Output = Result<Self::Connection, Self::Error>> + Send;

    /// See [`Manager::is_broken`].
    fn is_broken(&self, _conn: &mut Self::Connection) -> bool {
        false
    }

    /// See [`Manager::is_broken_batch`].
    fn is_broken_batch(&self, conns: &mut [&mut Self::Connection]) -> Vec<bool> {
        conns.iter_mut().map(|conn| self.is_broken(conn)).collect()
    }

    /// See [`Manager::can_recycle`].
    fn can_recycle(&self, _conn: &mut Self::Connection) -> bool {
        true
    }

    /// See [`Manager::check_return`].
    fn check_return(&self, conn: &mut Self::Connection) -> Result<(), CloseReason> {
        match self.can_recycle(conn) {
            true => Ok(()),
            false => Err(CloseReason::Broken),
        }
    }

    /// See [`Manager::ping`].
    fn ping(
        &self,
        _conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        std::future::ready(Ok(()))
    }

    /// See [`Manager::needs_recycle`].
    fn needs_recycle(&self, _conn: &mut Self::Connection) -> bool {
        false
    }

    /// See [`Manager::recycle`].
    fn recycle(
        &self,
        _conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        std::future::ready(Ok(()))
    }

    /// See [`Manager::classify`].
    fn classify(&self, _error: &Self::Error) -> ErrorClass {
        ErrorClass::Retryable
    }

    /// See [`Manager::endpoint`].
    fn endpoint(&self) -> Option<String> {
        None
    }

    /// See [`Manager::tls_handshakes`].
    fn tls_handshakes(&self) -> Option<crate::TlsHandshakes> {
        None
    }

    /// See [`Manager::idle_watcher`].
    fn idle_watcher(&self) -> Option<&dyn IdleWatcher<Self::Connection>> {
        None
    }

    /// See [`Manager::close`].
    fn close(&self, conn: Self::Connection, _reason: CloseReason) {
        drop(conn);
    }
}

impl<T: SendManager> Manager for T {
    type Connection = T::Connection;
    type Error = T::Error;

    fn connect(&self) -> impl Future<Output = Result<Self::Connection, Self::Error>> {
        SendManager::connect(self)
    }

    fn is_broken(&self, conn: &mut Self::Connection) -> bool {
        SendManager::is_broken(self, conn)
    }

    fn is_broken_batch(&self, conns: &mut [&mut Self::Connection]) -> Vec<bool> {
        SendManager::is_broken_batch(self, conns)
    }

    fn can_recycle(&self, conn: &mut Self::Connection) -> bool {
        SendManager::can_recycle(self, conn)
    }

    fn check_return(&self, conn: &mut Self::Connection) -> Result<(), CloseReason> {
        SendManager::check_return(self, conn)
    }

    fn ping(&self, conn: &mut Self::Connection) -> impl Future<Output = Result<(), Self::Error>> {
        SendManager::ping(self, conn)
    }

    #[inline]
    fn needs_recycle(&self, conn: &mut Self::Connection) -> bool {
        SendManager::needs_recycle(self, conn)
    }

    fn recycle(
        &self,
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), Self::Error>> {
        SendManager::recycle(self, conn)
    }

    fn classify(&self, error: &Self::Error) -> ErrorClass {
        SendManager::classify(self, error)
    }

    fn endpoint(&self) -> Option<String> {
        SendManager::endpoint(self)
    }

    fn tls_handshakes(&self) -> Option<crate::TlsHandshakes> {
        SendManager::tls_handshakes(self)
    }

    #[inline]
    fn idle_watcher(&self) -> Option<&dyn IdleWatcher<Self::Connection>> {
        SendManager::idle_watcher(self)
    }

    fn close(&self, conn: Self::Connection, reason: CloseReason) {
        SendManager::close(self, conn, reason)
    }
}
