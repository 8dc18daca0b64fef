//! An HTTP/1.1 gateway in front of the mock payment API: every request it
//! receives becomes one authorisation (`AUTH <id> <amount>` -> `OK <id>`)
//! sent over a pooled connection (`ringpool::tcp::TokioTcpManager`), or over
//! a fresh connection per request with `--no-pool`. It answers
//! `200 OK` with the API's reply as the body, `502` if the API failed and
//! `504` if it did not answer within the timeout. Keep-alive, pipelined
//! requests and request bodies (by `Content-Length`) are handled; chunked
//! request bodies are refused.
//!
//! Unless `--target host:port` is given it also starts the mock payment API
//! on loopback, on threads of its own. `--mock-api ADDR` runs only the mock
//! API, so the gateway can be measured as a process of its own:
//!
//! ```sh
//! cargo run --release --example gateway --features tokio -- --mock-api 127.0.0.1:9000 &
//! cargo run --release --example gateway --features tokio -- --target 127.0.0.1:9000
//! wrk -t2 -c1000 -d30s http://127.0.0.1:8080/
//! ```
//!
//! (add `--no-pool` to the second command for the baseline).

#[allow(dead_code)] // shared with the loadtest, which reads all of its figures
#[path = "support/mock_api.rs"]
mod mock_api;
#[path = "support/payment.rs"]
mod payment;

use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Parser;
use ringpool::Pool;
use ringpool::tcp::TokioTcpManager;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use mock_api::{MockApi, MockApiConfig};
use payment::{RequestError, authorize};

/// Longest request head (request line and headers) accepted.
const MAX_HEAD: usize = 16 * 1024;

/// An HTTP/1.1 gateway calling the mock payment API per request.
#[derive(Parser, Debug)]
#[command(about, long_about = None)]
struct Args {
    /// Where the gateway listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// A running payment API instead of the embedded mock.
    #[arg(long, value_name = "HOST:PORT")]
    target: Option<String>,

    /// Dial the API for every request instead of pooling connections.
    #[arg(long)]
    no_pool: bool,

    /// `max_size` of the pool.
    #[arg(long, default_value_t = 50)]
    pool_size: usize,

    /// Limit on one call to the API (checkout or dial, write and reply).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    timeout: Duration,

    /// Worker threads of the gateway [default: one per core].
    #[arg(long)]
    threads: Option<usize>,

    /// Run only the mock payment API, on this address, until killed.
    #[arg(long, value_name = "ADDR")]
    mock_api: Option<SocketAddr>,

    /// Mean service time of the mock API.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1ms")]
    service_time: Duration,

    /// Service times are drawn uniformly from service-time ± jitter.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "200us")]
    jitter: Duration,
}

/// How the gateway reaches the API.
enum Backend {
    Pooled(Pool<TokioTcpManager>),
    Fresh(Arc<str>),
}

