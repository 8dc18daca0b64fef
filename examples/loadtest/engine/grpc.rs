//! The `--protocol grpc` sessions: the same authorisations as unary gRPC
//! calls (`/payment.Payments/Authorize`), through
//! - `no-pool`: a new tonic channel per call (a connection and an HTTP/2
//!   handshake each), closed after it;
//! - `tonic-channel`: one tonic `Channel` shared by every task (one
//!   connection), what most tonic users have;
//! - `ringpool`: `ringpool::clients::grpc::Channel` over a `SharedPool`
//!   (each connection carries up to the server's stream limit; the pool
//!   dials more, up to `--pool-size`, when every one is full);
//! - `dedicated`: a tonic channel per task.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tonic::Request;
use tonic::transport::{Channel as TonicChannel, Endpoint};

use super::mock_api::grpc::AUTHORIZE;
pub use super::mock_api::grpc_text::TextClient;
use super::payment::{RequestError, check_line};
use super::sessions::Session;

/// Connects one tonic channel to `uri` (`http://host:port`), counting it.
pub async fn connect(uri: &str, dials: &AtomicU64) -> Result<TonicChannel, RequestError> {
    let channel = Endpoint::from_shared(uri.to_string())
        .map_err(|error| RequestError::Pool(format!("bad target {uri}: {error}")))?
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|error| RequestError::Io(std::io::Error::other(error)))?;
    dials.fetch_add(1, Ordering::Relaxed);
    Ok(channel)
}

/// One authorisation as a unary call, its reply checked against its id.
async fn authorize<T>(client: &mut TextClient<T>, id: u64, amount: u64) -> Result<(), RequestError>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let reply = client
        .unary(AUTHORIZE, Request::new(format!("AUTH {id} {amount}")))
        .await
        .map_err(|status| {
            RequestError::Status(format!("{:?}: {}", status.code(), status.message()))
        })?;
    check_line(reply.get_ref().as_bytes(), id)
}

/// `tonic-channel` and `ringpool`: every task's calls on a clone of one
/// channel.
pub struct Shared<T> {
    pub client: TextClient<T>,
}

impl<T> Session for Shared<T>
where
    T: tonic::client::GrpcService<tonic::body::Body> + Send + 'static,
    T::Future: Send,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    async fn request(
        &mut self,
        id: u64,
        amount: u64,
        _buf: &mut Vec<u8>,
    ) -> Result<(), RequestError> {
        authorize(&mut self.client, id, amount).await
    }
}

/// `no-pool`: a channel per call.
pub struct NoPool {
    pub uri: Arc<str>,
    pub dials: Arc<AtomicU64>,
}

impl Session for NoPool {
    async fn request(
        &mut self,
        id: u64,
        amount: u64,
        _buf: &mut Vec<u8>,
    ) -> Result<(), RequestError> {
        let channel = connect(&self.uri, &self.dials).await?;
        authorize(&mut TextClient::new(channel), id, amount).await
    }
}

/// `dedicated`: the task's own channel, connected at its first call and
/// again after a failure.
pub struct Dedicated {
    pub uri: Arc<str>,
    pub dials: Arc<AtomicU64>,
    pub client: Option<TextClient<TonicChannel>>,
}

impl Session for Dedicated {
    async fn request(
        &mut self,
        id: u64,
        amount: u64,
        _buf: &mut Vec<u8>,
    ) -> Result<(), RequestError> {
        let client = match &mut self.client {
            Some(client) => client,
            None => self
                .client
                .insert(TextClient::new(connect(&self.uri, &self.dials).await?)),
        };
        authorize(client, id, amount).await
    }

    fn abandon(&mut self) {
        self.client = None;
    }
}
