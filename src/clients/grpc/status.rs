//! What the channel says when a call fails before the server could answer:
//! a trailers-only gRPC response whose `grpc-status` and `grpc-message`
//! say what happened, as a server would send it; and the deadline a call
//! carries in its `grpc-timeout` header.

use std::time::Duration;

use http::{HeaderMap, HeaderValue, Response};

/// The gRPC status codes the channel itself reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Code {
    Cancelled = 1,
    DeadlineExceeded = 4,
    ResourceExhausted = 8,
    PermissionDenied = 7,
    Internal = 13,
    Unavailable = 14,
}

/// The status of a call that failed on the channel's side.
#[derive(Clone, Debug)]
pub(crate) struct Failure {
    pub(crate) code: Code,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(code: Code, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }

    /// The status a stream's h2 error means for the call.
    pub(crate) fn from_h2(context: &str, error: &h2::Error) -> Self {
        use h2::Reason;
        let code = match error.reason() {
            _ if error.is_io() => Code::Unavailable,
            _ if error.is_go_away() => Code::Unavailable,
            Some(Reason::REFUSED_STREAM) => Code::Unavailable,
            Some(Reason::CANCEL) => Code::Cancelled,
            Some(Reason::ENHANCE_YOUR_CALM) => Code::ResourceExhausted,
            Some(Reason::INADEQUATE_SECURITY) => Code::PermissionDenied,
            _ => Code::Internal,
        };
        Failure::new(code, format!("{context}: {error}"))
    }

    /// The status as gRPC headers (or trailers).
    pub(crate) fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", HeaderValue::from(self.code as u16));
        // Percent-encoded as the gRPC spec asks, so any message is a
        // valid header value.
        let encoded = percent_encode(&self.message);
        if let Ok(value) = HeaderValue::from_str(&encoded) {
            headers.insert("grpc-message", value);
        }
        headers
    }

    /// A trailers-only response carrying the status.
    pub(crate) fn response<B>(&self, body: B) -> Response<B> {
        let mut response = Response::new(body);
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        headers.extend(self.headers());
        response
    }
}

fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for byte in message.bytes() {
        match byte {
            b' '..=b'~' if byte != b'%' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The deadline in a `grpc-timeout` header: at most 8 digits and a unit
/// (`H`, `M`, `S`, `m`, `u`, `n`).
pub(crate) fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::{Code, Failure, grpc_timeout};
    use http::{HeaderMap, HeaderValue};
    use std::time::Duration;

    fn timeout_of(value: &'static str) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-timeout", HeaderValue::from_static(value));
        grpc_timeout(&headers)
    }

    #[test]
    fn grpc_timeouts_parse_in_every_unit_and_bad_ones_are_ignored() {
        assert_eq!(timeout_of("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(timeout_of("3M"), Some(Duration::from_secs(180)));
        assert_eq!(timeout_of("5S"), Some(Duration::from_secs(5)));
        assert_eq!(timeout_of("250m"), Some(Duration::from_millis(250)));
        assert_eq!(timeout_of("7u"), Some(Duration::from_micros(7)));
        assert_eq!(
            timeout_of("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        assert_eq!(timeout_of("100"), None, "no unit");
        assert_eq!(timeout_of("10x"), None, "unknown unit");
        assert_eq!(timeout_of("123456789S"), None, "more than 8 digits");
        assert_eq!(timeout_of("S"), None);
    }

    #[test]
    fn a_failure_is_a_trailers_only_response_with_an_encoded_message() {
        let failure = Failure::new(Code::Unavailable, "connection broke: 100% gone\n");
        let response = failure.response(());
        assert_eq!(response.headers()["grpc-status"], "14");
        assert_eq!(
            response.headers()["grpc-message"],
            "connection broke: 100%25 gone%0A"
        );
        assert_eq!(response.headers()["content-type"], "application/grpc");
    }
}
