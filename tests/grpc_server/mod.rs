//! A real tonic server for the gRPC tests, on loopback, on a runtime and
//! thread of its own: one unary method, `test.Echo/Say`, that echoes its
//! message after the delay the message asks for (`sleep:<ms>:<text>`);
//! a settable `max_concurrent_streams` and `max_connection_age`; a count
//! of requests per client connection and of connections open; graceful
//! shutdown and a kill.

#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::server::NamedService;
use tonic::transport::server::{Connected, TcpConnectInfo};
use tonic::{Request, Response, Status};

#[path = "../../examples/support/grpc_text.rs"]
mod grpc_text;

use grpc_text::TextClient;
pub use grpc_text::TextCodec;

/// A client as tonic's code generator writes one, for `test.Echo`.
#[derive(Clone)]
pub struct EchoClient<T> {
    inner: TextClient<T>,
}

impl<T> EchoClient<T>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    pub fn new(inner: T) -> Self {
        EchoClient {
            inner: TextClient::new(inner),
        }
    }

    pub async fn say(&mut self, request: Request<String>) -> Result<Response<String>, Status> {
        self.inner.unary("/test.Echo/Say", request).await
    }

    /// `test.Echo/Count`, a server-streaming call: `<n>:<ms>` answers `n`
    /// messages, `ms` apart.
    pub async fn count(
        &mut self,
        request: Request<String>,
    ) -> Result<Response<tonic::codec::Streaming<String>>, Status> {
        self.inner
            .server_streaming("/test.Echo/Count", request)
            .await
    }
}

/// What the server saw.
#[derive(Default)]
pub struct Seen {
    /// Requests by client connection (its address).
    pub per_connection: Mutex<HashMap<SocketAddr, usize>>,
    /// Connections open now.
    pub open: AtomicUsize,
    /// Connections accepted, ever.
    pub accepted: AtomicUsize,
    /// Requests being served now, and the most at once.
    pub in_flight: AtomicUsize,
    pub most_in_flight: AtomicUsize,
    /// The protocol each TLS handshake agreed on (ALPN), in order.
    pub alpn: Mutex<Vec<Option<Vec<u8>>>>,
    /// TLS handshakes that failed.
    pub refused_handshakes: AtomicUsize,
    /// The `grpc-timeout` header of the last request that had one.
    pub last_grpc_timeout: Mutex<Option<String>>,
    /// A second descriptor of each accepted socket, to cut them all at
    /// once on a kill.
    sockets: Mutex<Vec<std::os::fd::OwnedFd>>,
}

impl Seen {
    pub fn shares(&self) -> Vec<usize> {
        self.per_connection
            .lock()
            .unwrap()
            .values()
            .copied()
            .collect()
    }
}

#[derive(Clone)]
struct Echo {
    seen: Arc<Seen>,
}

impl NamedService for Echo {
    const NAME: &'static str = "test.Echo";
}

impl tower_service::Service<http::Request<tonic::body::Body>> for Echo {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let seen = Arc::clone(&self.seen);
        let seen_timeout = Arc::clone(&self.seen);
        Box::pin(async move {
            let handler = tower::service_fn(move |request: Request<String>| {
                let seen = Arc::clone(&seen);
                async move { say(&seen, request).await }
            });
            if let Some(timeout) = request.headers().get("grpc-timeout") {
                *seen_timeout.last_grpc_timeout.lock().unwrap() =
                    timeout.to_str().ok().map(str::to_string);
            }
            if request.uri().path() == "/test.Echo/Count" {
                let counter = tower::service_fn(count);
                return Ok(tonic::server::Grpc::new(TextCodec)
                    .server_streaming(counter, request)
                    .await);
            }
            Ok(tonic::server::Grpc::new(TextCodec)
                .unary(handler, request)
                .await)
        })
    }
}

type Counting = Pin<Box<dyn tokio_stream::Stream<Item = Result<String, Status>> + Send>>;

