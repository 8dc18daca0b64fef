//! The TCP backend: a [`TcpManager`] that dials a target (on io_uring, or
//! with plain system calls where io_uring is blocked), sets socket options,
//! and checks liveness without reading a byte the protocol did not ask for.
//!
//! Owns: the manager (`manager`), the connection it hands out ([`TcpConn`],
//! in `conn`), its options (`options`), the dial target and its per-dial
//! name resolution (`target`), the liveness checks (`liveness`), the
//! protocol ping (`ping`); with the `tokio` feature, a manager whose
//! connections are tokio streams ([`TokioTcpManager`], [`TokioConn`]); and,
//! with the `tokio-uring` feature, I/O on pooled connections through
//! tokio-uring ([`UringConn`], in `uring_conn`); with the `tls` feature,
//! TLS through rustls on the tokio dials ([`TlsConnector`], shared by every
//! dial, in `tls`; [`TokioTlsManager`] and its [`TlsConn`]). May touch: the io_uring
//! driver, and the pool only through the [`Manager`](crate::Manager) trait
//! and the public API.
//!
//! With [`Backend::IoUring`] (the default) dials and closes run on the
//! process's io_uring thread; [`Backend::Blocking`] uses plain system calls.
//! Both hand out the same [`TcpConn`]: a `std::net::TcpStream` that an
//! application drives from any runtime (its raw descriptor, or ownership
//! through [`Pooled::detach`](crate::Pooled::detach)).
//!
//! # TLS
//!
//! With the `tls` feature, [`TokioTcpManager::tls`] turns the tokio manager's
//! dials into TLS dials through a [`TlsConnector`] (rustls) built once and
//! shared by every dial, so sessions are resumed across the pool's dials;
//! `clients::http::HttpManager::tls` does the same for HTTPS. The blocking
//! and io_uring [`TcpManager`] has no TLS; [`TokioTlsManager`] says why.
#![cfg_attr(
    feature = "tls",
    doc = r#"
```no_run
use ringpool::Pool;
use ringpool::tcp::{TlsConnector, TokioTcpManager};

# async fn run() -> Result<(), Box<dyn std::error::Error>> {
let tls = TlsConnector::builder().add_root_pem_file("ca.pem")?.build()?;
let pool = Pool::builder(TokioTcpManager::new("127.0.0.1:8443").tls(tls)).build()?;
let conn = pool.get().await?;
assert!(conn.session().protocol_version().is_some());
println!("{:?}", pool.manager().handshakes());
# Ok(())
# }
```
"#
)]

mod conn;
mod dialer;
pub(crate) mod liveness;
mod manager;
mod options;
mod ping;
mod target;
#[cfg(feature = "tls")]
pub(crate) mod tls;
#[cfg(feature = "tls")]
mod tls_conn;
#[cfg(feature = "tls")]
mod tls_counters;
#[cfg(feature = "tls")]
mod tls_error;
#[cfg(feature = "tls")]
mod tls_manager;
#[cfg(any(feature = "tls", feature = "mysql"))]
pub(crate) mod tls_problem;
#[cfg(all(feature = "tls", any(feature = "redis", feature = "postgres")))]
pub(crate) mod tls_unverified;
#[cfg(feature = "tokio")]
mod tokio_conn;
#[cfg(feature = "tokio")]
mod tokio_manager;
#[cfg(feature = "tokio-uring")]
mod uring_conn;

#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use crate::manager::TlsHandshakes;
pub use conn::TcpConn;
pub use dialer::Dialer;
pub use liveness::{peek_is_broken, peer_closed};
pub use manager::TcpManager;
pub use options::{Backend, IdleCheck, TcpOptions};
/// The rustls this crate's TLS is built on, for a `ClientConfig` of your
/// own ([`TlsConnector::from_config`]).
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use rustls;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use tls::{TlsConfigError, TlsConnector, TlsConnectorBuilder, TlsError};
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use tls_conn::TlsConn;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use tls_manager::TokioTlsManager;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use tokio_conn::TokioConn;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use tokio_manager::TokioTcpManager;
#[cfg(feature = "tokio-uring")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio-uring")))]
pub use uring_conn::UringConn;
