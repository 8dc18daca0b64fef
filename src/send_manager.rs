//! Managers whose futures are `Send`, for code generic over the manager
//! that spawns gets on a multi-threaded runtime.
//!
//! [`Manager`] lets a manager's futures be `!Send` (a thread-per-core
//! runtime needs that), so generic code cannot know that a `get` future may
//! move between threads. A manager that implements [`SendManager`] instead
//! states it: its `connect` and `ping` futures are `Send`, it is a
//! [`Manager`] through the blanket implementation below, and code bounded
//! by `M: SendManager` can `tokio::spawn` a `pool.get()`.

use crate::manager::{CloseReason, ErrorClass, IdleWatcher, Manager, TlsHandshakes, manager_items};

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
/// defaults: both traits are made from one list of items.
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
    manager_items!(trait + Send);
}

impl<T: SendManager> Manager for T {
    manager_items!(forward SendManager);
}