impl Backend {
    async fn authorize(&self, buf: &mut Vec<u8>, id: u64, amount: u64) -> Result<(), RequestError> {
        match self {
            Backend::Pooled(pool) => {
                let mut conn = pool
                    .get()
                    .await
                    .map_err(|error| RequestError::Pool(error.to_string()))?;
                let outcome = authorize(&mut conn, buf, id, amount).await;
                if outcome.is_err() {
                    conn.discard();
                }
                outcome
            }
            Backend::Fresh(target) => {
                let mut stream = TcpStream::connect(&**target).await?;
                stream.set_nodelay(true)?;
                authorize(&mut stream, buf, id, amount).await
            }
        }
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let api = MockApiConfig {
        service_time: args.service_time,
        jitter: args.jitter.min(args.service_time),
        threads: cores,
        protocol: mock_api::Protocol::Line,
    };
    if let Some(addr) = args.mock_api {
        let server = MockApi::start(addr, api)?;
        println!(
            "mock payment API on {} (service time {:?} ± {:?})",
            server.addr(),
            api.service_time,
            api.jitter
        );
        loop {
            std::thread::park();
        }
    }
    let embedded = match &args.target {
        Some(_) => None,
        None => Some(MockApi::start(SocketAddr::from(([127, 0, 0, 1], 0)), api)?),
    };
    let target = match (&args.target, &embedded) {
        (Some(target), _) => target.clone(),
        (None, Some(server)) => server.addr().to_string(),
        (None, None) => unreachable!("started above"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.unwrap_or(cores).max(1))
        .thread_name("gateway")
        .enable_all()
        .build()?;
    runtime.block_on(serve(args, target))
}

async fn serve(args: Args, target: String) -> Result<(), Box<dyn Error>> {
    let backend = match args.no_pool {
        true => Backend::Fresh(target.as_str().into()),
        false => {
            let pool = Pool::builder(TokioTcpManager::new(target.clone()))
                .max_size(args.pool_size)
                .build()?;
            tokio::spawn(pool.maintenance());
            Backend::Pooled(pool)
        }
    };
    let listener = TcpListener::bind(args.listen).await?;
    println!(
        "gateway on http://{} -> payment API {target} ({})",
        listener.local_addr()?,
        match &backend {
            Backend::Pooled(_) => format!("pooled, max_size {}", args.pool_size),
            Backend::Fresh(_) => "a new connection per request".into(),
        }
    );
    let backend = Arc::new(backend);
    let ids = Arc::new(AtomicU64::new(1));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of descriptors, or a client gone before it was accepted.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        let (backend, ids) = (Arc::clone(&backend), Arc::clone(&ids));
        let timeout = args.timeout;
        tokio::spawn(async move {
            // A client's errors end that client's connection only.
            let _ = http_connection(stream, &backend, &ids, timeout).await;
        });
    }
}

/// The parts of a request head the gateway needs.
struct Head {
    /// Bytes of the head, blank line included.
    len: usize,
    body: usize,
    keep_alive: bool,
}

/// Parses a complete request head, or says why it is refused.
fn parse_head(head: &[u8]) -> Result<Head, &'static str> {
    let text = std::str::from_utf8(head).map_err(|_| "request head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().ok_or("empty request")?;
    let version = request_line
        .rsplit(' ')
        .next()
        .ok_or("malformed request line")?;
    let mut keep_alive = version == "HTTP/1.1";
    let mut body = 0;
    for line in lines.take_while(|line| !line.is_empty()) {
        let (name, value) = line.split_once(':').ok_or("malformed header")?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            body = value.parse().map_err(|_| "bad Content-Length")?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err("chunked request bodies are not supported");
        } else if name.eq_ignore_ascii_case("connection") {
            keep_alive = match value.to_ascii_lowercase().as_str() {
                "close" => false,
                "keep-alive" => true,
                _ => keep_alive,
            };
        }
    }
    Ok(Head {
        len: head.len(),
        body,
        keep_alive,
    })
}

/// Serves one client connection: request after request until it closes.
async fn http_connection(
    mut stream: TcpStream,
    backend: &Backend,
    ids: &AtomicU64,
    timeout: Duration,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(1024);
    let mut scratch = Vec::with_capacity(64);
    let mut response = Vec::with_capacity(256);
    loop {
        // Read until a whole head is buffered.
        let end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            if buf.len() > MAX_HEAD {
                return reply(&mut stream, &mut response, 431, "head too large\n", false).await;
            }
            let mut chunk = [0u8; 4096];
            let read = stream.read(&mut chunk).await?;
            if read == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..read]);
        };
        let head = match parse_head(&buf[..end]) {
            Ok(head) => head,
            Err(why) => return reply(&mut stream, &mut response, 400, why, false).await,
        };
        // Skip the body; this gateway's answer does not depend on it.
        while buf.len() < head.len + head.body {
            let mut chunk = [0u8; 4096];
            let read = stream.read(&mut chunk).await?;
            if read == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..read]);
        }
        buf.drain(..head.len + head.body);

        let id = ids.fetch_add(1, Ordering::Relaxed);
        let amount = fastrand::u64(100..1_000_000);
        let call = backend.authorize(&mut scratch, id, amount);
        let (status, body) = match tokio::time::timeout(timeout, call).await {
            Ok(Ok(())) => (200, format!("OK {id}\n")),
            Ok(Err(error)) => (502, format!("{error}\n")),
            Err(_) => (504, format!("no answer within {timeout:?}\n")),
        };
        reply(&mut stream, &mut response, status, &body, head.keep_alive).await?;
        if !head.keep_alive {
            return Ok(());
        }
    }
}

/// Writes one response.
async fn reply(
    stream: &mut TcpStream,
    response: &mut Vec<u8>,
    status: u16,
    body: &str,
    keep_alive: bool,
) -> std::io::Result<()> {
    use std::io::Write;
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        _ => "Gateway Timeout",
    };
    response.clear();
    write!(
        response,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}\r\n{body}",
        body.len(),
        if keep_alive {
            ""
        } else {
            "Connection: close\r\n"
        },
    )?;
    stream.write_all(response).await
}
