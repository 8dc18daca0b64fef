//! The mock payment API over gRPC: the same authorisation as the line
//! protocol, as the unary method `/payment.Payments/Authorize` with text
//! messages (`AUTH <id> <amount>` -> `OK <id>`), served by tonic over
//! HTTP/2 with a limit on concurrent streams per connection, as gRPC
//! servers set one.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic::{Request, Response, Status};

use super::grpc_text::TextCodec;
use super::{Counters, MockApiConfig, Timers, hold, parse_auth};

/// The method's path.
pub const AUTHORIZE: &str = "/payment.Payments/Authorize";

/// Serves gRPC on `listener` until the runtime stops.
pub(super) async fn serve(
    listener: TcpListener,
    config: MockApiConfig,
    counters: Arc<Counters>,
    timers: Arc<Timers>,
    max_streams: u32,
) {
    let accepted = Arc::clone(&counters);
    let incoming = futures_util::stream::unfold(listener, move |listener| {
        let accepted = Arc::clone(&accepted);
        async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        accepted.accepted.fetch_add(1, Ordering::Relaxed);
                        let _ = stream.set_nodelay(true);
                        return Some((Ok::<_, io::Error>(stream), listener));
                    }
                    // As the line server: keep serving the others.
                    Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        }
    });
    let payments = Payments {
        config,
        counters,
        timers,
    };
    // The server ends only with its runtime; an error here (none is
    // expected from a listener it owns) ends the mock API's service.
    let _ = tonic::transport::Server::builder()
        .max_concurrent_streams(max_streams)
        .add_service(payments)
        .serve_with_incoming(incoming)
        .await;
}

#[derive(Clone)]
struct Payments {
    config: MockApiConfig,
    counters: Arc<Counters>,
    timers: Arc<Timers>,
}

impl NamedService for Payments {
    const NAME: &'static str = "payment.Payments";
}

impl tower_service::Service<http::Request<tonic::body::Body>> for Payments {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let payments = self.clone();
        Box::pin(async move {
            if request.uri().path() != AUTHORIZE {
                return Ok(Status::unimplemented(format!(
                    "no method {}; this server has {AUTHORIZE}",
                    request.uri().path()
                ))
                .into_http());
            }
            let handler = tower::service_fn(move |request: Request<String>| {
                let payments = payments.clone();
                async move { payments.authorize(request.into_inner()).await }
            });
            Ok(tonic::server::Grpc::new(TextCodec)
                .unary(handler, request)
                .await)
        })
    }
}

impl Payments {
    async fn authorize(&self, message: String) -> Result<Response<String>, Status> {
        let Some(id) = parse_auth(message.as_bytes()) else {
            return Err(Status::invalid_argument(format!(
                "expected `AUTH <id> <amount>`, got {message:?}"
            )));
        };
        let id = String::from_utf8_lossy(id).into_owned();
        let held = hold(self.config, &self.timers)
            .await
            .map_err(|error| Status::internal(format!("the service timer failed: {error}")))?;
        self.counters.served.fetch_add(1, Ordering::Relaxed);
        self.counters
            .delayed_nanos
            .fetch_add(held.as_nanos() as u64, Ordering::Relaxed);
        Ok(Response::new(format!("OK {id}")))
    }
}