/// `test.Echo/Count`: for `<n>:<ms>`, the messages `0` to `n - 1`, one
/// every `ms` milliseconds.
async fn count(request: Request<String>) -> Result<Response<Counting>, Status> {
    let message = request.into_inner();
    let (n, ms) = message.split_once(':').unwrap_or((&message, "0"));
    let (n, ms): (u64, u64) = (
        n.parse().map_err(|_| Status::invalid_argument("n:ms"))?,
        ms.parse().map_err(|_| Status::invalid_argument("n:ms"))?,
    );
    let stream = futures_util::stream::unfold(0, move |i| async move {
        if i == n {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Some((Ok(i.to_string()), i + 1))
    });
    Ok(Response::new(Box::pin(stream)))
}

async fn say(seen: &Seen, request: Request<String>) -> Result<Response<String>, Status> {
    if let Some(peer) = request.remote_addr() {
        *seen.per_connection.lock().unwrap().entry(peer).or_default() += 1;
    }
    let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    seen.most_in_flight.fetch_max(now, Ordering::SeqCst);
    // Counted out when the handler ends or is dropped (its stream reset).
    struct Serving<'a>(&'a AtomicUsize);
    impl Drop for Serving<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let _serving = Serving(&seen.in_flight);
    let message = request.into_inner();
    let reply = match message.strip_prefix("sleep:") {
        Some(rest) => {
            let (ms, text) = rest.split_once(':').unwrap_or((rest, ""));
            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
            text.to_string()
        }
        None => message,
    };
    Ok(Response::new(reply))
}

/// An accepted connection, plain or TLS.
enum Socket {
    Plain(tokio::net::TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>),
}

/// An accepted connection, counted in `Seen::open` while it lives.
struct Counted {
    socket: Socket,
    seen: Arc<Seen>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.seen.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Connected for Counted {
    type ConnectInfo = TcpConnectInfo;
    fn connect_info(&self) -> TcpConnectInfo {
        match &self.socket {
            Socket::Plain(stream) => stream.connect_info(),
            #[cfg(feature = "tls")]
            Socket::Tls(stream) => stream.get_ref().0.connect_info(),
        }
    }
}

/// Runs `$op` on the connection's stream, whichever it is.
macro_rules! on_socket {
    ($self:ident, $stream:ident => $op:expr) => {
        match &mut $self.get_mut().socket {
            Socket::Plain($stream) => {
                let $stream = Pin::new($stream);
                $op
            }
            #[cfg(feature = "tls")]
            Socket::Tls($stream) => {
                let $stream = Pin::new(&mut **$stream);
                $op
            }
        }
    };
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        on_socket!(self, stream => stream.poll_read(cx, buf))
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        on_socket!(self, stream => stream.poll_write(cx, buf))
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        on_socket!(self, stream => stream.poll_flush(cx))
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        on_socket!(self, stream => stream.poll_shutdown(cx))
    }
}

/// How to run the server.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub max_concurrent_streams: Option<u32>,
    pub max_connection_age: Option<Duration>,
    /// Bind this address (a restart on the same port); any free port if
    /// `None`.
    pub address: Option<SocketAddr>,
    /// Serve over TLS with this configuration (its ALPN list included).
    #[cfg(feature = "tls")]
    pub tls: Option<Arc<ringpool::tcp::rustls::ServerConfig>>,
}

/// A running server.
pub struct Server {
    pub address: SocketAddr,
    pub seen: Arc<Seen>,
    stop: Option<tokio::sync::oneshot::Sender<Stop>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

enum Stop {
    /// `GOAWAY`, let the streams in flight finish, then stop.
    Graceful,
    /// Drop everything at once, as a crash would.
    Kill,
}

impl Server {
    pub fn start(options: Options) -> Server {
        let seen = Arc::new(Seen::default());
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let (bound, address) = std::sync::mpsc::channel();
        let thread = std::thread::spawn({
            let seen = Arc::clone(&seen);
            move || serve(options, seen, stopped, bound)
        });
        let address = address
            .recv_timeout(Duration::from_secs(10))
            .expect("the gRPC test server bound its port");
        Server {
            address,
            seen,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `GOAWAY` to every client; returns once every stream in flight
    /// finished and the server stopped.
    pub fn shut_down(mut self) {
        self.stop(Stop::Graceful);
    }

    /// Stops at once: every connection dropped mid-stream.
    pub fn kill(mut self) {
        self.stop(Stop::Kill);
    }

    fn stop(&mut self, how: Stop) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(how);
        }
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the gRPC test server's thread");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop(Stop::Kill);
    }
}

fn serve(
    options: Options,
    seen: Arc<Seen>,
    stopped: tokio::sync::oneshot::Receiver<Stop>,
    bound: std::sync::mpsc::Sender<SocketAddr>,
) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime for the gRPC test server");
    runtime.block_on(async move {
        let address = options
            .address
            .unwrap_or_else(|| "127.0.0.1:0".parse().unwrap());
        let listener = bind(address).await;
        bound.send(listener.local_addr().unwrap()).unwrap();
        #[cfg(feature = "tls")]
        let tls = options.tls.clone().map(tokio_rustls::TlsAcceptor::from);
        let incoming = {
            let seen = Arc::clone(&seen);
            // Handshakes run one after another: enough for tests.
            futures_util::StreamExt::filter_map(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                move |stream| {
                    let seen = Arc::clone(&seen);
                    #[cfg(feature = "tls")]
                    let tls = tls.clone();
                    async move {
                        use std::os::fd::AsFd;
                        let stream = stream.ok()?;
                        // As tonic's own listener does (`serve_with_incoming`
                        // leaves the sockets as they come).
                        let _ = stream.set_nodelay(true);
                        if let Ok(dup) = stream.as_fd().try_clone_to_owned() {
                            seen.sockets.lock().unwrap().push(dup);
                        }
                        #[cfg(feature = "tls")]
                        let socket = match tls {
                            None => Socket::Plain(stream),
                            Some(acceptor) => match acceptor.accept(stream).await {
                                Ok(tls) => {
                                    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
                                    seen.alpn.lock().unwrap().push(alpn);
                                    Socket::Tls(Box::new(tls))
                                }
                                Err(_) => {
                                    seen.refused_handshakes.fetch_add(1, Ordering::SeqCst);
                                    return None;
                                }
                            },
                        };
                        #[cfg(not(feature = "tls"))]
                        let socket = Socket::Plain(stream);
                        seen.open.fetch_add(1, Ordering::SeqCst);
                        seen.accepted.fetch_add(1, Ordering::SeqCst);
                        Some(Ok::<_, std::io::Error>(Counted {
                            socket,
                            seen: Arc::clone(&seen),
                        }))
                    }
                },
            )
        };
        let mut builder = tonic::transport::Server::builder()
            .max_concurrent_streams(options.max_concurrent_streams);
        if let Some(age) = options.max_connection_age {
            builder = builder.max_connection_age(age);
        }
        let router = builder.add_service(Echo {
            seen: Arc::clone(&seen),
        });
        let (graceful, on_graceful) = tokio::sync::oneshot::channel::<()>();
        let server = router.serve_with_incoming_shutdown(incoming, async move {
            let _ = on_graceful.await;
        });
        tokio::pin!(server);
        tokio::select! {
            _ = &mut server => {}
            how = stopped => match how {
                Ok(Stop::Graceful) => {
                    let _ = graceful.send(());
                    let _ = server.await;
                }
                // Killed (or the handle dropped): every socket is cut
                // at once, as a crash would, before any frame (a stream
                // reset) could be written; the runtime is dropped with
                // every connection's task below.
                _ => {
                    for socket in seen.sockets.lock().unwrap().drain(..) {
                        let _ = socket2::SockRef::from(&socket).shutdown(std::net::Shutdown::Both);
                    }
                }
            },
        }
    });
    runtime.shutdown_timeout(Duration::from_millis(100));
}

/// Binds `address`, retrying a restart's port for a moment (the killed
/// server's listener may not be gone yet).
async fn bind(address: SocketAddr) -> tokio::net::TcpListener {
    for _ in 0..100 {
        match tokio::net::TcpListener::bind(address).await {
            Ok(listener) => return listener,
            Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("bind {address}: {error}"),
        }
    }
    panic!("bind {address}: still in use after 2 s")
}
